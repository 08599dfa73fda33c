"""``hrbench bench``: forward latency of a model in eager / channels-last / bf16 autocast / compiled mode."""

from __future__ import annotations

import json

import torch
import typer
from rich.console import Console
from rich.table import Table

from hrbench.bench.latency import MODES, TOLERANCE_NOTE, benchmark, check_device
from hrbench.cli import app
from hrbench.cli.options import DATASET_INPUT, parse_input, parse_overrides, resolve_keypoints
from hrbench.errors import HrbenchError

console = Console()


def _modes(text: str) -> tuple[str, ...]:
    chosen = tuple(m.strip() for m in text.split(",") if m.strip())
    bad = [m for m in chosen if m not in MODES]
    if bad or not chosen:
        shown = ", ".join(repr(b) for b in bad) or repr(text)
        raise HrbenchError(f"unknown --modes {shown}: choose from {', '.join(MODES)}")
    return chosen


def _f(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


@app.command("bench")
def bench_cmd(
    arch: str = typer.Argument(..., help="architecture name or alias"),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda"),
    batch: int = typer.Option(1, "--batch", help="images per forward"),
    input_size: str = typer.Option(None, "--input", help="HxW (default: coco 256x192, mpii 256x256)"),
    dataset: str = typer.Option(None, "--dataset", help="coco | mpii (sets K and the default input)"),
    modes: str = typer.Option("eager", "--modes", help=f"comma list of {','.join(MODES)}"),
    iters: int = typer.Option(20, "--iters", help="timed forwards per mode"),
    warmup: int = typer.Option(5, "--warmup", help="untimed forwards before timing"),
    threads: int = typer.Option(None, "--threads", help="CPU threads (torch.set_num_threads)"),
    overrides: list[str] = typer.Option(None, "--set", help="KEY=VALUE hyper-parameter override"),
    compile_backend: str = typer.Option("inductor", "--compile-backend",
                                        help="torch.compile backend for the compile mode (inductor, aot_eager, eager)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Forward latency (median, IQR, p10/p90), throughput and peak memory per execution mode."""
    chosen = _modes(modes)
    hw = parse_input(input_size) if input_size is not None else DATASET_INPUT[dataset or "coco"]
    k = resolve_keypoints(None, dataset)
    sets = parse_overrides(overrides)
    check_device(device)
    if threads is not None:
        if threads < 1:
            raise HrbenchError(f"invalid --threads {threads}: must be a positive integer")
        torch.set_num_threads(threads)
    result = benchmark(arch, hw, k, sets or None, batch=batch, device=device, modes=chosen, iters=iters,
                       warmup=warmup, compile_kwargs={"backend": compile_backend})
    d = result.to_dict()
    if as_json:
        print(json.dumps(d, indent=1))
        return
    t = Table(title=f"{d['arch']} forward, batch {d['batch']}, input {d['input']}, {d['device']} "
                    f"({d['threads']} threads), {d['iters']} iters after {d['warmup']} warm-up; times in ms")
    for col in ("mode", "median", "IQR", "p10", "p90", "img/s", "peak MiB", "x first", "compile s", "rel. diff", "ok"):
        t.add_column(col)
    for r in d["rows"]:
        if r["error"]:
            t.add_row(r["mode"], "error", *[""] * 8, r["error"])
            continue
        t.add_row(r["mode"], _f(r["median_ms"]), _f(r["iqr_ms"]), _f(r["p10_ms"]), _f(r["p90_ms"]),
                  _f(r["throughput"], 1), "n/a" if r["peak_mem_mb"] is None else _f(r["peak_mem_mb"], 1),
                  _f(r["ratio"], 3), _f(r["compile_s"], 1), f"{r['max_rel_diff']:.1e}",
                  "yes" if r["ok"] else "[red]NO[/red]")
    console.print(t)
    console.print(f"peak memory: {d['peak_memory']}; agreement: {TOLERANCE_NOTE}")
