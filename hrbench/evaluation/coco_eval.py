"""COCO keypoint evaluation as the papers report it (mmpose 0.16 ``TopDownCocoDataset.evaluate``):
rescoring (box score x mean confidence of the keypoints above 0.2), OKS-NMS at 0.9 per image, a
COCO-format results json (float32 keypoints written unrounded, as the reference), and
``pycocotools`` COCOeval -> AP, AP50, AP75, APM, APL, AR, AR50, AR75, ARM, ARL (in percent)."""

from __future__ import annotations

import contextlib
import io
from collections import defaultdict
from pathlib import Path

import numpy as np

from hrbench.datasets import register_evaluator
from hrbench.datasets.coco import COCO_SIGMAS
from hrbench.evaluation.nms import OKS_NMS_THR, oks_nms
from hrbench.evaluation.predictions import unique_sorted
from hrbench.manifest import write_owned

METRIC_NAMES = ("AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL")
VIS_THR = 0.2


def rescore(keypoints: np.ndarray, box_score: float, vis_thr: float = VIS_THR) -> float:
    """Instance score = box score x mean of the keypoint confidences above ``vis_thr`` (0 if none).
    The float32 confidences are summed in float64 (exact for <= 2^24 terms of this range), as the
    reference's running sum does."""
    conf = np.asarray(keypoints, dtype=np.float64)[:, 2]
    good = conf[conf > vis_thr]
    return float(box_score * (good.mean() if good.size else 0.0))


def coco_results(predictions: dict, *, vis_thr: float = VIS_THR, oks_thr: float = OKS_NMS_THR,
                 use_nms: bool = True, sigmas=COCO_SIGMAS) -> list[dict]:
    """Predictions (see :mod:`hrbench.evaluation.predictions`) -> COCO results list
    ``[{image_id, category_id, keypoints: [x, y, c] * K, score}]`` after rescoring and OKS-NMS."""
    p = unique_sorted(predictions)
    by_image: dict[int, list[int]] = defaultdict(list)
    for i, img in enumerate(p["image_id"]):
        by_image[int(img)].append(i)
    results = []
    for img in sorted(by_image):
        idx = by_image[img]
        kpts = p["keypoints"][idx].astype(np.float32)
        scores = np.array([rescore(kpts[j], p["score"][i], vis_thr) for j, i in enumerate(idx)])
        keep = oks_nms(kpts, scores, p["area"][idx], oks_thr, sigmas) if use_nms else range(len(idx))
        for j in keep:
            results.append({"image_id": img, "category_id": 1,
                            "keypoints": kpts[j].ravel().tolist(),
                            "score": float(scores[j])})
    return results


def run_cocoeval(coco_gt, results: list[dict], sigmas=COCO_SIGMAS) -> dict[str, float]:
    """pycocotools keypoint COCOeval of ``results`` against ``coco_gt`` with per-keypoint OKS ``sigmas``
    -> the ten numbers in percent."""
    from pycocotools.cocoeval import COCOeval

    if not results:
        return {k: 0.0 for k in METRIC_NAMES}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(results)
        ev = COCOeval(coco_gt, coco_dt, "keypoints")
        ev.params.useSegm = None
        ev.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {k: float(v) * 100.0 for k, v in zip(METRIC_NAMES, ev.stats, strict=True)}


def evaluate_coco(dataset, predictions: dict, out_dir: str | Path | None = None, *,
                  use_nms: bool = True) -> dict:
    """The ten COCOeval numbers (percent) for ``predictions`` on a COCO-style dataset (OKS with its
    spec's sigmas); writes ``keypoints_{split}_results.json`` into ``out_dir`` when given."""
    sigmas = dataset.spec.sigmas
    results = coco_results(predictions, use_nms=use_nms, sigmas=sigmas)
    if out_dir is not None:
        write_owned(Path(out_dir), f"keypoints_{dataset.split}_results.json", results)
    metrics = run_cocoeval(dataset.coco, results, sigmas)
    metrics["num_results"] = len(results)
    return metrics


register_evaluator("cocoeval", evaluate_coco)
