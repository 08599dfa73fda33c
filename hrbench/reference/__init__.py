"""Every published number of the three papers (``reported.csv``) and the look-ups on it.

Two views of the one file: :func:`printed_rows` keeps each cell exactly as printed (the printed
precision matters for the agreement checks of ``hrbench tables``), :func:`reported_rows` turns the
number columns into floats (model cards, the published figures beside ``hrbench flops``).
:func:`match_cell` finds the ablation-grid cell a printed row is (Dite-HRNet Table 5, DPN Tables II-V).

Base layer: only the standard library.
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any, Protocol, TypeVar

#: Accuracy columns printed per dataset, in the papers' order.
COCO_METRICS = ("AP", "AP50", "AP75", "APM", "APL", "AR")
MPII_METRICS = ("PCKh",)

#: The number columns of ``reported.csv`` (floats in :func:`reported_rows`).
NUMERIC = ("params_M", "gflops", "mflops", "AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "PCKh", "PCKh01")

#: MFLOPs (binary, 2^20) per printed GFLOP of the (source, table) pairs that do not divide by 1024:
#: Dite-HRNet Table 5 prints the paper-convention MFLOPs / 1000; the RTMPose README prints mmcv's
#: decimal GFLOPs (count / 1e9 = MFLOPs / 953.67).
GIGA: dict[tuple[str, str], float] = {("dite", "T5"): 1000, ("rtmpose-readme", "R1"): 1e9 / 2**20}


@functools.cache
def printed_rows() -> tuple[dict[str, str], ...]:
    """Every row of ``reported.csv`` with its cells exactly as printed (strings, '' = blank)."""
    text = resources.files("hrbench.reference").joinpath("reported.csv").read_text(encoding="utf-8")
    return tuple(dict(r) for r in csv.DictReader(text.splitlines()))


@functools.cache
def reported_rows() -> tuple[dict[str, Any], ...]:
    """Every row of ``reported.csv``, the :data:`NUMERIC` columns as floats (None when blank)."""
    return tuple({**r, **{k: float(r[k]) if r.get(k) else None for k in NUMERIC}} for r in printed_rows())


def rows_of(source: str, table: str) -> list[dict[str, str]]:
    """The printed rows of one table (``source``, ``table`` columns), in the file's order."""
    return [r for r in printed_rows() if r["source"] == source and r["table"] == table]


def parse_hw(text: str) -> tuple[int, int] | None:
    """``"256x192"`` -> (256, 192); None for anything else (a blank ``input`` cell)."""
    m = re.fullmatch(r"(\d+)x(\d+)", text.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


def printed_flops(row: dict[str, str]) -> tuple[str, str]:
    """(printed value, unit 'G'|'M') of a row's complexity figure; ('', 'G') when none."""
    if row.get("gflops"):
        return row["gflops"], "G"
    if row.get("mflops"):
        return row["mflops"], "M"
    return "", "G"


def giga_of(source: str, table: str) -> float:
    """MFLOPs per printed GFLOP in the table holding ``(source, table)`` (1024 unless :data:`GIGA` says
    otherwise)."""
    return GIGA.get((source, table), 1024)


# --------------------------------------------------------------------------------------------
# Printed model names -> ablation-grid cells
# --------------------------------------------------------------------------------------------
class Labelled(Protocol):
    """A grid cell as :func:`match_cell` sees it (:class:`hrbench.registry.GridCell`)."""

    @property
    def labels(self) -> Mapping[str, Any]: ...


CellT = TypeVar("CellT", bound=Labelled)


def fmt_value(v: Any) -> str:
    """A label or override value as text: sequences comma-joined (``(4, 2, 1, 1)`` -> ``4,2,1,1``)."""
    if isinstance(v, (tuple, list)):
        return ",".join(fmt_value(x) for x in v)
    return str(v)


def _tokens(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9_=.]+", text.lower()))


def _label_forms(key: str, value: Any) -> set[str]:
    v = fmt_value(value).lower().replace(" ", "")
    compact = v.replace(",", "")
    forms = {v, compact, f"{key.lower()}={compact}", f"{key.lower()}={v}"}
    if isinstance(value, (tuple, list)) and len(value) == 2:
        forms.add(f"{value[0]}x{value[1]}")
    return forms


def match_cell(model_name: str, cells: Sequence[CellT]) -> CellT | None:
    """The grid cell that a printed row (``model`` column) is: a label equal to the printed name,
    else the unique cell whose labels all appear as tokens of the printed name."""
    for cell in cells:
        if any(str(v) == model_name for v in cell.labels.values()):
            return cell
    tokens = _tokens(model_name)
    scored = []
    for cell in cells:
        hits = sum(bool(_label_forms(k, v) & tokens) for k, v in cell.labels.items())
        if hits == len(cell.labels) and hits:
            scored.append(cell)
    return scored[0] if len(scored) == 1 else None
