"""Datasets (COCO / MPII in their real annotation formats), augmentation, targets, synthetic data.

Entry point: :func:`build_dataset`; batch with :func:`collate`. See :mod:`hrbench.data.coco` and
:mod:`hrbench.data.mpii` for the expected directory layouts, :mod:`hrbench.data.synth` for the
synthetic generator (``hrbench data synth``).
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from hrbench.data.base import KeypointSpec, TopDownDataset, collate, load_image, verify_images
from hrbench.data.coco import COCO_SPEC, CocoPoseDataset
from hrbench.data.mpii import MPII_SPEC, MpiiPoseDataset
from hrbench.errors import DataError

DATASETS = ("coco", "mpii")


def build_dataset(dataset: str, root: str | Path, split: str, input_hw=(256, 192), train: bool = False,
                  det_file: str | Path | None = None, det_score_thr: float = 0.0) -> Dataset:
    """A top-down dataset of ``dataset`` ("coco" | "mpii") under ``root`` for ``split``.

    ``train`` turns on the papers' augmentation. COCO only: ``det_file`` (a detection-results json,
    absolute or relative to ``root``) replaces the ground-truth boxes, keeping person detections with
    ``score >= det_score_thr``. Attributes: ``name``, ``num_keypoints``, ``flip_pairs``, ``input_hw``,
    ``box_source`` ("gt" | "detections").
    """
    input_hw = (int(input_hw[0]), int(input_hw[1]))
    if dataset == "coco":
        return CocoPoseDataset(root, split, input_hw, train, det_file=det_file, det_score_thr=det_score_thr)
    if dataset == "mpii":
        if det_file is not None:
            raise DataError("MPII is evaluated on its annotated person boxes; det_file applies to COCO only")
        return MpiiPoseDataset(root, split, input_hw, train)
    raise DataError(f"unknown dataset {dataset!r}: expected one of {', '.join(DATASETS)}")


__all__ = ["build_dataset", "collate", "DATASETS", "KeypointSpec", "TopDownDataset", "CocoPoseDataset",
           "MpiiPoseDataset", "COCO_SPEC", "MPII_SPEC", "load_image", "verify_images"]
