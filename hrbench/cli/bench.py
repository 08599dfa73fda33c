"""``hrbench bench``: forward latency of a model in eager / channels-last / bf16 autocast / compiled mode."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from hrbench.bench.latency import MODES, TOLERANCE_NOTE, benchmark, load_line
from hrbench.cli import options
from hrbench.cli.options import fmt_number, parse_choices, parse_overrides, resolve_input, resolve_keypoints, show
from hrbench.cli.root import app
from hrbench.device import resolve_device
from hrbench.threads import configure_threads


@app.command("bench")
def bench_cmd(
    arch: str = typer.Argument(..., help="architecture name or alias"),
    device: str = options.device_option(),
    batch: int = options.batch_option(1, "per forward"),
    input_size: str = options.input_option(),
    dataset: str = options.dataset_option(shown="coco; it also sets K and the default input"),
    modes: str = typer.Option("eager", "--modes", help=f"comma list of {','.join(MODES)}"),
    iters: int = typer.Option(20, "--iters", help="timed forwards per mode"),
    warmup: int = typer.Option(5, "--warmup", help="untimed forwards before timing"),
    threads: str = options.threads_option(),
    overrides: list[str] = typer.Option(None, "--set", help="KEY=VALUE hyper-parameter override"),
    compile_backend: str = typer.Option("inductor", "--compile-backend",
                                        help="torch.compile backend for the compile mode (inductor, aot_eager, eager)"),
    clock: str = typer.Option("wall", "--clock", help="wall | cpu (this process's CPU time: other processes on a "
                              "busy machine stay out of it; CPU only)"),
    alternate: bool = typer.Option(False, "--alternate", help="prepare every mode, then time one call of each "
                                   "in turn (iters rounds): a changing load touches every mode alike"),
    as_json: bool = options.json_option(),
) -> None:
    """Forward latency (median, IQR, p10/p90), throughput and peak memory per execution mode."""
    chosen = parse_choices(modes, MODES, "--modes")
    hw = resolve_input(input_size, dataset)
    k = resolve_keypoints(None, dataset)
    sets = parse_overrides(overrides)
    resolve_device(device)
    configure_threads(threads)
    result = benchmark(arch, hw, k, sets or None, batch=batch, device=device, modes=chosen, iters=iters,
                       warmup=warmup, compile_kwargs={"backend": compile_backend}, clock=clock,
                       alternate=alternate)
    show(result.to_dict(), as_json, _print_table)


def _print_table(console: Console, d: dict[str, Any]) -> None:
    t = Table(title=f"{d['arch']} forward, batch {d['batch']}, input {d['input']}, {d['device']} "
                    f"({d['threads']} threads), {d['iters']} iters after {d['warmup']} warm-up; "
                    f"{d['clock']} times in ms")
    for col in ("mode", "median", "IQR", "p10", "p90", "img/s", "peak MiB", "x first", "compile s", "rel. diff", "ok"):
        t.add_column(col)
    for r in d["rows"]:
        if r["error"]:
            t.add_row(r["mode"], "error", *[""] * 8, r["error"])
            continue
        t.add_row(r["mode"], *[fmt_number(r[k]) for k in ("median_ms", "iqr_ms", "p10_ms", "p90_ms")],
                  fmt_number(r["throughput"], 1),
                  "n/a" if r["peak_mem_mb"] is None else fmt_number(r["peak_mem_mb"], 1),
                  fmt_number(r["ratio"], 3), fmt_number(r["compile_s"], 1), f"{r['max_rel_diff']:.1e}",
                  "yes" if r["ok"] else "[red]NO[/red]")
    console.print(t)
    console.print(f"peak memory: {d['peak_memory']}; agreement: {TOLERANCE_NOTE}")
    line = load_line(d.get("load", {}))
    if line:
        console.print(("[red]" + line + "[/red]") if d["load"]["busy"] else line)
    for r in d["rows"]:
        if r["mode"] in ("ort", "ort_stock") and r["threads"] is not None:
            console.print(f"{r['mode']}: ONNX Runtime CPU execution provider, {r['threads']} intra-op thread(s); "
                          "export + session creation under 'compile s'"
                          + ("; the exporter's graph without hrbench's exact rewrites" if r["mode"] == "ort_stock"
                             else ""))
