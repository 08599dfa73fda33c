"""Printed rows -> what hrbench measures for them: a registry entry (its card's ``reported`` pairs)
or a cell of the ablation grid declared for that printed table."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from hrbench.reference import fmt_value, match_cell
from hrbench.registry import Grid, get_entry, get_grid, list_grids, list_models


@dataclasses.dataclass(frozen=True)
class Target:
    """What hrbench measures for a printed row: ``model`` built with ``overrides``."""

    model: str
    overrides: tuple[tuple[str, Any], ...] = ()
    via: str = ""  # 'entry' or 'grid:<name>'

    @property
    def override_dict(self) -> dict[str, Any]:
        return dict(self.overrides)

    def label(self) -> str:
        if not self.overrides:
            return self.model
        return self.model + " " + " ".join(f"{k}={fmt_value(v)}" for k, v in self.overrides)


@functools.cache
def _entry_index() -> dict[tuple[str, str], str]:
    index: dict[tuple[str, str], str] = {}
    for name in list_models():
        for pair in get_entry(name).reported:
            index.setdefault(tuple(pair), name)
    return index


def entry_for(source: str, printed: str) -> str | None:
    """The registry entry whose card lists the printed model name ``printed`` of ``source`` (or of
    every source, ``"*"``); None when hrbench does not hold it."""
    index = _entry_index()
    return index.get((source, printed)) or index.get(("*", printed))


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
    name = entry_for(row["source"], row["model"])
    return Target(name, (), "entry") if name else None
