"""One synthetic image (``hrbench data synth``): a random background (gradient + noise + shapes),
an optional crowd of small figures, 1-3 figures drawn back to front, occluder shapes; each
keypoint's visibility from an id map, and the person's segmentation polygon.

Keypoints covered by a later person or an occluder are labelled occluded (COCO v=1), self-hidden
face points too; points outside the image are unlabelled (v=0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from hrbench.data.synth_figure import Canvas, Figure, draw_figure, sample_figure

IMAGE_HW = (256, 320)
OCCLUDER_ID = 255


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
    image = background(rng, hw)
    canvas = Canvas(image)
    crowds = [_draw_crowd(rng, canvas, hw)] if rng.random() < 0.25 else []
    figs = _place_figures(rng, hw)
    for pid, fig in enumerate(figs, start=1):
        draw_figure(canvas, fig, rng, pid)
    if rng.random() < 0.4:
        _draw_occluders(rng, canvas, figs)
    ids = np.asarray(canvas.ids)
    persons = [_annotate(fig, pid, ids, hw) for pid, fig in enumerate(figs, start=1)]
    return image, persons, crowds


def _draw_crowd(rng: np.random.Generator, canvas: Canvas, hw: tuple[int, int]) -> list[float]:
    """4-8 small unannotated figures in one rectangle (returned as [x, y, w, h]) high in the image."""
    h, w = hw
    cw, ch = rng.uniform(0.25, 0.4) * w, rng.uniform(0.18, 0.28) * h
    cx, cy = rng.uniform(0, w - cw), rng.uniform(0, h * 0.45)
    for _ in range(int(rng.integers(4, 9))):
        small = rng.uniform(0.6, 0.9) * ch
        fig = sample_figure(rng, small, (rng.uniform(cx + 5, cx + cw - 5), cy + ch * rng.uniform(0.45, 0.6)))
        draw_figure(canvas, fig, rng, None)
    return [float(cx), float(cy), float(cw), float(ch)]


def _place_figures(rng: np.random.Generator, hw: tuple[int, int]) -> list[Figure]:
    """1-3 figures, horizontally apart where 20 tries allow, 55-95 % of the image height tall."""
    h, w = hw
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
    return figs


def _draw_occluders(rng: np.random.Generator, canvas: Canvas, figs: list[Figure]) -> None:
    """1-2 rectangles or ellipses centred on random points of random figures (id ``OCCLUDER_ID``)."""
    for _ in range(int(rng.integers(1, 3))):
        target = figs[int(rng.integers(len(figs)))].pts
        q = list(target.values())[int(rng.integers(len(target)))]
        ow, oh = rng.uniform(25, 80), rng.uniform(25, 80)
        box = [q[0] - ow / 2, q[1] - oh / 2, q[0] + ow / 2, q[1] + oh / 2]
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        shape = "rectangle" if rng.random() < 0.5 else "ellipse"
        getattr(canvas.d, shape)(box, fill=colour)
        getattr(canvas.di, shape)(box, fill=OCCLUDER_ID)


def _annotate(fig: Figure, pid: int, ids: np.ndarray, hw: tuple[int, int]) -> Person:
    """Visibility of each point (0 outside, 1 hidden or not the topmost id ``pid``, 2 visible), the
    clipped silhouette hull and its unclipped box."""
    h, w = hw
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
    return Person(fig, vis, clip_polygon(hull, w, h), (x0, y0, x1 - x0, y1 - y0))
