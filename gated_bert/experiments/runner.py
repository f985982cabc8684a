"""`run_experiments`: every method of a plan as a child run of one MLflow parent."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from gated_bert import tracking
from gated_bert.config import BASELINE_LABEL
from gated_bert.experiments.display import make_display
from gated_bert.experiments.jobs import Job, JobRunner, with_absolute_paths
from gated_bert.experiments.plan import ExperimentPlan
from gated_bert.tasks import TASKS

log = logging.getLogger("gated_bert")


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


def run_experiments(plan: ExperimentPlan, output_mode: str, terminal: bool) -> ExperimentResult:
    """Check the data, open the parent run, run the jobs, then compare the finished ones."""
    from gated_bert.data.glue import load_task

    base = plan.base
    load_task(base.task, base.data_dir)  # bad data fails once, before any job starts
    root = Path(base.output_root).resolve()
    stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
    started = time.time()
    with tracking.start_run(base, run_name=f"experiments_{base.task}_{stamp}", tags=_tags(plan)) as parent:
        tracking.log_params(_params(plan))
        jobs = _jobs(plan, root, stamp)
        _run_jobs(plan, jobs, parent, output_mode, terminal)
        wall = time.time() - started
        tracking.kill_running_children(parent.info.run_id)
        plot, table_path, table = _compare_finished(plan, parent.info.run_id, root)
        tracking.log_metrics({"wall_seconds": wall})
        tracking.log_metrics(
            {f"exit_code/{j.method}": j.returncode if j.returncode is not None else -1 for j in jobs}
        )
    return ExperimentResult(parent.info.run_id, jobs, wall, plot, table_path, table)


def _tags(plan: ExperimentPlan) -> dict[str, str]:
    return {
        "experiments": "parent",
        "methods": ",".join(plan.methods),
        "task": plan.base.task,
        "mode": "parallel" if plan.parallel else "sequential",
    }


def _params(plan: ExperimentPlan) -> dict:
    base = plan.base
    return {
        "methods": ",".join(plan.methods),
        "seeds": ",".join(map(str, plan.seeds)),
        "end_sparsities": ",".join(f"{v:g}" for v in plan.end_sparsities),
        "jobs": len(plan.configs),
        "parallel": plan.parallel,
        "max_parallel_jobs": plan.max_parallel_jobs,
        "task": base.task,
        "model_size": base.model_label,
        "epochs": base.epochs,
        "teacher": plan.teacher or "",
        "undistilled_sparsities": ",".join(f"{v:g}" for v in plan.undistilled_sparsities),
    }


def _jobs(plan: ExperimentPlan, root: Path, stamp: str) -> list[Job]:
    task = plan.base.task
    return [
        Job(
            index=i + 1,
            method=method,
            config=with_absolute_paths(config),
            workdir=root / "experiment_jobs" / f"{stamp}_{method}",
            log_path=root / "experiment_logs" / f"{method}_{task}_{stamp}.log",
            progress_path=root / "experiment_jobs" / f"{stamp}_{method}" / "progress.json",
            distil=distil,
        )
        for i, (method, config, distil) in enumerate(
            zip(plan.labels or plan.methods, plan.configs, plan.distil or [True] * len(plan.configs))
        )
    ]


def _run_jobs(plan: ExperimentPlan, jobs: list[Job], parent, output_mode: str, terminal: bool) -> None:
    """Run the jobs with a live view; Ctrl-C stops them all and marks their runs KILLED.

    With `--teacher auto` the dense jobs (and the undistilled pruning jobs) run first; each
    distilled pruning job then distils from the dense run of its seed (a seed whose dense run
    failed runs no distilled job)."""
    display = make_display(output_mode, jobs, terminal)

    def run(some: list[Job]) -> None:
        JobRunner(
            some,
            plan.max_parallel_jobs if plan.parallel else 1,
            tracking.absolute_tracking_uri(),  # jobs run in other folders
            parent.info.run_id,
            parent.info.experiment_id,
            display,
        ).run()

    try:
        if not plan.teacher_auto:
            run(jobs)
            return
        students = [j for j in jobs if j.config.enable_pruning and j.distil]
        run([j for j in jobs if j not in students])
        run(_with_teachers(students, parent.info.run_id))
    except KeyboardInterrupt:
        tracking.kill_running_children(parent.info.run_id)
        raise
    finally:
        display.close()


def _with_teachers(pruned: list[Job], parent_run_id: str) -> list[Job]:
    """The pruning jobs whose seed has a FINISHED dense run, each told to distil from it."""
    teachers = {
        run.data.tags.get("seed"): run.info.run_id
        for run in tracking.child_runs(parent_run_id)
        if run.data.tags.get("method") == BASELINE_LABEL and run.info.status == "FINISHED"
    }
    ready = []
    for job in pruned:
        teacher = teachers.get(str(job.config.seed))
        if teacher is None:
            log.error("no dense run of seed %d finished: %s is not run", job.config.seed, job.method)
            continue
        job.config = job.config.replace(teacher=teacher)
        ready.append(job)
    return ready


def _compare_finished(plan: ExperimentPlan, parent_run_id: str, root: Path):
    """The comparison plot and table of the children that finished (None if none did)."""
    from gated_bert import compare

    finished = tracking.child_run_ids(parent_run_id, status="FINISHED")
    if not finished:
        return None, None, None
    title = f"{plan.base.task}: {', '.join(plan.methods)} ({plan.base.model_label})"
    if plan.is_grid:  # mean +- std over seeds, per method and end sparsity
        from gated_bert import grid_compare

        plot, table_path, table = grid_compare.compare_grid(finished, root, title)
    else:
        plot, table_path, table = compare.compare(compare.curves_from_mlflow(finished), root, title)
    tracking.log_artifacts("comparison", [plot, table_path])
    if plan.base.register_model:
        metric = f"final_eval_{TASKS[plan.base.task].main_metric}"
        aliased = tracking.alias_best_versions(plan.base.register_model, finished, metric)
        log.info("model %s: %s", plan.base.register_model, aliased)
    return plot, table_path, table
