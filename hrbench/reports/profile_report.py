"""The ``hrbench profile --compare`` report under ``reports/bench/``: models side by side (MACs ratio vs
latency ratio), the least-squares fits of latency on launches / bytes / MACs with each model's error
and leave-one-out error, and every model's time share vs MAC share per block type (issue 23).
Machine-dependent, like the rest of ``reports/bench/``; stamped with the machine's load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hrbench.fsutil import atomic_write
from hrbench.reports.profile_plots import plot_compare
from hrbench.reports.render import markdown_table

NAME = "profile-compare"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:+.1f}%"


def compare_markdown(d: dict[str, Any]) -> str:
    """The report's text (see the module docstring)."""
    models = d["models"]
    first = models[0]["arch"]
    header = ["model", "MACs (M)", "launches", "MB moved (fp32)", "e2e median (ms)", f"MACs / {first}",
              f"latency / {first}", "rows sum / e2e", "others' CPU share"]
    body = [[m["arch"], f"{m['macs'] / 1e6:.1f}", str(m["launches"]), f"{m['bytes'] / 1e6:.1f}", f"{m['e2e_ms']:.2f}",
             f"{m['macs_ratio']:.3f}", f"{m['latency_ratio']:.3f}", f"{m['sum_vs_e2e']:.3f}",
             f"{m['other_share']:.0%}" + (" BUSY" if m["busy"] else "")] for m in models]
    fit_header = ["predictors", "coefficients", "mean abs fit error", "mean abs leave-one-out error"]
    fit_body = [[" + ".join(f["predictors"]),
                 ", ".join(f"{p} {_coef(p, c)}" for p, c in f["coef"].items()),
                 f"{100 * f['mean_abs_fit_error']:.1f}%",
                 "-" if f["mean_abs_loo_error"] is None else f"{100 * f['mean_abs_loo_error']:.1f}%"]
                for f in d["fits"]]
    full = next(f for f in d["fits"] if len(f["predictors"]) == 3) if any(len(f["predictors"]) == 3
                                                                           for f in d["fits"]) else d["fits"][-1]
    err_header = ["model", "measured (ms)"] + [f"{' + '.join(f['predictors'])}: LOO" for f in d["fits"]]
    err_body = [[m["arch"], f"{m['e2e_ms']:.2f}"] + [_pct(f["models"][i]["loo_error"]) for f in d["fits"]]
                for i, m in enumerate(models)]
    peaks = d["peaks"]
    lines = [f"# Why fewer MACs are not faster: {len(models)} models profiled in one run ({d['mode']}, "
             f"{d['threads']} thread(s), batch 1, {d['input']})", "",
             "Machine-dependent (`hrbench profile --compare " + ",".join(m["arch"] for m in models) +
             f" --mode {d['mode']} --threads {d['threads']}`). End-to-end: median {d['clock']} time of {d['iters']} "
             "plain forwards (cpu: this process's CPU time, which the machine's other processes do not inflate), "
             "alternating with profiled ones; MACs, launches and bytes: the batch-1 ATen census. This machine's "
             f"peaks in the same run: {peaks['gmacs']:.1f} GMAC/s ({peaks['matmul']}), {peaks['gbs']:.1f} GB/s "
             f"({peaks['copy']}).", "",
             markdown_table(header, body), "",
             "## Which count predicts latency",
             "Least squares without intercept, t ≈ a·launches + b·bytes + c·MACs and every subset; error = "
             "fit / measured − 1; leave-one-out (LOO): each model predicted by the fit to the others. "
             f"Best by mean LOO error: **{' + '.join(d['best'])}**.", "",
             markdown_table(fit_header, fit_body), "", markdown_table(err_header, err_body), "",
             f"Full fit ({' + '.join(full['predictors'])}): "
             f"per launch {_coef('launches', full['coef'].get('launches'))}, "
             f"per MB {_coef('bytes', full['coef'].get('bytes'))}, per GMAC {_coef('macs', full['coef'].get('macs'))}.",
             "", f"![MACs vs latency, fit errors]({NAME}.png)", "", "## Time share vs MAC share per block type", ""]
    for p in d["profiles"]:
        rows = p["groups"]["block_type"][:8]
        lines += [f"**{p['arch']}** — e2e {p['e2e_ms']:.2f} ms, rows sum {p['row_sum_ms']:.2f} ms "
                  f"({p['sum_vs_e2e']:.3f} of e2e), overhead of profiling {p['overhead_ms']:.2f} ms", "",
                  markdown_table(["block type", "time ms", "time share", "MAC share", "launches", "GMAC/s", "GB/s"],
                                 [[r["name"], f"{r['time_ms']:.2f}", f"{100 * r['time_share']:.1f}%",
                                   f"{100 * r['mac_share']:.1f}%", str(r["launches"]),
                                   "-" if r["gmacs_per_s"] is None else f"{r['gmacs_per_s']:.2f}",
                                   "-" if r["gb_per_s"] is None else f"{r['gb_per_s']:.2f}"] for r in rows]), ""]
    return "\n".join(lines)


def _coef(pred: str, c: float | None) -> str:
    """A coefficient in a readable unit: µs per launch, ms per MB, ms per GMAC."""
    if c is None:
        return "-"
    if pred == "launches":
        return f"{1000 * c:.2f} µs/launch"
    if pred == "bytes":
        return f"{c * 1e6:.3f} ms/MB"
    return f"{c * 1e9:.2f} ms/GMAC"


def write_compare(d: dict[str, Any], out_dir: Path) -> list[Path]:
    """``profile-compare.md``, ``.json`` (everything measured but the per-block rows, which
    ``hrbench profile ARCH --json`` gives) and ``.png`` in ``out_dir``, replacing only what hrbench
    wrote there (:mod:`hrbench.manifest`)."""
    from hrbench.manifest import commit, refuse_foreign, staging

    names = [f"{NAME}.md", f"{NAME}.json", f"{NAME}.png"]
    refuse_foreign(out_dir, names)
    with staging(out_dir) as stage:
        with atomic_write(stage / names[0]) as f:
            f.write(compare_markdown(d))
        with atomic_write(stage / names[1]) as f:
            slim = {**d, "profiles": [{**p, "groups": {g: r for g, r in p["groups"].items() if g != "block"}}
                                      for p in d["profiles"]]}
            json.dump(slim, f, indent=1, default=str)
        plot_compare(d, stage / names[2])
        commit(stage, out_dir)
    return [out_dir / n for n in names]
