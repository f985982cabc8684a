"""`run_experiments`: every method of a plan as a child run of one MLflow parent."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from gated_bert.experiments.display import make_display
from gated_bert.experiments.jobs import Job, JobRunner
from gated_bert.experiments.plan import ExperimentPlan


@dataclass
class ExperimentResult:
    parent_run_id: str
    jobs: list[Job]
    wall_seconds: float
    comparison_plot: Path | None
    comparison_table: Path | None
    table: object

    @property
    def failed(self) -> list[str]:
        return [j.method for j in self.jobs if j.returncode != 0]


def absolute_tracking_uri(uri: str) -> str:
    """Jobs run in other folders: a relative sqlite path must become absolute."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix) :].startswith("/"):
        return prefix + str(Path(uri[len(prefix) :]).resolve())
    return uri


def run_experiments(plan: ExperimentPlan, output_mode: str, terminal: bool) -> ExperimentResult:
    import mlflow

    from gated_bert import compare, tracking
    from gated_bert.data.glue import load_task

    base = plan.base
    load_task(base.task, base.data_dir)  # bad data fails once, before any job starts
    root = Path(base.output_root).resolve()
    stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
    uri = absolute_tracking_uri(mlflow.get_tracking_uri())
    mlflow.set_tracking_uri(uri)
    tags = {
        "experiments": "parent",
        "methods": ",".join(plan.methods),
        "task": base.task,
        "mode": "parallel" if plan.parallel else "sequential",
    }
    started = time.time()
    with tracking.start_run(base, run_name=f"experiments_{base.task}_{stamp}", tags=tags) as parent:
        tracking.log_params(
            {
                "methods": ",".join(plan.methods),
                "parallel": plan.parallel,
                "max_parallel_jobs": plan.max_parallel_jobs,
                "task": base.task,
                "model_size": base.model_size,
                "epochs": base.epochs,
            }
        )
        jobs = [
            Job(
                index=i + 1,
                method=method,
                config=config,
                workdir=root / "experiment_jobs" / f"{stamp}_{method}",
                log_path=root / "experiment_logs" / f"{method}_{base.task}_{stamp}.log",
                progress_path=root / "experiment_jobs" / f"{stamp}_{method}" / "progress.json",
            )
            for i, (method, config) in enumerate(zip(plan.methods, plan.configs))
        ]
        display = make_display(output_mode, jobs, terminal)
        runner = JobRunner(
            jobs,
            plan.max_parallel_jobs if plan.parallel else 1,
            uri,
            parent.info.run_id,
            parent.info.experiment_id,
            display,
        )
        try:
            runner.run()
        except KeyboardInterrupt:
            display.close()
            tracking.kill_running_children(parent.info.run_id)
            raise
        display.close()
        wall = time.time() - started
        children = compare.child_run_ids(parent.info.run_id)
        tracking.kill_running_children(parent.info.run_id)
        finished = [r for r in children if mlflow.get_run(r).info.status == "FINISHED"]
        plot = table_path = table = None
        if finished:
            title = f"{base.task}: {', '.join(plan.methods)} ({base.model_size})"
            plot, table_path, table = compare.compare(compare.curves_from_mlflow(finished), root, title)
            mlflow.log_artifact(str(plot), artifact_path="comparison")
            mlflow.log_artifact(str(table_path), artifact_path="comparison")
        mlflow.log_metric("wall_seconds", wall)
        for job in jobs:
            mlflow.log_metric(f"exit_code/{job.method}", job.returncode if job.returncode is not None else -1)
    return ExperimentResult(parent.info.run_id, jobs, wall, plot, table_path, table)
