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
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from gated_bert import interrupts
from gated_bert.config import SCRATCH_DEFAULTS, GatedBertConfig
from gated_bert.errors import ConfigError, redact
from gated_bert.interrupts import stop_on_first_interrupt
from gated_bert.sweep.storage import INVOCATION_TAG, make_storage, resolve_storage
from gated_bert.sweep.supervisor import run_workers
from gated_bert.workers import cpu_share, worker_environment

log = logging.getLogger("gated_bert")
SAMPLERS = ("tpe", "random")
OBJECTIVES = ("final", "best_at_target", "window_mean")
PARENT_RUN_ATTR = "mlflow_parent_run_id"  # study user attribute: the sweep's one MLflow parent run
JOIN_WAIT_SECONDS = 60
PRUNERS = ("median", "hyperband", "none")
BASE_CONFIG_ATTR = "base_config"  # study user attribute: the fixed settings it was created with

# The sweep's own defaults, where they differ from `train`'s: a budget that finishes on a laptop or a
# 2-core machine (10 trials of tiny on 32,000 SST-2 examples, 7 epochs) with the from-scratch recipe
# that learns in it (README, "Optuna sweeps"). Options and MLproject parameters of `sweep` show them.
SWEEP_CONFIG_DEFAULTS = {
    "epochs": 7,
    "max_train_samples": 32000,
    "pruning_start_epoch": 2,
    "pruning_end_epoch": 6,
}
# Filled in by `sweep_base` for settings left at auto when no checkpoint is given
# (with --init-from the checkpoint fixes the shape and the fine-tuning defaults apply).
SWEEP_SCRATCH_DEFAULTS = {
    "model_size": "tiny",
    "learning_rate": 2e-4,
    "lr_schedule": "linear",
    "warmup_ratio": 0.1,
    "dropout_rate": 0.1,
}
# Settings that do not change what a trial trains: joining a study with other values is fine.
NOT_FINGERPRINTED = (
    "data_dir",
    "init_from",  # compared by the checkpoint's weights instead (a folder differs between machines)
    "output_root",
    "experiment_name",
    "register_model",
    "verbose",
)


def _help(text: str, default) -> Any:
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class SweepSettings:
    """How to search (the base config says what to train). CLI options and MLproject
    parameters of the sweep are generated from these fields (all but `seed`, which is the
    base config's)."""

    n_trials: int = _help("Trials in total, across all workers.", 10)
    n_jobs: int | None = _help(
        "Parallel worker processes (default: one per CPU core, at most n_trials, as many as fit in "
        "memory; a given n_jobs is lowered when its workers would not fit).",
        None,
    )
    study_name: str = _help("Optuna study; re-using a name continues that study.", "gated-bert-sweep")
    storage: str | None = _help(
        "Optuna storage URL (e.g. postgresql://user@host/db?sslmode=require) or journal file "
        "(default: $GATED_BERT_STORAGE, else optuna_journal.log next to the MLflow store). A URL "
        "with a password belongs in GATED_BERT_STORAGE or ~/.pgpass, not on the command line.",
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
    keep_checkpoints: bool = _help(
        "Keep each trial's checkpoints after it completes or is pruned (default: delete them; the "
        "trial's model is in its MLflow run).",
        False,
    )
    allow_different_base: bool = _help(
        "Join an existing study even if its fixed settings (model, data, budget) differ from these.",
        False,
    )

    def __post_init__(self):
        if isinstance(self.n_trials, bool) or not isinstance(self.n_trials, int) or self.n_trials < 1:
            raise ConfigError(f"n_trials must be a positive integer, got {self.n_trials!r}")
        if self.n_jobs is not None and (
            isinstance(self.n_jobs, bool) or not isinstance(self.n_jobs, int) or self.n_jobs < 1
        ):
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
    """Entry point of a worker process (its edge): run `job.n_trials` trials of the study.

    Interrupted (Ctrl-C reaches the whole process group; the parent interrupts its workers
    too), the worker ends its trial's run KILLED and exits 130 without a traceback.
    """
    os.environ.pop("MLFLOW_RUN_ID", None)  # trials are children, never the launched run itself
    os.environ.update(worker_environment(job.threads, job.tracking_uri))
    stop_on_first_interrupt()  # SIGINT/SIGTERM -> one KeyboardInterrupt -> the trial's run KILLED
    try:
        _run_trials(job)
    except KeyboardInterrupt:
        from gated_bert.tracking.runs import end_active_runs

        end_active_runs("KILLED")
        sys.exit(130)


def _run_trials(job: WorkerJob) -> None:
    import optuna

    from gated_bert import tracking
    from gated_bert.run import configure_logging

    tracking.use_tracking_uri(job.tracking_uri)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for handler in logging.getLogger("optuna").handlers:  # its own: a trial's failure is logged there
        handler.addFilter(_no_interrupt_tracebacks)
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


def _no_interrupt_tracebacks(record: logging.LogRecord) -> bool:
    """Ctrl-C is not a failure worth a traceback per trial (the trial is recorded as interrupted),
    whatever error a library made of the KeyboardInterrupt."""
    return not (
        record.exc_info and (isinstance(record.exc_info[1], KeyboardInterrupt) or interrupts.received())
    )


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


# ------------------------------------------------------------------- parent
def run_sweep(base: GatedBertConfig, settings: SweepSettings) -> SweepResult:
    """Run this invocation's `n_trials` trials of the study; returns where it is and what it found.

    Several invocations (other machines, a re-run after a crash) share one study and one
    MLflow parent run: the invocation that creates the study opens the parent run and records
    its id and its fixed settings in the study; the others find them there and log their trials
    under it. Everything that can be refused (settings, data, memory, a study with other fixed
    settings) is, before any MLflow run is created.
    """
    import uuid

    from gated_bert import tracking

    base = sweep_base(base)
    _check_inputs(base, settings)
    workers = plan_workers(base, settings)
    tracking.check_tracking_store()  # before the study's storage is written
    tracking.check_experiment_access(base.effective_experiment_name)
    storage = resolve_storage(settings.storage)
    study, created = _claim_study(base, settings, storage)
    shown = redact(storage)  # what is logged and printed: never a password
    parent_id = None if created else _study_parent(study, settings, storage)
    if not created:
        _check_same_base(study, base, settings, storage)
    tags = {"optuna.study_name": settings.study_name, "optuna.storage": shown, "sweep": "parent"}
    invocation = uuid.uuid4().hex
    try:
        return _run_parent(base, settings, study, storage, parent_id, tags, invocation, workers)
    except KeyboardInterrupt as interrupt:
        if getattr(interrupt, "others_active", None):  # ended KILLED by its run context: open again
            log.warning("other invocations still run trials of this sweep: its parent run stays open")
            tracking.reopen_run(interrupt.others_active)
        raise


def _run_parent(base, settings, study, storage, parent_id, tags, invocation, workers) -> SweepResult:
    """This invocation inside the sweep's parent run (created, or continued with `parent_id`)."""
    from gated_bert import tracking

    shown, name = redact(storage), f"sweep_{settings.study_name}"
    with tracking.start_run(base, run_name=name, tags=tags, resume_run_id=parent_id) as parent:
        if parent_id is None:
            tracking.log_config(base)
            tracking.log_params({f"sweep.{k}": v for k, v in asdict(settings).items() if k != "storage"})
            tracking.log_params({"sweep.storage": shown, "sweep.workers": workers})
            study.set_user_attr(PARENT_RUN_ATTR, parent.info.run_id)
        else:
            tracking.point_launched_run_to(parent_id)
        jobs = _worker_jobs(base, settings, storage, parent.info, invocation, workers)
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
        except KeyboardInterrupt as interrupt:
            tracking.kill_running_children(parent.info.run_id, {INVOCATION_TAG: invocation})
            if tracking.child_run_ids(parent.info.run_id, status="RUNNING"):
                interrupt.others_active = parent.info.run_id
            raise
        best_value, best_params, states = log_report(settings.study_name, storage)
    return SweepResult(parent.info.run_id, settings.study_name, shown, best_value, best_params, states)


def plan_workers(base: GatedBertConfig, settings: SweepSettings) -> int:
    """How many worker processes to start: n_jobs (default: one per core), at most n_trials,
    lowered to as many as fit in memory; none fitting is refused."""
    from gated_bert.memory import fitting_workers, gigabytes
    from gated_bert.training.settings import resolved_config
    from gated_bert.training.threads import available_cpus

    wanted = min(settings.n_jobs or available_cpus(), settings.n_trials)
    config = resolved_config(base)
    fit = fitting_workers(config, wanted)
    each, free = gigabytes(fit.peak_bytes), gigabytes(fit.available_bytes)
    if fit.workers == 0:
        raise ConfigError(
            f"one worker training {config.model_label} at batch size {config.batch_size} needs about "
            f"{each} of memory and {free} is available; choose a smaller --model-size, --batch-size or "
            "--max-len, or free memory"
        )
    if fit.workers < wanted:
        log.warning(
            "%d workers would need about %s each and %s is available: starting %d",
            wanted,
            each,
            free,
            fit.workers,
        )
    return fit.workers


def base_fingerprint(base: GatedBertConfig) -> dict:
    """The fixed settings a study's trials train with (resolved: 'auto' and the value it means
    compare equal), without those that do not change a trial's result; a checkpoint by its weights."""
    import json

    from gated_bert.pretrained.checkpoint import weights_sha256
    from gated_bert.pretrained.resolve import checkpoint_of
    from gated_bert.training.settings import resolved_config

    config = resolved_config(base)
    values = {k: v for k, v in json.loads(config.to_json()).items() if k not in NOT_FINGERPRINTED}
    checkpoint = checkpoint_of(config)
    values["init_from_sha256"] = weights_sha256(checkpoint.weights_file) if checkpoint else None
    return values


def _check_same_base(study, base: GatedBertConfig, settings: SweepSettings, storage: str) -> None:
    """Joining a study whose trials trained with other fixed settings would mix them in one search."""
    import json

    import optuna

    study = optuna.load_study(study_name=settings.study_name, storage=make_storage(storage))
    recorded = study.user_attrs.get(BASE_CONFIG_ATTR)
    if recorded is None:  # a study of an older version
        study.set_user_attr(BASE_CONFIG_ATTR, json.dumps(base_fingerprint(base), sort_keys=True))
        return
    searched = set(_space(settings, base))
    old, new = json.loads(recorded), base_fingerprint(base)
    differences = [
        f"{key} {old.get(key)!r} (now {new.get(key)!r})"
        for key in sorted(set(old) | set(new))
        if key not in searched and old.get(key) != new.get(key)
    ]
    if differences and not settings.allow_different_base:
        shown = "; ".join(differences[:6]) + ("; ..." if len(differences) > 6 else "")
        raise ConfigError(
            f"study {settings.study_name!r} was created with other fixed settings: {shown}; choose a new "
            "--study-name, or pass --allow-different-base to add these trials to it anyway"
        )


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
    storage = resolve_storage(storage)
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
    import json

    import optuna

    from gated_bert.tasks import TASKS

    try:
        study = optuna.create_study(
            study_name=settings.study_name,
            storage=make_storage(storage),
            direction=TASKS[base.task].direction,
        )
        study.set_user_attr(BASE_CONFIG_ATTR, json.dumps(base_fingerprint(base), sort_keys=True))
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
    (SPT) unless one is named, with init_from too (where train alone fine-tunes dense). From
    scratch, settings left at auto take the sweep's recipe (`SWEEP_SCRATCH_DEFAULTS`)."""
    if base.pruning_method is None:
        base = base.replace(pruning_method=SCRATCH_DEFAULTS["pruning_method"])
    if base.init_from is None:
        unset = {k: v for k, v in SWEEP_SCRATCH_DEFAULTS.items() if getattr(base, k) in (None, "auto")}
        base = base.replace(**unset)
    return base


def _space(settings: SweepSettings, base: GatedBertConfig) -> dict:
    from gated_bert.sweep.search_space import load_space

    return load_space(settings.search_space, base.epochs)


def _check_inputs(base: GatedBertConfig, settings: SweepSettings) -> None:
    """Bad search spaces, settings and data fail before any run or trial starts."""
    from gated_bert.data.glue import load_task
    from gated_bert.training.settings import resolved_config

    _check_space(_space(settings, base), base)
    resolved_config(base)  # settings no trial could train with (a checkpoint that contradicts them)
    load_task(base.task, base.data_dir)


def _worker_jobs(base, settings: SweepSettings, storage: str, parent, invocation: str, workers: int):
    """One job per worker process; `parent` is the parent run's info."""
    from gated_bert import tracking

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
