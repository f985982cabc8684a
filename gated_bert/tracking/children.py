"""Child runs of a parent run (sweeps, experiments): find them, end the stale ones, tag trials."""

from __future__ import annotations

import mlflow


def child_runs(parent_run_id: str) -> list:
    """Runs whose parent is `parent_run_id`, oldest first."""
    parent = mlflow.get_run(parent_run_id)
    runs = mlflow.search_runs(
        [parent.info.experiment_id],
        output_format="list",
        filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'",
    )
    return sorted(runs, key=lambda r: r.info.start_time)


def child_run_ids(parent_run_id: str, status: str | None = None) -> list[str]:
    """Ids of the children, oldest first; only those with `status` if given (e.g. FINISHED)."""
    return [r.info.run_id for r in child_runs(parent_run_id) if status is None or r.info.status == status]


def kill_running_children(parent_run_id: str, only_tags: dict[str, str] | None = None) -> None:
    """A child process killed hard cannot end its run: mark what is still RUNNING as KILLED
    (only the children carrying `only_tags`, if given: another invocation's stay running)."""
    client = mlflow.MlflowClient()
    for run in child_runs(parent_run_id):
        mine = all(run.data.tags.get(k) == v for k, v in (only_tags or {}).items())
        if run.info.status == "RUNNING" and mine:
            client.set_terminated(run.info.run_id, status="KILLED")


def _trial_runs(experiment_id: str, tags: dict[str, str]) -> list:
    """The run(s) of a trial, found by its study and trial tags."""
    query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
    return mlflow.search_runs([experiment_id], filter_string=query, output_format="list")


def tag_trial_run(experiment_id: str, tags: dict[str, str], state: str, reason: str | None = None) -> None:
    """Tag the run of a trial with its Optuna state (and why it failed)."""
    client = mlflow.MlflowClient()
    for run in _trial_runs(experiment_id, tags):
        client.set_tag(run.info.run_id, "optuna.trial_state", state)
        if reason:
            client.set_tag(run.info.run_id, "fail_reason", reason[:500])


def end_trial_runs(experiment_id: str, tags: dict[str, str], status: str, state: str) -> None:
    """End the still RUNNING run(s) of a trial (its process is gone) and tag the Optuna state."""
    tag_trial_run(experiment_id, tags, state)
    client = mlflow.MlflowClient()
    for run in _trial_runs(experiment_id, tags):
        if run.info.status == "RUNNING":
            client.set_terminated(run.info.run_id, status=status)
