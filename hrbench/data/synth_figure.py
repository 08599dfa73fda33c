"""The articulated limb figures of the synthetic data (``hrbench data synth``).

Poses come from joint angles sampled within human ranges (torso lean, body/head yaw, shoulder
abduction, elbow/knee flexion, hip abduction). Every limb segment and face point has its own
colour, warm on the person's left side and cool on the right, so left/right is learnable;
self-hidden face points (far ear/eye) are recorded on the figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

SIDE_COLOURS = {  # (upper arm, forearm, thigh, shin, joint marker, eye, ear)
    "left": ((235, 90, 40), (250, 185, 40), (205, 40, 135), (250, 140, 195), (120, 30, 0), (190, 0, 0),
             (255, 120, 0)),
    "right": ((40, 90, 235), (40, 215, 235), (30, 140, 60), (135, 230, 90), (0, 30, 120), (0, 0, 190),
              (0, 170, 255)),
}
NOSE_COLOUR = (255, 255, 255)
SKIN = ((255, 220, 180), (225, 180, 140), (170, 120, 90), (110, 75, 55))


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


class Canvas:
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


def draw_figure(canvas: Canvas, fig: Figure, rng: np.random.Generator, pid: int | None) -> None:
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
