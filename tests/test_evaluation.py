"""Decoding, flip test, OKS / OKS-NMS, COCOeval, PCKh and inference, against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from hrbench.data import build_dataset
from hrbench.data.mpii import MPII_GT_NAMES
from hrbench.data.synth import generate
from hrbench.data.transforms import affine_matrix, apply_affine
from hrbench.datasets.coco import COCO_SIGMAS
from hrbench.errors import DataError, one_line
from hrbench.evaluation import (
    coco_results,
    decode_heatmaps,
    evaluate,
    flip_back,
    flip_test,
    merge_flip,
    merge_predictions,
    oks_iou,
    oks_nms,
    pckh,
    predict,
    rescore,
    run_cocoeval,
    shift_right,
    transform_preds,
)

METRICS = ("AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL")


@pytest.fixture(scope="module")
def coco_val(tmp_path_factory):
    root = tmp_path_factory.mktemp("ev") / "coco"
    generate("coco", root, n_train=1, n_val=16, seed=11)
    return build_dataset("coco", root, "val", (256, 192), train=False)


@pytest.fixture(scope="module")
def mpii_val(tmp_path_factory):
    root = tmp_path_factory.mktemp("ev") / "mpii"
    generate("mpii", root, n_train=1, n_val=8, seed=11)
    return build_dataset("mpii", root, "val", (256, 256), train=False)


def gt_predictions(ds, conf: float = 1.0) -> dict:
    """The ground truth of ``ds`` in the predictions container."""
    recs = ds.records
    kp = np.stack([r["joints"] for r in recs]).astype(np.float32)
    kp[:, :, 2] = conf
    scale = np.stack([r["scale"] for r in recs])
    return {"keypoints": kp, "center": np.stack([r["center"] for r in recs]), "scale": scale,
            "area": np.prod(scale * 200, axis=1), "score": np.ones(len(recs), np.float32),
            "image_id": np.array([r["image_id"] for r in recs]), "bbox_id": np.arange(len(recs))}


# ------------------------------------------------------------------------------ decoding
def test_decode_argmax_quarter_offset_and_inverse_transform():
    hm = np.zeros((1, 3, 8, 10), np.float32)
    hm[0, 0, 3, 4] = 1.0
    hm[0, 0, 3, 5], hm[0, 0, 3, 3] = 0.6, 0.2  # right higher -> x + 0.25
    hm[0, 0, 2, 4], hm[0, 0, 4, 4] = 0.5, 0.1  # up higher -> y - 0.25
    hm[0, 1, 5, 1] = 0.7  # px = 1 is not interior: no offset
    hm[0, 1, 5, 2] = 0.3
    hm[0, 2] = -1.0  # no positive response: (-1, -1)
    xy, conf = decode_heatmaps(hm, np.array([[100.0, 50.0]]), np.array([[1.0, 0.8]]))
    # scale 200 x 160 px over a 10 x 8 map: 20 px per heatmap pixel, origin at centre - half size
    assert np.allclose(xy[0, 0], [4.25 * 20 + 100 - 100, 2.75 * 20 + 50 - 80])
    assert np.allclose(xy[0, 1], [1 * 20 + 0, 5 * 20 - 30])
    assert np.allclose(xy[0, 2], [-1 * 20 + 0, -1 * 20 - 30])
    assert np.allclose(conf[0, :, 0], [1.0, 0.7, -1.0])
    raw, _ = decode_heatmaps(hm, np.array([[100.0, 50.0]]), np.array([[1.0, 0.8]]), post_process="none")
    assert np.allclose(raw[0, 0], [4 * 20, 3 * 20 - 30])


def test_dark_recovers_subpixel_peak():
    ys, xs = np.mgrid[0:24, 0:32]
    hm = np.exp(-((xs - 12.3) ** 2 + (ys - 9.6) ** 2) / (2 * 2.0 ** 2))[None, None].astype(np.float32)
    center, scale = np.array([[16.0, 12.0]]), np.array([[32 / 200, 24 / 200]])  # identity map to pixels
    dark, _ = decode_heatmaps(hm, center, scale, post_process="dark")
    default, _ = decode_heatmaps(hm, center, scale, post_process="default")
    assert np.allclose(dark[0, 0], [12.3, 9.6], atol=0.02)
    assert np.allclose(default[0, 0], [12.25, 9.75])


def test_transform_preds_inverts_the_crop_affine_with_rotation():
    center, scale, rot = np.array([120.0, 80.0]), np.array([0.9, 1.2]), 25.0
    pts = np.array([[100.0, 60.0], [150.0, 130.0]])
    m = affine_matrix(center, scale, rot, (48, 64))  # crop at heatmap size
    back = transform_preds(apply_affine(pts, m), center, scale, (48, 64), rotation=rot)
    assert np.allclose(back, pts, atol=1e-6)


# ------------------------------------------------------------------------------ flip
def test_flip_back_swaps_pairs_and_mirrors():
    h = torch.arange(3 * 4, dtype=torch.float32).reshape(1, 3, 1, 4)  # channel k row = 4k..4k+3
    out = flip_back(h, [(1, 2)])
    assert out[0, :, 0].tolist() == [[3, 2, 1, 0], [11, 10, 9, 8], [7, 6, 5, 4]]
    assert shift_right(out)[0, :, 0].tolist() == [[3, 3, 2, 1], [11, 11, 10, 9], [7, 7, 6, 5]]
    plain = torch.ones(1, 3, 1, 4)
    merged = merge_flip(plain, h, [(1, 2)])
    assert merged[0, 0, 0].tolist() == [2.0, 2.0, 1.5, 1.0]
    assert merge_flip(plain, h, [(1, 2)], shift=False)[0, 1, 0].tolist() == [6.0, 5.5, 5.0, 4.5]


def test_flip_test_runs_model_on_mirrored_input():
    class Probe(nn.Module):
        def forward(self, x):  # heatmap channel k = input channel k, so the flip path is visible
            return x

    x = torch.arange(2 * 3 * 2 * 5, dtype=torch.float32).reshape(2, 3, 2, 5)
    out = flip_test(Probe(), x, [(0, 1)])
    swapped = x[:, [1, 0, 2]]
    expect = (x + shift_right(swapped)) / 2
    assert torch.equal(out, expect)


# ------------------------------------------------------------------------------ OKS / NMS / rescoring
def test_oks_hand_values():
    sig = (0.1, 0.2)
    g = np.array([[10, 10, 1], [20, 20, 1]], float)
    d = np.array([[[13, 14, 1], [20, 20, 1]], [[10, 10, 1], [23, 24, 1]]], float)
    o = oks_iou(g, d, 100.0, np.array([100.0, 300.0]), sig)
    e0 = math.exp(-25 / (2 * 100 * 0.2 ** 2))  # d^2 = 25, var = (2 sigma)^2, area 100
    e1 = math.exp(-25 / (2 * 200 * 0.4 ** 2))  # mean area (100 + 300) / 2
    assert np.allclose(o, [(e0 + 1) / 2, (1 + e1) / 2])
    d[0, 1, 2] = 0.1
    assert np.allclose(oks_iou(g, d[:1], 100.0, np.array([100.0]), sig, vis_thr=0.2), [e0])


def test_oks_nms_hand_example():
    sig = (0.1, 0.1)
    base = np.array([[50, 50, 1], [60, 50, 1]], float)
    kpts = np.stack([base, base + [1, 0, 0], base + [40, 0, 0], base + [41, 0, 0]])
    scores = np.array([0.5, 0.9, 0.8, 0.3])
    areas = np.full(4, 400.0)
    # OKS of a 1-px shift: exp(-1 / (2 * 400 * 0.04)) = 0.969 > 0.9 -> suppressed; 40 px apart: ~0
    assert oks_nms(kpts, scores, areas, 0.9, sig) == [1, 2]
    assert oks_nms(kpts, scores, areas, 0.99, sig) == [1, 2, 0, 3]


def test_rescore():
    kp = np.array([[0, 0, 0.9], [0, 0, 0.5], [0, 0, 0.1], [0, 0, 0.2]])
    assert math.isclose(rescore(kp, 0.8), 0.8 * 0.7)
    assert rescore(np.zeros((3, 3)), 1.0) == 0.0


# ------------------------------------------------------------------------------ COCOeval
def test_cocoeval_ground_truth_gives_ap_one(coco_val, tmp_path):
    m = evaluate(coco_val, gt_predictions(coco_val), out_dir=tmp_path, flip=True)
    assert all(m[k] == pytest.approx(100.0) for k in METRICS)
    assert (m["box_source"], m["flip"], m["input"], m["dataset"]) == ("gt", True, "256x192", "coco")
    assert (tmp_path / "keypoints_val_results.json").is_file()


def test_cocoeval_shifted_keypoints_match_hand_oks(coco_val):
    """Shift every keypoint by (3, 4) px: OKS_i = mean_k exp(-25 / (2 area_i (2 sigma_k)^2)) over
    labelled joints; with scores ordered like OKS, AP at threshold t = #{recall points <= m_t / n} / 101."""
    sig = np.asarray(COCO_SIGMAS)
    coco = coco_val.coco
    oks, preds = [], gt_predictions(coco_val)
    for r in coco_val.records:
        ann = coco.anns[r["ann_id"]]
        v = np.asarray(ann["keypoints"][2::3]) > 0
        oks.append(np.exp(-25 / (2 * ann["area"] * (2 * sig[v]) ** 2)).mean())
    oks = np.asarray(oks)
    preds["keypoints"][:, :, :2] += [3, 4]
    preds["score"] = oks.astype(np.float32)  # confidences are 1: the rescored score is the OKS
    metrics = run_cocoeval(coco, coco_results(preds, use_nms=False))
    rec_thrs = np.linspace(0, 1, 101)
    ap_t = []
    for t in np.linspace(0.5, 0.95, 10):
        m_t = int((oks >= t).sum())
        ap_t.append(0.0 if m_t == 0 else (rec_thrs <= m_t / len(oks)).sum() / 101)
    assert 0.3 < float(np.mean(ap_t)) < 0.99  # the shift is a real test: some thresholds fail
    assert metrics["AP"] == pytest.approx(100 * float(np.mean(ap_t)), abs=1e-6)
    assert metrics["AP50"] == pytest.approx(100 * ap_t[0], abs=1e-6)
    assert metrics["AP75"] == pytest.approx(100 * ap_t[5], abs=1e-6)
    ar = np.mean([(oks >= t).mean() for t in np.linspace(0.5, 0.95, 10)])
    assert metrics["AR"] == pytest.approx(100 * ar, abs=1e-6)


def test_duplicate_boxes_are_removed_by_oks_nms(coco_val):
    p = gt_predictions(coco_val)
    n = len(p["bbox_id"])
    dup = {k: np.concatenate([v, v]) for k, v in p.items()}
    dup["bbox_id"] = np.arange(2 * n)
    dup["keypoints"][n:, :, :2] += 0.5
    dup["score"][n:] = 0.5
    assert len(coco_results(dup)) == n
    assert evaluate(coco_val, dup)["AP"] == pytest.approx(100.0)


# ------------------------------------------------------------------------------ PCKh
def _tiny_gt():
    n = 2
    pos = np.full((n, 16, 2), 100.0)
    missing = np.zeros((n, 16))
    missing[1, 5] = 1  # person 1: left ankle not labelled
    heads = np.array([[[0, 0], [30, 40]], [[0, 0], [6, 8]]], float)  # head sizes 0.6*50 = 30 and 0.6*10 = 6
    return {"dataset_joints": list(MPII_GT_NAMES), "jnt_missing": missing.T, "pos_gt_src": pos.transpose(1, 2, 0),
            "headboxes_src": heads.transpose(1, 2, 0)}


def test_pckh_tiny_hand_example():
    err = np.full((2, 16), 10.0)
    err[0, 9] = 2.0  # person 0 head: within 0.1 x 30
    err[0, 8] = 3.2  # person 0 neck: within 0.11 x 30 = 3.3 but not 0.1 x 30 = 3
    err[1] = 5.0  # person 1: beyond 0.5 x 6 = 3 ...
    err[1, 0] = err[1, 6] = 0.0  # ... except right ankle and pelvis
    preds = np.full((2, 16, 2), 99.0)  # 0-based: +1 -> exactly on the 1-based ground truth
    preds[:, :, 0] += err
    t = pckh(preds, _tiny_gt())
    assert t["Head"] == 50 and t["Shoulder"] == 50 and t["Elbow"] == 50 and t["Wrist"] == 50
    assert t["Hip"] == 50 and t["Knee"] == 50
    assert t["Ankle"] == 100  # right: 2/2, left: 1/1 (person 1's is missing)
    # Mean: 14 joints (pelvis, thorax excluded) weighted by counts 2 (left ankle 1): total 27
    assert t["Mean"] == pytest.approx((100 * 2 + 100 * 1 + 12 * 50 * 2) / 27)
    assert t["Mean@0.1"] == pytest.approx(2 * 50 * 2 / 27)  # threshold 0.10: rank, head
    assert t["Mean@0.1(mmpose<=0.16)"] == pytest.approx(3 * 50 * 2 / 27)  # its 0.11 row: rank, head, neck


def test_mpii_targets_round_trip_to_full_pckh(mpii_val):
    rows = []
    for i in range(len(mpii_val)):
        s = mpii_val[i]
        xy, conf = decode_heatmaps(s["target"][None].numpy(), s["meta"]["center"][None], s["meta"]["scale"][None])
        rows.append(np.concatenate([xy, conf], axis=2)[0])
    p = gt_predictions(mpii_val)
    p["keypoints"] = np.stack(rows)
    m = evaluate(mpii_val, p)
    assert m["Mean"] == pytest.approx(100.0) and m["input"] == "256x256" and m["box_source"] == "gt"
    with pytest.raises(DataError, match="needs a prediction for each"):
        evaluate(mpii_val, {k: v[:-1] for k, v in p.items()})


# ------------------------------------------------------------------------------ inference
class TinyPose(nn.Module):
    """4x4 average pool + 1x1 conv: heatmaps at 1/4 resolution, enough to exercise the pipeline."""

    def __init__(self, k: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.AvgPool2d(4), nn.Conv2d(3, k, 1), nn.BatchNorm2d(k))

    def forward(self, x):
        return self.body(x)


def test_predict_shapes_flip_and_shard_merge(coco_val):
    model = TinyPose(17).train()
    p = predict(model, coco_val, batch_size=4, flip_test=True)
    assert model.training  # mode restored
    n = len(coco_val)
    assert p["keypoints"].shape == (n, 17, 3) and p["bbox_id"].tolist() == list(range(n))
    assert np.isfinite(p["keypoints"]).all()
    assert np.allclose(p["area"], np.prod(p["scale"] * 200, axis=1))
    parts = [predict(model, coco_val, batch_size=3, flip_test=True, sampler=list(range(r, n, 2))) for r in (1, 0)]
    merged = merge_predictions(parts + [parts[0]])  # a repeated shard is dropped
    assert np.allclose(merged["keypoints"], p["keypoints"], atol=1e-5)
    m = evaluate(coco_val, p, flip=True)
    assert set(METRICS) <= m.keys() and all(0 <= m[k] <= 100 for k in METRICS)
    amp = predict(model, coco_val, batch_size=8, amp="bf16", post_process="dark", device="cpu")
    assert amp["keypoints"].shape == (n, 17, 3) and np.isfinite(amp["keypoints"]).all()


def test_worker_error_line():
    wrapped = DataError("Caught DataError in DataLoader worker process 0.\nOriginal Traceback (most recent call "
                        "last):\n  File ...\nhrbench.errors.DataError: /x/a.jpg: image file not found\n")
    assert one_line(wrapped) == "/x/a.jpg: image file not found"
