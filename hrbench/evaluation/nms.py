"""Object keypoint similarity (OKS) and OKS-based non-maximum suppression (COCO sigmas, threshold 0.9)."""

from __future__ import annotations

import numpy as np

from hrbench.data.coco import COCO_SIGMAS

OKS_NMS_THR = 0.9


def oks_iou(g: np.ndarray, d: np.ndarray, area_g: float, area_d: np.ndarray, sigmas=COCO_SIGMAS,
            vis_thr: float | None = None) -> np.ndarray:
    """OKS of one pose ``g`` (K, 3) with poses ``d`` (M, K, 3) at the mean of their areas:
    mean_k exp(-d_k² / (2 · area · (2σ_k)²)) (optionally over joints both see above ``vis_thr``)."""
    sig = np.asarray(sigmas, dtype=np.float64)
    var = (sig * 2) ** 2
    g = np.asarray(g, dtype=np.float64).reshape(-1, 3)
    d = np.asarray(d, dtype=np.float64).reshape(-1, len(sig), 3)
    area = (area_g + np.asarray(area_d, dtype=np.float64).reshape(-1)) / 2 + np.spacing(1)
    e = ((d[..., 0] - g[:, 0]) ** 2 + (d[..., 1] - g[:, 1]) ** 2) / var / area[:, None] / 2
    sim = np.exp(-e)
    if vis_thr is None:
        return sim.mean(axis=1)
    mask = (g[:, 2] > vis_thr)[None, :] & (d[..., 2] > vis_thr)
    cnt = mask.sum(axis=1)
    return np.where(cnt > 0, (sim * mask).sum(axis=1) / np.maximum(cnt, 1), 0.0)


def oks_nms(keypoints: np.ndarray, scores: np.ndarray, areas: np.ndarray, thr: float = OKS_NMS_THR,
            sigmas=COCO_SIGMAS, vis_thr: float | None = None) -> list[int]:
    """Greedy NMS: keep the best-scoring pose, drop the others whose OKS with it exceeds ``thr``.
    Returns kept indices in decreasing score order."""
    scores = np.asarray(scores, dtype=np.float64)
    kpts = np.asarray(keypoints, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        if order.size == 1:
            break
        ovr = oks_iou(kpts[i], kpts[order[1:]], float(areas[i]), np.asarray(areas)[order[1:]], sigmas, vis_thr)
        order = order[1:][ovr <= thr]
    return keep
