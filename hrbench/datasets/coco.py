"""COCO person keypoints (17 joints): the facts, registered as ``coco``."""

from __future__ import annotations

from hrbench.datasets.spec import DatasetSpec, register_dataset

COCO_KEYPOINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                  "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
                  "left_knee", "right_knee", "left_ankle", "right_ankle")
COCO_FLIP_PAIRS = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16))
#: 1-based limb list of the COCO ``categories[0]["skeleton"]``.
COCO_SKELETON = ((16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8), (7, 9),
                 (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7))
#: Per-keypoint OKS sigmas of the COCO keypoint evaluation, computed as pycocotools and the reference
#: do (``np.array([.26, ...]) / 10.0``; ``.26 / 10`` is one ulp off the literal ``.026``).
COCO_SIGMAS = tuple(s / 10.0 for s in (.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87,
                                       .89, .89))
COCO_LAYOUT = ("DIR/annotations/person_keypoints_{train,val}.json, DIR/images/{train,val}/...; optional "
               "DIR/person_detection_results/detections_{split}.json")

COCO_SPEC = register_dataset(DatasetSpec(
    "coco", COCO_KEYPOINTS, COCO_FLIP_PAIRS, tuple(range(11)), (256, 192), "AP", annotations="coco",
    evaluator="cocoeval", sigmas=COCO_SIGMAS, skeleton=tuple((a - 1, b - 1) for a, b in COCO_SKELETON),
    layout=COCO_LAYOUT))
