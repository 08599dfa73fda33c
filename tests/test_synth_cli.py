"""`hrbench data synth` onto an existing data set: refused without --force; --force replaces it cleanly."""

from __future__ import annotations

import json

from hrbench.cli import main


def _coco_state(root):
    ann = json.loads((root / "annotations" / "person_keypoints_train.json").read_text())
    files = sorted(p.name for p in (root / "images" / "train").iterdir())
    return sorted(im["file_name"] for im in ann["images"]), files


def test_existing_dataset_refused_then_replaced_with_force(tmp_path, capsys):
    root = tmp_path / "d"
    assert main(["data", "synth", "--out", str(root), "--train", "3", "--val", "1", "-q"]) == 0
    before = (root / "annotations" / "person_keypoints_train.json").read_bytes()
    assert main(["data", "synth", "--out", str(root), "--train", "2", "--val", "1", "--seed", "1", "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert "already holds a data set" in err and "--force" in err and len(err.splitlines()) == 1
    assert (root / "annotations" / "person_keypoints_train.json").read_bytes() == before
    (root / "notes.txt").write_text("mine")  # not part of the data set: kept
    assert main(["data", "synth", "--out", str(root), "--train", "2", "--val", "1", "--seed", "1", "-q",
                 "--force"]) == 0
    names, files = _coco_state(root)
    assert names == files and len(files) == 2  # the third, stale image is gone
    assert (root / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in root.iterdir()) == [".hrbench-manifest.json", "annotations", "images", "notes.txt",
                                                      "person_detection_results"]


def test_mpii_force_and_fresh_folder(tmp_path):
    root = tmp_path / "m"
    assert main(["data", "synth", "--dataset", "mpii", "--out", str(root), "--train", "3", "--val", "1", "-q"]) == 0
    assert main(["data", "synth", "--dataset", "mpii", "--out", str(root), "--train", "1", "--val", "1", "-q",
                 "--force"]) == 0
    entries = json.loads((root / "annotations" / "mpii_train.json").read_text())
    images = sorted(p.name for p in (root / "images").iterdir())
    assert images == ["train_000000.jpg", "val_000000.jpg"]
    assert {e["image"] for e in entries} <= set(images)
