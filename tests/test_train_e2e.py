"""End-to-end training on synthetic COCO (slow; CI runs them): (a) Lite-HRNet-18 learns on CPU,
(b) ``torchrun --nproc_per_node 2`` (gloo) reproduces the single-process run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hrbench.data.synth import generate
from hrbench.engine import evaluate_checkpoint, list_runs, train

# (a): Lite-HRNet-18 at 128x96 on a small synthetic COCO set: 8 epochs x 32 iterations of batch 16 at a constant
# lr 2e-3 (x0.1 for the last epoch; the recipe's proportional steps would decay too early for so short a run).
# About 0.65 s per iteration on one free core: budget <= 4 minutes on a 2-core runner.
LEARN = {"train_images": 300, "val_images": 32, "epochs": 8, "batch": 16, "lr": 2e-3, "lr_steps": [7]}


@pytest.fixture
def cpu_threads():
    """Two threads on a free 2-core runner, one when the cores are busy (oversubscribed threads thrash);
    the previous setting is restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(2 if (os.cpu_count() or 1) >= 2 and os.getloadavg()[0] < 1.5 else 1)
    yield torch.get_num_threads()
    torch.set_num_threads(before)


@pytest.mark.slow
def test_litehrnet18_learns_on_synthetic_coco(tmp_path, cpu_threads):
    t0 = time.perf_counter()
    generate("coco", tmp_path / "coco", LEARN["train_images"], LEARN["val_images"], seed=0)
    t_data = time.perf_counter() - t0
    summary = train("litehrnet_18", tmp_path / "coco", epochs=LEARN["epochs"], batch_size=LEARN["batch"],
                    input_hw=(128, 96), out=tmp_path / "runs", name="lite18", device="cpu", workers=0,
                    lr=LEARN["lr"], train_overrides={"lr_steps": LEARN["lr_steps"]}, val_interval=LEARN["epochs"],
                    val_flip=True, validate_first=True, progress=False)
    total = time.perf_counter() - t0
    before, after = summary["initial"], summary["final"]
    print(f"\nlitehrnet_18 synthetic COCO 128x96, {summary['iterations']} iterations of batch {LEARN['batch']}: "
          f"val loss {before['val_loss']:.3e} -> {after['val_loss']:.3e}, AP {before['AP']:.1f} -> {after['AP']:.1f} "
          f"(AP50 {before['AP50']:.1f} -> {after['AP50']:.1f}); data {t_data:.0f}s, train "
          f"{summary['train_time_s']:.0f}s, total {total:.0f}s, {cpu_threads} thread(s)")
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
from hrbench.engine import evaluate_checkpoint, train


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
data, out, name, batch, ckpt, eval_dir = sys.argv[1:7]
train("ddp_tiny_test", data, epochs=2, batch_size=int(batch), input_hw=(64, 48), out=out, name=name, device="cpu",
      workers=0, lr=1e-2, train_overrides={"warmup_iters": 2, "lr_steps": [1]}, progress=False)
# sharded evaluation of one fixed checkpoint (the one-process run's), gathered on rank 0
evaluate_checkpoint("ddp_tiny_test", ckpt, data, device="cpu", workers=0, batch_size=3, out_dir=eval_dir)
'''


def _run(cmd: list[str], env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess:
    """Run ``cmd`` in its own session; on timeout kill the whole group (torchrun's workers too)."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{' '.join(cmd[:4])} ... timed out after {timeout}s: {err[-2000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.mark.slow
def test_torchrun_two_processes_match_one(tmp_path):
    generate("coco", tmp_path / "coco", 24, 8, seed=1)
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    common = [str(tmp_path / "coco"), str(tmp_path / "runs")]
    ckpt = str(tmp_path / "runs" / "one" / "checkpoints" / "last.pt")
    t0 = time.perf_counter()
    one = _run([sys.executable, str(script), *common, "one", "8", ckpt, str(tmp_path / "eval1")], env)
    t1 = time.perf_counter()
    two = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                str(script), *common, "two", "4", ckpt, str(tmp_path / "eval2")], env)
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
    # the same checkpoint evaluated by 1 and by 2 processes: identical keypoints, same order
    r1, r2 = (json.loads(next((tmp_path / d).glob("*.json")).read_text()) for d in ("eval1", "eval2"))
    assert len(r1) == len(r2) > 0
    assert [r["image_id"] for r in r1] == [r["image_id"] for r in r2]
    assert all(a["keypoints"] == pytest.approx(b["keypoints"], abs=1e-3) for a, b in zip(r1, r2, strict=True))
