"""The ablation-grid runner (``hrbench ablate GRID``).

For every cell of a grid declared in ``architectures/`` (e.g. Dite-HRNet Table 5, G x N) it
always measures the complexity at the paper's input (#Params, the paper's FLOPs convention, true
MACs) beside the printed figures; with ``train=True`` it also trains and evaluates every cell
through :func:`hrbench.engine.train`. Runs land in the runs registry (``<out>/<run name>/``) under
deterministic names, so a second invocation skips finished cells and resumes interrupted ones;
``<out>/ablate-<grid>.json`` records the state of every cell. ``hrbench tables`` picks the runs up.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hrbench.errors import HrbenchError
from hrbench.registry import Grid, GridCell, get_grid, list_grids
from hrbench.reports.tables import (
    DATASET_KEYPOINTS,
    Measurer,
    default_measurer,
    giga_of,
    match_cell,
    printed_flops,
    rows_of,
)

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
            metric = "PCKh" if cell.dataset == "mpii" else "AP"
            return {"model": row["model"], "params_M": row["params_M"], "flops": flops, "flops_unit": unit,
                    "metric": metric, "value": row.get(metric, "")}
    return {}


def _label_text(cell: GridCell) -> str:
    return ", ".join(f"{k}={v}" for k, v in cell.labels.items() if k != "reported")


def _finished_runs(out: Path) -> dict[str, dict[str, Any]]:
    from hrbench.engine.runs import list_runs

    return {s.get("name") or Path(s["run_dir"]).name: s for s in list_runs(out)}


def _metric_of(summary: dict[str, Any]) -> tuple[str, float | None]:
    metric = summary.get("metric") or ("PCKh" if summary.get("dataset") == "mpii" else "AP")
    val = summary.get("best") or summary.get("final") or {}
    value = val.get(metric)
    return metric, float(value) if isinstance(value, (int, float)) else None


def run_ablation(grid_name: str, *, train: bool = False, epochs: int | None = None, data: str | Path | None = None,
                 out: str | Path = "runs", input_hw: tuple[int, int] | None = None, batch_size: int | None = None,
                 device: str = "auto", workers: int = 2, seed: int = 0, threads: int | str | None = None,
                 measurer: Measurer | None = None,
                 on_cell: Callable[[int, int, str], None] | None = None, train_progress: bool = True,
                 console=None) -> dict[str, Any]:
    """Complexity of every cell; with ``train``, train + evaluate every unfinished cell
    (``batch_size`` per process, as in ``hrbench train``; ``epochs`` as in :func:`cell_epochs`).

    Returns ``{"grid", "source", "table", "cells": [...]}``; each cell holds its labels, model,
    overrides, complexity at the paper's input, the printed row, and (training) its run name,
    state (``trained`` | ``resumed`` | ``skipped`` (already finished)) and metric.
    """
    grid = get_grid(grid_name)
    if train and data is None:
        raise HrbenchError("--train needs --data DIR (a COCO/MPII-layout data folder, e.g. from `hrbench data synth`)")
    if epochs is not None and epochs < 1:
        raise HrbenchError(f"invalid --epochs {epochs}: must be at least 1")
    measure = measurer or default_measurer
    out = Path(out)
    state_path = out / f"ablate-{grid.name}.json"
    state: dict[str, Any] = {"format": STATE_FORMAT, "grid": grid.name, "cells": {}}
    if train and state_path.exists():
        try:
            old = json.loads(state_path.read_text(encoding="utf-8"))
            if old.get("format") == STATE_FORMAT:
                state["cells"] = dict(old.get("cells") or {})
        except (OSError, ValueError):
            pass
    cells_out = []
    finished = _finished_runs(out) if train else {}
    for i, cell in enumerate(grid.cells):
        label = _label_text(cell)
        if on_cell:
            on_cell(i, len(grid.cells), label)
        k = DATASET_KEYPOINTS.get(cell.dataset, 17)
        m = measure(cell.model, dict(cell.overrides), tuple(cell.input_hw), k)
        pub = published_for_cell(grid, cell)
        row: dict[str, Any] = {
            "index": i, "labels": {k2: v for k2, v in cell.labels.items()}, "model": cell.model,
            "overrides": {k2: list(v) if isinstance(v, tuple) else v for k2, v in cell.overrides.items()},
            "dataset": cell.dataset, "input": f"{cell.input_hw[0]}x{cell.input_hw[1]}",
            "params": m.params if not m.error else None,
            "paper_mflops": round(m.paper_mflops, 4) if not m.error else None,
            "macs": m.macs if not m.error else None, "error": m.error, "published": pub,
        }
        if train:
            row.update(_train_cell(grid, i, cell, finished, epochs=epochs, data=data, out=out, input_hw=input_hw,
                                   batch_size=batch_size, device=device, workers=workers, seed=seed,
                                   threads=threads, progress=train_progress, console=console))
            state["cells"][row["run"]] = {"index": i, "labels": row["labels"], "state": row["state"],
                                          "metric": row["metric"], "value": row["value"]}
            out.mkdir(parents=True, exist_ok=True)
            state_path.write_text(json.dumps(state, indent=1, sort_keys=True, default=str) + "\n", encoding="utf-8")
        cells_out.append(row)
    return {"grid": grid.name, "source": grid.source, "table": grid.table, "description": grid.description,
            "giga": giga_of(grid.source, grid.table), "cells": cells_out}


def cell_epochs(cell: GridCell, epochs: int | None) -> int | None:
    """Epochs to train ``cell`` for: its paper-given length (``cell.epochs``, else the family recipe's),
    or with ``--epochs N`` that many, a cell with its own length scaled by the same factor
    (``round(cell.epochs x N / recipe epochs)``, at least 1) so the grid keeps the paper's ratios."""
    if cell.epochs is None:
        return epochs
    if epochs is None:
        return cell.epochs
    from hrbench.engine import get_recipe
    from hrbench.registry import get_entry

    recipe = get_recipe(get_entry(cell.model).paper, cell.dataset, tuple(cell.input_hw))
    return max(1, round(cell.epochs * epochs / recipe.epochs))


def _train_cell(grid: Grid, i: int, cell: GridCell, finished: dict[str, dict[str, Any]], *, epochs, data, out,
                input_hw, batch_size, device, workers, seed, threads, progress, console) -> dict[str, Any]:
    from hrbench.engine import train

    epochs = cell_epochs(cell, epochs)
    name = run_name(grid, i, cell, input_hw, epochs)
    hw = tuple(input_hw) if input_hw is not None else tuple(cell.input_hw)
    summary = finished.get(name)
    if summary is not None and summary.get("status") == "finished":
        state = "skipped"
    else:
        resume = (out / name / "checkpoints" / "last.pt").exists()
        summary = train(cell.model, data, dataset=cell.dataset, epochs=epochs, batch_size=batch_size, input_hw=hw,
                        overrides=dict(cell.overrides), out=out, name=name, device=device, seed=seed,
                        workers=workers, resume=resume, progress=progress, console=console, threads=threads)
        state = "resumed" if resume else "trained"
    metric, value = _metric_of(summary)
    return {"run": name, "state": state, "metric": metric, "value": value, "train_input": f"{hw[0]}x{hw[1]}",
            "epochs_done": summary.get("epochs_done")}
