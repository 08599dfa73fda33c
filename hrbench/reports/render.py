"""Deterministic rendering of built tables: Markdown, CSV and the index (LaTeX: :mod:`hrbench.reports.latex`).

Same inputs give byte-identical files: rows keep the printed order of ``reported.csv`` (itself
fixed), floats use fixed formats, nothing carries a date, a path or a machine name.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from hrbench.datasets import get_dataset
from hrbench.fsutil import write_text_atomic
from hrbench.reference import COCO_METRICS, MPII_METRICS, printed_flops
from hrbench.reports.specs import PAPERS
from hrbench.reports.tables import BuiltRow, BuiltTable, Check, decimals, dite_t5_matrix

MARK = {"yes": "✓", "trunc": "✓ (trunc.)", "no": "✗", "error": "✗ error"}
LEGEND = ("✓ = hrbench's measurement gives the printed figure at the printed precision; "
          "✓ (trunc.) = only when truncated, as this source prints; **✗** = disagrees. "
          "Measured columns: #Params, the paper's own FLOPs convention (binary M/G, as printed), "
          "true multiply-accumulates (decimal G), accuracy of a local run (runs registry).")


# --------------------------------------------------------------------------------------------
# Cell formatting
# --------------------------------------------------------------------------------------------
def fmt(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def marked(text: str, status: str, style: str) -> str:
    if not text or not status:
        return text
    if status in ("no", "error"):
        return f"**{text} {MARK[status]}**" if style == "md" else text
    return f"{text} {MARK[status]}" if style == "md" else text


def local_text(row: BuiltRow, metric: str) -> str:
    """A local run's ``metric`` (1 decimal), with its input/epochs when they differ from the row's."""
    run = row.local
    if run is None or metric not in run.metrics:
        return ""
    text = fmt(run.metrics[metric], 1)
    extra = [f"@{run.input}"] if run.input != row.printed.get("input") else []
    if run.epochs is not None and row.printed.get("epochs") != str(run.epochs):
        extra.append(f"{run.epochs} ep")
    return f"{text} ({', '.join(extra)})" if extra else text


def flops_digits(row: BuiltRow) -> int:
    printed, unit = printed_flops(row.printed)
    if printed:
        return decimals(printed) + 2
    return 3 if row.flops_unit == "G" else 1


def _used(rows: list[dict[str, str]], keys: tuple[str, ...]) -> list[str]:
    return [k for k in keys if any(r.get(k) for r in rows)]


# --------------------------------------------------------------------------------------------
# Results tables (printed rows + measurements)
# --------------------------------------------------------------------------------------------
def results_grid(t: BuiltTable, style: str = "md") -> tuple[list[str], list[list[str]]]:
    """Header and display cells of a results/figure table."""
    printed = [r.printed for r in t.rows]
    metrics = _used(printed, (*COCO_METRICS, *MPII_METRICS))
    datasets = sorted({r["dataset"] for r in printed})
    unit = "G" if any(r.flops_unit == "G" for r in t.rows) else "M"
    mixed_units = any(r.get("gflops") for r in printed) and any(r.get("mflops") for r in printed)
    show_backbone = any(r.get("backbone") and r["backbone"] != r["model"] for r in printed)
    header = ["model"] + (["point"] if t.spec.kind == "figure" else []) + (["backbone"] if show_backbone else [])
    header += (["dataset"] if len(datasets) > 1 else []) + ["input", "#Params (M)"]
    header += ["FLOPs (printed unit)"] if mixed_units else [f"{unit}FLOPs"]
    header += metrics + ["hrbench model", "hrbench #Params (M)",
                         "hrbench FLOPs (paper conv.)" if mixed_units else f"hrbench {unit}FLOPs (paper conv.)",
                         "hrbench MACs (G)"]
    local_cols = [f"local {m}" for m in ("AP", "PCKh") if any(
        r.local and m in r.local.metrics for r in t.rows) or m in metrics]
    header += local_cols
    body: list[list[str]] = []
    for row in t.rows:
        p = row.printed
        cells = [p["model"]] + ([p.get("point", "")] if t.spec.kind == "figure" else [])
        cells += [p.get("backbone", "")] if show_backbone else []
        cells += ([p["dataset"]] if len(datasets) > 1 else []) + [p["input"] or "-", p["params_M"] or "-"]
        pf, pu = printed_flops(p)
        cells.append((f"{pf} {pu}" if mixed_units and pf else pf) or "-")
        cells += [p.get(m) or "-" for m in metrics]
        if row.target is None:
            cells += [row.scope or "not in hrbench", "", "", ""]
        elif row.measurement is None:
            cells += [row.target.label(), "", "", ""]
        elif row.measurement.error:
            cells += [row.target.label(), marked(f"error: {row.measurement.error}", "error", style), "", ""]
        else:
            flops_text = fmt(row.paper_flops, flops_digits(row))
            if mixed_units:
                flops_text = f"{flops_text} {row.flops_unit}"
            cells += [row.target.label(), marked(fmt(row.params_M, 3), row.params_status, style),
                      marked(flops_text, row.flops_status, style), fmt(row.macs_G, 3)]
        for col in local_cols:
            m = col.split()[1]
            cells.append(local_text(row, m))
        body.append(cells)
    return header, body


def results_csv(t: BuiltTable) -> tuple[list[str], list[list[str]]]:
    printed = [r.printed for r in t.rows]
    metrics = _used(printed, (*COCO_METRICS, *MPII_METRICS, "PCKh01"))
    header = ["source", "table", "model", "backbone", "dataset", "split", "input", "params_M", "gflops", "mflops",
              *metrics, "hrbench_model", "overrides", "hrbench_params_M", "params_agree", "hrbench_flops",
              "flops_unit", "flops_agree", "hrbench_macs_G", "agree", "local_metric", "local_value", "local_run",
              "local_input", "local_epochs", "error"]
    body = []
    for row in t.rows:
        p = row.printed
        ok = [s for s in (row.params_status, row.flops_status) if s]
        agree = "" if not ok else ("error" if "error" in ok else "no" if "no" in ok else
                                   "trunc" if "trunc" in ok else "yes")
        metric = get_dataset(p["dataset"]).metric
        local = row.local
        meas = row.measurement
        good = meas is not None and not meas.error
        body.append([
            p["source"], p["table"], p["model"], p.get("backbone", ""), p["dataset"], p.get("split", ""), p["input"],
            p["params_M"], p["gflops"], p["mflops"], *[p.get(m, "") for m in metrics],
            row.target.model if row.target else row.scope or "not in hrbench",
            " ".join(f"{k}={v}" for k, v in (row.target.overrides if row.target else ())).replace(" ", ";")
            if row.target and row.target.overrides else "",
            fmt(row.params_M, 6) if good else "", row.params_status, fmt(row.paper_flops, 4) if good else "",
            row.flops_unit if good else "", row.flops_status, fmt(row.macs_G, 6) if good else "", agree,
            metric if local and metric in local.metrics else "",
            fmt(local.metrics.get(metric), 2) if local and metric in local.metrics else "",
            local.run_id if local and metric in local.metrics else "",
            local.input if local and metric in local.metrics else "",
            str(local.epochs) if local and metric in local.metrics and local.epochs is not None else "",
            meas.error if meas is not None else "",
        ])
    return header, body


# --------------------------------------------------------------------------------------------
# Architecture and formula tables
# --------------------------------------------------------------------------------------------
def _cfg_value(v, nested: bool = False) -> str:
    if isinstance(v, (list, tuple)):
        text = ", ".join(_cfg_value(x, True) for x in v)
        return f"({text})" if nested else text
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def arch_grid(t: BuiltTable, style: str = "md") -> tuple[list[str], list[list[str]]]:
    models = t.arch["models"]
    header = ["", *[m["printed"] + (f" (`{m['name']}`)" if m["name"] and style == "md" else
                                    f" ({m['name']})" if m["name"] else " (not in hrbench)") for m in models]]
    body = [[f, *[_cfg_value(m["config"].get(f, "")) if m["name"] else "" for m in models]]
            for f in t.arch["fields"]]
    sp, t_in = t.spec, f"{t.spec.arch_dataset} {t.spec.arch_input}"

    def meas(m, fn):
        x = m["measurement"]
        return "" if x is None else ("error" if x.error else fn(x))

    body.append([f"published #Params (M) [{t_in}]", *[m["published"][0] or "-" for m in models]])
    body.append([f"hrbench #Params (M) [{t_in}]",
                 *[marked(meas(m, lambda x: fmt(x.params / 1e6, 3)), m.get("params_status", ""), style)
                   for m in models]])
    if any(m["published"][1] for m in models):
        body.append([f"published MFLOPs [{t_in}]", *[m["published"][1] or "-" for m in models]])
    if t.spec.paper == "dpn":  # the slides print binary GFLOPs
        body.append([f"hrbench paper-convention GFLOPs [{t_in}]",
                     *[meas(m, lambda x: fmt(x.paper_mflops / 1024, 3)) for m in models]])
    else:
        body.append([f"hrbench paper-convention MFLOPs [{t_in}]",
                     *[marked(meas(m, lambda x: fmt(x.paper_mflops, 2)), m.get("flops_status", ""), style)
                       for m in models]])
    body.append([f"hrbench MACs (G) [{t_in}]",
                 *[meas(m, lambda x: fmt(x.macs / 1e9 if x.macs is not None else None, 3)) for m in models]])
    del sp
    return header, body


def formula_grid(t: BuiltTable, style: str = "md") -> tuple[list[str], list[list[str]]]:
    header = ["operation", "theory complexity", "printed example FLOPs (M)", "closed-form count",
              "count from layers (walker)", "hrbench (M = 2^20)"]
    body = [[f["operation"], f["formula"], f["printed"], str(f["count"]),
             "" if f["layer_count"] is None else str(f["layer_count"]),
             marked(fmt(f["value"], 4), f["status"], style)] for f in t.formula]
    return header, body


def grid_for(t: BuiltTable, style: str = "md") -> tuple[list[str], list[list[str]]]:
    if t.spec.kind == "architecture":
        return arch_grid(t, style)
    if t.spec.kind == "formula":
        return formula_grid(t, style)
    return results_grid(t, style)


def csv_for(t: BuiltTable) -> tuple[list[str], list[list[str]]]:
    if t.spec.kind in ("results", "figure"):
        return results_csv(t)
    header, body = grid_for(t, style="csv")
    if t.spec.kind == "formula":
        return [*header, "agree"], [[*row, f["status"]] for row, f in zip(body, t.formula, strict=True)]
    models = t.arch["models"]
    body = body + [["params agree", *[m.get("params_status", "") for m in models]],
                   ["flops agree", *[m.get("flops_status", "") for m in models]]]
    return header, body


# --------------------------------------------------------------------------------------------
# Output formats
# --------------------------------------------------------------------------------------------
def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(_md_escape(h) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def to_csv(header: list[str], body: list[list[str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(body)
    return buf.getvalue()


def dite_t5_markdown(t: BuiltTable) -> str:
    """Dite-HRNet Table 5 laid out as printed: G rows x N columns, published beside measured."""
    mx = dite_t5_matrix(t)
    if not mx["cells"]:
        return ""

    def block(title: str, fn) -> str:
        header = ["G \\ N", *[" ".join(n) for n in mx["N"]]]
        body = [[" ".join(g), *[fn(mx["cells"].get((g, n))) for n in mx["N"]]] for g in mx["G"]]
        return f"**{title}**\n\n" + markdown_table(header, body)

    def meas(row, attr, digits, status_attr=None):
        if row is None or row.measurement is None or row.measurement.error:
            return ""
        text = fmt(getattr(row, attr), digits)
        return marked(text, getattr(row, status_attr) if status_attr else "", "md")

    parts = [
        block("published AP", lambda r: r.printed["AP"] if r else ""),
        block("published #Params (M) / hrbench", lambda r: "" if r is None else
              f"{r.printed['params_M']} / {meas(r, 'params_M', 3, 'params_status')}"),
        block("published GFLOPs / hrbench (paper convention)", lambda r: "" if r is None else
              f"{r.printed['gflops']} / {meas(r, 'paper_flops', 4, 'flops_status')}"),
        block("hrbench MACs (G)", lambda r: meas(r, "macs_G", 4)),
        block("local AP (runs registry)", lambda r: local_text(r, "AP") if r is not None else ""),
    ]
    return "## As printed (G rows x N columns)\n\n" + "\n".join(parts)


def table_markdown(t: BuiltTable, plots: list[str] = ()) -> str:
    header, body = grid_for(t, "md")
    out = [f"# {t.spec.title}", "", f"Source: {PAPERS[t.spec.paper]}.", ""]
    if t.spec.note:
        out += [t.spec.note, ""]
    n_ok = sum(c.status in ("yes", "trunc") for c in t.checks)
    if t.checks:
        out += [f"Complexity cells agreeing with the printed figure: **{n_ok} / {len(t.checks)}**.", ""]
    out += [LEGEND, "", markdown_table(header, body)]
    if t.spec.id == "dite-T5":
        out += [dite_t5_markdown(t)]
    for p in plots:
        out += [f"![{p}](../plots/{p}.png)", ""]
    return "\n".join(out).rstrip("\n") + "\n"


# --------------------------------------------------------------------------------------------
# Index
# --------------------------------------------------------------------------------------------
def summary_counts(tables: list[BuiltTable]) -> dict[str, int]:
    checks = [c for t in tables for c in t.checks]
    return {
        "cells": len(checks),
        "agree": sum(c.status in ("yes", "trunc") for c in checks),
        "agree_truncated": sum(c.status == "trunc" for c in checks),
        "disagree": sum(c.status == "no" for c in checks),
        "errors": sum(c.status == "error" for c in checks),
        "formula_cells": sum(1 for t in tables if t.spec.kind == "formula" for _ in t.checks),
    }


def disagreeing(tables: list[BuiltTable]) -> list[Check]:
    return [c for t in tables for c in t.checks if c.status in ("no", "error")]


def index_markdown(tables: list[BuiltTable], plots: list[tuple[str, str]], not_held: int, outside: int,
                   formats: tuple[str, ...] = ("md", "csv")) -> str:
    s = summary_counts(tables)
    out = ["# hrbench reports: the three papers' tables, regenerated", "",
           "Generated by `hrbench tables` (`make tables`) from `hrbench/reference/reported.csv`, the model "
           "registry (`architectures/`) and the local runs registry. Every printed row keeps its published "
           "numbers; hrbench adds #Params, the paper's own FLOPs convention, true MACs and the accuracy of any "
           "local run. Do not edit by hand: regenerate with `make tables` (`hrbench tables --latex` adds LaTeX); "
           "fill the local-accuracy columns by training, e.g. `hrbench ablate dite-table5 --train --data DIR`, "
           "then `make tables` again. Latency (machine-dependent): `make bench` -> `bench/`.", "",
           "## Agreement with the published complexity figures", "",
           f"**{s['agree']} of {s['cells']}** measurable complexity cells agree with the published figure at the "
           f"printed precision ({s['agree_truncated']} of them only by truncation, as the Dite-HRNet paper prints; "
           f"{s['formula_cells']} are Lite-HRNet Table 2's formula cells). "
           f"Disagreeing: {s['disagree']}; measurement errors: {s['errors']}. "
           f"Printed rows for models hrbench does not hold: {not_held}; rows of systems outside its top-down "
           f"scope (bottom-up, detector-integrated, multi-stage): {outside}.", ""]
    bad = disagreeing(tables)
    if bad:
        out += ["| table | row | quantity | published | hrbench |", "|---|---|---|---|---|"]
        for c in sorted(bad, key=lambda c: (c.table, c.row, c.quantity)):
            out.append(f"| [{c.table}](tables/{c.table}.md) | {_md_escape(c.row)} | {c.quantity} | {c.printed} | "
                       f"{'error' if c.measured is None else fmt(c.measured, decimals(c.printed) + 2)} |")
        out.append("")
    else:
        out += ["Every measurable cell agrees.", ""]
    out += ["## Tables", "", "| table | kind | complexity cells agreeing | files |", "|---|---|---|---|"]
    for t in tables:
        n_ok = sum(c.status in ("yes", "trunc") for c in t.checks)
        count = f"{n_ok} / {len(t.checks)}" if t.checks else "-"
        files = " · ".join(f"[{f}](tables/{t.spec.id}.{f})" for f in formats)
        out.append(f"| [{t.spec.title}](tables/{t.spec.id}.md) | {t.spec.kind} | {count} | {files} |")
    out += ["", "## Plots", ""]
    for name, title in plots:
        out.append(f"[<img src=\"plots/{name}.png\" width=\"360\" alt=\"{title}\">](plots/{name}.png) ")
    kinds = ("png", "svg", "pdf") if "tex" in formats else ("png", "svg")
    out += ["", "Each plot also exists as " + " and ".join(k.upper() for k in kinds[1:])
            + " (" + ", ".join(f"`plots/<name>.{k}`" for k in kinds[1:]) + ").", ""]
    out += ["| plot | files |", "|---|---|"]
    out += [f"| {title} | " + " · ".join(f"[{k}](plots/{name}.{k})" for k in kinds) + " |" for name, title in plots]
    out.append("")
    return "\n".join(out)


def write_text(path: Path, text: str) -> None:
    """``text`` to ``path`` through the one atomic writer (:func:`hrbench.fsutil.write_text_atomic`)."""
    write_text_atomic(path, text)
