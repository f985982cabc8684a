"""Compare methods: a dual-axis plot (dev metric and sparsity per epoch) and a table.

Curves come from results directories (`results_{method}_{task}/`, newest CSV)
or from MLflow runs (an experiment, a parent run, or run ids), read through
`gated_bert.tracking`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib import rcParams

from gated_bert import metric_names as names
from gated_bert.errors import DataError
from gated_bert.plots import Line, dual_axis_plot
from gated_bert.tasks import TASKS

PLOT_NAME = "pruning_methods_comparison_dual_axis.png"
TABLE_NAME = "pruning_methods_comparison.csv"


@dataclass(frozen=True)
class MethodCurve:
    method: str
    metric: str  # e.g. eval_accuracy
    epochs: tuple[int, ...]
    values: tuple[float, ...]
    sparsity: tuple[float, ...]
    wall_seconds: float | None


def curves_from_results(directories: list[Path]) -> list[MethodCurve]:
    """One curve per `results_{method}_{task}` directory, from its newest CSV."""
    return [_curve_from_results(Path(directory)) for directory in directories]


def _curve_from_results(directory: Path) -> MethodCurve:
    csvs = sorted(directory.glob("results_*.csv"), key=lambda p: p.stat().st_mtime)
    if not csvs:
        raise DataError(f"no results_*.csv in {str(directory)!r}; pass a results_{{method}}_{{task}} folder")
    newest = csvs[-1]
    stamp = newest.stem[len("results_") :]  # {method}_{timestamp}
    metadata_path = directory / f"metadata_{stamp}.json"
    metadata = json.loads(metadata_path.read_text()) if metadata_path.is_file() else {}
    frame = pd.read_csv(newest)
    metric = metadata.get("main_metric") or next(c for c in frame.columns if names.is_eval_metric(c))
    return MethodCurve(
        stamp.split("_", 1)[0],
        metric,
        tuple(frame[names.EPOCH].astype(int)),
        tuple(frame[metric]),
        tuple(frame[names.SPARSITY]),
        metadata.get("timings", {}).get(names.FIT_SECONDS),
    )


def find_results_dirs(root: Path, task: str | None = None) -> list[Path]:
    pattern = f"results_*_{task}" if task else "results_*_*"
    return sorted(p for p in Path(root).glob(pattern) if p.is_dir())


def run_task(info) -> str:
    """The task of a training run (`tracking.RunInfo`); DataError if it is not a gated-bert run."""
    task = info.params.get("task") or info.tags.get("task")
    if task not in TASKS:
        raise DataError(f"run {info.run_id} has no known task param; is it a gated-bert training run?")
    return task


def curves_from_mlflow(run_ids: list[str]) -> list[MethodCurve]:
    """One curve per MLflow run id (its method tag, main metric and sparsity history)."""
    from gated_bert import tracking

    curves = []
    for run_id in run_ids:
        info = tracking.run_info(run_id)
        metric = names.eval_metric(TASKS[run_task(info)].main_metric)
        history = tracking.metric_history(run_id, metric)
        sparsity = tracking.metric_history(run_id, names.SPARSITY)
        epochs = tuple(sorted(history))
        curves.append(
            MethodCurve(
                info.tags.get("method", info.params.get("pruning_method", "?")),
                metric,
                epochs,
                tuple(history[e] for e in epochs),
                tuple(sparsity.get(e, float("nan")) for e in epochs),
                info.wall_seconds,
            )
        )
    return curves


def comparison_table(curves: list[MethodCurve]) -> pd.DataFrame:
    rows = []
    for c in curves:
        rows.append(
            {
                "method": c.method,
                "metric": c.metric,
                "final_metric": c.values[-1] if c.values else float("nan"),
                "final_sparsity": c.sparsity[-1] if c.sparsity else float("nan"),
                "best_metric": max(c.values) if c.values else float("nan"),
                "wall_seconds": c.wall_seconds,
            }
        )
    return pd.DataFrame(rows)


def plot_comparison(curves: list[MethodCurve], path: Path, title: str = "Pruning methods") -> None:
    if not curves:
        raise DataError("nothing to compare: no runs or results directories found")
    colors = rcParams["axes.prop_cycle"].by_key()["color"]
    metric_lines, sparsity_lines = [], []
    for index, curve in enumerate(curves):
        color = colors[index % len(colors)]
        metric_lines.append(Line(curve.epochs, curve.values, f"{curve.method} {curve.metric}", "-o", color))
        sparsity_lines.append(
            Line(curve.epochs, curve.sparsity, f"{curve.method} sparsity", "--s", color, alpha=0.6)
        )
    dual_axis_plot(
        path,
        title,
        curves[0].metric + " (solid)",
        metric_lines,
        sparsity_lines,
        right_label="encoder sparsity (dashed)",
        figsize=(10, 5.5),
        legend_loc="center left",
        legend_fontsize=8,
    )


def compare(
    curves: list[MethodCurve], output_dir: Path, title: str = "Pruning methods"
) -> tuple[Path, Path, pd.DataFrame]:
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    plot_path, table_path = output_dir / PLOT_NAME, output_dir / TABLE_NAME
    plot_comparison(curves, plot_path, title)
    table = comparison_table(curves)
    table.to_csv(table_path, index=False)
    return plot_path, table_path, table
