"""The UDP codec (Huang et al., CVPR 2020; mmpose 0.16 ``use_udp=True``, GaussianHeatmap target):
hand-derived values of its crop affine, targets, decoding and flip test, then equality with the
reference functions re-derived here from mmpose v0.16.0 (``get_warp_matrix``,
``TopDownGenerateTarget._udp_generate_target``, ``post_dark_udp``, ``transform_preds(use_udp=True)``)
on identical inputs, and the registered HRNet-W32 + UDP variant."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from hrbench.codecs import MSRAHeatmap, UDPHeatmap, build_codec
from hrbench.data.transforms import affine_matrix, apply_affine, crop_matrix, crop_params, udp_affine_matrix
from hrbench.errors import ConfigError
from hrbench.evaluation.decode import decode_keypoints

# 256x192 input -> 64x48 heatmaps: UDP's stride between pixel centres is (191/47, 255/63)
IN_HW = (256, 192)
SX, SY = 191 / 47, 255 / 63


# ------------------------------------------------------------------------------ hand-derived values
def test_udp_affine_two_by_two():
    """A 2-px box centred at (10, 20) into a 2x2 crop: UDP puts its edges on pixel centres 0 and 1
    (scale (2 - 1) / 2 = 0.5), where the MSRA affine spans 0..2 (scale 1)."""
    scale = np.float32([0.01, 0.01])  # 2 px
    m = udp_affine_matrix((10.0, 20.0), scale, 0.0, (2, 2))
    np.testing.assert_allclose(m, [[0.5, 0.0, -4.5], [0.0, 0.5, -9.5]], atol=1e-6)
    np.testing.assert_allclose(apply_affine(np.array([[9.0, 19.0], [11.0, 21.0], [10.0, 20.0]]), m),
                               [[0, 0], [1, 1], [0.5, 0.5]], atol=1e-6)
    msra = affine_matrix((10.0, 20.0), scale, 0.0, (2, 2))
    np.testing.assert_allclose(apply_affine(np.array([[9.0, 19.0], [11.0, 21.0]]), msra), [[0, 0], [2, 2]], atol=1e-5)
    # 90 degrees: a point right of the centre lands below it (clockwise on screen, the reference's sense)
    m90 = udp_affine_matrix((10.0, 20.0), scale, 90.0, (2, 2))
    np.testing.assert_allclose(m90, [[0.0, -0.5, 10.5], [0.5, 0.0, -4.5]], atol=1e-6)
    np.testing.assert_allclose(apply_affine(np.array([11.0, 20.0]), m90), [0.5, 1.0], atol=1e-6)
    assert m.dtype == np.float64 and np.array_equal(m, m.astype(np.float32))  # float32 entries, as the reference


def test_udp_target_at_pixel_centre_and_between():
    """A joint on heatmap pixel (10, 20) -> peak 1.0 there, exp(-d²/8) around it (σ = 2), 0 beyond 6 px;
    a joint half-way between pixels 10 and 11 -> two equal values exp(-0.25/8) (MSRA: one peak 1.0)."""
    joints = np.array([[10 * SX, 20 * SY], [10.5 * SX, 20 * SY]])
    target, weight = UDPHeatmap().encode(joints, np.ones(2), IN_HW).values()
    assert target.shape == (2, 64, 48) and target.dtype == np.float32
    np.testing.assert_array_equal(weight, [[1.0], [1.0]])
    row = target[0, 20]
    assert row[10] == pytest.approx(1.0, abs=1e-6) and target[0].max() == row[10]
    for dx, value in ((1, math.exp(-1 / 8)), (2, math.exp(-4 / 8)), (6, math.exp(-36 / 8))):
        assert row[10 + dx] == pytest.approx(value, abs=1e-6) and row[10 - dx] == pytest.approx(value, abs=1e-6)
    assert row[17] == 0.0 and row[3] == 0.0
    assert target[0, 21, 12] == pytest.approx(math.exp(-5 / 8), abs=1e-6)
    half = target[1, 20]
    assert half[10] == pytest.approx(math.exp(-0.25 / 8), abs=1e-6) and half[11] == pytest.approx(half[10], abs=1e-6)
    msra = MSRAHeatmap().encode(np.array([[10.5 * 4, 80.0]]), np.ones(1), IN_HW)["target"][0]
    assert msra[20, 11] == 1.0  # the MSRA target rounds the joint to a pixel


def test_udp_target_weights():
    joints = np.array([[10 * SX, 20 * SY], [-40.0, 10.0], [50.0, 50.0]])  # 2nd: window wholly outside
    target, weight = UDPHeatmap().encode(joints, np.array([1.0, 1.0, 0.0]), IN_HW).values()
    np.testing.assert_array_equal(weight[:, 0], [1.0, 0.0, 0.0])
    assert target[1].max() == 0.0 and target[2].max() == 0.0


def test_udp_decode_known_peak_and_image_coordinate():
    """A symmetric peak on pixel (10, 20) decodes to exactly (10, 20) (zero gradient); the frame is
    (W - 1, H - 1), so the box (centre (100, 200), 191 x 255 px) gives x = 10·191/47 + 100 - 95.5."""
    hm = np.zeros((1, 1, 64, 48), np.float32)
    yy, xx = np.mgrid[0:64, 0:48]
    hm[0, 0] = np.exp(-((xx - 10) ** 2 + (yy - 20) ** 2) / 8)
    dec = UDPHeatmap().decode(hm)
    np.testing.assert_allclose(dec.coords[0, 0], [10.0, 20.0], atol=1e-6)
    assert dec.frame_wh == (47.0, 63.0) and dec.scores[0, 0, 0] == pytest.approx(1.0)
    xy, conf = decode_keypoints(UDPHeatmap(), hm, np.array([[100.0, 200.0]]), np.array([[191 / 200, 255 / 200]]))
    np.testing.assert_allclose(xy[0, 0], [10 * SX + 100 - 95.5, 20 * SY + 200 - 127.5], atol=1e-4)
    # a sub-pixel joint encoded by the codec is recovered by its decoding to ~1e-4 px
    target = UDPHeatmap().encode(np.array([[10.3 * SX, 20.6 * SY]]), np.ones(1), IN_HW)["target"]
    np.testing.assert_allclose(UDPHeatmap().decode(target[None]).coords[0, 0], [10.3, 20.6], atol=1e-3)
    np.testing.assert_array_equal(UDPHeatmap().decode(hm, "none").coords[0, 0], [10.0, 20.0])
    with pytest.raises(ConfigError, match="no post-processing 'dark'"):
        UDPHeatmap().decode(hm, "dark")


def test_udp_flip_has_no_shift():
    """Mirror + swap only: a hot pixel at x = 1 of channel 0 (W = 4) comes back at x = 2 of channel 1;
    the MSRA flip test shifts it one more pixel right (x = 3)."""
    flipped = torch.zeros(1, 2, 3, 4)
    flipped[0, 0, 1, 1] = 1.0
    back = UDPHeatmap().flip_back(flipped, [[0, 1]])
    assert back[0, 1, 1, 2] == 1.0 and back.sum() == 1.0
    assert MSRAHeatmap().flip_back(flipped, [[0, 1]])[0, 1, 1, 3] == 1.0
    merged = UDPHeatmap().merge_flip(torch.zeros(1, 2, 3, 4), flipped, [[0, 1]])
    assert merged[0, 1, 1, 2] == 0.5


def test_udp_round_trip_image_to_image():
    """Image point -> UDP crop (rotation 0) -> target -> decode -> image: the same point."""
    center, scale = np.array([300.0, 250.0]), np.array([1.2, 1.6])
    point = np.array([[280.3, 301.7]])
    crop = crop_params(640, point, np.ones(1), center, scale, IN_HW, train=False, flip_pairs=[], affine="udp")
    target = UDPHeatmap().encode(crop.joints, crop.vis, IN_HW)["target"]
    xy, _ = decode_keypoints(UDPHeatmap(), target[None], center[None], scale[None])
    np.testing.assert_allclose(xy[0], point, atol=2e-3)


# ------------------------------------------------------------------------------ the reference, re-derived
def ref_get_warp_matrix(theta, size_input, size_dst, size_target):
    """mmpose v0.16.0 post_transforms.get_warp_matrix (float32 matrix). Its scalar arithmetic ran in
    float64 under NumPy 1.x (a float32 scalar times a Python float was float64), hence the casts."""
    size_input, size_target = [float(v) for v in size_input], [float(v) for v in size_target]
    theta = np.deg2rad(theta)
    m = np.zeros((2, 3), dtype=np.float32)
    sx, sy = size_dst[0] / size_target[0], size_dst[1] / size_target[1]
    m[0, 0], m[0, 1] = math.cos(theta) * sx, -math.sin(theta) * sx
    m[0, 2] = sx * (-0.5 * size_input[0] * math.cos(theta) + 0.5 * size_input[1] * math.sin(theta)
                    + 0.5 * size_target[0])
    m[1, 0], m[1, 1] = math.sin(theta) * sy, math.cos(theta) * sy
    m[1, 2] = sy * (-0.5 * size_input[0] * math.sin(theta) - 0.5 * size_input[1] * math.cos(theta)
                    + 0.5 * size_target[1])
    return m


def ref_udp_target(joints, vis, image_size, heatmap_size, sigma):
    """mmpose v0.16.0 TopDownGenerateTarget._udp_generate_target, GaussianHeatmap (sizes as [w, h])."""
    k = len(joints)
    weight = np.ones((k, 1), np.float32)
    weight[:, 0] = vis
    target = np.zeros((k, heatmap_size[1], heatmap_size[0]), np.float32)
    tmp = sigma * 3
    size = 2 * tmp + 1
    x = np.arange(0, size, 1, np.float32)
    y = x[:, None]
    stride = (image_size - 1.0) / (heatmap_size - 1.0)
    for j in range(k):
        mu_x, mu_y = int(joints[j][0] / stride[0] + 0.5), int(joints[j][1] / stride[1] + 0.5)
        ul, br = [int(mu_x - tmp), int(mu_y - tmp)], [int(mu_x + tmp + 1), int(mu_y + tmp + 1)]
        if ul[0] >= heatmap_size[0] or ul[1] >= heatmap_size[1] or br[0] < 0 or br[1] < 0:
            weight[j] = 0
            continue
        x0 = y0 = size // 2
        x0 += joints[j][0] / stride[0] - mu_x
        y0 += joints[j][1] / stride[1] - mu_y
        g = np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * sigma ** 2))
        gx = max(0, -ul[0]), min(br[0], heatmap_size[0]) - ul[0]
        gy = max(0, -ul[1]), min(br[1], heatmap_size[1]) - ul[1]
        ix = max(0, ul[0]), min(br[0], heatmap_size[0])
        iy = max(0, ul[1]), min(br[1], heatmap_size[1])
        if weight[j] > 0.5:
            target[j][iy[0]:iy[1], ix[0]:ix[1]] = g[gy[0]:gy[1], gx[0]:gx[1]]
    return target, weight


def ref_post_dark_udp(coords, heatmaps, kernel=11):
    """mmpose v0.16.0 top_down_eval.post_dark_udp (flattened reflect-padded log-maps)."""
    heatmaps = heatmaps.copy()
    b, k, h, w = heatmaps.shape
    n = coords.shape[0]
    for maps in heatmaps:
        for m in maps:
            cv2.GaussianBlur(m, (kernel, kernel), 0, m)
    np.clip(heatmaps, 0.001, 50, heatmaps)
    np.log(heatmaps, heatmaps)
    hm = np.transpose(heatmaps, (2, 3, 0, 1)).reshape(h, w, -1)
    pad = cv2.copyMakeBorder(hm, 1, 1, 1, 1, borderType=cv2.BORDER_REFLECT)
    pad = np.transpose(pad.reshape(h + 2, w + 2, b, k), (2, 3, 0, 1)).flatten()
    index = coords[..., 0] + 1 + (coords[..., 1] + 1) * (w + 2)
    index += (w + 2) * (h + 2) * np.arange(0, b * k).reshape(-1, k)
    index = index.astype(int).reshape(-1, 1)
    i_, ix1, iy1, ix1y1 = pad[index], pad[index + 1], pad[index + w + 2], pad[index + w + 3]
    ix1_y1_, ix1_, iy1_ = pad[index - w - 3], pad[index - 1], pad[index - 2 - w]
    d = np.concatenate([0.5 * (ix1 - ix1_), 0.5 * (iy1 - iy1_)], axis=1).reshape(n, k, 2, 1)
    dxx, dyy = ix1 - 2 * i_ + ix1_, iy1 - 2 * i_ + iy1_
    dxy = 0.5 * (ix1y1 - ix1 - iy1 + i_ + i_ - ix1_ - iy1_ + ix1_y1_)
    hess = np.concatenate([dxx, dxy, dxy, dyy], axis=1).reshape(n, k, 2, 2)
    hess = np.linalg.inv(hess + np.finfo(np.float32).eps * np.eye(2))
    coords -= np.einsum("ijmn,ijnk->ijmk", hess, d).squeeze()
    return coords


def ref_transform_preds_udp(coords, center, scale, output_size):
    s = scale * 200.0
    sx, sy = s[0] / (output_size[0] - 1.0), s[1] / (output_size[1] - 1.0)
    return np.stack([coords[:, 0] * sx + center[0] - s[0] * 0.5, coords[:, 1] * sy + center[1] - s[1] * 0.5], 1)


def test_affine_equals_reference():
    rng = np.random.default_rng(0)
    for _ in range(20):
        c = rng.uniform(50, 500, 2).astype(np.float32)
        s = rng.uniform(0.3, 3.0, 2).astype(np.float32)
        r = float(rng.uniform(-80, 80))
        ref = ref_get_warp_matrix(r, c * 2.0, np.array([192, 256]) - 1.0, s * 200.0)
        np.testing.assert_array_equal(crop_matrix("udp", c, s, r, (192, 256)), ref.astype(np.float64))
    np.testing.assert_array_equal(crop_matrix("msra", c, s, r, (192, 256)), affine_matrix(c, s, r, (192, 256)))
    with pytest.raises(ValueError, match="unknown crop affine"):
        crop_matrix("megvii", c, s, r, (192, 256))


def test_targets_equal_reference_per_sample_and_batched():
    rng = np.random.default_rng(1)
    joints = rng.uniform(-40, 300, (4, 17, 2)).astype(np.float32)  # some far outside the crop
    vis = (rng.random((4, 17)) > 0.2).astype(np.float32)
    codec = UDPHeatmap()
    batch = codec.encode_batch(torch.from_numpy(joints), torch.from_numpy(vis), IN_HW)
    for b in range(4):
        ref_t, ref_w = ref_udp_target(joints[b], vis[b], np.array([192, 256]), np.array([48, 64]), 2)
        got = codec.encode(joints[b], vis[b], IN_HW)
        np.testing.assert_allclose(got["target"], ref_t, atol=1e-6)
        np.testing.assert_array_equal(got["target_weight"], ref_w)
        np.testing.assert_allclose(batch["target"][b].numpy(), ref_t, atol=1e-6)
        np.testing.assert_array_equal(batch["target_weight"][b].numpy(), ref_w)
    assert 0 < batch["target_weight"].sum() < batch["target_weight"].numel()


def test_decoding_equals_reference():
    """Blurred random blobs (positive peaks) decoded by the codec and by the reference pipeline
    (argmax, post_dark_udp, transform_preds(use_udp=True))."""
    rng = np.random.default_rng(2)
    n, k = 3, 17
    hm = rng.random((n, k, 64, 48)).astype(np.float32) * 0.05
    yy, xx = np.mgrid[0:64, 0:48]
    for i in range(n):
        for j in range(k):
            cx, cy = rng.uniform(-1, 48), rng.uniform(-1, 64)  # peaks on the border too
            hm[i, j] += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 8).astype(np.float32)
    centers, scales = rng.uniform(100, 400, (n, 2)), rng.uniform(0.5, 2.0, (n, 2))
    flat = hm.reshape(n, k, -1)
    idx = flat.argmax(2)
    preds = np.stack([idx % 48, idx // 48], -1).astype(np.float32)
    ref = ref_post_dark_udp(preds, hm, 11)
    ref_img = np.stack([ref_transform_preds_udp(ref[i], centers[i], scales[i], [48, 64]) for i in range(n)])
    dec = UDPHeatmap().decode(torch.from_numpy(hm))
    np.testing.assert_allclose(dec.coords, ref, atol=1e-4)
    xy, conf = decode_keypoints(UDPHeatmap(), hm, centers, scales)
    np.testing.assert_allclose(xy, ref_img, atol=2e-3)
    np.testing.assert_array_equal(conf[..., 0], flat.max(2))


# ------------------------------------------------------------------------------ registry
def test_hrnet_w32_udp_variant():
    import hrbench
    from hrbench.complexity.measure import measure

    model = hrbench.create_model("hrnet_w32_udp", num_keypoints=17)
    assert isinstance(model.codec, UDPHeatmap) and model.codec.affine == "udp"
    assert isinstance(hrbench.create_model("hrnet_w32", num_keypoints=17).codec, MSRAHeatmap)
    assert build_codec("udp") == UDPHeatmap()
    with pytest.raises(ConfigError, match="codec"):
        hrbench.create_config("hrnet_w32", codec="udpp")
    # the network is HRNet-W32's: 28,536,113 params, get_model_summary 7.120 / 16.020 GFLOPs
    for hw, gflops in (((256, 192), 7.120), ((384, 288), 16.020)):
        r = measure("hrnet_w32_udp", hw, 17, engines=("paper",))
        assert r.params == 28_536_113
        assert r.paper_mflops / 1024 == pytest.approx(gflops, abs=5e-4)
