"""Run folders and the runs registry.

Every training run lives in one folder ``<out>/<name>/`` (``out`` defaults to ``runs``; the
default name is ``<arch>-<dataset>-<H>x<W>-<YYYYmmdd-HHMMSS>``)::

    config.json            the fully resolved configuration (recipe + user overrides)
    metrics.jsonl          one JSON object per event: {"event": "train"|"val"|"epoch"|"resume"|"diverged", ...}
    log.txt                human-readable log
    checkpoints/last.pt    written atomically at the end of every epoch (resume point)
    checkpoints/best.pt    the checkpoint with the best validation metric so far
    summary.json           the run's summary (schema below), rewritten after every epoch

The folder is claimed when the run starts: created atomically (a second run with the same name
is refused), marked as hrbench's (``.hrbench-run``, written at the claim) and locked (``.lock``, an
``flock`` the kernel drops when the process dies) for as long as a process trains in it. A run that
fails before its first checkpoint removes it again (and any parent folder it created); one killed
before then leaves a marked folder without ``last.pt`` that the next run with the same name clears.
A folder without the marker is never cleared (it may be the user's project, or the data set): it is
refused. Resuming removes the partial ``.*.tmp`` files of a save that was killed.

``summary.json`` schema (``format: "hrbench-run-v1"``), read by :func:`list_runs`:

=================  ================================================================================
key                value
=================  ================================================================================
format             ``"hrbench-run-v1"``
name, run_dir      folder name and path
status             ``"running"`` (also a run that was killed; resume it), ``"interrupted"`` (stopped by
                   Ctrl-C or SIGTERM after a checkpoint; resume it) or ``"finished"``
arch               canonical registry name; ``overrides``: model hyper-parameter overrides (dict)
dataset            a registered dataset name (``"coco"``, ``"mpii"``); ``input``: [H, W]; ``keypoints``: K
params             number of model parameters
epochs             planned epochs; ``epochs_done``: completed epochs; ``iterations``: optimiser steps
seed, world_size   seed and number of processes; ``total_batch``: samples per optimiser step
lr                 resolved base learning rate; ``recipe``: the family recipe's source
metric             name of the selection metric (``"AP"`` on COCO, ``"PCKh"`` on MPII)
final              metrics of the last validation: {"epoch", "val_loss", <metric>, ..., "box_source",
                   "flip", "input"} (every metric key evaluation returns, x100 scale as it returns)
best               the validation with the best ``metric``: same keys as ``final``; None until then
checkpoints        {"last": path, "best": path or None}
train_time_s       wall-clock seconds spent training (all invocations)
created, updated   ISO-8601 UTC time stamps
stack              the software stack (:func:`hrbench.stack.software_stack`): hrbench, torch, cuda, cudnn,
                   device, precision, threads, world_size, python, git_commit, git_dirty
=================  ================================================================================
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import shutil
from pathlib import Path
from typing import Any

from hrbench.errors import ConfigError, DataError, DiskFullError
from hrbench.fsutil import FULL, FolderLock, remove_stale_temporaries, write_json_atomic, write_text_atomic

SUMMARY_FORMAT = "hrbench-run-v1"
#: Written into a run folder when hrbench creates it: the proof that hrbench may clear it.
MARKER = ".hrbench-run"


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_run_name(arch: str, dataset: str, input_hw: tuple[int, int]) -> str:
    """``<arch>-<dataset>-<H>x<W>-<timestamp>``."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{arch}-{dataset}-{input_hw[0]}x{input_hw[1]}-{stamp}"


class RunDir:
    """Paths and writers of one run folder; the folder itself appears with :meth:`materialize`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.created_here = False
        self._pending: list[tuple[Path, str]] = []
        self._live = self.path.is_dir()
        self._lock = FolderLock(self.path)
        self._created_parents: list[Path] = []

    def claim_new(self) -> list[str]:
        """Take the folder for a new run: create it atomically, mark it (:data:`MARKER`) and lock it.
        A folder that exists is refused, unless it is what a run killed before its first checkpoint
        left (hrbench's marker, no ``checkpoints/last.pt``, nobody holding it): that is cleared and
        taken. Returns notes."""
        notes: list[str] = []
        missing = [p for p in self.path.parents if not p.exists()]  # removed again by discard_if_new
        locked = False
        try:
            self.path.mkdir(parents=True)
            self.created_here = True
            self._created_parents = missing
        except FileExistsError:
            if not self.path.is_dir() or self.path.is_symlink():
                raise ConfigError(f"run folder {self.path} exists and is not a folder") from None
            if not (self.path / MARKER).is_file() and not self._lock.locked_by_other():
                raise ConfigError(f"run folder {self.path} already exists and hrbench did not create it (no "
                                  f"{MARKER}); choose another --name or --out - hrbench never clears a folder "
                                  "it did not make") from None
            self._lock.acquire()  # refuses a folder another live process is using
            locked = True
            if self.last.exists():
                self._lock.release()
                raise ConfigError(f"run folder {self.path} already exists; pass --resume to continue it "
                                  "or choose another --name") from None
            for child in self.path.iterdir():
                if child.name not in (".lock", MARKER):
                    shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
            notes.append(f"cleared {self.path}: a run killed before its first checkpoint left it")
            self.created_here = True
        except OSError as exc:  # a full disk, say: the parents made on the way are removed again
            for parent in missing:
                with contextlib.suppress(OSError):
                    parent.rmdir()
            if exc.errno in FULL:
                raise DiskFullError(f"no space left on device writing {self.path}") from None
            raise
        try:
            if not locked:
                self._lock.acquire()
            write_text_atomic(self.path / MARKER, "a run folder hrbench created (hrbench may clear it before "
                                                  "its first checkpoint)\n")
            self.materialize()  # log.txt / metrics.jsonl are written as they happen from here on
        except BaseException as exc:  # a full disk, a signal: no half-claimed folder, no lock held
            self.discard_if_new()
            self._lock.release()
            if isinstance(exc, OSError) and exc.errno in FULL:
                raise DiskFullError(f"no space left on device writing {exc.filename or self.path}") from None
            raise
        return notes

    def claim_existing(self) -> list[str]:
        """Lock the folder of a run to resume, delete the temporary files a killed checkpoint write left
        behind and cut a line a killed append left half-written (so what is appended next stays a line
        of its own). Returns notes."""
        self._lock.acquire()
        self._live = True
        stale = remove_stale_temporaries(self.path / "checkpoints") + remove_stale_temporaries(self.path)
        notes = [f"removed {len(stale)} partial file(s) a killed save left ({', '.join(p.name for p in stale)})"] \
            if stale else []
        for path in (self.metrics_path, self.log_path):
            if _cut_torn_line(path):
                notes.append(f"cut the half-written last line of {path.name}")
        return notes

    def release(self) -> None:
        self._lock.release()

    def mark_interrupted(self) -> bool:
        """Set ``summary.json``'s status to ``"interrupted"`` (a run stopped by Ctrl-C or SIGTERM: the
        summary of its last checkpoint, resumable). False when there is no summary yet."""
        if not self.summary_path.exists():
            return False
        summary = read_summary(self.summary_path)
        summary.update(status="interrupted", updated=now_iso())
        write_json_atomic(self.summary_path, summary)
        return True

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def summary_path(self) -> Path:
        return self.path / "summary.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def log_path(self) -> Path:
        return self.path / "log.txt"

    @property
    def last(self) -> Path:
        return self.path / "checkpoints" / "last.pt"

    @property
    def best(self) -> Path:
        return self.path / "checkpoints" / "best.pt"

    def materialize(self) -> None:
        """Create the folder (once), remember whether this process created it, and flush the
        log lines written before it existed."""
        if not self.path.exists():
            self.created_here = True
        (self.path / "checkpoints").mkdir(parents=True, exist_ok=True)
        self._live = True
        pending, self._pending = self._pending, []
        for path, line in pending:
            self._write(path, line)

    def _write(self, path: Path, line: str) -> None:
        if not self._live:
            self._pending.append((path, line))
            return
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        except OSError as exc:
            if exc.errno in FULL:
                raise DiskFullError(f"no space left on device writing {path}") from None
            raise

    def discard_if_new(self) -> None:
        """Remove the folder if this process created it and it holds no checkpoint yet."""
        if self.created_here and self.path.exists() and not self.last.exists():
            shutil.rmtree(self.path)
            for parent in self._created_parents:  # innermost first; only if still empty
                if parent.exists() and not any(parent.iterdir()):
                    parent.rmdir()

    def append_metrics(self, event: dict[str, Any]) -> None:
        """One line of ``metrics.jsonl`` (kept in memory until the folder exists)."""
        try:  # strict JSON, as every file hrbench writes (a non-finite value stops a run before it is logged)
            line = json.dumps(event, default=str, allow_nan=False)
        except ValueError:
            raise DataError(f"refusing to write a non-finite number into {self.metrics_path}: {event}") from None
        self._write(self.metrics_path, line)

    def append_log(self, line: str) -> None:
        """One line of ``log.txt`` (kept in memory until the folder exists)."""
        self._write(self.log_path, line.rstrip("\n"))


def _cut_torn_line(path: Path) -> bool:
    """Truncate ``path`` after its last newline when it does not end with one; True if it did not."""
    if not path.exists():
        return False
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return False
    with open(path, "r+b") as f:
        f.truncate(data.rfind(b"\n") + 1)
    return True


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The events of ``metrics.jsonl`` in order. A torn last line (a run killed while appending) is
    left out; a bad line anywhere else is a one-line :class:`DataError` naming the file and line."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    out = []
    for number, line in enumerate(lines, 1):
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if number == len(lines):
                break
            raise DataError(f"{path}: line {number} is not JSON ({exc.msg})") from None
    return out


def read_summary(path: Path) -> dict[str, Any]:
    """A run's ``summary.json``; one-line :class:`DataError` if it is unreadable, not JSON or not a
    run summary (summaries are written atomically, so any of these is damage to look at)."""
    try:
        summary = json.loads(path.read_text())
    except OSError as exc:
        raise DataError(f"cannot read run summary {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"run summary {path} is not valid JSON ({exc.msg}, line {exc.lineno}); "
                        "restore it or move the run folder away") from None
    if not isinstance(summary, dict) or summary.get("format") != SUMMARY_FORMAT:
        found = summary.get("format") if isinstance(summary, dict) else type(summary).__name__
        raise DataError(f"{path} is not an hrbench run summary (format {found!r}, expected "
                        f"{SUMMARY_FORMAT!r}); move it or its folder away")
    return summary


def list_runs(root: str | Path = "runs") -> list[dict[str, Any]]:
    """Summaries (schema in the module docstring) of every run folder directly under ``root``,
    sorted by name. Folders without ``summary.json`` are not runs (a data folder, a run killed before
    its first checkpoint) and are passed over; a damaged summary is an error (:func:`read_summary`)."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        if not (sub / "summary.json").exists():
            continue
        summary = read_summary(sub / "summary.json")
        summary["run_dir"] = str(sub)
        runs.append(summary)
    return runs
