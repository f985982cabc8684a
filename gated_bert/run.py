"""`train(config)`: one tracked training run, from data to MLflow model.

The CLI, the MLproject entry point, sweeps, experiments jobs and tests all
call this. It reads like the README: prepare the data, open the run, fit,
write the results, log them.
"""

from __future__ import annotations

import contextlib
import logging
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from gated_bert import metric_names as names
from gated_bert.config import GatedBertConfig
from gated_bert.errors import DataError

log = logging.getLogger("gated_bert")
LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"
LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}


@dataclass
class RunResult:
    rows: list[dict[str, float]]
    run_id: str
    results_dir: Path
    final: dict[str, float]


def configure_logging(verbose: int) -> None:
    """Console logging for a command-line process (its edge calls this, never the library)."""
    logging.basicConfig(format=LOG_FORMAT, level=LEVELS[verbose])
    log.setLevel(LEVELS[verbose])


@contextlib.contextmanager
def run_log_file(path: Path, verbose: int) -> Iterator[None]:
    """Copy the package's log records to the run's log file; handler and level restored after."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    level = log.level
    if level == logging.NOTSET or level > LEVELS[verbose]:
        log.setLevel(LEVELS[verbose])
    log.addHandler(handler)
    try:
        yield
    finally:
        log.removeHandler(handler)
        handler.close()
        log.setLevel(level)


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for name in ("tensorflow", "keras", "mlflow", "tokenizers", "numpy", "gated-bert"):
        with contextlib.suppress(md.PackageNotFoundError):
            out[name] = md.version(name)
    return out


RUN_CONFIG = "run_config.json"  # the config a run started with (artifact), for --resume
PATHS_TAG = "gated_bert.paths"  # where the run writes (tag, JSON), for --resume
RUN_TOKENIZER = "tokenizer.json"  # the run's tokenizer, in its checkpoints folder, for --resume
RESUMED_TAG = "resumed_from_epoch"


@dataclass(frozen=True)
class Resumption:
    """An interrupted run to continue: its MLflow run, its paths, its newest checkpoint (or None)."""

    run_id: str
    paths: object  # reporting.RunPaths
    checkpoint: Path | None


def train(
    config: GatedBertConfig,
    run_name: str | None = None,
    nested: bool = False,
    tags: dict[str, str] | None = None,
    on_epoch_end: Callable[[dict], None] | None = None,
    parent_run_id: str | None = None,
    experiment_id: str | None = None,
    finished_on: tuple = (),
    progress_file: Path | None = None,
    resume: Resumption | None = None,
    keep_checkpoints: bool = True,
) -> RunResult:
    """Train, evaluate each epoch, write results and log everything to MLflow.

    Bad input (config, data) raises a GatedBertError before any file or run is created.

    Args:
        config: the run's configuration.
        run_name: MLflow run name (default: method_task).
        nested: start the run nested under the active run (sweeps, experiments).
        tags: extra MLflow tags.
        on_epoch_end: optional `fn(row)` after each epoch (e.g. Optuna reporting).
        parent_run_id: make the run a child of this run (from another process).
        experiment_id: the parent's experiment.
        finished_on: exceptions that end the run FINISHED (a pruned trial).
        progress_file: live progress JSON for a parent process (experiments).
        resume: continue this interrupted run (see `gated_bert.resume`).
        keep_checkpoints: False deletes the checkpoints of a run that is done (sweep trials).
    """
    from gated_bert import reporting, tracking

    started, given = time.time(), config
    config, prepared, teacher = _resolved_with_data(given)  # errors before any output
    timings = {"data_seconds": time.time() - started}
    _log_data(prepared)
    paths = _run_folders(config, prepared, resume)
    run_name = run_name or f"{config.method_name}_{config.task}"
    opened = (config, run_name, nested, _run_tags(config, tags), parent_run_id, experiment_id, finished_on)
    with (
        run_log_file(paths.log_file, config.verbose),
        tracking.start_run(*opened, resume_run_id=resume.run_id if resume else None) as run,
    ):
        _record_start(config, given, paths, resume)
        prepared = _distil_from(teacher, prepared, paths, resume)
        fit_started = time.time()
        hook, resume_from = _epoch_end(on_epoch_end), (resume.checkpoint if resume else None)
        done = _done(paths, keep_checkpoints)
        result = _fit(config, prepared, hook, paths, progress_file, resume_from, finished_on, done)
        timings["fit_seconds"] = time.time() - fit_started
        final = reporting.final_metrics(result.rows[-1])
        final.update(reporting.summary_metrics(result.rows, config, prepared.task.main_metric))
        metadata = _metadata(config, prepared, timings, final, run.info.run_id)
        metadata[names.TRAIN_PADDING_SHARE] = result.padding_share
        files = reporting.write_results(result.rows, result.classifier, prepared, config, paths, metadata)
        figures = {**final, **timings, names.TRAIN_PADDING_SHARE: result.padding_share}
        _log_results(config, paths, files, figures)
        done()
        log.info("finished: %s; results in %s", final, paths.results_dir)
        return RunResult(result.rows, run.info.run_id, paths.results_dir, final)


def _resolved_with_data(given: GatedBertConfig):
    """(the config resolved once: what is logged is what trains, the encoded data, the teacher or
    None). A setting no method default makes work is refused before the data is read, a teacher
    that does not fit the run before anything is written."""
    from gated_bert.data.glue import load_task
    from gated_bert.data.prepare import prepare_data
    from gated_bert.teacher import check_student, load_teacher
    from gated_bert.training.settings import resolved_config, training_config

    config = resolved_config(given)
    prepared = prepare_data(config, load_task(given.task, given.data_dir))
    config = training_config(config, prepared)
    teacher = load_teacher(config.teacher) if config.teacher else None
    if teacher is not None:
        check_student(teacher, config, prepared)
    return config, prepared, teacher


def _distil_from(teacher, prepared, paths, resume: Resumption | None):
    """With a teacher: log which one and its dev metrics (once), and give `prepared` its outputs for
    the training examples (computed once per run, kept beside the checkpoints)."""
    from gated_bert import tracking
    from gated_bert.teacher import dev_metrics, with_teacher_outputs

    if teacher is None:
        return prepared
    if resume is None:
        tracking.log_params({"teacher_source": teacher.source, "teacher_run_id": teacher.run_id or ""})
        tracking.log_metrics(dev_metrics(teacher, prepared))
    return with_teacher_outputs(teacher, prepared, paths.checkpoints_dir)


def _fit(config, prepared, hook, paths, progress_file, resume_from, finished_on: tuple, done):
    """`fit`; a run ended for good by one of `finished_on` (a pruned trial) is `done` too."""
    from gated_bert.training.fit import fit

    try:
        return fit(config, prepared, hook, paths.checkpoints_dir, progress_file, resume_from)
    except finished_on:
        done()
        raise


def _done(paths, keep_checkpoints: bool):
    """What a run that is over does to its checkpoints: nothing is left to resume, so they keep only
    their weights, or go altogether."""
    from gated_bert.training import checkpoint

    def done() -> None:
        if keep_checkpoints:
            checkpoint.drop_training_state(paths.checkpoints_dir)
        else:
            checkpoint.delete(paths.checkpoints_dir)

    return done


def _run_folders(config: GatedBertConfig, prepared, resume: Resumption | None):
    """The run's folders, made once the tracking store answers; a new run keeps its tokenizer."""
    from gated_bert import reporting, tracking

    paths = resume.paths if resume else reporting.RunPaths.for_config(config, _timestamp())
    tracking.check_tracking_store()  # before any folder is made
    if resume is None:
        tracking.check_experiment_access(config.effective_experiment_name)
    paths.make_dirs()
    if resume is None:
        _keep_tokenizer(prepared.tokenizer, paths)
    return paths


def _keep_tokenizer(tokenizer, paths) -> None:
    """Save the run's tokenizer beside its checkpoints: a resumed run encodes with the same one."""
    try:
        paths.checkpoints_dir.mkdir(parents=True, exist_ok=True)
        tokenizer.save(str(paths.checkpoints_dir / RUN_TOKENIZER))
    except OSError as err:
        raise DataError(
            f"cannot write {str(paths.checkpoints_dir)!r} ({err.strerror or err}); "
            "choose a writable --output-root"
        ) from None


def _timestamp() -> str:
    return datetime.now().strftime("%Y%m%d_%H%M%S_%f")


def _record_start(config: GatedBertConfig, given: GatedBertConfig, paths, resume: Resumption | None) -> None:
    """What a run records when it starts: config, paths, process; or, resumed, where it resumed.

    The params show the resolved `config`; `RUN_CONFIG` keeps the config as `given`, so that a
    resumed run resolves it the same way (an explicit vocab_size trains another tokenizer).
    """
    import os
    import socket

    from gated_bert import tracking
    from gated_bert.training import checkpoint
    from gated_bert.training.threads import intra_op_threads_in_effect

    process = {
        "gated_bert.pid": str(os.getpid()),
        "gated_bert.host": socket.gethostname(),
        "gated_bert.intra_op_threads": intra_op_threads_in_effect(),
    }
    if resume is None:
        tracking.log_config(config)
        tracking.log_params(_checkpoint_params(config))
        tracking.log_text(given.to_json(), RUN_CONFIG)
        tracking.set_tags({PATHS_TAG: paths.to_json(), **process})
        log.info("MLflow run started; config %s", config.to_json().replace("\n", ""))
        return
    done = checkpoint.read_state(resume.checkpoint) if resume.checkpoint else None
    tracking.set_tags({RESUMED_TAG: str(done.epoch if done else 0), **process})
    tracking.point_launched_run_to(resume.run_id)
    logged = set(tracking.metric_history(resume.run_id, names.TRAIN_LOSS))
    for row in done.rows if done else []:
        if int(row[names.EPOCH]) not in logged:  # committed to the checkpoint, killed before logging
            tracking.log_epoch(row)
    log.info("resuming run %s after epoch %d", resume.run_id, done.epoch if done else 0)


def _checkpoint_params(config: GatedBertConfig) -> dict[str, str]:
    """What an init_from run started from: the folder and a SHA-256 of its weights file (the
    architecture is in the config's params)."""
    from gated_bert.pretrained.checkpoint import weights_sha256
    from gated_bert.pretrained.resolve import checkpoint_of

    checkpoint = checkpoint_of(config)
    if checkpoint is None:
        return {}
    return {
        "init_from_folder": str(checkpoint.folder),
        "init_from_weights": checkpoint.weights_file.name,
        "init_from_sha256": weights_sha256(checkpoint.weights_file),
    }


def _run_tags(config: GatedBertConfig, tags: dict[str, str] | None) -> dict[str, str]:
    return {
        "method": config.method_name,
        "task": config.task,
        "model_size": config.model_label,
        "seed": str(config.seed),
        "end_sparsity": f"{config.end_sparsity:g}" if config.enable_pruning else "0",
        "distilled": "true" if config.teacher else "false",
        **(tags or {}),
    }


def _log_data(prepared) -> None:
    log.info(
        "%s: %d train / %s eval examples from %s",
        prepared.task.name,
        len(prepared.train),
        {k: len(v) for k, v in prepared.evals.items()},
        prepared.data.source,
    )


def _epoch_end(user_hook: Callable[[dict], None] | None) -> Callable[[dict], None]:
    """Log each epoch's row to MLflow and the log, then call the caller's hook."""
    from gated_bert import tracking

    def epoch_end(row: dict) -> None:
        tracking.log_epoch(row)
        shown = {k: round(v, 4) for k, v in row.items() if "/" not in k}
        log.info("epoch %d: %s", row[names.EPOCH], shown)
        if user_hook is not None:
            user_hook(row)

    return epoch_end


def _metadata(config, prepared, timings: dict[str, float], final: dict[str, float], run_id: str) -> dict:
    """The run's metadata JSON: resolved config, versions, data, timings, final metrics."""
    return {
        "config": config.resolved_dict(),
        "versions": _versions(),
        "data_source": prepared.data.source,
        "num_train_examples": len(prepared.train),
        "num_eval_examples": {k: len(v) for k, v in prepared.evals.items()},
        "tokenizer_vocab_size": prepared.tokenizer.get_vocab_size(),
        "timings": dict(timings),
        "final_metrics": final,
        "main_metric": names.eval_metric(prepared.task.main_metric),
        "mlflow_run_id": run_id,
    }


def _log_results(config, paths, files, figures: dict[str, float]) -> None:
    """Everything a finished run logs once: final metrics, results files, the model, the log."""
    from gated_bert import tracking

    tracking.log_metrics(figures)
    tracking.log_artifacts("results", [*paths.result_files(), files.config])
    tracking.log_artifacts("tokenizer", [files.tokenizer])
    tracking.log_model(files.model, files.tokenizer, files.config, config)
    tracking.log_artifacts("logs", [paths.log_file])
