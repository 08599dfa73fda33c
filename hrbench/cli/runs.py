"""``hrbench runs``: the runs registry at a glance (:mod:`hrbench.reports.run_table`), and
``hrbench runs plot``: learning curves of several runs on one figure (:mod:`hrbench.reports.curves`)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from hrbench.cli import options
from hrbench.cli.options import fmt_number, make_console, print_json
from hrbench.cli.root import app
from hrbench.errors import HrbenchError

STATE_STYLE = {"running": "cyan", "finished": "green", "interrupted": "yellow", "diverged": "red"}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}"


def _show(rows) -> None:
    table = Table(title="runs")
    for col in ("run", "arch", "dataset", "input", "epochs", "state", "best", "best epoch", "wall", "img/s"):
        table.add_column(col, justify="right" if col in ("epochs", "best", "best epoch", "wall", "img/s") else "left")
    for r in rows:
        epochs = f"{r.epochs_done}/{r.epochs if r.epochs is not None else '?'}"
        best = f"{r.metric} {r.best:.2f}" if r.best is not None else ""
        style = STATE_STYLE[r.state]
        table.add_row(r.name, r.arch or "", r.dataset or "", r.input or "", epochs, f"[{style}]{r.state}[/{style}]",
                      best, "" if r.best_epoch is None else str(r.best_epoch), _duration(r.wall_s),
                      fmt_number(r.img_s, 1) if r.img_s is not None else "")
    make_console().print(table)


@app.command("runs")
def runs_cmd(
    ctx: typer.Context,
    args: list[str] = typer.Argument(None, metavar="PATTERN | plot RUN",
                                     help="PATTERN: run names to list (fnmatch, e.g. 'dite*'); `plot RUN...`: learning "
                                     "curves of these runs (names or patterns under --runs, or run folders)"),
    runs: Path = typer.Option(Path("runs"), "--runs", help="the runs registry (one folder per run)"),
    metric: str = typer.Option(None, "--metric", help="plot: the validation metric (default: the first run's, "
                               "AP on COCO, PCKh on MPII)"),
    out: Path = options.out_option(Path("curves.png"), "plot: the figure file (.png, .pdf or .svg)"),
    as_json: bool = options.json_option("the rows (plot: what was drawn)"),
) -> None:
    """List the runs of a registry: arch, dataset, input, epochs done/planned, state (running, finished,
    interrupted, diverged), best metric and epoch, wall time, img/s. `hrbench runs plot A B ...` draws their
    learning curves on one figure."""
    from hrbench.reports.run_table import find_runs, resolve_runs, run_row

    args = list(args or [])
    if args and args[0] == "plot":
        from hrbench.reports.curves import learning_curves

        result = learning_curves(resolve_runs(args[1:], runs), metric, out)
        if as_json:
            return print_json(result)
        drawn = ", ".join(f"{n} ({d['val_points']} validations)" for n, d in result["runs"].items())
        return make_console().print(f"wrote {result['out']}: {result['metric']} and training loss of {drawn}",
                                    highlight=False)
    if len(args) > 1:
        raise HrbenchError(f"one PATTERN at most (got {len(args)}: {' '.join(args)}); quote a pattern with * in it")
    for name in ("metric", "out"):
        if options.given(ctx, name):
            raise HrbenchError(f"--{name} is an option of `hrbench runs plot RUN...`")
    rows = [run_row(p) for p in find_runs(runs, args[0] if args else None)]
    if as_json:
        return print_json([r.to_dict() for r in rows])
    _show(rows)
