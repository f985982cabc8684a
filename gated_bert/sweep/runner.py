"""`run_sweep`: an Optuna study over training configs, trials as MLflow child runs.

The parent process validates everything, creates the MLflow parent run and the
Optuna study (storage initialized once, before any worker starts), then starts
`n_jobs` worker processes. Each worker runs its share of the `n_trials` trials
with TensorFlow's thread pools sized to cores // n_jobs, logging each trial as
a child run of the parent. At the end the parent logs the best value and
params, a CSV of all trials and the Optuna plots.
"""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import asdict, dataclass, field
from typing import Any

from gated_bert.config import SCRATCH_DEFAULTS, GatedBertConfig
from gated_bert.errors import ConfigError, redact
from gated_bert.sweep.storage import INVOCATION_TAG, default_storage_path, make_storage
from gated_bert.sweep.supervisor import run_workers
from gated_bert.workers import cpu_share, worker_environment

log = logging.getLogger("gated_bert")
SAMPLERS = ("tpe", "random")
OBJECTIVES = ("final", "best_at_target", "window_mean")
PARENT_RUN_ATTR = "mlflow_parent_run_id"  # study user attribute: the sweep's one MLflow parent run
JOIN_WAIT_SECONDS = 60
PRUNERS = ("median", "hyperband", "none")


def _help(text: str, default) -> Any:
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class SweepSettings:
    """How to search (the base config says what to train). CLI options and MLproject
    parameters of the sweep are generated from these fields (all but `seed`, which is the
    base config's)."""

    n_trials: int = _help("Trials in total, across all workers.", 10)
    n_jobs: int = _help("Parallel worker processes.", 1)
    study_name: str = _help("Optuna study; re-using a name continues that study.", "gated-bert-sweep")
    storage: str | None = _help(
        "Optuna storage URL (e.g. postgresql://...) or journal file "
        "(default: optuna_journal.log next to the MLflow store).",
        None,
    )
    objective: str = _help(
        "What a trial returns: final (the last epoch's dev metric), best_at_target (the best epoch at "
        "the final sparsity) or window_mean (the mean over the pruning window's epochs).",
        "final",
    )
    sampler: str = _help("tpe or random.", "tpe")
    pruner: str = _help("median, hyperband or none.", "median")
    timeout: float | None = _help("Stop starting new trials after this many seconds (per worker).", None)
    seed: int = _help("Seed of the samplers (the base config's seed).", 0)
    search_space: str | None = _help(
        "YAML/JSON file that narrows or replaces the default search space.", None
    )

    def __post_init__(self):
        if isinstance(self.n_trials, bool) or not isinstance(self.n_trials, int) or self.n_trials < 1:
            raise ConfigError(f"n_trials must be a positive integer, got {self.n_trials!r}")
        if isinstance(self.n_jobs, bool) or not isinstance(self.n_jobs, int) or self.n_jobs < 1:
            raise ConfigError(f"n_jobs must be a positive integer, got {self.n_jobs!r}")
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"unknown objective {self.objective!r}; choose one of: {', '.join(OBJECTIVES)}")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"unknown sampler {self.sampler!r}; choose one of: {', '.join(SAMPLERS)}")
        if self.pruner not in PRUNERS:
            raise ConfigError(f"unknown pruner {self.pruner!r}; choose one of: {', '.join(PRUNERS)}")
        if self.timeout is not None and not self.timeout > 0:
            raise ConfigError(f"timeout must be a positive number of seconds, got {self.timeout!r}")
        if not self.study_name.strip():
            raise ConfigError("study_name must not be empty")


@dataclass
class SweepResult:
    parent_run_id: str
    study_name: str
    storage: str
    best_value: float | None
    best_params: dict
    states: dict[str, int]


def make_sampler(settings: SweepSettings, worker: int):
    import optuna

    seed = settings.seed + worker  # distinct streams, so parallel workers do not propose the same point
    samplers = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}  # Optuna's
    return samplers[settings.sampler](seed=seed)


def make_pruner(settings: SweepSettings):
    import optuna

    return {
        "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
        "hyperband": lambda: optuna.pruners.HyperbandPruner(),
        "none": lambda: optuna.pruners.NopPruner(),
    }[settings.pruner]()


# ------------------------------------------------------------------- worker
@dataclass(frozen=True)
class WorkerJob:
    base_json: str
    settings: SweepSettings
    storage: str
    n_trials: int
    index: int
    threads: int
    tracking_uri: str
    parent_run_id: str
    experiment_id: str
    invocation: str = ""


def worker_main(job: WorkerJob) -> None:
    """Entry point of a worker process (its edge): run `job.n_trials` trials of the study."""
    os.environ.pop("MLFLOW_RUN_ID", None)  # trials are children, never the launched run itself
    os.environ.update(worker_environment(job.threads, job.tracking_uri))
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM -> KeyboardInterrupt -> runs KILLED
    import optuna

    from gated_bert import tracking
    from gated_bert.run import configure_logging

    tracking.use_tracking_uri(job.tracking_uri)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    base = GatedBertConfig.from_json(job.base_json)
    configure_logging(base.verbose)
    study = optuna.load_study(
        study_name=job.settings.study_name,
        storage=make_storage(job.storage),
        sampler=make_sampler(job.settings, job.index),
        pruner=make_pruner(job.settings),
    )
    from gated_bert.sweep.objective import Objective

    objective = Objective(base, job.settings, job.parent_run_id, job.experiment_id, job.invocation)
    study.optimize(objective, n_trials=job.n_trials, timeout=job.settings.timeout, catch=(Exception,))


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


# ------------------------------------------------------------------- parent
def run_sweep(base: GatedBertConfig, settings: SweepSettings) -> SweepResult:
    """Run this invocation's `n_trials` trials of the study; returns where it is and what it found.

    Several invocations (other machines, a re-run after a crash) share one study and one
    MLflow parent run: the invocation that creates the study opens the parent run and records
    its id in the study; the others find it there and log their trials under it.
    """
    import uuid

    from gated_bert import tracking

    base = sweep_base(base)
    _check_inputs(base, settings)
    tracking.check_tracking_store()  # before the study's storage is written
    storage = settings.storage or str(default_storage_path())
    study, created = _claim_study(base, settings, storage)
    shown = redact(storage)  # what is logged and printed: never a password
    parent_id = None if created else _study_parent(study, settings, storage)
    tags = {"optuna.study_name": settings.study_name, "optuna.storage": shown, "sweep": "parent"}
    name = f"sweep_{settings.study_name}"
    with tracking.start_run(base, run_name=name, tags=tags, resume_run_id=parent_id) as parent:
        if parent_id is None:
            tracking.log_config(base)
            tracking.log_params({f"sweep.{k}": v for k, v in asdict(settings).items() if k != "storage"})
            tracking.log_params({"sweep.storage": shown})
            study.set_user_attr(PARENT_RUN_ATTR, parent.info.run_id)
        else:
            tracking.point_launched_run_to(parent_id)
        invocation = uuid.uuid4().hex
        jobs = _worker_jobs(base, settings, storage, parent.info, invocation)
        log.info(
            "study %s in %s: %d trials on %d worker(s), %d TF threads each (%d earlier trials)",
            settings.study_name,
            shown,
            settings.n_trials,
            len(jobs),
            jobs[0].threads,
            len(study.trials),
        )
        try:
            run_workers(jobs, worker_main)
        except KeyboardInterrupt:
            tracking.kill_running_children(parent.info.run_id, {INVOCATION_TAG: invocation})
            raise
        best_value, best_params, states = log_report(settings.study_name, storage)
    return SweepResult(parent.info.run_id, settings.study_name, shown, best_value, best_params, states)


def log_report(study_name: str, storage: str) -> tuple:
    """Log the study's summary (best value and params, trials CSV, plots) to the active run."""
    import optuna

    from gated_bert.sweep import report

    study = optuna.load_study(study_name=study_name, storage=make_storage(storage))
    return report.log_study(study, redact(storage))


def refresh_report(study_name: str, storage: str | None) -> tuple[str, tuple]:
    """Log study `study_name`'s summary to its parent run again: (parent run id, summary)."""
    import optuna

    from gated_bert import tracking

    tracking.check_tracking_store()
    storage = storage or str(default_storage_path())
    try:
        study = optuna.load_study(study_name=study_name, storage=make_storage(storage))
    except KeyError:
        raise ConfigError(
            f"no study {study_name!r} in {redact(storage)}; check --study-name and --storage"
        ) from None
    parent_id = study.user_attrs.get(PARENT_RUN_ATTR)
    if parent_id is None or not tracking.run_exists(parent_id):
        raise ConfigError(
            f"study {study_name!r} has no MLflow parent run in {tracking.absolute_tracking_uri()}; "
            "check MLFLOW_TRACKING_URI"
        )
    with tracking.start_run(None, resume_run_id=parent_id):
        return parent_id, log_report(study_name, storage)


def _claim_study(base: GatedBertConfig, settings: SweepSettings, storage: str):
    """Create the study, or load it if it exists: (study, whether this invocation created it).

    The storage decides who creates it, so two invocations starting together never both do.
    """
    import optuna

    from gated_bert.tasks import TASKS

    try:
        study = optuna.create_study(
            study_name=settings.study_name,
            storage=make_storage(storage),
            direction=TASKS[base.task].direction,
        )
        return study, True
    except optuna.exceptions.DuplicatedStudyError:
        return optuna.load_study(study_name=settings.study_name, storage=make_storage(storage)), False


def _study_parent(study, settings: SweepSettings, storage: str) -> str | None:
    """The parent run recorded in an existing study; a study created a moment ago by another
    invocation gets it within seconds. None: open a new parent run (a study of an older version)."""
    import time

    import optuna

    from gated_bert import tracking

    deadline = time.time() + JOIN_WAIT_SECONDS
    while True:
        run_id = study.user_attrs.get(PARENT_RUN_ATTR)
        if run_id is not None and tracking.run_exists(run_id):
            return run_id
        if study.trials or time.time() > deadline:
            log.warning("study %s has no MLflow parent run; opening one", settings.study_name)
            return None
        time.sleep(0.5)
        study = optuna.load_study(study_name=settings.study_name, storage=make_storage(storage))


def sweep_base(base: GatedBertConfig) -> GatedBertConfig:
    """A sweep searches pruning settings: its trials prune with the from-scratch default method
    (SPT) unless one is named, with init_from too (where train alone fine-tunes dense)."""
    if base.pruning_method is not None:
        return base
    return base.replace(pruning_method=SCRATCH_DEFAULTS["pruning_method"])


def _check_inputs(base: GatedBertConfig, settings: SweepSettings) -> None:
    """Bad search spaces and bad data fail before any run or trial starts."""
    from gated_bert.data.glue import load_task
    from gated_bert.sweep.search_space import load_space

    _check_space(load_space(settings.search_space, base.epochs), base)
    load_task(base.task, base.data_dir)


def _worker_jobs(base, settings: SweepSettings, storage: str, parent, invocation: str):
    """One job per worker process; `parent` is the parent run's info."""
    from gated_bert import tracking

    workers = min(settings.n_jobs, settings.n_trials)
    uri = tracking.absolute_tracking_uri()
    return [
        WorkerJob(
            base.to_json(),
            settings,
            storage,
            n,
            i,
            cpu_share(workers),
            uri,
            parent.run_id,
            parent.experiment_id,
            invocation,
        )
        for i, n in enumerate(_split(settings.n_trials, workers))
    ]


def _check_space(space, base) -> None:
    """Draw one config from the space with a throwaway trial, so bad spaces fail now."""
    import optuna

    from gated_bert.sweep.search_space import suggest_config

    probe = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    suggest_config(probe.ask(), space, base)
