"""Every table and figure of the three papers, joined to hrbench's measurements.

:func:`build_table` maps each printed row of a :class:`~hrbench.reports.specs.TableSpec` to a registry
entry or grid cell (:mod:`hrbench.reports.targets`), measures it at the row's input (#Params, the
paper's own FLOPs convention, true MACs), checks each measured complexity cell against the printed
figure at the printed precision, and attaches the accuracy of any local run
(:mod:`hrbench.reports.local_runs`). Architecture tables (Lite-HRNet Table 1, Dite-HRNet Table 1, the
DPN slide table) are rendered from the registered configurations; Lite-HRNet Table 2 (Section 3.2) is
recomputed by :mod:`hrbench.complexity.table2`.
"""

from __future__ import annotations

import dataclasses
import re
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

from hrbench.complexity.measurer import Measurement, Measurer, default_measurer
from hrbench.complexity.table2 import table2
from hrbench.datasets import get_dataset
from hrbench.reference import parse_hw, printed_flops, rows_of
from hrbench.registry import get_entry
from hrbench.reports.local_runs import LocalRun, find_local
from hrbench.reports.scope import outside_scope
from hrbench.reports.specs import TableSpec
from hrbench.reports.targets import Target, entry_for, target_for


# --------------------------------------------------------------------------------------------
# Agreement with a printed figure
# --------------------------------------------------------------------------------------------
def decimals(printed: str) -> int:
    return len(printed.split(".")[1]) if "." in printed else 0


def agreement(printed: str, measured: float | None, truncates: bool = False) -> str:
    """'yes' when ``measured`` rounds (half up) to ``printed`` at its printed precision;
    'trunc' when only truncation gives it (tables whose source truncates, e.g. Dite-HRNet's
    one-decimal GFLOPs); 'no' otherwise; '' when either side is missing."""
    if measured is None or not printed:
        return ""
    q = Decimal(1).scaleb(-decimals(printed))
    value = Decimal(repr(float(measured)))
    if value.quantize(q, ROUND_HALF_UP) == Decimal(printed):
        return "yes"
    if truncates and value.quantize(q, ROUND_FLOOR) == Decimal(printed):
        return "trunc"
    return "no"


# --------------------------------------------------------------------------------------------
# Built tables
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Check:
    """One measurable complexity cell: the printed figure against hrbench's measurement."""

    table: str
    row: str  # printed model name (+ dataset/input)
    quantity: str  # 'params (M)', 'GFLOPs', 'MFLOPs', 'FLOPs (M)'
    printed: str
    measured: float | None
    status: str  # 'yes' | 'trunc' | 'no' | 'error'


@dataclasses.dataclass
class BuiltRow:
    printed: dict[str, str]
    target: Target | None
    measurement: Measurement | None
    flops_unit: str  # 'G' or 'M' (as printed)
    giga: float = 1024  # MFLOPs per printed GFLOP
    params_status: str = ""
    flops_status: str = ""
    local: LocalRun | None = None
    scope: str = ""  # what the row is when it is not a top-down backbone (reports.scope); '' otherwise

    @property
    def params_M(self) -> float | None:
        m = self.measurement
        return m.params / 1e6 if m and not m.error else None

    @property
    def paper_flops(self) -> float | None:
        """The paper-convention count in the printed unit (binary G or binary M)."""
        m = self.measurement
        if not m or m.error:
            return None
        return m.paper_mflops / self.giga if self.flops_unit == "G" else m.paper_mflops

    @property
    def macs_G(self) -> float | None:
        m = self.measurement
        return m.macs / 1e9 if m and not m.error and m.macs is not None else None


@dataclasses.dataclass
class BuiltTable:
    spec: TableSpec
    rows: list[BuiltRow] = dataclasses.field(default_factory=list)
    checks: list[Check] = dataclasses.field(default_factory=list)
    arch: dict[str, Any] | None = None  # architecture tables: {"models": [...], "fields": [...], ...}
    formula: list[dict[str, Any]] | None = None  # Lite-HRNet Table 2


@dataclasses.dataclass
class Context:
    measurer: Measurer = default_measurer
    runs: list[LocalRun] = dataclasses.field(default_factory=list)


def _row_label(row: dict[str, str]) -> str:
    return f"{row['model']} [{row['dataset']} {row['input']}]"


def _check(out: BuiltTable, label: str, quantity: str, printed: str, measured: float | None, error: bool,
           truncates: bool = False) -> str:
    """Record one complexity cell of ``out`` (``measured`` None on a measurement error); return its status."""
    status = "error" if error else agreement(printed, measured, truncates)
    out.checks.append(Check(out.spec.id, label, quantity, printed, measured, status))
    return status


def _joined(row: dict[str, str], target: Target | None, ctx: Context, unit: str, giga: float = 1024) -> BuiltRow:
    """A printed row with the measurement and the local run of its target at the row's input (none when
    hrbench does not hold the model or the row prints no input)."""
    built = BuiltRow(row, target, None, unit, giga, scope="" if target is not None else outside_scope(row))
    hw = parse_hw(row["input"])
    if target is not None and hw is not None:
        built.measurement = ctx.measurer(target.model, target.override_dict, hw,
                                         get_dataset(row["dataset"]).num_keypoints)
        if not target.decoding:  # a run's summary does not record its decoding: no local run for a DARK row
            built.local = find_local(ctx.runs, target.model, target.override_dict, row["dataset"], row["input"])
    return built


def build_results(spec: TableSpec, ctx: Context) -> BuiltTable:
    """Printed rows + measurements, every printed #Params / FLOPs figure checked."""
    out = BuiltTable(spec)
    for source, table in spec.parts:
        rows = rows_of(source, table)
        mflops_only = not any(r["gflops"] for r in rows) and any(r["mflops"] for r in rows)
        for row in rows:
            pf, unit = printed_flops(row)
            built = _joined(row, target_for(row), ctx, "M" if mflops_only else unit, spec.giga)
            if built.measurement is not None:
                err = bool(built.measurement.error)
                if row["params_M"]:
                    built.params_status = _check(out, _row_label(row), "params (M)", row["params_M"], built.params_M,
                                                 err, spec.truncates)
                if pf:
                    built.flops_status = _check(out, _row_label(row), f"{built.flops_unit}FLOPs", pf,
                                                built.paper_flops, err, spec.truncates)
            out.rows.append(built)
    return out


def build_architecture(spec: TableSpec, ctx: Context) -> BuiltTable:
    """Configuration fields of the paper's named variants side by side, plus measured complexity."""
    out = BuiltTable(spec)
    hw = parse_hw(spec.arch_input)
    k = get_dataset(spec.arch_dataset).num_keypoints
    published = {name: (p, f) for name, p, f in spec.arch_published}
    for source, table in spec.parts:
        for row in rows_of(source, table):
            published[row["model"]] = (row["params_M"], row["mflops"])
    models = []
    for source, printed in spec.models:
        name = entry_for(source, printed)
        entry = {"printed": printed, "name": name, "config": {}, "measurement": None,
                 "published": published.get(printed, ("", ""))}
        if name is not None:
            entry["config"] = get_entry(name).config().to_dict()
            m = entry["measurement"] = ctx.measurer(name, {}, hw, k)
            label = f"{printed} [{spec.arch_dataset} {spec.arch_input}]"
            p_params, p_flops = entry["published"]
            if p_params:
                entry["params_status"] = _check(out, label, "params (M)", p_params,
                                                None if m.error else m.params / 1e6, bool(m.error), spec.truncates)
            if p_flops:
                entry["flops_status"] = _check(out, label, "MFLOPs", p_flops, None if m.error else m.paper_mflops,
                                               bool(m.error), spec.truncates)
        models.append(entry)
    fields: list[str] = []
    for entry in models:
        for key in entry["config"]:
            if key not in fields:
                fields.append(key)
    out.arch = {"models": models, "fields": fields}
    return out


def build_formula(spec: TableSpec, ctx: Context) -> BuiltTable:
    """Lite-HRNet Table 2 from its closed forms and from real layers counted by the analytic walker
    (:mod:`hrbench.complexity.table2`; the check uses the layer count)."""
    out = BuiltTable(spec)
    out.formula = []
    for row in table2():
        status = agreement(row.printed, row.mflops)
        out.formula.append({"operation": row.model, "formula": row.formula, "printed": row.printed,
                            "count": row.closed_form, "layer_count": row.count, "value": row.mflops,
                            "status": status})
        out.checks.append(Check(spec.id, row.model, "FLOPs (M)", row.printed, row.mflops, status))
    return out


def figure_rows(spec: TableSpec) -> list[dict[str, str]]:
    """Lite-HRNet Figure 4's points: the figure-only rows plus the Table 3/5 rows it draws."""
    short = {"MobileNetV2 1x": "MBV2", "ShuffleNetV2 1x": "SFV2", "Small HRNet": "SHR", "Small HRNet-W16": "SHR",
             "Wider Naive Lite-HRNet-18": "WLH-18", "Lite-HRNet-18": "LH-18", "Lite-HRNet-30": "LH-30"}
    rows = []
    for table, dataset, inp in (("T3", "coco", "256x192"), ("T5", "mpii", "256x256")):
        for r in rows_of("lite", table):
            if r["model"] in short and r["input"] == inp:
                rows.append({**r, "point": short[r["model"]]})
        fig = "F4a" if dataset == "coco" else "F4b"
        rows.extend({**r, "point": short[r["model"]]} for r in rows_of("lite", fig))
    return rows


def build_figure(spec: TableSpec, ctx: Context) -> BuiltTable:
    """Lite-HRNet Figure 4's points (:func:`figure_rows`); the figure-only GFLOPs are checked."""
    out = BuiltTable(spec)
    for row in figure_rows(spec):
        built = _joined(row, target_for(row) or target_for({**row, "table": "T6"}), ctx, "G")
        if built.measurement is not None and row["table"].startswith("F4") and row["gflops"]:
            built.flops_status = _check(out, _row_label(row), "GFLOPs", row["gflops"], built.paper_flops,
                                        bool(built.measurement.error))
        out.rows.append(built)
    return out


def build_table(spec: TableSpec, ctx: Context | None = None) -> BuiltTable:
    ctx = ctx or Context()
    builder = {"results": build_results, "architecture": build_architecture, "formula": build_formula,
               "figure": build_figure}[spec.kind]
    return builder(spec, ctx)


def dite_t5_matrix(built: BuiltTable) -> dict[str, Any]:
    """Dite-HRNet Table 5 as printed: G (rows) x N (columns) -> its row, from the printed names."""
    cells: dict[tuple[str, str], BuiltRow] = {}
    gs: list[str] = []
    ns: list[str] = []
    for row in built.rows:
        m = re.search(r"G=(\d+)\s+N=(\d+)", row.printed["model"])
        if not m:
            continue
        g, n = m.group(1), m.group(2)
        gs.append(g) if g not in gs else None
        ns.append(n) if n not in ns else None
        cells[(g, n)] = row
    return {"G": gs, "N": ns, "cells": cells}
