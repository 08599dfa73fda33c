"""Latency report for ``make bench`` (``hrbench tables --bench``): every registered model timed on
this machine beside its FLOPs and published accuracy. Machine-dependent, so it lives in
``reports/bench/`` and is not part of ``make tables``.

Timing uses :func:`hrbench.bench.latency.benchmark_model` (eager fp32 mode: warm-up calls, then
the median of timed calls, CUDA-synchronised on a GPU). Beside FLOPs: the memory traffic of one
forward (kernel launches, MB moved at fp32, MACs per byte; :mod:`hrbench.complexity.traffic`).
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import torch

from hrbench.bench.latency import BUSY_SHARE, benchmark_model
from hrbench.cards import reported_for
from hrbench.complexity.measure import measure_model
from hrbench.complexity.result import stamp
from hrbench.datasets import get_dataset
from hrbench.device import resolve_device
from hrbench.errors import HrbenchError
from hrbench.factory import create_model
from hrbench.reference import rows_of
from hrbench.registry import get_entry
from hrbench.reports.render import fmt, markdown_table, to_csv, write_text
from hrbench.reports.targets import target_for
from hrbench.stack import software_stack

#: (dataset, input) each model is timed at: its paper's COCO default.
BENCH_INPUT = ("coco", (256, 192))


def time_model(model: torch.nn.Module, input_hw: tuple[int, int], dev: torch.device, batch: int = 1,
               warmup: int = 3, repeats: int = 10, loads: list[dict[str, Any]] | None = None) -> float:
    """Median seconds of one forward pass of a ``batch`` x 3 x H x W input (eager fp32); the run's
    busy-machine stamp (:func:`hrbench.bench.latency.load_stamp`) is appended to ``loads``."""
    res = benchmark_model(model, input_hw, batch=batch, device=str(dev), modes=("eager",), iters=repeats,
                          warmup=warmup)
    row = res.rows[0]
    if row.error or row.median_ms is None:
        raise HrbenchError(f"timing failed: {row.error}")
    if loads is not None:
        loads.append(res.load)
    return row.median_ms / 1e3


def published_accuracy(name: str, dataset: str, inp: str) -> str:
    """The first published AP/PCKh of ``name`` at (dataset, input), as printed; '' if none."""
    metric = get_dataset(dataset).metric
    for r in reported_for(name):
        if r["dataset"] == dataset and r["input"] == inp and r.get(metric) is not None and r.get("split") != \
                "test-dev2017":
            return f"{r[metric]:.1f}"
    return ""


#: The comparison tables whose models are timed by default (the papers' main results).
BENCH_TABLES = (("lite", "T3"), ("lite", "T5"), ("dite", "T2"), ("dite", "T4"), ("dpn", "T6"), ("dpn", "T7"))


def default_models() -> list[str]:
    """Registry entries printed in the papers' main comparison tables (not every ablation variant)."""
    names = {t.model for src, tab in BENCH_TABLES for r in rows_of(src, tab)
             if (t := target_for(r)) is not None and not t.overrides}
    return sorted(names)


#: The files :func:`run_bench` writes into its folder.
OUTPUTS = ("latency.md", "latency.csv", "ap-vs-latency.png", "ap-vs-latency.svg", "latency-vs-macs-bytes.png",
           "latency-vs-macs-bytes.svg")


def run_bench(out_dir: str | Path = "reports/bench", device: str = "cpu", batch: int | None = None, console=None,
              models: list[str] | None = None, repeats: int = 5) -> dict[str, Any]:
    """Time the papers' main models (or ``models``); write ``latency.md``, ``latency.csv`` and the
    AP-vs-latency plot. Throughput is measured at ``batch`` (default 32 on CUDA; on CPU batch 1,
    i.e. the latency run itself)."""
    from hrbench.manifest import commit, refuse_foreign, staging

    dev = resolve_device(device)
    out = Path(out_dir)
    refuse_foreign(out, OUTPUTS)  # before the timing: a file hrbench did not write at an output path
    batch = batch or (32 if dev.type == "cuda" else 1)
    dataset, hw = BENCH_INPUT
    inp = f"{hw[0]}x{hw[1]}"
    rows = []
    names = models or default_models()
    for i, name in enumerate(names):
        if console is not None:
            console.print(f"[{i + 1}/{len(names)}] timing {name} at {inp} on {dev}")
        torch.manual_seed(0)
        model = create_model(name, num_keypoints=17)
        # #Params, paper MFLOPs, true MACs and traffic from one instrumented pass of the timed model; a
        # model that cannot be counted raises an HrbenchError naming it (never a row of zeros)
        c = measure_model(model, hw, convention=get_entry(name).convention, engines=("paper", "macs"), arch=name)
        loads: list[dict[str, Any]] = []
        lat = time_model(model, hw, dev, batch=1, warmup=2, repeats=repeats, loads=loads)
        thr = 1 / lat if batch == 1 else batch / time_model(model, hw, dev, batch=batch, warmup=1,
                                                              repeats=max(2, repeats // 2))
        tr = c.traffic["total"]
        rows.append({"model": name, "paper": get_entry(name).paper, "params_M": c.params / 1e6,
                     "paper_gflops": c.paper_mflops / 1024, "macs_G": c.counts["macs"] / 1e9,
                     "launches": tr["launches"], "mb_fp32": tr["bytes_fp32"] / 1e6,
                     "intensity": tr["intensity_fp32"], "latency_ms": lat * 1e3, "throughput": thr,
                     "ap": published_accuracy(name, dataset, inp), "other_share": loads[0]["other_share"],
                     "busy": loads[0]["busy"]})
    header = ["model", "paper", "#Params (M)", "paper GFLOPs", "MACs (G)", "launches", "MB moved (fp32)",
              "MACs/byte", "latency (ms, batch 1)", f"throughput (img/s, batch {batch})",
              "published AP (COCO val 256x192)", "others' CPU share"]
    body = [[r["model"], r["paper"], fmt(r["params_M"], 3), fmt(r["paper_gflops"], 3), fmt(r["macs_G"], 3),
             str(r["launches"]), fmt(r["mb_fp32"], 1), fmt(r["intensity"], 2), fmt(r["latency_ms"], 2),
             fmt(r["throughput"], 1), r["ap"] or "-",
             f"{r['other_share']:.0%}" + (" BUSY" if r["busy"] else "")] for r in rows]
    machine = f"{platform.machine()} {platform.processor() or ''}".strip()
    devname = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU ({machine}, " \
        f"{torch.get_num_threads()} threads)"
    stack = software_stack(dev)
    md = "\n".join([f"# Latency on this machine ({devname})", "",
                    "Machine-dependent (`make bench`); not part of `make tables`. Median of repeated forward "
                    f"passes after warm-up, eval mode, no autograd, input {inp}, K=17. Launches, MB moved "
                    "(reads + writes, every tensor in fp32) and MACs per byte: the ATen census of one batch-1 "
                    "forward (`hrbench flops ARCH --by-module`). Others' CPU share: what other processes kept busy "
                    "around each model's timing (`/proc/stat`); BUSY from "
                    f"{BUSY_SHARE:.0%}: such figures are inflated, compare them as ratios.", "",
                    "Counted with " + ", ".join(f"{k} {v}" for k, v in stamp(hw, 17, "true MACs").items()) + ".",
                    "", "Every row ran on: " + ", ".join(f"{k} {v}" for k, v in stack.items()) + ".", "",
                    markdown_table(header, body), "![AP vs latency](ap-vs-latency.png)", "",
                    "![latency vs MACs vs bytes](latency-vs-macs-bytes.png)", ""])
    with staging(out) as stage:  # replaces only what hrbench wrote (hrbench.manifest)
        write_text(stage / "latency.md", md)
        write_text(stage / "latency.csv", to_csv(header, body))
        _plot(rows, stage)
        _plot_traffic(rows, stage)
        notes = commit(stage, out)
    return {"device": devname, "rows": [{**r, "stack": stack} for r in rows], "markdown": str(out / "latency.md"),
            "stack": stack, "notes": notes}


def _plot(rows: list[dict[str, Any]], out: Path) -> None:
    """Published AP against paper GFLOPs and against measured latency, every timed model with an AP."""
    import matplotlib.pyplot as plt

    from hrbench.reports.plot_base import STYLE

    pts = [r for r in rows if r["ap"]]
    ys = [float(r["ap"]) for r in pts]
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
        for ax, key, label in ((axes[0], "paper_gflops", "GFLOPs (paper convention, hrbench)"),
                               (axes[1], "latency_ms", "latency, ms per image (batch 1, this machine)")):
            xs = [r[key] for r in pts]
            ax.scatter(xs, ys, s=36, color=_colors(pts), zorder=3)
            if xs:
                ax.set_xscale("log")
                lo, hi = min(xs) / 1.8, max(xs) * 2.6
                ax.set_xlim(lo, hi)
                ax.set_ylim(min(ys) - 2, max(ys) + 3)
                ticks = [m * 10.0 ** e for e in range(-2, 6) for m in (1, 2, 5) if lo <= m * 10.0 ** e <= hi]
                ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
                ax.minorticks_off()
            ax.set_xlabel(label)
            ax.set_ylabel("AP, COCO val 256x192 (published)")
        axes[0].set_title("AP vs GFLOPs", fontsize=10)
        axes[1].set_title("AP vs measured latency", fontsize=10)
        _label_and_save(fig, axes, ("paper_gflops", "latency_ms"), pts, ys, out, "ap-vs-latency")


def _plot_traffic(rows: list[dict[str, Any]], out: Path) -> None:
    """Latency against true MACs and against bytes moved, every timed model (log-log)."""
    import matplotlib.pyplot as plt

    from hrbench.reports.plot_base import STYLE

    ys = [r["latency_ms"] for r in rows]
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
        for ax, key, label in ((axes[0], "macs_G", "true MACs (G), batch 1"),
                               (axes[1], "mb_fp32", "MB moved per forward (fp32 reads + writes)")):
            ax.scatter([r[key] for r in rows], ys, s=36, color=_colors(rows), zorder=3)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(label)
            ax.set_ylabel("latency, ms per image (batch 1, this machine)")
        axes[0].set_title("latency vs MACs", fontsize=10)
        axes[1].set_title("latency vs bytes moved", fontsize=10)
        _label_and_save(fig, axes, ("macs_G", "mb_fp32"), rows, ys, out, "latency-vs-macs-bytes")


def _colors(rows: list[dict[str, Any]]) -> list[str]:
    from hrbench.reports.plot_base import COLORS

    return [COLORS.get(r["paper"], COLORS["other"]) for r in rows]


def _label_and_save(fig, axes, keys: tuple[str, str], rows: list[dict[str, Any]], ys: list[float], out: Path,
                    name: str) -> None:
    """Lay the figure out, label every point of each panel (x: ``rows[key]``) with its model, save it."""
    from hrbench.reports.plot_base import place_labels, save

    fig.tight_layout()
    for ax, key in zip(axes, keys, strict=True):
        place_labels(ax, [r[key] for r in rows], ys, [r["model"] for r in rows], colors=_colors(rows))
    save(fig, out, name)
