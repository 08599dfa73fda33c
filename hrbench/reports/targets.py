"""Printed rows -> what hrbench measures for them: a registry entry (its card's ``reported`` pairs)
or a cell of the ablation grid declared for that printed table."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from hrbench.cards import key_matches
from hrbench.reference import fmt_value, match_cell
from hrbench.registry import Grid, get_entry, get_grid, list_grids, list_models
from hrbench.reports.scope import decoding_of


@dataclasses.dataclass(frozen=True)
class Target:
    """What hrbench measures for a printed row: ``model`` built with ``overrides``."""

    model: str
    overrides: tuple[tuple[str, Any], ...] = ()
    via: str = ""  # 'entry' or 'grid:<name>'
    decoding: str = ""  # a post-processing other than the codec's default (reports.scope.DECODING)

    @property
    def override_dict(self) -> dict[str, Any]:
        return dict(self.overrides)

    def label(self) -> str:
        text = self.model + "".join(f" {k}={fmt_value(v)}" for k, v in self.overrides)
        return text + (f" ({self.decoding} decoding)" if self.decoding else "")


@functools.cache
def _entry_keys() -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((name, tuple(key)) for name in list_models() for key in get_entry(name).reported)


@functools.cache
def entry_for(source: str, printed: str, backbone: str = "") -> str | None:
    """The registry entry whose card lists the printed row (model name ``printed``, its ``backbone``
    column, of ``source``), matched as the model card matches (:func:`hrbench.cards.key_matches`);
    a key naming ``source`` wins over one for every source (``"*"``); None when hrbench does not hold it."""
    row = {"source": source, "model": printed, "backbone": backbone}
    for exact in (True, False):
        for name, key in _entry_keys():
            if (key[0] == source) == exact and key_matches(key, row):
                return name
    return None


def _grids_for(source: str, table: str) -> list[Grid]:
    return [g for g in (get_grid(n) for n in list_grids()) if g.source == source and g.table == table]


def target_for(row: dict[str, str]) -> Target | None:
    """Registry entry or grid cell of a printed row; None when hrbench does not hold that model."""
    for grid in _grids_for(row["source"], row["table"]):
        same = tuple(c for c in grid.cells if c.dataset == row["dataset"]
                     and f"{c.input_hw[0]}x{c.input_hw[1]}" == row["input"])
        cell = match_cell(row["model"], same) or match_cell(row["model"], grid.cells)
        if cell is not None:
            return Target(cell.model, tuple(sorted(cell.overrides.items())), f"grid:{grid.name}")
    name = entry_for(row["source"], row["model"], row.get("backbone", ""))
    return Target(name, (), "entry", decoding_of(row)) if name else None
