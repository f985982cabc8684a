"""Can a store be reached? Quick probes for the services a run talks to.

MLflow retries an unreachable tracking server or database for minutes, and
Optuna's RDB storage raises deep inside SQLAlchemy. These probes answer in
seconds, with a reason that never shows the URL's password, so that the
commands can stop with one line (exit code 2) before they write anything.
"""

from __future__ import annotations

from gated_bert.errors import redact

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
