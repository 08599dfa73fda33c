"""Finished local runs (the runs registry of the training engine, :mod:`hrbench.engine.runs`), reduced
to what the paper tables join on and show: the accuracy of a model the user trained."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from hrbench.complexity.measurer import freeze_overrides
from hrbench.reference import COCO_METRICS, MPII_METRICS, parse_hw


@dataclasses.dataclass(frozen=True)
class LocalRun:
    """A finished run of the runs registry, reduced to what the tables join on and show."""

    run_id: str
    arch: str
    overrides: str  # frozen JSON (:func:`hrbench.complexity.measurer.freeze_overrides`)
    dataset: str
    input: str  # "HxW"
    metrics: dict[str, float]
    epochs: int | None = None


def _norm_input(value: Any) -> str:
    if isinstance(value, str):
        hw = parse_hw(value.replace(" ", "").lower())
        return f"{hw[0]}x{hw[1]}" if hw else value
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return f"{int(value[0])}x{int(value[1])}"
    return ""


def local_run_from_summary(s: dict[str, Any]) -> LocalRun | None:
    """One ``summary.json`` (``hrbench-run-v1``, :mod:`hrbench.engine.runs`) of a finished run;
    metrics from its best validation (else its last)."""
    if s.get("status") != "finished" or not s.get("arch"):
        return None
    metrics: dict[str, float] = {}
    val = s.get("best") or s.get("final") or {}
    for key in (*COCO_METRICS, *MPII_METRICS, "PCKh01"):
        if isinstance(val.get(key), (int, float)):
            metrics[key] = float(val[key])
    if not metrics:
        return None
    epochs = s.get("epochs_done", s.get("epochs"))
    return LocalRun(str(s.get("name") or Path(str(s.get("run_dir", ""))).name), str(s["arch"]),
                    freeze_overrides(s.get("overrides") or {}), str(s.get("dataset") or "coco"),
                    _norm_input(s.get("input")), metrics, int(epochs) if isinstance(epochs, (int, float)) else None)


def load_runs(runs_dir: str | Path | None) -> list[LocalRun]:
    """Every finished run directly under ``runs_dir`` (``hrbench.engine.runs.list_runs``)."""
    if runs_dir is None or not Path(runs_dir).is_dir():
        return []
    from hrbench.engine.runs import list_runs

    runs = [r for r in (local_run_from_summary(s) for s in list_runs(runs_dir)) if r is not None]
    return sorted(runs, key=lambda r: r.run_id)


def find_local(runs: list[LocalRun], arch: str, overrides: dict, dataset: str, inp: str) -> LocalRun | None:
    """The latest (by run name) finished local run of this model/overrides/dataset at this input;
    failing that, at any other input (the tables then show the run's input beside its metric)."""
    key = freeze_overrides(overrides)
    hits = [r for r in runs if r.arch == arch and r.overrides == key and r.dataset == dataset]
    same = [r for r in hits if r.input == inp]
    return (same or hits or [None])[-1]
