"""``hrbench ablate``: complexity, and optionally training, of every cell of an ablation grid; the cells
train in this process one after another (``--launcher local``) or as one job array through submitit
(``--launcher submitit``: Slurm, or ``--cluster local`` for separate processes on this machine)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from hrbench.cli import options
from hrbench.cli.options import make_console, parse_input, print_json, progress_bar
from hrbench.cli.root import app
from hrbench.errors import HrbenchError

LAUNCHERS = ("local", "submitit")


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


def _status_table(grid: str, rows: list[dict[str, Any]], title: str | None = None) -> Table:
    t = Table(title=title or f"{grid}: {sum(r['status'] == 'done' for r in rows)} of {len(rows)} cells done")
    for col in ("#", "cell", "run", "status", "epochs", "result", "log"):
        t.add_column(col)
    for r in rows:
        result = f"{r['metric']} {r['value']:.1f}" if r.get("value") is not None else r.get("why", "")
        epochs = "" if r.get("epochs_done") is None else str(r["epochs_done"])
        t.add_row(str(r["index"]), r["labels"], r["run"], r["status"], epochs, result, r.get("log") or "")
    return t


def _parse_cells(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise HrbenchError(f"malformed --cells {text!r}: expected cell numbers, e.g. 0,3,5") from None


def _refuse(given: dict[str, Any], why: str) -> None:
    names = [k for k, v in given.items() if v not in (None, False, [], ())]
    if names:
        raise HrbenchError(f"{', '.join(names)} {why}")


@app.command("ablate")
def ablate_cmd(
    grid: str | None = typer.Argument(None, help="ablation grid, e.g. dite-table5 (see --list)"),
    list_: bool = typer.Option(False, "--list", help="list the registered ablation grids"),
    train: bool = typer.Option(False, "--train", help="also train and evaluate every cell (resumable)"),
    epochs: int | None = typer.Option(None, "--epochs", help="training epochs per cell (default: the paper's; a "
                                      "cell the paper trained longer or shorter keeps its ratio)"),
    data: Path | None = options.data_option(None, f"data folder for --train ({options.DATA_LAYOUT_TEXT})"),
    out: Path = options.out_option(Path("runs"), "folder: the runs registry"),
    input_size: str | None = options.input_option("the paper's; --train trains at it, --status reads those runs"),
    batch: int | None = options.batch_option(None, "per process, as in `hrbench train` (--train; the recipe's lr is "
                                     "scaled to the total batch)"),
    cells: str | None = typer.Option(None, "--cells", help="--train: only these cells (numbers as in the run "
                                     "names, e.g. 0,3)"),
    device: str = options.device_option("--train: "),
    workers: int = options.workers_option("--train: "),
    threads: str = options.threads_option("--train: "),
    launcher: str = typer.Option("local", "--launcher", help="--train: local (one cell after another in this "
                                 "process) | submitit (one job array, one job per unfinished cell)"),
    cluster: str | None = typer.Option(None, "--cluster", help="submitit: slurm (default) | local (the jobs as "
                                       "separate processes on this machine)"),
    partition: str | None = typer.Option(None, "--slurm-partition", help="Slurm partition"),
    gpus_per_node: int | None = typer.Option(None, "--gpus-per-node", help="submitit: GPUs per node, one training "
                                             "process each (default 1)"),
    nodes: int | None = typer.Option(None, "--nodes", help="submitit: nodes per job (default 1)"),
    timeout: int | None = typer.Option(None, "--timeout", help="submitit: time limit per job in minutes (default "
                                       "1440); a job that reaches it is requeued and resumes"),
    array_parallelism: int | None = typer.Option(None, "--array-parallelism", help="Slurm: jobs of the array "
                                                 "running at once"),
    slurm_opts: list[str] = typer.Option(None, "--slurm-opt", help="Slurm: KEY=VALUE sbatch option (repeatable), "
                                         "e.g. mem=64G, account=abc, constraint=a100"),
    dry_run: bool = typer.Option(False, "--dry-run", help="submitit: print the cells, their resolved recipes and "
                                 "the job; submit nothing"),
    wait: bool = typer.Option(False, "--wait", help="submitit: wait for the jobs and print the results"),
    status: bool = typer.Option(False, "--status", help="show each cell: done / running / queued / failed / "
                                "interrupted / not started, with its log"),
    as_json: bool = options.json_option("the results"),
) -> None:
    """Complexity of every cell of an ablation grid; with --train also train + evaluate each cell
    (finished cells are skipped, interrupted ones resumed; results go to the runs registry)."""
    if list_:
        return _print_list(as_json)
    hw, selected = _check_grid(grid, launcher, input_size, cells)
    job_opts = {"--cluster": cluster, "--slurm-partition": partition, "--gpus-per-node": gpus_per_node,
                "--nodes": nodes, "--timeout": timeout, "--array-parallelism": array_parallelism,
                "--slurm-opt": slurm_opts, "--dry-run": dry_run, "--wait": wait}
    if status:
        _refuse({"--train": train, "--data": data, "--batch": batch, "--cells": cells, **job_opts},
                "do not apply with --status (it reads the state of the cells; --epochs/--input pick the run names)")
        return _print_status(grid, out, epochs, hw, as_json)
    if not train:
        if launcher != "local":
            raise HrbenchError(f"--launcher {launcher} needs --train (it launches training jobs)")
        _refuse({"--epochs": epochs, "--data": data, "--input": hw, "--batch": batch, "--cells": cells, **job_opts},
                "only apply with --train")
    if launcher == "local":
        _refuse(job_opts, "apply to --launcher submitit only")
        return _run_local(grid, train, epochs, data, out, hw, batch, device, workers, threads, selected, as_json)
    opts = _job_options(threads, cluster, partition, gpus_per_node, nodes, timeout, array_parallelism, slurm_opts)
    _submit(grid, opts, dict(data=data, out=out, epochs=epochs, input_hw=hw, batch_size=batch, device=device,
                             workers=workers, threads=threads, cells=selected), dry_run, wait, as_json)


def _check_grid(grid: str | None, launcher: str, input_size: str | None,
                cells: str | None) -> tuple[tuple[int, int] | None, list[int] | None]:
    """Refuse an unknown grid or launcher; the parsed --input and --cells."""
    from hrbench.registry import get_grid

    if not grid:
        raise HrbenchError("missing GRID: name an ablation grid (see `hrbench ablate --list`)")
    get_grid(grid)
    if launcher not in LAUNCHERS:
        raise HrbenchError(f"unknown --launcher {launcher!r}: choose from {', '.join(LAUNCHERS)}")
    return (parse_input(input_size) if input_size else None), _parse_cells(cells)


def _job_options(threads: str, cluster: str | None, partition: str | None, gpus_per_node: int | None,
                 nodes: int | None, timeout: int | None, array_parallelism: int | None,
                 slurm_opts: list[str] | None) -> Any:
    """The submitit job options (:class:`hrbench.launch.JobOptions`), defaults filled in; --threads checked."""
    from hrbench.launch import JobOptions, parse_slurm_opts
    from hrbench.threads import parse_threads

    parse_threads(threads)
    return JobOptions(cluster=cluster or "slurm", partition=partition,
                      gpus_per_node=1 if gpus_per_node is None else gpus_per_node,
                      nodes=1 if nodes is None else nodes, timeout_min=24 * 60 if timeout is None else timeout,
                      array_parallelism=array_parallelism, slurm_opts=parse_slurm_opts(slurm_opts))


def _print_list(as_json: bool) -> None:
    from hrbench.ablate import grid_summaries

    rows = grid_summaries()
    if as_json:
        return print_json(rows)
    t = Table(title=f"{len(rows)} ablation grids")
    for col in ("name", "source", "table", "cells", "description"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["name"], r["source"], r["table"], str(r["cells"]), r["description"])
    make_console().print(t)


def _status(grid: str, out: Path, epochs: int | None, hw: tuple[int, int] | None) -> list[dict[str, Any]]:
    from hrbench.ablate import grid_status

    return grid_status(grid, out, epochs=epochs, input_hw=hw)


def _print_status(grid: str, out: Path, epochs: int | None, hw: tuple[int, int] | None, as_json: bool) -> None:
    rows = _status(grid, out, epochs, hw)
    if as_json:
        return print_json(rows)
    make_console().print(_status_table(grid, rows))


def _run_local(grid: str, train: bool, epochs: int | None, data: Path | None, out: Path, hw: tuple[int, int] | None,
               batch: int | None, device: str, workers: int, threads: str, selected: list[int] | None,
               as_json: bool) -> None:
    """Today's in-process path: complexity of every cell, and with ``train`` each cell trained in turn."""
    import contextlib

    import torch

    from hrbench.ablate import run_ablation
    from hrbench.complexity.parallel import counting_threads
    from hrbench.fsutil import check_output_dir
    from hrbench.threads import check_threads, configure_threads, parse_threads

    if (n := parse_threads(threads)) is not None:  # refuse a bad value before any work
        check_threads(n)
    if train:
        check_output_dir(out)
    with contextlib.ExitStack() as thread_scope:  # torch's thread count is restored on leaving
        if train:
            thread_scope.callback(torch.set_num_threads, torch.get_num_threads())
            configure_threads(threads)
        else:
            thread_scope.enter_context(counting_threads())
        err = make_console(stderr=True)
        with progress_bar(err, disable=train) as prog:  # training shows its own progress
            task = prog.add_task(grid, total=None)

            def on_cell(i: int, n: int, label: str) -> None:
                prog.update(task, total=n, completed=i, description=f"{grid}: {label}")
                if train and (selected is None or i in selected):
                    err.print(f"[bold]{grid}[/bold] cell {i + 1}/{n}: {label}")

            result = run_ablation(grid, train=train, epochs=epochs, data=data, out=out, input_hw=hw,
                                  batch_size=batch, device=device, workers=workers, threads=threads, on_cell=on_cell,
                                  train_progress=not as_json, console=err, cells=selected)
    if as_json:
        return print_json(result)
    make_console().print(_ablate_table(result, train))


def _submit(grid: str, opts: Any, kw: dict[str, Any], dry_run: bool, wait: bool, as_json: bool) -> None:
    """Submit the unfinished cells as one job array (or show what would be submitted)."""
    from hrbench.ablate import submit_grid
    from hrbench.fsutil import check_output_dir

    if not dry_run:
        check_output_dir(kw["out"])
    res = submit_grid(grid, opts=opts, dry_run=dry_run, **kw)
    jobs = res.pop("submitted")
    if dry_run:
        return _print_dry_run(res, as_json)
    console = make_console()
    if not as_json:
        counts = {s: sum(r["status"] == s for r in res["cells"]) for s in ("done", "running", "queued", "unknown")}
        held = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        if not jobs:
            console.print(f"nothing to submit for {grid}" + (f" ({held})" if held else ""))
        else:
            ids = ", ".join(r["id"] for r in res["jobs"].values())
            console.print(f"submitted {len(jobs)} cell(s) of {grid} to {opts.cluster} (job {ids})"
                          + (f"; not resubmitted: {held}" if held else "") + f"; job logs in {res['folder']}")
            console.print(f"follow them with: hrbench ablate {grid} --status --out {kw['out']}")
    if wait and jobs:
        _wait(jobs, grid, quiet=as_json)
    rows = _status(grid, kw["out"], kw["epochs"], kw["input_hw"]) if wait else res["cells"]
    if as_json:
        print_json({**res, "cells": rows})
    elif wait:
        console.print(_status_table(grid, rows))
    if wait and any(r["status"] == "failed" for r in rows):
        raise typer.Exit(1)


def _wait(jobs: list, grid: str, quiet: bool) -> None:
    """Poll the submitted jobs until every one has ended (a progress bar counts them)."""
    with progress_bar(make_console(stderr=True), disable=quiet) as prog:
        task = prog.add_task(f"{grid}: jobs", total=len(jobs))
        while True:
            done = sum(job.done() for job in jobs)
            prog.update(task, completed=done)
            if done == len(jobs):
                return
            time.sleep(0.5)


def _print_dry_run(res: dict[str, Any], as_json: bool) -> None:
    if as_json:
        return print_json(res)
    console = make_console()
    console.print(_status_table(res["grid"], res["cells"], title=f"{res['grid']}: cells now"))
    t = Table(title=f"would submit {len(res['submit'])} job(s) to {res['cluster']}")
    for col in ("#", "run", "model", "overrides", "input", "epochs", "batch", "lr", "lr steps", "recipe"):
        t.add_column(col)
    for s in res["submit"]:
        tr = s["train"]
        t.add_row(str(s["index"]), s["run"], s["model"], json.dumps(s["overrides"]), "x".join(map(str, s["input"])),
                  str(tr["epochs"]), f"{tr['batch_per_process']} x {tr['world_size']} = {tr['total_batch']}",
                  f"{tr['lr']:.3g}", ",".join(map(str, tr["lr_steps"])), s["recipe"])
    console.print(t)
    console.print("job parameters: " + json.dumps(res["job"], default=str))
    if res["sbatch"]:
        console.print(res["sbatch"], markup=False, highlight=False)
