"""Comparisons over seeds and sparsities: mean +- std tables and the metric-vs-sparsity plot.

Each run contributes its method, end sparsity (tags) and three numbers: the
final dev metric, the best dev metric at the final sparsity, and the mean dev
metric over the pruning window (`reporting.summary_metrics`). The table gives,
per method and end sparsity, mean, standard deviation (ddof 1) and n of each,
and, where the grid has the random control, each summary's paired difference
to random at the same end sparsity and seed (mean, std, n of the seeds both
ran): the methods of a seed share its initialisation and its dense epochs, so
the paired difference takes the seed-to-seed spread out of the comparison;
the plot shows the final and the window-mean dev metric against the fraction of
weights remaining (log axis), one line with error bars (std) per method, the
dense baseline as a horizontal band.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import rcParams
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

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
    """One row per finished run (the others are left out): method, end_sparsity, seed, task and
    its summaries."""
    from gated_bert import tracking

    rows = []
    for run_id in run_ids:
        info = tracking.run_info(run_id)
        if info.status != "FINISHED":
            continue
        task = run_task(info)
        metric = f"eval_{TASKS[task].main_metric}"
        row = {
            "task": task,
            "method": info.tags.get("method", "?"),
            "end_sparsity": float(info.tags.get("end_sparsity", "nan")),
            "seed": int(info.tags.get("seed", "-1")),
            "distilled": info.tags.get("distilled", "false") == "true",
            "metric": metric,
        }
        row.update({s: info.metrics.get(summary_key(s, metric), float("nan")) for s in SUMMARIES})
        rows.append(row)
    return pd.DataFrame(rows)


CONTROL = "random"
GROUP = ["method", "distilled", "end_sparsity"]  # a table row; distilled: trained with a teacher


def _with_distilled(rows: pd.DataFrame) -> pd.DataFrame:
    return rows if "distilled" in rows else rows.assign(distilled=False)


def grid_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and n per method and end sparsity, for each summary; with the random control in
    the grid, also each summary's paired difference to it (`<summary>_vs_random_mean/_std`, n in
    `n_paired`)."""
    if rows.empty:
        raise DataError("nothing to compare: no finished runs")
    rows = _with_distilled(rows)
    grouped = rows.groupby(GROUP, sort=True)
    table = grouped.size().rename("n").to_frame()
    for summary in SUMMARIES:
        table[f"{summary}_mean"] = grouped[summary].mean()
        table[f"{summary}_std"] = grouped[summary].std(ddof=1)
    if (rows["method"] == CONTROL).any():
        table = table.join(paired_vs_control(rows))
    return table.reset_index()


def paired_vs_control(rows: pd.DataFrame) -> pd.DataFrame:
    """Per method, distillation and end sparsity: summary minus the random control's of the same
    end sparsity, seed and distillation, mean and std (ddof 1) over the seeds both ran, and their
    number."""
    rows = _with_distilled(rows)
    keys = ["distilled", "end_sparsity", "seed"]
    control = rows[rows["method"] == CONTROL][[*keys, *SUMMARIES]].drop_duplicates(keys)
    paired = rows[rows["method"] != CONTROL].merge(control, on=keys, suffixes=("", "_control"))
    for summary in SUMMARIES:
        paired[summary] = paired[summary] - paired[f"{summary}_control"]
    grouped = paired.groupby(GROUP, sort=True)
    out = grouped.size().rename("n_paired").to_frame()
    for summary in SUMMARIES:
        out[f"{summary}_vs_{CONTROL}_mean"] = grouped[summary].mean()
        out[f"{summary}_vs_{CONTROL}_std"] = grouped[summary].std(ddof=1)
    return out


PLOTTED_SUMMARIES = {
    "final": "final (the last epoch)",
    "window_mean": "window mean (each epoch of the pruning window, right after its mask update)",
}


def plot_metric_vs_sparsity(table: pd.DataFrame, metric: str, path: Path, title: str) -> None:
    """Final and window-mean dev metric (mean +- std) against the fraction of weights remaining, log x axis.

    One panel per summary in PLOTTED_SUMMARIES that the table has values for: the
    final metric shows what training recovers at the final mask, the window mean
    how much the mask updates hurt (how well a method ranks).
    """
    summaries = [s for s in PLOTTED_SUMMARIES if table[f"{s}_mean"].notna().any()] or ["final"]
    figure = Figure(figsize=(7 * len(summaries), 4.8))
    panels = figure.subplots(1, len(summaries), sharey=True, squeeze=False)[0]
    for axes, summary in zip(panels, summaries):
        _draw_summary(axes, table, summary)
        axes.set_title(PLOTTED_SUMMARIES[summary], fontsize=10)
    panels[0].set_ylabel(f"dev {metric} (mean +- std)")
    figure.suptitle(title)
    figure.savefig(path, dpi=110, bbox_inches="tight")


def _draw_summary(axes, table: pd.DataFrame, summary: str) -> None:
    colors = rcParams["axes.prop_cycle"].by_key()["color"]
    table = _with_distilled(table)
    pruned = table[table["end_sparsity"] > 0]
    both = pruned["distilled"].nunique() > 1  # name the undistilled lines apart
    color = {m: colors[i % len(colors)] for i, m in enumerate(sorted(pruned["method"].unique()))}
    for (method, distilled), part in pruned.groupby(["method", "distilled"], sort=True):
        part = part.sort_values("end_sparsity")
        name = f"{method}, no teacher" if both and not distilled else method
        axes.errorbar(
            1.0 - part["end_sparsity"].to_numpy(),
            part[f"{summary}_mean"],
            yerr=np.nan_to_num(part[f"{summary}_std"].to_numpy()),
            fmt="-o" if distilled or not both else "s",
            capsize=3,
            color=color[method],
            label=f"{name} (n={int(part['n'].min())})",
        )
    dense = table[table["end_sparsity"] == 0]
    if not dense.empty and not np.isnan(dense[f"{summary}_mean"].iloc[0]):
        mean = float(dense[f"{summary}_mean"].iloc[0])
        std = float(np.nan_to_num(dense[f"{summary}_std"].iloc[0]))
        axes.axhspan(mean - std, mean + std, color="0.85", label=f"dense baseline {mean:.3f}")
        axes.axhline(mean, color="0.4", linewidth=1)
    fractions = sorted({round(1.0 - s, 6) for s in pruned["end_sparsity"]})
    if len(fractions) == 1:  # one end sparsity: a span around it (autoscale would give a zero-width axis)
        axes.set_xlim(fractions[0] / 2, fractions[0] * 2)
    axes.set_xscale("log")
    axes.set_xticks(fractions, [f"{f:g}" for f in fractions])  # the grid's own points, no 10^x clutter
    axes.xaxis.set_minor_locator(NullLocator())
    axes.invert_xaxis()  # sparser to the right
    axes.set_xlabel("fraction of encoder weights remaining (log)")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)


def compare_grid(
    run_ids: list[str], output_dir: Path, title: str | None = None
) -> tuple[Path, Path, pd.DataFrame]:
    """The grid table (CSV) and plot (PNG) of these runs' finished ones, written to `output_dir`;
    the title defaults to the task, the methods and the number of runs."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    rows = grid_rows(run_ids)
    table = grid_table(rows)
    if title is None:
        title = f"{rows['task'].iloc[0]}: {', '.join(sorted(rows['method'].unique()))} ({len(rows)} runs)"
    table_path, plot_path = output_dir / GRID_TABLE, output_dir / GRID_PLOT
    table.to_csv(table_path, index=False)
    plot_metric_vs_sparsity(table, rows["metric"].iloc[0], plot_path, title)
    return plot_path, table_path, table
