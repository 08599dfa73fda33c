"""CPN's heatmaps (Chen et al., CVPR 2018, Sec. 3.4), as the official tf-cpn
``models/COCO.res50.256x192.CPN/{dataset,network,mptest}.py`` make, supervise and read them.

* Targets (``joints_heatmap_gen``): per keypoint a one at heatmap pixel (floor(y / 4), floor(x / 4))
  (the joint clipped to the crop's last pixel), blurred with OpenCV's ``GaussianBlur(k x k, sigma 0)``
  (reflect-101 border; kernel 7 is OpenCV's fixed small-kernel table, 9 / 11 / 15 the Gaussian of
  sigma 0.3((k-1)/2 - 1) + 0.8, as the OpenCV 3 of 2018 tf-cpn ran; OpenCV >= 4 tabulates 9 taps too),
  then scaled to a peak of **255**; one map set per kernel 15, 11, 9, 7. hrbench's maps are those in units
  of the peak (the official maps / 255, peak 1), so the network's output is the official one / 255 and
  compares with every other head's (scores, flip test, the export's parity bar); the loss is the official
  loss of 255 x output, i.e. x 255^2 here: its values and gradients are the official ones.
  The weight is 1 for a labelled joint inside the crop (the official ``valids``), else 0 and an all-zero map.
* Loss (``make_network``): GlobalNet's four outputs (C2..C5) against the 15 / 11 / 9 / 7 targets in the
  released pairing (C2 with 15; the code keeps the "reversed" labels of the published model), each the
  mean squared error over every map, averaged and halved; RefineNet's output against the kernel-7
  targets, per keypoint the mean squared error times its weight, **online hard keypoint mining**:
  the mean of each sample's ``ohkm_top`` (8) largest keypoint losses. Total = global + refine.
  An eval-mode output (the RefineNet heatmaps alone) gets the refine term: the validation loss.
* Decoding (``mptest.py``): per map a 21x21 Gaussian blur on the map zero-padded by 10, the argmax,
  then 0.25 px towards the second-highest pixel, clipped to the map; the official input position
  ``4x + 2`` is heatmap coordinate x + 0.5 in hrbench's frame. Scores: the map's value at the rounded
  position (the official value / 255; the official adds 0.5, which would pass every joint through the
  evaluators' 0.2 keypoint threshold; hrbench keeps the [0, 1] scale they assume).
* Flip test: mirror back, swap left/right, **no shift**, average.

Deviation: tf-cpn masks GlobalNet's targets with visibility 2 and RefineNet's with visibility >= 1;
hrbench's data pipeline keeps visibility as labelled / not (mmpose's 0/1), so both use the one weight.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any, ClassVar

import cv2
import numpy as np
import torch

from hrbench.codecs.base import Codec, Decoded, register_codec
from hrbench.codecs.heatmap import HEATMAP_STRIDE, argmax_heatmaps, flip_back, heatmap_size

#: GlobalNet's target kernels, C2..C5 (tf-cpn config ``gk15``..``gk7``); RefineNet takes the last.
KERNELS = (15, 11, 9, 7)
#: The official targets' peak: hrbench's maps are in its units, the loss is scaled by its square.
PEAK = 255.0
LOSS_SCALE = PEAK ** 2

#: OpenCV 3's fixed kernels for odd sizes <= 7 with sigma <= 0 (``getGaussianKernel``'s small table).
_SMALL = {1: (1.0,), 3: (0.25, 0.5, 0.25), 5: (0.0625, 0.25, 0.375, 0.25, 0.0625),
          7: (0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125)}


def gaussian_kernel_1d(k: int) -> np.ndarray:
    """OpenCV 3's ``getGaussianKernel(k, 0)`` in float64: the small table up to 7, else the sampled Gaussian."""
    if k in _SMALL:
        return np.array(_SMALL[k], dtype=np.float64)
    sigma = 0.3 * ((k - 1) * 0.5 - 1) + 0.8
    g = np.exp(-((np.arange(k) - (k - 1) / 2) ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def _reflect101(i: int, n: int) -> int:
    while not 0 <= i < n:
        i = -i if i < 0 else 2 * n - 2 - i
    return i


@functools.cache
def blur_matrix(n: int, k: int) -> np.ndarray:
    """(n, n) matrix B with B[i, p] = the k-tap blur's response at i to a one at p (reflect-101 border)."""
    g, r = gaussian_kernel_1d(k), k // 2
    b = np.zeros((n, n))
    for i in range(n):
        for j in range(k):
            b[i, _reflect101(i + j - r, n) if n > 1 else 0] += g[j]
    return b


def _peaks_and_weight(joints, vis, input_hw, stride, xp):
    """Peak pixels (K, 2) as x, y and weights (K,) in the array library ``xp`` (numpy or torch)."""
    h_in, w_in = input_hw
    h, w = heatmap_size(input_hw, stride)
    x, y = joints[..., 0], joints[..., 1]
    inside = (x >= 0) & (x < w_in) & (y >= 0) & (y < h_in)
    weight = (vis > 0) & inside
    px = xp.floor(xp.clip(x, 0, w_in - 1) * w / w_in)
    py = xp.floor(xp.clip(y, 0, h_in - 1) * h / h_in)
    return px, py, weight


def cpn_targets(joints: np.ndarray, vis: np.ndarray, input_hw: tuple[int, int], kernel: int,
                stride: int = HEATMAP_STRIDE) -> tuple[np.ndarray, np.ndarray]:
    """tf-cpn targets of one sample in units of their 255 peak: heatmaps (K, H/4, W/4) float32 peaking at 1
    and weights (K, 1)."""
    h, w = heatmap_size(input_hw, stride)
    joints = np.asarray(joints, dtype=np.float64)
    px, py, weight = _peaks_and_weight(joints, np.asarray(vis).reshape(-1), input_hw, stride, np)
    bx, by = blur_matrix(w, kernel), blur_matrix(h, kernel)
    gx = bx[:, px.astype(int)].T  # (K, w): response along x to a one at px
    gy = by[:, py.astype(int)].T
    peak = gx.max(axis=1) * gy.max(axis=1)
    target = gy[:, :, None] * gx[:, None, :] * (weight / peak)[:, None, None]
    return target.astype(np.float32), weight.astype(np.float32)[:, None]


def cpn_targets_batch(joints: torch.Tensor, vis: torch.Tensor, input_hw: tuple[int, int], kernel: int,
                      stride: int = HEATMAP_STRIDE) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched :func:`cpn_targets` on the tensors' device (float64 inside): (B, K, 2), (B, K) ->
    heatmaps (B, K, H/4, W/4) and weights (B, K, 1), float32."""
    h, w = heatmap_size(input_hw, stride)
    dev = joints.device
    px, py, weight = _peaks_and_weight(joints.to(torch.float64), vis.reshape(joints.shape[:2]), input_hw, stride,
                                       torch)
    bx = torch.as_tensor(blur_matrix(w, kernel), device=dev)
    by = torch.as_tensor(blur_matrix(h, kernel), device=dev)
    gx = bx.T[px.long()]  # (B, K, w)
    gy = by.T[py.long()]
    peak = gx.amax(-1) * gy.amax(-1)
    target = gy[..., :, None] * gx[..., None, :] * (weight.to(torch.float64) / peak)[..., None, None]
    return target.to(torch.float32), weight.to(torch.float32)[..., None]


def ohkm(per_keypoint: torch.Tensor, top_k: int) -> torch.Tensor:
    """Online hard keypoint mining: per sample the mean of its ``top_k`` largest keypoint losses (B, K) -> (B,)."""
    return per_keypoint.topk(min(top_k, per_keypoint.shape[1]), dim=1).values.mean(dim=1)


def cpn_peaks(hm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """tf-cpn's decoding of (N, K, H, W) heatmaps: coordinates (N, K, 2) in heatmap pixels (+ 0.5: the
    cell centre) and scores (N, K, 1) = the value at the rounded position. Scaling a map by its
    maximum, as the official code does first, moves no peak and is left out."""
    n, k, h, w = hm.shape
    border = 10
    coords = np.zeros((n, k, 2), dtype=np.float32)
    scores = np.zeros((n, k, 1), dtype=np.float32)
    for i in range(n):
        for j in range(k):
            pad = np.zeros((h + 2 * border, w + 2 * border), dtype=np.float64)
            pad[border:-border, border:-border] = hm[i, j]
            pad = cv2.GaussianBlur(pad, (21, 21), 0)
            y, x = np.unravel_index(pad.argmax(), pad.shape)
            pad[y, x] = 0
            sy, sx = np.unravel_index(pad.argmax(), pad.shape)
            dy, dx = float(sy - y), float(sx - x)
            fx, fy = float(x - border), float(y - border)
            ln = (dx * dx + dy * dy) ** 0.5
            if ln > 1e-3:
                fx, fy = fx + 0.25 * dx / ln, fy + 0.25 * dy / ln
            fx, fy = min(max(fx, 0.0), w - 1.0), min(max(fy, 0.0), h - 1.0)
            coords[i, j] = (fx + 0.5, fy + 0.5)
            scores[i, j, 0] = hm[i, j, int(round(fy) + 1e-10), int(round(fx) + 1e-10)]
    return coords, scores


@register_codec("cpn")
@dataclasses.dataclass(frozen=True)
class CPNHeatmap(Codec):
    """tf-cpn's multi-kernel targets (in units of the 255 peak), global L2 + refine OHKM loss (x 255^2),
    decoding and flip test."""

    stride: int = HEATMAP_STRIDE
    ohkm_top: int = 8

    target_keys: ClassVar[tuple[str, ...]] = (*(f"target_k{k}" for k in KERNELS), "target_weight")
    post_processes = ("default", "none")

    def encode(self, joints: np.ndarray, vis: np.ndarray, input_hw: tuple[int, int]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for k in KERNELS:
            out[f"target_k{k}"], weight = cpn_targets(joints, vis, input_hw, k, self.stride)
        return {**out, "target_weight": weight}

    def encode_batch(self, joints: torch.Tensor, vis: torch.Tensor,
                     input_hw: tuple[int, int]) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for k in KERNELS:
            out[f"target_k{k}"], weight = cpn_targets_batch(joints, vis, input_hw, k, self.stride)
        return {**out, "target_weight": weight}

    def decode(self, output: Any, post_process: str = "default") -> Decoded:
        """Peaks of the RefineNet heatmaps (N, K, H, W) in heatmap pixels, frame (W, H)."""
        self.check_post_process(post_process)
        hm = output.detach().float().cpu().numpy() if isinstance(output, torch.Tensor) else output
        hm = np.asarray(hm, dtype=np.float32)
        if post_process == "default":
            coords, scores = cpn_peaks(hm)
        else:
            coords, scores = argmax_heatmaps(hm)
            coords = np.where(coords >= 0, coords + 0.5, coords)
        return Decoded(coords.astype(np.float32), scores.astype(np.float32), (hm.shape[3], hm.shape[2]))

    def flip_back(self, flipped_output: torch.Tensor, flip_pairs: Sequence[Sequence[int]]) -> torch.Tensor:
        return flip_back(flipped_output, flip_pairs)

    def refine_loss(self, refine: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """Per sample (B,): OHKM over the keypoints' weighted mean squared errors."""
        b, k = refine.shape[:2]
        per_kp = (refine.float() - target.float()).pow(2).reshape(b, k, -1).mean(-1) * weight.reshape(b, k).float()
        return ohkm(per_kp, self.ohkm_top)

    def loss(self, output: Any, *targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """Training output ``(refine, g2, g3, g4, g5)``: global + refine; an eval output (refine only): refine;
        x 255^2 (the official loss of the official-scale output)."""
        *global_targets, weight = targets
        refine = output if isinstance(output, torch.Tensor) else output[0]
        per_sample = self.refine_loss(refine, global_targets[-1], weight)
        if not isinstance(output, torch.Tensor):
            b, k = refine.shape[:2]
            mask = weight.reshape(b, k, 1, 1).float()
            per_level = [(g.float() - t.float() * mask).pow(2).mean(dim=(1, 2, 3))
                         for g, t in zip(output[1:], global_targets, strict=True)]
            per_sample = per_sample + torch.stack(per_level).mean(0) / 2
        per_sample = per_sample * LOSS_SCALE
        return per_sample if reduction == "none" else per_sample.mean()
