"""Where a sweep's study lives (an Optuna storage) and the names its processes share.

The runner, the workers' objective and the supervisor all import from here, never from
each other.
"""

from __future__ import annotations

import os
from pathlib import Path

from gated_bert import stores
from gated_bert.errors import ConfigError, redact

INVOCATION_TAG = "gated_bert.sweep_invocation"  # trial runs: which invocation ran them
WORKER_PID = "worker_pid"  # trial user attr: which process runs the trial
INTERRUPTED = "interrupted (Ctrl-C or SIGTERM)"  # fail_reason of a trial stopped by an interrupt


STORAGE_ENV = "GATED_BERT_STORAGE"  # the storage URL, kept off command lines (its password)


def resolve_storage(spec: str | None) -> str:
    """`--storage` if given, else $GATED_BERT_STORAGE, else the journal file next to the MLflow store."""
    return spec or os.environ.get(STORAGE_ENV) or str(default_storage_path())


def default_storage_path() -> Path:
    """A journal file next to the MLflow store (sqlite file's folder, else cwd)."""
    from gated_bert.tracking import sqlite_path

    database = sqlite_path(os.environ.get("MLFLOW_TRACKING_URI", ""))
    folder = database.resolve().parent if database is not None else Path.cwd()
    return folder / "optuna_journal.log"


def make_storage(spec: str):
    """An Optuna storage: an RDB URL as is, anything else a journal file path.

    A missing database driver or an unreachable server raises ConfigError naming
    the URL without its password.
    """
    import optuna
    from optuna.storages.journal import JournalFileBackend

    if "://" not in spec:
        folder = Path(spec).resolve().parent
        if not folder.is_dir():
            raise ConfigError(
                f"--storage {redact(spec)}: folder {str(folder)!r} does not exist; give a journal file "
                "in an existing folder or a database URL such as postgresql://user:password@host/db"
            )
        try:
            return optuna.storages.JournalStorage(JournalFileBackend(spec))
        except OSError as err:
            raise ConfigError(
                f"--storage {redact(spec)}: cannot write the journal file ({err.strerror or err}); "
                "give a writable path"
            ) from None
    problem = stores.database_problem(spec)
    if problem is None:
        try:
            return _rdb_storage(spec)
        except Exception as err:  # a database Optuna cannot use
            problem = stores.describe(err, spec)
    raise ConfigError(
        f"--storage {redact(spec)}: cannot open the database ({problem}); check that the server is up "
        "and the URL is right"
    )


def _rdb_storage(spec: str, attempts: int = 5):
    """Optuna's RDB storage; two machines creating its tables in an empty database at once
    collide (a duplicate key or table): the loser waits a moment and finds them made."""
    import time

    import optuna
    import sqlalchemy.exc

    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(spec)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            if attempt == attempts - 1:
                raise
            time.sleep(1 + attempt)
