"""Comparisons over seeds and sparsities: mean +- std tables and the metric-vs-sparsity plot.

Each run contributes its method, end sparsity (tags) and three numbers: the
final dev metric, the best dev metric at the final sparsity, and the mean dev
metric over the pruning window (`reporting.summary_metrics`). The table gives,
per method and end sparsity, mean, standard deviation (ddof 1) and n of each;
the plot shows the final dev metric against the fraction of weights remaining
(log axis), one line with error bars (std) per method, the dense baseline as a
horizontal band.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import rcParams
from matplotlib.figure import Figure

from gated_bert.compare import run_task
from gated_bert.errors import DataError
from gated_bert.tasks import TASKS

GRID_TABLE = "pruning_grid_comparison.csv"
GRID_PLOT = "pruning_grid_metric_vs_sparsity.png"
SUMMARIES = ("final", "best_at_target", "window_mean")


def summary_key(summary: str, metric: str) -> str:
    """The run metric of a summary, e.g. ('window_mean', 'eval_accuracy') -> window_mean_eval_accuracy."""
    return {
        "final": f"final_{metric}",
        "best_at_target": f"best_{metric}_at_target",
        "window_mean": f"window_mean_{metric}",
    }[summary]


def grid_rows(run_ids: list[str]) -> pd.DataFrame:
    """One row per finished run: method, end_sparsity, seed and its summaries."""
    from gated_bert import tracking

    rows = []
    for run_id in run_ids:
        info = tracking.run_info(run_id)
        metric = f"eval_{TASKS[run_task(info)].main_metric}"
        row = {
            "method": info.tags.get("method", "?"),
            "end_sparsity": float(info.tags.get("end_sparsity", "nan")),
            "seed": int(info.tags.get("seed", "-1")),
            "metric": metric,
        }
        row.update({s: info.metrics.get(summary_key(s, metric), float("nan")) for s in SUMMARIES})
        rows.append(row)
    return pd.DataFrame(rows)


def grid_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and n per method and end sparsity, for each summary."""
    if rows.empty:
        raise DataError("nothing to compare: no finished runs")
    grouped = rows.groupby(["method", "end_sparsity"], sort=True)
    table = grouped.size().rename("n").to_frame()
    for summary in SUMMARIES:
        table[f"{summary}_mean"] = grouped[summary].mean()
        table[f"{summary}_std"] = grouped[summary].std(ddof=1)
    return table.reset_index()


def plot_metric_vs_sparsity(table: pd.DataFrame, metric: str, path: Path, title: str) -> None:
    """Final dev metric (mean +- std) against the fraction of weights remaining, log x axis."""
    figure = Figure(figsize=(8, 4.8))
    axes = figure.add_subplot()
    colors = rcParams["axes.prop_cycle"].by_key()["color"]
    pruned = table[table["end_sparsity"] > 0]
    for index, (method, part) in enumerate(pruned.groupby("method", sort=True)):
        part = part.sort_values("end_sparsity")
        remaining = 1.0 - part["end_sparsity"].to_numpy()
        std = np.nan_to_num(part["final_std"].to_numpy())
        axes.errorbar(
            remaining,
            part["final_mean"],
            yerr=std,
            fmt="-o",
            capsize=3,
            color=colors[index % len(colors)],
            label=f"{method} (n={int(part['n'].min())})",
        )
    dense = table[table["end_sparsity"] == 0]
    if not dense.empty:
        mean, std = float(dense["final_mean"].iloc[0]), float(np.nan_to_num(dense["final_std"].iloc[0]))
        axes.axhspan(mean - std, mean + std, color="0.85", label=f"dense baseline {mean:.3f}")
        axes.axhline(mean, color="0.4", linewidth=1)
    axes.set_xscale("log")
    axes.invert_xaxis()  # sparser to the right
    axes.set_xlabel("fraction of encoder weights remaining (log)")
    axes.set_ylabel(f"final dev {metric} (mean +- std)")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
    figure.savefig(path, dpi=110, bbox_inches="tight")


def compare_grid(run_ids: list[str], output_dir: Path, title: str) -> tuple[Path, Path, pd.DataFrame]:
    """The grid table (CSV) and plot (PNG) of these runs, written to `output_dir`."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    rows = grid_rows(run_ids)
    table = grid_table(rows)
    table_path, plot_path = output_dir / GRID_TABLE, output_dir / GRID_PLOT
    table.to_csv(table_path, index=False)
    plot_metric_vs_sparsity(table, rows["metric"].iloc[0], plot_path, title)
    return plot_path, table_path, table
