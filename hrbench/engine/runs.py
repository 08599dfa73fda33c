"""Run folders and the runs registry.

Every training run lives in one folder ``<out>/<name>/`` (``out`` defaults to ``runs``; the
default name is ``<arch>-<dataset>-<H>x<W>-<YYYYmmdd-HHMMSS>``)::

    config.json            the fully resolved configuration (recipe + user overrides)
    metrics.jsonl          one JSON object per event: {"event": "train"|"val"|"epoch", ...}
    log.txt                human-readable log
    checkpoints/last.pt    written atomically at the end of every epoch (resume point)
    checkpoints/best.pt    the checkpoint with the best validation metric so far
    summary.json           the run's summary (schema below), rewritten after every epoch

The folder is created only when the first checkpoint is written, so a run that fails earlier
leaves nothing behind.

``summary.json`` schema (``format: "hrbench-run-v1"``), read by :func:`list_runs`:

=================  ================================================================================
key                value
=================  ================================================================================
format             ``"hrbench-run-v1"``
name, run_dir      folder name and path
status             ``"running"`` (also a run that was killed; resume it) or ``"finished"``
arch               canonical registry name; ``overrides``: model hyper-parameter overrides (dict)
dataset            ``"coco"`` or ``"mpii"``; ``input``: [H, W]; ``keypoints``: K
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
=================  ================================================================================
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

SUMMARY_FORMAT = "hrbench-run-v1"


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_run_name(arch: str, dataset: str, input_hw: tuple[int, int]) -> str:
    """``<arch>-<dataset>-<H>x<W>-<timestamp>``."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{arch}-{dataset}-{input_hw[0]}x{input_hw[1]}-{stamp}"


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to a temporary file in the same folder, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1, default=str)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class RunDir:
    """Paths and writers of one run folder; the folder itself appears with :meth:`materialize`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.created_here = False
        self._pending: list[tuple[Path, str]] = []
        self._live = self.path.is_dir()

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

    def exists(self) -> bool:
        return self.path.is_dir()

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
        with open(path, "a") as f:
            f.write(line + "\n")

    def discard_if_new(self) -> None:
        """Remove the folder if this process created it and it holds no checkpoint yet."""
        if self.created_here and self.path.exists() and not self.last.exists():
            shutil.rmtree(self.path, ignore_errors=True)

    def append_metrics(self, event: dict[str, Any]) -> None:
        """One line of ``metrics.jsonl`` (kept in memory until the folder exists)."""
        self._write(self.metrics_path, json.dumps(event, default=str))

    def append_log(self, line: str) -> None:
        """One line of ``log.txt`` (kept in memory until the folder exists)."""
        self._write(self.log_path, line.rstrip("\n"))

    def read_json(self, path: Path) -> dict[str, Any]:
        with open(path) as f:
            return json.load(f)


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The events of ``metrics.jsonl`` in order (a torn last line of a killed run is skipped)."""
    out = []
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def list_runs(root: str | Path = "runs") -> list[dict[str, Any]]:
    """Summaries (schema in the module docstring) of every run folder directly under ``root``,
    sorted by name; folders without a readable ``summary.json`` are skipped."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            summary = json.loads((sub / "summary.json").read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if summary.get("format") != SUMMARY_FORMAT:
            continue
        summary["run_dir"] = str(sub)
        runs.append(summary)
    return runs
