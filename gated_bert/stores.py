"""Can a store be reached? Quick probes for the services a run talks to.

MLflow retries an unreachable tracking server or database for minutes, and
Optuna's RDB storage raises deep inside SQLAlchemy. These probes answer in
seconds, with a reason that never shows the URL's password, so that the
commands can stop with one line (exit code 2) before they write anything.
"""

from __future__ import annotations

from gated_bert.errors import DataError, redact

TIMEOUT_SECONDS = 5.0
POSTGRES_HINT = 'pip install -e ".[postgres]"'


def http_problem(url: str, timeout: float = TIMEOUT_SECONDS) -> str | None:
    """Why an http(s) server at `url` gives no answer on /health (None: it answers, any status)."""
    import urllib.error
    import urllib.parse
    import urllib.request

    parts = urllib.parse.urlsplit(url)
    netloc = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)  # no credentials
    health = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/") + "/health", "", ""))
    try:
        with urllib.request.urlopen(health, timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None
    except (urllib.error.URLError, OSError, ValueError) as err:
        return str(getattr(err, "reason", err))


CREDENTIALS_HINT = "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to a user of that server"


def credentials_problem(url: str, timeout: float = TIMEOUT_SECONDS) -> str | None:
    """Why the MLflow server at `url` refuses this process (None: it lets it read experiments).

    Sends the credentials MLflow's client would send (MLFLOW_TRACKING_USERNAME and
    MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN) to one cheap REST call.
    """
    import base64
    import os
    import urllib.error
    import urllib.parse
    import urllib.request

    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    headers = {}
    if user and password:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    elif token:
        headers["Authorization"] = f"Bearer {token}"
    probe = url.rstrip("/") + "/api/2.0/mlflow/experiments/search?max_results=1"
    try:
        with urllib.request.urlopen(urllib.request.Request(probe, headers=headers), timeout=timeout):
            return None
    except urllib.error.HTTPError as err:
        if err.code == 401 and not headers:
            return f"the server asks for credentials (HTTP 401); {CREDENTIALS_HINT}"
        who = f"user {user!r}" if user and password else "the token in MLFLOW_TRACKING_TOKEN"
        if err.code == 401:
            return f"the server refused {who} (HTTP 401: wrong user or password); {CREDENTIALS_HINT}"
        if err.code == 403:
            return f"{who} may not read experiments (HTTP 403); ask the server's admin for permission"
        return None  # other answers: MLflow's own client reports them
    except (urllib.error.URLError, OSError, ValueError) as err:
        return str(getattr(err, "reason", err))


def check_tracking_server(uri: str) -> None:
    """Raise DataError, in seconds, if the MLflow server at http(s) `uri` does not answer or
    refuses this process's credentials (MLflow's client would retry for minutes).

    Needs neither mlflow nor TensorFlow: commands call it before importing them."""
    fix = "or set MLFLOW_TRACKING_URI to a reachable store (or sqlite:///mlflow.db)"
    problem = http_problem(uri)
    if problem is not None:
        raise DataError(
            f"cannot reach the MLflow tracking server {redact(uri)} ({problem}); "
            f"start it (mlflow server --host 127.0.0.1) {fix}"
        )
    problem = credentials_problem(uri)
    if problem is not None:
        raise DataError(f"MLflow tracking server {redact(uri)}: {problem}")


def check_environment_tracking_server() -> None:
    """`check_tracking_server` for MLFLOW_TRACKING_URI when it names an http(s) server."""
    import os

    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if uri.startswith(("http://", "https://")):
        check_tracking_server(uri)


def is_database_server(url: str) -> bool:
    """A SQLAlchemy URL of a database server (PostgreSQL, MySQL, SQL Server), not a file."""
    return url.split("://", 1)[0].split("+", 1)[0] in ("postgresql", "postgres", "mysql", "mssql")


def database_problem(url: str, timeout: float = TIMEOUT_SECONDS) -> str | None:
    """Why the database at SQLAlchemy `url` cannot be opened (None: it can).

    A missing driver names the package to install; a server that is down or
    refuses the credentials gives the driver's reason, within `timeout`.
    """
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    scheme = url.split("://", 1)[0]
    connect_args = (
        {"connect_timeout": max(1, int(timeout))} if scheme.startswith(("postgres", "mysql")) else {}
    )
    engine = None
    try:
        engine = sqlalchemy.create_engine(url, connect_args=connect_args, poolclass=NullPool)
        with engine.connect():
            return None
    except ImportError as err:
        hint = POSTGRES_HINT if scheme.startswith("postgres") else "install the database's driver"
        return f"no database driver ({err}); {hint}"
    except Exception as err:  # OperationalError and kin: server down, bad credentials, bad URL
        return describe(err, url)
    finally:
        if engine is not None:
            engine.dispose()


def describe(err: BaseException, url: str) -> str:
    """`Type: message` on one line (SQLAlchemy's "Background on" link cut), without the URL's password."""
    first = " ".join(str(err).split("(Background on")[0].split())
    return f"{type(err).__name__}: {first[:200].replace(url, redact(url))}"
