"""User-facing errors: one line, exit code 2, no traceback (see ``hrbench.cli.main``)."""

from __future__ import annotations


class HrbenchError(Exception):
    """An error caused by the user's input (bad name, value, file). Printed as one line."""

    exit_code = 2


class ConfigError(HrbenchError, ValueError):
    """An out-of-range or malformed hyper-parameter; the message names the parameter."""


class DataError(HrbenchError):
    """A missing, corrupt or wrong-schema data file; the message names the file."""


class CheckpointError(HrbenchError):
    """A corrupt, foreign or mismatched checkpoint; the message names the file."""
