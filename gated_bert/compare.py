"""Compare methods: a dual-axis plot (dev metric and sparsity per epoch) and a table.

Curves come from results directories (`results_{method}_{task}/`, newest CSV)
or from MLflow runs (an experiment, a parent run, or run ids).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from gated_bert.errors import DataError  # noqa: E402
from gated_bert.tasks import TASKS  # noqa: E402

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
    curves = []
    for directory in directories:
        directory = Path(directory)
        csvs = sorted(directory.glob("results_*.csv"), key=lambda p: p.stat().st_mtime)
        if not csvs:
            raise DataError(
                f"no results_*.csv in {str(directory)!r}; pass a results_{{method}}_{{task}} folder"
            )
        newest = csvs[-1]
        stamp = newest.stem[len("results_") :]  # {method}_{timestamp}
        method = stamp.split("_", 1)[0]
        metadata_path = directory / f"metadata_{stamp}.json"
        metadata = json.loads(metadata_path.read_text()) if metadata_path.is_file() else {}
        frame = pd.read_csv(newest)
        metric = metadata.get("main_metric") or next(
            c for c in frame.columns if c.startswith("eval_") and c != "eval_loss"
        )
        curves.append(
            MethodCurve(
                method,
                metric,
                tuple(frame["epoch"].astype(int)),
                tuple(frame[metric]),
                tuple(frame["sparsity"]),
                metadata.get("timings", {}).get("fit_seconds"),
            )
        )
    return curves


def find_results_dirs(root: Path, task: str | None = None) -> list[Path]:
    pattern = f"results_*_{task}" if task else "results_*_*"
    return sorted(p for p in Path(root).glob(pattern) if p.is_dir())


def curves_from_mlflow(run_ids: list[str]) -> list[MethodCurve]:
    """One curve per MLflow run id (its method tag, main metric and sparsity history)."""
    import mlflow

    client = mlflow.MlflowClient()
    curves = []
    for run_id in run_ids:
        run = client.get_run(run_id)
        task = run.data.params.get("task") or run.data.tags.get("task")
        if task not in TASKS:
            raise DataError(f"run {run_id} has no known task param; is it a gated-bert training run?")
        metric = f"eval_{TASKS[task].main_metric}"
        history = {m.step: m.value for m in client.get_metric_history(run_id, metric)}
        sparsity = {m.step: m.value for m in client.get_metric_history(run_id, "sparsity")}
        epochs = tuple(sorted(history))
        wall = (run.info.end_time - run.info.start_time) / 1000 if run.info.end_time else None
        curves.append(
            MethodCurve(
                run.data.tags.get("method", run.data.params.get("pruning_method", "?")),
                metric,
                epochs,
                tuple(history[e] for e in epochs),
                tuple(sparsity.get(e, float("nan")) for e in epochs),
                wall,
            )
        )
    return curves


def child_run_ids(parent_run_id: str) -> list[str]:
    from gated_bert import tracking

    return [r.info.run_id for r in tracking.child_runs(parent_run_id)]


def experiment_run_ids(name: str) -> list[str]:
    import mlflow

    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        raise DataError(f"no MLflow experiment named {name!r}; check --experiment and MLFLOW_TRACKING_URI")
    runs = mlflow.search_runs(
        [experiment.experiment_id], output_format="list", filter_string="tags.method != ''"
    )
    return [r.info.run_id for r in runs if "method" in r.data.tags]


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
    fig, left = plt.subplots(figsize=(10, 5.5))
    right = left.twinx()
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, curve in enumerate(curves):
        color = colors[index % len(colors)]
        left.plot(curve.epochs, curve.values, "-o", color=color, label=f"{curve.method} {curve.metric}")
        right.plot(
            curve.epochs, curve.sparsity, "--s", color=color, alpha=0.6, label=f"{curve.method} sparsity"
        )
    left.set_xlabel("epoch")
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_ylabel(curves[0].metric + " (solid)")
    right.set_ylabel("encoder sparsity (dashed)")
    right.set_ylim(-0.02, 1.02)
    handles = left.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    left.legend(handles[0] + more[0], handles[1] + more[1], loc="center left", fontsize=8)
    left.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
