"""The one model registry (timm-style): variants are registered by name in ``architectures/``.

``list_models(pattern)`` lists canonical names, ``create_config(name, **overrides)`` returns a
variant's validated configuration; :func:`hrbench.factory.create_model` builds the model. A family's
training recipe (:class:`Recipe`, per data set and input size) is registered with its variants
(``register_model(..., recipe=fn)``).
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

from hrbench.config import ModelConfig
from hrbench.errors import HrbenchError

#: The package holding the registered variants (installed from the repository's ``architectures/``).
SPEC_PACKAGE = "hrbench.architectures"


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
    recipe: RecipeFn | None = None  # the family's training recipe (declared in its spec module)

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
    recipe: RecipeFn | None = None,
) -> Callable[[Callable[..., ModelConfig]], Callable[..., ModelConfig]]:
    """Decorator registering a variant function that returns its :class:`ModelConfig`; ``recipe``:
    the family's training recipe (:class:`Recipe` per data set and input size), which ``hrbench train``
    needs (a variant without one can be counted, not trained).

    ``convention`` names a counting convention of :mod:`hrbench.complexity.conventions` (a layer
    above: it is looked up, and an unknown name refused, where the model is counted)."""
    if not isinstance(convention, str) or not convention:
        raise ValueError(f"{name}: convention must be a convention's name, got {convention!r}")

    def deco(fn: Callable[..., ModelConfig]) -> Callable[..., ModelConfig]:
        for key in (name, *aliases):
            if key in _REGISTRY or key in _ALIASES:
                raise ValueError(f"model name {key!r} registered twice")
        _REGISTRY[name] = ModelEntry(name, fn, tuple(aliases), paper, convention, tuple(reported),
                                     notes.strip(), tuple(tags), recipe)
        for alias in aliases:
            _ALIASES[alias] = name
        return fn

    return deco


def _load() -> None:
    """Import every module of the spec package :mod:`hrbench.architectures` (the repository's
    ``architectures/`` folder); each registers its variants and grids here. The registry finds
    them by name at the first lookup, like plugins: specs import the registry, never the reverse."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    package = importlib.import_module(SPEC_PACKAGE)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{SPEC_PACKAGE}.{info.name}")


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


# ---------------------------------------------------------------------------------------------- recipes
@dataclasses.dataclass(frozen=True)
class Recipe:
    """A family's official training recipe: optimiser, schedule, warm-up, batch layout, and (mmengine-era
    recipes) gradient clipping, EMA and the augmentation set. Its facts
    live in the family's spec module (``architectures/``); the resolution rules (epoch scaling, linear lr
    scaling, overrides) are :mod:`hrbench.engine.recipes`."""

    family: str
    source: str
    epochs: int
    batch_per_gpu: int
    gpus: int
    lr: float
    lr_steps: tuple[int, ...] = (170, 200)
    gamma: float = 0.1
    warmup_iters: int = 500
    warmup_ratio: float = 0.001
    optimizer: str = "adam"  # "adam" | "adamw" (decoupled weight decay)
    weight_decay: float = 0.0
    # ---- the mmengine-era recipe options (RTMPose); the defaults leave every earlier recipe as it was
    schedule: str = "step"  # "step" | "flat-cosine" (:mod:`hrbench.engine.recipes`)
    cosine_begin: int | None = None  # flat-cosine: the epoch the cosine starts (None: epochs // 2)
    eta_min_ratio: float = 0.05  # flat-cosine: the final lr as a fraction of lr
    norm_decay_mult: float = 1.0  # weight decay factor of normalisation layers' weights and biases
    bias_decay_mult: float = 1.0  # weight decay factor of the other biases
    clip_grad_norm: float | None = None  # clip the gradients' global L2 norm to this (None: no clipping)
    ema: str = "none"  # "none" | "exp-momentum" (:mod:`hrbench.engine.ema`)
    ema_momentum: float = 0.0002
    ema_gamma: float = 2000.0
    ema_interval: int = 1
    augment: str = "msra"  # the training augmentation set: "msra" (the papers') | "rtmpose" (two stages)
    stage2_epochs: int = 0  # rtmpose: the last epochs trained with the stage-2 augmentation

    @property
    def total_batch(self) -> int:
        return self.batch_per_gpu * self.gpus


def shown_fields(obj: Any, since: str) -> dict[str, Any]:
    """``dataclasses.asdict(obj)`` without the fields from ``since`` on that hold their defaults: the
    ``config.json`` form of :class:`Recipe` (and the engine's resolved settings), so a configuration that does not
    use the later options is written byte for byte as before them; reading fills the defaults back in."""
    out = dataclasses.asdict(obj)
    names = [f.name for f in dataclasses.fields(obj)]
    for f in dataclasses.fields(obj)[names.index(since):]:
        if f.default is not dataclasses.MISSING and out[f.name] == f.default:
            del out[f.name]
    return out


#: The first :class:`Recipe` field of the mmengine-era options (``config.json`` shows them where they are used).
RECIPE_LATER_FIELDS = "schedule"

#: ``recipe(dataset, input_hw) -> Recipe``: what a family registers with its variants.
RecipeFn = Callable[[str, tuple[int, int]], Recipe]
