"""Training augmentation sets by name (a recipe's ``augment``): ``msra``, the papers' (each dataset's own
:class:`~hrbench.data.transforms.AugmentConfig`), and ``rtmpose``, RTMPose's two-stage pipeline.

``rtmpose`` (mmpose 1.x ``projects/rtmpose/rtmpose/body_2d_keypoint/rtmpose-t_8xb256-420e_coco-256x192.py``
lines 119-182; the same in -s, -m and the MPII config), written here:

* geometry, before the warp: ``GetBBoxCenterScale`` (padding 1.25, from the annotation box clipped as
  mmpose 1.x's COCO loader does: ``x1 = clip(x, 0, W - 1)``, ``x2 = clip(x + w, 0, W - 1)``,
  ``base_coco_style_dataset.py`` lines 285-290; no load-time centre jitter), ``RandomFlip`` (p 0.5),
  ``RandomHalfBody`` (``common_transforms.py`` lines 264-417: at least 9 visible joints, p 0.3, the upper
  body preferred with p 0.7, at least 2 upper / 3 lower joints, box padding 1.5), ``RandomBBoxTransform``
  (lines 436-551: truncated-normal draws on [-1, 1]; shift ``0.16 x`` the box size with p 0.3, scale
  ``mu + sigma x v`` for the range [0.6, 1.4] with p 1, rotation ``80 x v`` degrees with p 0.6), then
  ``TopdownAffine``'s aspect-ratio fix;
* photometric, on the warped crop (:mod:`hrbench.data.photometric`): ``YOLOXHSVRandomAug``, then
  albumentations ``Blur`` p 0.1, ``MedianBlur`` p 0.1, ``CoarseDropout`` (one hole, 0.2-0.4 of the crop) p 1.0;
* stage 2 (``train_pipeline_stage2``, lines 153-182, from epoch ``max_epochs - stage2_num_epochs``: mmdet's
  ``PipelineSwitchHook`` switches when the 0-based epoch reaches it): shift 0, scale [0.75, 1.25],
  rotation 60, ``CoarseDropout`` p 0.5.

The reference draws with numpy's / Python's global generators; hrbench draws the same distributions from
the sample's own generator, so an augmentation is reproducible per sample. Datasets without annotation
boxes (MPII) start from the record's centre and scale.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from hrbench.data import photometric as P
from hrbench.data.transforms import (
    PIXEL_STD,
    CropResult,
    apply_affine,
    compose,
    crop_matrix,
    flip_joints,
    horizontal_flip_matrix,
)
from hrbench.errors import ConfigError


def truncated_normal(rng: np.random.Generator, size: int) -> np.ndarray:
    """``size`` standard-normal draws truncated to [-1, 1] (scipy's ``truncnorm(-1, 1)``), by rejection."""
    out = np.empty(size, dtype=np.float64)
    filled = 0
    while filled < size:
        v = rng.standard_normal(size - filled)
        v = v[np.abs(v) <= 1.0]
        out[filled:filled + len(v)] = v
        filled += len(v)
    return out.astype(np.float32)


@dataclasses.dataclass(frozen=True)
class RTMPoseAugment:
    """One stage of RTMPose's training augmentation (module docstring; defaults: stage 1)."""

    flip_prob: float = 0.5
    half_body_prob: float = 0.3
    half_body_min_total: int = 9
    half_body_min_upper: int = 2
    half_body_min_lower: int = 3
    half_body_upper_prob: float = 0.7
    half_body_padding: float = 1.5
    shift_factor: float = 0.16
    shift_prob: float = 0.3
    scale_range: tuple[float, float] = (0.6, 1.4)
    scale_prob: float = 1.0
    rotate_factor: float = 80.0
    rotate_prob: float = 0.6
    hsv_deltas: tuple[int, int, int] = P.HSV_DELTAS
    blur_prob: float = 0.1
    median_blur_prob: float = 0.1
    dropout_prob: float = 1.0
    dropout_range: tuple[float, float] = (0.2, 0.4)

    # ------------------------------------------------------------------ geometry
    def half_body(self, joints: np.ndarray, vis: np.ndarray, upper_ids: Sequence[int],
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
        """RandomHalfBody: (centre, size in pixels, unfixed aspect) of the chosen half, or None."""
        if vis.sum() < self.half_body_min_total or rng.random() > self.half_body_prob:
            return None
        upper = [i for i in range(len(vis)) if i in upper_ids and vis[i] > 0]
        lower = [i for i in range(len(vis)) if i not in upper_ids and vis[i] > 0]
        prefer_upper = rng.random() < self.half_body_upper_prob
        if len(upper) < self.half_body_min_upper and len(lower) < self.half_body_min_lower:
            return None
        if len(lower) < self.half_body_min_lower:
            ids = upper
        elif len(upper) < self.half_body_min_upper:
            ids = lower
        else:
            ids = upper if prefer_upper else lower
        pts = joints[ids].astype(np.float32)
        return pts.mean(axis=0), (pts.max(axis=0) - pts.min(axis=0)) * np.float32(self.half_body_padding)

    def box_transform(self, rng: np.random.Generator) -> tuple[np.ndarray, float, float]:
        """RandomBBoxTransform: (offset (2,) in box sizes, scale factor, rotation in degrees)."""
        v = truncated_normal(rng, 4)
        offset = v[:2] * np.float32(self.shift_factor)
        if not rng.random() < self.shift_prob:
            offset = np.zeros(2, dtype=np.float32)
        lo, hi = self.scale_range
        scale = float(v[2] * (hi - lo) * 0.5 + (hi + lo) * 0.5)
        if not rng.random() < self.scale_prob:
            scale = 1.0
        rotation = float(v[3] * self.rotate_factor)
        if not rng.random() < self.rotate_prob:
            rotation = 0.0
        return offset, scale, rotation

    def crop_params(self, image_width: int, joints: np.ndarray, vis: np.ndarray, center: np.ndarray,
                    scale: np.ndarray, input_hw: tuple[int, int], *, flip_pairs, upper_ids=(),
                    rng: np.random.Generator, affine: str = "msra", box: Sequence[float] | None = None,
                    image_height: int | None = None) -> CropResult:
        """The training crop of :func:`hrbench.data.transforms.crop_params` under this stage's geometry:
        ``box`` (the annotation's x, y, w, h, with ``image_height``) gives the start box; without it
        the record's ``center`` / ``scale`` (200-px units) do."""
        h_in, w_in = input_hw
        joints = np.asarray(joints, dtype=np.float32).copy()
        vis = np.asarray(vis, dtype=np.float32).copy()
        if box is not None and image_height is not None:
            x, y, w, h = (float(b) for b in box[:4])
            x1, x2 = np.clip([x, x + w], 0, image_width - 1)
            y1, y2 = np.clip([y, y + h], 0, image_height - 1)
            c = np.array([(x1 + x2) * 0.5, (y1 + y2) * 0.5], dtype=np.float32)
            size = np.array([x2 - x1, y2 - y1], dtype=np.float32) * np.float32(1.25)
        else:
            c = np.asarray(center, dtype=np.float32).copy()
            size = np.asarray(scale, dtype=np.float32) * np.float32(PIXEL_STD)
        pre, flipped = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), False
        if rng.random() < self.flip_prob:
            flipped = True
            pre = horizontal_flip_matrix(image_width)
            joints, vis = flip_joints(joints, vis, image_width, flip_pairs)
            c[0] = image_width - c[0] - 1  # mmpose 1.x ``flip_bbox`` (center format): w - x - 1
        hb = self.half_body(joints, vis, set(upper_ids), rng)
        if hb is not None:
            c, size = hb
        offset, s, rotation = self.box_transform(rng)
        c = (c + offset * size).astype(np.float32)
        size = (size * np.float32(s)).astype(np.float32)
        aspect = w_in / h_in  # TopdownAffine's ``_fix_aspect_ratio``
        if size[0] > size[1] * aspect:
            size = np.array([size[0], size[0] / aspect], dtype=np.float32)
        else:
            size = np.array([size[1] * aspect, size[1]], dtype=np.float32)
        scale200 = (size / np.float32(PIXEL_STD)).astype(np.float32)
        m = crop_matrix(affine, c, scale200, rotation, (w_in, h_in))
        out_joints = apply_affine(joints, m).astype(np.float32)
        out_joints[vis <= 0] = 0.0
        return CropResult(None, out_joints, (vis > 0).astype(np.float32), c, scale200, rotation, flipped,
                          compose(m, pre))

    # ------------------------------------------------------------------ pixels
    def photometric(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """HSV shift, then Blur, MedianBlur and CoarseDropout, each with its probability (module docstring)."""
        out = P.hsv_shift(image, P.draw_hsv_gains(rng, self.hsv_deltas))
        if rng.random() < self.blur_prob:
            out = P.box_blur(out, P.draw_kernel(rng))
        if rng.random() < self.median_blur_prob:
            out = P.median_blur(out, P.draw_kernel(rng))
        if rng.random() < self.dropout_prob:
            out = P.coarse_dropout(out, P.draw_hole(rng, out.shape[0], out.shape[1], self.dropout_range))
        return out


#: RTMPose's stage 1 (``train_pipeline``) and stage 2 (``train_pipeline_stage2``).
RTMPOSE_STAGE1 = RTMPoseAugment()
RTMPOSE_STAGE2 = dataclasses.replace(RTMPOSE_STAGE1, shift_factor=0.0, scale_range=(0.75, 1.25), rotate_factor=60.0,
                                     dropout_prob=0.5)

#: The augmentation sets by name: each maps the stage (1 or 2) to its augmentation; ``msra`` is each
#: dataset's own :class:`~hrbench.data.transforms.AugmentConfig` (None: the dataset keeps it).
AUGMENT_SETS: dict[str, dict[int, RTMPoseAugment | None]] = {
    "msra": {1: None, 2: None},
    "rtmpose": {1: RTMPOSE_STAGE1, 2: RTMPOSE_STAGE2},
}

#: Augmentation sets the device-side pipeline (``--gpu-aug``) cannot apply (it warps on the device and has
#: no photometric ops).
CPU_ONLY = ("rtmpose",)


def augment_sets() -> tuple[str, ...]:
    return tuple(AUGMENT_SETS)


def stage_of(epoch: int, stage2_begin: int | None) -> int:
    """The augmentation stage of 0-based ``epoch``: 2 from ``stage2_begin`` on (mmdet PipelineSwitchHook:
    ``epoch >= switch_epoch``), else 1."""
    return 2 if stage2_begin is not None and epoch >= stage2_begin else 1


def augmentation(name: str, epoch: int, stage2_begin: int | None) -> RTMPoseAugment | None:
    """The augmentation of set ``name`` at 0-based ``epoch`` (None: the dataset's own)."""
    return AUGMENT_SETS[name][stage_of(epoch, stage2_begin)]


def check_device_aug(name: str) -> None:
    """One-line :class:`ConfigError` when the device-side pipeline (``--gpu-aug``) cannot apply set ``name``."""
    if name in CPU_ONLY:
        raise ConfigError(f"--gpu-aug cannot apply the {name} augmentation (its HSV shift, blur, median blur and "
                          "coarse dropout run on the CPU crop only); train without --gpu-aug")
