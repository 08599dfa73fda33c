"""``hrbench bench-data DIR``: samples/s of the training data pipelines (CPU vs tensor) per loader worker count."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from hrbench.cli import options
from hrbench.cli.options import (
    DATA_LAYOUT_TEXT,
    DATASET_INPUT_TEXT,
    given,
    parse_int_list,
    resolve_input,
    show,
)
from hrbench.cli.root import app
from hrbench.datasets import DEFAULT_DATASET
from hrbench.errors import HrbenchError
from hrbench.threads import configure_threads


@app.command("bench-data")
def bench_data_cmd(
    ctx: typer.Context,
    root: Path = typer.Argument(..., help=f"dataset root in the --dataset's layout ({DATA_LAYOUT_TEXT}), "
                              "e.g. from `hrbench data synth`"),
    dataset: str = options.dataset_option(DEFAULT_DATASET),
    split: str = typer.Option("train", "--split", help="split to read"),
    input_size: str = options.input_option(f"the dataset's: {DATASET_INPUT_TEXT}; the training crop"),
    workers: int = options.workers_option(),
    worker_counts: str = typer.Option(None, "--worker-counts", help="instead of --workers: compare several "
                                      "worker counts, a comma list or range, e.g. 0,1,2 or 0-4"),
    batch: int = options.batch_option(32),
    batches: int = typer.Option(4, "--batches", help="timed batches per row (after one untimed)"),
    device: str = options.device_option("the tensor pipeline's warp: "),
    pipelines: str = typer.Option("cpu,tensor", "--pipelines", help="comma list of cpu,tensor"),
    threads: str = options.threads_option("main process: "),
    as_json: bool = options.json_option(),
) -> None:
    """Training augmentation + target generation throughput: the CPU pipeline vs the tensor pipeline,
    with --workers loader workers (or each of --worker-counts)."""
    from hrbench.bench.data import bench_data

    if worker_counts is not None and given(ctx, "workers"):
        raise HrbenchError("give --workers N or --worker-counts LIST, not both")
    counts = parse_int_list(worker_counts, "--worker-counts") if worker_counts is not None else (workers,)
    hw = resolve_input(input_size, dataset)
    configure_threads(threads)
    result = bench_data(root, dataset, split, hw, counts, batch, batches, device,
                        tuple(p.strip() for p in pipelines.split(",") if p.strip()))
    show(result.to_dict(), as_json, _print_table)


def _print_table(console: Console, d: dict[str, Any]) -> None:
    t = Table(title=f"{d['dataset']} {d['split']} training data loader, input {d['input']}, batch {d['batch']} x "
                    f"{d['batches']} timed batches")
    for col in ("pipeline", "workers", "samples/s", "per worker"):
        t.add_column(col)
    for r in d["rows"]:
        t.add_row(r["pipeline"], str(r["workers"]), f"{r['samples_per_s']:,.1f}", f"{r['per_worker']:,.1f}")
    console.print(t)
    console.print("cpu: decode + augmentation + cv2 warp + numpy targets in the workers; tensor: decode + "
                  "augmentation draws in the workers, warp + targets batched on the device")
    if d["device_step_samples_per_s"] is not None:
        console.print(f"tensor pipeline device step (warp + targets) on {d['device']} ({d['threads']} threads): "
                      f"{d['device_step_samples_per_s']:,.1f} samples/s")
