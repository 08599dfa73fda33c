"""Photometric augmentation of a warped uint8 RGB crop: the ops of RTMPose's training pipeline, in numpy / cv2.

Each op is split into a *draw* (its random parameters from a numpy ``Generator``, so a sample's
augmentation is a function of its seed, :class:`hrbench.engine.samples.SeededSamples`) and a pure
*apply* (the pixels, given the parameters), so tests can pin the pixels of chosen parameters.

Facts (read in the official code, written here):

* HSV shift, mmpose 1.x ``YOLOXHSVRandomAug`` (``mmpose/datasets/transforms/common_transforms.py``
  lines 1087-1136, a port of mmdet's, which the RTMPose configs name): gains ``U(-1, 1) x (5, 30, 30)``
  for (hue, saturation, value), each kept with probability 1/2 (``randint(0, 2)``), truncated to int16;
  on OpenCV's 8-bit HSV (hue 0..179) hue is added modulo 180, saturation and value clipped to 0..255.
  The reference converts a BGR image with ``COLOR_BGR2HSV``; hrbench's RGB crop with ``COLOR_RGB2HSV``
  gives the same HSV values.
* ``Blur`` / ``MedianBlur`` (albumentations 1.3.0 ``augmentations/blur/transforms.py`` lines 36-44 and
  140-147, ``functional.py`` lines 20-31): default ``blur_limit`` (3, 7), the kernel size drawn uniformly
  from the odd sizes 3, 5, 7; ``cv2.blur`` (box filter, reflect-101 border) and ``cv2.medianBlur``.
* ``CoarseDropout(max_holes=1, min_holes=1, max/min_height=0.4/0.2, max/min_width=0.4/0.2)``
  (albumentations 1.3.0 ``augmentations/dropout/coarse_dropout.py`` lines 109-155, ``functional.py``
  lines 22-29): one hole of ``int(H x U(0.2, 0.4))`` x ``int(W x U(0.2, 0.4))`` pixels, its top-left
  corner uniform over the integer positions that keep it inside the crop, filled with 0. The joints are
  not changed (mmpose's ``Albumentation`` passes only the image, ``keymap`` ``{'img': 'image'}``).
"""

from __future__ import annotations

import cv2
import numpy as np

#: YOLOXHSVRandomAug's defaults (hue, saturation, value), which the RTMPose configs use.
HSV_DELTAS = (5, 30, 30)
#: albumentations' default ``blur_limit`` of Blur and MedianBlur: odd kernel sizes 3..7.
BLUR_LIMIT = (3, 7)


def draw_hsv_gains(rng: np.random.Generator, deltas: tuple[int, int, int] = HSV_DELTAS) -> np.ndarray:
    """(3,) int16 gains for (hue, saturation, value): ``U(-1, 1) x delta``, each zeroed with probability 1/2,
    truncated toward zero as the reference's ``astype(np.int16)``."""
    gains = rng.uniform(-1.0, 1.0, 3) * np.asarray(deltas, dtype=np.float64)
    gains *= rng.integers(0, 2, 3)
    return gains.astype(np.int16)


def hsv_shift(image: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """The RGB uint8 ``image`` with hue += gains[0] (mod 180), saturation += gains[1], value += gains[2]
    (both clipped to 0..255) on OpenCV's 8-bit HSV; a new array."""
    hsv = cv2.cvtColor(np.ascontiguousarray(image, dtype=np.uint8), cv2.COLOR_RGB2HSV).astype(np.int16)
    hsv[..., 0] = (hsv[..., 0] + int(gains[0])) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] + int(gains[1]), 0, 255)
    hsv[..., 2] = np.clip(hsv[..., 2] + int(gains[2]), 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)


def draw_kernel(rng: np.random.Generator, limit: tuple[int, int] = BLUR_LIMIT) -> int:
    """An odd kernel size drawn uniformly from ``limit[0], limit[0] + 2, ..., limit[1]``."""
    return int(rng.choice(np.arange(limit[0], limit[1] + 1, 2)))


def box_blur(image: np.ndarray, ksize: int) -> np.ndarray:
    """The mean over a ``ksize`` x ``ksize`` window (``cv2.blur``, reflect-101 border)."""
    return cv2.blur(np.ascontiguousarray(image), (ksize, ksize))


def median_blur(image: np.ndarray, ksize: int) -> np.ndarray:
    """The median over a ``ksize`` x ``ksize`` window, per channel (``cv2.medianBlur``, uint8)."""
    return cv2.medianBlur(np.ascontiguousarray(image, dtype=np.uint8), ksize)


def draw_hole(rng: np.random.Generator, height: int, width: int,
              size_range: tuple[float, float] = (0.2, 0.4)) -> tuple[int, int, int, int]:
    """One dropout hole ``(x1, y1, x2, y2)`` (end exclusive) in a ``height`` x ``width`` crop: its height
    ``int(height x U(lo, hi))`` and width ``int(width x U(lo, hi))``, its corner uniform over the integer
    positions that keep it inside (both ends inclusive, as Python's ``random.randint``)."""
    lo, hi = size_range
    hh = int(height * rng.uniform(lo, hi))
    hw = int(width * rng.uniform(lo, hi))
    y1 = int(rng.integers(0, height - hh + 1))
    x1 = int(rng.integers(0, width - hw + 1))
    return x1, y1, x1 + hw, y1 + hh


def coarse_dropout(image: np.ndarray, hole: tuple[int, int, int, int], fill: int = 0) -> np.ndarray:
    """``image`` with the pixels of ``hole`` ``(x1, y1, x2, y2)`` set to ``fill``; a new array."""
    out = np.array(image, copy=True)
    x1, y1, x2, y2 = hole
    out[y1:y2, x1:x2] = fill
    return out
