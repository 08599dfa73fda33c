"""UDP, unbiased data processing (Huang et al., CVPR 2020), as mmpose 0.16 runs it with
``target_type='GaussianHeatmap'``: ``TopDownAffine(use_udp=True)``, ``TopDownGenerateTarget
(encoding='UDP')``, ``keypoints_from_heatmaps(use_udp=True)``, flip test without ``shift_heatmap``.

* Crop affine: pixel units (:attr:`UDPHeatmap.affine` = ``"udp"``, the reference ``get_warp_matrix``;
  :mod:`hrbench.data.transforms` builds it): the box edges land on the first and last pixel centres.
* Targets: the heatmap frame is the input frame scaled by (input - 1) / (heatmap - 1); the Gaussian
  (σ = 2) is centred on the joint's exact sub-pixel position, on the (6σ+1)² window around the
  nearest heatmap pixel (``int(x / stride + 0.5)``); weights = visibility, 0 where the window lies
  wholly outside the map.
* Decoding: argmax, then UDP's post-processing (``post_dark_udp``): Gaussian blur (OpenCV, kernel 11,
  reflect-101 border), clip to [0.001, 50], log, one Newton step with central differences on the
  reflect-padded log-map (Hessian + float32 eps). A peak with no positive value stays at -1.
* Flip test: mirror back and swap left/right channels, no shift (the affine is already symmetric).
* Loss: ``JointsMSELoss(use_target_weight=True)``, as the MSRA codec.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch

from hrbench.codecs.base import Codec, Decoded, register_codec
from hrbench.codecs.heatmap import HEATMAP_STRIDE, argmax_heatmaps, flip_back, heatmap_size, joints_mse_loss


def _feat_stride(input_hw: tuple[int, int], hm_hw: tuple[int, int]) -> tuple[float, float]:
    """(x, y) input pixels per heatmap pixel between pixel centres: (input - 1) / (heatmap - 1)."""
    return (input_hw[1] - 1.0) / (hm_hw[1] - 1.0), (input_hw[0] - 1.0) / (hm_hw[0] - 1.0)


def udp_targets(joints: np.ndarray, vis: np.ndarray, input_hw: tuple[int, int], sigma: float = 2.0,
                stride: int = HEATMAP_STRIDE) -> tuple[np.ndarray, np.ndarray]:
    """UDP Gaussian heatmaps (K, H/4, W/4) float32 and weights (K, 1) from joints (K, 2) in input pixels."""
    h, w = heatmap_size(input_hw, stride)
    k = len(joints)
    mu_ac = np.asarray(joints, dtype=np.float64).reshape(k, 2) / np.array(_feat_stride(input_hw, (h, w)))
    mu = np.trunc(mu_ac + 0.5)  # C-style int()
    weight = (np.asarray(vis, dtype=np.float32).reshape(k) > 0).astype(np.float32)
    radius = sigma * 3
    outside = (mu[:, 0] - radius >= w) | (mu[:, 1] - radius >= h) | (mu[:, 0] + radius + 1 < 0) | \
              (mu[:, 1] + radius + 1 < 0)
    weight[outside] = 0.0
    gx = np.exp(-(np.arange(w)[None, :] - mu_ac[:, :1]) ** 2 / (2 * sigma ** 2))
    gy = np.exp(-(np.arange(h)[None, :] - mu_ac[:, 1:]) ** 2 / (2 * sigma ** 2))
    gx *= np.abs(np.arange(w)[None, :] - mu[:, :1]) <= radius
    gy *= np.abs(np.arange(h)[None, :] - mu[:, 1:]) <= radius
    target = (gy[:, :, None] * gx[:, None, :]).astype(np.float32)
    target *= weight[:, None, None]
    return target, weight[:, None]


def udp_targets_batch(joints: torch.Tensor, vis: torch.Tensor, input_hw: tuple[int, int], sigma: float = 2.0,
                      stride: int = HEATMAP_STRIDE) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched :func:`udp_targets` on the tensors' device (float64 inside): (B, K, 2), (B, K) ->
    heatmaps (B, K, H/4, W/4) and weights (B, K, 1), float32."""
    h, w = heatmap_size(input_hw, stride)
    dev = joints.device
    b, k = joints.shape[:2]
    fs = torch.tensor(_feat_stride(input_hw, (h, w)), dtype=torch.float64, device=dev)
    mu_ac = joints.to(torch.float64) / fs
    mu = torch.trunc(mu_ac + 0.5)
    weight = (vis.reshape(b, k) > 0).to(torch.float64)
    radius = sigma * 3
    outside = (mu[..., 0] - radius >= w) | (mu[..., 1] - radius >= h) | (mu[..., 0] + radius + 1 < 0) | \
              (mu[..., 1] + radius + 1 < 0)
    weight = weight.masked_fill(outside, 0.0)
    xs = torch.arange(w, device=dev, dtype=torch.float64)
    ys = torch.arange(h, device=dev, dtype=torch.float64)
    gx = torch.exp(-(xs - mu_ac[..., :1]) ** 2 / (2 * sigma ** 2)) * ((xs - mu[..., :1]).abs() <= radius)
    gy = torch.exp(-(ys - mu_ac[..., 1:]) ** 2 / (2 * sigma ** 2)) * ((ys - mu[..., 1:]).abs() <= radius)
    target = (gy[..., :, None] * gx[..., None, :]).to(torch.float32)
    target = target * weight.to(torch.float32)[..., None, None]
    return target, weight.to(torch.float32)[..., None]


def udp_refine(heatmaps: np.ndarray, preds: np.ndarray, kernel: int = 11) -> np.ndarray:
    """UDP's post-processing of integer peaks (N, K, 2) on heatmaps (N, K, H, W): blur, clip, log,
    one Newton step on the reflect-padded log-map (see the module docstring)."""
    n, k, h, w = heatmaps.shape
    hm = np.array(heatmaps, dtype=np.float32)
    for i in range(n):
        for j in range(k):
            cv2.GaussianBlur(hm[i, j], (kernel, kernel), 0, hm[i, j])
    hm = np.log(np.clip(hm, 0.001, 50))
    pad = np.pad(hm, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="symmetric")  # cv2.BORDER_REFLECT
    out = np.array(preds, dtype=np.float32)
    ni, ki = np.nonzero((out[..., 0] >= 0) & (out[..., 1] >= 0))
    x = out[ni, ki, 0].astype(int) + 1
    y = out[ni, ki, 1].astype(int) + 1
    p = pad[ni, ki]
    r = np.arange(len(ni))

    def at(dy: int, dx: int) -> np.ndarray:
        return p[r, y + dy, x + dx]

    c, xp, xm, yp, ym = at(0, 0), at(0, 1), at(0, -1), at(1, 0), at(-1, 0)
    d = np.stack([0.5 * (xp - xm), 0.5 * (yp - ym)], axis=-1)[..., None]
    dxx = xp - 2 * c + xm
    dyy = yp - 2 * c + ym
    dxy = 0.5 * (at(1, 1) - xp - yp + 2 * c - xm - ym + at(-1, -1))
    hess = np.stack([np.stack([dxx, dxy], -1), np.stack([dxy, dyy], -1)], -2)
    hess = hess + np.finfo(np.float32).eps * np.eye(2)  # float64, as the reference
    out[ni, ki] -= (np.linalg.inv(hess) @ d)[..., 0]
    return out


@register_codec("udp")
@dataclasses.dataclass(frozen=True)
class UDPHeatmap(Codec):
    """UDP Gaussian heatmaps at 1/``stride`` of the input (σ = ``sigma``), decoded with UDP's
    post-processing (blur ``kernel``); the crop uses UDP's pixel-unit affine."""

    sigma: float = 2.0
    stride: int = HEATMAP_STRIDE
    kernel: int = 11

    affine = "udp"
    post_processes = ("default", "none")

    def encode(self, joints: np.ndarray, vis: np.ndarray, input_hw: tuple[int, int]) -> dict[str, np.ndarray]:
        target, weight = udp_targets(joints, vis, input_hw, self.sigma, self.stride)
        return {"target": target, "target_weight": weight}

    def encode_batch(self, joints: torch.Tensor, vis: torch.Tensor,
                     input_hw: tuple[int, int]) -> dict[str, torch.Tensor]:
        target, weight = udp_targets_batch(joints, vis, input_hw, self.sigma, self.stride)
        return {"target": target, "target_weight": weight}

    def decode(self, output: Any, post_process: str = "default") -> Decoded:
        """Peaks in heatmap pixels; the frame is (W - 1, H - 1): UDP maps the first and last heatmap
        pixel centres to the box edges (the reference ``transform_preds(use_udp=True)``)."""
        self.check_post_process(post_process)
        hm = output.detach().float().cpu().numpy() if isinstance(output, torch.Tensor) else output
        hm = np.asarray(hm, dtype=np.float32)
        preds, maxvals = argmax_heatmaps(hm)
        if post_process == "default":
            preds = udp_refine(hm, preds, self.kernel)
        return Decoded(preds, maxvals, (hm.shape[3] - 1.0, hm.shape[2] - 1.0))

    def flip_back(self, flipped_output: torch.Tensor, flip_pairs: Sequence[Sequence[int]]) -> torch.Tensor:
        return flip_back(flipped_output, flip_pairs)

    def loss(self, output: torch.Tensor, *targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        target, weight = targets
        return joints_mse_loss(output.float(), target, weight, reduction)
