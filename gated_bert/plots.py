"""Plots shared by run reports and method comparisons.

Figures are built with `matplotlib.figure.Figure` directly (no pyplot), so
plotting never selects or changes the process's matplotlib backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

DPI = 110


@dataclass(frozen=True)
class Line:
    """One curve: x values, y values, its legend label and matplotlib style."""

    x: tuple
    y: tuple
    label: str
    fmt: str = "-o"
    color: str | None = None
    alpha: float = 1.0


def dual_axis_plot(
    path: Path,
    title: str,
    left_label: str,
    left_lines: list[Line],
    right_lines: list[Line],
    right_label: str = "encoder sparsity",
    figsize: tuple[float, float] = (8, 4.5),
    legend_loc: str = "best",
    legend_fontsize: float | None = None,
) -> None:
    """Curves by epoch on a left axis (a metric, a loss) and sparsity on a right axis in [0, 1]."""
    fig = Figure(figsize=figsize)
    left = fig.subplots()
    right = left.twinx()
    for axis, lines in ((left, left_lines), (right, right_lines)):
        for line in lines:
            style = {"color": line.color} if line.color is not None else {}  # else the fmt's or the cycle's
            axis.plot(line.x, line.y, line.fmt, alpha=line.alpha, label=line.label, **style)
    left.set_xlabel("epoch")
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_ylabel(left_label)
    right.set_ylabel(right_label)
    right.set_ylim(-0.02, 1.02)
    handles, labels = left.get_legend_handles_labels()
    more_handles, more_labels = right.get_legend_handles_labels()
    # on the right (top) axis, so that no curve is drawn over the legend
    right.legend(handles + more_handles, labels + more_labels, loc=legend_loc, fontsize=legend_fontsize)
    left.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)


def heatmap(
    path: Path, matrix, row_labels: list[str], column_labels: list[str], title: str, value_label: str
) -> None:
    """A matrix in [0, 1] with its values written in the cells."""
    rows, columns = len(row_labels), len(column_labels)
    fig = Figure(figsize=(7, 1.2 + 0.45 * rows))
    ax = fig.subplots()
    image = ax.imshow(matrix, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
    ax.set_xticks(range(columns), column_labels, rotation=30, ha="right")
    ax.set_yticks(range(rows), row_labels)
    for i in range(rows):
        for j in range(columns):
            ax.text(j, i, f"{matrix[i][j]:.2f}", ha="center", va="center", color="w", fontsize=8)
    fig.colorbar(image, ax=ax, label=value_label)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
