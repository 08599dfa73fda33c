"""Object keypoint similarity (OKS) and OKS-based non-maximum suppression (COCO sigmas, threshold 0.9),
with the arithmetic of the reference ``oks_iou`` / ``oks_nms`` (mmpose 0.16
``mmpose/core/post_processing/nms.py``): coordinate differences and the area sum in the inputs'
float32, the OKS stored as float32 and compared with the threshold in float32, and candidates taken
in the order ``np.argsort(scores)[::-1]`` (among equal scores the later index comes first)."""

from __future__ import annotations

import numpy as np

from hrbench.data.coco import COCO_SIGMAS

OKS_NMS_THR = 0.9


def oks_iou(g: np.ndarray, d: np.ndarray, area_g: float, area_d: np.ndarray, sigmas=COCO_SIGMAS,
            vis_thr: float | None = None) -> np.ndarray:
    """OKS (float32, shape (M,)) of one pose ``g`` (K, 3) with poses ``d`` (M, K, 3) at the mean of
    their areas: mean_k exp(-d_k² / (2 · area · (2σ_k)²)).

    Poses and areas are taken in float32 as the reference receives them. With ``vis_thr`` only the
    joints of ``d`` above it count: the reference's mask ``list(vg > thr) and list(vd > thr)``
    evaluates to the second list, so ``g``'s visibility is ignored; reproduced as such."""
    var = (np.asarray(sigmas, dtype=np.float64) * 2) ** 2
    k = len(var)
    g = np.asarray(g, dtype=np.float32).reshape(k, 3)
    d = np.asarray(d, dtype=np.float32).reshape(-1, k, 3)
    a_g = np.float32(area_g)
    a_d = np.asarray(area_d, dtype=np.float32).reshape(-1)
    ious = np.zeros(len(d), dtype=np.float32)
    for n in range(len(d)):
        dx = d[n, :, 0] - g[:, 0]
        dy = d[n, :, 1] - g[:, 1]
        area = float(a_g + a_d[n]) / 2 + np.spacing(1)
        e = (dx ** 2 + dy ** 2) / var / area / 2
        if vis_thr is not None:
            e = e[d[n, :, 2] > vis_thr]
        ious[n] = np.sum(np.exp(-e)) / len(e) if len(e) else 0.0
    return ious


def oks_nms(keypoints: np.ndarray, scores: np.ndarray, areas: np.ndarray, thr: float = OKS_NMS_THR,
            sigmas=COCO_SIGMAS, vis_thr: float | None = None) -> list[int]:
    """Greedy NMS: keep the best-scoring pose, drop the others whose OKS with it exceeds ``thr``.

    Returns kept indices in the reference's order: ``np.argsort(scores)[::-1]`` (numpy's default
    sort, reversed, so equal scores are visited last index first)."""
    scores = np.asarray(scores, dtype=np.float64)
    kpts = np.asarray(keypoints, dtype=np.float32)
    areas = np.asarray(areas, dtype=np.float32)
    order = scores.argsort()[::-1]
    thr32 = np.float32(thr)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        ovr = oks_iou(kpts[i], kpts[order[1:]], areas[i], areas[order[1:]], sigmas, vis_thr)
        order = order[1:][ovr <= thr32]
    return keep
