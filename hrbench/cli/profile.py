"""``hrbench profile``: measured time per stage, block and block type beside MACs, bytes and launches
(:mod:`hrbench.bench.profile`, :mod:`hrbench.bench.profile_ort`); ``--compare`` writes the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from hrbench.cli import options
from hrbench.cli.options import fmt_number, make_console, parse_overrides, print_json, resolve_input, show
from hrbench.cli.root import app
from hrbench.device import resolve_device
from hrbench.errors import HrbenchError
from hrbench.threads import configure_threads

TITLES = {"stage": "stage", "block": "block", "block_type": "block type"}


@app.command("profile")
def profile_cmd(
    arch: str = typer.Argument(None, help="architecture name or alias (not with --compare)"),
    device: str = options.device_option(),
    mode: str = typer.Option("eager", "--mode", help="eager (PyTorch, module timeline) | ort (ONNX Runtime node "
                             "profile, CPU)"),
    input_size: str = options.input_option("coco 256x192"),
    batch: int = options.batch_option(1),
    threads: str = options.threads_option(),
    iters: int = typer.Option(10, "--iters", help="profiled forwards, each beside one plain forward"),
    warmup: int = typer.Option(3, "--warmup", help="untimed forwards first"),
    compare: str = typer.Option(None, "--compare", help="comma list of architectures profiled side by side, with "
                                "the latency fit; writes the report into --out (a folder)"),
    sets: list[str] = typer.Option(None, "--set", help="KEY=VALUE hyper-parameter override (not with --compare)"),
    out: Path = options.out_option(None, "picture FILE.png (default profile-<arch>-<mode>.png); with --compare "
                                   "a folder (default reports/bench)"),
    top: int = typer.Option(12, "--top", help="rows printed per table"),
    clock: str = typer.Option("auto", "--clock", help="cpu (this process's CPU time; not inflated by other "
                              "processes) | wall | auto (cpu on CPU, wall = device time on CUDA)"),
    as_json: bool = options.json_option(),
) -> None:
    """Where the time goes: per stage, block and block type, time and its share beside the same rows'
    MACs, bytes moved and kernel launches, achieved GMAC/s and GB/s; rows sum vs end-to-end median."""
    from hrbench.bench.profile_api import PROFILE_MODES, profile
    from hrbench.reports.profile_plots import plot_profile

    if mode not in PROFILE_MODES:
        raise HrbenchError(f"unknown --mode {mode!r}: choose from {', '.join(PROFILE_MODES)}")
    if (arch is None) == (compare is None):
        raise HrbenchError("give one architecture, or --compare A,B,... (not both)")
    if iters < 1 or warmup < 0 or top < 1:
        raise HrbenchError(f"invalid --iters {iters} / --warmup {warmup} / --top {top}: need iters >= 1, "
                           "warmup >= 0, top >= 1")
    hw = resolve_input(input_size)
    dev = resolve_device(device if mode == "eager" or device != "auto" else "cpu")
    configure_threads(threads)
    if compare is not None:
        return _compare(compare, mode, hw, dev.type, iters, warmup, batch, sets, out, as_json, clock)
    target = out or Path(f"profile-{arch}-{mode}.png")
    if out is None and target.exists():  # a default name never replaces a file: naming it with --out does
        raise HrbenchError(f"{target} exists; name the picture with --out FILE.png to replace it")
    if target.suffix.lower() != ".png" or target.is_dir():
        raise HrbenchError(f"--out {target}: expected a FILE.png")
    d = profile(arch, mode, hw, overrides=parse_overrides(sets) or None, batch=batch, device=dev.type, iters=iters,
                warmup=warmup, clock=clock)
    d["picture"] = str(plot_profile(d, target))
    show(d, as_json, lambda c, r: print_profile(c, r, top))


def _compare(names: str, mode: str, hw, device: str, iters: int, warmup: int, batch: int, sets, out: Path | None,
             as_json: bool, clock: str) -> None:
    from hrbench.bench.profile_api import compare as compare_models
    from hrbench.reports.profile_report import write_compare

    if sets:
        raise HrbenchError("--set applies to one architecture, not to --compare")
    from hrbench.registry import resolve

    archs = [resolve(a.strip()) for a in names.split(",") if a.strip()]  # unknown names refused before any work
    if len(archs) < 2:
        raise HrbenchError("--compare needs at least two architectures, e.g. --compare lite18,hrnet_w32")
    console = make_console(stderr=True)
    with options.progress_bar(console, disable=as_json) as bar:
        task = bar.add_task("profiling", total=len(archs))

        def step(i: int, n: int, arch: str) -> None:
            bar.update(task, completed=i, description=f"profiling {arch}")

        d = compare_models(archs, mode, hw, iters=iters, warmup=warmup, progress=step, batch=batch, device=device,
                           clock=clock)
        bar.update(task, completed=len(archs))
    paths = write_compare(d, out or Path("reports/bench"))
    d["written"] = [str(p) for p in paths]
    if as_json:
        return print_json(d)
    c = make_console()
    t = Table(title=f"{mode}, {d['threads']} thread(s), {d['input']}, median of {iters}")
    for col in ("model", "MACs M", "launches", "MB", "e2e ms", "MACs ratio", "latency ratio", "rows/e2e", "others"):
        t.add_column(col, justify="left" if col == "model" else "right")
    for m in d["models"]:
        t.add_row(m["arch"], f"{m['macs'] / 1e6:.1f}", str(m["launches"]), f"{m['bytes'] / 1e6:.1f}",
                  f"{m['e2e_ms']:.2f}", f"{m['macs_ratio']:.3f}", f"{m['latency_ratio']:.3f}",
                  f"{m['sum_vs_e2e']:.3f}", f"{m['other_share']:.0%}" + (" BUSY" if m["busy"] else ""))
    c.print(t)
    for f in d["fits"]:
        c.print(f"fit t ~ {' + '.join(f['predictors'])}: mean |error| {100 * f['mean_abs_fit_error']:.1f}%, "
                f"leave-one-out {100 * (f['mean_abs_loo_error'] or 0):.1f}%")
    c.print(f"best predictor(s) by leave-one-out error: {' + '.join(d['best'])}; wrote {', '.join(d['written'])}")


def print_profile(console: Console, d: dict[str, Any], top: int = 12) -> None:
    """The tables of one profile: per stage, block, block type (and ORT op type), then the totals."""
    for group in ("stage", "block", "block_type"):
        rows = d["groups"][group]
        t = Table(title=f"{d['arch']} {d['mode']} per {TITLES[group]} ({len(rows)} rows"
                        + (f", top {top}" if len(rows) > top else "") + ")")
        for col in (TITLES[group], "ms", "time %", "MAC %", "MACs M", "launches", "MB", "GMAC/s", "GB/s", "MAC/B"):
            t.add_column(col, justify="left" if col == TITLES[group] else "right")
        for r in rows[:top]:
            t.add_row(r["name"], fmt_number(r["time_ms"]), f"{100 * r['time_share']:.1f}",
                      f"{100 * r['mac_share']:.1f}",
                      f"{r['macs'] / 1e6:.2f}", str(r["launches"]), f"{r['bytes'] / 1e6:.1f}",
                      fmt_number(r["gmacs_per_s"]), fmt_number(r["gb_per_s"]), fmt_number(r["macs_per_byte"]))
        console.print(t)
    if d.get("by_op_type"):
        t = Table(title=f"{d['arch']} ort per ONNX op type ({d['nodes']} nodes after ORT's optimisations)")
        for col in ("op type", "nodes", "ms", "time %"):
            t.add_column(col, justify="left" if col == "op type" else "right")
        for r in d["by_op_type"][:top]:
            t.add_row(r["name"], str(r["nodes"]), fmt_number(r["time_ms"]), f"{100 * r['time_share']:.1f}")
        console.print(t)
    tot, load = d["total"], d["load"]
    console.print(f"{d['arch']} {d['mode']} on {d['device']}, {d['threads']} thread(s), batch {d['batch']}, "
                  f"{d['input']}: {tot['macs'] / 1e6:.1f}M MACs, {tot['launches']:,} launches (eager census), "
                  f"{tot['bytes'] / 1e6:.1f} MB moved")
    console.print(f"end-to-end median ({d['clock']} time, {d['iters']} plain runs) {d['e2e_ms']:.2f} ms (wall "
                  f"{d['e2e_wall_ms']:.2f} ms, CPU {d['e2e_cpu_ms']:.2f} ms); rows sum {d['row_sum_ms']:.2f} ms = "
                  f"{d['sum_vs_e2e']:.3f} x the median; profiled runs {d['profiled_ms']:.2f} ms (measurement overhead "
                  f"{d['overhead_ms']:+.2f} ms, kept out of the rows); timer: {d['timer']}")
    if d.get("hook_leak_us"):
        console.print(f"the module hooks add {d['hook_leak_us']:.2f} us per module call inside the timed spans "
                      f"(measured on a chain of empty modules): {d['hook_leak_ms']:.2f} ms taken off the "
                      f"{d['module_calls']} calls")
    if "profiler_bias_us" in d:
        console.print(f"ONNX Runtime's profiler adds {d['profiler_bias_us']:.2f} us per node (measured on a chain of "
                      f"trivial nodes): {d['profiler_bias_ms']:.2f} ms taken off the {d['nodes']} nodes' times")
    if d.get("unmapped_ms"):
        console.print(f"(unmapped) ONNX nodes: {len(d['unmapped_nodes'])}, {d['unmapped_ms']:.2f} ms")
    if d.get("peaks"):
        p = d["peaks"]
        console.print(f"this machine's peaks: {p['gmacs']:.1f} GMAC/s ({p['matmul']}), "
                      f"{p['gbs']:.1f} GB/s ({p['copy']})")
    from hrbench.bench.latency import load_line

    line = load_line(load)
    console.print(("[red]" + line + "[/red]") if load["busy"] else line)
    console.print(f"picture: {d['picture']}")
