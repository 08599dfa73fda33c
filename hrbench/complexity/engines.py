"""Counting engines as one table (fvcore's op-handle table is the model): each engine a registered
:class:`Engine` carrying its name, unit and scale, the key of its figure in ``--json``, what it
leaves out, how to run it and how ``--explain`` reconciles it with the true MACs.

:func:`hrbench.complexity.measure.measure_model` runs the registered engines in registration
order on a :class:`Counting` (the model, its input and convention, the shared probe pass) and
records each :class:`Count`. A new engine is one module calling :func:`register_engine`, named in
:data:`MODULES` (or, from outside hrbench, imported before counting).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any, overload

from torch import nn

from hrbench.complexity.conventions import Convention
from hrbench.complexity.probe import Probe
from hrbench.errors import HrbenchError
from hrbench.plugins import Registry

#: Modules that register engines, imported (in order) at the first lookup: hrbench's five.
MODULES: tuple[str, ...] = ("hrbench.complexity.standard_engines",)


@dataclasses.dataclass
class Counting:
    """What an engine counts: the model (eval mode, batch 1), the input (H, W), the card's convention
    and, when an engine ``uses_probe``, the one instrumented forward pass they share."""

    model: nn.Module
    input_hw: tuple[int, int]
    convention: Convention
    engines: tuple[str, ...]  # the engines of this run
    probe: Probe | None = None


@dataclasses.dataclass
class Count:
    """One engine's outcome on one model: ``total`` (raw, the engine's own unit), its exclusive
    per-module counts, what it skipped on this model (None: nothing recorded), ``error`` (the
    engine failed; the others still count), ``detail`` (what its ``explain`` reads), ``series``
    (further per-module series, e.g. the traffic of the probe pass) and ``sections`` (further
    fields of the result, e.g. ``traffic``)."""

    total: int | None = None
    by_module: dict[str, int] = dataclasses.field(default_factory=dict)
    skipped: dict[str, Any] | None = None
    error: str | None = None
    detail: Any = None
    series: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    sections: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Engine:
    """A counting engine. ``run(counting) -> Count``; ``unit`` (words, in ``--json`` ``units``) and
    ``short_unit`` (table header) name the unit of ``raw / scale``; ``key``: its figure's key in
    ``--json`` (default ``name``); ``skips``: what it never counts, in words; ``uses_probe``: it
    reads the shared probe pass (``uses_hooks``: with the convention's hooks attached);
    ``explain(counting, count)``: its reconciliation with the true MACs (a
    :class:`~hrbench.complexity.explain.Reconciliation`), or None; ``must_equal``: the engine whose
    raw count this one must reproduce exactly (``--json`` ``<name>_matches``); ``label``: its column
    in the ``--all`` table (default ``name``); ``under_convention``: it counts by the card's
    convention, so it leaves out what the convention does."""

    name: str
    run: Callable[[Counting], Count]
    unit: str
    short_unit: str
    scale: int = 10**6
    key: str = ""
    skips: str = ""
    uses_probe: bool = False
    uses_hooks: bool = False
    explain: Callable[[Counting, Count], Any] | None = None
    must_equal: str = ""
    label: str = ""
    under_convention: bool = False

    @property
    def figure_key(self) -> str:
        return self.key or self.name

    @property
    def column(self) -> str:
        return self.label or self.name


ENGINES: Registry[Engine] = Registry("counting engine", modules=MODULES, error=HrbenchError)


def register_engine(engine: Engine) -> Engine:
    """Add ``engine`` to the table (after the ones registered before it)."""
    return ENGINES.add(engine.name, engine)


def engine_names() -> tuple[str, ...]:
    """Every registered engine, in registration order."""
    return ENGINES.names()


def all_engines() -> tuple[Engine, ...]:
    return ENGINES.values()


def get_engine(name: str) -> Engine:
    return ENGINES.get(name)


def select(names: Iterable[str] | None) -> tuple[str, ...]:
    """``names`` in registration order (None: every engine); unknown names are one-line errors."""
    known = engine_names()
    if names is None:
        return known
    names = tuple(names)
    unknown = [e for e in names if e not in known]
    if unknown:
        raise HrbenchError(f"unknown engine(s) {', '.join(unknown)}: choose from {', '.join(known)}")
    return tuple(e for e in known if e in names)


#: Divisor of the per-module series carried beside the engines (launches are counted one by one).
SERIES_SCALE = {"launches": 1}


@overload
def scaled(key: str, raw: int) -> float: ...


@overload
def scaled(key: str, raw: None) -> None: ...


def scaled(key: str, raw: int | None) -> float | None:
    """A raw count of ``key`` (an engine or a series) in its unit (the engine's ``scale``; a series:
    :data:`SERIES_SCALE`, else decimal M); None stays None."""
    if raw is None:
        return None
    engine = ENGINES.get(key) if key in ENGINES else None
    return raw / (engine.scale if engine is not None else SERIES_SCALE.get(key, 10**6))
