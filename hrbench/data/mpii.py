"""MPII human pose (16 joints), top-down from the annotated person centre/scale.

Layout under ``root`` (``hrbench data synth --dataset mpii`` writes exactly this)::

    annotations/mpii_{split}.json    # the widely used json: [{image, center, scale, joints, joints_vis}]
                                     # center/joints in MATLAB 1-based pixels, scale = person height / 200
    annotations/mpii_gt_{split}.json # PCKh ground truth, the content of mpii_gt_val.mat, person-major:
                                     # {"dataset_joints": [16 names], "jnt_missing": N x 16 (0/1),
                                     #  "pos_gt_src": N x 16 x 2 (1-based), "headboxes_src": N x 2 x 2
                                     #  ([[x1, y1], [x2, y2]])}; mpii_gt_{split}.mat is read too (scipy)
    images/<image>
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hrbench.data.base import TopDownDataset, check_images_exist, check_numbers, is_number, load_json
from hrbench.data.transforms import AugmentConfig
from hrbench.datasets import DatasetSpec, register_builder
from hrbench.datasets.mpii import MPII_SPEC
from hrbench.errors import DataError

#: The joint names of ``mpii_gt_val.mat`` ("dataset_joints"), in the same order.
MPII_GT_NAMES = ("rank", "rkne", "rhip", "lhip", "lkne", "lank", "pelv", "thor", "neck", "head", "rwri", "relb",
                 "rsho", "lsho", "lelb", "lwri")
#: The MPII configs of the papers use flip + scale/rotation but no half-body augmentation.
MPII_AUG = AugmentConfig(half_body_prob=0.0)


def validate_mpii(data, path: Path, num_joints: int = 16) -> None:
    """Schema check of an ``mpii_{split}.json`` list."""
    if not isinstance(data, list):
        raise DataError(f"{path}: wrong schema (expected a list of {{image, center, scale, joints, joints_vis}})")
    need = {"image", "center", "scale", "joints", "joints_vis"}
    for i, a in enumerate(data):
        if not isinstance(a, dict) or not need <= a.keys():
            missing = sorted(need - (a.keys() if isinstance(a, dict) else set()))
            raise DataError(f"{path}: wrong schema (entry {i} lacks {', '.join(missing)})")
        where = f"{path}: entry {i}"
        if not isinstance(a["image"], str):
            raise DataError(f"{where}.image must be a file name, got {a['image']!r:.40}")
        check_numbers(a["center"], 2, f"{where}.center", "[x, y] (2 numbers)")
        if not is_number(a["scale"], finite=True) or a["scale"] <= 0:
            # the person's height / 200: 0 or negative would crop a point or a mirrored region, NaN nothing
            raise DataError(f"{where}.scale must be a positive number, got {a['scale']!r:.40}")
        joints = a["joints"]
        if not isinstance(joints, list) or len(joints) != num_joints:
            raise DataError(f"{where}.joints must be {num_joints} [x, y] pairs, got {joints!r:.60}")
        for k, j in enumerate(joints):
            check_numbers(j, 2, f"{where}.joints[{k}]", "[x, y] (2 numbers)")
        check_numbers(a["joints_vis"], num_joints, f"{where}.joints_vis", f"{num_joints} numbers")


def load_mpii_gt(path: str | Path) -> dict:
    """PCKh ground truth in the ``.mat`` axis layout: ``jnt_missing`` (16, N), ``pos_gt_src``
    (16, 2, N), ``headboxes_src`` (2, 2, N), ``dataset_joints`` (16 names)."""
    path = Path(path)
    if path.suffix == ".mat":
        try:
            from scipy.io import loadmat
        except ImportError:
            raise DataError(f"{path}: reading .mat ground truth needs scipy; convert it to json") from None
        m = loadmat(str(path))
        names = [str(np.asarray(n).ravel()[0]) for n in np.asarray(m["dataset_joints"]).ravel()]
        return {"dataset_joints": names, "jnt_missing": np.asarray(m["jnt_missing"], dtype=np.float64),
                "pos_gt_src": np.asarray(m["pos_gt_src"], dtype=np.float64),
                "headboxes_src": np.asarray(m["headboxes_src"], dtype=np.float64)}
    g = load_json(path, "PCKh ground-truth file")
    need = ("dataset_joints", "jnt_missing", "pos_gt_src", "headboxes_src")
    if not isinstance(g, dict) or any(k not in g for k in need):
        raise DataError(f"{path}: wrong schema (needs {', '.join(need)})")
    try:
        missing = np.asarray(g["jnt_missing"], dtype=np.float64)
        pos = np.asarray(g["pos_gt_src"], dtype=np.float64)
        heads = np.asarray(g["headboxes_src"], dtype=np.float64)
    except (ValueError, TypeError):
        raise DataError(f"{path}: wrong schema (non-numeric or ragged arrays)") from None
    n = len(missing)
    if missing.shape != (n, 16) or pos.shape != (n, 16, 2) or heads.shape != (n, 2, 2) or n == 0:
        raise DataError(f"{path}: wrong schema (expected jnt_missing N x 16, pos_gt_src N x 16 x 2, "
                        f"headboxes_src N x 2 x 2 with N > 0)")
    return {"dataset_joints": list(g["dataset_joints"]), "jnt_missing": missing.T,
            "pos_gt_src": pos.transpose(1, 2, 0), "headboxes_src": heads.transpose(1, 2, 0)}


class MpiiPoseDataset(TopDownDataset):
    """MPII single-person crops from the annotated centre/scale (reference conventions: centre moved
    down by 15 * scale, scale x1.25, MATLAB 1-based coordinates converted to 0-based)."""

    def __init__(self, root: str | Path, split: str = "val", input_hw=(256, 256), train: bool = False,
                 aug: AugmentConfig | None = None, check_files: bool = True,
                 spec: DatasetSpec = MPII_SPEC) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: dataset root not found")
        self.split = split
        self.ann_file = self.root / "annotations" / f"mpii_{split}.json"
        self.image_dir = self.root / "images"
        self.gt_file = self.root / "annotations" / f"mpii_gt_{split}.json"
        if not self.gt_file.is_file() and self.gt_file.with_suffix(".mat").is_file():
            self.gt_file = self.gt_file.with_suffix(".mat")
        data = load_json(self.ann_file)
        validate_mpii(data, self.ann_file, spec.num_keypoints)
        records: list[dict] = []
        image_ids: dict[str, int] = {}
        for a in data:
            s = float(a["scale"])
            center = np.asarray(a["center"], dtype=np.float32).copy()
            scale = np.array([s, s], dtype=np.float32)
            if center[0] != -1:
                center[1] += 15 * scale[1]
                scale = scale * 1.25
            joints = np.zeros((spec.num_keypoints, 3), np.float32)
            joints[:, :2] = np.asarray(a["joints"], dtype=np.float32) - 1
            joints[:, 2] = np.asarray(a["joints_vis"], dtype=np.float32) > 0
            records.append({"image_file": str(self.image_dir / a["image"]),
                            "image_id": image_ids.setdefault(a["image"], len(image_ids)),
                            "center": center - 1, "scale": scale, "joints": joints, "score": 1.0,
                            "bbox_id": len(records)})
        if check_files:
            check_images_exist(records, self.ann_file)
        if aug is None and train:
            aug = MPII_AUG
        super().__init__(records, spec, input_hw, train, aug or MPII_AUG, source=str(self.ann_file))

    def load_gt(self) -> dict:
        """The PCKh ground truth for this split (see :func:`load_mpii_gt`); must match the json order."""
        if not self.gt_file.is_file():
            raise DataError(f"{self.gt_file}: PCKh ground-truth file not found")
        gt = load_mpii_gt(self.gt_file)
        if gt["jnt_missing"].shape[1] != len(self):
            raise DataError(f"{self.gt_file}: {gt['jnt_missing'].shape[1]} persons but "
                            f"{self.ann_file.name} has {len(self)}")
        return gt


def build_mpii(spec: DatasetSpec, root: str | Path, split: str, input_hw, train: bool = False,
               det_file: str | Path | None = None, det_score_thr: float = 0.0) -> MpiiPoseDataset:
    """The builder of MPII-style annotations (registered as ``"mpii"``): annotated person boxes only."""
    if det_file is not None:
        raise DataError("MPII is evaluated on its annotated person boxes; det_file applies to COCO only")
    return MpiiPoseDataset(root, split, input_hw, train, spec=spec)


register_builder("mpii", build_mpii)
