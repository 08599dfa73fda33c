"""Training targets: one Gaussian heatmap per keypoint at 1/4 input resolution (σ = 2) and
per-keypoint weights = visibility, as the papers' ``TopDownGenerateTarget`` (MSRA heatmaps)."""

from __future__ import annotations

import numpy as np

HEATMAP_STRIDE = 4


def heatmap_size(input_hw: tuple[int, int], stride: int = HEATMAP_STRIDE) -> tuple[int, int]:
    """(H, W) of the heatmaps for an (H, W) network input."""
    return input_hw[0] // stride, input_hw[1] // stride


def gaussian_targets(joints: np.ndarray, vis: np.ndarray, input_hw: tuple[int, int],
                     sigma: float = 2.0, stride: int = HEATMAP_STRIDE) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps (K, H/4, W/4) and weights (K, 1) from joints (K, 2) in input pixels.

    The peak sits on the heatmap pixel nearest to the joint (``int(x / stride + 0.5)``); the
    Gaussian is truncated to a (6σ+1)² square; a joint whose square lies wholly outside the map,
    or that is not visible, gets weight 0 and an all-zero map.
    """
    h, w = heatmap_size(input_hw, stride)
    k = len(joints)
    feat_stride = np.array([input_hw[1] / w, input_hw[0] / h])
    weight = (np.asarray(vis, dtype=np.float32).reshape(k) > 0).astype(np.float32)
    mu = np.trunc(np.asarray(joints, dtype=np.float64) / feat_stride + 0.5)  # C-style int()
    radius = sigma * 3
    outside = (mu[:, 0] - radius >= w) | (mu[:, 1] - radius >= h) | (mu[:, 0] + radius + 1 < 0) | \
              (mu[:, 1] + radius + 1 < 0)
    weight[outside] = 0.0
    dx = np.arange(w)[None, :] - mu[:, :1]
    dy = np.arange(h)[None, :] - mu[:, 1:]
    gx = np.exp(-dx ** 2 / (2 * sigma ** 2)) * (np.abs(dx) <= radius)
    gy = np.exp(-dy ** 2 / (2 * sigma ** 2)) * (np.abs(dy) <= radius)
    target = (gy[:, :, None] * gx[:, None, :]).astype(np.float32)
    target *= weight[:, None, None]
    return target, weight[:, None]
