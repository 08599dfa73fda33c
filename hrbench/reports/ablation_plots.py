"""The papers' ablation tables as plots: Dite-HRNet Table 5 (groups G x kernels N) as heat maps, DPN
Tables II-V (number of DPMs, dilation, DPM resolution, reversed DPM) as line plots."""

from __future__ import annotations

import re

import matplotlib.pyplot as plt
import numpy as np

from hrbench.reports.plot_base import num, place_labels
from hrbench.reports.tables import BuiltRow, BuiltTable, dite_t5_matrix


def dite_t5_heatmaps(t: BuiltTable) -> plt.Figure | None:
    """Dite-HRNet Table 5 as six G x N heat maps: published and measured #Params / GFLOPs, published and
    local AP; None when the table has no G=... N=... rows."""
    mx = dite_t5_matrix(t)
    if not mx["cells"]:
        return None
    gs, ns = mx["G"], mx["N"]

    def grid(fn):
        return np.array([[fn(mx["cells"].get((g, n))) for n in ns] for g in gs], dtype=float)

    def pub(key):
        return lambda r: num(r.printed[key]) if r is not None and num(r.printed[key]) is not None else np.nan

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
