"""The measurer of the paper tables and ablation grids (``hrbench tables``, ``hrbench ablate``): the
cached (#Params, paper MFLOPs, MACs) of one model at one input, put beside the printed figures."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable
from typing import Any

from hrbench.complexity.measure import measure
from hrbench.errors import brief

__all__ = ["Measurement", "Measurer", "default_measurer", "freeze_overrides"]


@dataclasses.dataclass(frozen=True)
class Measurement:
    """hrbench's figures for one model at one input: #Params, the paper's own FLOPs convention
    (binary M, as the papers print it), true multiply-accumulates (decimal); ``error``: why the
    model could not be built or measured (shown in its table row)."""

    params: int
    paper_mflops: float
    macs: int | None = None
    error: str = ""


#: ``(model, overrides, input_hw, keypoints) -> Measurement``; tests pass fakes.
Measurer = Callable[[str, dict, tuple[int, int], int], Measurement]


def freeze_overrides(overrides: dict[str, Any]) -> str:
    """``overrides`` as canonical JSON (sorted keys, tuples as lists): a hashable key that compares equal
    for equal overrides."""
    return json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in sorted(overrides.items())},
                      sort_keys=True, default=str)


@functools.cache
def _measured(model: str, frozen: str, input_hw: tuple[int, int], k: int) -> Measurement:
    try:
        c = measure(model, input_hw, k, overrides=json.loads(frozen) or None, engines=("paper", "macs"))
        macs = c.counts.get("macs")
        return Measurement(int(c.params), float(c.paper_mflops), int(macs) if macs is not None else None)
    except Exception as e:  # a model that cannot be built/measured is reported in its row, not hidden
        return Measurement(0, 0.0, None, error=brief(e))


def default_measurer(model: str, overrides: dict, input_hw: tuple[int, int], k: int) -> Measurement:
    """Measure with :func:`~hrbench.complexity.measure.measure` (``paper`` and ``macs`` engines),
    cached per process."""
    return _measured(model, freeze_overrides(overrides), tuple(input_hw), k)
