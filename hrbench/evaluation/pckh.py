"""MPII PCKh, computed as the reference MPII evaluation does (mmpose 0.16
``TopDownMpiiDataset.evaluate``, the official ``eval_PCKh``).

A joint is correct when its distance to the ground truth is at most ``thr`` x head size, head size =
0.6 x the diagonal of the annotated head box. Joints marked missing in the ground truth are left
out. Predictions (0-based, float32) are shifted by +1 into the MATLAB 1-based frame of the ground
truth *in float32* (the reference adds 1.0 to its float32 array), the rest runs in float64, so an
error lying on the threshold is judged as the reference judges it. The table reports Head, then
left/right averages of Shoulder, Elbow, Wrist, Hip, Knee, Ankle; ``Mean`` (the papers' "Mean",
PCKh@0.5) weights every joint except pelvis and thorax by its number of labelled instances.

Two PCKh@0.1 means, from the 0.01-step threshold grid ``np.arange(0, 0.51, 0.01)`` whose per-joint
rows the reference stores as float32:

* ``Mean@0.1``: the true threshold 0.10 (grid row 10; mmpose >= 0.29 reports this row);
* ``Mean@0.1(mmpose<=0.16)``: grid row 11, i.e. threshold 0.11, which mmpose <= 0.16 (0.13 and 0.16
  alike) reports as "PCKh@0.1". The Lite-HRNet / Dite-HRNet papers' "Mean@0.1" figures come from
  their pinned mmpose (0.13 / 0.16), so compare those with this key.
"""

from __future__ import annotations

import numpy as np

from hrbench.datasets import register_evaluator

SC_BIAS = 0.6
MEAN_01 = "Mean@0.1"
MEAN_01_MMPOSE016 = "Mean@0.1(mmpose<=0.16)"
TABLE = ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean", MEAN_01, MEAN_01_MMPOSE016)
_PAIRS = {"Shoulder": ("lsho", "rsho"), "Elbow": ("lelb", "relb"), "Wrist": ("lwri", "rwri"),
          "Hip": ("lhip", "rhip"), "Knee": ("lkne", "rkne"), "Ankle": ("lank", "rank")}
_EXCLUDED = ("pelv", "thor")  # left out of the Mean (the reference masks indices 6:8)
#: The reference's threshold grid: row 10 is 0.10, row 11 is 0.11.
THRESHOLD_GRID = np.arange(0, 0.5 + 0.01, 0.01)


def scaled_errors(preds: np.ndarray, gt: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint errors / head size (16, N) and the labelled mask (16, N) from 0-based predictions
    (N, 16, 2) and ground truth in the ``.mat`` layout (see :func:`hrbench.data.mpii.load_mpii_gt`)."""
    one_based = np.asarray(preds, dtype=np.float32)[:, :, :2] + np.float32(1.0)  # float32, as the reference
    pos_pred = np.transpose(one_based, (1, 2, 0)).astype(np.float64)
    visible = 1 - np.asarray(gt["jnt_missing"], dtype=np.float64)
    err = np.linalg.norm(pos_pred - gt["pos_gt_src"], axis=1)
    heads = np.linalg.norm(gt["headboxes_src"][1] - gt["headboxes_src"][0], axis=0) * SC_BIAS
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(visible > 0, err / heads[None, :], 0.0)
    return scaled, visible


def pck_per_joint(scaled: np.ndarray, visible: np.ndarray, thr: float) -> tuple[np.ndarray, np.ndarray]:
    """PCKh (percent) per joint at ``thr`` and the number of labelled instances per joint."""
    count = visible.sum(axis=1)
    hits = ((scaled <= thr) * visible).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, 100.0 * hits / np.maximum(count, 1), np.nan), count


def pckh(preds: np.ndarray, gt: dict, thr: float = 0.5) -> dict[str, float]:
    """The PCKh table (percent): Head, Shoulder, Elbow, Wrist, Hip, Knee, Ankle, Mean (at ``thr``),
    Mean@0.1 (threshold 0.10) and Mean@0.1(mmpose<=0.16) (threshold 0.11); see the module docstring."""
    names = [str(n) for n in gt["dataset_joints"]]
    ix = {n: names.index(n) for n in names}
    scaled, visible = scaled_errors(preds, gt)
    per_joint, count = pck_per_joint(scaled, visible, thr)
    weight = count.astype(np.float64).copy()
    for n in _EXCLUDED:
        weight[ix[n]] = 0.0
    weight = weight / weight.sum() if weight.sum() > 0 else weight

    def mean(values: np.ndarray) -> float:
        # the reference sums all 16 products with the masked ones as 0 (same summation order)
        return float(np.sum(np.where(weight > 0, values, 0.0) * weight))

    table = {"Head": float(per_joint[ix["head"]])}
    for key, (left, right) in _PAIRS.items():
        table[key] = float(0.5 * (per_joint[ix[left]] + per_joint[ix[right]]))
    table["Mean"] = mean(per_joint)
    for key, row in ((MEAN_01, 10), (MEAN_01_MMPOSE016, 11)):
        row_pck = pck_per_joint(scaled, visible, THRESHOLD_GRID[row])[0].astype(np.float32)
        table[key] = mean(row_pck.astype(np.float64))
    return table


def evaluate_mpii(dataset, predictions: dict) -> dict[str, float]:
    """PCKh table for predictions on an MPII dataset (rows must cover every dataset sample)."""
    from hrbench.errors import DataError
    from hrbench.evaluation.predictions import unique_sorted

    p = unique_sorted(predictions)
    gt = dataset.load_gt()
    if len(p["bbox_id"]) != len(dataset) or not np.array_equal(p["bbox_id"], np.arange(len(dataset))):
        raise DataError(f"PCKh needs a prediction for each of the {len(dataset)} persons of {dataset.ann_file}; "
                        f"got {len(p['bbox_id'])}")
    out = pckh(p["keypoints"][:, :, :2], gt)
    out["num_persons"] = len(dataset)
    return out


def _evaluate_pckh(dataset, predictions: dict, out_dir=None) -> dict[str, float]:
    """The evaluator registered as ``"pckh"`` (writes no file)."""
    return evaluate_mpii(dataset, predictions)


register_evaluator("pckh", _evaluate_pckh)
