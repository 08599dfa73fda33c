"""``evaluate``: the metric dict of a dataset's predictions, stamped with how they were obtained."""

from __future__ import annotations

from pathlib import Path

from hrbench.datasets import get_dataset, get_evaluator
from hrbench.errors import DataError
from hrbench.evaluation import coco_eval, pckh  # noqa: F401  (register the "cocoeval" and "pckh" evaluators)

BOX_SOURCES = ("gt", "detections")


def evaluate(dataset, predictions: dict, out_dir: str | Path | None = None, flip: bool = False,
             box_source: str | None = None) -> dict:
    """The registered evaluator of ``dataset``'s spec: COCO-style -> AP, AP50, AP75, APM, APL, AR,
    AR50, AR75, ARM, ARL (percent; results json written to ``out_dir``); MPII -> the PCKh table
    (percent). Every dict also holds ``dataset``, ``split``, ``box_source`` ("gt" | "detections",
    default: the dataset's), ``flip`` and ``input`` ("256x192")."""
    box_source = box_source or getattr(dataset, "box_source", "gt")
    if box_source not in BOX_SOURCES:
        raise DataError(f"unknown box_source {box_source!r}: expected gt or detections")
    metrics = get_evaluator(get_dataset(dataset.name))(dataset, predictions, out_dir)
    h, w = dataset.input_hw
    metrics.update({"dataset": dataset.name, "split": getattr(dataset, "split", ""), "box_source": box_source,
                    "flip": bool(flip), "input": f"{h}x{w}"})
    return metrics
