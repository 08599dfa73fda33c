"""Samples that stop before the crop warp, for the device-side pipeline (``hrbench train --gpu-aug``).

Loader workers decode the image and draw the augmentation exactly as :class:`~hrbench.data.TopDownDataset`
does (the same :func:`~hrbench.data.transforms.crop_params`, the same random draws); the batch is
zero-padded to one size (:func:`pad_images`, OpenCV's constant border) and warped and turned into
targets on the training device by :class:`hrbench.speed.gpu_pipeline.DeviceTopDown`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from hrbench.data.base import TopDownDataset, collate_meta, load_image, sample_meta
from hrbench.data.transforms import crop_params
from hrbench.errors import DataError


class RawTopDownDataset(Dataset):
    """A :class:`TopDownDataset` whose samples stop before the warp: the decoded uint8 image
    (H, W, 3), the crop matrix (2, 3, float64), the joints already in crop pixels (K, 2), their
    visibility (K,) and the usual ``meta``. Same records, same random draws (``reseed`` and the
    per-process generator are the wrapped dataset's). Batch with :func:`collate_raw` (also
    ``.collate``, which the trainer picks up), then :class:`~hrbench.speed.gpu_pipeline.DeviceTopDown` on the device."""

    def __init__(self, base: TopDownDataset) -> None:
        if not isinstance(base, TopDownDataset):
            raise DataError(f"the device-side pipeline needs a top-down dataset, got {type(base).__name__}")
        self.base = base
        self.input_hw = base.input_hw
        self.num_keypoints = base.num_keypoints
        self.flip_pairs = base.flip_pairs
        self.name = base.name
        self.train = base.train
        self.codec = base.codec

    def __len__(self) -> int:
        return len(self.base)

    def reseed(self, seed: int) -> None:
        self.base.reseed(seed)

    def __getitem__(self, idx: int) -> dict:
        base = self.base
        r = base.records[idx]
        image = load_image(r["image_file"])
        joints = r["joints"]
        crop = crop_params(image.shape[1], joints[:, :2], joints[:, 2], r["center"], r["scale"], base.input_hw,
                           train=base.train, flip_pairs=base.spec.flip_pairs, upper_ids=base.spec.upper_body_ids,
                           aug=base.aug, rng=base._generator() if base.train else None,
                           affine=base.codec.affine, box=r.get("bbox"), image_height=image.shape[0])
        meta = sample_meta(r, crop, base.flip_pairs)
        return {"raw": image, "matrix": crop.matrix, "joints": crop.joints, "vis": crop.vis, "meta": meta}

    @staticmethod
    def collate(batch: list[dict]) -> dict:
        return collate_raw(batch)


def pad_images(images: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (H_i, W_i, 3) images -> one uint8 (B, H, W, 3) tensor (H, W = the largest), each
    padded at the right and bottom with zeros (OpenCV's constant border), and the (B, 2) sizes (H_i, W_i)."""
    h = max(im.shape[0] for im in images)
    w = max(im.shape[1] for im in images)
    out = np.zeros((len(images), h, w, 3), dtype=np.uint8)
    sizes = np.empty((len(images), 2), dtype=np.int64)
    for i, im in enumerate(images):
        hi, wi = im.shape[:2]
        out[i, :hi, :wi] = im
        sizes[i] = (hi, wi)
    return torch.from_numpy(out), torch.from_numpy(sizes)


def collate_raw(batch: list[dict]) -> dict:
    """Batch :class:`RawTopDownDataset` samples: ``raw`` (B, H, W, 3) uint8 (zero-padded),
    ``sizes`` (B, 2), ``matrix`` (B, 2, 3) float64, ``joints`` (B, K, 2), ``vis`` (B, K), ``meta``
    as :func:`hrbench.data.collate` has it."""
    raw, sizes = pad_images([b["raw"] for b in batch])
    meta = collate_meta(batch)
    return {"raw": raw, "sizes": sizes,
            "matrix": torch.from_numpy(np.stack([b["matrix"] for b in batch]).astype(np.float64)),
            "joints": torch.from_numpy(np.stack([b["joints"] for b in batch]).astype(np.float32)),
            "vis": torch.from_numpy(np.stack([b["vis"] for b in batch]).astype(np.float32)),
            "meta": meta}
