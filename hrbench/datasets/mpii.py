"""MPII human pose (16 joints): the facts, registered as ``mpii``."""

from __future__ import annotations

from hrbench.datasets.spec import DatasetSpec, register_dataset

MPII_KEYPOINTS = ("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "pelvis",
                  "thorax", "upper_neck", "head_top", "right_wrist", "right_elbow", "right_shoulder",
                  "left_shoulder", "left_elbow", "left_wrist")
MPII_FLIP_PAIRS = ((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13))
MPII_SKELETON = ((0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9), (10, 11), (11, 12),
                 (12, 7), (7, 13), (13, 14), (14, 15))
MPII_LAYOUT = "DIR/annotations/mpii_{train,val}.json, mpii_gt_val.json (or .mat), DIR/images/..."

#: The metric is the PCKh@0.5 mean.
MPII_SPEC = register_dataset(DatasetSpec(
    "mpii", MPII_KEYPOINTS, MPII_FLIP_PAIRS, tuple(range(7, 16)), (256, 256), "PCKh", annotations="mpii",
    evaluator="pckh", skeleton=MPII_SKELETON, layout=MPII_LAYOUT))
