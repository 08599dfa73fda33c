"""RTMPose's augmentation set: the photometric ops on hand-derived pixels, the geometry's draws and bounds, and
the two stages on a real synthetic dataset (reproducible per sample)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hrbench.data import photometric as P
from hrbench.data.augment import RTMPOSE_STAGE1, RTMPOSE_STAGE2, augmentation, stage_of, truncated_normal
from hrbench.data.synth import generate
from hrbench.engine.api import build_split


def _img(value, h=9, w=9) -> np.ndarray:
    return np.full((h, w, 3), value, dtype=np.uint8)


def test_hsv_shift_of_known_pixels():
    # OpenCV 8-bit HSV: pure green is H 60 (120 deg), S 255, V 255; H + 30 -> 90 (180 deg) is cyan
    assert (P.hsv_shift(_img((0, 255, 0)), np.array([30, 0, 0])) == (0, 255, 255)).all()
    # value - 30 on pure red: V 255 -> 225, hue and saturation kept: (225, 0, 0)
    assert (P.hsv_shift(_img((255, 0, 0)), np.array([0, 0, -30])) == (225, 0, 0)).all()
    # saturation + 30 on grey 128 (S 0, hue 0 = red): R = V = 128, G = B = 128 (1 - 30 / 255) = 112.9 -> 113
    assert (P.hsv_shift(_img((128, 128, 128)), np.array([0, 30, 0])) == (128, 113, 113)).all()
    # value is clipped at 255; hue wraps modulo 180: red (H 0) - 60 -> 120 (240 deg) = blue
    assert (P.hsv_shift(_img((255, 255, 255)), np.array([0, 0, 30])) == 255).all()
    assert (P.hsv_shift(_img((255, 0, 0)), np.array([-60, 0, 0])) == (0, 0, 255)).all()


def test_hsv_gains_are_truncated_and_each_kept_half_the_time():
    rng = np.random.default_rng(0)
    g = np.stack([P.draw_hsv_gains(rng) for _ in range(4000)])
    assert g.dtype == np.int16
    # U(-1, 1) x 5 truncated toward zero never reaches 5; x 30 never 30
    assert np.abs(g[:, 0]).max() == 4 and np.abs(g[:, 1:]).max() == 29
    # zero when the keep-draw is 0 (p 1/2) or |U x delta| < 1: hue 1/2 + 1/2 x 1/5 = 0.6, sat/value 1/2 + 1/60
    zero = (g == 0).mean(axis=0)
    assert abs(zero[0] - 0.6) < 0.03 and abs(zero[1] - (0.5 + 1 / 60)) < 0.03 and abs(zero[2] - (0.5 + 1 / 60)) < 0.03


def test_blurs_of_a_delta():
    img = _img(0, 11, 11)
    img[5, 5] = 90
    out = P.box_blur(img, 3)  # the delta spread evenly over the 3x3 window: 90 / 9
    assert (out[4:7, 4:7] == 10).all() and out.sum() == 9 * 10 * 3
    img[5, 5] = 250
    out = P.box_blur(img, 5)
    assert (out[3:8, 3:8] == 10).all() and out.sum() == 25 * 10 * 3
    assert (P.median_blur(img, 3) == 0).all()  # a lone pixel is never the median of its window
    block = _img(0, 11, 11)
    block[4:7, 4:7] = 200
    med = P.median_blur(block, 3)
    assert (med[5, 5] == 200).all() and (med[4, 4] == 0).all()  # centre: 9 of 9 bright; corner: 4 of 9
    assert (med[4, 5] == 200).all()  # edge middle: 6 of 9 bright
    kernels = {P.draw_kernel(np.random.default_rng(s)) for s in range(60)}
    assert kernels == {3, 5, 7}


def test_coarse_dropout_hole_size_and_position_bounds():
    rng = np.random.default_rng(1)
    h, w = 64, 48
    sizes = set()
    for _ in range(2000):
        x1, y1, x2, y2 = P.draw_hole(rng, h, w)
        hh, hw = y2 - y1, x2 - x1
        # int(64 x [0.2, 0.4)) = 12..25, int(48 x [0.2, 0.4)) = 9..19
        assert 12 <= hh <= 25 and 9 <= hw <= 19 and x1 >= 0 and y1 >= 0 and x2 <= w and y2 <= h
        sizes.add((hh, hw))
    assert min(s[0] for s in sizes) == 12 and max(s[0] for s in sizes) == 25
    img = _img(77, h, w)
    out = P.coarse_dropout(img, (3, 5, 13, 25))
    assert (out[5:25, 3:13] == 0).all() and (out == 0).sum() == 20 * 10 * 3 and (img == 77).all()


def test_box_transform_ranges_per_stage():
    rng = np.random.default_rng(2)
    v = truncated_normal(rng, 20000)
    # the sd of N(0, 1) truncated to [-1, 1]: sqrt(1 - 2 phi(1) / (2 Phi(1) - 1)) = 0.5396
    assert np.abs(v).max() <= 1 and abs(v.std() - 0.5396) < 0.01
    for stage, (lo, hi), rot in ((RTMPOSE_STAGE1, (0.6, 1.4), 80), (RTMPOSE_STAGE2, (0.75, 1.25), 60)):
        draws = [stage.box_transform(rng) for _ in range(3000)]
        shift = np.array([d[0] for d in draws])
        scale = np.array([d[1] for d in draws])
        angle = np.array([d[2] for d in draws])
        assert scale.min() >= lo - 1e-6 and scale.max() <= hi + 1e-6
        assert np.abs(angle).max() <= rot + 1e-4 and abs((angle == 0).mean() - 0.4) < 0.03  # rotated with p 0.6
        if stage is RTMPOSE_STAGE1:
            assert np.abs(shift).max() <= 0.16 + 1e-6 and abs((np.abs(shift).sum(1) > 0).mean() - 0.3) < 0.03
        else:
            assert (shift == 0).all()
    assert RTMPOSE_STAGE1.dropout_prob == 1.0 and RTMPOSE_STAGE2.dropout_prob == 0.5


def test_crop_from_the_annotation_box_and_half_body():
    still = dataclasses.replace(RTMPOSE_STAGE1, flip_prob=0, half_body_prob=0, shift_prob=0, scale_prob=0,
                                rotate_prob=0)
    joints, vis = np.zeros((17, 2), np.float32), np.zeros(17, np.float32)
    rng = np.random.default_rng(0)
    # box (10, 20, 100, 50) in a 640x480 image: centre (60, 45), padded 125 x 62.5, widened to w/h = 192/256:
    # 125 x 166.67 px, i.e. scale (0.625, 0.8333) in 200-px units
    c = still.crop_params(640, joints, vis, np.zeros(2), np.ones(2), (256, 192), flip_pairs=[], rng=rng,
                          box=(10, 20, 100, 50), image_height=480)
    assert np.allclose(c.center, (60, 45)) and np.allclose(c.scale, (0.625, 125 / 0.75 / 200))
    # a box past the image is clipped as mmpose 1.x: x2 = clip(x + w, 0, W - 1)
    c = still.crop_params(640, joints, vis, np.zeros(2), np.ones(2), (256, 192), flip_pairs=[], rng=rng,
                          box=(600, 0, 100, 100), image_height=480)
    assert np.allclose(c.center, ((600 + 639) / 2, 50))
    # half body forced on, the upper body preferred: centre = mean of the upper joints, size = extent x 1.5
    upper = dataclasses.replace(still, half_body_prob=1.0, half_body_upper_prob=1.0)
    joints = np.array([[100 + 10 * k, 50 + 20 * k] for k in range(17)], np.float32)
    c = upper.crop_params(640, joints, np.ones(17, np.float32), np.zeros(2), np.ones(2), (256, 192), flip_pairs=[],
                          upper_ids=range(11), rng=rng, box=(0, 0, 300, 400), image_height=480)
    # upper joints 0..10: x 100..200, y 50..250; mean (150, 150); 150 x 300 px, aspect-fixed to 225 x 300
    assert np.allclose(c.center, (150, 150)) and np.allclose(c.scale, (225 / 200, 300 / 200))


def test_stages_switch_and_are_reproducible_on_a_dataset(tmp_path):
    assert [stage_of(e, 3) for e in range(5)] == [1, 1, 1, 2, 2] and stage_of(100, None) == 1
    assert augmentation("rtmpose", 2, 3) is RTMPOSE_STAGE1 and augmentation("rtmpose", 3, 3) is RTMPOSE_STAGE2
    assert augmentation("msra", 5, None) is None
    generate("coco", tmp_path / "c", 4, 2, seed=3)
    ds = build_split("coco", tmp_path / "c", "train", (64, 48), train=True)
    base = []
    for aug in (None, RTMPOSE_STAGE1, RTMPOSE_STAGE1):
        if aug is not None:
            ds.aug = aug
        ds.reseed(11)
        base.append(ds[0]["image"].numpy())
    assert np.array_equal(base[1], base[2]) and not np.array_equal(base[0], base[1])
    ds.reseed(11)
    first = ds[0]["image"].numpy()
    ds.reseed(12)
    assert not np.array_equal(first, ds[0]["image"].numpy())


@pytest.mark.parametrize("name", ["rtmpose"])
def test_gpu_aug_refuses_the_cpu_only_set(name):
    from hrbench.engine import TrainOptions, resolve_config
    from hrbench.errors import ConfigError

    with pytest.raises(ConfigError, match=f"--gpu-aug cannot apply the {name} augmentation"):
        resolve_config(TrainOptions("lite18", None, gpu_aug=True, train_overrides={"augment": name}), world_size=1)
