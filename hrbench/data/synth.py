"""Synthetic pose data in the real COCO / MPII formats (``hrbench data synth``).

Each image (:mod:`hrbench.data.synth_scene`) shows 1-3 articulated limb figures
(:mod:`hrbench.data.synth_figure`) drawn back to front over a random background, with occlusion
labels; some images hold a crowd of small figures annotated as one ``iscrowd=1`` region (RLE
mask). This module writes them in the datasets' annotation formats.

COCO output: ``annotations/person_keypoints_{train,val}.json``, ``images/{train,val}/*.jpg`` and
``person_detection_results/detections_val.json`` (noisy boxes, duplicates, false positives).
MPII output: ``annotations/mpii_{train,val}.json``, ``annotations/mpii_gt_val.json`` (head boxes),
``images/*.jpg``. Everything is a deterministic function of the seed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hrbench.data.coco import DET_DIR
from hrbench.data.mpii import MPII_GT_NAMES
from hrbench.data.synth_scene import IMAGE_HW, Person, polygon_area, render_scene
from hrbench.datasets.coco import COCO_KEYPOINTS, COCO_SKELETON
from hrbench.datasets.mpii import MPII_KEYPOINTS
from hrbench.errors import DataError
from hrbench.fsutil import write_json_atomic


def _r(v: float) -> float:
    return round(float(v), 2)


def rle_counts(mask: np.ndarray) -> list[int]:
    """Uncompressed COCO RLE counts (column-major runs, starting with a run of zeros)."""
    flat = np.asarray(mask, dtype=np.uint8).ravel(order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        counts = [0] + counts
    return counts


def coco_annotation(person: Person, ann_id: int, image_id: int) -> dict | None:
    """The COCO keypoint annotation of a person (None if its visible part is degenerate)."""
    kps: list[float] = []
    for name in COCO_KEYPOINTS:
        v = person.vis[name]
        q = person.fig.pts[name]
        kps += [_r(q[0]), _r(q[1]), v] if v > 0 else [0, 0, 0]
    poly = person.polygon
    if len(poly) < 3:
        return None
    x0, y0 = poly.min(axis=0)
    x1, y1 = poly.max(axis=0)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
            "keypoints": kps, "num_keypoints": sum(1 for v in kps[2::3] if v > 0),
            "area": _r(polygon_area(poly)), "bbox": [_r(x0), _r(y0), _r(x1 - x0), _r(y1 - y0)],
            "segmentation": [[_r(c) for c in poly.ravel()]]}


def crowd_annotation(box, ann_id: int, image_id: int, hw: tuple[int, int]) -> dict:
    """An ``iscrowd=1`` region with an uncompressed RLE mask of the crowd rectangle."""
    h, w = hw
    mask = np.zeros((h, w), np.uint8)
    x, y, bw, bh = box
    xa, ya, xb, yb = int(x), int(y), int(math.ceil(x + bw)), int(math.ceil(y + bh))
    mask[max(ya, 0):min(yb, h), max(xa, 0):min(xb, w)] = 1
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 1,
            "keypoints": [0] * (3 * len(COCO_KEYPOINTS)), "num_keypoints": 0, "area": float(mask.sum()),
            "bbox": [float(xa), float(ya), float(xb - xa), float(yb - ya)],
            "segmentation": {"counts": rle_counts(mask), "size": [h, w]}}


def noisy_detections(rng: np.random.Generator, anns: list[dict], image_id: int, hw: tuple[int, int]) -> list[dict]:
    """Detector-like boxes: jittered GT boxes (some missed, some duplicated), false positives."""
    h, w = hw
    dets = []

    def det(x, y, bw, bh, score, cat=1):
        x, y = max(0.0, x), max(0.0, y)
        bw, bh = min(bw, w - x), min(bh, h - y)
        if bw > 2 and bh > 2:
            dets.append({"image_id": image_id, "category_id": cat, "bbox": [_r(x), _r(y), _r(bw), _r(bh)],
                         "score": round(float(score), 4)})

    for a in anns:
        if a["iscrowd"] or a["num_keypoints"] == 0 or rng.random() < 0.04:
            continue
        x, y, bw, bh = a["bbox"]
        for copy in range(2 if rng.random() < 0.15 else 1):
            k = 0.05 if copy == 0 else 0.12
            score = rng.uniform(0.7, 1.0) * (1.0 if copy == 0 else rng.uniform(0.4, 0.9))
            det(x + rng.normal(0, k * bw), y + rng.normal(0, k * bh), bw * math.exp(rng.normal(0, k)),
                bh * math.exp(rng.normal(0, k)), score)
    if rng.random() < 0.3:
        det(rng.uniform(0, w - 40), rng.uniform(0, h - 60), rng.uniform(30, 120), rng.uniform(50, 160),
            rng.uniform(0.05, 0.4))
    if rng.random() < 0.05:
        det(rng.uniform(0, w - 40), rng.uniform(0, h - 40), 40, 40, rng.uniform(0.5, 0.9), cat=2)
    return dets


def _write_json(path: Path, obj) -> None:
    write_json_atomic(path, obj, compact=True)


def _coco_split(out: Path, split: str, n: int, seed: int, first_id: int, hw, tick) -> dict:
    img_dir = out / "images" / split
    img_dir.mkdir(parents=True, exist_ok=True)
    images, anns, dets = [], [], []
    split_code = {"train": 1, "val": 2}[split]
    for i in range(n):
        rng = np.random.default_rng([seed, split_code, i])
        image, persons, crowds = render_scene(rng, hw)
        image_id = first_id + i
        name = f"{image_id:012d}.jpg"
        image.save(img_dir / name, quality=92)
        images.append({"id": image_id, "file_name": name, "width": hw[1], "height": hw[0]})
        img_anns = []
        for p in persons:
            a = coco_annotation(p, image_id * 100 + len(img_anns), image_id)
            if a is not None:
                img_anns.append(a)
        for c in crowds:
            img_anns.append(crowd_annotation(c, image_id * 100 + len(img_anns), image_id, hw))
        anns += img_anns
        if split == "val":
            dets += noisy_detections(rng, img_anns, image_id, hw)
        tick(1)
    category = {"id": 1, "name": "person", "supercategory": "person", "keypoints": list(COCO_KEYPOINTS),
                "skeleton": [list(s) for s in COCO_SKELETON]}
    data = {"info": {"description": f"hrbench synthetic COCO-format keypoints (seed {seed})", "version": "1.0"},
            "licenses": [], "images": images, "annotations": anns, "categories": [category]}
    _write_json(out / "annotations" / f"person_keypoints_{split}.json", data)
    if split == "val":
        _write_json(out / DET_DIR / "detections_val.json", dets)
    return {"images": len(images), "instances": sum(1 for a in anns if not a["iscrowd"]),
            "crowd": sum(1 for a in anns if a["iscrowd"]), "detections": len(dets)}


def _mpii_split(out: Path, split: str, n: int, seed: int, hw, tick) -> dict:
    img_dir = out / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    entries, gt = [], {"dataset_joints": list(MPII_GT_NAMES), "jnt_missing": [], "pos_gt_src": [],
                       "headboxes_src": []}
    split_code = {"train": 3, "val": 4}[split]
    for i in range(n):
        rng = np.random.default_rng([seed, split_code, i])
        image, persons, _ = render_scene(rng, hw)
        name = f"{split}_{i:06d}.jpg"
        image.save(img_dir / name, quality=92)
        for p in persons:
            joints, jvis = [], []
            for jn in MPII_KEYPOINTS:
                q, v = p.fig.pts[jn], p.vis[jn]
                joints.append([_r(q[0] + 1), _r(q[1] + 1)] if v > 0 else [-1.0, -1.0])
                jvis.append(1 if v > 0 else 0)
            if sum(jvis) < 4:
                continue
            x, y, bw, bh = p.box
            scale = max(bw, bh) / 200.0
            cx, cy = x + bw / 2, y + bh / 2 - 15 * scale
            entries.append({"image": name, "center": [_r(cx + 1), _r(cy + 1)], "scale": round(scale, 4),
                            "joints": joints, "joints_vis": jvis})
            hc, r = p.fig.pts["head_center"], p.fig.head_r
            gt["jnt_missing"].append([1 - v for v in jvis])
            gt["pos_gt_src"].append(joints)
            gt["headboxes_src"].append([[_r(hc[0] - r + 1), _r(hc[1] - r + 1)], [_r(hc[0] + r + 1), _r(hc[1] + r + 1)]])
        tick(1)
    _write_json(out / "annotations" / f"mpii_{split}.json", entries)
    if split == "val":
        _write_json(out / "annotations" / "mpii_gt_val.json", gt)
    return {"images": n, "instances": len(entries)}


def generate(dataset: str, out: str | Path, n_train: int = 200, n_val: int = 50, seed: int = 0,
             image_hw: tuple[int, int] = IMAGE_HW, progress: Callable[[int], None] | None = None) -> dict:
    """Write a synthetic ``dataset`` ("coco" | "mpii") under ``out``; returns counts and seconds."""
    if dataset not in ("coco", "mpii"):
        raise DataError(f"no synthetic writer for dataset {dataset!r}: synth writes coco or mpii")
    if n_train < 1 or n_val < 1:
        raise DataError("synthetic splits need at least one image each (--train, --val)")
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"{out}: cannot create output directory ({e.strerror})") from None
    tick = progress or (lambda k: None)
    t0 = time.perf_counter()
    if dataset == "coco":
        splits = {"train": _coco_split(out, "train", n_train, seed, 1, image_hw, tick),
                  "val": _coco_split(out, "val", n_val, seed, 1_000_001, image_hw, tick)}
    else:
        splits = {"train": _mpii_split(out, "train", n_train, seed, image_hw, tick),
                  "val": _mpii_split(out, "val", n_val, seed, image_hw, tick)}
    return {"dataset": dataset, "root": str(out), "seed": seed, "splits": splits,
            "seconds": round(time.perf_counter() - t0, 3)}
