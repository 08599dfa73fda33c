"""Drawing for ``hrbench predict`` and ``hrbench data show``: pose overlays on whole images, boxes,
heatmap blends, PNG files (the primitives - skeletons, text, grids - are :mod:`hrbench.data.draw`'s)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from hrbench.data.draw import draw_skeleton, grid, pt, put_text, skeleton
from hrbench.errors import HrbenchError
from hrbench.fsutil import write_bytes_atomic

__all__ = ["draw_box", "draw_skeleton", "encode_png", "grid", "heatmap_blend", "pose_overlay", "put_text", "skeleton",
           "write_png"]

BOX_COLOUR = (255, 0, 255)
MIN_SIDE = 640  # overlays of images whose longer side is under this are drawn enlarged (integer factor)


def draw_box(img: np.ndarray, bbox: Sequence[float], label: str = "", colour=BOX_COLOUR) -> None:
    """An (x, y, w, h) box with an optional label above it."""
    x, y, w, h = (float(v) for v in bbox)
    cv2.rectangle(img, pt((x, y)), pt((x + w, y + h)), colour, 1, cv2.LINE_AA)
    if label:
        put_text(img, label, (int(x) + 2, max(int(y) - 4, 10)), colour)


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


def encode_png(img: np.ndarray) -> bytes:
    """PNG bytes of an RGB image."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR))
    if not ok:
        raise HrbenchError("PNG encoding failed")
    return buf.tobytes()


def write_png(path: str | Path, img: np.ndarray) -> Path:
    """Write ``img`` as PNG atomically (:func:`hrbench.fsutil.write_bytes_atomic`)."""
    return write_bytes_atomic(path, encode_png(img))
