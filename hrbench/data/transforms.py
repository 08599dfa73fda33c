"""Top-down geometry and augmentation: box -> (centre, scale), the crop affine, flip, half-body,
random scale/rotation, and the image warp (``cv2.warpAffine``, bilinear, zero border, as the
reference ``TopDownAffine``).

Conventions follow the reference top-down pipelines used by all three papers (mmpose 0.x):
``scale`` is the crop size in units of 200 px (``PIXEL_STD``), boxes are padded by 1.25 and
widened/heightened to the network aspect ratio w/h, pixel centres sit on integer coordinates.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np
import torch

PIXEL_STD = 200.0
BOX_PADDING = 1.25
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation of the papers' configs (random flip, half body, scale 0.25, rotation 30)."""

    flip_prob: float = 0.5
    half_body_prob: float = 0.3  # COCO only; MPII configs do not use it (set 0)
    half_body_min_joints: int = 8  # more than this many visible joints are needed
    scale_factor: float = 0.25
    rot_factor: float = 30.0
    rot_prob: float = 0.6


def box_to_center_scale(x: float, y: float, w: float, h: float, aspect_ratio: float,
                        padding: float = BOX_PADDING,
                        jitter_rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(x, y, w, h) box -> centre (2,) and scale (2,) in 200-px units, expanded to ``aspect_ratio`` = w/h.

    With ``jitter_rng`` (training boxes), the centre moves by up to ±20 % of the box with probability
    0.3, drawn once when the dataset is loaded, as the reference COCO loader does."""
    center = np.array([x + w * 0.5, y + h * 0.5], dtype=np.float32)
    if jitter_rng is not None and jitter_rng.random() < 0.3:
        center += (0.4 * (jitter_rng.random(2) - 0.5) * [w, h]).astype(np.float32)
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    scale = np.array([w / PIXEL_STD, h / PIXEL_STD], dtype=np.float32) * padding
    return center, scale


def sanitize_box(box, width: int, height: int, area: float | None = None) -> list[float] | None:
    """Clip an (x, y, w, h) box to the image as the reference COCO loader does; None if degenerate."""
    x, y, w, h = (float(v) for v in box[:4])
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(width - 1.0, x1 + max(0.0, w - 1.0))
    y2 = min(height - 1.0, y1 + max(0.0, h - 1.0))
    if (area is None or area > 0) and x2 > x1 and y2 > y1:
        return [x1, y1, x2 - x1, y2 - y1]
    return None


def affine_matrix(center, scale, rotation: float, out_wh: tuple[int, int]) -> np.ndarray:
    """2x3 matrix mapping image pixels to the (out_w, out_h) crop: ``centre`` goes to the crop centre,
    ``scale[0] * 200`` px of width fill ``out_w``, the content turns by ``rotation`` degrees
    (counter-clockwise on screen, as the reference ``get_affine_transform``).

    A zero-width scale (a zero-size detection box) gives the all-zero matrix, which is what the
    reference's ``cv2.getAffineTransform`` returns for its three coincident source points; the
    warp then fills the crop with the image's top-left pixel, as the reference does."""
    out_w, out_h = out_wh
    if float(scale[0]) == 0.0:
        return np.zeros((2, 3), dtype=np.float64)
    s = out_w / (float(scale[0]) * PIXEL_STD)
    t = math.radians(rotation)
    c, sn = math.cos(t), math.sin(t)
    a = np.array([[s * c, s * sn], [-s * sn, s * c]], dtype=np.float64)
    b = np.array([out_w * 0.5, out_h * 0.5]) - a @ np.asarray(center, dtype=np.float64)
    return np.concatenate([a, b[:, None]], axis=1)


def udp_affine_matrix(center, scale, rotation: float, out_wh: tuple[int, int]) -> np.ndarray:
    """UDP's crop affine (Huang et al., CVPR 2020; the reference ``get_warp_matrix(rotation, 2 * centre,
    out_wh - 1, scale * 200)`` of ``TopDownAffine(use_udp=True)``), in pixel units: the box edges land on
    the first and last pixel centres (``centre`` -> ((out_w - 1) / 2, (out_h - 1) / 2), x and y scaled
    separately), the content turns by ``rotation`` degrees clockwise on screen (the opposite sense of
    :func:`affine_matrix`, as the reference). Entries are rounded to float32, as the reference builds them;
    a zero-size scale gives the all-zero matrix (as :func:`affine_matrix`)."""
    out_w, out_h = out_wh
    # the box size and centre in float32, as the reference computes ``s * 200`` and ``c * 2`` from its float32 meta
    sw, sh = (float(v) for v in np.asarray(scale, dtype=np.float32)[:2] * np.float32(PIXEL_STD))
    if sw == 0.0 or sh == 0.0:
        return np.zeros((2, 3), dtype=np.float64)
    t = math.radians(rotation)
    c, sn = math.cos(t), math.sin(t)
    cx, cy = (float(v) for v in np.asarray(center, dtype=np.float32)[:2])
    sx, sy = (out_w - 1.0) / sw, (out_h - 1.0) / sh
    m = np.array([[c * sx, -sn * sx, sx * (-cx * c + cy * sn + 0.5 * sw)],
                  [sn * sy, c * sy, sy * (-cx * sn - cy * c + 0.5 * sh)]], dtype=np.float32)
    return m.astype(np.float64)


class CropAffine(NamedTuple):
    """A crop affine: its matrix builder, the sense of its rotation relative to :func:`affine_matrix`
    (undone so at decoding) and how many crop pixels short of the crop size the box spans (MSRA: the
    box covers 0..w; UDP: pixel centres 0..w-1)."""

    matrix: Callable[..., np.ndarray]
    rotation_sense: float
    span_short: float


#: the crop affines by name (a codec's ``affine``, :class:`hrbench.codecs.Codec`)
CROP_AFFINES: dict[str, CropAffine] = {"msra": CropAffine(affine_matrix, 1.0, 0.0),
                                       "udp": CropAffine(udp_affine_matrix, -1.0, 1.0)}


def crop_affine(affine: str) -> CropAffine:
    """The crop affine named ``affine`` (:data:`CROP_AFFINES`)."""
    if affine not in CROP_AFFINES:
        raise ValueError(f"unknown crop affine {affine!r}: expected {' or '.join(CROP_AFFINES)}")
    return CROP_AFFINES[affine]


def crop_matrix(affine: str, center, scale, rotation: float, out_wh: tuple[int, int]) -> np.ndarray:
    """The image -> crop matrix of the crop affine named ``affine`` (:data:`CROP_AFFINES`)."""
    return crop_affine(affine).matrix(center, scale, rotation, out_wh)


def apply_affine(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to (..., 2) points."""
    p = np.asarray(points, dtype=np.float64)
    return p @ m[:, :2].T + m[:, 2]


def horizontal_flip_matrix(width: int) -> np.ndarray:
    """x -> width - 1 - x: the pixel-exact mirror of an image ``width`` pixels wide."""
    return np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0]])


def compose(m2: np.ndarray, m1: np.ndarray) -> np.ndarray:
    """The affine ``m2 ∘ m1`` (apply m1 first)."""
    a = m2[:, :2] @ m1[:, :2]
    return np.concatenate([a, (m2[:, :2] @ m1[:, 2] + m2[:, 2])[:, None]], axis=1)


def warp_image(image: np.ndarray, m: np.ndarray, out_wh: tuple[int, int]) -> np.ndarray:
    """Bilinear warp of an (H, W, 3) uint8 image by the forward matrix ``m`` into ``out_wh``: exactly
    the reference ``cv2.warpAffine(img, trans, size, flags=cv2.INTER_LINEAR)`` (constant 0 border, so
    the crop fades to black over the one pixel around the image; pixel centres on integers)."""
    img = np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
    return cv2.warpAffine(img, np.asarray(m, dtype=np.float64), (int(out_wh[0]), int(out_wh[1])),
                          flags=cv2.INTER_LINEAR)


def flip_joints(joints: np.ndarray, vis: np.ndarray, width: int,
                flip_pairs) -> tuple[np.ndarray, np.ndarray]:
    """Mirror (K, 2) joints in an image ``width`` px wide, swap left/right pairs, zero invisible ones."""
    j = joints.copy()
    v = vis.copy()
    j[:, 0] = width - 1 - j[:, 0]
    for a, b in flip_pairs:
        j[[a, b]] = j[[b, a]]
        v[[a, b]] = v[[b, a]]
    j *= (v[:, None] > 0)
    return j, v


def half_body_box(joints: np.ndarray, vis: np.ndarray, upper_ids, aspect_ratio: float,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
    """Half-body augmentation: a box around the visible upper- or lower-body joints, scale x1.5."""
    upper = [joints[k] for k in range(len(joints)) if vis[k] > 0 and k in upper_ids]
    lower = [joints[k] for k in range(len(joints)) if vis[k] > 0 and k not in upper_ids]
    # the reference draws a standard normal here (P(upper) ~ 0.69), kept for fidelity
    if rng.standard_normal() < 0.5 and len(upper) > 2:
        chosen = upper
    elif len(lower) > 2:
        chosen = lower
    else:
        chosen = upper
    if len(chosen) < 2:
        return None
    pts = np.asarray(chosen, dtype=np.float32)
    center = pts.mean(axis=0)
    w, h = pts.max(axis=0) - pts.min(axis=0)
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    return center.astype(np.float32), np.array([w / PIXEL_STD, h / PIXEL_STD], dtype=np.float32) * 1.5


def random_scale_rotation(rng: np.random.Generator, scale_factor: float, rot_factor: float,
                          rot_prob: float) -> tuple[float, float]:
    """Scale multiplier in [1-sf, 1+sf] and rotation N(0, rf) clipped to ±2rf, applied with ``rot_prob``."""
    s = float(np.clip(rng.standard_normal() * scale_factor + 1, 1 - scale_factor, 1 + scale_factor))
    r = float(np.clip(rng.standard_normal() * rot_factor, -2 * rot_factor, 2 * rot_factor))
    return s, (r if rng.random() <= rot_prob else 0.0)


_NORM_MUL = torch.from_numpy(1.0 / (255.0 * IMAGENET_STD)).view(3, 1, 1)
_NORM_SUB = torch.from_numpy(IMAGENET_MEAN / IMAGENET_STD).view(3, 1, 1)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """RGB uint8 (H, W, 3) image -> float32 3xHxW tensor normalised with the ImageNet mean/std."""
    t = torch.from_numpy(np.asarray(image, dtype=np.uint8)).permute(2, 0, 1).contiguous().float()
    return t.mul_(_NORM_MUL).sub_(_NORM_SUB)


@dataclass
class CropResult:
    """One augmented crop: the warped image (None when only the parameters were drawn), joints in
    crop pixels, the parameters used and the image -> crop ``matrix`` (mirror folded in)."""

    image: np.ndarray | None
    joints: np.ndarray  # (K, 2) in input-image pixels of the crop
    vis: np.ndarray  # (K,) 0/1
    center: np.ndarray
    scale: np.ndarray
    rotation: float
    flipped: bool
    matrix: np.ndarray  # (2, 3) float64, image -> crop


def crop_params(image_width: int, joints: np.ndarray, vis: np.ndarray, center: np.ndarray,
                scale: np.ndarray, input_hw: tuple[int, int], *, train: bool, flip_pairs,
                upper_ids=(), aug: AugmentConfig | None = None,
                rng: np.random.Generator | None = None, affine: str = "msra",
                box=None, image_height: int | None = None) -> CropResult:
    """The reference top-down augmentation without the pixels: [flip, half body, scale/rotation] when
    training, then the crop matrix (the crop affine named ``affine``: the codec's, :data:`CROP_AFFINES`)
    and the joints in crop pixels (``image`` is None).

    A flip is folded into the crop matrix (mirror, then crop), so the image is resampled once.
    Returned ``center``/``scale`` are in the (possibly mirrored) image frame, as the reference has them.
    An ``aug`` with its own ``crop_params`` (another augmentation set, :mod:`hrbench.data.augment`) draws the
    training crop itself, from the annotation ``box`` (x, y, w, h) where the record has one.
    """
    if train and aug is not None and hasattr(aug, "crop_params"):  # the hook of the other augmentation sets
        return aug.crop_params(image_width, joints, vis, center, scale, input_hw, flip_pairs=flip_pairs,
                               upper_ids=upper_ids, rng=rng if rng is not None else np.random.default_rng(),
                               affine=affine, box=box, image_height=image_height)
    aug = aug or AugmentConfig()
    h_in, w_in = input_hw
    joints = np.asarray(joints, dtype=np.float32).copy()
    vis = np.asarray(vis, dtype=np.float32).copy()
    center = np.asarray(center, dtype=np.float32).copy()
    scale = np.asarray(scale, dtype=np.float32).copy()
    rotation, flipped = 0.0, False
    pre = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    if train:
        rng = rng if rng is not None else np.random.default_rng()
        if rng.random() <= aug.flip_prob:
            flipped = True
            pre = horizontal_flip_matrix(image_width)
            joints, vis = flip_joints(joints, vis, image_width, flip_pairs)
            center[0] = image_width - center[0] - 1
        if (aug.half_body_prob > 0 and vis.sum() > aug.half_body_min_joints
                and rng.random() < aug.half_body_prob):
            hb = half_body_box(joints, vis, set(upper_ids), w_in / h_in, rng)
            if hb is not None:
                center, scale = hb
        s, rotation = random_scale_rotation(rng, aug.scale_factor, aug.rot_factor, aug.rot_prob)
        scale = scale * s
    m = crop_matrix(affine, center, scale, rotation, (w_in, h_in))
    out_joints = apply_affine(joints, m).astype(np.float32)
    out_joints[vis <= 0] = 0.0
    return CropResult(None, out_joints, (vis > 0).astype(np.float32), center, scale.astype(np.float32),
                      rotation, flipped, compose(m, pre))


def topdown_crop(image: np.ndarray, joints: np.ndarray, vis: np.ndarray, center: np.ndarray,
                 scale: np.ndarray, input_hw: tuple[int, int], *, train: bool, flip_pairs,
                 upper_ids=(), aug: AugmentConfig | None = None,
                 rng: np.random.Generator | None = None, affine: str = "msra", box=None) -> CropResult:
    """The reference top-down pipeline on an (H, W, 3) uint8 image: :func:`crop_params`, then the
    crop warped with :func:`warp_image` (``cv2.warpAffine``), then (training, an ``aug`` with a
    ``photometric`` step) its pixel augmentation, from the same generator."""
    crop = crop_params(image.shape[1], joints, vis, center, scale, input_hw, train=train, flip_pairs=flip_pairs,
                       upper_ids=upper_ids, aug=aug, rng=rng, affine=affine, box=box, image_height=image.shape[0])
    crop.image = warp_image(image, crop.matrix, (input_hw[1], input_hw[0]))
    if train and rng is not None and hasattr(aug, "photometric"):
        crop.image = aug.photometric(crop.image, rng)
    return crop
