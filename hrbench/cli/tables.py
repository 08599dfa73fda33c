"""``hrbench tables`` (every table/plot of the three papers, measured against published) and
``hrbench ablate`` (complexity, and optionally training, of every cell of an ablation grid)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hrbench.cli import app
from hrbench.cli.options import make_console, parse_input
from hrbench.errors import HrbenchError

console = make_console()
err_console = Console(stderr=True)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err_console, transient=True)


@app.command("tables")
def tables_cmd(
    out: Path = typer.Option(Path("reports"), "--out", help="output folder (tables/, plots/, README.md)"),
    latex: bool = typer.Option(False, "--latex", help="also write every table as LaTeX (tables/*.tex)"),
    runs: Path = typer.Option(Path("runs"), "--runs", help="runs registry whose finished runs fill the local "
                                                          "accuracy columns"),
    bench: bool = typer.Option(False, "--bench", help="instead: time every model on this machine "
                                                      "(reports/bench/, machine-dependent)"),
    device: str = typer.Option("cpu", "--device", help="--bench: cpu, cuda or auto"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
) -> None:
    """Regenerate every table and plot of the three papers with hrbench's measurements beside the
    published numbers (deterministic: run twice, get identical files)."""
    import torch

    from hrbench.fsutil import check_output_dir
    from hrbench.reports import generate_reports

    check_output_dir(out)
    if bench:
        from hrbench.reports.bench import run_bench

        result = run_bench(out / "bench", device=device, console=err_console)
        if as_json:
            print(json.dumps(result, indent=1, default=str))
        else:
            console.print(f"latency report: {result['markdown']} ({len(result['rows'])} models, "
                          f"device {result['device']})")
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # counting is latency-bound on tiny ops
    t0 = time.perf_counter()
    try:
        with _progress() as prog:
            task = prog.add_task("tables", total=None)

            def step(name: str) -> None:
                prog.update(task, description=f"building {name}", advance=1)

            result = generate_reports(out, runs_dir=runs, latex=latex, progress=step)
    finally:
        torch.set_num_threads(threads)
    c = result.counts
    summary = {"out": str(out), "files": len(result.files), "cells": c["cells"], "agree": c["agree"],
               "agree_truncated": c["agree_truncated"], "disagree": c["disagree"], "errors": c["errors"],
               "disagreeing": [f"{d.table}: {d.row} {d.quantity} published {d.printed}, hrbench "
                               f"{'error' if d.measured is None else round(d.measured, 4)}"
                               for d in result.disagreeing],
               "seconds": round(time.perf_counter() - t0, 1)}
    if as_json:
        print(json.dumps(summary, indent=1))
        return
    console.print(f"wrote {summary['files']} files under {out}/ in {summary['seconds']} s")
    console.print(f"[bold]{c['agree']} of {c['cells']}[/bold] measurable complexity cells agree with the published "
                  f"figure ({c['agree_truncated']} by truncation); {c['disagree']} disagree, {c['errors']} errors "
                  f"(listed in {out}/README.md)")


def _ablate_table(result: dict[str, Any], trained: bool) -> Table:
    cells = result["cells"]
    label_keys = [k for k in cells[0]["labels"] if k != "reported"] if cells else []
    t = Table(title=f"{result['grid']} ({result['source']} {result['table']}): {result['description']}")
    for col in (*label_keys, "model", "#Params M pub/ours", "FLOPs pub/ours", "MACs G", "pub."):
        t.add_column(col)
    if trained:
        for col in ("local", "state"):
            t.add_column(col)
    for c in cells:
        pub = c["published"]
        unit = pub.get("flops_unit", "M")
        flops = c["paper_mflops"]
        if flops is not None and unit == "G":
            flops /= result["giga"]  # the source table's own divisor (Dite-HRNet Table 5: 1000)
        row = [str(c["labels"].get(k, "")) for k in label_keys]
        row += [c["model"],
                f"{pub.get('params_M') or '-'}/" + ("error" if c["error"] else f"{c['params'] / 1e6:.3f}"),
                f"{pub.get('flops') or '-'}/" + ("error" if c["error"] else
                                                 f"{flops:.4f}" if unit == "G" else f"{flops:.2f}") + unit,
                "" if c["macs"] is None else f"{c['macs'] / 1e9:.3f}",
                f"{pub.get('metric', '')} {pub.get('value', '')}".strip()]
        if trained:
            row += ["" if c["value"] is None else f"{c['metric']} {c['value']:.1f}", c["state"]]
        t.add_row(*row)
    return t


@app.command("ablate")
def ablate_cmd(
    grid: str | None = typer.Argument(None, help="ablation grid, e.g. dite-table5 (see --list)"),
    list_: bool = typer.Option(False, "--list", help="list the registered ablation grids"),
    train: bool = typer.Option(False, "--train", help="also train and evaluate every cell (resumable)"),
    epochs: int | None = typer.Option(None, "--epochs", help="training epochs per cell (default: the paper's; a "
                                      "cell the paper trained longer or shorter keeps its ratio)"),
    data: Path | None = typer.Option(None, "--data", help="data folder (COCO/MPII layout) for --train"),
    out: Path = typer.Option(Path("runs"), "--out", help="runs registry folder"),
    input_size: str | None = typer.Option(None, "--input", help="train at HxW instead of the paper's input"),
    batch: int | None = typer.Option(None, "--batch", help="--train: samples per process, as in `hrbench train` "
                                     "(the recipe's lr is scaled to the total batch)"),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N"),
    workers: int = typer.Option(2, "--workers", help="data-loader worker processes per cell"),
    threads: str = typer.Option("auto", "--threads", help="intra-op CPU threads: N, or auto"),
    as_json: bool = typer.Option(False, "--json", help="print the results as JSON"),
) -> None:
    """Complexity of every cell of an ablation grid; with --train also train + evaluate each cell
    (finished cells are skipped, interrupted ones resumed; results go to the runs registry)."""
    import torch

    from hrbench.ablate import grid_summaries, run_ablation

    if list_:
        rows = grid_summaries()
        if as_json:
            print(json.dumps(rows, indent=1))
            return
        t = Table(title=f"{len(rows)} ablation grids")
        for col in ("name", "source", "table", "cells", "description"):
            t.add_column(col)
        for r in rows:
            t.add_row(r["name"], r["source"], r["table"], str(r["cells"]), r["description"])
        console.print(t)
        return
    if not grid:
        raise HrbenchError("missing GRID: name an ablation grid (see `hrbench ablate --list`)")
    hw = parse_input(input_size) if input_size else None
    if not train and any(v is not None for v in (epochs, data, hw, batch)):
        raise HrbenchError("--epochs/--data/--input/--batch only apply with --train")
    from hrbench.fsutil import check_output_dir
    from hrbench.threads import configure_threads, parse_threads

    parse_threads(threads)  # refuse a bad value before any work
    if train:
        check_output_dir(out)
    before = torch.get_num_threads()
    if train:
        configure_threads(threads)
    else:
        torch.set_num_threads(1)  # counting is latency-bound on tiny ops
    try:
        with _progress() if not train else _NoProgress() as prog:
            task = prog.add_task(grid, total=None)

            def on_cell(i: int, n: int, label: str) -> None:
                prog.update(task, total=n, completed=i, description=f"{grid}: {label}")
                if train:
                    err_console.print(f"[bold]{grid}[/bold] cell {i + 1}/{n}: {label}")

            result = run_ablation(grid, train=train, epochs=epochs, data=data, out=out, input_hw=hw,
                                  batch_size=batch, device=device, workers=workers, threads=threads, on_cell=on_cell,
                                  train_progress=not as_json, console=err_console)
    finally:
        torch.set_num_threads(before)
    if as_json:
        print(json.dumps(result, indent=1, default=str))
        return
    console.print(_ablate_table(result, train))


class _NoProgress:
    """Stand-in for a progress bar while training (the trainer shows its own)."""

    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def add_task(self, *a, **k) -> int:
        return 0

    def update(self, *a, **k) -> None:
        return None
