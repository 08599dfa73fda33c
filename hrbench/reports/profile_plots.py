"""Pictures of ``hrbench profile`` (issue 23): time share against MAC share per block type, and a
roofline-style scatter of the rows (MACs per byte against achieved GMAC/s) under this machine's
measured peaks; for ``--compare``, MACs ratio against latency ratio and each fit's leave-one-out error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hrbench.fsutil import atomic_write
from hrbench.reports.plot_base import DPI, STYLE, plt


def _save_png(fig, path: Path) -> Path:
    """``fig`` as one PNG at ``path`` (written atomically, no timestamp); closes the figure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, binary=True) as f:
        fig.savefig(f, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return path


def plot_profile(d: dict[str, Any], path: Path, top: int = 12) -> Path:
    """Two panels for one profile ``d`` (:func:`hrbench.bench.profile_api.profile_model`)."""
    rows = [r for r in d["groups"]["block_type"] if r["time_ms"] > 0 or r["macs"] > 0][:top]
    with plt.rc_context(STYLE):
        fig, (ax_bar, ax_roof) = plt.subplots(1, 2, figsize=(13, 5.2), gridspec_kw={"width_ratios": [1.1, 1]})
        names = [r["name"] for r in rows][::-1]
        ys = range(len(names))
        for off, key, label, color in ((0.27, "time_share", "time", "#D55E00"), (0.0, "mac_share", "MACs", "#0072B2"),
                                       (-0.27, "byte_share", "bytes moved", "#009E73")):
            ax_bar.barh([y + off for y in ys], [100 * r[key] for r in rows][::-1], height=0.26, color=color,
                        label=label)
        ax_bar.set_yticks(list(ys), names)
        ax_bar.set_xlabel("share of the forward, %")
        ax_bar.legend(loc="lower right", fontsize=8)
        ax_bar.set_title(f"{d['arch']} ({d['mode']}): time share vs MAC share per block type", fontsize=10)
        _roofline(ax_roof, d, rows)
        fig.suptitle(f"{d['arch']} {d['mode']}, {d['device']} {d['threads']} thread(s), batch {d['batch']}, "
                     f"{d['input']}: rows sum {d['row_sum_ms']:.1f} ms vs end-to-end median {d['e2e_ms']:.1f} ms "
                     f"(others' CPU share {d['load']['other_share']:.0%})", fontsize=9)
        fig.tight_layout()
        return _save_png(fig, path)


def _roofline(ax, d: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """Rows at (MACs/byte, achieved GMAC/s), marker area ~ time share; the peak lines."""
    pts = [r for r in rows if r["macs_per_byte"] and r["gmacs_per_s"]]
    xs = [r["macs_per_byte"] for r in pts]
    ys = [r["gmacs_per_s"] for r in pts]
    ax.scatter(xs, ys, s=[20 + 900 * r["time_share"] for r in pts], color="#D55E00", alpha=0.6, zorder=3)
    for r, x, y in zip(pts, xs, ys, strict=True):
        ax.annotate(r["name"], (x, y), fontsize=7, xytext=(4, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    peaks = d.get("peaks")
    if peaks and xs:
        lo, hi = min(xs + [0.05]) / 2, max(xs + [50.0]) * 2
        grid = [lo * (hi / lo) ** (i / 50) for i in range(51)]
        ax.plot(grid, [min(peaks["gmacs"], peaks["gbs"] * x) for x in grid], color="black", lw=1.2,
                label=f"roofline: {peaks['gmacs']:.0f} GMAC/s ({peaks['matmul']}),\n{peaks['gbs']:.1f} GB/s "
                      f"({peaks['copy']})")
        ax.set_xlim(lo, hi)
        ax.set_ylim(min(ys + [peaks["gmacs"]]) / 3, max(ys + [peaks["gmacs"]]) * 2.5)
        ax.legend(loc="upper left", fontsize=7)
    ax.set_xlabel("MACs per byte moved (fp32 reads + writes, eager ATen census)")
    ax.set_ylabel("achieved GMAC/s")
    ax.set_title("roofline: block types at measured time (area ~ time share)", fontsize=10)


def plot_compare(d: dict[str, Any], path: Path) -> Path:
    """MACs ratio and latency ratio to the first model, and each fit's leave-one-out errors."""
    models = d["models"]
    with plt.rc_context(STYLE):
        fig, (ax_r, ax_f) = plt.subplots(1, 2, figsize=(15, 4.8))
        xs = range(len(models))
        ax_r.bar([x - 0.2 for x in xs], [m["macs_ratio"] for m in models], width=0.4, color="#0072B2",
                 label="MACs ratio")
        ax_r.bar([x + 0.2 for x in xs], [m["latency_ratio"] for m in models], width=0.4, color="#D55E00",
                 label="latency ratio")
        ax_r.set_yscale("log")
        ax_r.set_xticks(list(xs), [m["arch"] for m in models], rotation=30, ha="right")
        ax_r.set_ylabel(f"ratio to {models[0]['arch']}")
        ax_r.legend(fontsize=8)
        ax_r.set_title(f"MACs vs latency ({d['mode']}, {d['threads']} thread(s), {d['input']})", fontsize=10)
        fits = d["fits"]
        for k, f in enumerate(fits):
            errs = [100 * abs(m["loo_error"]) if m["loo_error"] is not None else 0 for m in f["models"]]
            width = 0.8 / len(fits)
            ax_f.bar([x - 0.4 + width * (k + 0.5) for x in xs], errs, width=width,
                     label=" + ".join(f["predictors"]) + f" (mean {100 * (f['mean_abs_loo_error'] or 0):.0f}%)")
        ax_f.set_xticks(list(xs), [m["arch"] for m in models], rotation=30, ha="right")
        ax_f.set_ylabel("|leave-one-out error|, % of measured latency")
        ax_f.set_yscale("log")
        ax_f.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax_f.set_title("which count predicts latency: t = a*launches + b*bytes + c*MACs", fontsize=10)
        fig.tight_layout()
        return _save_png(fig, path)
