"""Reading runs back: what a run was, its metric histories, the runs of an experiment."""

from __future__ import annotations

from dataclasses import dataclass

import mlflow

from gated_bert.errors import DataError


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    status: str
    params: dict[str, str]
    tags: dict[str, str]
    wall_seconds: float | None


def run_info(run_id: str) -> RunInfo:
    run = mlflow.MlflowClient().get_run(run_id)
    wall = (run.info.end_time - run.info.start_time) / 1000 if run.info.end_time else None
    return RunInfo(run_id, run.info.status, dict(run.data.params), dict(run.data.tags), wall)


def metric_history(run_id: str, key: str) -> dict[int, float]:
    """Step -> value of one metric of a run."""
    return {m.step: m.value for m in mlflow.MlflowClient().get_metric_history(run_id, key)}


def experiment_run_ids(name: str, tag: str = "method") -> list[str]:
    """Runs of the experiment `name` that carry `tag` (gated-bert training runs carry `method`)."""
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        raise DataError(f"no MLflow experiment named {name!r}; check --experiment and MLFLOW_TRACKING_URI")
    runs = mlflow.search_runs(
        [experiment.experiment_id], output_format="list", filter_string=f"tags.{tag} != ''"
    )
    return [r.info.run_id for r in runs if tag in r.data.tags]
