"""`hrbench data show`: the grid's size, and the drawn joints (recomputed from the record and the crop
parameters) sitting on the peaks of the target heatmaps the model is trained on, flipped crops included."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from hrbench.cli import main
from hrbench.data import build_dataset
from hrbench.data.crops import crop_joints
from hrbench.data.synth import generate


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("show")
    generate("coco", r / "coco", 4, 1, seed=5)
    generate("mpii", r / "mpii", 2, 1, seed=5)
    return r


def test_grid_size_and_file(root, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["data", "show", str(root / "coco"), "--augment", "--n", "4", "--input", "128x96",
                 "--out", str(out)]) == 0
    img = cv2.imread(str(out))
    # tiles 256x192 (128x96 drawn twice as large), 3 columns (ceil(sqrt(4 * 128 / 96))), 2 rows, 2-px gaps
    assert img.shape == (2 * 258 + 2, 3 * 194 + 2, 3)
    assert "4 coco train crops" in capsys.readouterr().out
    out2 = tmp_path / "mpii.png"
    assert main(["data", "show", str(root / "mpii"), "--dataset", "mpii", "--split", "val", "--n", "2",
                 "--out", str(out2)]) == 0
    assert cv2.imread(str(out2)).shape[2] == 3


def test_rtmpose_augmentation_is_what_the_grid_shows(root, tmp_path, capsys):
    """``--augment-set rtmpose`` draws the crops the trainer feeds RTMPose (stage 1: coarse dropout on every
    crop, HSV shift; stage 2: dropout on half of them), not the dataset's own augmentation."""
    grids = {}
    for name, extra in (("msra", []), ("rtm1", ["--augment-set", "rtmpose"]),
                        ("rtm2", ["--augment-set", "rtmpose", "--stage", "2"])):
        out = tmp_path / f"{name}.png"
        assert main(["data", "show", str(root / "coco"), "--augment", "--n", "4", "--input", "128x96",
                     "--out", str(out), *extra]) == 0
        grids[name] = cv2.imread(str(out))
    said = capsys.readouterr().out
    assert "with the rtmpose augmentation (stage 1)" in said and "(stage 2)" in said
    assert "with the msra augmentation," in said
    assert grids["msra"].shape == grids["rtm1"].shape and not np.array_equal(grids["msra"], grids["rtm1"])
    assert not np.array_equal(grids["rtm1"], grids["rtm2"])
    for extra, words in ((["--augment-set", "yolo"], "unknown --augment-set"), (["--stage", "3"], "invalid --stage"),
                         (["--augment", "--stage", "2"], "has one stage"),
                         (["--augment-set", "rtmpose"], "add --augment")):
        assert main(["data", "show", str(root / "coco"), "--out", str(tmp_path / "bad.png"), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert words in err and len(err.splitlines()) == 1
    assert not (tmp_path / "bad.png").exists()


def test_drawn_joints_sit_on_the_target_peaks(root):
    ds = build_dataset("coco", root / "coco", "train", (128, 96), train=True)
    seen_flip = checked = 0
    for seed in range(12):
        ds.reseed(seed)
        idx = seed % len(ds)
        s = ds[idx]
        pts, shown = crop_joints(ds, idx, s["meta"])
        target, weight = s["target"].numpy(), s["target_weight"].numpy()[:, 0]
        for k in np.flatnonzero(shown & (weight > 0)):
            peak = np.unravel_index(target[k].argmax(), target[k].shape)  # (y, x) at 1/4 resolution
            x, y = pts[k] / 4
            if not (0 <= x < target.shape[2] - 0.5 and 0 <= y < target.shape[1] - 0.5):  # peak inside the map
                continue
            assert abs(peak[1] - x) <= 0.5 + 1e-6 and abs(peak[0] - y) <= 0.5 + 1e-6
            checked += 1
        seen_flip += bool(s["meta"]["flipped"])
    assert seen_flip and checked > 50


def test_bad_options(root, tmp_path, capsys):
    cases = [(["--split", "test"], "unknown --split"), (["--n", "0"], "invalid --n"),
             (["--out", str(tmp_path / "x.jpg")], "PNG"), (["--dataset", "lsp"], "unknown --dataset")]
    for extra, words in cases:
        assert main(["data", "show", str(root / "coco"), "--out", str(tmp_path / "g.png"), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert words in err and len(err.splitlines()) == 1
    assert main(["data", "show", str(tmp_path / "nowhere"), "--out", str(tmp_path / "g.png")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
