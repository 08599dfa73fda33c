"""Engine unit tests: recipes and lr schedule numbers, the loss, checkpoint atomicity, resume identity."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from conftest import TinyBackbone
from torch import nn
from torch.utils.data import Dataset

from hrbench.engine import dist as D
from hrbench.engine.recipes import Training, get_recipe, lr_at, resolve_training, scale_steps
from hrbench.engine.run_config import RunConfig
from hrbench.engine.runs import RunDir, list_runs, read_metrics
from hrbench.engine.samples import SeededSamples
from hrbench.engine.trainer import Trainer, joints_mse_loss
from hrbench.errors import ConfigError, DivergedError
from hrbench.models.pose import PoseModel
from hrbench.registry import Recipe

# ------------------------------------------------------------------------------------------- recipes


def test_official_recipes(monkeypatch):
    lite = get_recipe("lite18", "coco", (256, 192))
    assert (lite.epochs, lite.batch_per_gpu, lite.gpus, lite.lr, lite.lr_steps) == (210, 64, 8, 2e-3, (170, 200))
    assert get_recipe("lite18", "coco", (384, 288)).batch_per_gpu == 32
    assert get_recipe("lite18", "mpii", (256, 256)).batch_per_gpu == 32
    assert get_recipe("small_hrnet_w16", "coco", (256, 192)) == lite  # Lite-HRNet's baseline, its recipe
    assert get_recipe("dite18", "coco", (256, 192)).epochs == 270
    assert get_recipe("dite18", "mpii", (256, 256)).epochs == 260
    hr = get_recipe("hrnet_w32", "coco", (256, 192))
    assert (hr.epochs, hr.lr, hr.batch_per_gpu, hr.lr_steps) == (210, 1e-3, 32, (170, 200))
    assert get_recipe("dpn2_64", "coco", (256, 192)).lr == 1e-3
    from hrbench import registry

    own = [e for e in map(registry.get_entry, registry.list_models())
           if e.fn.__module__.startswith(registry.SPEC_PACKAGE)]
    assert len(own) >= 29 and all(e.recipe is not None for e in own)  # every variant of hrbench's specs trains
    with pytest.raises(ConfigError):
        get_recipe("lite18", "imagenet", (256, 192))
    monkeypatch.setitem(registry._REGISTRY, "no_recipe", registry.ModelEntry("no_recipe", lambda: None, paper="x"))
    with pytest.raises(ConfigError, match="no_recipe has no training recipe") as e:  # not a silent default
        get_recipe("no_recipe", "coco", (256, 192))
    assert "\n" not in str(e.value)


def test_resolve_training_scaling_rules():
    lite = get_recipe("lite18", "coco", (256, 192))
    full = resolve_training(lite, world_size=8)
    assert full.lr == pytest.approx(2e-3) and not full.lr_scaled
    assert full.lr_steps == (170, 200) and full.warmup_iters == 500
    short = resolve_training(lite, epochs=21, batch=32, world_size=1)
    assert short.lr_steps == (17, 20) and short.warmup_iters == 50
    assert short.lr == pytest.approx(2e-3 * 32 / 512) and short.lr_scaled
    assert short.total_batch == 32
    assert resolve_training(lite, epochs=2).lr_steps == (2, 2)
    assert scale_steps((170, 200), 1, 210) == (1, 1)
    dite = resolve_training(get_recipe("dite18", "coco", (256, 192)), epochs=27, batch=32, world_size=8)
    assert dite.lr_steps == (17, 20) and dite.lr == pytest.approx(2e-3)
    given = resolve_training(lite, batch=4, lr=1e-3, train_overrides={"warmup_iters": 7, "lr_steps": 3})
    assert given.lr == 1e-3 and given.warmup_iters == 7 and given.lr_steps == (3,) and not given.lr_scaled


@pytest.mark.parametrize("kwargs, word", [
    ({"epochs": 0}, "epochs"), ({"batch": 0}, "batch size"), ({"lr": 0.0}, "lr"), ({"lr": -1e-3}, "lr"),
    ({"train_overrides": {"gamma": 2.0}}, "gamma"), ({"train_overrides": {"warmup_iters": -1}}, "warmup_iters"),
    ({"train_overrides": {"lr_steps": (200, 170)}}, "lr_steps"), ({"train_overrides": {"momentum": 0.9}}, "momentum"),
])
def test_resolve_training_rejects_out_of_range(kwargs, word):
    with pytest.raises(ConfigError, match=word) as e:
        resolve_training(get_recipe("lite18", "coco", (256, 192)), **kwargs)
    assert "\n" not in str(e.value)


def test_lr_schedule_numbers():
    cfg = resolve_training(get_recipe("lite18", "coco", (256, 192)), world_size=8)
    assert lr_at(cfg, 0, 0) == pytest.approx(2e-6)
    assert lr_at(cfg, 0, 250) == pytest.approx(2e-3 * (1 - 0.5 * 0.999))
    assert lr_at(cfg, 1, 500) == pytest.approx(2e-3)
    assert lr_at(cfg, 169, 10**5) == pytest.approx(2e-3)
    assert lr_at(cfg, 170, 10**5) == pytest.approx(2e-4)
    assert lr_at(cfg, 200, 10**5) == pytest.approx(2e-5)


def test_resolve_config_for_registered_model(tmp_path):
    from hrbench.engine import TrainOptions, resolve_config

    cfg = resolve_config(TrainOptions("lite18", tmp_path, "coco", epochs=21, batch=16, input_hw=(128, 96),
                                      out=tmp_path, name="x"), world_size=1).to_dict()
    assert cfg["arch"] == "litehrnet_18" and cfg["input"] == [128, 96] and cfg["keypoints"] == 17
    assert cfg["train"]["lr"] == pytest.approx(2e-3 * 16 / 512) and cfg["train"]["lr_steps"] == [17, 20]
    assert cfg["run_dir"] == str(tmp_path / "x") and cfg["metric"] == "AP"
    assert resolve_config(TrainOptions("lite18", dataset="mpii"), world_size=1).train.epochs == 210
    json.dumps(cfg)  # config.json must be serialisable
    with pytest.raises(ConfigError, match="input"):
        resolve_config(TrainOptions("lite18", input_hw=(130, 96)))
    with pytest.raises(ConfigError, match="no_such_param"):
        resolve_config(TrainOptions("lite18", overrides={"no_such_param": 3}))


# ------------------------------------------------------------------------------------------- loss


def test_joints_mse_loss_matches_reference_definition():
    g = torch.Generator().manual_seed(0)
    pred, gt = torch.rand(3, 5, 8, 6, generator=g), torch.rand(3, 5, 8, 6, generator=g)
    w = torch.tensor([[1.0], [0.0], [1.0], [1.0], [0.5]]).expand(3, 5, 1).clone()
    w[1, 2] = 0.0
    ref = 0.0
    for k in range(5):  # mmpose 0.x JointsMSELoss: MSE of the weighted heatmaps of joint k, averaged over joints
        ref += torch.mean((pred[:, k] * w[:, k, :, None] - gt[:, k] * w[:, k, :, None]) ** 2)
    ref /= 5
    assert joints_mse_loss(pred, gt, w).item() == pytest.approx(ref.item(), rel=1e-6)
    assert joints_mse_loss(pred, gt, w, reduction="none").mean().item() == pytest.approx(ref.item(), rel=1e-6)
    assert joints_mse_loss(gt, gt, w).item() == 0.0
    # the reproduction: prediction ones(1, 1, 2, 2), target zeros, weight 1 -> the reference gives 1.0
    assert joints_mse_loss(torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 1)).item() == 1.0
    # two joints, one weighted 0: (1 + 0) / 2
    two = joints_mse_loss(torch.ones(1, 2, 2, 2), torch.zeros(1, 2, 2, 2), torch.tensor([[[1.0], [0.0]]]))
    assert two.item() == 0.5


def test_shard_unshard_roundtrip():
    for world in (1, 2, 3):
        parts = [[i for i in D.shard(10, D.DistInfo(r, world))] for r in range(world)]
        assert D.unshard(parts, 10) == list(range(10))


# ------------------------------------------------------------------------------------------- tiny trainer


class TinyPoseSet(Dataset):
    """Random blobs whose heatmap is the target; augmentation draws from numpy *and* torch RNGs."""

    num_keypoints = 2

    def __init__(self, n: int, hw=(32, 24)) -> None:
        self.n, self.hw = n, hw

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = np.random.default_rng(i)
        h, w = self.hw
        ys, xs = np.mgrid[0: h // 4, 0: w // 4]
        target = np.zeros((2, h // 4, w // 4), np.float32)
        for k in range(2):
            cy, cx = g.uniform(1, h // 4 - 2), g.uniform(1, w // 4 - 2)
            target[k] = np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / 2)
        image = torch.from_numpy(np.repeat(np.kron(target.sum(0), np.ones((4, 4)))[None], 3, 0).astype(np.float32))
        image = image + 0.1 * torch.randn_like(image) + float(np.random.uniform(-0.1, 0.1))  # "augmentation"
        return {"image": image, "target": torch.from_numpy(target), "target_weight": torch.ones(2, 1),
                "meta": {"index": i}}


def _cfg(epochs=2, batch=4, seed=0):
    train = Training(optimizer="adam", epochs=epochs, batch=batch, world_size=1, total_batch=batch,
                     recipe_total_batch=batch, lr=1e-2, lr_scaled=False, lr_steps=(1,), gamma=0.5, warmup_iters=3,
                     warmup_ratio=0.1, weight_decay=0.0)
    return RunConfig(arch="tiny", paper="test", overrides={}, dataset="coco", data=None, input_hw=(16, 16),
                     keypoints=2, metric="val_loss", seed=seed, recipe=Recipe("test", "test", 2, batch, 1, 1e-2),
                     train=train, val_interval=1, val_flip=False, amp=None, channels_last=False, gpu_aug=False,
                     workers=0, name="tiny", run_dir=None)


def _trainer(run=None, **kw):
    torch.manual_seed(0)
    model = PoseModel(TinyBackbone(), 2)
    return Trainer(model, TinyPoseSet(24), TinyPoseSet(8), _cfg(**kw), run, torch.device("cpu"))


def _save(run: RunDir):
    from hrbench.checkpoint import save_checkpoint

    def on_checkpoint(tr, improved):
        run.materialize()
        save_checkpoint(run.last, tr.payload())
        if improved:
            save_checkpoint(run.best, tr.payload())

    return on_checkpoint


def test_seeded_samples_are_order_independent():
    view = SeededSamples(TinyPoseSet(6), seed=3)
    view.set_epoch(1)
    forward = [view[i]["image"] for i in range(6)]
    backward = [view[i]["image"] for i in reversed(range(6))][::-1]
    assert all(torch.equal(a, b) for a, b in zip(forward, backward, strict=True))
    view.set_epoch(2)
    assert not torch.equal(view[0]["image"], forward[0])


def test_seeded_samples_leave_the_callers_rngs_alone():
    """With workers=0 samples load in the main process: its RNGs draw afterwards what they would have."""
    import random

    view = SeededSamples(TinyPoseSet(3), seed=1)
    for load in (False, True):
        torch.manual_seed(5)
        np.random.seed(5)
        random.seed(5)
        if load:
            view[2]
        drawn = (torch.rand(3), np.random.rand(3), random.random())
        if not load:
            expected = drawn
    assert torch.equal(drawn[0], expected[0]) and np.array_equal(drawn[1], expected[1]) and drawn[2] == expected[2]


def test_training_reduces_loss_and_checkpoint_is_weights_only(tmp_path):
    from hrbench.checkpoint import read_checkpoint

    run = RunDir(tmp_path / "r")
    tr = _trainer(run=run, epochs=3)
    before = tr.val_loss()
    tr.fit(on_checkpoint=_save(run))
    assert tr.epoch == 3 and tr.iteration == 3 * 6
    assert tr.final["val_loss"] < 0.7 * before
    ck = read_checkpoint(run.last)  # weights_only=True
    assert ck["format"] == "hrbench-checkpoint-v1" and ck["epoch"] == 3 and ck["iteration"] == 18
    assert ck["best_metric"]["val_loss"] == pytest.approx(min(m["val_loss"] for m in tr.history))
    assert set(ck) >= {"arch", "overrides", "num_keypoints", "state_dict", "optimizer", "scheduler", "rng", "recipe"}
    assert read_checkpoint(run.best)["epoch"] == 1 + int(np.argmin([m["val_loss"] for m in tr.history]))


def test_resume_gives_identical_weights(tmp_path):
    from hrbench.checkpoint import read_checkpoint

    straight = _trainer(epochs=2)
    straight.fit()
    run = RunDir(tmp_path / "r")
    first = _trainer(run=run, epochs=2)
    first.fit(stop_after=1, on_checkpoint=_save(run))
    assert first.epoch == 1
    torch.manual_seed(123)  # a resumed process starts from unrelated RNG states
    np.random.seed(7)
    second = _trainer(run=run, epochs=2)
    second.load_state(read_checkpoint(run.last))
    second.fit(on_checkpoint=_save(run))
    a, b = straight.raw_model.state_dict(), second.raw_model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert second.iteration == straight.iteration and second.epoch == 2


def test_killed_checkpoint_write_keeps_last_good(tmp_path, monkeypatch):
    """A save interrupted mid-write leaves the previous last.pt intact and resumable."""
    from hrbench.checkpoint import read_checkpoint

    run = RunDir(tmp_path / "r")
    tr = _trainer(run=run, epochs=2)
    tr.fit(stop_after=1, on_checkpoint=_save(run))
    good = run.last.read_bytes()
    real_save = torch.save

    def dying_save(obj, f, *a, **k):
        f.write(b"partial garbage")
        raise KeyboardInterrupt  # the process is killed while writing

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        tr.fit(on_checkpoint=_save(run))
    monkeypatch.setattr(torch, "save", real_save)
    assert run.last.read_bytes() == good
    assert {p.name for p in (tmp_path / "r" / "checkpoints").iterdir()} <= {"last.pt", "best.pt"}  # no temp files
    assert read_checkpoint(run.last)["epoch"] == 1


def test_run_dir_buffers_until_first_checkpoint(tmp_path):
    run = RunDir(tmp_path / "runs" / "a")
    run.append_metrics({"event": "train", "loss": 1.0})
    run.append_log("hello")
    assert not run.path.exists()
    run.discard_if_new()
    run.materialize()
    assert read_metrics(run.path) == [{"event": "train", "loss": 1.0}]
    assert run.log_path.read_text() == "hello\n"
    run.discard_if_new()  # created here but no checkpoint -> removed
    assert not run.path.exists()
    assert list_runs(tmp_path / "runs") == [] and list_runs(tmp_path / "none") == []


def test_nan_loss_is_reported():
    tr = _trainer(epochs=1)
    for group in tr.optimizer.param_groups:
        group["lr"] = math.inf
    tr.tcfg = dataclasses.replace(tr.tcfg, lr=1e30, warmup_iters=0)
    tr.log_interval = 1
    with pytest.raises(DivergedError, match="training diverged: the loss became"):
        for _ in range(3):
            tr.train_epoch()


# ------------------------------------------------------------------------------------------- API + CLI, synthetic

def _api_train(root, out, name, **kw):
    from hrbench.engine import train

    args = dict(epochs=2, batch=4, input_hw=(64, 48), out=out, name=name, device="cpu", workers=0, lr=5e-3,
                progress=False)
    return train("tiny_engine_test", root, **{**args, **kw})


def test_api_resume_is_identical_and_run_folder_complete(tiny_arch, synth, tmp_path):
    from hrbench.checkpoint import read_checkpoint

    straight = _api_train(synth, tmp_path, "straight")
    part = _api_train(synth, tmp_path, "split", stop_after=1)
    assert part["status"] == "running" and part["epochs_done"] == 1
    resumed = _api_train(synth, tmp_path, "split", resume=True, workers=1)
    assert resumed["status"] == "finished" and resumed["iterations"] == straight["iterations"]
    a = read_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")
    b = read_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert resumed["final"]["AP"] == straight["final"]["AP"]
    assert resumed["final"]["val_loss"] == straight["final"]["val_loss"]
    run = tmp_path / "split"
    assert {p.name for p in run.iterdir()} == {".lock", ".hrbench-run", "config.json", "metrics.jsonl", "log.txt",
                                              "summary.json", "checkpoints", "tb"}
    assert len(list((run / "tb").glob("events.out.tfevents.*"))) == 2  # the first invocation's, the resumed one's
    assert {p.name for p in (run / "checkpoints").iterdir()} <= {"last.pt", "best.pt"}
    events = [e["event"] for e in read_metrics(run)]
    assert events.count("val") == 2 and "resume" in events
    runs = list_runs(tmp_path)
    assert [r["name"] for r in runs] == ["split", "straight"]
    s = runs[0]
    assert (s["arch"], s["dataset"], s["input"], s["keypoints"], s["epochs"]) == ("tiny_engine_test", "coco",
                                                                                  [64, 48], 17, 2)
    assert s["best"]["box_source"] == "gt" and s["best"]["input"] == "64x48" and "AP" in s["best"]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["train"]["lr"] == 5e-3 and cfg["train"]["total_batch"] == 4


def test_failure_before_first_checkpoint_leaves_no_folder(tiny_arch, synth, tmp_path, monkeypatch):
    from hrbench.engine import trainer

    def boom(self, *a, **k):
        raise RuntimeError("simulated crash in the first epoch")

    monkeypatch.setattr(trainer.Trainer, "train_epoch", boom)
    with pytest.raises(RuntimeError):
        _api_train(synth, tmp_path, "crash")
    assert not (tmp_path / "crash").exists()


def test_cli_train_eval_and_errors(tiny_arch, synth, tmp_path, capsys):
    from hrbench.cli import main

    out = str(tmp_path / "runs")
    base = ["train", tiny_arch, "--data", str(synth), "--input", "64x48", "--out", out, "--device", "cpu",
            "--workers", "0"]
    for bad, word in ((["--epochs", "0"], "epochs"), (["--batch", "0"], "batch"), (["--lr", "0"], "lr"),
                      (["--lr", "-0.1"], "lr"), (["--set", "width=0"], "width"), (["--set", "train.gamma=3"], "gamma"),
                      (["--amp", "fp8"], "amp"), (["--dataset", "voc"], "dataset")):
        assert main(base + bad) == 2, bad
        err = capsys.readouterr().err.strip()
        assert err.startswith("hrbench: error:") and word in err and "\n" not in err
    assert main(["train", tiny_arch, "--data", str(tmp_path / "nope"), "--out", out]) == 2
    assert "data directory" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()

    assert main(base + ["--epochs", "9", "--batch", "4", "--print-config"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["train"]["epochs"] == 9 and cfg["train"]["lr"] == pytest.approx(2e-3 * 4 / 256)
    assert not (tmp_path / "runs").exists()

    assert main(base + ["--epochs", "1", "--batch", "4", "--name", "c", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "finished" and summary["checkpoints"]["best"]
    assert main(base + ["--epochs", "1", "--batch", "4", "--name", "c"]) == 2  # exists already
    assert "already exists" in capsys.readouterr().err

    best = summary["checkpoints"]["best"]
    assert main(["eval", tiny_arch, "--checkpoint", best, "--data", str(synth), "--device", "cpu", "--workers", "0",
                 "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["AP"] == pytest.approx(summary["best"]["AP"]) and metrics["input"] == "64x48"
    assert main(["eval", "litehrnet_18", "--checkpoint", best, "--data", str(synth)]) == 2
    assert "is for architecture tiny_engine_test" in capsys.readouterr().err
    pickled = tmp_path / "module.pt"
    torch.save(nn.Linear(2, 2), pickled)  # a pickled object, not a state_dict
    assert main(["eval", tiny_arch, "--checkpoint", str(pickled), "--data", str(synth)]) == 2
    assert "weights_only" in capsys.readouterr().err
    assert main(["eval", tiny_arch, "--checkpoint", best, "--data", str(synth), "--det-thr", "0.5"]) == 2
    capsys.readouterr()


def test_mpii_training_reports_pckh(tiny_arch, tmp_path):
    from hrbench.data.synth import generate

    generate("mpii", tmp_path / "mpii", 8, 3, seed=0)
    s = _api_train(tmp_path / "mpii", tmp_path / "runs", "m", dataset="mpii", epochs=1, input_hw=(64, 64))
    assert s["keypoints"] == 16 and s["metric"] == "PCKh"
    assert 0.0 <= s["best"]["PCKh"] <= 100.0 and s["best"]["PCKh"] == s["best"]["Mean"]


def test_gpu_aug_pipeline_trains_like_the_cpu_pipeline(tiny_arch, synth, tmp_path):
    """--gpu-aug (warp + targets on the training device; CPU here) gives the same run as the worker pipeline.

    Crops agree with cv2.warpAffine to within one grey level (tests/test_speed.py), hence the tolerance."""
    from hrbench.checkpoint import read_checkpoint

    plain = _api_train(synth, tmp_path, "plain", epochs=1)
    moved = _api_train(synth, tmp_path, "moved", epochs=1, gpu_aug=True)
    assert json.loads((tmp_path / "moved" / "config.json").read_text())["gpu_aug"] is True
    assert moved["final"]["val_loss"] == pytest.approx(plain["final"]["val_loss"], rel=1e-3)
    a = read_checkpoint(tmp_path / "plain" / "checkpoints" / "last.pt")["state_dict"]
    b = read_checkpoint(tmp_path / "moved" / "checkpoints" / "last.pt")["state_dict"]
    diff = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    print(f"max weight difference {diff:.2e}")
    assert diff < 1e-2
