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


class DiskFullError(HrbenchError):
    """The file system filled up while hrbench wrote a file (ENOSPC / EDQUOT); the message names the file,
    which is left as it was before (:func:`hrbench.fsutil.atomic_write`)."""


class DivergedError(HrbenchError):
    """A training run whose loss or validation metric became non-finite (a too-high ``--lr``, say).

    Raised on every rank together (the value is all-reduced first), so only rank 0 prints it; the
    last good checkpoint and ``best.pt`` are left as they were. Exit code 3.
    """

    exit_code = 3
    all_ranks = True


def one_line(err: BaseException) -> str:
    """The message of ``err`` as one line. A DataLoader worker re-raises an error with the whole
    worker traceback in its message ("Caught DataError in DataLoader worker process 0. Original
    Traceback ..."); the original one-line message is its last line, after ``module.Class: ``."""
    text = str(err).strip()
    if "Original Traceback" not in text:
        return text.splitlines()[0] if text else type(err).__name__
    last = [ln for ln in text.splitlines() if ln.strip()][-1].strip()
    head, sep, rest = last.partition(": ")
    return rest if sep and head.replace(".", "").replace("_", "").isalnum() else last


def brief(err: BaseException) -> str:
    """``Type: first line of the message`` (``Type:`` alone for an empty message): how a failure that is
    shown beside other results (a table row, a failed engine or check) is named in one line."""
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}".rstrip()
