"""Datasets (COCO / MPII in their real annotation formats), augmentation, targets, synthetic data.

Entry point: :func:`build_dataset` (any dataset registered in :mod:`hrbench.datasets`, read by the
builder its annotation style registered: :mod:`hrbench.data.coco` and :mod:`hrbench.data.mpii`
register theirs when imported); batch with :func:`collate`. :mod:`hrbench.data.synth` is the
synthetic generator (``hrbench data synth``).
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from hrbench.data.base import TopDownDataset, collate, load_image, verify_images
from hrbench.data.coco import CocoPoseDataset
from hrbench.data.mpii import MpiiPoseDataset
from hrbench.datasets import get_builder, get_dataset


def build_dataset(dataset: str, root: str | Path, split: str, input_hw=(256, 192), train: bool = False,
                  det_file: str | Path | None = None, det_score_thr: float = 0.0) -> Dataset:
    """A top-down dataset of the registered ``dataset`` ("coco" | "mpii" | ...) under ``root`` for ``split``.

    ``train`` turns on the papers' augmentation. COCO-style only: ``det_file`` (a detection-results
    json, absolute or relative to ``root``) replaces the ground-truth boxes, keeping person detections
    with ``score >= det_score_thr``. Attributes: ``name``, ``spec``, ``num_keypoints``, ``flip_pairs``,
    ``input_hw``, ``box_source`` ("gt" | "detections"). An unregistered name: one-line error listing
    the registered ones.
    """
    spec = get_dataset(dataset)
    input_hw = (int(input_hw[0]), int(input_hw[1]))
    return get_builder(spec)(spec, root, split, input_hw, train, det_file=det_file, det_score_thr=det_score_thr)


__all__ = ["build_dataset", "collate", "TopDownDataset", "CocoPoseDataset", "MpiiPoseDataset", "load_image",
           "verify_images"]
