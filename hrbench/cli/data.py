"""``hrbench data synth``: write a synthetic COCO- or MPII-format dataset (see :mod:`hrbench.data.synth`)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hrbench.cli import app
from hrbench.errors import HrbenchError

data_app = typer.Typer(help="Datasets: generate synthetic COCO/MPII-format data.", no_args_is_help=True)
app.add_typer(data_app, name="data")
console = Console(stderr=True)


@data_app.command("synth")
def synth_cmd(
    dataset: str = typer.Option("coco", "--dataset", help="coco (17 keypoints) or mpii (16 joints)"),
    out: Path = typer.Option(..., "--out", help="output dataset root"),
    train: int = typer.Option(200, "--train", help="number of training images"),
    val: int = typer.Option(50, "--val", help="number of validation images"),
    seed: int = typer.Option(0, "--seed", help="random seed (output is a deterministic function of it)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
) -> None:
    """Generate stick-figure images with annotations in the real COCO / MPII formats."""
    from hrbench.data.synth import generate

    if dataset not in ("coco", "mpii"):
        raise HrbenchError(f"unknown --dataset {dataset!r}: expected coco or mpii")
    if train < 1 or val < 1:
        raise HrbenchError("--train and --val must be positive")
    with Progress(TextColumn("[bold]synth {task.fields[ds]}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, disable=quiet, transient=True) as bar:
        task = bar.add_task("images", total=train + val, ds=dataset)
        summary = generate(dataset, out, train, val, seed, progress=lambda k: bar.advance(task, k))
    s = summary["splits"]
    parts = ", ".join(f"{k}: {v['images']} images / {v['instances']} persons" for k, v in s.items())
    print(f"wrote synthetic {dataset} to {out} ({parts}) in {summary['seconds']:.1f} s")
