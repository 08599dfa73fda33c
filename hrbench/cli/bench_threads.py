"""``hrbench bench-threads``: training steps on a shared CPU, torch's default threads vs ``--threads auto``
(:mod:`hrbench.bench.threads`)."""

from __future__ import annotations

import typer

from hrbench.cli import options
from hrbench.cli.options import parse_input, print_json
from hrbench.cli.root import app


@app.command("bench-threads")
def bench_threads_cmd(
    arch: str = typer.Option("lite18", "--arch", help="registered architecture to train"),
    input_size: str = options.input_option("128x96"),
    batch: int = options.batch_option(16),
    steps: int = typer.Option(6, "--steps", help="timed training steps per thread count and round"),
    busy: int = typer.Option(1, "--busy", help="CPU-bound background processes (the other job)"),
    as_json: bool = options.json_option(),
) -> None:
    """Median training-step time with one intra-op thread per core (torch's default) and with the auto
    thread count, under --busy background processes and then idle; CPU only."""
    from hrbench.bench.threads import bench_threads

    hw = parse_input(input_size) if input_size is not None else (128, 96)
    r = bench_threads(arch, hw, batch, steps, busy)
    if as_json:
        return print_json(r)
    for label in ("loaded", "idle"):
        m = r[label]
        print(f"{r['arch']} {r['input']} batch {r['batch']}, {label} ({m['busy_processes']} busy process(es)): "
              f"{m['before_threads']} threads {m['before_step_s']:.2f} s/step, auto = {m['auto_threads']} "
              f"({m['auto_why']}) {m['auto_step_s']:.2f} s/step: {m['speedup']:.2f}x")
