"""Exceptions that mean "the user asked for something we cannot do".

The CLI turns every `GatedBertError` into a one-line message and exit code 2;
anything else is a bug and keeps its traceback.
"""


class GatedBertError(ValueError):
    """Base class for bad input: a config value, a data file, a missing path."""


class ConfigError(GatedBertError):
    """A configuration value is out of range or unknown."""


class DataError(GatedBertError):
    """A data source is missing, unreachable or malformed."""


def redact(url: str) -> str:
    """A URL without its password (safe to print and log)."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url
