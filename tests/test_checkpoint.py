"""Checkpoint I/O: official-format import, hrbench format, error messages, atomic saving."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from conftest import official_fixture

from hrbench.checkpoint import (
    FORMAT,
    hrbench_payload,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from hrbench.errors import CheckpointError
from hrbench.factory import create_model, restore_model


class NotTensors:
    """An arbitrary picklable object: weights_only loading must refuse it."""

    def __init__(self) -> None:
        self.value = 3


@pytest.fixture(scope="module")
def lite18() -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_model("lite18")
    with torch.no_grad():  # non-trivial weights and BN statistics
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand_like(t) + 0.5 if "running_var" in name else torch.randn_like(t) * 0.2)
    return model.eval()


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and msg
    return msg


def test_mmpose0_layout_roundtrip(tmp_path: Path, lite18) -> None:
    sd = {("keypoint_head." + k[5:]) if k.startswith("head.") else k: v for k, v in lite18.state_dict().items()}
    path = tmp_path / "official.pth"
    torch.save({"meta": {"epoch": 210}, "state_dict": sd}, path)
    fresh = create_model("lite18")
    report = load_checkpoint(fresh, path)
    assert report.format == "mmpose" and report.ok and report.payload["meta"]["epoch"] == 210
    assert _same_weights(fresh, lite18)


def test_mmpose1_layout_roundtrip(tmp_path: Path, lite18) -> None:
    sd = dict(lite18.state_dict())  # mmpose 1.x: backbone.* / head.final_layer.*
    assert any(k.startswith("head.final_layer.") for k in sd)
    path = tmp_path / "mmpose1.pth"
    torch.save({"meta": {"mmpose_version": "1.3.1"}, "state_dict": sd, "message_hub": {"step": 1}}, path)
    fresh = create_model("lite18").eval()
    load_checkpoint(fresh, path)
    assert _same_weights(fresh, lite18)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), lite18(x), rtol=0, atol=0)


def test_bare_state_dict_and_dataparallel_prefix(lite18) -> None:
    fresh = create_model("lite18")
    load_checkpoint(fresh, {"module." + k: v for k, v in lite18.state_dict().items()})
    assert _same_weights(fresh, lite18)
    fresh = create_model("lite18")
    load_checkpoint(fresh, {"state_dict": {"module." + k.replace("head.", "keypoint_head.", 1): v
                                           for k, v in lite18.state_dict().items()}})
    assert _same_weights(fresh, lite18)


def test_missing_num_batches_tracked_is_tolerated(lite18) -> None:
    fresh = create_model("lite18")
    sd = {k: v for k, v in lite18.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert load_checkpoint(fresh, sd).ok


def test_fixture_loads_through_importer() -> None:
    path = official_fixture("litehrnet_18_256x192.pt")
    report = load_checkpoint(create_model("litehrnet_18"), path)
    assert report.format == "mmpose" and report.ok and len(report.loaded) > 1000


def test_read_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError) as exc:
        read_checkpoint(tmp_path / "nope.pth")
    assert "nope.pth" in _one_line(exc)


def test_corrupt_file(tmp_path: Path, lite18) -> None:
    path = tmp_path / "corrupt.pth"
    save_checkpoint(path, hrbench_payload(lite18))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])  # truncated: a killed non-atomic writer
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(create_model("lite18"), path)
    msg = _one_line(exc)
    assert "corrupt.pth" in msg and "corrupt" in msg
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(os.urandom(1000))
    with pytest.raises(CheckpointError, match="garbage.pth"):
        read_checkpoint(garbage)


def test_pickled_object_refused_by_weights_only(tmp_path: Path) -> None:
    path = tmp_path / "object.pth"
    torch.save({"state_dict": NotTensors()}, path)
    with pytest.raises(CheckpointError) as exc:
        read_checkpoint(path)
    msg = _one_line(exc)
    assert "object.pth" in msg and "weights_only" in msg


def test_dict_of_strings_is_not_a_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "strings.pth"
    torch.save({"hello": "world", "lr": "0.1"}, path)
    assert read_checkpoint(path) == {"hello": "world", "lr": "0.1"}
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(create_model("lite18"), path)
    msg = _one_line(exc)
    assert "strings.pth" in msg and "not a state_dict" in msg
    torch.save({"state_dict": {"a": "b"}}, path)
    with pytest.raises(CheckpointError, match="not a state_dict"):
        load_checkpoint(create_model("lite18"), path)
    torch.save([torch.zeros(1)], path)
    with pytest.raises(CheckpointError, match="expected a dict"):
        read_checkpoint(path)


def test_other_architecture_official_checkpoint(tmp_path: Path) -> None:
    naive = create_model("naive18")
    path = tmp_path / "naive.pth"
    torch.save({"state_dict": naive.state_dict()}, path)
    target = create_model("lite18")
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(target, path)
    msg = _one_line(exc)
    assert "naive.pth" in msg and "does not fit litehrnet_18" in msg
    assert "missing" in msg and "unexpected" in msg and "shape-mismatched" in msg
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())  # untouched


def test_other_architecture_hrbench_checkpoint(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "n.pt", hrbench_payload(create_model("naive18")))
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(create_model("lite18"), path)
    msg = _one_line(exc)
    assert "naive_litehrnet_18" in msg and "litehrnet_18" in msg


def test_already_read_checkpoint_errors_name_their_file() -> None:
    payload = {"state_dict": create_model("naive18").state_dict()}
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(create_model("lite18"), payload, source="runs/x/best.pt")
    assert "checkpoint runs/x/best.pt does not fit litehrnet_18" in _one_line(exc)


def test_non_strict_reports_mismatches(lite18) -> None:
    sixteen = create_model("lite18", num_keypoints=16)
    with pytest.raises(CheckpointError, match="shape-mismatched"):
        load_checkpoint(sixteen, lite18.state_dict())
    report = load_checkpoint(sixteen, lite18.state_dict(), strict=False)
    assert {k for k, _, _ in report.mismatched} == {"head.final_layer.weight", "head.final_layer.bias"}
    assert not report.missing and not report.unexpected
    assert torch.equal(sixteen.backbone.stem.conv1.conv.weight, lite18.backbone.stem.conv1.conv.weight)


def test_hrbench_format_roundtrip_with_overrides(tmp_path: Path) -> None:
    model = create_model("lite30", num_keypoints=16, with_head=False, num_modules=(1, 1, 1))
    payload = hrbench_payload(model, epoch=3, optimizer={"lr": torch.tensor(0.1)})
    assert payload["format"] == FORMAT and payload["arch"] == "litehrnet_30"
    assert payload["overrides"] == {"with_head": False, "num_modules": (1, 1, 1)}
    path = save_checkpoint(tmp_path / "sub" / "ckpt.pt", payload)
    rebuilt = restore_model("litehrnet_30", path).model
    assert rebuilt.arch == "litehrnet_30" and rebuilt.num_keypoints == 16 and not rebuilt.config.with_head
    assert _same_weights(rebuilt, model)
    report = load_checkpoint(create_model("lite30", num_keypoints=16, with_head=False, num_modules=(1, 1, 1)), path)
    assert report.format == "hrbench" and report.payload["epoch"] == 3
    with pytest.raises(CheckpointError, match="16 keypoints"):
        load_checkpoint(create_model("lite30", with_head=False, num_modules=(1, 1, 1)), path)


def test_save_is_atomic(tmp_path: Path, lite18) -> None:
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, {"format": FORMAT, "arch": "litehrnet_18", "state_dict": {"x": torch.ones(2)}})
    good = path.read_bytes()
    with pytest.raises(Exception):  # noqa: B017 - whatever torch.save raises for an unpicklable value
        save_checkpoint(path, {"state_dict": {"x": torch.ones(2)}, "bad": lambda: None})
    assert path.read_bytes() == good  # the old checkpoint survives a failed write
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]  # no temporary left behind


def test_a_file_of_random_bytes_is_not_called_pickled_objects(tmp_path):
    rnd = tmp_path / "random.pt"
    rnd.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        read_checkpoint(rnd)
    good = tmp_path / "good.pt"
    torch.save({"state_dict": {"w": torch.ones(3)}}, good)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:300])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        read_checkpoint(cut)
    objects = tmp_path / "objects.pt"
    torch.save({"model": torch.nn.Linear(2, 2)}, objects)
    with pytest.raises(CheckpointError, match="pickled objects"):
        read_checkpoint(objects)
