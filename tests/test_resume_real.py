"""Resume with a real registered model (Dite-HRNet-18: BatchNorm, dynamic kernels, the frozen dead
mask conv, the doubled-momentum fusion BNs): 2 epochs straight == 1 epoch + resume 1, bit for bit."""

from __future__ import annotations

import pytest
import torch

from hrbench.checkpoint import read_checkpoint
from hrbench.data.synth import generate
from hrbench.engine import train


@pytest.mark.slow
def test_dite18_resume_is_bit_identical(tmp_path):
    generate("coco", tmp_path / "coco", 8, 2, seed=7)
    args = dict(epochs=2, batch=4, input_hw=(64, 64), out=tmp_path / "runs", device="cpu", workers=0, lr=1e-3,
                progress=False, val_flip=False, threads=1)
    straight = train("dite18", tmp_path / "coco", name="straight", **args)
    part = train("dite18", tmp_path / "coco", name="split", stop_after=1, **args)
    assert part["status"] == "running" and part["epochs_done"] == 1
    resumed = train("dite18", tmp_path / "coco", resume=True, name="split", out=tmp_path / "runs", device="cpu",
                    workers=1, progress=False, threads=1)
    assert resumed["status"] == "finished" and resumed["iterations"] == straight["iterations"] > 2
    a = read_checkpoint(tmp_path / "runs" / "straight" / "checkpoints" / "last.pt")
    b = read_checkpoint(tmp_path / "runs" / "split" / "checkpoints" / "last.pt")
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert resumed["final"]["val_loss"] == straight["final"]["val_loss"]
