"""The one model registry (timm-style): variants are registered by name in ``architectures/``.

``create_model(name, num_keypoints=17, checkpoint=None, **overrides)`` builds a full pose model
(backbone + 1x1 heatmap head); ``list_models(pattern)`` lists canonical names.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hrbench.config import ModelConfig
from hrbench.errors import ConfigError, HrbenchError

#: Counting conventions a card may name (see ``hrbench.complexity.conventions``).
CONVENTIONS = ("torchstat", "torchstat-dite", "hrnet-summary")


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """A registered variant and its model card.

    ``reported`` names the model as printed in ``reported.csv`` (``model`` column), with an
    optional source filter, e.g. ``(("lite", "Lite-HRNet-18"), ("lite-readme", "Lite-HRNet-18"))``.
    """

    name: str
    fn: Callable[..., ModelConfig]
    aliases: tuple[str, ...] = ()
    paper: str = ""  # 'lite' | 'dite' | 'dpn' | 'hrnet'
    convention: str = "torchstat"
    reported: tuple[tuple[str, ...], ...] = ()
    notes: str = ""
    tags: tuple[str, ...] = ()

    def config(self, **overrides: Any) -> ModelConfig:
        cfg = self.fn()
        cfg.validate()
        return cfg.override(**overrides) if overrides else cfg


_REGISTRY: dict[str, ModelEntry] = {}
_ALIASES: dict[str, str] = {}
_LOADED = False


def register_model(
    name: str,
    *,
    aliases: tuple[str, ...] = (),
    paper: str = "",
    convention: str = "torchstat",
    reported: tuple[tuple[str, ...], ...] = (),
    notes: str = "",
    tags: tuple[str, ...] = (),
) -> Callable[[Callable[..., ModelConfig]], Callable[..., ModelConfig]]:
    """Decorator registering a variant function that returns its :class:`ModelConfig`."""
    if convention not in CONVENTIONS:
        raise ValueError(f"{name}: unknown convention {convention!r}")

    def deco(fn: Callable[..., ModelConfig]) -> Callable[..., ModelConfig]:
        for key in (name, *aliases):
            if key in _REGISTRY or key in _ALIASES:
                raise ValueError(f"model name {key!r} registered twice")
        _REGISTRY[name] = ModelEntry(name, fn, tuple(aliases), paper, convention, tuple(reported),
                                     notes.strip(), tuple(tags))
        for alias in aliases:
            _ALIASES[alias] = name
        return fn

    return deco


def _load() -> None:
    """Import every module of the ``architectures`` package (they register themselves)."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import architectures

    for path in sorted(Path(architectures.__file__).parent.glob("*.py")):
        if not path.stem.startswith("_"):
            importlib.import_module(f"architectures.{path.stem}")


def resolve(name: str) -> str:
    """Canonical name of ``name`` (an alias or a canonical name); one-line error otherwise."""
    _load()
    key = name.strip()
    if key in _REGISTRY:
        return key
    if key in _ALIASES:
        return _ALIASES[key]
    lowered = key.lower().replace("-", "_")
    if lowered in _REGISTRY or lowered in _ALIASES:
        return resolve(lowered)
    close = difflib.get_close_matches(lowered, [*_REGISTRY, *_ALIASES], n=4, cutoff=0.5)
    hint = f"; closest: {', '.join(close)}" if close else "; see `hrbench list`"
    raise HrbenchError(f"unknown architecture {name!r}{hint}")


def get_entry(name: str) -> ModelEntry:
    return _REGISTRY[resolve(name)]


def list_models(pattern: str = "*", *, include_aliases: bool = False) -> list[str]:
    """Canonical names matching the shell-style ``pattern``, sorted."""
    _load()
    names = list(_REGISTRY) + (list(_ALIASES) if include_aliases else [])
    return sorted(n for n in names if fnmatch.fnmatch(n, pattern))


def create_config(name: str, **overrides: Any) -> ModelConfig:
    return get_entry(name).config(**overrides)


def create_model(name: str, num_keypoints: int = 17, checkpoint: str | Path | None = None,
                 **overrides: Any):
    """Build the full pose model ``name`` (backbone + heatmap head) with ``num_keypoints`` outputs.

    ``overrides`` replace hyper-parameters of the variant's config; ``checkpoint`` loads an
    official (mmpose 0.x/1.x) or hrbench checkpoint through :mod:`hrbench.checkpoint`.
    """
    from hrbench.models.pose import PoseModel

    if not isinstance(num_keypoints, int) or num_keypoints < 1:
        raise ConfigError(f"invalid num_keypoints {num_keypoints!r}: must be a positive integer")
    entry = get_entry(name)
    cfg = entry.config(**overrides)
    model = PoseModel(cfg.build_backbone(), num_keypoints)
    model.arch = entry.name
    model.config = cfg
    if checkpoint is not None:
        from hrbench.checkpoint import load_checkpoint

        load_checkpoint(model, checkpoint)
    return model


@dataclasses.dataclass(frozen=True)
class GridCell:
    """One cell of an ablation grid: ``model`` built with ``overrides``; ``labels`` are the
    row/column values the paper's table prints (e.g. ``{"G": "4,4,4,4", "N": "1,1,1,1"}``);
    ``epochs``: the training length the paper used for this cell when it differs from the family
    recipe (DPN Table IV: 140 vs 210), which ``hrbench ablate --train`` trains for."""

    labels: dict[str, Any]
    model: str
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    dataset: str = "coco"
    input_hw: tuple[int, int] = (256, 192)
    epochs: int | None = None


@dataclasses.dataclass(frozen=True)
class Grid:
    """An ablation grid declared in ``architectures/`` (e.g. Dite-HRNet Table 5, G x N)."""

    name: str
    source: str  # reported.csv source: 'dite' | 'lite' | 'dpn'
    table: str  # reported.csv table id, e.g. 'T5'
    description: str
    cells: tuple[GridCell, ...]


_GRIDS: dict[str, Grid] = {}


def register_grid(grid: Grid) -> Grid:
    if grid.name in _GRIDS:
        raise ValueError(f"grid {grid.name!r} registered twice")
    _GRIDS[grid.name] = grid
    return grid


def list_grids() -> list[str]:
    _load()
    return sorted(_GRIDS)


def get_grid(name: str) -> Grid:
    _load()
    if name not in _GRIDS:
        close = difflib.get_close_matches(name, list(_GRIDS), n=3, cutoff=0.4)
        hint = f"; closest: {', '.join(close)}" if close else f"; known: {', '.join(sorted(_GRIDS))}"
        raise HrbenchError(f"unknown ablation grid {name!r}{hint}")
    return _GRIDS[name]
