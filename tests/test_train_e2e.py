"""End-to-end training on synthetic COCO (slow; CI runs them): (a) Lite-HRNet-18 learns on CPU,
(b) ``torchrun --nproc_per_node 2`` (gloo) reproduces the single-process run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hrbench.data.synth import generate
from hrbench.engine import evaluate_checkpoint, list_runs, train

# (a): Lite-HRNet-18 at 128x96 on a small synthetic COCO set; CPU budget <= 4 minutes on 2 cores.
LEARN = {"train_images": 160, "val_images": 24, "epochs": 8, "batch": 16, "lr": 2e-3}


@pytest.mark.slow
def test_litehrnet18_learns_on_synthetic_coco(tmp_path):
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    t0 = time.perf_counter()
    generate("coco", tmp_path / "coco", LEARN["train_images"], LEARN["val_images"], seed=0)
    t_data = time.perf_counter() - t0
    summary = train("litehrnet_18", tmp_path / "coco", epochs=LEARN["epochs"], batch_size=LEARN["batch"],
                    input_hw=(128, 96), out=tmp_path / "runs", name="lite18", device="cpu", workers=0,
                    lr=LEARN["lr"], val_interval=LEARN["epochs"], val_flip=True, validate_first=True, progress=False)
    total = time.perf_counter() - t0
    before, after = summary["initial"], summary["final"]
    print(f"\nlitehrnet_18 synthetic COCO 128x96, {summary['iterations']} iterations of batch {LEARN['batch']}: "
          f"val loss {before['val_loss']:.3e} -> {after['val_loss']:.3e}, AP {before['AP']:.1f} -> {after['AP']:.1f} "
          f"(AP50 {before['AP50']:.1f} -> {after['AP50']:.1f}); data {t_data:.0f}s, train "
          f"{summary['train_time_s']:.0f}s, total {total:.0f}s")
    assert summary["status"] == "finished" and summary["epochs_done"] == LEARN["epochs"]
    assert after["val_loss"] <= 0.5 * before["val_loss"]
    assert after["AP"] >= before["AP"] + 20.0  # percent: +0.2 absolute
    # the run folder is complete and listed; best.pt evaluates to the logged metric
    run = Path(summary["run_dir"])
    assert {p.name for p in run.iterdir()} >= {"config.json", "metrics.jsonl", "log.txt", "summary.json",
                                              "checkpoints"}
    assert [r["name"] for r in list_runs(tmp_path / "runs")] == ["lite18"]
    m = evaluate_checkpoint("lite18", run / "checkpoints" / "best.pt", tmp_path / "coco", device="cpu", workers=0)
    assert m["AP"] == pytest.approx(summary["best"]["AP"], abs=1e-6)
    assert (m["input"], m["flip"], m["box_source"]) == ("128x96", True, "gt")


DDP_SCRIPT = '''
import dataclasses, json, sys
import torch
from torch import nn
torch.set_num_threads(1)
from hrbench.config import ModelConfig
from hrbench.registry import register_model
from hrbench.engine import train


class TinyNet(nn.Module):
    """Three convolutions without BatchNorm (per-rank BN statistics would differ from one process's)."""

    def __init__(self, width):
        super().__init__()
        self.out_channels = width
        self.body = nn.Sequential(nn.Conv2d(3, width, 3, 2, 1), nn.ReLU(), nn.Conv2d(width, width, 3, 2, 1),
                                  nn.ReLU(), nn.Conv2d(width, width, 3, 1, 1), nn.ReLU())

    def forward(self, x):
        return self.body(x)


@dataclasses.dataclass(frozen=True)
class TinyConfig(ModelConfig):
    width: int = 16

    def build_backbone(self):
        return TinyNet(self.width)


register_model("ddp_tiny_test", paper="test")(lambda: TinyConfig())
data, out, name, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
train("ddp_tiny_test", data, epochs=2, batch_size=batch, input_hw=(64, 48), out=out, name=name, device="cpu",
      workers=0, lr=1e-2, train_overrides={"warmup_iters": 2, "lr_steps": [1]}, progress=False)
'''


@pytest.mark.slow
def test_torchrun_two_processes_match_one(tmp_path):
    generate("coco", tmp_path / "coco", 24, 8, seed=1)
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    common = [str(tmp_path / "coco"), str(tmp_path / "runs")]
    t0 = time.perf_counter()
    one = subprocess.run([sys.executable, str(script), *common, "one", "8"], env=env, capture_output=True,
                         text=True, timeout=300)
    t1 = time.perf_counter()
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                          "0", str(script), *common, "two", "4"], env=env, capture_output=True, text=True,
                         timeout=300)
    t2 = time.perf_counter()
    assert one.returncode == 0, one.stderr[-3000:]
    assert two.returncode == 0, two.stderr[-3000:]
    s1, s2 = (json.loads((tmp_path / "runs" / n / "summary.json").read_text()) for n in ("one", "two"))
    print(f"\n1 process: {t1 - t0:.0f}s, torchrun x2: {t2 - t1:.0f}s; val loss {s1['final']['val_loss']:.6e} vs "
          f"{s2['final']['val_loss']:.6e}; AP {s1['final']['AP']:.3f} vs {s2['final']['AP']:.3f}")
    assert (s1["world_size"], s2["world_size"]) == (1, 2)
    assert s1["total_batch"] == s2["total_batch"] == 8 and s1["iterations"] == s2["iterations"] > 0
    for key in ("val_loss", "AP", "AP50", "AR"):
        assert s2["final"][key] == pytest.approx(s1["final"][key], rel=1e-4, abs=1e-4), key
    w1 = torch.load(tmp_path / "runs" / "one" / "checkpoints" / "last.pt", weights_only=True)["state_dict"]
    w2 = torch.load(tmp_path / "runs" / "two" / "checkpoints" / "last.pt", weights_only=True)["state_dict"]
    assert all(torch.allclose(w1[k], w2[k], rtol=1e-4, atol=1e-6) for k in w1)
