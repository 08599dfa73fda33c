"""The ablation-grid runner (``hrbench ablate GRID``).

For every cell of a grid declared in ``architectures/`` (e.g. Dite-HRNet Table 5, G x N) it
always measures the complexity at the paper's input (#Params, the paper's FLOPs convention, true
MACs) beside the printed figures; with ``train=True`` it also trains and evaluates every cell
through :func:`hrbench.engine.train`. Runs land in the runs registry (``<out>/<run name>/``) under
deterministic names, so a second invocation skips finished cells and resumes interrupted ones;
``<out>/ablate-<grid>.json`` records the state of every cell. ``hrbench tables`` picks the runs up.

Cells run in this process one after another (:func:`run_ablation`) or as cluster jobs
(:func:`submit_grid`, through :mod:`hrbench.launch`); :func:`grid_status` says where each cell is.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hrbench.complexity.measurer import Measurer, default_measurer
from hrbench.datasets import DEFAULT_DATASET, get_dataset
from hrbench.errors import HrbenchError
from hrbench.reference import giga_of, match_cell, printed_flops, rows_of
from hrbench.registry import Grid, GridCell, get_grid, list_grids

STATE_FORMAT = "hrbench-ablate-v1"


def grid_summaries() -> list[dict[str, Any]]:
    """Every registered grid: name, reported.csv source/table, description, number of cells."""
    out = []
    for name in list_grids():
        g = get_grid(name)
        out.append({"name": g.name, "source": g.source, "table": g.table, "cells": len(g.cells),
                    "description": g.description})
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "", text)


def run_name(grid: Grid, index: int, cell: GridCell, input_hw: tuple[int, int] | None, epochs: int | None) -> str:
    """Deterministic run folder name of one cell: ``ablate-<grid>-<NN>-<labels>[-HxW][-eN]``."""
    parts = [_slug(f"{k}{v}" if k not in ("model", "dilation", "resolution") else str(v))
             for k, v in cell.labels.items() if k != "reported"]
    name = f"ablate-{grid.name}-{index:02d}-" + "-".join(p for p in parts if p)
    if input_hw is not None and tuple(input_hw) != tuple(cell.input_hw):
        name += f"-{input_hw[0]}x{input_hw[1]}"
    if epochs is not None:
        name += f"-e{epochs}"
    return name


def published_for_cell(grid: Grid, cell: GridCell) -> dict[str, str]:
    """The printed row of ``cell`` (same dataset and input), as printed strings; {} if none."""
    want = f"{cell.input_hw[0]}x{cell.input_hw[1]}"
    same = tuple(c for c in grid.cells if c.dataset == cell.dataset and tuple(c.input_hw) == tuple(cell.input_hw))
    for row in rows_of(grid.source, grid.table):
        if row["dataset"] == cell.dataset and row["input"] == want and match_cell(row["model"], same) is cell:
            flops, unit = printed_flops(row)
            metric = get_dataset(cell.dataset).metric
            return {"model": row["model"], "params_M": row["params_M"], "flops": flops, "flops_unit": unit,
                    "metric": metric, "value": row.get(metric, "")}
    return {}


def _label_text(cell: GridCell) -> str:
    return ", ".join(f"{k}={v}" for k, v in cell.labels.items() if k != "reported")


def _finished_runs(out: Path) -> dict[str, dict[str, Any]]:
    from hrbench.engine.runs import list_runs

    return {s.get("name") or Path(s["run_dir"]).name: s for s in list_runs(out)}


def _metric_of(summary: dict[str, Any]) -> tuple[str, float | None]:
    metric = summary.get("metric") or get_dataset(summary.get("dataset") or DEFAULT_DATASET).metric
    val = summary.get("best") or summary.get("final") or {}
    value = val.get(metric)
    return metric, float(value) if isinstance(value, (int, float)) else None


def run_ablation(grid_name: str, *, train: bool = False, epochs: int | None = None, data: str | Path | None = None,
                 out: str | Path = "runs", input_hw: tuple[int, int] | None = None, batch_size: int | None = None,
                 device: str = "auto", workers: int = 2, seed: int = 0, threads: int | str | None = None,
                 measurer: Measurer | None = None,
                 on_cell: Callable[[int, int, str], None] | None = None, train_progress: bool = True,
                 console=None, cells: Sequence[int] | None = None) -> dict[str, Any]:
    """Complexity of every cell; with ``train``, train + evaluate every unfinished cell
    (``batch_size`` per process, as in ``hrbench train``; ``epochs`` as in :func:`cell_epochs`;
    ``cells``: only these cell indices, the others are reported as the registry has them).

    Returns ``{"grid", "source", "table", "cells": [...]}``; each cell holds its labels, model,
    overrides, complexity at the paper's input, the printed row, and (training) its run name,
    state (``trained`` | ``resumed`` | ``skipped`` (already finished) | ``not selected``) and metric.
    """
    grid = get_grid(grid_name)
    _check_train_args(data, epochs, need_data=train)
    selected = set(check_cells(cells, len(grid.cells)))
    out = Path(out)
    state = read_state(out, grid.name) if train else {}
    cells_out = []
    finished = _finished_runs(out) if train else {}
    plans = plan_cells(grid, epochs, input_hw)
    for i, cell in enumerate(grid.cells):
        if on_cell:
            on_cell(i, len(grid.cells), _label_text(cell))
        row = complexity_row(grid, i, cell, measurer or default_measurer)
        if train and i not in selected:
            row.update(_registry_row(plans[i], finished, "not selected"))
        elif train:
            row.update(_train_cell(plans[i], finished, data=data, out=out, batch_size=batch_size, device=device,
                                   workers=workers, seed=seed, threads=threads, progress=train_progress,
                                   console=console))
            state["cells"][row["run"]] = {"index": i, "labels": row["labels"], "state": row["state"],
                                          "metric": row["metric"], "value": row["value"]}
            write_state(out, state, epochs, input_hw)
        cells_out.append(row)
    return {"grid": grid.name, "source": grid.source, "table": grid.table, "description": grid.description,
            "giga": giga_of(grid.source, grid.table), "cells": cells_out}


def _check_train_args(data: str | Path | None, epochs: int | None, need_data: bool = True) -> None:
    if need_data and data is None:
        raise HrbenchError("--train needs --data DIR (a COCO/MPII-layout data folder, e.g. from `hrbench data synth`)")
    if epochs is not None and epochs < 1:
        raise HrbenchError(f"invalid --epochs {epochs}: must be at least 1")


def complexity_row(grid: Grid, i: int, cell: GridCell, measure: Measurer) -> dict[str, Any]:
    """Labels, model, overrides, complexity at the paper's input and the printed row of one cell."""
    m = measure(cell.model, dict(cell.overrides), tuple(cell.input_hw), get_dataset(cell.dataset).num_keypoints)
    return {
        "index": i, "labels": dict(cell.labels), "model": cell.model,
        "overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in cell.overrides.items()},
        "dataset": cell.dataset, "input": f"{cell.input_hw[0]}x{cell.input_hw[1]}",
        "params": m.params if not m.error else None,
        "paper_mflops": round(m.paper_mflops, 4) if not m.error else None,
        "macs": m.macs if not m.error else None, "error": m.error, "published": published_for_cell(grid, cell),
    }


# ---------------------------------------------------------------------------------------------- plans and state
@dataclasses.dataclass(frozen=True)
class CellPlan:
    """One cell as it is trained: run name, epochs (:func:`cell_epochs`) and training input."""

    index: int
    cell: GridCell
    name: str
    epochs: int | None
    input_hw: tuple[int, int]


def plan_cells(grid: Grid, epochs: int | None, input_hw: tuple[int, int] | None) -> list[CellPlan]:
    out = []
    for i, cell in enumerate(grid.cells):
        e = cell_epochs(cell, epochs)
        hw = tuple(input_hw) if input_hw is not None else tuple(cell.input_hw)
        out.append(CellPlan(i, cell, run_name(grid, i, cell, input_hw, e), e, hw))
    return out


def check_cells(cells: Sequence[int] | None, n: int) -> list[int]:
    """The selected cell indices (all when None); one-line error for an index the grid does not have."""
    if cells is None:
        return list(range(n))
    bad = [c for c in cells if not 0 <= c < n]
    if bad or not cells:
        raise HrbenchError(f"invalid --cells {','.join(map(str, cells))}: the grid has cells 0..{n - 1}")
    return sorted(set(cells))


def read_state(out: Path, grid: str) -> dict[str, Any]:
    """``<out>/ablate-<grid>.json`` (a fresh one when missing). A file that cannot be read, is not JSON or
    is not a ``hrbench-ablate-v1`` state is a one-line :class:`HrbenchError` that names it."""
    state: dict[str, Any] = {"format": STATE_FORMAT, "grid": grid, "cells": {}}
    path = Path(out) / f"ablate-{grid}.json"
    if not path.exists():
        return state
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise _bad_state(path, f"{type(e).__name__}: {e}") from e
    if not isinstance(old, dict) or old.get("format") != STATE_FORMAT:
        found = old.get("format") if isinstance(old, dict) else type(old).__name__
        raise _bad_state(path, f"not a {STATE_FORMAT} state file (format: {found!r})")
    cells, plan = old.get("cells", {}), old.get("plan")
    if not (isinstance(cells, dict) and all(isinstance(c, dict) for c in cells.values())
            and isinstance(plan, (dict, type(None)))):
        raise _bad_state(path, "its 'cells' or 'plan' entry is malformed")
    state.update({k: v for k, v in old.items() if k in ("cells", "plan")})
    return state


def _bad_state(path: Path, problem: str) -> HrbenchError:
    return HrbenchError(f"cannot use the ablation state file {path}: {problem}; delete it and run again "
                        f"(it is rebuilt from the runs in {path.parent})")


def write_state(out: Path, state: dict[str, Any], epochs: int | None, input_hw: tuple[int, int] | None) -> None:
    """Write the state file; ``plan`` remembers ``--epochs``/``--input`` of the last training invocation,
    whose run names ``--status`` shows."""
    state["plan"] = {"epochs": epochs, "input": None if input_hw is None else list(input_hw)}
    from hrbench.fsutil import write_json_atomic

    write_json_atomic(out / f"ablate-{state['grid']}.json", state)


def _registry_row(plan: CellPlan, finished: dict[str, dict[str, Any]], state: str) -> dict[str, Any]:
    summary = finished.get(plan.name) or {}
    metric, value = _metric_of(summary)
    return {"run": plan.name, "state": state, "metric": metric, "value": value,
            "train_input": f"{plan.input_hw[0]}x{plan.input_hw[1]}", "epochs_done": summary.get("epochs_done")}


def cell_epochs(cell: GridCell, epochs: int | None) -> int | None:
    """Epochs to train ``cell`` for: its paper-given length (``cell.epochs``, else the family recipe's),
    or with ``--epochs N`` that many, a cell with its own length scaled by the same factor
    (``round(cell.epochs x N / recipe epochs)``, at least 1) so the grid keeps the paper's ratios."""
    if cell.epochs is None:
        return epochs
    if epochs is None:
        return cell.epochs
    from hrbench.engine import get_recipe

    recipe = get_recipe(cell.model, cell.dataset, tuple(cell.input_hw))
    return max(1, round(cell.epochs * epochs / recipe.epochs))


def _train_cell(plan: CellPlan, finished: dict[str, dict[str, Any]], *, data, out, batch_size, device, workers,
                seed, threads, progress, console) -> dict[str, Any]:
    from hrbench.engine import train

    cell, summary = plan.cell, finished.get(plan.name)
    if summary is not None and summary.get("status") == "finished":
        return _registry_row(plan, finished, "skipped")
    resume = (out / plan.name / "checkpoints" / "last.pt").exists()
    summary = train(cell.model, data, dataset=cell.dataset, epochs=plan.epochs, batch=batch_size,
                    input_hw=plan.input_hw, overrides=dict(cell.overrides), out=out, name=plan.name, device=device,
                    seed=seed, workers=workers, resume=resume, progress=progress, console=console, threads=threads)
    return _registry_row(plan, {plan.name: summary}, "resumed" if resume else "trained")


# ---------------------------------------------------------------------------------------------- cluster jobs
RESUBMIT = ("failed", "interrupted", "not started")


def cell_status(plan: CellPlan, out: Path, finished: dict[str, dict[str, Any]],
                record: dict[str, Any] | None) -> dict[str, Any]:
    """``done`` | ``running`` | ``queued`` | ``unknown`` | ``failed`` | ``interrupted`` | ``not started``,
    with the log to read (the job's stderr for a job, else the run's ``log.txt``) and, failed, why."""
    from hrbench.fsutil import FolderLock
    from hrbench.launch import job_error, job_state

    run = out / plan.name
    summary = finished.get(plan.name) or {}
    log = str(run / "log.txt")
    if summary.get("status") == "finished":
        metric, value = _metric_of(summary)
        return {"status": "done", "log": log, "epochs_done": summary.get("epochs_done"), "metric": metric,
                "value": value}
    if FolderLock(run).locked_by_other():
        return {"status": "running", "log": log, "epochs_done": summary.get("epochs_done")}
    if record is not None:
        state = job_state(record)
        if state != "ended":
            return {"status": state, "log": record["stderr"], "job": record["id"]}
        return {"status": "failed", "log": record["stderr"], "job": record["id"], "why": job_error(record),
                "epochs_done": summary.get("epochs_done")}
    if (run / "checkpoints" / "last.pt").exists():
        return {"status": "interrupted", "log": log, "epochs_done": summary.get("epochs_done")}
    return {"status": "not started", "log": None}


def grid_status(grid_name: str, out: str | Path = "runs", epochs: int | None = None,
                input_hw: tuple[int, int] | None = None) -> list[dict[str, Any]]:
    """Where every cell of the grid is (:func:`cell_status`). The run names are those of ``epochs`` /
    ``input_hw``; when neither is given, those of the last ``--train`` invocation on ``out``."""
    grid = get_grid(grid_name)
    _check_train_args(None, epochs, need_data=False)
    out = Path(out).resolve()
    state = read_state(out, grid.name)
    if epochs is None and input_hw is None and state.get("plan"):
        epochs = state["plan"].get("epochs")
        input_hw = tuple(state["plan"]["input"]) if state["plan"].get("input") else None
    finished = _finished_runs(out)
    rows = []
    for plan in plan_cells(grid, epochs, input_hw):
        record = (state["cells"].get(plan.name) or {}).get("job")
        rows.append({"index": plan.index, "labels": _label_text(plan.cell), "run": plan.name,
                     **cell_status(plan, out, finished, record)})
    return rows


def _cell_spec(plan: CellPlan, *, data, out: Path, batch_size, device, workers, seed, threads) -> dict[str, Any]:
    """One cell's :class:`hrbench.engine.TrainOptions` as a dict (absolute paths: jobs run elsewhere)."""
    return {"arch": plan.cell.model, "data": str(Path(data).resolve()), "dataset": plan.cell.dataset,
            "epochs": plan.epochs, "batch": batch_size, "input_hw": plan.input_hw,
            "overrides": dict(plan.cell.overrides), "out": str(out), "name": plan.name, "device": device,
            "seed": seed, "workers": workers, "threads": threads}


def submit_grid(grid_name: str, *, data: str | Path, opts, out: str | Path = "runs", epochs: int | None = None,
                input_hw: tuple[int, int] | None = None, batch_size: int | None = None, device: str = "auto",
                workers: int = 2, seed: int = 0, threads: int | str | None = None,
                cells: Sequence[int] | None = None, dry_run: bool = False) -> dict[str, Any]:
    """Submit the grid's unfinished cells (failed, interrupted or never started; not those done, queued or
    running) as one job array through :mod:`hrbench.launch` (``opts``: :class:`hrbench.launch.JobOptions`).

    Returns ``{"grid", "cells": [status rows], "submit": [{run, index, recipe}], "job": parameters,
    "sbatch": script or None, "jobs": {run: record}, "submitted": [submitit jobs]}``; ``dry_run``: nothing
    is submitted or written."""
    from hrbench import launch
    from hrbench.engine import TrainOptions, resolve_config

    grid = get_grid(grid_name)
    _check_train_args(data, epochs)
    selected = set(check_cells(cells, len(grid.cells)))
    launch.check_options(opts, dry_run=dry_run)
    out = Path(out).resolve()
    state = read_state(out, grid.name)
    finished = _finished_runs(out)
    plans = plan_cells(grid, epochs, input_hw)
    rows, todo = [], []
    for plan in plans:
        status = cell_status(plan, out, finished, (state["cells"].get(plan.name) or {}).get("job"))
        rows.append({"index": plan.index, "labels": _label_text(plan.cell), "run": plan.name, **status})
        if plan.index in selected and status["status"] in RESUBMIT:
            todo.append(plan)
    kw = dict(data=data, out=out, batch_size=batch_size, device=device, workers=workers, seed=seed, threads=threads)
    specs = [(p.name, _cell_spec(p, **kw)) for p in todo]
    submit = []
    for p, (_, spec) in zip(todo, specs, strict=True):  # every cell's recipe, resolved (and checked) before submitting
        cfg = resolve_config(TrainOptions.from_dict({**spec, "out": None}), world_size=opts.world_size)
        submit.append({"run": p.name, "index": p.index, "model": p.cell.model, "overrides": cfg.overrides,
                       "input": list(cfg.input_hw), "recipe": cfg.recipe.source, "train": cfg.train.to_dict()})
    folder = launch.jobs_folder(out, grid.name)
    params = (launch.local_parameters(opts) if opts.cluster == "local"
              else launch.slurm_parameters(opts, f"ablate-{grid.name}"))
    result = {"grid": grid.name, "cells": rows, "submit": submit, "cluster": opts.cluster, "job": params,
              "sbatch": launch.sbatch_script(folder, params, len(todo)) if opts.cluster == "slurm" and todo else None,
              "folder": str(folder), "jobs": {}, "submitted": []}
    if dry_run or not todo:
        return result
    if not Path(data).is_dir():
        raise HrbenchError(f"data directory {data} does not exist")
    records, jobs = launch.submit(specs, opts, folder, f"ablate-{grid.name}")
    for p in todo:
        state["cells"][p.name] = {"index": p.index, "labels": dict(p.cell.labels), "state": "submitted",
                                  "metric": None, "value": None, "job": records[p.name]}
    write_state(out, state, epochs, input_hw)
    result.update(jobs=records, submitted=jobs)
    return result
