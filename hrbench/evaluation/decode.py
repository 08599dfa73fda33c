"""Heatmaps -> keypoints: argmax, the quarter-pixel offset towards the higher neighbour (default) or
DARK's Taylor refinement on the log of the blurred heatmap, then back to image pixels through the
inverse of the crop affine (the reference ``keypoints_from_heatmaps`` + ``transform_preds``)."""

from __future__ import annotations

import math

import numpy as np

from hrbench.data.transforms import PIXEL_STD


def argmax_heatmaps(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, K, H, W) -> integer peak coordinates (N, K, 2) as x, y (-1 where the max is <= 0) and
    the max values (N, K, 1)."""
    n, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, -1)
    idx = flat.argmax(axis=2)
    maxvals = np.take_along_axis(flat, idx[..., None], axis=2).astype(np.float32)
    preds = np.stack([idx % w, idx // w], axis=-1).astype(np.float32)
    preds = np.where(maxvals > 0.0, preds, -1.0).astype(np.float32)
    return preds, maxvals


def quarter_offset(heatmaps: np.ndarray, preds: np.ndarray) -> np.ndarray:
    """Move each peak by 0.25 px towards its higher neighbour in x and in y (interior peaks only)."""
    n, k, h, w = heatmaps.shape
    out = preds.copy()
    px = np.floor(preds[..., 0] + 0.5).astype(int)
    py = np.floor(preds[..., 1] + 0.5).astype(int)
    ok = (px > 1) & (px < w - 1) & (py > 1) & (py < h - 1)
    ni, ki = np.nonzero(ok)
    if len(ni):
        x, y = px[ni, ki], py[ni, ki]
        hm = heatmaps[ni, ki]
        r = np.arange(len(ni))
        dx = hm[r, y, x + 1] - hm[r, y, x - 1]
        dy = hm[r, y + 1, x] - hm[r, y - 1, x]
        out[ni, ki, 0] += np.sign(dx) * 0.25
        out[ni, ki, 1] += np.sign(dy) * 0.25
    return out


def gaussian_blur(heatmaps: np.ndarray, kernel: int = 11) -> np.ndarray:
    """DARK's modulation: Gaussian blur (σ from the kernel size as OpenCV does, zero borders), then
    rescale each map to keep its original maximum."""
    sigma = 0.3 * ((kernel - 1) * 0.5 - 1) + 0.8
    r = (kernel - 1) // 2
    g = np.exp(-((np.arange(kernel) - r) ** 2) / (2 * sigma ** 2))
    g /= g.sum()
    n, k, h, w = heatmaps.shape
    pad = np.zeros((n, k, h + 2 * r, w + 2 * r), dtype=np.float64)
    pad[:, :, r:r + h, r:r + w] = heatmaps
    tmp = sum(g[i] * pad[:, :, :, i:i + w] for i in range(kernel))  # along x
    out = sum(g[i] * tmp[:, :, i:i + h, :] for i in range(kernel))  # along y
    orig_max = heatmaps.reshape(n, k, -1).max(axis=2)
    new_max = out.reshape(n, k, -1).max(axis=2)
    ratio = np.divide(orig_max, new_max, out=np.zeros_like(orig_max, dtype=np.float64), where=new_max != 0)
    return out * ratio[..., None, None]


def taylor_refine(log_hm: np.ndarray, coord: np.ndarray) -> np.ndarray:
    """One Newton step on a log-heatmap around ``coord`` (x, y): second-order Taylor expansion."""
    h, w = log_hm.shape
    px, py = int(coord[0]), int(coord[1])
    if 1 < px < w - 2 and 1 < py < h - 2:
        m = log_hm
        dx = 0.5 * (m[py, px + 1] - m[py, px - 1])
        dy = 0.5 * (m[py + 1, px] - m[py - 1, px])
        dxx = 0.25 * (m[py, px + 2] - 2 * m[py, px] + m[py, px - 2])
        dxy = 0.25 * (m[py + 1, px + 1] - m[py - 1, px + 1] - m[py + 1, px - 1] + m[py - 1, px - 1])
        dyy = 0.25 * (m[py + 2, px] - 2 * m[py, px] + m[py - 2, px])
        det = dxx * dyy - dxy ** 2
        if det != 0:
            hess_inv = np.array([[dyy, -dxy], [-dxy, dxx]]) / det
            coord = coord - hess_inv @ np.array([dx, dy])
    return coord


def transform_preds(coords: np.ndarray, center, scale, heatmap_wh: tuple[int, int],
                    rotation: float = 0.0) -> np.ndarray:
    """Heatmap (x, y) -> original-image pixels: the inverse of the crop affine at heatmap size."""
    s = np.asarray(scale, dtype=np.float64) * PIXEL_STD
    c = np.asarray(center, dtype=np.float64)
    xy = np.asarray(coords, dtype=np.float64)[..., :2]
    out = np.empty_like(xy)
    out[..., 0] = xy[..., 0] * (s[0] / heatmap_wh[0]) + c[0] - s[0] * 0.5
    out[..., 1] = xy[..., 1] * (s[1] / heatmap_wh[1]) + c[1] - s[1] * 0.5
    if rotation:
        t = math.radians(rotation)  # the crop turned the content by +rotation: undo it about the centre
        rel = out - c
        cs, sn = math.cos(t), math.sin(t)
        out = c + np.stack([cs * rel[..., 0] - sn * rel[..., 1], sn * rel[..., 0] + cs * rel[..., 1]], axis=-1)
    return out


def decode_heatmaps(heatmaps, centers, scales, *, post_process: str = "default", kernel: int = 11,
                    rotations=None) -> tuple[np.ndarray, np.ndarray]:
    """(N, K, H, W) heatmaps + per-sample centre/scale -> keypoints (N, K, 2) in image pixels and
    confidences (N, K, 1). ``post_process``: "default" (quarter offset), "dark", or "none"."""
    hm = np.asarray(heatmaps, dtype=np.float32)
    n, k, h, w = hm.shape
    preds, maxvals = argmax_heatmaps(hm)
    if post_process == "default":
        preds = quarter_offset(hm, preds)
    elif post_process == "dark":
        log_hm = np.log(np.maximum(gaussian_blur(hm, kernel), 1e-10))
        preds = preds.astype(np.float64)
        for i in range(n):
            for j in range(k):
                preds[i, j] = taylor_refine(log_hm[i, j], preds[i, j])
    elif post_process != "none":
        raise ValueError(f"unknown post_process {post_process!r}: expected default, dark or none")
    out = np.empty((n, k, 2), dtype=np.float64)
    for i in range(n):
        rot = 0.0 if rotations is None else float(rotations[i])
        out[i] = transform_preds(preds[i], centers[i], scales[i], (w, h), rot)
    return out.astype(np.float32), maxvals
