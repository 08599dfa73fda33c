"""The deployment comparison of ``make bench`` (``reports/bench/deploy.*``): the networks a user picks
between today, timed in one process, eager and ONNX Runtime, 1 thread, batch 1, 256x192 (issue 22:
RTMPose-t/s beside Lite-/Dite-HRNet-18/30; issue 21: MobileNetV2 / ShuffleNetV2 beside Lite-HRNet-18).

Every (model, mode) pair is prepared first (the ORT ones exported with hrbench's exact rewrites,
:mod:`hrbench.speed.onnx_forms`), then timed in ``rounds`` rounds of one call of each pair in turn, so
a changing load on a shared machine touches every figure alike; the clock is this process's CPU time
(``time.process_time``). Ratios are to Lite-HRNet-18 in the same mode of the same run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from hrbench.bench.latency import TOLERANCE, load_stamp, prepare
from hrbench.bench.timing import summarize, time_calls
from hrbench.complexity.measure import measure_model
from hrbench.errors import HrbenchError
from hrbench.factory import create_model
from hrbench.registry import get_entry
from hrbench.reports.bench import BENCH_INPUT, published_accuracy
from hrbench.reports.render import fmt, markdown_table, to_csv, write_text
from hrbench.stack import software_stack
from hrbench.threads import busy_cpus

#: The networks compared, in table order; the first is every ratio's baseline.
DEPLOY_MODELS = ("litehrnet_18", "litehrnet_30", "ditehrnet_18", "ditehrnet_30", "mobilenetv2_1x",
                 "shufflenetv2_1x", "rtmpose_t", "rtmpose_s")
DEPLOY_MODES = ("eager", "ort")
#: The files :func:`run_deploy` writes into its folder.
OUTPUTS = ("deploy.md", "deploy.csv", "ap-vs-deploy-latency.png", "ap-vs-deploy-latency.svg")


def _first(out: Any) -> torch.Tensor:
    return (out[0] if isinstance(out, (tuple, list)) else out).detach().float()


def time_pairs(models: list[str], modes: tuple[str, ...], rounds: int, input_hw: tuple[int, int],
               warmup: int = 3) -> dict[str, Any]:
    """Median CPU ms of every (model, mode) pair at ``input_hw``, timed alternately (module docstring),
    with each mode's largest output deviation from eager (relative to eager's largest magnitude)."""
    dev = torch.device("cpu")
    hw = input_hw
    x = torch.randn(1, 3, *hw, generator=torch.Generator().manual_seed(0))
    pairs: list[tuple[str, str, Any]] = []
    info: dict[str, dict[str, Any]] = {}
    with torch.inference_mode():
        for name in models:
            torch.manual_seed(0)
            model = create_model(name, num_keypoints=17).eval()
            c = measure_model(model, hw, convention=get_entry(name).convention, engines=("paper", "macs"),
                              arch=name)
            ref = _first(model(x))
            info[name] = {"params_M": c.params / 1e6, "macs_G": c.counts["macs"] / 1e9, "diff": {}}
            for mode in modes:
                fn, _ = prepare(mode, model, x, dev)
                got = _first(fn())
                diff = float((got - ref).abs().max() / ref.abs().max().clamp_min(1e-12))
                if diff > TOLERANCE[mode]:
                    raise HrbenchError(f"{name} in {mode} mode deviates from eager by {diff:.1e} "
                                       f"(tolerance {TOLERANCE[mode]:.0e})")
                info[name]["diff"][mode] = diff
                pairs.append((name, mode, fn))
        for _, _, fn in pairs:
            time_calls(fn, 0, warmup, dev, "cpu")
        times: dict[tuple[str, str], list[float]] = {(n, m): [] for n, m, _ in pairs}
        before = busy_cpus()
        for _ in range(rounds):
            for name, mode, fn in pairs:
                times[(name, mode)] += time_calls(fn, 1, 0, dev, "cpu")
        load = load_stamp(before, busy_cpus())
    for (name, mode), ts in times.items():
        info[name][mode] = summarize(ts, 1)["median_ms"]
    return {"models": info, "load": load}


def run_deploy(out_dir: str | Path = "reports/bench", models: list[str] | None = None, rounds: int = 30,
               console=None, input_hw: tuple[int, int] = BENCH_INPUT[1]) -> dict[str, Any]:
    """Time :data:`DEPLOY_MODELS` (or ``models``) on one CPU thread at ``input_hw`` (the published
    accuracy column is filled only at the papers' 256x192); write ``deploy.md``, ``deploy.csv`` and the
    AP-vs-latency plot of both modes into ``out_dir``."""
    from hrbench.manifest import commit, refuse_foreign, staging

    out = Path(out_dir)
    refuse_foreign(out, OUTPUTS)
    names = list(models or DEPLOY_MODELS)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        if console is not None:
            console.print(f"deployment comparison: {len(names)} models x {', '.join(DEPLOY_MODES)}, "
                          f"{rounds} alternating rounds, 1 thread")
        res = time_pairs(names, DEPLOY_MODES, rounds, input_hw)
        stack = software_stack(torch.device("cpu"))  # as timed: one thread
    finally:
        torch.set_num_threads(threads)
    base = res["models"][names[0]]
    inp = f"{input_hw[0]}x{input_hw[1]}"
    rows = []
    for name in names:
        r = res["models"][name]
        rows.append({"model": name, "paper": get_entry(name).paper, **{k: r[k] for k in ("params_M", "macs_G")},
                     **{m: r[m] for m in DEPLOY_MODES}, "ap": published_accuracy(name, BENCH_INPUT[0], inp),
                     "ort_diff": r["diff"]["ort"], **{f"{m}_vs_base": r[m] / base[m] for m in DEPLOY_MODES}})
    header = ["model", "#Params (M)", "MACs (G)", f"published AP (COCO val {inp})", "eager (ms)", "ort (ms)",
              "ort / eager", f"eager / {names[0]}", f"ort / {names[0]}", "ort max rel. diff"]
    body = [[r["model"], fmt(r["params_M"], 3), fmt(r["macs_G"], 3), r["ap"] or "-", fmt(r["eager"], 2),
             fmt(r["ort"], 2), fmt(r["ort"] / r["eager"], 3), fmt(r["eager_vs_base"], 3), fmt(r["ort_vs_base"], 3),
             f"{r['ort_diff']:.1e}"] for r in rows]
    load = res["load"]
    md = "\n".join([
        f"# Deployment comparison on this machine (CPU, 1 thread, batch 1, {inp})", "",
        "Machine-dependent (`make bench`); not part of `make tables`. Every model and mode was prepared first "
        "(ort: `hrbench export`'s graph with its exact rewrites, ONNX Runtime CPU execution provider), then "
        f"timed in {rounds} rounds of one call of each (model, mode) in turn: median of this process's CPU "
        f"time per call. Ratios are to {names[0]} in the same mode, same run.", "",
        f"Others' CPU share during the timing: {load['other_share']:.0%}"
        + (" (BUSY: compare the figures as ratios only)." if load["busy"] else "."), "",
        "Every row ran on: " + ", ".join(f"{k} {v}" for k, v in stack.items()) + ".", "",
        markdown_table(header, body), "![AP vs deployment latency](ap-vs-deploy-latency.png)", ""])
    with staging(out) as stage:
        write_text(stage / "deploy.md", md)
        write_text(stage / "deploy.csv", to_csv(header, body))
        _plot(rows, stage, inp)
        notes = commit(stage, out)
    return {"rows": rows, "load": load, "rounds": rounds, "markdown": str(out / "deploy.md"), "notes": notes}


def _plot(rows: list[dict[str, Any]], out: Path, inp: str) -> None:
    """Published AP against the eager and the ORT latency of every compared model with an AP."""
    import matplotlib.pyplot as plt

    from hrbench.reports.plot_base import COLORS, STYLE, place_labels, save

    pts = [r for r in rows if r["ap"]]
    ys = [float(r["ap"]) for r in pts]
    colors = [COLORS.get(r["paper"], COLORS["other"]) for r in pts]
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharey=True)
        for ax, mode in zip(axes, DEPLOY_MODES, strict=True):
            ax.scatter([r[mode] for r in pts], ys, s=36, color=colors, zorder=3)
            ax.set_xlim(0, max([r[mode] for r in pts], default=1.0) * 1.18)
            ax.set_xlabel(f"{mode} latency, CPU ms per image (1 thread, batch 1, this machine)")
            ax.set_title(f"AP vs {mode} latency", fontsize=10)
        axes[0].set_ylabel(f"AP, COCO val {inp} (published)")
        if ys:
            axes[0].set_ylim(min(ys) - 2, max(ys) + 3)
        fig.tight_layout()
        for ax, mode in zip(axes, DEPLOY_MODES, strict=True):
            place_labels(ax, [r[mode] for r in pts], ys, [r["model"] for r in pts], colors=colors)
        save(fig, out, "ap-vs-deploy-latency")
