"""The MSRA Gaussian heatmap codec of the three papers (mmpose 0.16 ``TopDownGenerateTarget``,
``keypoints_from_heatmaps``, ``flip_back`` + ``shift_heatmap``, ``JointsMSELoss``).

* Targets: one Gaussian heatmap per keypoint at 1/4 input resolution (σ = 2) and per-keypoint
  weights = visibility; in numpy for one sample (:func:`gaussian_targets`) and batched in torch on
  any device (:func:`heatmap_targets`, the same formula in float64).
* Decoding: argmax, then the quarter-pixel offset towards the higher neighbour (default) or DARK's
  Taylor refinement on the log of the blurred heatmap; in heatmap pixels.
* Flip test: mirror back, swap left/right channels, shift one pixel right, average.
* Loss: ``JointsMSELoss(use_target_weight=True)`` (:func:`joints_mse_loss`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from hrbench.codecs.base import Codec, Decoded, register_codec

HEATMAP_STRIDE = 4


def heatmap_size(input_hw: tuple[int, int], stride: int = HEATMAP_STRIDE) -> tuple[int, int]:
    """(H, W) of the heatmaps for an (H, W) network input."""
    return input_hw[0] // stride, input_hw[1] // stride


# ------------------------------------------------------------------------------------------ targets
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


def heatmap_targets(joints: torch.Tensor, vis: torch.Tensor, input_hw: tuple[int, int], sigma: float = 2.0,
                    stride: int = HEATMAP_STRIDE) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched :func:`gaussian_targets` on the tensors' device: joints (B, K, 2) in crop pixels and
    visibility (B, K) -> heatmaps (B, K, H/4, W/4) float32 and weights (B, K, 1) float32."""
    h, w = heatmap_size(input_hw, stride)
    dev = joints.device
    b, k = joints.shape[:2]
    feat_stride = torch.tensor([input_hw[1] / w, input_hw[0] / h], dtype=torch.float64, device=dev)
    weight = (vis.reshape(b, k) > 0).to(torch.float64)
    mu = torch.trunc(joints.to(torch.float64) / feat_stride + 0.5)
    radius = sigma * 3
    outside = (mu[..., 0] - radius >= w) | (mu[..., 1] - radius >= h) | (mu[..., 0] + radius + 1 < 0) | \
              (mu[..., 1] + radius + 1 < 0)
    weight = weight.masked_fill(outside, 0.0)
    dx = torch.arange(w, device=dev, dtype=torch.float64) - mu[..., :1]
    dy = torch.arange(h, device=dev, dtype=torch.float64) - mu[..., 1:]
    gx = torch.exp(-dx ** 2 / (2 * sigma ** 2)) * (dx.abs() <= radius)
    gy = torch.exp(-dy ** 2 / (2 * sigma ** 2)) * (dy.abs() <= radius)
    target = (gy[..., :, None] * gx[..., None, :]).to(torch.float32)
    target = target * weight.to(torch.float32)[..., None, None]
    return target, weight.to(torch.float32)[..., None]


# ------------------------------------------------------------------------------------------ decoding
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


def heatmap_peaks(hm: np.ndarray, post_process: str = "default", kernel: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """(N, K, H, W) float32 heatmaps -> peaks (N, K, 2) in heatmap pixels and max values (N, K, 1);
    ``post_process``: "default" (quarter offset), "dark" or "none"."""
    n, k = hm.shape[:2]
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
    return preds, maxvals


# ------------------------------------------------------------------------------------------ flip test
def flip_back(heatmaps: torch.Tensor, flip_pairs) -> torch.Tensor:
    """Heatmaps (N, K, H, W) of a mirrored input -> the original frame: mirror W, swap pairs."""
    out = heatmaps.flip(-1)
    perm = list(range(out.shape[1]))
    for a, b in flip_pairs:
        perm[a], perm[b] = b, a
    return out[:, perm]


def shift_right(heatmaps: torch.Tensor) -> torch.Tensor:
    """Shift by one pixel along W (column j takes column j-1; column 0 keeps its value)."""
    out = heatmaps.clone()
    out[..., 1:] = heatmaps[..., :-1]
    return out


def merge_flip(heatmaps: torch.Tensor, flipped_heatmaps: torch.Tensor, flip_pairs,
               shift: bool = True) -> torch.Tensor:
    """Average plain heatmaps with the flipped-input heatmaps brought back to the original frame."""
    back = flip_back(flipped_heatmaps, flip_pairs)
    if shift:
        back = shift_right(back)
    return (heatmaps + back) * 0.5


# ------------------------------------------------------------------------------------------ loss
def joints_mse_loss(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
                    reduction: str = "mean") -> torch.Tensor:
    """JointsMSELoss with target weights: ``mean_k MSE(w_k * pred_k, w_k * target_k)`` (the reference
    value: prediction ones(1, 1, 2, 2), target zeros, weight 1 gives 1.0).

    ``pred``/``target``: (B, K, h, w); ``weight``: (B, K, 1) or (B, K). ``reduction="none"``
    returns the per-sample loss (B,), whose mean is the batch loss.
    """
    b, k = pred.shape[:2]
    w = weight.reshape(b, k, 1).to(pred.dtype)
    diff = (pred.reshape(b, k, -1) - target.reshape(b, k, -1).to(pred.dtype)) * w
    per_sample = diff.pow(2).mean(dim=(1, 2))
    return per_sample if reduction == "none" else per_sample.mean()


# ------------------------------------------------------------------------------------------ the codec
@register_codec("msra_heatmap")
@dataclasses.dataclass(frozen=True)
class MSRAHeatmap(Codec):
    """Gaussian heatmaps at 1/``stride`` of the input (σ = ``sigma``); the flip test shifts the
    mirrored heatmaps one pixel right when ``flip_shift`` (the reference ``shift_heatmap``)."""

    sigma: float = 2.0
    stride: int = HEATMAP_STRIDE
    flip_shift: bool = True
    dark_kernel: int = 11

    post_processes = ("default", "dark", "none")

    def encode(self, joints: np.ndarray, vis: np.ndarray, input_hw: tuple[int, int]) -> dict[str, np.ndarray]:
        target, weight = gaussian_targets(joints, vis, input_hw, self.sigma, self.stride)
        return {"target": target, "target_weight": weight}

    def encode_batch(self, joints: torch.Tensor, vis: torch.Tensor,
                     input_hw: tuple[int, int]) -> dict[str, torch.Tensor]:
        target, weight = heatmap_targets(joints, vis, input_hw, self.sigma, self.stride)
        return {"target": target, "target_weight": weight}

    def decode(self, output: Any, post_process: str = "default") -> Decoded:
        self.check_post_process(post_process)
        hm = output.detach().float().cpu().numpy() if isinstance(output, torch.Tensor) else output
        hm = np.asarray(hm, dtype=np.float32)
        preds, maxvals = heatmap_peaks(hm, post_process, self.dark_kernel)
        return Decoded(preds, maxvals, (hm.shape[3], hm.shape[2]))

    def flip_back(self, flipped_output: torch.Tensor, flip_pairs: Sequence[Sequence[int]]) -> torch.Tensor:
        back = flip_back(flipped_output, flip_pairs)
        return shift_right(back) if self.flip_shift else back

    def loss(self, output: torch.Tensor, *targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        target, weight = targets
        return joints_mse_loss(output.float(), target, weight, reduction)
