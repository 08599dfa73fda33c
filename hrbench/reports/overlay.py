"""Drawing for ``hrbench predict`` and ``hrbench data show``: skeletons, boxes, heatmap overlays, grids.

Images are RGB uint8 numpy arrays (H, W, 3); drawing is done with OpenCV in place. Limbs are coloured
by body side (left warm orange, right cool blue, centre white) so a swapped left/right pair shows;
predicted joints are coloured by confidence (red 0 -> yellow 0.5 -> green 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from hrbench.datasets import get_dataset
from hrbench.errors import HrbenchError
from hrbench.fsutil import write_bytes_atomic

LEFT, RIGHT, CENTRE = (255, 140, 0), (30, 144, 255), (240, 240, 240)
BOX_COLOUR = (255, 0, 255)
MIN_SIDE = 640  # overlays of images whose longer side is under this are drawn enlarged (integer factor)


def skeleton(dataset: str) -> tuple[tuple[str, ...], list[tuple[int, int]]]:
    """Keypoint names and 0-based limb pairs of the registered ``dataset``."""
    spec = get_dataset(dataset)
    return spec.names, list(spec.skeleton)


def side_colour(name: str) -> tuple[int, int, int]:
    """Left / right / centre colour of a keypoint name."""
    return LEFT if name.startswith("left") else RIGHT if name.startswith("right") else CENTRE


def limb_colour(names: Sequence[str], a: int, b: int) -> tuple[int, int, int]:
    ca, cb = side_colour(names[a]), side_colour(names[b])
    return ca if ca == cb else CENTRE


def confidence_colour(c: float) -> tuple[int, int, int]:
    """Red (0) -> yellow (0.5) -> green (1)."""
    c = float(np.clip(c, 0.0, 1.0))
    return (255, int(round(510 * c)), 0) if c < 0.5 else (int(round(510 * (1 - c))), 255, 0)


def _pt(p) -> tuple[int, int]:
    return int(round(float(p[0]))), int(round(float(p[1])))


def draw_skeleton(img: np.ndarray, points: np.ndarray, show: np.ndarray, names: Sequence[str],
                  limbs: Sequence[tuple[int, int]], *, confidence: np.ndarray | None = None,
                  radius: int = 3, thickness: int = 2) -> None:
    """Limbs between shown points (side colours) and the points: confidence colours when given,
    else side colours; a dark rim keeps points visible on any background."""
    for a, b in limbs:
        if show[a] and show[b]:
            cv2.line(img, _pt(points[a]), _pt(points[b]), limb_colour(names, a, b), thickness, cv2.LINE_AA)
    for j in np.flatnonzero(show):
        colour = confidence_colour(confidence[j]) if confidence is not None else side_colour(names[j])
        cv2.circle(img, _pt(points[j]), radius + 1, (0, 0, 0), -1, cv2.LINE_AA)
        cv2.circle(img, _pt(points[j]), radius, colour, -1, cv2.LINE_AA)


def draw_box(img: np.ndarray, bbox: Sequence[float], label: str = "", colour=BOX_COLOUR) -> None:
    """An (x, y, w, h) box with an optional label above it."""
    x, y, w, h = (float(v) for v in bbox)
    cv2.rectangle(img, _pt((x, y)), _pt((x + w, y + h)), colour, 1, cv2.LINE_AA)
    if label:
        put_text(img, label, (int(x) + 2, max(int(y) - 4, 10)), colour)


def put_text(img: np.ndarray, text: str, org: tuple[int, int], colour=(255, 255, 255), scale: float = 0.4) -> None:
    """Text with a black outline (readable on any background)."""
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


def pose_overlay(image: np.ndarray, results: Sequence[dict], dataset: str, thr: float = 0.2,
                 title: str = "") -> np.ndarray:
    """A copy of ``image`` (enlarged by an integer factor when its longer side is under :data:`MIN_SIDE`)
    with each result's box and score, and its skeleton (joints above ``thr``)."""
    img = np.ascontiguousarray(np.asarray(image, dtype=np.uint8)[..., :3])
    s = max(1, MIN_SIDE // max(img.shape[:2]))  # small images are drawn enlarged s times
    img = cv2.resize(img, (img.shape[1] * s, img.shape[0] * s), interpolation=cv2.INTER_LINEAR) if s > 1 \
        else img.copy()
    names, limbs = skeleton(dataset)
    size = max(img.shape[:2])
    radius, thick = max(2, size // 160), max(1, size // 240)
    for r in results:
        kp = np.asarray(r["keypoints"], dtype=np.float64).reshape(-1, 3).copy()
        kp[:, :2] = (kp[:, :2] + 0.5) * s - 0.5  # pixel centres stay pixel centres
        x, y, w, h = r["bbox"]
        draw_box(img, [(x + 0.5) * s - 0.5, (y + 0.5) * s - 0.5, w * s, h * s], f"{r['score']:.2f}")
        draw_skeleton(img, kp[:, :2], kp[:, 2] > thr, names, limbs, confidence=kp[:, 2], radius=radius,
                      thickness=thick)
    if title:
        put_text(img, title, (4, 14))
    return img


def heatmap_blend(image: np.ndarray, heatmaps: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """``image`` with the max over keypoints of ``heatmaps`` (K, h, w) in [0, 1] resized onto it (JET colours,
    blended in proportion to the heat)."""
    h, w = image.shape[:2]
    heat = np.clip(np.asarray(heatmaps, dtype=np.float32).max(axis=0), 0.0, 1.0)
    heat = cv2.resize(heat, (w, h), interpolation=cv2.INTER_LINEAR)
    jet = cv2.cvtColor(cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    a = (alpha * heat)[..., None]
    return (image.astype(np.float32) * (1 - a) + jet.astype(np.float32) * a).astype(np.uint8)


def grid(tiles: Sequence[np.ndarray], cols: int, pad: int = 2) -> np.ndarray:
    """Equal-size RGB tiles in rows of ``cols`` with ``pad`` dark pixels between them."""
    if not tiles:
        raise HrbenchError("nothing to draw")
    h, w = tiles[0].shape[:2]
    rows = -(-len(tiles) // cols)
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 32, dtype=np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        out[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = t
    return out


def encode_png(img: np.ndarray) -> bytes:
    """PNG bytes of an RGB image."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR))
    if not ok:
        raise HrbenchError("PNG encoding failed")
    return buf.tobytes()


def write_png(path: str | Path, img: np.ndarray) -> Path:
    """Write ``img`` as PNG atomically (:func:`hrbench.fsutil.write_bytes_atomic`)."""
    return write_bytes_atomic(path, encode_png(img))
