"""End-to-end training on synthetic COCO (slow; CI runs it): Lite-HRNet-18 learns on CPU.
Several processes: tests/test_ddp.py."""

from __future__ import annotations

import os
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
    summary = train("litehrnet_18", tmp_path / "coco", epochs=LEARN["epochs"], batch=LEARN["batch"],
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
