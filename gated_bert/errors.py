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
