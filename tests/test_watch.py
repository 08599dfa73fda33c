"""Watching runs (issue 24): TensorBoard event files read back with TensorBoard's own reader,
``hrbench runs`` / ``runs plot`` over real runs (one interrupted by a real SIGINT), the software
stack on every run record and bench result."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from hrbench.cli import main
from hrbench.engine import train
from hrbench.engine import trainer as trainer_mod
from hrbench.errors import DivergedError

ARCH, HW = "dpn1_32", (64, 48)  # a registered DPN: 64x48 fits it, one epoch takes about a second
#: One intra-op thread, as the CLI runs (``--threads 1``): runs a and b must sum in the same order.
COMMON = dict(epochs=1, batch=4, input_hw=HW, device="cpu", workers=0, lr=5e-3, progress=False, threads=1)


def _cli(data: Path, out: Path, name: str, *extra: str) -> list[str]:
    return ["train", ARCH, "--data", str(data), "--input", "64x48", "--out", str(out), "--name", name, "--device",
            "cpu", "--workers", "0", "--batch", "4", "--lr", "5e-3", "--threads", "1", "--no-progress", *extra]


def _events(run: Path) -> EventAccumulator:
    acc = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def _persons(data: Path, split: str) -> int:
    """Annotated persons (with keypoints) of a split, read from its COCO file."""
    anns = json.loads((data / "annotations" / f"person_keypoints_{split}.json").read_text())["annotations"]
    return sum(a["num_keypoints"] > 0 for a in anns)


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The data (as `hrbench data synth --train 8 --val 3` writes it) and four runs of one registry:
    ``a`` (TensorBoard, validated before and after its one epoch, a log point every 2 steps), ``b``
    (the same through the CLI with --no-tensorboard), ``c`` (a real `hrbench train` process stopped
    by SIGINT), ``d`` (diverged on resume: lr 1e12 from its second epoch on)."""
    root = tmp_path_factory.mktemp("watch")
    data, reg = root / "data", root / "runs"
    assert main(["data", "synth", "--dataset", "coco", "--out", str(data), "--train", "8", "--val", "3", "-q"]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    err_path = root / "c.stderr"  # a file, not a pipe: a pipe left unread fills up and blocks the child
    err_file = open(err_path, "w")  # noqa: SIM115 (closed below)
    # SIGINT back to its default in the child: a job started in the background of a non-interactive shell
    # inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler
    proc = subprocess.Popen([sys.executable, "-m", "hrbench", *_cli(data, reg, "c", "--epochs", "500")], env=env,
                            stdout=subprocess.DEVNULL, stderr=err_file, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    train(ARCH, data, out=reg, name="a", validate_first=True, log_interval=2, **COMMON)
    assert main(_cli(data, reg, "b", "--epochs", "1", "--validate-first", "--no-tensorboard")) == 0
    train(ARCH, data, out=reg, name="d", **{**COMMON, "epochs": 3}, stop_after=1)
    real = trainer_mod.lr_at
    with pytest.MonkeyPatch.context() as mp, pytest.raises(DivergedError):
        mp.setattr(trainer_mod, "lr_at",
                     lambda cfg, epoch, it, *rest: 1e12 if epoch >= 1 else real(cfg, epoch, it, *rest))
        train(ARCH, data, out=reg, name="d", resume=True, **{**COMMON, "epochs": None})
    deadline = time.time() + 240
    while not (reg / "c" / "summary.json").exists():  # the first epoch is checkpointed
        assert proc.poll() is None and time.time() < deadline, err_path.read_text()
        time.sleep(0.2)
    from hrbench.reports.run_table import run_row

    live_state = run_row(reg / "c").state
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=120)
    err_file.close()
    return {"data": data, "reg": reg, "c_code": code, "c_err": err_path.read_text(), "c_live_state": live_state}


# ------------------------------------------------------------------------------------------- TensorBoard
def test_event_files_hold_the_stated_scalars_and_the_crop_grid(runs):
    run = runs["reg"] / "a"
    acc = _events(run)
    tags = acc.Tags()
    train_tags = ["train/loss", "train/lr", "train/img_per_s", "train/data_wait"]
    val_tags = ["val/loss", "val/AP", "val/AP50", "val/AP75", "val/AR"]
    assert sorted(tags["scalars"]) == sorted(train_tags + val_tags)
    assert tags["images"] == ["val/crops"]
    events = _metrics(run)
    train_ev = [e for e in events if e["event"] == "train"]
    val_ev = [e for e in events if e["event"] == "val"]
    steps = _persons(runs["data"], "train") // 4  # batch 4, the last partial batch dropped
    points = sorted(set(range(2, steps + 1, 2)) | {steps})  # a log point every 2 steps and at the epoch's end
    assert steps >= 2 and [e["iter"] for e in train_ev] == points
    for tag in train_tags:
        assert [s.step for s in acc.Scalars(tag)] == points, tag
    for tag in val_tags:  # validations before and after the epoch
        assert [s.step for s in acc.Scalars(tag)] == [0, steps], tag
    total_batch = json.loads((run / "summary.json").read_text())["total_batch"]
    assert total_batch == 4
    for s, e in zip(acc.Scalars("train/loss"), train_ev, strict=True):
        assert s.value == pytest.approx(e["loss"], rel=1e-6)
    for s, e in zip(acc.Scalars("train/lr"), train_ev, strict=True):
        assert s.value == pytest.approx(e["lr"], rel=1e-6)
    for s, e in zip(acc.Scalars("train/img_per_s"), train_ev, strict=True):  # metrics.jsonl: per-step means
        assert s.value == pytest.approx(total_batch / (e["data_time"] + e["step_time"]), rel=1e-5)
    for s, e in zip(acc.Scalars("train/data_wait"), train_ev, strict=True):
        assert s.value == pytest.approx(e["data_time"] / (e["data_time"] + e["step_time"]), rel=1e-5)
        assert 0 <= s.value < 1
    for key, tag in (("val_loss", "val/loss"), ("AP", "val/AP"), ("AR", "val/AR")):
        assert [s.value for s in acc.Scalars(tag)] == pytest.approx([e[key] for e in val_ev], rel=1e-6)


def test_the_crop_grid_is_fixed_ground_truth_beside_a_changing_prediction(runs):
    images = _events(runs["reg"] / "a").Images("val/crops")
    assert [i.step for i in images] == [0, _persons(runs["data"], "train") // 4]
    tiles = 2 * min(_persons(runs["data"], "val"), 8)  # ground truth + prediction per crop, 4 tiles a row
    th, tw, pad = 64 * 3, 48 * 3, 2  # crops drawn 3x (192 px tall)
    rows = -(-tiles // 4)
    grids = [cv2.imdecode(np.frombuffer(i.encoded_image_string, np.uint8), cv2.IMREAD_COLOR) for i in images]
    for g, i in zip(grids, images, strict=True):
        assert (i.height, i.width) == g.shape[:2] == (rows * (th + pad) + pad, 4 * (tw + pad) + pad)

    def tile(g, k):
        r, c = divmod(k, 4)
        return g[pad + r * (th + pad):pad + r * (th + pad) + th, pad + c * (tw + pad):pad + c * (tw + pad) + tw]

    for k in range(tiles):
        same = np.array_equal(tile(grids[0], k), tile(grids[1], k))
        assert same == (k % 2 == 0), k  # gt tiles (even) equal before and after training; predictions moved


def test_no_tensorboard_writes_none_and_training_is_the_same(runs):
    a, b = runs["reg"] / "a", runs["reg"] / "b"
    assert (a / "tb").is_dir() and not (b / "tb").exists()
    sa, sb = (json.loads((r / "summary.json").read_text()) for r in (a, b))
    assert sa["final"]["val_loss"] == sb["final"]["val_loss"]  # logging touches neither weights nor RNG
    wa = torch.load(a / "checkpoints" / "last.pt", weights_only=True)["state_dict"]
    wb = torch.load(b / "checkpoints" / "last.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_an_interrupted_run_keeps_its_events(runs):
    assert runs["c_code"] == 130, runs["c_err"]
    acc = _events(runs["reg"] / "c")
    done = json.loads((runs["reg"] / "c" / "summary.json").read_text())["epochs_done"]
    assert len(acc.Scalars("val/loss")) >= done >= 1
    assert len(acc.Images("val/crops")) >= done


def test_a_resumed_run_continues_its_curves_without_duplicates(runs, tmp_path):
    run = tmp_path / "a2"
    shutil.copytree(runs["reg"] / "a", run)  # run a: one epoch, then resumed to two
    train(ARCH, runs["data"], out=tmp_path, name="a2", resume=True, log_interval=2, **{**COMMON, "epochs": 2})
    acc = _events(run)
    steps = _persons(runs["data"], "train") // 4
    assert [s.step for s in acc.Scalars("val/loss")] == [0, steps, 2 * steps]  # the step-`steps` one kept
    assert [s.step for s in acc.Scalars("train/loss")] == sorted(set(range(2, 2 * steps + 1, 2)) | {steps, 2 * steps})
    assert [i.step for i in acc.Images("val/crops")] == [0, steps, 2 * steps]
    # a killed invocation's events after its checkpoint are dropped: log a step the resumed run trains again
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(str(run / "tb"))
    w.add_scalar("val/loss", 99.0, 2 * steps + 1)
    w.close()
    train(ARCH, runs["data"], out=tmp_path, name="a2", resume=True, log_interval=2, **{**COMMON, "epochs": 3})
    acc = _events(run)
    values = {s.step: s.value for s in acc.Scalars("val/loss")}
    assert sorted(values) == [0, steps, 2 * steps, 3 * steps] and 99.0 not in values.values()


# ------------------------------------------------------------------------------------------- hrbench runs
def test_runs_lists_each_run_with_its_state(runs, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # the table's every column whole, whatever terminal pytest runs in
    assert runs["c_live_state"] == "running"  # while its process held the folder
    assert main(["runs", "--runs", str(runs["reg"]), "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert sorted(rows) == ["a", "b", "c", "d"]
    assert {n: r["state"] for n, r in rows.items()} == {"a": "finished", "b": "finished", "c": "interrupted",
                                                       "d": "diverged"}
    a = rows["a"]
    assert (a["arch"], a["dataset"], a["input"], a["epochs_done"], a["epochs"]) == (ARCH, "coco", "64x48", 1, 1)
    assert a["metric"] == "AP" and a["best_epoch"] == 1
    events = _metrics(runs["reg"] / "a")
    epoch_s = sum(e["epoch_time_s"] for e in events if e["event"] == "epoch")
    val_s = sum(e["val_time_s"] for e in events if e["event"] == "val")
    steps = _persons(runs["data"], "train") // 4
    assert a["img_s"] == pytest.approx(steps * 4 / epoch_s) and a["wall_s"] == pytest.approx(epoch_s + val_s)
    assert rows["c"]["epochs"] == 500 and 1 <= rows["c"]["epochs_done"] < 500
    assert (rows["d"]["epochs_done"], rows["d"]["epochs"]) == (1, 3)
    assert main(["runs", "--runs", str(runs["reg"]), "[cd]"]) == 0
    out = capsys.readouterr().out
    assert "interrupted" in out and "diverged" in out and "finished" not in out


def test_runs_plot_draws_every_run(runs, tmp_path, capsys):
    out = tmp_path / "curves.png"
    assert main(["runs", "plot", "a", "c", str(runs["reg"] / "b"), "--runs", str(runs["reg"]), "--out", str(out),
                 "--json"]) == 0
    drawn = json.loads(capsys.readouterr().out)
    assert drawn["metric"] == "AP" and list(drawn["runs"]) == ["a", "c", "b"]
    assert drawn["runs"]["a"] == {"train_points": 1, "val_points": 2}  # epoch 0 (untrained) and epoch 1
    c_done = json.loads((runs["reg"] / "c" / "summary.json").read_text())["epochs_done"]
    assert drawn["runs"]["c"]["val_points"] >= c_done
    img = cv2.imread(str(out))
    assert img.shape[:2] == (440, 1100)  # 10 x 4 inches at 110 dpi
    assert main(["runs", "plot", "*", "--runs", str(runs["reg"]), "--metric", "val_loss", "--out",
                 str(tmp_path / "all.pdf")]) == 0
    assert (tmp_path / "all.pdf").read_bytes().startswith(b"%PDF")


@pytest.mark.parametrize("argv, message", [
    (["runs", "plot"], "no runs given"),
    (["runs", "plot", "nosuchrun"], "no run 'nosuchrun'"),
    (["runs", "plot", "a", "--metric", "PCKh"], "unknown --metric 'PCKh' for run a"),
    (["runs", "plot", "a", "--out", "x.jpg"], "--out x.jpg"),
    (["runs", "zz*"], "no runs matching 'zz*'"),
    (["runs", "a", "--metric", "AP"], "--metric is an option of `hrbench runs plot"),
])
def test_runs_bad_input_is_one_line(runs, tmp_path, capsys, argv, message, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv + ["--runs", str(runs["reg"])]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hrbench: error: ") and len(err.strip().splitlines()) == 1 and message in err, err
    assert list(tmp_path.iterdir()) == []  # no figure written


def test_no_runs_at_all_is_one_line(tmp_path, capsys):
    assert main(["runs", "--runs", str(tmp_path)]) == 2
    assert "no runs under" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- the stack
def test_summary_carries_the_software_stack(runs):
    stack = json.loads((runs["reg"] / "a" / "summary.json").read_text())["stack"]
    repo = Path(__file__).resolve().parents[1]
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    import hrbench

    assert stack["hrbench"] == hrbench.__version__ and stack["torch"] == torch.__version__
    assert stack["cuda"] == torch.version.cuda and stack["world_size"] == 1 and stack["precision"] == "fp32"
    assert stack["device"].startswith("CPU") and isinstance(stack["threads"], int) and stack["threads"] >= 1
    assert stack["git_commit"] == (head or None) and set(stack) >= {"cudnn", "git_dirty", "python"}
    b = json.loads((runs["reg"] / "b" / "summary.json").read_text())["stack"]
    assert b["threads"] == 1  # the CLI run's --threads 1


def test_stack_without_git_or_outside_a_checkout(tmp_path, monkeypatch):
    from hrbench import stack

    stack.git_state.cache_clear()
    monkeypatch.setenv("PATH", str(tmp_path))  # no git on the machine
    assert stack.git_state() == (None, None)
    assert stack.software_stack()["git_commit"] is None
    stack.git_state.cache_clear()
    monkeypatch.undo()
    monkeypatch.setattr(stack, "PACKAGE_DIR", tmp_path / "hrbench")  # an installed copy, not a checkout
    assert stack.git_state() == (None, None)
    stack.git_state.cache_clear()


def test_bench_result_carries_the_stack():
    from hrbench.bench.latency import benchmark

    d = benchmark(ARCH, HW, iters=2, warmup=1).to_dict()
    assert d["stack"]["torch"] == torch.__version__ and d["stack"]["threads"] == d["threads"]
    assert d["stack"]["device"].startswith("CPU")
