"""Synthetic pose data in the real COCO / MPII formats (``hrbench data synth``).

Each image shows 1-3 articulated limb figures drawn back to front over a random background
(gradient + noise + shapes). Poses come from joint angles sampled within human ranges (torso lean,
body/head yaw, shoulder abduction, elbow/knee flexion, hip abduction). Every limb segment and face
point has its own colour, warm on the person's left side and cool on the right, so left/right is
learnable. Keypoints covered by a later person or an occluder shape are labelled occluded (COCO
v=1), self-hidden face points (far ear/eye) too; points outside the image are unlabelled (v=0).
Some images hold a crowd of small figures annotated as one ``iscrowd=1`` region (RLE mask).

COCO output: ``annotations/person_keypoints_{train,val}.json``, ``images/{train,val}/*.jpg`` and
``person_detection_results/detections_val.json`` (noisy boxes, duplicates, false positives).
MPII output: ``annotations/mpii_{train,val}.json``, ``annotations/mpii_gt_val.json`` (head boxes),
``images/*.jpg``. Everything is a deterministic function of the seed.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from hrbench.data.coco import COCO_KEYPOINTS, COCO_SKELETON, DET_DIR
from hrbench.data.mpii import MPII_GT_NAMES, MPII_KEYPOINTS
from hrbench.errors import DataError

IMAGE_HW = (256, 320)
SIDE_COLOURS = {  # (upper arm, forearm, thigh, shin, joint marker, eye, ear)
    "left": ((235, 90, 40), (250, 185, 40), (205, 40, 135), (250, 140, 195), (120, 30, 0), (190, 0, 0),
             (255, 120, 0)),
    "right": ((40, 90, 235), (40, 215, 235), (30, 140, 60), (135, 230, 90), (0, 30, 120), (0, 0, 190),
              (0, 170, 255)),
}
NOSE_COLOUR = (255, 255, 255)
SKIN = ((255, 220, 180), (225, 180, 140), (170, 120, 90), (110, 75, 55))
OCCLUDER_ID = 255


def _rot(v: np.ndarray, deg: float) -> np.ndarray:
    """Rotate 2D vector(s) by ``deg`` degrees clockwise on screen (image y points down)."""
    t = math.radians(deg)
    c, s = math.cos(t), math.sin(t)
    v = np.asarray(v, dtype=np.float64)
    return np.stack([c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1]], axis=-1)


@dataclass
class Figure:
    """One posed figure: named points (image pixels), head radius, limb widths, hidden face points."""

    pts: dict[str, np.ndarray]
    head_r: float
    widths: dict[str, float]
    hidden: set[str] = field(default_factory=set)
    side_order: tuple[str, str] = ("left", "right")


def sample_figure(rng: np.random.Generator, height: float, pelvis: tuple[float, float]) -> Figure:
    """A figure ``height`` px tall with its pelvis at ``pelvis``; angles in degrees within human ranges."""
    lean = float(np.clip(rng.normal(0, 8), -25, 25)) if rng.random() > 0.12 else float(rng.uniform(-75, 75))
    yaw = float(rng.uniform(-50, 50))
    width_k = max(abs(math.cos(math.radians(yaw))), 0.4)
    p: dict[str, np.ndarray] = {"pelvis": np.zeros(2), "thorax": np.array([0.0, -0.30])}
    for side, sgn in (("left", 1.0), ("right", -1.0)):
        p[f"{side}_shoulder"] = np.array([sgn * 0.11 * width_k, -0.29])
        p[f"{side}_hip"] = np.array([sgn * 0.075 * width_k, 0.0])
        abd = rng.uniform(-15, 170) if rng.random() > 0.2 else rng.uniform(-60, -15)  # shoulder abduction
        u = np.array([sgn * math.sin(math.radians(abd)), math.cos(math.radians(abd))])
        p[f"{side}_elbow"] = p[f"{side}_shoulder"] + u * 0.17 * rng.uniform(0.7, 1.0)
        flex = rng.uniform(0, 150) * rng.choice([-1.0, 1.0])  # elbow flexion
        p[f"{side}_wrist"] = p[f"{side}_elbow"] + _rot(u, flex) * 0.15 * rng.uniform(0.7, 1.0)
        hip_abd = rng.uniform(-12, 40) if rng.random() > 0.15 else rng.uniform(40, 95)
        u = np.array([sgn * math.sin(math.radians(hip_abd)), math.cos(math.radians(hip_abd))])
        p[f"{side}_knee"] = p[f"{side}_hip"] + u * 0.245 * rng.uniform(0.8, 1.0)
        knee = rng.uniform(0, 100) * rng.choice([-1.0, 1.0])  # knee flexion
        p[f"{side}_ankle"] = p[f"{side}_knee"] + _rot(u, knee) * 0.235 * rng.uniform(0.8, 1.0)
    tilt = float(rng.normal(0, 12))
    up, right = _rot(np.array([0.0, -1.0]), tilt), _rot(np.array([1.0, 0.0]), tilt)
    r = 0.062
    p["upper_neck"] = p["thorax"] + up * 0.055
    hc = p["upper_neck"] + up * r * 0.95
    p["head_center"], p["head_top"] = hc, hc + up * r
    head_yaw = float(np.clip(yaw + rng.normal(0, 20), -75, 75))
    p["nose"] = hc + right * r * 0.85 * math.sin(math.radians(head_yaw)) - up * r * 0.15
    hidden = set()
    for side, sgn in (("left", 1.0), ("right", -1.0)):
        for part, off, dy, k, lim in (("eye", 32, 0.22, 0.8, -0.05), ("ear", 90, 0.0, 1.0, -0.2)):
            ang = math.radians(head_yaw + sgn * off)
            p[f"{side}_{part}"] = hc + right * r * k * math.sin(ang) + up * r * dy
            if math.cos(ang) < lim:
                hidden.add(f"{side}_{part}")
    names = list(p)
    glob = np.asarray(pelvis, dtype=np.float64) + height * _rot(np.stack([p[k] for k in names]), lean)
    pts = dict(zip(names, glob, strict=True))
    widths = {"upper_arm": 0.045, "forearm": 0.038, "thigh": 0.06, "shin": 0.048, "neck": 0.04, "torso": 0.0}
    order = ("left", "right") if rng.random() < 0.5 else ("right", "left")
    return Figure(pts, r * height, {k: v * height for k, v in widths.items()}, hidden, order)


class _Canvas:
    """Draws every primitive into the RGB image and, with the owner's id, into an id map."""

    def __init__(self, image: Image.Image) -> None:
        self.image = image
        self.ids = Image.new("L", image.size, 0)
        self.d = ImageDraw.Draw(image)
        self.di = ImageDraw.Draw(self.ids)

    def line(self, a, b, width: float, colour, pid: int | None) -> None:
        w = max(1, int(round(width)))
        xy = [tuple(a), tuple(b)]
        self.d.line(xy, fill=colour, width=w)
        self.disc(a, width / 2, colour, pid)
        self.disc(b, width / 2, colour, pid)
        if pid is not None:
            self.di.line(xy, fill=pid, width=w)

    def disc(self, c, radius: float, colour, pid: int | None) -> None:
        box = [c[0] - radius, c[1] - radius, c[0] + radius, c[1] + radius]
        self.d.ellipse(box, fill=colour)
        if pid is not None:
            self.di.ellipse(box, fill=pid)

    def polygon(self, pts, colour, pid: int | None) -> None:
        xy = [tuple(p) for p in pts]
        self.d.polygon(xy, fill=colour)
        if pid is not None:
            self.di.polygon(xy, fill=pid)


def draw_figure(canvas: _Canvas, fig: Figure, rng: np.random.Generator, pid: int | None) -> None:
    """Render a figure: legs, torso, arms, neck, head with face points, joint markers."""
    p, w = fig.pts, fig.widths
    jitter = rng.integers(-20, 21)

    def col(c):
        return tuple(min(255, max(0, int(v + jitter))) for v in c)

    for side in fig.side_order:
        c = SIDE_COLOURS[side]
        canvas.line(p[f"{side}_hip"], p[f"{side}_knee"], w["thigh"], col(c[2]), pid)
        canvas.line(p[f"{side}_knee"], p[f"{side}_ankle"], w["shin"], col(c[3]), pid)
    cloth = tuple(int(v) for v in rng.integers(60, 200, 3))
    torso = [p["left_shoulder"], p["right_shoulder"], p["right_hip"], p["left_hip"]]
    centre = np.mean(torso, axis=0)
    canvas.polygon([centre + (q - centre) * 1.25 for q in torso], cloth, pid)
    for side in fig.side_order:
        c = SIDE_COLOURS[side]
        canvas.line(p[f"{side}_shoulder"], p[f"{side}_elbow"], w["upper_arm"], col(c[0]), pid)
        canvas.line(p[f"{side}_elbow"], p[f"{side}_wrist"], w["forearm"], col(c[1]), pid)
    skin = SKIN[int(rng.integers(len(SKIN)))]
    canvas.line(p["thorax"], p["upper_neck"], w["neck"], skin, pid)
    canvas.disc(p["head_center"], fig.head_r, skin, pid)
    dot = max(1.5, fig.head_r * 0.16)
    for side in ("left", "right"):
        c = SIDE_COLOURS[side]
        for part, colour in (("ear", c[6]), ("eye", c[5])):
            if f"{side}_{part}" not in fig.hidden:
                canvas.disc(p[f"{side}_{part}"], dot, colour, pid)
        for joint in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle"):
            canvas.disc(p[f"{side}_{joint}"], max(1.5, w["forearm"] * 0.35), c[4], pid)
    canvas.disc(p["nose"], dot, NOSE_COLOUR, pid)
    canvas.disc(p["head_top"], dot * 0.8, (40, 40, 40), pid)


def background(rng: np.random.Generator, hw: tuple[int, int]) -> Image.Image:
    """A random two-colour gradient with noise and a few flat shapes / thin lines."""
    h, w = hw
    c1, c2 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ang = rng.uniform(0, 2 * math.pi)
    sh, sw = max(h // 8, 2), max(w // 8, 2)  # the gradient is smooth: build it small, upsample
    t = (np.arange(sw, dtype=np.float32)[None, :] * math.cos(ang)
         + np.arange(sh, dtype=np.float32)[:, None] * math.sin(ang))
    t = ((t - t.min()) / max(float(t.max() - t.min()), 1.0))[..., None]
    im = Image.fromarray((c1 * (1 - t) + c2 * t).astype(np.uint8)).resize((w, h), Image.BILINEAR)
    amp = int(rng.integers(4, 28))
    noise = Image.fromarray(rng.integers(0, amp, (h, w), dtype=np.uint8)).convert("RGB")
    im = ImageChops.add(im, noise, 1.0, -(amp // 2))
    d = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(2, 7))):
        x0, y0 = rng.uniform(-40, w), rng.uniform(-40, h)
        x1, y1 = x0 + rng.uniform(15, 110), y0 + rng.uniform(15, 110)
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        kind = rng.integers(3)
        if kind == 0:
            d.rectangle([x0, y0, x1, y1], fill=colour)
        elif kind == 1:
            d.ellipse([x0, y0, x1, y1], fill=colour)
        else:
            d.line([x0, y0, x1, y1], fill=colour, width=int(rng.integers(1, 4)))
    return im


def convex_hull(points: np.ndarray) -> np.ndarray:
    """Convex hull (counter-clockwise, monotone chain) of (N, 2) points."""
    pts = sorted({(float(x), float(y)) for x, y in points})
    if len(pts) < 3:
        return np.asarray(pts)

    def half(seq):
        out: list = []
        for q in seq:
            while len(out) >= 2 and ((out[-1][0] - out[-2][0]) * (q[1] - out[-2][1])
                                     - (out[-1][1] - out[-2][1]) * (q[0] - out[-2][0])) <= 0:
                out.pop()
            out.append(q)
        return out

    lower, upper = half(pts), half(reversed(pts))
    return np.asarray(lower[:-1] + upper[:-1])


def clip_polygon(poly: np.ndarray, w: float, h: float) -> np.ndarray:
    """Sutherland-Hodgman clip of a polygon to the rectangle [0, w] x [0, h]."""
    out = [tuple(p) for p in poly]
    for axis, bound, keep_less in ((0, 0.0, False), (0, w, True), (1, 0.0, False), (1, h, True)):
        if not out:
            break
        src, out = out, []
        for i, cur in enumerate(src):
            prev = src[i - 1]
            cin = cur[axis] <= bound if keep_less else cur[axis] >= bound
            pin = prev[axis] <= bound if keep_less else prev[axis] >= bound
            if cin != pin:
                t = (bound - prev[axis]) / (cur[axis] - prev[axis])
                out.append((prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1])))
            if cin:
                out.append(cur)
    return np.asarray(out, dtype=np.float64)


def polygon_area(poly: np.ndarray) -> float:
    """Shoelace area."""
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def rle_counts(mask: np.ndarray) -> list[int]:
    """Uncompressed COCO RLE counts (column-major runs, starting with a run of zeros)."""
    flat = np.asarray(mask, dtype=np.uint8).ravel(order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        counts = [0] + counts
    return counts


def figure_outline(fig: Figure) -> np.ndarray:
    """Points on the figure's silhouette: the outer joints offset by the widest limb half-width, and
    the head circle (the hull of these is the person's segmentation polygon)."""
    ring = np.stack([np.cos(np.linspace(0, 2 * np.pi, 8, endpoint=False)),
                     np.sin(np.linspace(0, 2 * np.pi, 8, endpoint=False))], axis=1)
    centres = np.stack(list(fig.pts.values()))
    outer = convex_hull(centres)
    half = max(fig.widths.values()) / 2
    return np.concatenate([(outer[:, None, :] + ring[None] * half).reshape(-1, 2),
                           fig.pts["head_center"] + ring * fig.head_r])


@dataclass
class Person:
    """A rendered, annotated figure."""

    fig: Figure
    vis: dict[str, int]  # 2 visible, 1 occluded, 0 outside the image
    polygon: np.ndarray  # clipped hull
    box: tuple[float, float, float, float]  # unclipped hull box x, y, w, h


def render_scene(rng: np.random.Generator, hw: tuple[int, int] = IMAGE_HW) -> tuple[Image.Image, list, list]:
    """One image: background, optional crowd, 1-3 persons back to front, occluders.

    Returns the image, the persons and the crowd rectangles [x, y, w, h].
    """
    h, w = hw
    image = background(rng, hw)
    canvas = _Canvas(image)
    crowds = []
    if rng.random() < 0.25:
        cw, ch = rng.uniform(0.25, 0.4) * w, rng.uniform(0.18, 0.28) * h
        cx, cy = rng.uniform(0, w - cw), rng.uniform(0, h * 0.45)
        for _ in range(int(rng.integers(4, 9))):
            small = rng.uniform(0.6, 0.9) * ch
            fig = sample_figure(rng, small, (rng.uniform(cx + 5, cx + cw - 5), cy + ch * rng.uniform(0.45, 0.6)))
            draw_figure(canvas, fig, rng, None)
        crowds.append([float(cx), float(cy), float(cw), float(ch)])
    n = int(rng.choice([1, 2, 3], p=[0.45, 0.35, 0.2]))
    xs: list[float] = []
    figs = []
    for _ in range(n):
        for _try in range(20):
            x = rng.uniform(0.15, 0.85) * w
            if all(abs(x - o) > 0.2 * w for o in xs):
                break
        xs.append(x)
        height = rng.uniform(0.55, 0.95) * h
        y = h / 2 + 0.02 * height + rng.uniform(-0.12, 0.12) * h
        figs.append(sample_figure(rng, height, (x, y)))
    for pid, fig in enumerate(figs, start=1):
        draw_figure(canvas, fig, rng, pid)
    if rng.random() < 0.4:
        for _ in range(int(rng.integers(1, 3))):
            target = figs[int(rng.integers(len(figs)))].pts
            q = list(target.values())[int(rng.integers(len(target)))]
            ow, oh = rng.uniform(25, 80), rng.uniform(25, 80)
            box = [q[0] - ow / 2, q[1] - oh / 2, q[0] + ow / 2, q[1] + oh / 2]
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            shape = "rectangle" if rng.random() < 0.5 else "ellipse"
            getattr(canvas.d, shape)(box, fill=colour)
            getattr(canvas.di, shape)(box, fill=OCCLUDER_ID)
    ids = np.asarray(canvas.ids)
    persons = []
    for pid, fig in enumerate(figs, start=1):
        vis = {}
        for name, q in fig.pts.items():
            xi, yi = int(round(q[0])), int(round(q[1]))
            if not (0 <= q[0] <= w - 1 and 0 <= q[1] <= h - 1):
                vis[name] = 0
            elif name in fig.hidden or ids[yi, xi] != pid:
                vis[name] = 1
            else:
                vis[name] = 2
        outline = figure_outline(fig)
        hull = convex_hull(outline)
        x0, y0 = outline.min(axis=0)
        x1, y1 = outline.max(axis=0)
        persons.append(Person(fig, vis, clip_polygon(hull, w, h), (x0, y0, x1 - x0, y1 - y0)))
    return image, persons, crowds


def _r(v: float) -> float:
    return round(float(v), 2)


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
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, separators=(",", ":"))


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
        raise DataError(f"unknown dataset {dataset!r}: expected coco or mpii")
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
