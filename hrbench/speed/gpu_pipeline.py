"""The training crop warp and the heatmap targets on the accelerator, vectorised over the batch.

The CPU pipeline (:class:`hrbench.data.TopDownDataset`) decodes, draws the augmentation, warps the
crop with Pillow and draws the Gaussian targets with numpy, per sample, in loader workers. Here the
workers only decode and draw the augmentation (:class:`RawTopDownDataset`, the same random draws
through the same :func:`~hrbench.data.transforms.topdown_crop`), and the batch is warped and turned
into targets on the training device (:func:`warp_crops`, :func:`heatmap_targets`,
:class:`DeviceTopDown`) with ``torch.nn.functional.grid_sample`` (bilinear) and broadcasting.

Agreement with the CPU pipeline (tested on CPU):

* crops: Pillow's bilinear affine warp is reproduced exactly up to float rounding: a sample point
  outside the source image (half-pixel frame ``[0, W) x [0, H)``) gives 0, one inside is the
  bilinear interpolation with edge pixels repeated. Batches are padded at the right/bottom by
  repeating the edge (:func:`pad_images`), ``grid_sample`` uses ``padding_mode="border"`` and an
  in-image mask zeroes the rest; the result is truncated to uint8 levels as Pillow's output is,
  then ImageNet-normalised exactly as :func:`~hrbench.data.transforms.to_tensor`. Crops agree
  within one grey level; for rotated crops all but ~0.1 % of the values are identical. Where
  sample points fall exactly on pixel centres (axis-aligned crops at simple scales) Pillow's own
  double arithmetic often lands a hair below the pixel value and truncates one level down, so
  there up to ~15 % of the values are one level apart;
* targets: the same formula as :func:`~hrbench.data.targets.gaussian_targets`, in float64, so the
  heatmaps and weights agree to float32 rounding.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from hrbench.data.base import TopDownDataset, collate_meta, load_image, sample_meta
from hrbench.data.targets import HEATMAP_STRIDE, heatmap_size
from hrbench.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    affine_matrix,
    compose,
    horizontal_flip_matrix,
    topdown_crop,
)
from hrbench.errors import DataError


class _ImageSize:
    """Stands in for the Pillow image in :func:`topdown_crop`: it has the size (for the flip) and a
    ``transform`` that does nothing, so the augmentation is drawn but no pixel is resampled."""

    def __init__(self, width: int, height: int) -> None:
        self.width = width
        self.height = height

    def transform(self, *args: Any, **kwargs: Any) -> None:
        return None


def crop_matrix(center, scale, rotation: float, flipped: bool, image_width: int,
                input_hw: tuple[int, int]) -> np.ndarray:
    """The 2x3 image -> crop matrix the CPU pipeline warps with (the mirror folded in first)."""
    m = affine_matrix(center, scale, rotation, (input_hw[1], input_hw[0]))
    return compose(m, horizontal_flip_matrix(image_width)) if flipped else m


class RawTopDownDataset(Dataset):
    """A :class:`TopDownDataset` whose samples stop before the warp: the decoded uint8 image
    (H, W, 3), the crop matrix (2, 3, float64), the joints already in crop pixels (K, 2), their
    visibility (K,) and the usual ``meta``. Same records, same random draws (``reseed`` and the
    per-process generator are the wrapped dataset's). Batch with :func:`collate_raw` (also
    ``.collate``, which the trainer picks up), then :class:`DeviceTopDown` on the device."""

    def __init__(self, base: TopDownDataset) -> None:
        if not isinstance(base, TopDownDataset):
            raise DataError(f"the device-side pipeline needs a top-down dataset, got {type(base).__name__}")
        self.base = base
        self.input_hw = base.input_hw
        self.num_keypoints = base.num_keypoints
        self.flip_pairs = base.flip_pairs
        self.name = base.name
        self.train = base.train
        self.sigma = base.aug.sigma

    def __len__(self) -> int:
        return len(self.base)

    def reseed(self, seed: int) -> None:
        self.base.reseed(seed)

    def __getitem__(self, idx: int) -> dict:
        base = self.base
        r = base.records[idx]
        image = load_image(r["image_file"])
        joints = r["joints"]
        crop = topdown_crop(_ImageSize(image.width, image.height), joints[:, :2], joints[:, 2], r["center"],
                            r["scale"], base.input_hw, train=base.train, flip_pairs=base.spec.flip_pairs,
                            upper_ids=base.spec.upper_body_ids, aug=base.aug,
                            rng=base._generator() if base.train else None)
        matrix = crop_matrix(crop.center, crop.scale, crop.rotation, crop.flipped, image.width, base.input_hw)
        meta = sample_meta(r, crop, base.flip_pairs)
        return {"raw": np.asarray(image, dtype=np.uint8), "matrix": matrix, "joints": crop.joints,
                "vis": crop.vis, "meta": meta}

    @staticmethod
    def collate(batch: list[dict]) -> dict:
        return collate_raw(batch)


def pad_images(images: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (H_i, W_i, 3) images -> one uint8 (B, H, W, 3) tensor (H, W = the largest), each
    padded at the right and bottom by repeating its last column/row, and the (B, 2) sizes (H_i, W_i)."""
    h = max(im.shape[0] for im in images)
    w = max(im.shape[1] for im in images)
    out = np.empty((len(images), h, w, 3), dtype=np.uint8)
    sizes = np.empty((len(images), 2), dtype=np.int64)
    for i, im in enumerate(images):
        hi, wi = im.shape[:2]
        out[i, :hi, :wi] = im
        out[i, :hi, wi:] = im[:, -1:]
        out[i, hi:] = out[i, hi - 1:hi]
        sizes[i] = (hi, wi)
    return torch.from_numpy(out), torch.from_numpy(sizes)


def collate_raw(batch: list[dict]) -> dict:
    """Batch :class:`RawTopDownDataset` samples: ``raw`` (B, H, W, 3) uint8 (edge-padded),
    ``sizes`` (B, 2), ``matrix`` (B, 2, 3) float64, ``joints`` (B, K, 2), ``vis`` (B, K), ``meta``
    as :func:`hrbench.data.collate` has it."""
    raw, sizes = pad_images([b["raw"] for b in batch])
    meta = collate_meta(batch)
    return {"raw": raw, "sizes": sizes,
            "matrix": torch.from_numpy(np.stack([b["matrix"] for b in batch]).astype(np.float64)),
            "joints": torch.from_numpy(np.stack([b["joints"] for b in batch]).astype(np.float32)),
            "vis": torch.from_numpy(np.stack([b["vis"] for b in batch]).astype(np.float32)),
            "meta": meta}


def _inverse_matrices(matrix: torch.Tensor) -> torch.Tensor:
    """(B, 2, 3) forward matrices -> (B, 2, 3) crop -> image matrices (float64)."""
    m = matrix.to(torch.float64)
    a_inv = torch.linalg.inv(m[:, :, :2])
    return torch.cat([a_inv, -(a_inv @ m[:, :, 2:])], dim=2)


def warp_crops(raw: torch.Tensor, matrix: torch.Tensor, input_hw: tuple[int, int],
               sizes: torch.Tensor | None = None, *, quantize: bool = True, normalize: bool = True) -> torch.Tensor:
    """The crops (B, 3, h, w) of ``raw`` (B, H, W, 3) uint8 under the image -> crop ``matrix``
    (B, 2, 3), bilinear, zero outside each image (its own ``sizes`` (B, 2) = (H_i, W_i), default
    the full H, W; beyond it the batch must be edge-padded as :func:`pad_images` does).

    ``quantize`` truncates to uint8 levels as Pillow's bilinear warp does; ``normalize`` applies the ImageNet
    mean/std (float32, as the CPU pipeline), else the result is in 0..255.
    """
    if raw.dim() != 4 or raw.shape[-1] != 3:
        raise DataError(f"expected raw images as (B, H, W, 3), got {tuple(raw.shape)}")
    b, hp, wp, _ = raw.shape
    h, w = input_hw
    dev = raw.device
    inv = _inverse_matrices(matrix.to(dev))
    if sizes is None:
        sizes = torch.tensor([[hp, wp]], device=dev).expand(b, 2)
    sizes = sizes.to(dev, torch.float64)
    # source position (OpenCV convention: pixel centres on integers) of every crop pixel, in float64
    u = torch.arange(w, device=dev, dtype=torch.float64)
    v = torch.arange(h, device=dev, dtype=torch.float64)
    sx = inv[:, 0, 0, None, None] * u[None, None, :] + inv[:, 0, 1, None, None] * v[None, :, None] + inv[:, 0, 2,
                                                                                                         None, None]
    sy = inv[:, 1, 0, None, None] * u[None, None, :] + inv[:, 1, 1, None, None] * v[None, :, None] + inv[:, 1, 2,
                                                                                                         None, None]
    inside = (sx >= -0.5) & (sx < sizes[:, 1, None, None] - 0.5) & (sy >= -0.5) & (sy < sizes[:, 0, None, None] - 0.5)
    grid = torch.stack(((2 * sx + 1) / wp - 1, (2 * sy + 1) / hp - 1), dim=-1).to(torch.float32)
    src = raw.permute(0, 3, 1, 2).to(torch.float32)
    out = F.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=False)
    out = out * inside[:, None].to(out.dtype)
    if quantize:  # Pillow truncates its double-precision result; 1e-3 absorbs float32 interpolation error
        out = torch.floor(out + 1e-3).clamp_(0, 255)
    if normalize:
        mul = torch.from_numpy(1.0 / (255.0 * IMAGENET_STD)).to(dev).view(1, 3, 1, 1)
        sub = torch.from_numpy(IMAGENET_MEAN / IMAGENET_STD).to(dev).view(1, 3, 1, 1)
        out = out.mul_(mul).sub_(sub)
    return out


def heatmap_targets(joints: torch.Tensor, vis: torch.Tensor, input_hw: tuple[int, int], sigma: float = 2.0,
                    stride: int = HEATMAP_STRIDE) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched :func:`~hrbench.data.targets.gaussian_targets`: joints (B, K, 2) in crop pixels and
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


class DeviceTopDown:
    """Turns a :func:`collate_raw` batch into the CPU pipeline's batch on ``device``:
    ``{"image": (B, 3, h, w), "target": (B, K, h/4, w/4), "target_weight": (B, K, 1), "meta": ...}``.

    ``channels_last`` returns the images in NHWC memory format (for a channels-last model)."""

    def __init__(self, input_hw: tuple[int, int], device: torch.device | str = "cpu", sigma: float = 2.0,
                 channels_last: bool = False) -> None:
        self.input_hw = (int(input_hw[0]), int(input_hw[1]))
        self.device = torch.device(device)
        self.sigma = float(sigma)
        self.channels_last = channels_last

    def __call__(self, batch: dict) -> dict:
        nb = self.device.type == "cuda"
        raw = batch["raw"].to(self.device, non_blocking=nb)
        image = warp_crops(raw, batch["matrix"], self.input_hw, batch.get("sizes"))
        if self.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        target, weight = heatmap_targets(batch["joints"].to(self.device, non_blocking=nb),
                                         batch["vis"].to(self.device, non_blocking=nb), self.input_hw, self.sigma)
        return {"image": image, "target": target, "target_weight": weight, "meta": batch.get("meta", {})}
