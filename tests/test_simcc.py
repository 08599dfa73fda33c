"""The SimCC codec of RTMPose (mmpose 1.x ``SimCCLabel(sigma=(4.9, 5.66), simcc_split_ratio=2.0,
normalize=False)``, ``get_simcc_maximum``, ``flip_vectors``, ``KLDiscretLoss(beta=10, label_softmax=True)``)
against values derived by hand from those definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hrbench.codecs import build_codec
from hrbench.codecs.simcc import SimCC
from hrbench.data.transforms import affine_matrix, apply_affine
from hrbench.evaluation.decode import decode_keypoints

IN_HW = (256, 192)  # -> 384 x bins, 512 y bins
SX, SY = 4.9, 5.66


def g(d: float, sigma: float) -> float:
    return math.exp(-d * d / (2 * sigma * sigma))


def test_targets_peak_values_and_rounding():
    """Joint (10.2, 20.3) px -> bins (20.4, 40.6) -> centres 20, 41; unnormalised Gaussian over the whole
    vector (no 3-sigma truncation); 10.25 -> 20.5 rounds half to even (20), 10.75 -> 21.5 -> 22."""
    joints = np.array([[10.2, 20.3], [10.25, 20.0], [10.75, 20.0]])
    t = SimCC().encode(joints, np.array([2.0, 1.0, 1.0]), IN_HW)
    tx, ty, w = t["target_x"], t["target_y"], t["target_weight"]
    assert tx.shape == (3, 384) and ty.shape == (3, 512) and tx.dtype == np.float32
    np.testing.assert_array_equal(w, [1.0, 1.0, 1.0])  # min(1, v): COCO v = 2 weighs 1
    assert tx[0].argmax() == 20 and tx[0, 20] == 1.0 and ty[0].argmax() == 41 and ty[0, 41] == 1.0
    for d in (1, 3, 15, 60):
        assert tx[0, 20 + d] == pytest.approx(g(d, SX), rel=1e-6, abs=1e-30)
        assert ty[0, 41 + d] == pytest.approx(g(d, SY), rel=1e-6, abs=1e-30)
        assert ty[0, 41 - min(d, 41)] == pytest.approx(g(min(d, 41), SY), rel=1e-6, abs=1e-30)
    assert tx[0, 40] == pytest.approx(g(20, SX), rel=1e-5) and tx[0, 40] > 0  # beyond 3 sigma: not cut
    assert tx[1].argmax() == 20 and tx[2].argmax() == 22


def test_targets_outside_the_frame_and_invisible():
    """The 3-sigma window [mu - 14.7, mu + 15.7] decides: x = -8 px (mu -16, window right end -0.3) gets
    weight 0 and zero vectors; x = -7 px (mu -14, right end 1.7) keeps weight 1, bin 0 = g(14);
    x past the right edge likewise; an invisible joint: zero vectors, weight 0."""
    joints = np.array([[-8.0, 50.0], [-7.0, 50.0], [199.5, 50.0], [199.0, 50.0], [50.0, 50.0]])
    t = SimCC().encode(joints, np.array([1.0, 1.0, 1.0, 1.0, 0.0]), IN_HW)
    np.testing.assert_array_equal(t["target_weight"], [0.0, 1.0, 0.0, 1.0, 0.0])
    for i in (0, 2, 4):
        assert not t["target_x"][i].any() and not t["target_y"][i].any()
    assert t["target_x"][1, 0] == pytest.approx(g(14, SX), rel=1e-6)
    # 199 px -> bin 398, window left end 383.3 < 384: kept; 199.5 -> 399 (odd: 399), left end 384.3: dropped
    assert t["target_x"][3, 383] == pytest.approx(g(15, SX), rel=1e-6)
    assert t["target_y"][1, 100] == 1.0  # the y vector of a kept joint is whole


def test_encode_batch_equals_stacked_encode():
    rng = np.random.default_rng(0)
    joints = rng.uniform(-20, 220, size=(3, 17, 2))
    vis = rng.integers(0, 3, size=(3, 17)).astype(np.float32)
    c = SimCC()
    batch = c.encode_batch(torch.from_numpy(joints), torch.from_numpy(vis), IN_HW)
    for key in c.target_keys:
        ref = np.stack([c.encode(joints[i], vis[i], IN_HW)[key] for i in range(3)])
        np.testing.assert_allclose(batch[key].numpy(), ref, rtol=1e-6, atol=1e-7)


def test_decode_argmax_confidence_and_frame():
    """x peak 0.8 at bin 101, y peak 0.6 at bin 50 -> (50.5, 25.0) px, score min = 0.6; a joint whose
    best value is <= 0 -> location -1 bin = -0.5 px, score its (negative) maximum."""
    px = np.full((1, 2, 384), -1.0, dtype=np.float32)
    py = np.full((1, 2, 512), -1.0, dtype=np.float32)
    px[0, 0, 101], py[0, 0, 50] = 0.8, 0.6
    px[0, 1, 7], py[0, 1, 9] = -0.2, 0.9
    d = SimCC().decode((torch.from_numpy(px), torch.from_numpy(py)))
    np.testing.assert_allclose(d.coords, [[[50.5, 25.0], [-0.5, -0.5]]])
    np.testing.assert_allclose(d.scores, [[[0.6], [-0.2]]], rtol=1e-6)
    assert d.frame_wh == (192.0, 256.0) and d.scores.shape == (1, 2, 1)


def test_decode_maps_back_to_the_image():
    """A joint at a known image point, cropped with the MSRA affine, encoded, decoded from its own target
    and mapped back: the image point to within half a bin (the crop's bins are 0.5 px)."""
    center, scale = np.array([300.0, 200.0]), np.array([1.2, 1.6])  # box 240 x 320 px -> 192 x 256 crop
    m = affine_matrix(center, scale, 0.0, (192, 256))
    image_pts = np.array([[250.0, 130.0], [333.3, 290.1]])
    crop_pts = apply_affine(image_pts, m)
    c = SimCC()
    t = c.encode(crop_pts, np.ones(2), IN_HW)
    out = (torch.from_numpy(t["target_x"][None]), torch.from_numpy(t["target_y"][None]))
    kps, scores = decode_keypoints(c, out, center[None], scale[None])
    # rounding to a bin moves a joint by at most half a bin = 0.25 crop px = 0.25 x 1.25 image px
    np.testing.assert_allclose(kps[0], image_pts, atol=0.25 * 1.25 + 1e-4)
    np.testing.assert_allclose(scores[0, :, 0], [1.0, 1.0])


def test_flip_back_mirrors_x_swaps_pairs_no_shift():
    px = torch.arange(1.0, 13.0).reshape(1, 3, 4)
    py = torch.arange(1.0, 7.0).reshape(1, 3, 2)
    bx, by = SimCC().flip_back((px, py), [(1, 2)])
    assert bx.tolist() == [[[4, 3, 2, 1], [12, 11, 10, 9], [8, 7, 6, 5]]]
    assert by.tolist() == [[[1, 2], [5, 6], [3, 4]]]
    mx, my = SimCC().merge_flip((px, py), (px, py), [(1, 2)])
    assert mx[0, 0].tolist() == [2.5, 2.5, 2.5, 2.5] and my[0, 1].tolist() == [4.0, 5.0]


def _kl(p: list[float], q_logits: list[float]) -> float:
    """mean over bins of p_i (log p_i - log softmax(q)_i)."""
    lse = math.log(sum(math.exp(v) for v in q_logits))
    return sum(pi * (math.log(pi) - (qi - lse)) for pi, qi in zip(p, q_logits, strict=True)) / len(p)


def _softmax(v: list[float]) -> list[float]:
    e = [math.exp(x) for x in v]
    return [x / sum(e) for x in e]


def test_kl_discret_loss_by_hand():
    """2 x bins, 3 y bins, beta = label_beta = 10: labels softmax(10 t), predictions log_softmax(10 p);
    per sample sum_k w_k (KL_x + KL_y) / K; the batch loss is the per-sample mean."""
    pred_x = torch.tensor([[[0.0, 0.1], [0.3, 0.0]]])
    pred_y = torch.tensor([[[0.2, 0.0, -0.1], [0.0, 0.0, 0.0]]])
    tgt_x = torch.tensor([[[1.0, 0.0], [0.5, 1.0]]])
    tgt_y = torch.tensor([[[0.0, 1.0, 0.2], [1.0, 1.0, 1.0]]])
    weight = torch.tensor([[1.0, 0.5]])
    k0 = _kl(_softmax([10.0, 0.0]), [0.0, 1.0]) + _kl(_softmax([0.0, 10.0, 2.0]), [2.0, 0.0, -1.0])
    k1 = _kl(_softmax([5.0, 10.0]), [3.0, 0.0]) + _kl([1 / 3] * 3, [0.0, 0.0, 0.0])
    expected = (1.0 * k0 + 0.5 * k1) / 2
    c = SimCC()
    per = c.loss((pred_x, pred_y), tgt_x, tgt_y, weight, reduction="none")
    assert per.shape == (1,) and per.item() == pytest.approx(expected, rel=1e-5)
    two = c.loss((pred_x.repeat(2, 1, 1), pred_y.repeat(2, 1, 1)), tgt_x.repeat(2, 1, 1), tgt_y.repeat(2, 1, 1),
                 torch.tensor([[1.0, 0.5], [0.0, 0.0]]))
    assert two.item() == pytest.approx(expected / 2, rel=1e-5)  # mean of (expected, 0)


def test_registered_and_default_parameters():
    c = build_codec("simcc")
    assert isinstance(c, SimCC) and c.affine == "msra" and c.sigma == (4.9, 5.66) and c.split_ratio == 2.0
    assert (c.beta, c.label_beta, c.label_softmax) == (10.0, 10.0, True)
    assert c.target_keys == ("target_x", "target_y", "target_weight")
