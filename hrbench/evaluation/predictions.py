"""The predictions container shared by inference and evaluation: a dict of numpy arrays, one row per
person box (picklable, so DDP ranks can gather it and :func:`merge_predictions` the parts)::

    keypoints  float32 (N, K, 3)  x, y in original-image pixels, heatmap confidence
    center     float32 (N, 2)     crop centre (pixels)
    scale      float32 (N, 2)     crop size / 200
    area       float32 (N,)       prod(scale * 200), the OKS-NMS area
    score      float32 (N,)       box score (1 for ground-truth boxes)
    image_id   int64   (N,)
    bbox_id    int64   (N,)       index of the sample in the dataset
"""

from __future__ import annotations

import numpy as np

from hrbench.errors import DataError

FIELDS = {"keypoints": np.float32, "center": np.float32, "scale": np.float32, "area": np.float32,
          "score": np.float32, "image_id": np.int64, "bbox_id": np.int64}


def empty_predictions(num_keypoints: int) -> dict:
    """A predictions dict with zero rows."""
    return {"keypoints": np.zeros((0, num_keypoints, 3), np.float32), "center": np.zeros((0, 2), np.float32),
            "scale": np.zeros((0, 2), np.float32), "area": np.zeros(0, np.float32),
            "score": np.zeros(0, np.float32), "image_id": np.zeros(0, np.int64), "bbox_id": np.zeros(0, np.int64)}


def check_predictions(pred: dict) -> int:
    """Validate the container; returns N."""
    if not isinstance(pred, dict) or any(k not in pred for k in FIELDS):
        missing = sorted(set(FIELDS) - set(pred if isinstance(pred, dict) else ()))
        raise DataError(f"predictions lack {', '.join(missing)} (expected the dict returned by predict())")
    n = len(pred["bbox_id"])
    if any(len(pred[k]) != n for k in FIELDS):
        raise DataError("predictions: fields have different lengths")
    return n


def merge_predictions(parts: list[dict]) -> dict:
    """Concatenate predictions (e.g. one per DDP rank), sort by ``bbox_id``, drop repeated boxes
    (a distributed sampler pads the last batch with repeats)."""
    parts = [p for p in parts if p is not None]
    if not parts:
        raise DataError("no predictions to merge")
    for p in parts:
        check_predictions(p)
    cat = {k: np.concatenate([np.asarray(p[k], dtype=t) for p in parts]) for k, t in FIELDS.items()}
    return unique_sorted(cat)


def unique_sorted(pred: dict) -> dict:
    """Rows sorted by ``bbox_id`` with duplicates removed (first occurrence kept)."""
    check_predictions(pred)
    _, first = np.unique(np.asarray(pred["bbox_id"]), return_index=True)
    return {k: np.asarray(pred[k], dtype=t)[first] for k, t in FIELDS.items()}
