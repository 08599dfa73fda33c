"""Drawing primitives shared by every picture of keypoints: skeletons coloured by body side, joints
coloured by confidence, outlined text, tile grids (``hrbench data show``, ``hrbench predict``, the
validation crops of a training run's TensorBoard log).

Images are RGB uint8 numpy arrays (H, W, 3); drawing is done with OpenCV in place. Limbs are coloured
by body side (left warm orange, right cool blue, centre white) so a swapped left/right pair shows;
predicted joints are coloured by confidence (red 0 -> yellow 0.5 -> green 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from hrbench.datasets import get_dataset
from hrbench.errors import HrbenchError

LEFT, RIGHT, CENTRE = (255, 140, 0), (30, 144, 255), (240, 240, 240)


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


def pt(p) -> tuple[int, int]:
    return int(round(float(p[0]))), int(round(float(p[1])))


def draw_skeleton(img: np.ndarray, points: np.ndarray, show: np.ndarray, names: Sequence[str],
                  limbs: Sequence[tuple[int, int]], *, confidence: np.ndarray | None = None,
                  radius: int = 3, thickness: int = 2) -> None:
    """Limbs between shown points (side colours) and the points: confidence colours when given,
    else side colours; a dark rim keeps points visible on any background."""
    for a, b in limbs:
        if show[a] and show[b]:
            cv2.line(img, pt(points[a]), pt(points[b]), limb_colour(names, a, b), thickness, cv2.LINE_AA)
    for j in np.flatnonzero(show):
        colour = confidence_colour(confidence[j]) if confidence is not None else side_colour(names[j])
        cv2.circle(img, pt(points[j]), radius + 1, (0, 0, 0), -1, cv2.LINE_AA)
        cv2.circle(img, pt(points[j]), radius, colour, -1, cv2.LINE_AA)


def put_text(img: np.ndarray, text: str, org: tuple[int, int], colour=(255, 255, 255), scale: float = 0.4) -> None:
    """Text with a black outline (readable on any background)."""
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


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
