"""A dataset is a registered spec: a third, CrowdPose-like data set (14 keypoints, COCO annotation
style) registered from the test tree is built, iterated, drawn, predicted and scored with its own
OKS sigmas without touching hrbench's files; an unknown name lists the registered ones."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
from torch.utils.data import DataLoader

from hrbench.cli import main
from hrbench.data import build_dataset, collate
from hrbench.data.crops import crop_joints
from hrbench.data.synth import generate
from hrbench.datasets import DatasetSpec, get_dataset, list_datasets, register_dataset, spec
from hrbench.errors import ConfigError, DataError
from hrbench.evaluation import evaluate, predict
from hrbench.factory import create_model

#: CrowdPose's joints and OKS sigmas (its evaluation's values).
NAMES = ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
         "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "head", "neck")
SIGMAS = (.079, .079, .072, .072, .062, .062, .107, .107, .087, .087, .089, .089, .079, .079)
HW = (64, 48)


def toy_spec() -> DatasetSpec:
    return DatasetSpec("toypose", NAMES, tuple((i, i + 1) for i in range(0, 12, 2)), (0, 1, 2, 3, 4, 5, 12, 13),
                       HW, "AP", annotations="coco", evaluator="cocoeval", sigmas=SIGMAS,
                       skeleton=((12, 13), (13, 0), (13, 1), (0, 2), (2, 4), (1, 3), (3, 5), (0, 6), (1, 7),
                                 (6, 8), (8, 10), (7, 9), (9, 11)))


def to_toy(kp17: list[float]) -> list[float]:
    """COCO 17 -> the toy 14: the 12 limb joints, the nose as head, the shoulders' midpoint as neck."""
    k = np.asarray(kp17, dtype=np.float64).reshape(17, 3)
    neck = [*(k[5, :2] + k[6, :2]) / 2, 2.0] if k[5, 2] > 0 and k[6, 2] > 0 else [0.0, 0.0, 0.0]
    return np.concatenate([k[5:17], k[:1], [neck]]).ravel().tolist()


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    """A COCO-format tree whose annotations have 14 keypoints (synthetic figures, converted)."""
    root = tmp_path_factory.mktemp("toy") / "toypose"
    generate("coco", root, 3, 3, seed=3)
    for split in ("train", "val"):
        path = root / "annotations" / f"person_keypoints_{split}.json"
        data = json.loads(path.read_text())
        for a in data["annotations"]:
            a["keypoints"] = to_toy(a["keypoints"])
            a["num_keypoints"] = int(sum(v > 0 for v in a["keypoints"][2::3]))
        data["categories"][0].update(keypoints=list(NAMES), skeleton=[])
        path.write_text(json.dumps(data))
    return root


@pytest.fixture
def toypose(monkeypatch):
    """``toypose`` registered with the public function, for one test (the registry is restored after)."""
    monkeypatch.setattr(spec, "_DATASETS", dict(spec._DATASETS))
    return register_dataset(toy_spec())


def oks(pred: np.ndarray, gt: np.ndarray, area: float, sigmas) -> float:
    """COCO's object keypoint similarity, over the labelled ground-truth joints."""
    var = (2 * np.asarray(sigmas)) ** 2
    d2 = ((pred[:, :2] - gt[:, :2]) ** 2).sum(1)
    e = d2 / var / (area + np.spacing(1)) / 2
    vis = gt[:, 2] > 0
    return float(np.exp(-e[vis]).mean())


def predictions(ds, annotations: dict, target_oks: float | None = None) -> dict:
    """Each person's ground truth from the json (or shifted right until its OKS is ``target_oks``)."""
    kps = []
    for r in ds.records:
        a = annotations[r["ann_id"]]
        gt = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
        shift = 0.0
        if target_oks is not None:  # bisection on the shift: OKS falls as the shift grows
            lo, hi = 0.0, 1000.0
            for _ in range(60):
                shift = (lo + hi) / 2
                moved = gt + [shift, 0, 0]
                lo, hi = (shift, hi) if oks(moved, gt, a["area"], SIGMAS) > target_oks else (lo, shift)
        kp = gt.copy()
        kp[:, 0] += shift
        kp[:, 2] = 1.0
        kps.append(kp)
    scale = np.stack([r["scale"] for r in ds.records])
    return {"keypoints": np.stack(kps).astype(np.float32), "center": np.stack([r["center"] for r in ds.records]),
            "scale": scale, "area": np.prod(scale * 200, axis=1), "score": np.ones(len(kps), np.float32),
            "image_id": np.array([r["image_id"] for r in ds.records]), "bbox_id": np.arange(len(kps))}


def test_registered_toy_dataset_is_built_and_iterated(toypose, toy_root):
    assert list_datasets() == ("coco", "mpii", "toypose")
    val = build_dataset("toypose", toy_root, "val", toypose.input_hw)
    ann = json.loads((toy_root / "annotations" / "person_keypoints_val.json").read_text())
    assert len(val) == sum(1 for a in ann["annotations"] if not a["iscrowd"] and a["num_keypoints"] > 0) > 1
    assert val.name == "toypose" and val.num_keypoints == 14 and val.flip_pairs[0] == [0, 1]
    train = build_dataset("toypose", toy_root, "train", HW, train=True)
    flipped = checked = 0
    for seed in range(6):
        train.reseed(seed)
        batch = next(iter(DataLoader(train, batch_size=len(train), collate_fn=collate)))
        assert batch["image"].shape == (len(train), 3, 64, 48) and batch["target"].shape == (len(train), 14, 16, 12)
        for idx in range(len(train)):
            meta = {k: v if k == "flip_pairs" else v[idx] for k, v in batch["meta"].items()}
            flipped += bool(meta["flipped"])
            pts, shown = crop_joints(train, idx, meta)  # recomputed with the toy flip pairs
            target, weight = batch["target"][idx].numpy(), batch["target_weight"][idx, :, 0].numpy()
            for j in np.flatnonzero(shown & (weight > 0)):
                x, y = pts[j] / 4
                if not (0 <= x < 11.5 and 0 <= y < 15.5):  # the peak lies inside the 16 x 12 map
                    continue
                peak = np.unravel_index(target[j].argmax(), target[j].shape)
                assert abs(peak[1] - x) <= 0.5 + 1e-6 and abs(peak[0] - y) <= 0.5 + 1e-6
                checked += 1
    assert flipped and checked > 100  # mirrored samples too: the toy pairs' left/right swap was exercised


def test_toy_dataset_scored_with_its_own_sigmas(toypose, toy_root, tmp_path):
    ds = build_dataset("toypose", toy_root, "val", HW)
    ann = {a["id"]: a for a in json.loads((toy_root / "annotations" / "person_keypoints_val.json").read_text())[
        "annotations"]}
    perfect = evaluate(ds, predictions(ds, ann), out_dir=tmp_path)
    assert perfect["AP"] == pytest.approx(100.0) and perfect["AR"] == pytest.approx(100.0)
    assert perfect["dataset"] == "toypose" and perfect["input"] == "64x48"
    written = json.loads((tmp_path / "keypoints_val_results.json").read_text())
    assert {len(r["keypoints"]) for r in written} == {42}
    # every person at OKS 0.825 (with the toy sigmas): matched at thresholds 0.50 ... 0.80, missed above
    shifted = evaluate(ds, predictions(ds, ann, target_oks=0.825))
    assert shifted["AP"] == pytest.approx(70.0) and shifted["AP50"] == pytest.approx(100.0)
    assert shifted["AP75"] == pytest.approx(100.0)


def test_toy_dataset_predicted_with_a_registered_model(toypose, toy_root):
    ds = build_dataset("toypose", toy_root, "val", (128, 96))  # Lite-HRNet needs multiples of 32
    model = create_model("lite18", num_keypoints=toypose.num_keypoints).eval()
    p = predict(model, ds, flip_test=True)
    assert p["keypoints"].shape == (len(ds), 14, 3)
    m = evaluate(ds, p, flip=True)
    assert m["num_results"] == len(ds) and 0.0 <= m["AP"] <= 100.0 and m["flip"] is True


def test_cli_takes_the_registered_dataset(toypose, toy_root, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["data", "show", str(toy_root), "--dataset", "toypose", "--split", "val", "--n", "2",
                 "--out", str(out)]) == 0
    img = cv2.imread(str(out))
    assert img is not None and "2 toypose val crops at 64x48" in capsys.readouterr().out
    # 2 tiles of 64x48 drawn 4x (256 // 64), 2 pixels apart: cols = ceil(sqrt(2 * 64 / 48)) = 2
    assert img.shape[:2] == (256 + 4, 2 * 192 + 6)
    assert main(["data", "show", str(toy_root), "--dataset", "lsp", "--out", str(out)]) == 2
    assert "unknown --dataset 'lsp': expected coco, mpii or toypose" in capsys.readouterr().err


def test_unknown_and_malformed_specs(monkeypatch, toy_root):
    with pytest.raises(ConfigError, match=r"^unknown dataset 'lsp': expected coco or mpii$"):
        get_dataset("lsp")
    with pytest.raises(DataError, match="unknown dataset 'lsp'"):
        build_dataset("lsp", ".", "val")
    with pytest.raises(ValueError, match="14 OKS sigmas for 13 keypoints"):
        DatasetSpec("bad", NAMES[:13], (), (), HW, "AP", "coco", "cocoeval", sigmas=SIGMAS)
    with pytest.raises(ValueError, match="indices must lie in 0..12"):
        DatasetSpec("bad", NAMES[:13], ((0, 13),), (), HW, "AP", "coco", "cocoeval")
    with pytest.raises(ValueError, match="registered twice"):
        register_dataset(get_dataset("coco"))
    monkeypatch.setattr(spec, "_DATASETS", dict(spec._DATASETS))
    register_dataset(DatasetSpec("aiclike", NAMES, (), (), HW, "AP", annotations="aic", evaluator="aiceval"))
    with pytest.raises(DataError, match="^dataset 'aiclike': no reader registered for 'aic' annotations$"):
        build_dataset("aiclike", toy_root, "val")
    assert math.isclose(get_dataset("coco").sigmas[0], 0.026) and get_dataset("mpii").metric == "PCKh"
