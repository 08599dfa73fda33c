"""The result of counting one model (:class:`Complexity`) and the stamp every figure carries."""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
from typing import Any

import torch

from hrbench.complexity.conventions import get_convention
from hrbench.complexity.engines import all_engines, scaled


def units() -> dict[str, str]:
    """``--json`` ``units``: #Params, then each registered engine's figure key and its unit in words."""
    return {"params": "parameters (exact count, every parameter incl. unused ones)",
            **{e.figure_key: e.unit for e in all_engines()}}


@dataclasses.dataclass
class Complexity:
    """The result of :func:`~hrbench.complexity.measure.measure`; ``to_dict()`` is the JSON form
    (deterministic numbers)."""

    arch: str
    input_hw: tuple[int, int]
    keypoints: int
    params: int
    convention: str
    counts: dict[str, int | None]  # raw integer counts per engine
    errors: dict[str, str] = dataclasses.field(default_factory=dict)
    skipped: dict[str, Any] = dataclasses.field(default_factory=dict)
    published: dict[str, Any] = dataclasses.field(default_factory=dict)
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    by_module: list[dict[str, Any]] | None = None
    by_block_type: dict[str, dict[str, float]] | None = None
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)  # wall time per engine (not in to_dict)
    traffic: dict[str, Any] | None = None
    train: dict[str, Any] | None = None
    explain: dict[str, Any] | None = None

    @property
    def paper_mflops(self) -> float | None:
        return scaled("paper", self.counts.get("paper"))

    def matches(self, engine: str, other: str) -> bool | None:
        """Whether ``engine``'s raw count equals ``other``'s (None if either is missing)."""
        a, b = self.counts.get(engine), self.counts.get(other)
        return None if a is None or b is None else a == b

    def to_dict(self) -> dict[str, Any]:
        engines = all_engines()
        d: dict[str, Any] = {
            "arch": self.arch,
            "input": f"{self.input_hw[0]}x{self.input_hw[1]}",
            "keypoints": self.keypoints,
            "params": self.params,
            **{e.figure_key: scaled(e.name, self.counts.get(e.name)) for e in engines},
            **{f"{e.name}_matches": self.matches(e.name, e.must_equal) for e in engines if e.must_equal},
            "counts": dict(self.counts),
            "units": units(),
            "convention": self.convention,
            "convention_skips": get_convention(self.convention).skips,
            "skipped": self.skipped,
            "published": self.published,
            "errors": self.errors,
        }
        if self.overrides:
            d["overrides"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.overrides.items()}
        if self.by_module is not None:
            d["by_module"] = self.by_module
        if self.by_block_type is not None:
            d["by_block_type"] = self.by_block_type
        for key in ("traffic", "train", "explain"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        d["stamp"] = stamp(self.input_hw, self.keypoints, self.convention)
        return d


@functools.cache
def versions() -> dict[str, str]:
    """hrbench, torch, fvcore and ptflops versions (installed distributions)."""
    import hrbench

    out = {"hrbench": hrbench.__version__, "torch": torch.__version__}
    for dist in ("fvcore", "ptflops"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def stamp(input_hw: tuple[int, int], keypoints: int, convention: str) -> dict[str, Any]:
    """What every figure was counted with: versions, input, K, convention."""
    return {**versions(), "input": f"{input_hw[0]}x{input_hw[1]}", "keypoints": keypoints, "convention": convention}
