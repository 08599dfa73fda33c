"""The Python side of ``hrbench predict`` (:mod:`hrbench.evaluation.files`): the same results as the
command's ``predictions.json`` for images, a folder, a video and a boxes file, and the same
keypoints as the evaluation path for a box."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from hrbench.checkpoint import hrbench_payload, save_checkpoint
from hrbench.cli import main
from hrbench.data import build_dataset
from hrbench.data.synth import generate
from hrbench.datasets import get_dataset
from hrbench.evaluation import predict
from hrbench.evaluation.files import predict_files, predict_image_file, predict_video
from hrbench.evaluation.images import boxes_for, load_boxes
from hrbench.factory import create_model

HW = (128, 96)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    generate("coco", root / "data", 1, 2, seed=7)
    torch.manual_seed(0)
    model = create_model("lite18", num_keypoints=17).eval()
    with torch.no_grad():  # a head whose peaks differ per joint
        model.head.final_layer.weight.normal_(0, 0.05, generator=torch.Generator().manual_seed(1))
    ckpt = save_checkpoint(root / "m.pt", hrbench_payload(model, config={"dataset": "coco", "input": list(HW)}))
    images = sorted((root / "data" / "images" / "val").iterdir())
    frame = cv2.imread(str(images[0]))
    video = root / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (frame.shape[1], frame.shape[0]))
    for i in range(2):
        writer.write(np.roll(frame, 8 * i, axis=1))
    writer.release()
    return root, ckpt, model, images, video


def test_predict_files_equals_the_command(setup, tmp_path, capsys):
    root, ckpt, model, images, video = setup
    dets = json.loads((root / "data" / "person_detection_results" / "detections_val.json").read_text())
    boxes_file = tmp_path / "boxes.json"
    boxes_file.write_text(json.dumps([d for d in dets if d["image_id"] == int(images[1].stem)][:2]))
    inputs = [str(images[1].parent), str(video)]
    assert main(["predict", "lite18", "--checkpoint", str(ckpt), *inputs, "--boxes", str(boxes_file),
                 "--out", str(tmp_path / "o")]) == 0
    capsys.readouterr()
    written = json.loads((tmp_path / "o" / "predictions.json").read_text())
    entries = load_boxes(boxes_file)
    mine = predict_files(model, inputs, HW, get_dataset("coco").flip_pairs, boxes=lambda f, k: boxes_for(entries, f, k))
    assert json.loads(json.dumps(mine)) == written
    assert [r.get("frame") for r in written if r["file_name"] == video.name] == [0, 1]
    assert sum(r["file_name"] == images[1].name for r in written) == 2  # its two boxes
    assert sum(r["file_name"] == images[0].name for r in written) == 1  # no box: the whole image


def test_one_box_equals_the_evaluation_path(setup, tmp_path):
    root, _, model, images, video = setup
    dets = json.loads((root / "data" / "person_detection_results" / "detections_val.json").read_text())
    det = next(d for d in dets if d["image_id"] == int(images[0].stem))
    (tmp_path / "det.json").write_text(json.dumps([det]))
    ds = build_dataset("coco", root / "data", "val", HW, det_file=tmp_path / "det.json")
    ref = predict(model, ds, flip_test=True)["keypoints"][0]
    image, res = predict_image_file(model, images[0], [(det["bbox"], det["score"])], HW, ds.flip_pairs, image_id=7)
    assert image.shape[2] == 3 and res[0]["image_id"] == 7 and res[0]["box_score"] == pytest.approx(det["score"])
    np.testing.assert_array_equal(np.asarray(res[0]["keypoints"], dtype=np.float32).reshape(-1, 3), ref)
    frames = list(predict_video(model, video, lambda f, k: [], HW, ds.flip_pairs, flip=False))
    assert [f[0] for f in frames] == [0, 1] and all(len(f[3]) == 1 and f[3][0]["frame"] == f[0] for f in frames)
