"""Every table and figure of the three papers, joined to hrbench's measurements.

A :class:`TableSpec` names the ``reported.csv`` rows of one printed table (``source``, ``table``).
:func:`build_table` maps each printed row to a registry entry (its card's ``reported`` pairs) or to
a cell of the ablation grid declared for that table, measures it at the row's input (#Params, the
paper's own FLOPs convention, true MACs), checks each measured complexity cell against the
printed figure at the printed precision, and attaches the accuracy of any local run.
Architecture tables (Lite-HRNet Table 1, Dite-HRNet Table 1, the DPN slide table) are rendered
from the registered configurations; Lite-HRNet Table 2 is recomputed from its formulas.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import re
from collections.abc import Callable
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from hrbench.complexity.measure import measure
from hrbench.complexity.table2 import layer_counts
from hrbench.datasets import DATASET_KEYPOINTS
from hrbench.registry import Grid, GridCell, get_entry, get_grid, list_grids, list_models

#: Accuracy columns printed per dataset, in the papers' order.
COCO_METRICS = ("AP", "AP50", "AP75", "APM", "APL", "AR")
MPII_METRICS = ("PCKh",)


# --------------------------------------------------------------------------------------------
# reported.csv, kept as printed strings (the printed precision matters for the agreement check)
# --------------------------------------------------------------------------------------------
@functools.cache
def printed_rows() -> tuple[dict[str, str], ...]:
    """Every row of ``reported.csv`` with its cells exactly as printed (strings, '' = blank)."""
    text = resources.files("hrbench.reference").joinpath("reported.csv").read_text(encoding="utf-8")
    return tuple(dict(r) for r in csv.DictReader(text.splitlines()))


def rows_of(source: str, table: str) -> list[dict[str, str]]:
    return [r for r in printed_rows() if r["source"] == source and r["table"] == table]


def parse_hw(text: str) -> tuple[int, int] | None:
    m = re.fullmatch(r"(\d+)x(\d+)", text.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


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
# Measurements
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Measurement:
    """hrbench's figures for one model at one input: #Params, the paper's own FLOPs convention
    (binary M, as the papers print it), true multiply-accumulates (decimal)."""

    params: int
    paper_mflops: float
    macs: int | None = None
    error: str = ""


Measurer = Callable[[str, dict, tuple[int, int], int], Measurement]


def _freeze(overrides: dict[str, Any]) -> str:
    return json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in sorted(overrides.items())},
                      sort_keys=True, default=str)


def _measure_uncached(model: str, overrides: dict[str, Any], input_hw: tuple[int, int], k: int) -> Measurement:
    c = measure(model, input_hw, k, overrides=dict(overrides) or None, engines=("paper", "macs"))
    macs = c.counts.get("macs")
    return Measurement(int(c.params), float(c.paper_mflops), int(macs) if macs is not None else None)


@functools.cache
def _cached(model: str, frozen: str, input_hw: tuple[int, int], k: int) -> Measurement:
    try:
        return _measure_uncached(model, json.loads(frozen), input_hw, k)
    except Exception as e:  # a model that cannot be built/measured is reported, not hidden
        return Measurement(0, 0.0, None, error=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")


def default_measurer(model: str, overrides: dict, input_hw: tuple[int, int], k: int) -> Measurement:
    """Measure (cached per process) with :func:`hrbench.complexity.measure.measure`."""
    return _cached(model, _freeze(overrides), tuple(input_hw), k)


# --------------------------------------------------------------------------------------------
# Local runs (the runs registry of the training engine)
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class LocalRun:
    """A finished run of the runs registry, reduced to what the tables join on and show."""

    run_id: str
    arch: str
    overrides: str  # frozen JSON
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
                    _freeze(s.get("overrides") or {}), str(s.get("dataset") or "coco"), _norm_input(s.get("input")),
                    metrics, int(epochs) if isinstance(epochs, (int, float)) else None)


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
    key = _freeze(overrides)
    hits = [r for r in runs if r.arch == arch and r.overrides == key and r.dataset == dataset]
    same = [r for r in hits if r.input == inp]
    return (same or hits or [None])[-1]


# --------------------------------------------------------------------------------------------
# Joining printed rows to registry entries and grid cells
# --------------------------------------------------------------------------------------------
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
        return self.model + " " + " ".join(f"{k}={_fmt_value(v)}" for k, v in self.overrides)


def _fmt_value(v: Any) -> str:
    if isinstance(v, (tuple, list)):
        return ",".join(_fmt_value(x) for x in v)
    return str(v)


def _tokens(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9_=.]+", text.lower()))


def _label_forms(key: str, value: Any) -> set[str]:
    v = _fmt_value(value).lower().replace(" ", "")
    compact = v.replace(",", "")
    forms = {v, compact, f"{key.lower()}={compact}", f"{key.lower()}={v}"}
    if isinstance(value, (tuple, list)) and len(value) == 2:
        forms.add(f"{value[0]}x{value[1]}")
    return forms


def match_cell(model_name: str, cells: tuple[GridCell, ...]) -> GridCell | None:
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


@functools.cache
def _entry_index() -> dict[tuple[str, str], str]:
    index: dict[tuple[str, str], str] = {}
    for name in list_models():
        for pair in get_entry(name).reported:
            index.setdefault(tuple(pair), name)
    return index


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
    index = _entry_index()
    name = index.get((row["source"], row["model"])) or index.get(("*", row["model"]))
    return Target(name, (), "entry") if name else None


# --------------------------------------------------------------------------------------------
# Table specifications
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class TableSpec:
    """One printed table (or figure) of a paper and how to rebuild it.

    ``kind``: 'results' (printed rows + measurements), 'architecture' (from configs),
    'formula' (Lite-HRNet Table 2), 'figure' (the points of a printed plot).
    """

    id: str
    paper: str
    title: str
    kind: str = "results"
    parts: tuple[tuple[str, str], ...] = ()  # (source, table) of reported.csv
    truncates: bool = False  # the source truncates its complexity figures (checked on its other rows)
    giga: int = 1024  # printed "GFLOPs" = paper-convention MFLOPs / giga (Dite Table 5 divides by 1000)
    models: tuple[tuple[str, str], ...] = ()  # architecture tables: (source, printed name)
    arch_input: str = ""
    arch_dataset: str = ""
    arch_published: tuple[tuple[str, str, str], ...] = ()  # (printed name, params_M, mflops)
    note: str = ""

    @property
    def slug(self) -> str:
        return self.id


PAPERS = {"lite": "Lite-HRNet (Yu et al., CVPR 2021)", "dite": "Dite-HRNet (Li et al., IJCAI 2022)",
          "dpn": "DPN, Dilation Pyramid Net (Liu & Guan, slides)"}

TABLES: tuple[TableSpec, ...] = (
    TableSpec("lite-T1", "lite", "Lite-HRNet Table 1: structure of Lite-HRNet-18/30", "architecture",
              parts=(("lite", "T1"),), models=(("lite", "Lite-HRNet-18"), ("lite", "Lite-HRNet-30")),
              arch_input="256x256", arch_dataset="mpii",
              note="Printed FLOPs are at 256x256 (MPII, K=16), torchstat, binary M."),
    TableSpec("lite-T2", "lite", "Lite-HRNet Table 2: 1x1 convolution vs conditional channel weight", "formula",
              note="Recomputed from the printed formulas for the printed example shapes "
                   "X1 = 64x64x40, X2 = 32x32x80; FLOPs in binary M (2^20), as the paper prints them."),
    TableSpec("lite-T3", "lite", "Lite-HRNet Table 3: COCO val2017", parts=(("lite", "T3"),)),
    TableSpec("lite-T4", "lite", "Lite-HRNet Table 4: COCO test-dev2017", parts=(("lite", "T4"),)),
    TableSpec("lite-T5", "lite", "Lite-HRNet Table 5: MPII val (FLOPs at 256x256)", parts=(("lite", "T5"),)),
    TableSpec("lite-F4", "lite", "Lite-HRNet Figure 4: complexity vs accuracy (COCO val 256x192, MPII val)",
              "figure", parts=(("lite", "F4a"), ("lite", "F4b")),
              note="The figure's points: MBV2, SFV2, SHR, WLH-18, LH-18, LH-30; WLH-18's GFLOPs are printed only "
                   "in the figure, the others come from Tables 3 and 5. reported.csv gives WLH-18 0.31 GFLOPs on "
                   "COCO; the figure's label sequence (1.48, 1.28, 0.54, 0.3, 0.2, 0.31 for MBV2, SFV2, SHR, WLH-18, "
                   "LH-18, LH-30) reads as 0.3, which 311.1 MFLOPs / 1024 = 0.304 also gives."),
    TableSpec("lite-T6", "lite", "Lite-HRNet Table 6: conditional channel weight vs 1x1 convolutions",
              parts=(("lite", "T6"),)),
    TableSpec("lite-T7", "lite", "Lite-HRNet Table 7: spatial and multi-resolution weights",
              parts=(("lite", "T7"),)),
    TableSpec("lite-readme", "lite", "Lite-HRNet official README: COCO val2017 and MPII val",
              parts=(("lite-readme", "R1"), ("lite-readme", "R2"))),
    TableSpec("dite-T1", "dite", "Dite-HRNet Table 1: structure of Dite-HRNet-18/30", "architecture",
              models=(("dite", "Dite-HRNet-18"), ("dite", "Dite-HRNet-30")), arch_input="256x192",
              arch_dataset="coco",
              arch_published=(("Dite-HRNet-18", "1.1", "209.8"), ("Dite-HRNet-30", "1.8", "329.8")), truncates=True,
              note="Published params/MFLOPs at 256x192 from the official README (the table prints none); the "
                   "Dite-HRNet sources truncate (1,186,933 parameters print as 1.1)."),
    TableSpec("dite-T2", "dite", "Dite-HRNet Table 2: COCO val2017", parts=(("dite", "T2"),), truncates=True,
              note="This paper prints GFLOPs truncated to one decimal (its MobileNetV2 1.48 -> 1.4, "
                   "ShuffleNetV2 1.28 -> 1.2, 2.87 -> 2.8 against Lite-HRNet Table 3); such cells are marked 'trunc'."),
    TableSpec("dite-T3", "dite", "Dite-HRNet Table 3: COCO test-dev2017", parts=(("dite", "T3"),), truncates=True,
              note="GFLOPs truncated to one decimal by the paper (see Table 2)."),
    TableSpec("dite-T4", "dite", "Dite-HRNet Table 4: MPII val", parts=(("dite", "T4"),), truncates=True,
              note="GFLOPs truncated to one decimal by the paper (MobileNetV2 1.97 -> 1.9)."),
    TableSpec("dite-T5", "dite", "Dite-HRNet Table 5: groups G x kernels N in DSC (Dite-HRNet-18, COCO 256x192)",
              parts=(("dite", "T5"),), truncates=True, giga=1000,
              note="G and N listed from the highest- to the lowest-resolution branch; the printed GFLOPs are "
                   "the paper-convention MFLOPs / 1000, truncated to two decimals (G=4211, N=1244: 240.30 -> "
                   "0.24, where / 1024 would give 0.23). Printed params are rounded inconsistently: "
                   "G=1124, N=4444 prints 1.2 for 1.306M."),
    TableSpec("dite-T6", "dite", "Dite-HRNet Table 6: ACM and DSC ablation", parts=(("dite", "T6"),), truncates=True,
              note="The Dite-HRNet sources truncate their figures (1,186,933 parameters print as 1.1)."),
    TableSpec("dite-readme", "dite", "Dite-HRNet official README: COCO val2017 and MPII val",
              parts=(("dite-readme", "R1"), ("dite-readme", "R2")), truncates=True,
              note="The README truncates (Dite-HRNet-18: 1,186,933 parameters print as 1.1)."),
    TableSpec("dpn-arch", "dpn", "DPN slide table: architecture of DPN4_32 / DPN4_64", "architecture",
              models=(("dpn", "DPN4_32"), ("dpn", "DPN4_64")), arch_input="256x192", arch_dataset="coco",
              arch_published=(("DPN4_32", "0.7", ""), ("DPN4_64", "3.3", "")),
              note="The slide table is OCR-garbled; hrbench's reconstruction is described in its model cards."),
    TableSpec("dpn-T2", "dpn", "DPN Table II: DPM vs normal convolution (COCO val2017)", parts=(("dpn", "T2"),)),
    TableSpec("dpn-T3", "dpn", "DPN Table III: DPM vs stacked dilated convolution D=k", parts=(("dpn", "T3"),)),
    TableSpec("dpn-T4", "dpn", "DPN Table IV: DPM at 64x48 vs 32x24", parts=(("dpn", "T4"),)),
    TableSpec("dpn-T5", "dpn", "DPN Table V: reversed DPM (RDPM) vs DPM", parts=(("dpn", "T5"),)),
    TableSpec("dpn-T6", "dpn", "DPN Table VI: COCO val2017 state of the art", parts=(("dpn", "T6"),)),
    TableSpec("dpn-T7", "dpn", "DPN Table VII: MPII test", parts=(("dpn", "T7"),)),
)


def get_spec(table_id: str) -> TableSpec:
    for spec in TABLES:
        if spec.id == table_id:
            return spec
    raise KeyError(table_id)


def giga_of(source: str, table: str) -> int:
    """MFLOPs per printed GFLOP in the table holding ``(source, table)`` of reported.csv (1024 unless
    the table says otherwise, e.g. Dite-HRNet Table 5: 1000)."""
    return next((spec.giga for spec in TABLES if (source, table) in spec.parts), 1024)


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
    giga: int = 1024  # MFLOPs per printed GFLOP
    params_status: str = ""
    flops_status: str = ""
    local: LocalRun | None = None

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


def printed_flops(row: dict[str, str]) -> tuple[str, str]:
    """(printed value, unit 'G'|'M') of a row's complexity figure; ('', unit) when none."""
    if row.get("gflops"):
        return row["gflops"], "G"
    if row.get("mflops"):
        return row["mflops"], "M"
    return "", "G"


def _row_label(row: dict[str, str]) -> str:
    return f"{row['model']} [{row['dataset']} {row['input']}]"


def build_results(spec: TableSpec, ctx: Context) -> BuiltTable:
    out = BuiltTable(spec)
    for source, table in spec.parts:
        for row in rows_of(source, table):
            target = target_for(row)
            pf, unit = printed_flops(row)
            if not any(r["gflops"] for r in rows_of(source, table)) and any(
                    r["mflops"] for r in rows_of(source, table)):
                unit = "M"
            built = BuiltRow(row, target, None, unit, spec.giga)
            hw = parse_hw(row["input"])
            if target is not None and hw is not None:
                k = DATASET_KEYPOINTS.get(row["dataset"], 17)
                built.measurement = ctx.measurer(target.model, target.override_dict, hw, k)
                built.local = find_local(ctx.runs, target.model, target.override_dict, row["dataset"], row["input"])
                err = bool(built.measurement.error)
                if row["params_M"]:
                    built.params_status = "error" if err else agreement(row["params_M"], built.params_M, spec.truncates)
                    out.checks.append(Check(spec.id, _row_label(row), "params (M)", row["params_M"],
                                            built.params_M, built.params_status))
                if pf:
                    built.flops_status = "error" if err else agreement(pf, built.paper_flops, spec.truncates)
                    out.checks.append(Check(spec.id, _row_label(row), f"{unit}FLOPs", pf, built.paper_flops,
                                            built.flops_status))
            out.rows.append(built)
    return out


def _arch_targets(spec: TableSpec) -> list[tuple[str, str | None]]:
    index = _entry_index()
    return [(printed, index.get((src, printed)) or index.get(("*", printed))) for src, printed in spec.models]


def build_architecture(spec: TableSpec, ctx: Context) -> BuiltTable:
    """Configuration fields of the paper's named variants side by side, plus measured complexity."""
    out = BuiltTable(spec)
    hw = parse_hw(spec.arch_input)
    k = DATASET_KEYPOINTS[spec.arch_dataset]
    published = {name: (p, f) for name, p, f in spec.arch_published}
    for source, table in spec.parts:
        for row in rows_of(source, table):
            published[row["model"]] = (row["params_M"], row["mflops"])
    models = []
    for printed, name in _arch_targets(spec):
        entry = {"printed": printed, "name": name, "config": {}, "measurement": None,
                 "published": published.get(printed, ("", ""))}
        if name is not None:
            entry["config"] = get_entry(name).config().to_dict()
            m = ctx.measurer(name, {}, hw, k)
            entry["measurement"] = m
            label = f"{printed} [{spec.arch_dataset} {spec.arch_input}]"
            p_params, p_flops = entry["published"]
            if p_params:
                status = "error" if m.error else agreement(p_params, m.params / 1e6, spec.truncates)
                entry["params_status"] = status
                out.checks.append(Check(spec.id, label, "params (M)", p_params, None if m.error else m.params / 1e6,
                                        status))
            if p_flops:
                status = "error" if m.error else agreement(p_flops, m.paper_mflops, spec.truncates)
                entry["flops_status"] = status
                out.checks.append(Check(spec.id, label, "MFLOPs", p_flops, None if m.error else m.paper_mflops,
                                        status))
        models.append(entry)
    fields: list[str] = []
    for entry in models:
        for key in entry["config"]:
            if key not in fields:
                fields.append(key)
    out.arch = {"models": models, "fields": fields}
    return out


#: Lite-HRNet Table 2 as printed: (operation, formula, printed example FLOPs in binary M).
LITE_T2 = (
    ("1x1 convolution", "sum_s N_s C_s^2", "12.5"),
    ("3x3 depthwise convolution", "sum_s 9 N_s C_s", "2.1"),
    ("CCW w/ spatial weights", "sum_s (2 C_s^2 + N_s C_s)", "0.25"),
    ("CCW w/ multi-resolution weights", "2 (sum_s C_s)^2 + sum_s N_s C_s", "0.26"),
    ("CCW", "2 (sum_s C_s)^2 + 2 sum_s (C_s^2 + N_s C_s)", "0.51"),
)


def lite_t2_counts(shapes: tuple[tuple[int, int, int], ...] = ((64, 64, 40), (32, 32, 80))) -> list[int]:
    """Lite-HRNet Table 2's five complexity formulas evaluated on (H, W, C) branch shapes."""
    n = [h * w for h, w, _ in shapes]
    c = [ch for _, _, ch in shapes]
    nc = sum(a * b for a, b in zip(n, c, strict=True))
    return [
        sum(a * b * b for a, b in zip(n, c, strict=True)),
        9 * nc,
        sum(2 * b * b for b in c) + nc,
        2 * sum(c) ** 2 + nc,
        2 * sum(c) ** 2 + 2 * (sum(b * b for b in c) + nc),
    ]


def build_formula(spec: TableSpec, ctx: Context) -> BuiltTable:
    """Lite-HRNet Table 2 from its closed forms and from real layers counted by the analytic walker
    (:mod:`hrbench.complexity.table2`; the check uses the layer count)."""
    out = BuiltTable(spec)
    out.formula = []
    layers: dict[str, int] = layer_counts()
    for (op, formula, printed), count in zip(LITE_T2, lite_t2_counts(), strict=True):
        layer = layers.get(op)
        value = (layer if layer is not None else count) / 2**20
        status = agreement(printed, value)
        out.formula.append({"operation": op, "formula": formula, "printed": printed, "count": count,
                            "layer_count": layer, "value": value, "status": status})
        out.checks.append(Check(spec.id, op, "FLOPs (M)", printed, value, status))
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
    out = BuiltTable(spec)
    for row in figure_rows(spec):
        target = target_for({**row, "table": row["table"]}) or target_for({**row, "table": "T6"})
        built = BuiltRow(row, target, None, "G")
        hw = parse_hw(row["input"])
        if target is not None and hw is not None:
            built.measurement = ctx.measurer(target.model, target.override_dict, hw,
                                             DATASET_KEYPOINTS.get(row["dataset"], 17))
            built.local = find_local(ctx.runs, target.model, target.override_dict, row["dataset"], row["input"])
            if row["table"].startswith("F4") and row["gflops"]:
                built.flops_status = "error" if built.measurement.error else agreement(row["gflops"],
                                                                                        built.paper_flops)
                out.checks.append(Check(spec.id, _row_label(row), "GFLOPs", row["gflops"], built.paper_flops,
                                        built.flops_status))
        out.rows.append(built)
    return out


def build_table(spec: TableSpec, ctx: Context | None = None) -> BuiltTable:
    ctx = ctx or Context()
    builder = {"results": build_results, "architecture": build_architecture, "formula": build_formula,
               "figure": build_figure}[spec.kind]
    return builder(spec, ctx)


def build_all(ctx: Context | None = None, specs: tuple[TableSpec, ...] = TABLES) -> list[BuiltTable]:
    ctx = ctx or Context()
    return [build_table(s, ctx) for s in specs]


def metrics_for(dataset: str) -> tuple[str, ...]:
    return MPII_METRICS if dataset == "mpii" else COCO_METRICS


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
