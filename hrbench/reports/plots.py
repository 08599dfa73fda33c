"""The papers' comparisons as plots (matplotlib Agg), PNG + SVG, byte-for-byte reproducible.

Determinism: fixed figure sizes and dpi, ``svg.hashsalt`` fixed, no Date/Software metadata,
points drawn in a fixed order. Every point carries a label; labels are placed greedily so that
they do not overlap each other.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from hrbench.reports.tables import BuiltRow, BuiltTable, dite_t5_matrix  # noqa: E402

DPI = 110
STYLE = {
    "svg.hashsalt": "hrbench",
    "svg.fonttype": "path",
    "font.size": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
#: Colour per source paper (Okabe-Ito, colour-blind safe).
COLORS = {"lite": "#0072B2", "dite": "#D55E00", "dpn": "#009E73", "other": "#7f7f7f"}


def save(fig, out_dir: Path, name: str) -> list[Path]:
    """Write ``name``.png and ``name``.svg without timestamps; close the figure."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext, meta in (("png", {"Software": None}), ("svg", {"Date": None, "Creator": None})):
        path = out_dir / f"{name}.{ext}"
        fig.savefig(path, dpi=DPI, metadata=meta)
        paths.append(path)
    plt.close(fig)
    return paths


# --------------------------------------------------------------------------------------------
# Label placement
# --------------------------------------------------------------------------------------------
_OFFSETS = ((6, 5), (6, -11), (-6, 5), (-6, -11), (6, 16), (6, -22), (-6, 16), (-6, -22), (14, -3), (-14, -3),
            (6, 27), (6, -33))


def place_labels(ax, xs: Iterable[float], ys: Iterable[float], labels: Iterable[str], fontsize: float = 8,
                 colors: Iterable[str] | None = None) -> None:
    """Annotate every point, trying offsets until the label box overlaps no earlier label or point."""
    fig = ax.figure
    fig.canvas.draw()  # fixes the transforms (limits, scales)
    scale = 72.0 / fig.dpi
    pts = [(float(x), float(y)) for x, y in zip(xs, ys, strict=True)]
    disp = [tuple(v * scale for v in ax.transData.transform(p)) for p in pts]
    boxes: list[tuple[float, float, float, float]] = [(dx - 3, dy - 3, dx + 3, dy + 3) for dx, dy in disp]
    colors = list(colors) if colors is not None else ["black"] * len(pts)
    labels = list(labels)
    ext = ax.get_window_extent()
    frame = (ext.x0 * scale, ext.y0 * scale, ext.x1 * scale, ext.y1 * scale)
    order = sorted(range(len(pts)), key=lambda i: (disp[i][0], disp[i][1]))
    for i in order:
        label = labels[i]
        w, h = 0.56 * fontsize * len(label), fontsize * 1.05
        dx, dy = disp[i]
        best = None
        for rank, (ox, oy) in enumerate(_OFFSETS):
            x0 = dx + ox if ox > 0 else dx + ox - w
            box = (x0, dy + oy, x0 + w, dy + oy + h)
            inside = frame[0] <= box[0] and box[2] <= frame[2] and frame[1] <= box[1] and box[3] <= frame[3]
            cost = (sum(_overlap(box, b) for b in boxes) + (0 if inside else 100), rank)
            if best is None or cost < best[0]:
                best = (cost, (ox, oy))
            if cost[0] == 0:
                break
        chosen = best[1]
        ox, oy = chosen
        x0 = dx + ox if ox > 0 else dx + ox - w
        boxes.append((x0, dy + oy, x0 + w, dy + oy + h))
        ax.annotate(label, pts[i], xytext=(ox, oy), textcoords="offset points", fontsize=fontsize,
                    ha="left" if ox > 0 else "right", va="bottom", color=colors[i],
                    arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "#999999"} if abs(oy) > 12 else None)


def _overlap(a, b) -> bool:
    return not (a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1])


# --------------------------------------------------------------------------------------------
# Accuracy vs complexity
# --------------------------------------------------------------------------------------------
def _num(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


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
        return _num(p["gflops"])
    if p.get("mflops"):
        return _num(p["mflops"]) / 1024
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
        handles.append(plt.Line2D([], [], marker="s", ls="", color=COLORS["other"], label="not in hrbench"))
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
# Dite-HRNet Table 5 heat maps
# --------------------------------------------------------------------------------------------
def dite_t5_heatmaps(t: BuiltTable) -> plt.Figure | None:
    mx = dite_t5_matrix(t)
    if not mx["cells"]:
        return None
    gs, ns = mx["G"], mx["N"]

    def grid(fn):
        return np.array([[fn(mx["cells"].get((g, n))) for n in ns] for g in gs], dtype=float)

    def pub(key):
        return lambda r: _num(r.printed[key]) if r is not None and _num(r.printed[key]) is not None else np.nan

    def meas(attr):
        return lambda r: getattr(r, attr) if r is not None and getattr(r, attr) is not None else np.nan

    panels = [("published #Params (M)", grid(pub("params_M")), "{:.1f}"),
              ("published GFLOPs", grid(pub("gflops")), "{:.2f}"),
              ("published AP (COCO val)", grid(pub("AP")), "{:.1f}"),
              ("hrbench #Params (M)", grid(meas("params_M")), "{:.3f}"),
              ("hrbench GFLOPs (paper convention)", grid(meas("paper_flops")), "{:.3f}"),
              ("local AP (runs registry)", grid(lambda r: r.local.metrics.get("AP", np.nan)
                                                if r is not None and r.local else np.nan), "{:.1f}")]
    fig, axes = plt.subplots(2, 3, figsize=(12, 7.4))
    for ax, (title, data, f) in zip(axes.flat, panels, strict=True):
        ax.grid(False)
        if np.all(np.isnan(data)):
            ax.imshow(np.zeros_like(data), cmap="Greys", vmin=0, vmax=1)
            ax.text(1.5, 1.5, "no data (no local runs)" if "local" in title else "no data", ha="center",
                    va="center", fontsize=9, color="#555555")
        else:
            im = ax.imshow(data, cmap="viridis")
            finite = data[np.isfinite(data)]
            mid = (finite.min() + finite.max()) / 2
            for i in range(len(gs)):
                for j in range(len(ns)):
                    if np.isfinite(data[i, j]):
                        ax.text(j, i, f.format(data[i, j]), ha="center", va="center", fontsize=9,
                                color="white" if data[i, j] < mid else "black")
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        ax.set_xticks(range(len(ns)), [",".join(n) for n in ns])
        ax.set_yticks(range(len(gs)), [",".join(g) for g in gs])
        ax.set_xlabel("N (kernels), high → low resolution")
        ax.set_ylabel("G (groups)")
        ax.set_title(title, fontsize=10)
    fig.suptitle("Dite-HRNet Table 5: DSC groups G × kernels N (Dite-HRNet-18, COCO 256x192)", fontsize=11)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# DPN ablations
# --------------------------------------------------------------------------------------------
def _dpn_parse(name: str) -> tuple[int, int, str] | None:
    """'DPN3_64 (DPM at 32x24)' -> (3, 64, 'DPM at 32x24')."""
    m = re.match(r"DPN(\d)_(\d+)\s*\((.+)\)", name)
    return (int(m.group(1)), int(m.group(2)), m.group(3)) if m else None


def _series(t: BuiltTable) -> dict[str, list[tuple[int, float, BuiltRow]]]:
    out: dict[str, list[tuple[int, float, BuiltRow]]] = {}
    for r in t.rows:
        parsed = _dpn_parse(r.printed["model"])
        if parsed and r.printed["AP"]:
            n, c, variant = parsed
            out.setdefault(f"{variant} (DPN*_{c})", []).append((n, float(r.printed["AP"]), r))
    return out


def dpn_count_plot(t: BuiltTable, title: str) -> plt.Figure:
    """AP against the number of DPMs, one line per variant (Tables II and V); at each x the
    higher value is labelled above its point, the lower one below."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7"]
    series = {name: sorted(pts, key=lambda p: p[0]) for name, pts in _series(t).items()}
    for k, (name, pts) in enumerate(series.items()):
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=palette[k % 4], label=name)
    for n in sorted({p[0] for pts in series.values() for p in pts}):
        here = [(ap, k) for k, pts in enumerate(series.values()) for x, ap, _ in pts if x == n]
        top = max(ap for ap, _ in here)
        for ap, k in here:
            above = ap == top
            ax.annotate(f"{ap:.1f}", (n, ap), xytext=(0, 7 if above else -14), textcoords="offset points",
                        ha="center", fontsize=8, color=palette[k % 4])
    ax.set_xticks([1, 2, 3, 4])
    ax.set_xlim(0.6, 4.4)
    lo = min(p[1] for pts in series.values() for p in pts) if series else 0
    hi = max(p[1] for pts in series.values() for p in pts) if series else 1
    ax.set_ylim(lo - 2, hi + 1.5)
    ax.set_xlabel("number of DPMs (DPNn)")
    ax.set_ylabel("AP, COCO val2017 (published)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    fig.tight_layout()
    return fig


def dpn_dilation_plot(t: BuiltTable) -> plt.Figure:
    """Table III: AP against the constant dilation D, the DPM's AP as a dashed line."""
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    palette = {"1": "#0072B2", "4": "#D55E00"}
    xs, ys, labels, cols = [], [], [], []
    groups: dict[str, dict[str, float]] = {}
    for r in t.rows:
        parsed = _dpn_parse(r.printed["model"])
        if parsed and r.printed["AP"]:
            n, c, variant = parsed
            groups.setdefault(f"DPN{n}_{c}", {})[variant] = float(r.printed["AP"])
    for name, vals in groups.items():
        col = palette.get(name[3], "#009E73")
        ds = sorted((int(k[2:]), v) for k, v in vals.items() if k.startswith("D="))
        ax.plot([d for d, _ in ds], [v for _, v in ds], marker="o", color=col, label=f"{name}, constant D")
        if "DPM" in vals:
            ax.axhline(vals["DPM"], color=col, ls="--", lw=1, label=f"{name}, DPM (dilations 32…1)")
            xs.append(8.6)
            ys.append(vals["DPM"])
            labels.append(f"DPM {vals['DPM']:.1f}")
            cols.append(col)
        for d, v in ds:
            xs.append(d)
            ys.append(v)
            labels.append(f"{v:.1f}")
            cols.append(col)
    ax.set_xticks([1, 2, 4, 6, 8])
    ax.set_xlim(0.5, 9.5)
    ax.set_xlabel("dilation D of every dilated conv")
    ax.set_ylabel("AP, COCO val2017 (published)")
    ax.set_title("DPN Table III: DPM vs stacked dilated convolutions (D=k)", fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    fig.tight_layout()
    place_labels(ax, xs, ys, labels, colors=cols)
    return fig


def dpn_resolution_plot(t: BuiltTable) -> plt.Figure:
    """Table IV: AP against GFLOPs for DPMs at 32x24 (140 epochs) and 64x48 (210 epochs)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    palette = ["#0072B2", "#D55E00"]
    xs, ys, labels, cols = [], [], [], []
    for k, (name, pts) in enumerate(sorted(_series(t).items())):
        pts = sorted(pts, key=lambda p: p[0])
        gf = [float(p[2].printed["gflops"]) for p in pts]
        ax.plot(gf, [p[1] for p in pts], marker="o", color=palette[k % 2], label=name.replace(" (DPN*_64)", ""))
        for (n, ap, _), g in zip(pts, gf, strict=True):
            xs.append(g)
            ys.append(ap)
            labels.append(f"DPN{n} {ap:.1f}")
            cols.append(palette[k % 2])
    ax.set_xlabel("GFLOPs as published (conv MACs / 2^30)")
    ax.set_ylabel("AP, COCO val2017 (published)")
    ax.set_title("DPN Table IV: DPM input resolution 32x24 vs 64x48 (DPNn_64)", fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    ax.set_xlim(0, max(xs) * 1.15 if xs else 1)
    fig.tight_layout()
    place_labels(ax, xs, ys, labels, colors=cols)
    return fig


# --------------------------------------------------------------------------------------------
# All plots
# --------------------------------------------------------------------------------------------
COCO_IDS = ("lite-T3", "dite-T2", "dpn-T6", "lite-F4")
MPII_IDS = ("lite-T5", "dite-T4", "lite-F4")


def make_plots(tables: dict[str, BuiltTable], out_dir: Path) -> list[tuple[str, str]]:
    """Write every plot under ``out_dir``; return (file stem, title) pairs in a fixed order."""
    made: list[tuple[str, str]] = []
    with plt.rc_context(STYLE):
        for inp in ("256x192", "384x288"):
            pts = comparison_points(tables, COCO_IDS, "coco", inp, "AP")
            title = f"COCO val2017, {inp}: AP vs GFLOPs (published)"
            save(accuracy_plot(pts, "AP", title), out_dir, f"coco-{inp}-ap-vs-gflops")
            made.append((f"coco-{inp}-ap-vs-gflops", title))
            title = f"COCO val2017, {inp}: AP vs true MACs (hrbench-held models)"
            save(accuracy_plot([p for p in pts if p[2].macs_G is not None], "AP", title, x="macs"), out_dir,
                 f"coco-{inp}-ap-vs-macs")
            made.append((f"coco-{inp}-ap-vs-macs", title))
        pts = comparison_points(tables, MPII_IDS, "mpii", "256x256", "PCKh")
        title = "MPII val, 256x256: PCKh@0.5 vs GFLOPs (published)"
        save(accuracy_plot(pts, "PCKh", title), out_dir, "mpii-256x256-pckh-vs-gflops")
        made.append(("mpii-256x256-pckh-vs-gflops", title))
        title = "MPII val, 256x256: PCKh@0.5 vs true MACs (hrbench-held models)"
        save(accuracy_plot([p for p in pts if p[2].macs_G is not None], "PCKh", title, x="macs"), out_dir,
             "mpii-256x256-pckh-vs-macs")
        made.append(("mpii-256x256-pckh-vs-macs", title))
        if "lite-F4" in tables:
            save(lite_f4_plot(tables["lite-F4"]), out_dir, "lite-F4")
            made.append(("lite-F4", "Lite-HRNet Figure 4 redrawn (COCO AP, MPII PCKh vs GFLOPs)"))
        if "dite-T5" in tables:
            fig = dite_t5_heatmaps(tables["dite-T5"])
            if fig is not None:
                save(fig, out_dir, "dite-T5-heatmaps")
                made.append(("dite-T5-heatmaps", "Dite-HRNet Table 5 as heat maps (params, GFLOPs, AP)"))
        if "dpn-T2" in tables:
            save(dpn_count_plot(tables["dpn-T2"], "DPN Table II: DPM vs normal convolution"), out_dir,
                 "dpn-T2-dpm-vs-normal")
            made.append(("dpn-T2-dpm-vs-normal", "DPN Table II: AP vs number of DPMs, DPM vs normal"))
        if "dpn-T3" in tables:
            save(dpn_dilation_plot(tables["dpn-T3"]), out_dir, "dpn-T3-dilation")
            made.append(("dpn-T3-dilation", "DPN Table III: AP vs constant dilation D"))
        if "dpn-T4" in tables:
            save(dpn_resolution_plot(tables["dpn-T4"]), out_dir, "dpn-T4-resolution")
            made.append(("dpn-T4-resolution", "DPN Table IV: DPMs at 32x24 vs 64x48"))
        if "dpn-T5" in tables:
            save(dpn_count_plot(tables["dpn-T5"], "DPN Table V: DPM vs reversed DPM (RDPM)"), out_dir,
                 "dpn-T5-rdpm")
            made.append(("dpn-T5-rdpm", "DPN Table V: AP vs number of DPMs, DPM vs RDPM"))
    return made


def latency_plot(points: list[tuple[str, float, float, str]], metric: str, title: str) -> plt.Figure:
    """(label, latency ms, published metric, paper) -> published accuracy against measured latency."""
    fig, ax = plt.subplots(figsize=(7.2, 4.6))
    xs = [p[1] for p in points]
    ys = [p[2] for p in points]
    cols = [COLORS.get(p[3], COLORS["other"]) for p in points]
    ax.scatter(xs, ys, s=36, color=cols, zorder=3)
    if xs:
        ax.set_xscale("log")
        ax.set_xlim(min(xs) / 1.5, max(xs) * 2.2)
        pad = max(1.0, (max(ys) - min(ys)) * 0.1)
        ax.set_ylim(min(ys) - pad, max(ys) + pad * 1.5)
    ax.set_xlabel("latency, ms per image (batch 1, this machine)")
    ax.set_ylabel(f"{metric} (published)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    place_labels(ax, xs, ys, [p[0] for p in points], colors=cols)
    return fig
