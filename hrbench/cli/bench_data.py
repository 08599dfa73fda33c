"""``hrbench bench-data DIR``: samples/s of the training data pipelines (CPU vs tensor) per loader worker."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from hrbench.cli import app
from hrbench.cli.options import make_console, parse_input
from hrbench.datasets import DATASET_INPUT
from hrbench.device import DEVICE_HELP
from hrbench.errors import HrbenchError
from hrbench.threads import configure_threads

console = make_console()


def _int_list(text: str, option: str) -> tuple[int, ...]:
    """``"0,1,2"`` or a range ``"0-4"`` -> (0, 1, 2[, 3, 4])."""
    try:
        if "-" in text and "," not in text:
            lo, hi = (int(p) for p in text.split("-", 1))
            values = tuple(range(lo, hi + 1))
        else:
            values = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise HrbenchError(f"malformed {option} {text!r}: expected a comma list or range of integers, "
                           "e.g. 0,1,2") from None
    if not values or any(v < 0 for v in values):
        raise HrbenchError(f"invalid {option} {text!r}: expected integers >= 0")
    return values


@app.command("bench-data")
def bench_data_cmd(
    root: Path = typer.Argument(..., help="dataset root (COCO or MPII layout, e.g. from `hrbench data synth`)"),
    dataset: str = typer.Option("coco", "--dataset", help="coco | mpii"),
    split: str = typer.Option("train", "--split", help="split to read"),
    input_size: str = typer.Option(None, "--input", help="HxW crop (default: coco 256x192, mpii 256x256)"),
    workers: str = typer.Option("0,1,2", "--workers", help="loader worker counts, e.g. 0,1,2 or 0-4"),
    batch: int = typer.Option(32, "--batch", help="samples per batch"),
    batches: int = typer.Option(4, "--batches", help="timed batches per row (after one untimed)"),
    device: str = typer.Option("auto", "--device", help="device of the tensor pipeline's warp: " + DEVICE_HELP),
    pipelines: str = typer.Option("cpu,tensor", "--pipelines", help="comma list of cpu,tensor"),
    threads: str = typer.Option("auto", "--threads", help="main-process intra-op CPU threads: N, or auto "
                                "(OMP_NUM_THREADS, else the free CPUs)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Training augmentation + target generation throughput: the CPU pipeline vs the tensor pipeline."""

    from hrbench.bench.data import bench_data

    if dataset not in DATASET_INPUT:
        raise HrbenchError(f"unknown --dataset {dataset!r}: expected coco or mpii")
    hw = parse_input(input_size) if input_size is not None else DATASET_INPUT[dataset]
    configure_threads(threads)
    result = bench_data(root, dataset, split, hw, _int_list(workers, "--workers"), batch, batches, device,
                        tuple(p.strip() for p in pipelines.split(",") if p.strip()))
    d = result.to_dict()
    if as_json:
        print(json.dumps(d, indent=1))
        return
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
