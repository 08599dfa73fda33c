"""`hrbench predict`: keypoints equal the evaluation path's for the same image and box; overlays, COCO
results JSON, MPII checkpoints, video; bad input -> one line, exit 2, nothing written."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from hrbench.checkpoint import hrbench_payload, save_checkpoint
from hrbench.cli import main
from hrbench.data.coco import CocoPoseDataset
from hrbench.data.synth import generate
from hrbench.evaluation import coco_results, predict
from hrbench.factory import create_model, restore_model

HW = (128, 96)


def scrambled(arch: str, k: int, seed: int = 0) -> torch.nn.Module:
    """A fresh model whose BN statistics and head are randomised so that heatmap peaks differ per joint."""
    g = torch.Generator().manual_seed(seed)
    model = create_model(arch, num_keypoints=k).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
        model.head.final_layer.weight.normal_(0, 0.05, generator=g)
    return model


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("pred")
    generate("coco", root / "data", 1, 3, seed=3)
    model = scrambled("lite18", 17)
    ckpt = save_checkpoint(root / "lite18.pt", hrbench_payload(model, config={"dataset": "coco", "input": list(HW)}))
    return root, ckpt


def _image(root, i: int = 0):
    files = sorted((root / "data" / "images" / "val").iterdir())
    return files[i]


def test_keypoints_equal_the_evaluation_path(setup, tmp_path, capsys):
    root, ckpt = setup
    img = _image(root)
    dets = json.loads((root / "data" / "person_detection_results" / "detections_val.json").read_text())
    mine = [d for d in dets if d["image_id"] == int(img.stem)][:3]
    assert mine
    det_file = tmp_path / "dets.json"
    det_file.write_text(json.dumps(mine))
    out = tmp_path / "out"
    assert main(["predict", "lite18", "--checkpoint", str(ckpt), str(img), "--boxes", str(det_file),
                 "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    written = json.loads((out / "predictions.json").read_text())
    assert printed == written and len(written) == len(mine)
    # the evaluation path: the dataset with these detections, predict() with flip test, COCO results
    ds = CocoPoseDataset(root / "data", "val", HW, det_file=det_file)
    model = restore_model("lite18", ckpt).model
    expected = coco_results(predict(model, ds, flip_test=True, batch_size=2), use_nms=False)
    assert [r["keypoints"] for r in written] == [r["keypoints"] for r in expected]
    assert [r["image_id"] for r in written] == [int(img.stem)] * len(mine)
    assert [r["bbox"] for r in written] == [[round(v, 2) for v in d["bbox"]] for d in mine]
    overlay = cv2.imread(str(out / f"{img.stem}_pose.png"))
    h, w = cv2.imread(str(img)).shape[:2]
    assert overlay.shape[:2] == (h * 2, w * 2)  # 320x256 images are drawn enlarged twice
    assert sorted(p.name for p in out.iterdir()) == [".hrbench-manifest.json", f"{img.stem}_pose.png",
                                                     "predictions.json"]


def test_box_option_whole_image_and_no_flip(setup, tmp_path, capsys):
    root, ckpt = setup
    img = _image(root, 1)
    h, w = cv2.imread(str(img)).shape[:2]

    def run(*extra):
        assert main(["predict", "lite18", "--checkpoint", str(ckpt), str(img), "--out", str(tmp_path / "o"),
                     "--json", *extra]) == 0
        return json.loads(capsys.readouterr().out)

    whole, boxed = run(), run("--box", f"0,0,{w},{h}")
    assert whole[0]["bbox"] == [0, 0, w, h] and whole[0]["keypoints"] == boxed[0]["keypoints"]
    assert len(whole[0]["keypoints"]) == 17 * 3
    no_flip = run("--box", f"0,0,{w},{h}", "--no-flip")
    assert no_flip[0]["keypoints"] != boxed[0]["keypoints"]


def test_mpii_checkpoint_and_folder_input(setup, tmp_path, capsys):
    root, _ = setup
    model = scrambled("lite18", 16, seed=1)
    ckpt = save_checkpoint(tmp_path / "mpii.pt", hrbench_payload(model, config={"dataset": "mpii", "input": [64, 64]}))
    folder = root / "data" / "images" / "val"
    assert main(["predict", "lite18", "--checkpoint", str(ckpt), str(folder), "--out", str(tmp_path / "o"),
                 "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert len(res) == 3 and all(len(r["keypoints"]) == 16 * 3 for r in res)
    assert len(list((tmp_path / "o").glob("*_pose.png"))) == 3


def test_video_input(setup, tmp_path, capsys):
    root, ckpt = setup
    frame = cv2.imread(str(_image(root)))
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (frame.shape[1], frame.shape[0]))
    for i in range(3):
        writer.write(np.roll(frame, 8 * i, axis=1))
    writer.release()
    out = tmp_path / "o"
    assert main(["predict", "lite18", "--checkpoint", str(ckpt), str(video), "--out", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert [r["frame"] for r in res] == [0, 1, 2]
    cap = cv2.VideoCapture(str(out / "clip_pose.mp4"))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 3


def test_bad_input_one_line_exit_2_nothing_written(setup, tmp_path, capsys):
    root, ckpt = setup
    img = _image(root)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image at all")
    bad_boxes = tmp_path / "boxes.json"
    bad_boxes.write_text(json.dumps({"bbox": [1, 2, 3, 4]}))
    str_box = tmp_path / "boxes2.json"
    str_box.write_text(json.dumps([{"image_id": 1, "bbox": "1,2,3,4"}]))
    other = save_checkpoint(tmp_path / "other.pt", hrbench_payload(create_model("small_hrnet_w16")))
    out = tmp_path / "out"
    cases = [([str(img), str(broken)], "corrupt or unreadable image"),
             ([str(img), "--boxes", str(bad_boxes)], "wrong schema"),
             ([str(img), "--boxes", str(str_box)], "bbox must be [x, y, w, h]"),
             ([str(img), "--box", "1,2,0,4"], "malformed --box"),
             ([str(tmp_path / "missing.png")], "no such file")]
    for args, words in cases:
        assert main(["predict", "lite18", "--checkpoint", str(ckpt), "--out", str(out), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert words in err and len(err.splitlines()) == 1, err
    assert main(["predict", "lite18", "--checkpoint", str(other), str(img), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "is for architecture small_hrnet_w16, not litehrnet_18" in err and len(err.splitlines()) == 1
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["boxes.json", "boxes2.json", "broken.jpg", "other.pt"]
