"""The papers' comparisons as plots (PNG + SVG, byte-for-byte reproducible, :mod:`plot_base`):
accuracy against published GFLOPs and against hrbench's true MACs (COCO, MPII), Lite-HRNet Figure 4
redrawn, and the ablation plots of :mod:`ablation_plots`. Points are drawn in a fixed order and every
point carries a label.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.pyplot as plt

from hrbench.reports.ablation_plots import dite_t5_heatmaps, dpn_count_plot, dpn_dilation_plot, dpn_resolution_plot
from hrbench.reports.plot_base import COLORS, STYLE, num, place_labels, save
from hrbench.reports.tables import BuiltRow, BuiltTable


def comparison_points(tables: dict[str, BuiltTable], ids: tuple[str, ...], dataset: str, inp: str,
                      metric: str) -> list[tuple[str, str, BuiltRow]]:
    """(paper, label, row) of every printed model at (dataset, input) with a published GFLOPs
    figure and ``metric``. A point printed identically by an earlier table (tables listed by
    precision) is drawn once; the same name with other numbers gets the paper as suffix."""
    seen_xy: set[tuple[float, str]] = set()
    names: set[str] = set()
    out = []
    for tid in ids:
        t = tables.get(tid)
        if t is None:
            continue
        for r in t.rows:
            p = r.printed
            if p["dataset"] != dataset or p["input"] != inp or not p.get(metric):
                continue
            xy = (_gflops(p), p[metric])
            if xy[0] is None or xy in seen_xy:
                continue
            name = _short(p["model"])
            if any(q[1] == name and q[2].printed[metric] == p[metric] for q in out):
                continue  # the same model and accuracy, printed with other rounding of its GFLOPs
            if name in names:
                name = f"{name} [{t.spec.paper}]"
            names.add(name)
            seen_xy.add(xy)
            out.append((t.spec.paper, name, r))
    return out


def _gflops(p: dict[str, str]) -> float | None:
    if p.get("gflops"):
        return num(p["gflops"])
    if p.get("mflops"):
        return num(p["mflops"]) / 1024
    return None


def _short(name: str) -> str:
    return re.sub(r"\s+1x$", "", name).replace("Wider Naive", "Wider naive")


def accuracy_plot(points: list[tuple[str, str, BuiltRow]], metric: str, title: str, x: str = "published",
                  xlabel: str = "") -> plt.Figure:
    """``metric`` (published) against published GFLOPs (``x='published'``) or hrbench's true MACs."""
    fig, ax = plt.subplots(figsize=(7.2, 4.6))
    xs, ys, labels, cols = [], [], [], []
    for paper, label, row in points:
        xv = _gflops(row.printed) if x == "published" else row.macs_G
        if xv is None:
            continue
        held = row.target is not None
        col = COLORS[paper] if held else COLORS["other"]
        ax.scatter([xv], [float(row.printed[metric])], s=36, color=col, marker="o" if held else "s",
                   edgecolor="white", linewidth=0.5, zorder=3)
        xs.append(xv)
        ys.append(float(row.printed[metric]))
        labels.append(label)
        cols.append(col)
    if xs:
        ax.set_xscale("log")
        lo, hi = min(xs), max(xs)
        ax.set_xlim(lo / 1.8, hi * 2.6)
        pad = max(1.0, (max(ys) - min(ys)) * 0.1)
        ax.set_ylim(min(ys) - pad, max(ys) + pad * 1.5)
        ticks = [v for v in (0.1, 0.2, 0.3, 0.5, 1, 2, 3, 5, 10, 20, 50) if lo / 1.8 <= v <= hi * 2.6]
        ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
        ax.minorticks_off()
    ax.set_xlabel(xlabel or ("GFLOPs as published (each paper's own counter)" if x == "published"
                             else "true multiply-accumulates, G (hrbench, decimal)"))
    ax.set_ylabel(f"{metric} (published)")
    ax.set_title(title, fontsize=10)
    handles = [plt.Line2D([], [], marker="o", ls="", color=COLORS[p], label=lbl) for p, lbl in
               (("lite", "Lite-HRNet paper row (in hrbench)"), ("dite", "Dite-HRNet paper row (in hrbench)"),
                ("dpn", "DPN slides row (in hrbench)")) if COLORS[p] in cols]
    if COLORS["other"] in cols:
        handles.append(plt.Line2D([], [], marker="s", ls="", color=COLORS["other"],
                                  label="not measured (not in hrbench, or a system outside its scope)"))
    ax.legend(handles=handles, fontsize=7, loc="lower right", frameon=False)
    fig.tight_layout()
    place_labels(ax, xs, ys, labels, colors=cols)
    return fig


def lite_f4_plot(t: BuiltTable) -> plt.Figure:
    """Lite-HRNet Figure 4 redrawn from its points: (a) COCO val 256x192 AP, (b) MPII val PCKh,
    against the printed GFLOPs, with the figure's own short labels."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    for ax, dataset, metric, title in ((axes[0], "coco", "AP", "(a) COCO val, 256x192"),
                                       (axes[1], "mpii", "PCKh", "(b) MPII val, 256x256")):
        rows = [r for r in t.rows if r.printed["dataset"] == dataset and r.printed.get(metric)]
        xs = [_gflops(r.printed) for r in rows]
        ys = [float(r.printed[metric]) for r in rows]
        cols = [COLORS["lite"] if r.target is not None else COLORS["other"] for r in rows]
        ax.scatter(xs, ys, s=40, color=cols, zorder=3)
        ax.set_xlim(0, max(xs) * 1.25 if xs else 1)
        if ys:
            ax.set_ylim(min(ys) - 2, max(ys) + 2.5)
        ax.set_xlabel("GFLOPs (as printed)")
        ax.set_ylabel(f"{metric} (published)")
        ax.set_title(title, fontsize=10)
        fig.tight_layout()
        place_labels(ax, xs, ys, [f"{r.printed['point']} ({r.printed.get('gflops')})" for r in rows], colors=cols,
                     fontsize=8)
    fig.suptitle("Lite-HRNet Figure 4: complexity vs accuracy (blue: in hrbench)", fontsize=11)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# All plots
# --------------------------------------------------------------------------------------------
COCO_IDS = ("lite-T3", "dite-T2", "dpn-T6", "lite-F4")
MPII_IDS = ("lite-T5", "dite-T4", "lite-F4")


def make_plots(tables: dict[str, BuiltTable], out_dir: Path,
               formats: tuple[str, ...] = ("png", "svg")) -> list[tuple[str, str]]:
    """Write every plot under ``out_dir`` in ``formats``; return (file stem, title) pairs in a fixed order."""
    made: list[tuple[str, str]] = []
    with plt.rc_context(STYLE):
        for inp in ("256x192", "384x288"):
            pts = comparison_points(tables, COCO_IDS, "coco", inp, "AP")
            title = f"COCO val2017, {inp}: AP vs GFLOPs (published)"
            save(accuracy_plot(pts, "AP", title), out_dir, f"coco-{inp}-ap-vs-gflops", formats)
            made.append((f"coco-{inp}-ap-vs-gflops", title))
            title = f"COCO val2017, {inp}: AP vs true MACs (hrbench-held models)"
            save(accuracy_plot([p for p in pts if p[2].macs_G is not None], "AP", title, x="macs"), out_dir,
                 f"coco-{inp}-ap-vs-macs", formats)
            made.append((f"coco-{inp}-ap-vs-macs", title))
        pts = comparison_points(tables, MPII_IDS, "mpii", "256x256", "PCKh")
        title = "MPII val, 256x256: PCKh@0.5 vs GFLOPs (published)"
        save(accuracy_plot(pts, "PCKh", title), out_dir, "mpii-256x256-pckh-vs-gflops", formats)
        made.append(("mpii-256x256-pckh-vs-gflops", title))
        title = "MPII val, 256x256: PCKh@0.5 vs true MACs (hrbench-held models)"
        save(accuracy_plot([p for p in pts if p[2].macs_G is not None], "PCKh", title, x="macs"), out_dir,
             "mpii-256x256-pckh-vs-macs", formats)
        made.append(("mpii-256x256-pckh-vs-macs", title))
        if "lite-F4" in tables:
            save(lite_f4_plot(tables["lite-F4"]), out_dir, "lite-F4", formats)
            made.append(("lite-F4", "Lite-HRNet Figure 4 redrawn (COCO AP, MPII PCKh vs GFLOPs)"))
        if "dite-T5" in tables:
            fig = dite_t5_heatmaps(tables["dite-T5"])
            if fig is not None:
                save(fig, out_dir, "dite-T5-heatmaps", formats)
                made.append(("dite-T5-heatmaps", "Dite-HRNet Table 5 as heat maps (params, GFLOPs, AP)"))
        if "dpn-T2" in tables:
            save(dpn_count_plot(tables["dpn-T2"], "DPN Table II: DPM vs normal convolution"), out_dir,
                 "dpn-T2-dpm-vs-normal", formats)
            made.append(("dpn-T2-dpm-vs-normal", "DPN Table II: AP vs number of DPMs, DPM vs normal"))
        if "dpn-T3" in tables:
            save(dpn_dilation_plot(tables["dpn-T3"]), out_dir, "dpn-T3-dilation", formats)
            made.append(("dpn-T3-dilation", "DPN Table III: AP vs constant dilation D"))
        if "dpn-T4" in tables:
            save(dpn_resolution_plot(tables["dpn-T4"]), out_dir, "dpn-T4-resolution", formats)
            made.append(("dpn-T4-resolution", "DPN Table IV: DPMs at 32x24 vs 64x48"))
        if "dpn-T5" in tables:
            save(dpn_count_plot(tables["dpn-T5"], "DPN Table V: DPM vs reversed DPM (RDPM)"), out_dir,
                 "dpn-T5-rdpm", formats)
            made.append(("dpn-T5-rdpm", "DPN Table V: AP vs number of DPMs, DPM vs RDPM"))
    return made
