"""``hrbench runs plot``: learning curves of several runs on one figure, from their ``metrics.jsonl``
(training loss per epoch on the left, a validation metric per validation on the right; x: epoch)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from matplotlib.ticker import MaxNLocator

from hrbench.engine.runs import read_metrics, read_summary
from hrbench.errors import ConfigError, DataError
from hrbench.fsutil import write_bytes_atomic
from hrbench.reports.plot_base import DPI, STYLE, plt

#: File types the figure may be written as (by ``--out``'s suffix).
FORMATS = (".png", ".pdf", ".svg")
#: Validation keys that are bookkeeping, not metrics.
NOT_METRICS = ("event", "time", "epoch", "val_time_s", "iter", "num_results")


def val_metrics(events: list[dict[str, Any]]) -> list[str]:
    """The numeric metrics the run's validations logged (in first-seen order)."""
    keys: list[str] = []
    for e in events:
        if e.get("event") == "val":
            keys += [k for k, v in e.items() if k not in NOT_METRICS and k not in keys
                     and isinstance(v, (int, float)) and not isinstance(v, bool)]
    return keys


def _by_epoch(events: list[dict[str, Any]], kind: str, key: str) -> list[tuple[int, float]]:
    """(epoch, value) of the ``kind`` events holding ``key``, one per epoch (the later one: an epoch a
    resumed run trained again), by epoch."""
    points = {e["epoch"]: e[key] for e in events if e.get("event") == kind and key in e}
    return sorted(points.items())


def default_metric(folder: Path) -> str:
    """The run's own selection metric (``summary.json``: AP on COCO, PCKh on MPII)."""
    summary = folder / "summary.json"
    metric = read_summary(summary).get("metric") if summary.exists() else None
    return metric or "val_loss"


def learning_curves(folders: list[Path], metric: str | None, out: str | Path) -> dict[str, Any]:
    """Plot ``folders``' curves into ``out`` (``.png``, ``.pdf`` or ``.svg``, written atomically).
    ``metric`` None: the first run's selection metric. One-line errors for a metric a run did not
    log and for an unknown file type; returns what was drawn (points per run)."""
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise ConfigError(f"--out {out}: the figure is written as {', '.join(FORMATS)} (give such a file name)")
    metric = metric or default_metric(folders[0])
    runs = [(f.name, read_metrics(f)) for f in folders]
    for name, events in runs:
        known = val_metrics(events)
        if metric not in known:
            have = ", ".join(known) if known else "no validation yet"
            raise DataError(f"unknown --metric {metric!r} for run {name}: its validations logged {have}")
    drawn: dict[str, dict[str, int]] = {}
    with plt.rc_context(STYLE):
        fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(10, 4))
        for i, (name, events) in enumerate(runs):
            colour = f"C{i % 10}"
            train = _by_epoch(events, "epoch", "train_loss")
            val = _by_epoch(events, "val", metric)
            if train:
                ax_loss.plot(*zip(*train, strict=True), marker="o", ms=3, color=colour, label=name)
            ax_val.plot(*zip(*val, strict=True), marker="o", ms=3, color=colour, label=name)
            drawn[name] = {"train_points": len(train), "val_points": len(val)}
        ax_loss.set(xlabel="epoch", ylabel="training loss (JointsMSE)", title="training loss")
        ax_val.set(xlabel="epoch", ylabel=metric, title="validation loss" if metric == "val_loss" else f"val {metric}")
        for ax in (ax_loss, ax_val):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax_val.legend(fontsize=7, loc="best")
        fig.tight_layout()
        buf = io.BytesIO()
        meta = {"png": {"Software": None}, "pdf": {"CreationDate": None}, "svg": {"Date": None}}
        fmt = out.suffix.lower()[1:]
        fig.savefig(buf, format=fmt, dpi=DPI, metadata=meta[fmt])
        plt.close(fig)
    write_bytes_atomic(out, buf.getvalue())
    return {"out": str(out), "metric": metric, "runs": drawn}
