"""``hrbench runs``: one row per run folder of a runs registry (:mod:`hrbench.engine.runs`), read from
its ``summary.json``, ``metrics.jsonl`` and lock, never from a live process.

State: ``running`` (a live process holds the folder's lock), ``finished`` (every planned epoch done),
``diverged`` (the last event is the engine's ``diverged``), else ``interrupted`` (Ctrl-C, SIGTERM, a
killed or preempted job: ``hrbench train ... --resume`` continues it). A folder whose first epoch is
still running (locked, no summary yet) is listed as ``running`` with what is not known yet left empty.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from pathlib import Path
from typing import Any

from hrbench.engine.runs import read_metrics, read_summary
from hrbench.errors import DataError
from hrbench.fsutil import FolderLock

STATES = ("running", "finished", "interrupted", "diverged")


@dataclasses.dataclass
class RunRow:
    """What ``hrbench runs`` shows of one run (None: not known yet)."""

    name: str
    run_dir: str
    state: str
    arch: str | None = None
    dataset: str | None = None
    input: str | None = None
    epochs_done: int | None = None
    epochs: int | None = None
    metric: str | None = None
    best: float | None = None
    best_epoch: int | None = None
    wall_s: float | None = None  # training epochs + validations, every invocation
    img_s: float | None = None  # training images per second over every epoch

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def run_state(folder: Path, summary: dict[str, Any] | None, events: list[dict[str, Any]]) -> str:
    """One of :data:`STATES` (see the module docstring)."""
    if FolderLock(folder).locked_by_other():
        return "running"
    if summary is not None and summary.get("status") == "finished":
        return "finished"
    if events and events[-1].get("event") == "diverged":
        return "diverged"
    return "interrupted"


def _timing(summary: dict[str, Any], events: list[dict[str, Any]]) -> tuple[float | None, float | None]:
    """(wall seconds of the training epochs and validations, training images per second)."""
    epoch_s = sum(float(e.get("epoch_time_s", 0.0)) for e in events if e.get("event") == "epoch")
    val_s = sum(float(e.get("val_time_s", 0.0)) for e in events if e.get("event") == "val")
    images = int(summary.get("iterations") or 0) * int(summary.get("total_batch") or 0)
    return (epoch_s + val_s) or None, images / epoch_s if epoch_s > 0 and images else None


def run_row(folder: Path) -> RunRow:
    """The row of one run folder (it has ``summary.json``, or is locked by its first epoch)."""
    summary = read_summary(folder / "summary.json") if (folder / "summary.json").exists() else None
    events = read_metrics(folder)
    state = run_state(folder, summary, events)
    if summary is None:
        return RunRow(folder.name, str(folder), state, epochs_done=0)
    best = summary.get("best") or {}
    metric = summary.get("metric")
    hw = summary.get("input") or []
    wall, img_s = _timing(summary, events)
    return RunRow(
        name=folder.name, run_dir=str(folder), state=state, arch=summary.get("arch"), dataset=summary.get("dataset"),
        input=f"{hw[0]}x{hw[1]}" if len(hw) == 2 else None, epochs_done=summary.get("epochs_done"),
        epochs=summary.get("epochs"), metric=metric,
        best=best.get(metric) if isinstance(best.get(metric), (int, float)) else None,
        best_epoch=best.get("epoch") if best else None, wall_s=wall, img_s=img_s)


def is_run_folder(folder: Path) -> bool:
    """A folder with ``summary.json``, or one a live training process holds (its first epoch)."""
    return folder.is_dir() and ((folder / "summary.json").exists() or FolderLock(folder).locked_by_other())


def find_runs(root: str | Path, pattern: str | None = None) -> list[Path]:
    """Run folders directly under ``root`` whose name matches ``pattern`` (fnmatch; None: all), by name.
    One-line :class:`DataError` when ``root`` is not a folder or nothing matches."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"no runs: --runs {root} is not a folder" if root.exists() else
                        f"no runs: --runs {root} does not exist")
    found = sorted(p for p in root.iterdir() if is_run_folder(p))
    if pattern is not None:
        found = [p for p in found if fnmatch.fnmatch(p.name, pattern)]
    if not found:
        what = f" matching {pattern!r}" if pattern is not None else ""
        raise DataError(f"no runs{what} under {root} (a run folder holds summary.json after its first epoch)")
    return found


def resolve_runs(names: list[str], root: str | Path) -> list[Path]:
    """Run folders for ``hrbench runs plot``: each name is a run folder path, or a run name / fnmatch
    pattern under ``root``; duplicates once, in the order given. One-line :class:`DataError` otherwise."""
    if not names:
        raise DataError("no runs given: name the runs to plot (run names, patterns or run folders)")
    root = Path(root)
    under = sorted(p for p in root.iterdir() if is_run_folder(p)) if root.is_dir() else []
    out: list[Path] = []
    for name in names:
        path = Path(name)
        hits = [path] if is_run_folder(path) else [p for p in under if fnmatch.fnmatch(p.name, name)]
        if not hits:
            raise DataError(f"no run {name!r}: not a run folder, and no run under {root} matches it")
        out += [p for p in hits if p not in out]
    return out
