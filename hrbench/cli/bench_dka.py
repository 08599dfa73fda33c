"""``hrbench bench-dka``: batched dynamic kernel aggregation vs a per-sample loop (:mod:`hrbench.bench.dka`)."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from hrbench.cli import options
from hrbench.cli.options import resolve_input, show
from hrbench.cli.root import app
from hrbench.threads import configure_threads


@app.command("bench-dka")
def bench_dka_cmd(
    batch: int = options.batch_option(32),
    input_size: str = options.input_option("coco 256x192; sets the DKA shapes, multiples of 32"),
    repeats: int = typer.Option(10, "--repeats", help="timed repeats per measurement (median)"),
    threads: str = options.threads_option(),
    device: str = options.device_option(),
    as_json: bool = options.json_option(),
) -> None:
    """Dite-HRNet-18's dynamic kernel aggregations, batched vs one conv per sample: forward and
    forward+backward median ms and the speed-up, timed in the same run on the same inputs."""
    from hrbench.bench.dka import bench_dka

    hw = resolve_input(input_size)
    configure_threads(threads)
    result = bench_dka(batch, hw, repeats, device)
    show(result, as_json, _print_table)


def _print_table(console: Console, d: dict[str, Any]) -> None:
    where = d["device"] if d["device"] != "cpu" else f"cpu, {d['threads']} threads"
    t = Table(title=f"DKA, Dite-HRNet-18 DSC shapes at {d['input']}, batch {d['batch']}, {where}, "
                    f"median of {d['repeats']}")
    for col in ("case", "C x H x W, kernel, N", "mode"):
        t.add_column(col)
    for col in ("batched ms", "loop ms", "speed-up"):
        t.add_column(col, justify="right")
    for r in d["rows"]:
        t.add_row(r["case"], r["shape"], r["mode"], f"{r['batched_ms']:.2f}", f"{r['loop_ms']:.2f}",
                  f"{r['speedup']:.1f}x")
    console.print(t)
