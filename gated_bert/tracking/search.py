"""Reading runs back: what a run was, its metric histories, the runs of an experiment."""

from __future__ import annotations

from dataclasses import dataclass, field

import mlflow

from gated_bert.errors import DataError


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    status: str
    params: dict[str, str]
    tags: dict[str, str]
    wall_seconds: float | None
    start_time: int = 0  # ms since the epoch
    metrics: dict[str, float] = field(default_factory=dict)  # the latest value of each


def run_exists(run_id: str) -> bool:
    """Whether the tracking store has run `run_id` (not deleted)."""
    try:
        return mlflow.MlflowClient().get_run(run_id).info.lifecycle_stage == "active"
    except mlflow.exceptions.MlflowException:
        return False


def run_info(run_id: str) -> RunInfo:
    """What the tracking store holds of run `run_id`; an unknown id raises DataError."""
    try:
        run = mlflow.MlflowClient().get_run(run_id)
    except mlflow.exceptions.MlflowException:
        raise DataError(
            f"no MLflow run {run_id!r} in {mlflow.get_tracking_uri()}; check the id and MLFLOW_TRACKING_URI"
        ) from None
    wall = (run.info.end_time - run.info.start_time) / 1000 if run.info.end_time else None
    info = run.info
    return RunInfo(
        run_id,
        info.status,
        dict(run.data.params),
        dict(run.data.tags),
        wall,
        info.start_time or 0,
        dict(run.data.metrics),
    )


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


def load_text(run_id: str, artifact_file: str) -> str:
    """A text artifact of a run; a missing one raises DataError."""
    try:
        return mlflow.artifacts.load_text(f"runs:/{run_id}/{artifact_file}")
    except (mlflow.exceptions.MlflowException, OSError):
        raise DataError(
            f"run {run_id} has no {artifact_file}: it was not started by this version of gated-bert"
        ) from None


def running_runs() -> list[RunInfo]:
    """Every RUNNING run of every experiment of the tracking store."""
    experiments = [e.experiment_id for e in mlflow.search_experiments()]
    runs = mlflow.search_runs(
        experiments, filter_string="attributes.status = 'RUNNING'", output_format="list"
    )
    return [run_info(r.info.run_id) for r in runs]


def mark_killed(run_id: str) -> None:
    mlflow.MlflowClient().set_terminated(run_id, status="KILLED")


def reopen_run(run_id: str) -> None:
    """RUNNING again (a shared parent run that another process still logs under)."""
    mlflow.MlflowClient().update_run(run_id, status="RUNNING")
