"""Datasets, transforms, targets, synthetic generator, and one-line errors for bad data."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from hrbench.cli import main
from hrbench.data import build_dataset, collate, load_image
from hrbench.data.synth import generate, rle_counts
from hrbench.data.targets import gaussian_targets
from hrbench.data.transforms import (
    AugmentConfig,
    affine_matrix,
    apply_affine,
    box_to_center_scale,
    half_body_box,
    random_scale_rotation,
    sanitize_box,
    topdown_crop,
    warp_image,
)
from hrbench.errors import DataError


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "coco"
    generate("coco", root, n_train=6, n_val=12, seed=3)
    return root


@pytest.fixture(scope="module")
def mpii_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "mpii"
    generate("mpii", root, n_train=3, n_val=6, seed=3)
    return root


def _digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


# ------------------------------------------------------------------------------ synthetic generator
def test_synth_is_deterministic(tmp_path):
    generate("coco", tmp_path / "a", 2, 2, seed=7)
    generate("coco", tmp_path / "b", 2, 2, seed=7)
    generate("coco", tmp_path / "c", 2, 2, seed=8)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_synth_coco_loads_in_pycocotools(coco_root):
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO

    coco = COCO(str(coco_root / "annotations" / "person_keypoints_val.json"))
    assert len(coco.getImgIds()) == 12
    cat = coco.loadCats(1)[0]
    assert cat["name"] == "person" and len(cat["keypoints"]) == 17 and len(cat["skeleton"]) == 19
    anns = coco.loadAnns(coco.getAnnIds())
    persons = [a for a in anns if not a["iscrowd"]]
    assert persons and all(a["area"] > 0 and len(a["segmentation"][0]) >= 6 for a in persons)
    vis = np.concatenate([np.asarray(a["keypoints"]).reshape(17, 3) for a in persons])
    assert set(np.unique(vis[:, 2])) <= {0, 1, 2} and (vis[:, 2] == 2).mean() > 0.5
    assert (vis[vis[:, 2] == 0, :2] == 0).all()
    assert all(a["num_keypoints"] == int((np.asarray(a["keypoints"][2::3]) > 0).sum()) for a in persons)
    train = json.loads((coco_root / "annotations" / "person_keypoints_train.json").read_text())
    allv = np.concatenate([np.asarray(a["keypoints"]).reshape(17, 3)[:, 2] for a in train["annotations"]])
    assert (allv == 1).any(), "some keypoints must be occluded"
    for split in ("train", "val"):  # crowd regions decode to their stated area
        data = json.loads((coco_root / "annotations" / f"person_keypoints_{split}.json").read_text())
        for a in (a for a in data["annotations"] if a["iscrowd"]):
            seg = a["segmentation"]
            rle = mask_utils.frPyObjects(seg, *seg["size"])
            assert mask_utils.area(rle) == a["area"]
    dets = json.loads((coco_root / "person_detection_results" / "detections_val.json").read_text())
    assert dets and {"image_id", "category_id", "bbox", "score"} <= dets[0].keys()


def test_rle_counts_match_pycocotools():
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(0)
    for first in (0, 1):
        m = (rng.random((7, 5)) > 0.5).astype(np.uint8)
        m[0, 0] = first
        rle = mask_utils.frPyObjects({"counts": rle_counts(m), "size": [7, 5]}, 7, 5)
        assert np.array_equal(mask_utils.decode(rle), m)


def test_cli_synth(tmp_path, capsys):
    assert main(["data", "synth", "--dataset", "mpii", "--out", str(tmp_path / "m"), "--train", "2",
                 "--val", "1", "-q"]) == 0
    assert (tmp_path / "m" / "annotations" / "mpii_gt_val.json").is_file()
    assert main(["data", "synth", "--dataset", "lsp", "--out", str(tmp_path / "x")]) == 2
    assert "unknown --dataset" in capsys.readouterr().err


# ------------------------------------------------------------------------------ dataset contract
def test_coco_dataset_sample_and_collate(coco_root):
    ds = build_dataset("coco", coco_root, "train", (256, 192), train=True)
    assert (ds.name, ds.num_keypoints, ds.input_hw, ds.box_source) == ("coco", 17, (256, 192), "gt")
    assert ds.flip_pairs[0] == [1, 2]
    torch.manual_seed(0)
    s = ds[0]
    assert s["image"].shape == (3, 256, 192) and s["image"].dtype == torch.float32
    assert s["target"].shape == (17, 64, 48) and s["target_weight"].shape == (17, 1)
    assert abs(float(s["image"].mean())) < 3
    batch = collate([ds[i] for i in range(3)])
    assert batch["image"].shape == (3, 3, 256, 192)
    assert batch["meta"]["center"].shape == (3, 2) and batch["meta"]["bbox_id"].tolist() == [0, 1, 2]
    assert len(batch["meta"]["image_file"]) == 3 and batch["meta"]["flip_pairs"] == ds.flip_pairs
    # every non-crowd training instance with keypoints is a sample
    data = json.loads(ds.ann_file.read_text())
    assert len(ds) == sum(1 for a in data["annotations"] if not a["iscrowd"] and a["num_keypoints"] > 0)


def test_training_box_centre_jitter(coco_root):
    plain = build_dataset("coco", coco_root, "train", train=False).records
    jittered = build_dataset("coco", coco_root, "train", train=True).records
    moved = 0
    for p, j in zip(plain, jittered, strict=True):
        box = np.asarray(p["scale"]) * 200 / 1.25  # the aspect-corrected box
        d = np.abs(np.asarray(j["center"]) - p["center"])
        assert np.array_equal(j["scale"], p["scale"]) and (d <= 0.2 * box + 1e-3).all()
        moved += bool(d.any())
    assert 0 < moved < len(plain)


def test_coco_detections_and_threshold(coco_root):
    dets = json.loads((coco_root / "person_detection_results" / "detections_val.json").read_text())
    det_file = "person_detection_results/detections_val.json"
    ds = build_dataset("coco", coco_root, "val", det_file=det_file)
    assert ds.box_source == "detections"
    assert len(ds) == sum(1 for d in dets if d["category_id"] == 1)
    ds2 = build_dataset("coco", coco_root, "val", det_file=det_file, det_score_thr=0.5)
    assert len(ds2) == sum(1 for d in dets if d["category_id"] == 1 and d["score"] >= 0.5)
    assert all(r["score"] >= 0.5 for r in ds2.records)


def test_mpii_dataset_conventions(mpii_root):
    ds = build_dataset("mpii", mpii_root, "val", (256, 256), train=False)
    entries = json.loads((mpii_root / "annotations" / "mpii_val.json").read_text())
    r, a = ds.records[0], entries[0]
    assert np.allclose(r["scale"], [a["scale"] * 1.25] * 2)
    assert np.allclose(r["center"], [a["center"][0] - 1, a["center"][1] + 15 * a["scale"] - 1], atol=1e-4)
    vis = np.asarray(a["joints_vis"]) > 0
    assert np.allclose(r["joints"][vis, :2], np.asarray(a["joints"])[vis] - 1)
    s = ds[0]
    assert s["target"].shape == (16, 64, 64) and ds.flip_pairs[0] == [0, 5]
    assert ds.load_gt()["pos_gt_src"].shape == (16, 2, len(ds))


# ------------------------------------------------------------------------------ geometry
def test_box_to_center_scale_and_sanitize():
    c, s = box_to_center_scale(10, 20, 60, 40, aspect_ratio=0.75)
    assert np.allclose(c, [40, 40]) and np.allclose(s, [60 / 200 * 1.25, 80 / 200 * 1.25])
    c, s = box_to_center_scale(0, 0, 30, 80, aspect_ratio=0.75)
    assert np.allclose(s, [60 / 200 * 1.25, 80 / 200 * 1.25])
    assert sanitize_box([-5, 10, 50, 300], 100, 200) == [0, 10, 49, 189]
    assert sanitize_box([10, 10, 0.5, 20], 100, 200) is None
    assert sanitize_box([10, 10, 20, 20], 100, 200, area=0) is None


def test_affine_matrix_maps_center_and_rotates_counter_clockwise():
    m = affine_matrix((50, 60), (1.0, 4 / 3), 0, (192, 256))
    assert np.allclose(apply_affine(np.array([[50, 60], [150, 60]]), m), [[96, 128], [192, 128]])
    m = affine_matrix((50, 60), (1.0, 1.0), 90, (200, 200))
    # a point 10 px above the centre ends up 10 px left of the crop centre
    assert np.allclose(apply_affine(np.array([50, 50]), m), [90, 100])


def test_warp_uses_integer_pixel_centres():
    a = np.arange(64 * 48 * 3, dtype=np.uint32).reshape(64, 48, 3) % 251
    img = a.astype(np.uint8)
    shifted = np.asarray(warp_image(img, np.array([[1.0, 0, -3], [0, 1, -2]]), (40, 50)))
    assert np.array_equal(shifted, a[2:52, 3:43].astype(np.uint8))
    doubled = np.asarray(warp_image(img, np.array([[2.0, 0, 0], [0, 2, 0]]), (40, 40))).astype(int)
    assert np.array_equal(doubled[0:40:2, 0:40:2], a[:20, :20])


def test_flip_is_mirror_with_one_pixel_shift(coco_root):
    ds = build_dataset("coco", coco_root, "val")
    r = ds.records[0]
    img = load_image(r["image_file"])
    plain = topdown_crop(img, r["joints"][:, :2], r["joints"][:, 2], r["center"], r["scale"], (256, 192),
                         train=False, flip_pairs=ds.spec.flip_pairs)
    aug = AugmentConfig(flip_prob=1.0, half_body_prob=0.0, scale_factor=0.0, rot_factor=0.0)
    flipped = topdown_crop(img, r["joints"][:, :2], r["joints"][:, 2], r["center"], r["scale"], (256, 192),
                           train=True, flip_pairs=ds.spec.flip_pairs, aug=aug, rng=np.random.default_rng(0))
    assert flipped.flipped and flipped.rotation == 0
    p, f = np.asarray(plain.image).astype(int), np.asarray(flipped.image).astype(int)
    # column j of the flipped crop is column 192 - j of the plain one
    assert np.abs(f[:, 1:] - p[:, :0:-1]).max() <= 1
    perm = list(range(17))
    for a, b in ds.spec.flip_pairs:
        perm[a], perm[b] = b, a
    v = plain.vis[perm] > 0
    assert np.array_equal(flipped.vis, plain.vis[perm])
    assert np.allclose(flipped.joints[v, 0], 192 - plain.joints[perm][v, 0], atol=1e-3)
    assert np.allclose(flipped.joints[v, 1], plain.joints[perm][v, 1], atol=1e-3)


def test_half_body_box():
    joints = np.array([[10, 10], [30, 10], [20, 50], [0, 0], [100, 100], [110, 120]], np.float32)
    vis = np.array([1, 1, 1, 0, 1, 1], np.float32)
    c, s = half_body_box(joints, vis, {0, 1, 2, 3}, 0.75, np.random.default_rng(1))
    # upper joints (3 visible): mean (20, 23.3), extent 20 x 40 -> w = 30 at aspect 0.75, x1.5
    assert np.allclose(c, [20, 70 / 3]) and np.allclose(s, [30 / 200 * 1.5, 40 / 200 * 1.5])
    assert half_body_box(joints, np.array([1, 0, 0, 0, 0, 0]), {0, 1, 2, 3}, 0.75, np.random.default_rng(1)) is None


def test_random_scale_rotation_ranges():
    rng = np.random.default_rng(0)
    draws = np.array([random_scale_rotation(rng, 0.25, 30, 0.6) for _ in range(4000)])
    assert draws[:, 0].min() >= 0.75 and draws[:, 0].max() <= 1.25
    assert np.abs(draws[:, 1]).max() <= 60
    assert abs((draws[:, 1] == 0).mean() - 0.4) < 0.04


# ------------------------------------------------------------------------------ targets
def test_gaussian_targets_hand_values():
    joints = np.array([[10, 20], [10, 20], [-40, 10], [-20, 10]], np.float32)
    vis = np.array([1, 0, 1, 1], np.float32)
    t, w = gaussian_targets(joints, vis, (256, 192), sigma=2)
    assert t.shape == (4, 64, 48) and w[:, 0].tolist() == [1, 0, 0, 1]
    # peak at (int(10/4 + .5), int(20/4 + .5)) = (3, 5)
    assert t[0, 5, 3] == 1 and np.isclose(t[0, 5, 4], math.exp(-1 / 8)) and np.isclose(t[0, 6, 4], math.exp(-2 / 8))
    assert np.isclose(t[0, 5, 9], math.exp(-36 / 8)) and t[0, 5, 10] == 0 and t[0, 12, 3] == 0
    assert t[1].max() == 0 and t[2].max() == 0
    # peak at (int(-20 / 4 + 0.5), int(10 / 4 + 0.5)) = (-4, 3): the square reaches columns 0..2
    assert np.isclose(t[3, 3, 0], math.exp(-16 / 8)) and np.isclose(t[3, 4, 2], math.exp(-37 / 8))
    assert t[3, 3, 3] == 0


# ------------------------------------------------------------------------------ bad input
def _copy(root, tmp_path):
    dst = tmp_path / "ds"
    shutil.copytree(root, dst)
    return dst


def test_missing_annotation_file(tmp_path):
    (tmp_path / "annotations").mkdir()
    with pytest.raises(DataError, match=r"person_keypoints_val\.json: annotation file not found"):
        build_dataset("coco", tmp_path, "val")
    with pytest.raises(DataError, match=r"mpii_val\.json: annotation file not found"):
        build_dataset("mpii", tmp_path, "val")
    with pytest.raises(DataError, match="dataset root not found"):
        build_dataset("coco", tmp_path / "nope", "val")


def test_malformed_json_and_wrong_schema(coco_root, tmp_path):
    root = _copy(coco_root, tmp_path)
    ann = root / "annotations" / "person_keypoints_val.json"
    good = json.loads(ann.read_text())
    ann.write_text('{"images": [')
    with pytest.raises(DataError, match=r"person_keypoints_val\.json: malformed JSON"):
        build_dataset("coco", root, "val")
    ann.write_text(json.dumps({k: v for k, v in good.items() if k != "annotations"}))
    with pytest.raises(DataError, match=r"missing 'annotations' key"):
        build_dataset("coco", root, "val")
    bad = dict(good, annotations=[dict(good["annotations"][0], keypoints=[0, 0, 0])])
    ann.write_text(json.dumps(bad))
    with pytest.raises(DataError, match=r"annotations\[0\] \(id \d+\)\.keypoints must be 51 numbers"):
        build_dataset("coco", root, "val")


def test_empty_split(coco_root, tmp_path):
    root = _copy(coco_root, tmp_path)
    ann = root / "annotations" / "person_keypoints_val.json"
    data = json.loads(ann.read_text())
    data["annotations"] = [a for a in data["annotations"] if a["iscrowd"]]
    ann.write_text(json.dumps(data))
    with pytest.raises(DataError, match="empty split"):
        build_dataset("coco", root, "val")


def test_missing_and_corrupt_images(coco_root, mpii_root, tmp_path):
    root = _copy(coco_root, tmp_path)
    ds = build_dataset("coco", root, "val")
    victim = ds.records[0]["image_file"]
    with open(victim, "wb") as f:
        f.write(b"\xff\xd8 this is not a jpeg")
    with pytest.raises(DataError, match="corrupt or unreadable image") as e:
        ds[0]
    assert victim in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(DataError, match="corrupt or unreadable image"):  # now found up front, from the header
        build_dataset("coco", root, "val")
    shutil.copyfile(coco_root / Path(victim).relative_to(root), victim)
    (root / "images" / "val" / json.loads(
        (root / "annotations" / "person_keypoints_val.json").read_text())["images"][-1]["file_name"]).unlink()
    with pytest.raises(DataError, match="image file not found"):
        build_dataset("coco", root, "val")
    m = _copy(mpii_root, tmp_path / "m")
    next((m / "images").glob("val_*.jpg")).unlink()
    with pytest.raises(DataError, match="image file not found"):
        build_dataset("mpii", m, "val")


def test_mpii_wrong_schema_and_bad_detections(mpii_root, coco_root, tmp_path):
    m = _copy(mpii_root, tmp_path)
    (m / "annotations" / "mpii_val.json").write_text(json.dumps([{"image": "a.jpg", "center": [1, 2]}]))
    with pytest.raises(DataError, match="wrong schema"):
        build_dataset("mpii", m, "val")
    (tmp_path / "dets.json").write_text(json.dumps({"image_id": 1}))
    with pytest.raises(DataError, match=r"dets\.json: wrong schema"):
        build_dataset("coco", coco_root, "val", det_file=tmp_path / "dets.json")
    (tmp_path / "dets.json").write_text(json.dumps([{"image_id": -5, "category_id": 1, "bbox": [0, 0, 9, 9],
                                                     "score": 0.9}]))
    with pytest.raises(DataError, match="image_id -5 absent"):
        build_dataset("coco", coco_root, "val", det_file=tmp_path / "dets.json")
    with pytest.raises(DataError, match="detection file not found"):
        build_dataset("coco", coco_root, "val", det_file=tmp_path / "none.json")
    with pytest.raises(DataError, match="unknown dataset"):
        build_dataset("lsp", coco_root, "val")
