"""MLflow runs: open and end them with the right status, log params, metrics and files.

The tracking URI comes from MLFLOW_TRACKING_URI, else MLflow's own default
(the embedded sqlite store `mlflow.db` in the working directory).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import signal
import threading
import time
from pathlib import Path

import mlflow

from gated_bert.config import GatedBertConfig
from gated_bert.errors import DataError, redact
from gated_bert.interrupts import raises_interrupt

log = logging.getLogger("gated_bert")

SQLITE_PREFIX = "sqlite:///"


# -------------------------------------------------------------- tracking URI
def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI (None for any other URI)."""
    return Path(uri[len(SQLITE_PREFIX) :]) if uri.startswith(SQLITE_PREFIX) else None


def absolute_tracking_uri(uri: str | None = None) -> str:
    """The tracking URI (default: the current one) with a relative sqlite path made absolute.

    Child processes that run in other folders need it.
    """
    uri = uri or mlflow.get_tracking_uri()
    path = sqlite_path(uri)
    if path is not None and not path.is_absolute():
        return SQLITE_PREFIX + str(path.resolve())
    return uri


def check_tracking_store(uri: str | None = None) -> None:
    """Raise DataError, in seconds, if the tracking store cannot be used: an http(s) server that
    does not answer (MLflow itself would retry for minutes), a database without its driver or
    server, an unknown scheme."""
    from gated_bert import stores

    uri = uri or mlflow.get_tracking_uri()
    fix = "or set MLFLOW_TRACKING_URI to a reachable store (or sqlite:///mlflow.db)"
    if uri.startswith(("http://", "https://")):
        stores.check_tracking_server(uri)
        return
    if uri.startswith(("sqlite:", "file:")) or "://" not in uri:
        return  # a local file: MLflow creates it with the run
    problem = stores.database_problem(uri) if stores.is_database_server(uri) else None
    if problem is None:
        try:
            mlflow.MlflowClient(uri).search_experiments(max_results=1)
        except Exception as err:  # an unknown scheme, a database MLflow cannot use
            problem = stores.describe(err, uri)
    if problem is not None:
        raise DataError(f"cannot open the MLflow tracking store {redact(uri)} ({problem}); fix it {fix}")


def open_sqlite_store(uri: str | None = None) -> None:
    """Open (the first time: create) a `sqlite:///` store safely beside other processes; raise
    DataError if it cannot be opened. Other URIs: nothing to do."""
    uri = uri or mlflow.get_tracking_uri()
    if uri.startswith(SQLITE_PREFIX):
        problem = _open_sqlite_store(uri)
        if problem is not None:
            raise DataError(
                f"cannot open the MLflow tracking store {redact(uri)} ({problem}); fix it or set "
                "MLFLOW_TRACKING_URI to another store"
            )


def _open_sqlite_store(uri: str) -> str | None:
    """Open a sqlite store (creating its tables the first time) under a lock on its folder.

    Processes that open a new sqlite store at the same moment race on creating
    its tables (alembic's "Online migration expected to match one row"; four
    `gated-bert train` started together in a fresh folder: 0-1 of 4 survived).
    The first creates them, the others wait and find them; MLflow keeps the
    opened store for the rest of the process. Returns a problem, or None.
    """
    from gated_bert import stores

    folder = sqlite_path(uri).parent.resolve()
    if not folder.is_dir():
        return f"folder {str(folder)!r} does not exist"
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        mlflow.MlflowClient(uri).search_experiments(max_results=1)
    except Exception as err:  # a file that is not a database, a database of a newer MLflow
        return stores.describe(err, uri)
    finally:
        os.close(descriptor)  # releases the lock
    return None


def use_tracking_uri(uri: str) -> None:
    """Point this process at `uri` (worker processes, at their entry point)."""
    mlflow.set_tracking_uri(uri)


# ---------------------------------------------------------------- run status
@contextlib.contextmanager
def _interrupt_watch():
    """While a run is open, remember a SIGINT/SIGTERM that arrives, and restore the handlers after.

    Libraries sometimes turn a KeyboardInterrupt raised inside them into their
    own error; the event still lets the run end KILLED rather than FAILED. Only
    signals that already raise KeyboardInterrupt (Python's default for SIGINT;
    the command line's `interrupts.interrupt_once`) are watched; nothing else changes.
    """
    interrupted = threading.Event()
    previous: dict[int, object] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            current = signal.getsignal(signum)
            if raises_interrupt(current) or getattr(current, "_run_watch", False):
                previous[signum] = current
                signal.signal(signum, _watching_handler(interrupted, current))
    try:
        yield interrupted
    finally:
        for signum, handler in previous.items():
            if signal.getsignal(signum) is not signal.SIG_IGN:  # disarmed by `interrupt_once`: stays so
                signal.signal(signum, handler)


def _watching_handler(interrupted: threading.Event, outer):
    def handler(signum, frame):
        interrupted.set()
        outer(signum, frame)  # an enclosing run's watcher, or Python's KeyboardInterrupt

    handler._run_watch = True
    return handler


@contextlib.contextmanager
def start_run(
    config: GatedBertConfig,
    run_name: str | None = None,
    nested: bool = False,
    tags=None,
    parent_run_id: str | None = None,
    experiment_id: str | None = None,
    finished_on: tuple[type[BaseException], ...] = (),
    resume_run_id: str | None = None,
):
    """An MLflow run that ends FINISHED, FAILED (error) or KILLED (Ctrl-C/SIGTERM).

    With `resume_run_id` the existing run is continued (RUNNING again).

    Under `mlflow run` (MLFLOW_RUN_ID set) the run that MLflow created is used,
    in the experiment given to `mlflow run` (--experiment-name). With
    `parent_run_id` (another process's run) the run is created as its child in
    `experiment_id`. Exceptions in `finished_on` (e.g. a pruned trial) end the
    run FINISHED and propagate.
    """
    check_tracking_store()
    open_sqlite_store()  # runs started together in a fresh folder must not race on creating it
    tags = dict(tags or {})
    before = mlflow.active_run()
    with _interrupt_watch() as interrupted:
        try:
            if resume_run_id:
                run = mlflow.start_run(run_id=resume_run_id)
            else:
                run = _open_run(config, run_name, nested, tags, parent_run_id, experiment_id)
            yield run
        except finished_on:
            _end_own_run(before, "FINISHED")
            raise
        except (KeyboardInterrupt, SystemExit):
            _end_own_run(before, "KILLED")
            raise
        except BaseException:
            _end_own_run(before, "KILLED" if interrupted.is_set() else "FAILED")
            raise
        else:
            mlflow.end_run(status="FINISHED")


RESUMES_TAG = "gated_bert.resumes"
LAUNCHED_TAG = "gated_bert.launched_run"  # gated-bert took over the run `mlflow run` created
REFUSED_TAG = "gated_bert.refused"  # the one-line error of input refused under `mlflow run`


def point_launched_run_to(resumed_run_id: str) -> None:
    """Under `mlflow run -P resume=ID`, MLflow has created a new run before our code ran: tag it
    and note that the training continues in run `resumed_run_id` (MLflow ends it itself)."""
    launched = os.environ.get("MLFLOW_RUN_ID")
    if not launched or launched == resumed_run_id:
        return
    note = f"This `mlflow run` resumed run {resumed_run_id}: its epochs, metrics and model are logged there."
    client = mlflow.MlflowClient()
    client.set_tag(launched, RESUMES_TAG, resumed_run_id)
    client.set_tag(launched, "mlflow.note.content", note)


def end_active_runs(status: str) -> None:
    """End every run still active in this process with `status` (an interrupted process, before
    it exits: MLflow's exit hook would end them FINISHED)."""
    while mlflow.active_run() is not None:
        mlflow.end_run(status=status)


def mark_refused_launched_run(message: str) -> None:
    """Under `mlflow run`, input refused before anything was logged: the run MLflow created for it
    says why (its note and the tag `gated_bert.refused`); MLflow ends it FAILED itself."""
    launched = os.environ.get("MLFLOW_RUN_ID")
    if not launched:
        return
    client = mlflow.MlflowClient()
    try:
        run = client.get_run(launched)
        if run.info.status == "RUNNING" and not ({LAUNCHED_TAG, RESUMES_TAG} & set(run.data.tags)):
            client.set_tag(launched, REFUSED_TAG, message[:5000])
            client.set_tag(launched, "mlflow.note.content", f"gated-bert refused its input: {message}")
    except Exception as err:  # the store is what failed: nothing more to say there
        log.debug("could not mark launched run %s: %s", launched, err)


def _open_run(config, run_name, nested, tags, parent_run_id, experiment_id):
    launched = bool(os.environ.get("MLFLOW_RUN_ID")) and not nested and mlflow.active_run() is None
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
        active = mlflow.active_run()  # in-process parent (n_jobs=1 tests, notebooks)
        return mlflow.start_run(
            experiment_id=experiment_id, run_name=run_name, tags=tags, nested=active is not None
        )
    if launched:
        run = mlflow.start_run(tags={**tags, LAUNCHED_TAG: "true"})
        if run_name:
            mlflow.set_tag("mlflow.runName", run_name)
        if config is not None and config.experiment_name is None and run.info.experiment_id == "0":
            log.info(
                "mlflow run put this run in experiment 'Default'; pass --experiment-name %s to mlflow run "
                "for one experiment per task",
                config.effective_experiment_name,
            )
        return run
    _set_experiment(config.effective_experiment_name)
    return mlflow.start_run(run_name=run_name, nested=nested, tags=tags)


# Seconds between the tries of a refused experiment. MLflow's auth app grants an experiment's
# creator its permission in a handler after the create request, so for a moment another client of
# the same user (a second sweep worker starting at once) is refused an experiment it may use.
REFUSAL_RETRY_SECONDS = (0.2, 0.5, 1.0)


def check_experiment_access(name: str) -> None:
    """Raise DataError if a tracking server refuses this client experiment `name` (HTTP 403:
    another user's experiment), before a run writes anything. A missing one is fine."""
    if mlflow.get_tracking_uri().startswith(("http://", "https://")) and "MLFLOW_RUN_ID" not in os.environ:
        _with_experiment_access(name, lambda: mlflow.get_experiment_by_name(name))


def _set_experiment(name: str) -> None:
    _with_experiment_access(name, lambda: mlflow.set_experiment(name))


def _with_experiment_access(name: str, call):
    """`call()`; a server's refusal of experiment `name`, still there after the retries
    (`REFUSAL_RETRY_SECONDS`), as one line (DataError)."""
    from mlflow.exceptions import MlflowException

    for wait in (*REFUSAL_RETRY_SECONDS, None):
        try:
            return call()
        except MlflowException as err:
            if err.error_code != "PERMISSION_DENIED" and "403" not in str(err):
                raise
            if wait is not None:
                time.sleep(wait)
    user = os.environ.get("MLFLOW_TRACKING_USERNAME", "this client")
    raise DataError(
        f"experiment {name!r}: the tracking server does not let {user!r} use it (HTTP 403); "
        "ask its owner or the server's admin for permission, or pass another --experiment-name"
    )


def _end_own_run(before, status: str) -> None:
    """End the run this context started, even if it failed half-way through starting."""
    current = mlflow.active_run()
    if current is not None and (before is None or current.info.run_id != before.info.run_id):
        mlflow.end_run(status=status)


# ------------------------------------------------------------------- logging
def log_params(params: dict) -> None:
    mlflow.log_params({k: "" if v is None else v for k, v in params.items()})


def log_config(config: GatedBertConfig) -> None:
    """Log the resolved config as params.

    Params that `mlflow run` already logged from -P keep their raw value; where
    the resolved value differs (auto, capped, reformatted) it goes under
    `resolved.<name>`, since MLflow params cannot change.
    """
    existing = mlflow.active_run().data.params
    params = {}
    for key, value in config.resolved_dict().items():
        text = "" if value is None else json.dumps(value) if isinstance(value, list) else str(value)
        if key not in existing:
            params[key] = text
        elif existing[key] != text:
            params[f"resolved.{key}"] = text
    mlflow.log_params(params)


def log_epoch(row: dict[str, float]) -> None:
    """One epoch's row as metrics at step = the 1-based epoch (non-finite values skipped)."""
    metrics = {k: v for k, v in row.items() if k != "epoch" and math.isfinite(v)}
    mlflow.log_metrics(metrics, step=int(row["epoch"]))


def log_metrics(values: dict[str, float]) -> None:
    """Run-level metrics (no step): final_* values, timings, counts; non-finite values skipped."""
    mlflow.log_metrics({k: float(v) for k, v in values.items() if math.isfinite(v)})


def set_tags(tags: dict[str, str]) -> None:
    mlflow.set_tags(tags)


def log_artifacts(directory: str, files: list[Path]) -> None:
    """Log the files that exist under the run's artifact folder `directory`."""
    for path in files:
        if Path(path).exists():
            mlflow.log_artifact(str(path), artifact_path=directory)


def log_folder(folder: Path, directory: str) -> None:
    """Log everything in `folder` under the run's artifact folder `directory`."""
    mlflow.log_artifacts(str(folder), artifact_path=directory)


def log_text(text: str, artifact_file: str) -> None:
    mlflow.log_text(text, artifact_file)
