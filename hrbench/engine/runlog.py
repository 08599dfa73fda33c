"""The main rank's voice while a run trains: ``log.txt`` lines (also printed) and ``metrics.jsonl`` events.

One :class:`RunLog` per process, shared by :func:`hrbench.engine.api.train` and the
:class:`~hrbench.engine.trainer.Trainer`; on every rank but the main one it writes nothing. A caller
that wants the events as they happen (``hrbench doctor`` reads the training losses) subclasses it.
"""

from __future__ import annotations

from typing import Any

from hrbench.engine.runs import RunDir, now_iso


class RunLog:
    """Writes to ``run`` (None: no folder) and prints on ``console`` (None: silent), on the main rank only."""

    def __init__(self, run: RunDir | None = None, console=None, is_main: bool = True) -> None:
        self.run = run
        self.console = console
        self.is_main = is_main

    def say(self, line: str) -> None:
        """One human-readable line: ``log.txt`` (time-stamped) and the console."""
        if not self.is_main:
            return
        if self.run is not None:
            self.run.append_log(f"[{now_iso()}] {line}")
        if self.console is not None:
            self.console.print(line, highlight=False)

    def event(self, event: dict[str, Any]) -> None:
        """One ``metrics.jsonl`` record (``{"event": "train" | "val" | "epoch" | "resume", ...}``), time-stamped."""
        if self.is_main and self.run is not None:
            self.run.append_metrics({"time": now_iso(), **event})
