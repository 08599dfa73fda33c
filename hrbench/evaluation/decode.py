"""Decoded keypoints -> image pixels: the inverse of the crop affine (the reference
``transform_preds``), applied to what a codec's ``decode`` read (:mod:`hrbench.codecs`), and
:func:`decode_heatmaps`, the papers' MSRA heatmaps decoded into image pixels in one call."""

from __future__ import annotations

import math

import numpy as np

from hrbench.codecs import Codec, Decoded, MSRAHeatmap
from hrbench.data.transforms import PIXEL_STD, crop_affine


def transform_preds(coords: np.ndarray, center, scale, heatmap_wh: tuple[int, int],
                    rotation: float = 0.0) -> np.ndarray:
    """Frame (x, y) -> original-image pixels: the inverse of the crop affine at the frame's size
    (``heatmap_wh``: the heatmap's, for the heatmap codec)."""
    s = np.asarray(scale, dtype=np.float64) * PIXEL_STD
    c = np.asarray(center, dtype=np.float64)
    xy = np.asarray(coords, dtype=np.float64)[..., :2]
    out = np.empty_like(xy)
    out[..., 0] = xy[..., 0] * (s[0] / heatmap_wh[0]) + c[0] - s[0] * 0.5
    out[..., 1] = xy[..., 1] * (s[1] / heatmap_wh[1]) + c[1] - s[1] * 0.5
    if rotation:
        t = math.radians(rotation)  # the crop turned the content by +rotation: undo it about the centre
        rel = out - c
        cs, sn = math.cos(t), math.sin(t)
        out = c + np.stack([cs * rel[..., 0] - sn * rel[..., 1], sn * rel[..., 0] + cs * rel[..., 1]], axis=-1)
    return out


def to_image(decoded: Decoded, centers, scales, rotations=None, affine: str = "msra") -> np.ndarray:
    """A codec's decoded keypoints (N, K, 2) in its frame -> image pixels (N, K, 2) float32, per
    sample's crop centre / scale (and rotation, degrees, undone in the sense of the codec's crop
    ``affine``, :func:`~hrbench.data.transforms.crop_affine`)."""
    n, k = decoded.coords.shape[:2]
    out = np.empty((n, k, 2), dtype=np.float64)
    sense = crop_affine(affine).rotation_sense
    for i in range(n):
        rot = 0.0 if rotations is None else sense * float(rotations[i])
        out[i] = transform_preds(decoded.coords[i], centers[i], scales[i], decoded.frame_wh, rot)
    return out.astype(np.float32)


def decode_keypoints(codec: Codec, output, centers, scales, *, post_process: str = "default",
                     rotations=None) -> tuple[np.ndarray, np.ndarray]:
    """A batch of head outputs -> keypoints (N, K, 2) in image pixels and confidences (N, K, 1)."""
    decoded = codec.decode(output, post_process=post_process)
    return to_image(decoded, centers, scales, rotations, codec.affine), decoded.scores


def decode_heatmaps(heatmaps, centers, scales, *, post_process: str = "default", kernel: int = 11,
                    rotations=None) -> tuple[np.ndarray, np.ndarray]:
    """(N, K, H, W) MSRA heatmaps + per-sample centre/scale -> keypoints (N, K, 2) in image pixels
    and confidences (N, K, 1). ``post_process``: "default" (quarter offset), "dark", or "none"."""
    return decode_keypoints(MSRAHeatmap(dark_kernel=kernel), heatmaps, centers, scales, post_process=post_process,
                            rotations=rotations)
