"""Object keypoint similarity (OKS) and greedy OKS-based non-maximum suppression (COCO sigmas, threshold 0.9).

The numbers follow the OKS-NMS of the reference (mmpose 0.16): poses and areas enter as float32, so the
coordinate differences, their squares and the area sum are float32; the rest (division by the variances
and the mean area, the exponentials and their mean) is float64, and each OKS is rounded to float32 before
it is compared with the threshold, itself taken as float32. Candidates are visited best score first in the
order of numpy's default ``argsort`` reversed, so among equal scores the higher index wins."""

from __future__ import annotations

import numpy as np

from hrbench.datasets.coco import COCO_SIGMAS

OKS_NMS_THR = 0.9


def _row_means(terms: np.ndarray, counted: np.ndarray) -> np.ndarray:
    """Mean of each row's ``counted`` terms (0 for a row with none), float64.

    Each mean must be the float64 sum the reference gets when it sums only that row's counted terms
    (numpy's pairwise sum, whose grouping depends on how many terms there are). So the counted terms
    are packed to the front of their row, in joint order, and rows with the same count are summed
    together over exactly that many columns."""
    n = counted.sum(axis=1)
    packed = np.take_along_axis(terms, np.argsort(~counted, axis=1, kind="stable"), axis=1)
    means = np.zeros(len(terms))
    for c in np.unique(n[n > 0]):
        rows = n == c
        means[rows] = packed[rows, :c].sum(axis=1) / c
    return means


def oks_iou(g: np.ndarray, d: np.ndarray, area_g: float, area_d: np.ndarray, sigmas=COCO_SIGMAS,
            vis_thr: float | None = None) -> np.ndarray:
    """OKS (float32, shape (M,)) of one pose ``g`` (K, 3) with each of the poses ``d`` (M, K, 3), at the
    mean of the two areas: mean over joints of exp(-|d_k - g_k|² / (2 · area · (2σ_k)²)).

    With ``vis_thr`` the mean runs over the joints of ``d`` whose visibility exceeds it (compared in
    float32), and a pose with none has OKS 0. ``g``'s visibility plays no part, as in the reference, whose
    visibility mask reduces to the candidate's."""
    var = (np.asarray(sigmas, dtype=np.float64) * 2) ** 2
    k = len(var)
    g = np.asarray(g, dtype=np.float32).reshape(k, 3)
    d = np.asarray(d, dtype=np.float32).reshape(-1, k, 3)
    area = (np.float32(area_g) + np.asarray(area_d, dtype=np.float32).reshape(-1)).astype(np.float64) / 2
    area += np.spacing(1)
    sq = np.square(d[:, :, 0] - g[:, 0]) + np.square(d[:, :, 1] - g[:, 1])  # (M, K) float32
    terms = np.exp(-(sq / var / area[:, None] / 2))
    counted = np.ones(terms.shape, dtype=bool) if vis_thr is None else d[:, :, 2] > vis_thr
    return _row_means(terms, counted).astype(np.float32)


def oks_nms(keypoints: np.ndarray, scores: np.ndarray, areas: np.ndarray, thr: float = OKS_NMS_THR,
            sigmas=COCO_SIGMAS, vis_thr: float | None = None) -> list[int]:
    """Indices of the poses kept by greedy OKS-NMS, in the order they are kept.

    Walking the poses from the best score down (numpy's default ``argsort`` of the float64 scores,
    reversed), a pose still standing is kept and knocks out every later standing pose whose OKS with it
    (:func:`oks_iou`, the later pose as ``d``) is not at most ``thr`` in float32."""
    k = len(sigmas)
    rank = np.asarray(scores, dtype=np.float64).argsort()[::-1]
    poses = np.asarray(keypoints, dtype=np.float32).reshape(-1, k, 3)[rank]
    area = np.asarray(areas, dtype=np.float32).reshape(-1)[rank]
    limit = np.float32(thr)
    standing = np.ones(len(rank), dtype=bool)
    keep: list[int] = []
    for pos in range(len(rank)):
        if not standing[pos]:
            continue
        keep.append(int(rank[pos]))
        later = pos + 1 + np.flatnonzero(standing[pos + 1:])
        if later.size:
            standing[later] = oks_iou(poses[pos], poses[later], area[pos], area[later], sigmas, vis_thr) <= limit
    return keep
