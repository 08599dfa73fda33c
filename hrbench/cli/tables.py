"""``hrbench tables``: every table/plot of the three papers, measured against published
(``hrbench ablate`` lives in :mod:`hrbench.cli.ablate`)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hrbench.cli import app
from hrbench.cli.options import make_console
from hrbench.device import DEVICE_HELP

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
    device: str = typer.Option("auto", "--device", help="--bench: " + DEVICE_HELP),
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
