"""``hrbench tables``: every table/plot of the three papers, measured against published
(``hrbench ablate`` lives in :mod:`hrbench.cli.ablate`)."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from hrbench.cli import options
from hrbench.cli.options import make_console, print_json, progress_bar
from hrbench.cli.root import app
from hrbench.errors import HrbenchError


@app.command("tables")
def tables_cmd(
    ctx: typer.Context,
    out: Path = options.out_option(Path("reports"), "folder (tables/, plots/, README.md)"),
    formats: str = typer.Option("md,csv", "--format", help="table formats, comma-separated: md, csv, tex (booktabs "
                                "LaTeX; plots then also as PDF)"),
    latex: bool = typer.Option(False, "--latex", help="shorthand for --format md,csv,tex"),
    runs: Path = typer.Option(Path("runs"), "--runs", help="runs registry whose finished runs fill the local "
                                                          "accuracy columns"),
    bench: bool = typer.Option(False, "--bench", help="instead: time every model on this machine "
                                                      "(reports/bench/, machine-dependent)"),
    device: str = options.device_option("--bench: "),
    as_json: bool = options.json_option("the summary"),
) -> None:
    """Regenerate every table and plot of the three papers with hrbench's measurements beside the
    published numbers (deterministic: run twice, get identical files)."""
    from hrbench.complexity.parallel import counting_threads
    from hrbench.fsutil import check_output_dir
    from hrbench.reports import FORMATS, generate_reports

    chosen = options.parse_choices(formats, FORMATS, "--format")
    if latex:
        if options.given(ctx, "formats"):
            raise HrbenchError("--latex is shorthand for --format md,csv,tex: give one of them")
        chosen = ("md", "csv", "tex")
    if "md" not in chosen:
        raise HrbenchError(f"--format {formats}: md is always written (README.md links every table's Markdown); "
                           f"add it, e.g. --format md,{formats}")
    chosen = tuple(f for f in FORMATS if f in chosen)  # a fixed order, whatever order was given
    check_output_dir(out)
    if bench:
        return _bench_report(out, device, as_json)
    console, err = make_console(), make_console(stderr=True)
    t0 = time.perf_counter()
    with counting_threads(), progress_bar(err) as prog:
        task = prog.add_task("tables", total=None)

        def step(name: str) -> None:
            prog.update(task, description=f"building {name}", advance=1)

        result = generate_reports(out, runs_dir=runs, formats=chosen, progress=step)
    c = result.counts
    summary = {"out": str(out), "files": len(result.files), "cells": c["cells"], "agree": c["agree"],
               "agree_truncated": c["agree_truncated"], "disagree": c["disagree"], "errors": c["errors"],
               "disagreeing": [f"{d.table}: {d.row} {d.quantity} published {d.printed}, hrbench "
                               f"{'error' if d.measured is None else round(d.measured, 4)}"
                               for d in result.disagreeing],
               "notes": result.notes, "seconds": round(time.perf_counter() - t0, 1)}
    if as_json:
        return print_json(summary)
    for note in result.notes:
        err.print(note)
    console.print(f"wrote {summary['files']} files under {out}/ in {summary['seconds']} s")
    console.print(f"[bold]{c['agree']} of {c['cells']}[/bold] measurable complexity cells agree with the published "
                  f"figure ({c['agree_truncated']} by truncation); {c['disagree']} disagree, {c['errors']} errors "
                  f"(listed in {out}/README.md)")


def _bench_report(out: Path, device: str, as_json: bool) -> None:
    """``--bench``: every model timed on this machine (:func:`hrbench.reports.bench.run_bench`), and on
    CPU the deployment comparison (:func:`hrbench.reports.deploy.run_deploy`)."""
    from hrbench.reports.bench import run_bench
    from hrbench.reports.deploy import run_deploy

    err = make_console(stderr=True)
    result = run_bench(out / "bench", device=device, console=err)
    if result["device"].startswith("CPU"):
        result["deploy"] = run_deploy(out / "bench", console=err)
    if as_json:
        return print_json(result)
    make_console().print(f"latency report: {result['markdown']} ({len(result['rows'])} models, "
                         f"device {result['device']})")
    if "deploy" in result:
        make_console().print(f"deployment comparison: {result['deploy']['markdown']} "
                             f"({len(result['deploy']['rows'])} models, eager and ort, 1 thread)")
