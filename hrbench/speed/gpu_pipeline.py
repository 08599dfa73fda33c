"""The training crop warp and the heatmap targets on the accelerator, vectorised over the batch.

The CPU pipeline (:class:`hrbench.data.TopDownDataset`) decodes, draws the augmentation, warps the
crop with ``cv2.warpAffine`` and draws the Gaussian targets with numpy, per sample, in loader
workers. Here the workers only decode and draw the augmentation
(:class:`hrbench.data.raw.RawTopDownDataset`, the same random draws through the same
:func:`~hrbench.data.transforms.crop_params`), and the batch is warped and turned into targets on
the training device (:func:`warp_crops`, the codec's ``encode_batch`` -- for the MSRA heatmaps
:func:`~hrbench.codecs.heatmap.heatmap_targets` --, :class:`DeviceTopDown`) with a gathered
bilinear interpolation and broadcasting.

Agreement with the CPU pipeline (tested on CPU):

* crops: OpenCV's bilinear ``warpAffine`` with its constant-0 border (OpenCV >= 4.11 samples at
  float positions): every source pixel outside the image counts as 0, so a sample point within one
  pixel outside the image fades to black. Batches are padded at the right/bottom with zeros
  (:func:`hrbench.data.raw.pad_images`), neighbours beyond each image's own size read 0, and the
  result is rounded to the nearest uint8 level as OpenCV rounds, then ImageNet-normalised exactly as
  :func:`~hrbench.data.transforms.to_tensor`. Crops agree within one grey level (float rounding
  decides the level of values lying within ~1e-4 of a half level);
* targets: the codec's batched encoding; the MSRA heatmaps use the same formula as
  :func:`~hrbench.codecs.heatmap.gaussian_targets`, in float64, so heatmaps and weights agree to
  float32 rounding.
"""

from __future__ import annotations

import torch

from hrbench.codecs import Codec, MSRAHeatmap
from hrbench.codecs.heatmap import heatmap_targets
from hrbench.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from hrbench.errors import DataError

__all__ = ["DeviceTopDown", "heatmap_targets", "warp_crops"]


def _inverse_matrices(matrix: torch.Tensor) -> torch.Tensor:
    """(B, 2, 3) forward matrices -> (B, 2, 3) crop -> image matrices (float64), inverted as
    ``cv2.invertAffineTransform`` does (a singular matrix gives zeros: every pixel samples (0, 0))."""
    m = matrix.to(torch.float64)
    a, b, c, d = m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1]
    det = a * d - b * c
    inv_det = torch.where(det != 0, 1.0 / torch.where(det != 0, det, torch.ones_like(det)), torch.zeros_like(det))
    a_inv = torch.stack([torch.stack([d, -b], -1), torch.stack([-c, a], -1)], -2) * inv_det[:, None, None]
    return torch.cat([a_inv, -(a_inv @ m[:, :, 2:])], dim=2)


def warp_crops(raw: torch.Tensor, matrix: torch.Tensor, input_hw: tuple[int, int],
               sizes: torch.Tensor | None = None, *, quantize: bool = True, normalize: bool = True) -> torch.Tensor:
    """The crops (B, 3, h, w) of ``raw`` (B, H, W, 3) uint8 under the image -> crop ``matrix``
    (B, 2, 3), as ``cv2.warpAffine(..., flags=cv2.INTER_LINEAR)``: bilinear, source pixels outside each
    image (its own ``sizes`` (B, 2) = (H_i, W_i), default the full H, W) count as 0; beyond its
    size each image must be zero-padded as :func:`~hrbench.data.raw.pad_images` does.

    ``quantize`` rounds to uint8 levels as OpenCV does; ``normalize`` applies the ImageNet mean/std
    (float32, as the CPU pipeline), else the result is in 0..255.
    """
    if raw.dim() != 4 or raw.shape[-1] != 3:
        raise DataError(f"expected raw images as (B, H, W, 3), got {tuple(raw.shape)}")
    b, hp, wp, _ = raw.shape
    h, w = input_hw
    dev = raw.device
    inv = _inverse_matrices(matrix.to(dev))
    if sizes is not None:
        sizes = sizes.to(dev)
        if bool(((sizes[:, 0] < hp) | (sizes[:, 1] < wp)).any()):
            # a neighbour beyond an image's own size must read 0 even where the batch holds another
            # image's content: zero the padding (pad_images already has; raw may come from elsewhere)
            rows = torch.arange(hp, device=dev)[None, :, None] < sizes[:, 0, None, None]
            cols = torch.arange(wp, device=dev)[None, None, :] < sizes[:, 1, None, None]
            raw = raw * (rows & cols)[..., None].to(raw.dtype)
    # source position of every crop pixel (pixel centres on integers), from the float64 inverse cast
    # to float32 as OpenCV does, so positions OpenCV finds exactly on a half pixel are found here too
    inv32 = inv.to(torch.float32)
    u = torch.arange(w, device=dev, dtype=torch.float32)[None, None, :]
    v = torch.arange(h, device=dev, dtype=torch.float32)[None, :, None]
    sx = inv32[:, 0, 0, None, None] * u + (inv32[:, 0, 1, None, None] * v + inv32[:, 0, 2, None, None])
    sy = inv32[:, 1, 0, None, None] * u + (inv32[:, 1, 1, None, None] * v + inv32[:, 1, 2, None, None])
    out = _bilinear_zero_border(raw, sx, sy).permute(0, 3, 1, 2)
    if quantize:  # OpenCV rounds to the nearest level (half to even)
        out = torch.round(out).clamp_(0, 255)
    if normalize:
        mul = torch.from_numpy(1.0 / (255.0 * IMAGENET_STD)).to(dev).view(1, 3, 1, 1)
        sub = torch.from_numpy(IMAGENET_MEAN / IMAGENET_STD).to(dev).view(1, 3, 1, 1)
        out = out.mul_(mul).sub_(sub)
    return out


def _bilinear_zero_border(raw: torch.Tensor, sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    """Bilinear samples (B, h, w, 3) float32 of ``raw`` (B, H, W, 3) at float32 positions (B, h, w);
    neighbours outside the H x W grid count as 0."""
    b, hp, wp, _ = raw.shape
    x0f, y0f = torch.floor(sx), torch.floor(sy)
    ax, ay = sx - x0f, sy - y0f  # exact in float32
    x0, y0 = x0f.to(torch.int64), y0f.to(torch.int64)
    flat = raw.reshape(b, hp * wp, 3).to(torch.float32)
    out = torch.zeros((*sx.shape, 3), dtype=torch.float32, device=raw.device)
    for dy, wy in ((0, 1 - ay), (1, ay)):
        for dx, wx in ((0, 1 - ax), (1, ax)):
            xi, yi = x0 + dx, y0 + dy
            ok = (xi >= 0) & (xi < wp) & (yi >= 0) & (yi < hp)
            idx = torch.where(ok, yi * wp + xi, torch.zeros_like(xi)).reshape(b, -1, 1).expand(-1, -1, 3)
            px = torch.gather(flat, 1, idx).reshape(out.shape)
            out += px * (wx * wy * ok.to(torch.float32))[..., None]
    return out


class DeviceTopDown:
    """Turns a :func:`~hrbench.data.raw.collate_raw` batch into the CPU pipeline's batch on ``device``:
    ``{"image": (B, 3, h, w), **codec targets, "meta": ...}``, the targets from ``codec.encode_batch``
    (default MSRA heatmaps: ``target`` (B, K, h/4, w/4), ``target_weight`` (B, K, 1)).

    ``channels_last`` returns the images in NHWC memory format (for a channels-last model)."""

    def __init__(self, input_hw: tuple[int, int], device: torch.device | str = "cpu", codec: Codec | None = None,
                 channels_last: bool = False) -> None:
        self.input_hw = (int(input_hw[0]), int(input_hw[1]))
        self.device = torch.device(device)
        self.codec = codec if codec is not None else MSRAHeatmap()
        self.channels_last = channels_last

    def __call__(self, batch: dict) -> dict:
        nb = self.device.type == "cuda"
        raw = batch["raw"].to(self.device, non_blocking=nb)
        image = warp_crops(raw, batch["matrix"], self.input_hw, batch.get("sizes"))
        if self.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        targets = self.codec.encode_batch(batch["joints"].to(self.device, non_blocking=nb),
                                          batch["vis"].to(self.device, non_blocking=nb), self.input_hw)
        return {"image": image, **targets, "meta": batch.get("meta", {})}
