"""RTMPose's recipe options in the engine: the flat-cosine lr (hand values and mmengine's chained schedulers
replayed), AdamW's no-decay groups on a real model, resolution under --epochs, --print-config / config.json /
resume refusals, and an end-to-end CLI run of Lite-HRNet-18 with every option on."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
from hrbench.architectures.rtmpose import rtmpose_m_recipe, rtmpose_recipe, rtmpose_s_recipe, rtmpose_t_recipe

from hrbench.engine import TrainOptions, resolve_config
from hrbench.engine.optim import build_optimizer, param_groups
from hrbench.engine.recipes import lr_at, resolve_training
from hrbench.engine.resume import resumed_config
from hrbench.engine.run_config import RunConfig
from hrbench.errors import ConfigError
from hrbench.factory import create_model

RTM = {"optimizer": "adamw", "schedule": "flat-cosine", "ema": "exp-momentum", "augment": "rtmpose",
       "norm_decay_mult": 0.0, "bias_decay_mult": 0.0, "weight_decay": 0.05, "clip_grad_norm": 35.0}


def test_official_numbers_per_variant():
    t, s, m = (f("coco", (256, 192)) for f in (rtmpose_t_recipe, rtmpose_s_recipe, rtmpose_m_recipe))
    for r in (t, s, m):
        assert (r.epochs, r.batch_per_gpu, r.gpus, r.lr, r.optimizer, r.schedule) == \
            (420, 256, 8, 4e-3, "adamw", "flat-cosine")
        assert (r.warmup_iters, r.warmup_ratio, r.cosine_begin, r.eta_min_ratio, r.clip_grad_norm) == \
            (1000, 1e-5, 210, 0.05, 35.0 / 256)
        assert (r.norm_decay_mult, r.bias_decay_mult, r.augment, r.stage2_epochs) == (0.0, 0.0, "rtmpose", 30)
    assert (t.weight_decay, s.weight_decay, m.weight_decay) == (0.0, 0.0, 0.05)
    assert (t.ema, s.ema, m.ema) == ("none", "exp-momentum", "exp-momentum")  # -t: "Turn off EMA" (config l. 222)
    mpii = rtmpose_recipe("mpii", (256, 256), "m")
    assert (mpii.epochs, mpii.batch_per_gpu, mpii.cosine_begin, mpii.weight_decay, mpii.clip_grad_norm) == \
        (210, 64, 105, 0.05, None)
    with pytest.raises(ConfigError, match="unknown RTMPose variant"):
        rtmpose_recipe("coco", (256, 192), "x")


def test_flat_cosine_lr_by_hand():
    t = resolve_training(rtmpose_t_recipe("coco", (256, 192)), world_size=8)  # total 2048: lr 4e-3 as published
    assert (t.lr, t.lr_scaled, t.cosine_begin, t.cosine_end, t.stage2_begin) == (4e-3, False, 210, 420, 390)
    e = 10  # iterations per epoch
    hand = {
        0: 4e-3 * 1e-5,  # LinearLR's start factor
        500: 4e-3 * (1e-5 + (1 - 1e-5) * 500 / 999),  # = 2.0020219820e-3; total_iters = end - begin - 1 = 999
        999: 4e-3,  # the factor reaches 1 at iteration 999
        1500: 4e-3,  # flat
        2100: 4e-3,  # cosine begins at epoch 210 = iteration 2100, t = 0
        3150: 2e-4 + (4e-3 - 2e-4) * 0.5,  # halfway (t = T / 2 = 1050): 2.1e-3
        4199: 2e-4 + 3.8e-3 * (1 + math.cos(math.pi * 2099 / 2100)) / 2,  # the last iteration, ~2.0000213e-4
        6000: 2e-4 + 3.8e-3 * (1 + math.cos(math.pi * 2099 / 2100)) / 2,  # held after the end (an extended run)
    }
    assert hand[500] == pytest.approx(2.0020219820e-3, rel=1e-9) and hand[4199] == pytest.approx(2.0000213e-4, rel=1e-7)
    for i, want in hand.items():
        assert lr_at(t, i // e, i, e) == pytest.approx(want, rel=1e-12), i
    with pytest.raises(ValueError, match="steps_per_epoch"):
        lr_at(t, 0, 0)


def _mmengine_chained(base: float, start: float, warm_end: int, cos_begin: int, cos_end: int, eta_min: float,
                      n: int) -> list[float]:
    """mmengine's LinearLR + CosineAnnealingLR stepped after every iteration in their chainable form
    (``param_scheduler.py`` ``_get_value`` of each, ``step``: active while ``begin <= step < end``)."""
    lr, out = base, []
    total = warm_end - 1
    t_max = cos_end - cos_begin
    for g in range(n):
        if g < warm_end:  # LinearLR, last_step = g
            lr = lr * start if g == 0 else lr * (1 + (1 - start) / (total * start + (g - 1) * (1 - start)))
        if cos_begin <= g < cos_end:  # CosineAnnealingLR, last_step = g - begin
            k = g - cos_begin
            if k > 0:
                lr = (1 + math.cos(math.pi * k / t_max)) / (1 + math.cos(math.pi * (k - 1) / t_max)) * \
                    (lr - eta_min) + eta_min
        out.append(lr)
    return out


def test_flat_cosine_equals_mmengines_chained_schedulers():
    t = resolve_training(rtmpose_t_recipe("coco", (256, 192)), world_size=8)
    e = 5  # the cosine starts at iteration 1050, after the warm-up's 1000 (as in the official run: 210 x 58 iterations)
    ref = _mmengine_chained(4e-3, 1e-5, 1000, 210 * e, 420 * e, 2e-4, 420 * e)
    ours = [lr_at(t, i // e, i, e) for i in range(420 * e)]
    assert max(abs(a - b) / b for a, b in zip(ours, ref, strict=True)) < 1e-9


def test_step_recipes_are_unchanged():
    lite = resolve_config(TrainOptions("lite18", None), world_size=1).train
    assert (lite.schedule, lite.ema, lite.augment, lite.clip_grad_norm, lite.stage2_begin) == \
        ("step", "none", "msra", None, None)
    assert "schedule" not in lite.to_dict() and "ema" not in lite.to_dict()  # config.json as before
    assert lr_at(lite, 0, 0) == pytest.approx(lite.lr * 0.001)


def test_no_decay_groups_on_litehrnet18_and_decoupled_decay():
    model = create_model("litehrnet_18", num_keypoints=17)
    no_decay = set()
    for prefix, mod in model.named_modules():  # independently: BatchNorm weights/biases and every conv bias
        if isinstance(mod, torch.nn.BatchNorm2d):
            no_decay |= {f"{prefix}.weight", f"{prefix}.bias"}
        elif getattr(mod, "bias", None) is not None and isinstance(mod.bias, torch.nn.Parameter):
            no_decay.add(f"{prefix}.bias")
    groups = param_groups(model, 0.05, 0.0, 0.0)
    by_wd = {g["weight_decay"]: set(g["names"]) for g in groups}
    assert set(by_wd) == {0.05, 0.0} and by_wd[0.0] == no_decay
    assert by_wd[0.05] == {n for n, _ in model.named_parameters()} - no_decay
    assert all(n.endswith("weight") for n in by_wd[0.05])
    t = resolve_training(rtmpose_m_recipe("coco", (256, 192)), batch=2, lr=0.1)
    opt = build_optimizer(model, t)
    assert isinstance(opt, torch.optim.AdamW)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()  # zero gradient: Adam's update is 0, AdamW's decoupled decay multiplies by 1 - lr x wd
    for n, p in model.named_parameters():
        factor = 1.0 if n in no_decay else 1 - 0.1 * 0.05
        assert torch.equal(p.detach(), before[n] * factor), n


def test_resolution_scales_warmup_cosine_and_stage2_with_epochs():
    r = rtmpose_t_recipe("coco", (256, 192))
    t42 = resolve_training(r, epochs=42, batch=32)
    # 1000 x 42/420 = 100 iterations; cosine from round(210 x 0.1) = 21 to 42; stage 2 from round(390 x 0.1) = 39
    assert (t42.warmup_iters, t42.cosine_begin, t42.cosine_end, t42.stage2_begin) == (100, 21, 42, 39)
    assert t42.lr == pytest.approx(4e-3 * 32 / 2048)
    t2 = resolve_training(r, epochs=2, batch=4)
    assert (t2.warmup_iters, t2.cosine_begin, t2.cosine_end, t2.stage2_begin) == (5, 1, 2, 2)  # round(4.76) = 5
    t1 = resolve_training(r, epochs=1, batch=4)
    assert (t1.warmup_iters, t1.cosine_begin, t1.cosine_end, t1.stage2_begin) == (2, 0, 1, 1)  # all cosine, stage 1
    t2b = resolve_training(r, epochs=2, batch=4, train_overrides={"stage2_begin": 1, "ema": None})
    assert (t2b.stage2_begin, t2b.ema) == (1, "none")  # --set train.ema=none
    with pytest.raises(ConfigError, match="invalid schedule"):
        resolve_training(r, train_overrides={"schedule": "poly"})
    with pytest.raises(ConfigError, match="invalid augment"):
        resolve_training(r, train_overrides={"augment": "imgaug"})


def test_print_config_config_json_and_resume_refusals(capsys, monkeypatch, tmp_path):
    from hrbench.cli import main

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    sets = [f"train.{k}={v}" for k, v in RTM.items()]
    assert main(["train", "lite18", "--print-config", "--name", "x", "--epochs", "4",
                 *[a for s in sets for a in ("--set", s)]]) == 0
    d = json.loads(capsys.readouterr().out)
    t = d["train"]
    assert {k: t[k] for k in RTM} == RTM and (t["cosine_begin"], t["cosine_end"]) == (2, 4)
    cfg = RunConfig.from_dict(json.loads(json.dumps(d)))
    assert json.loads(json.dumps(cfg.to_dict())) == d  # round trip
    same = TrainOptions("lite18", None, train_overrides={"ema": "exp-momentum", "augment": "rtmpose"})
    assert resumed_config(cfg, same, epochs_done=1, world_size=1, run_path=tmp_path).train == cfg.train
    other = TrainOptions("lite18", None, train_overrides={"ema": None, "augment": "msra", "clip_grad_norm": 1.0})
    with pytest.raises(ConfigError) as err:
        resumed_config(cfg, other, epochs_done=1, world_size=1, run_path=tmp_path)
    msg = str(err.value)
    assert "--set train.augment=msra (the run has rtmpose)" in msg
    assert "--set train.clip_grad_norm=1.0 (the run has 35.0)" in msg
    assert "--set train.ema=None (the run has exp-momentum)" in msg
    assert main(["train", "lite18", "--print-config", "--gpu-aug", "--set", "train.augment=rtmpose"]) == 2
    assert capsys.readouterr().err.strip() == (
        "hrbench: error: --gpu-aug cannot apply the rtmpose augmentation (its HSV shift, blur, median blur and coarse "
        "dropout run on the CPU crop only); train without --gpu-aug")


@pytest.mark.slow
def test_cli_trains_lite18_with_every_rtmpose_option(tmp_path):
    from hrbench.checkpoint import read_checkpoint
    from hrbench.data.synth import generate
    from hrbench.engine import read_metrics

    data = tmp_path / "coco"
    generate("coco", data, 10, 3, seed=4)
    sets = [a for k, v in {**RTM, "stage2_begin": 1, "warmup_iters": 2}.items() for a in ("--set", f"train.{k}={v}")]
    cmd = [sys.executable, "-m", "hrbench", "train", "lite18", "--data", str(data), "--input", "64x64", "--epochs", "2",
           "--batch", "4", "--out", str(tmp_path / "runs"), "--name", "r", "--workers", "1", "--device", "cpu",
           "--threads", "1", "--no-progress", "--json", *sets]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads(run.stdout)
    assert (summary["status"], summary["weights"], summary["augment"], summary["optimizer"], summary["schedule"]) == \
        ("finished", "ema", "rtmpose", "adamw", "flat-cosine")
    config = json.loads((tmp_path / "runs" / "r" / "config.json").read_text())
    assert {k: config["train"][k] for k in RTM} == RTM and config["train"]["stage2_begin"] == 1
    last = read_checkpoint(tmp_path / "runs" / "r" / "checkpoints" / "last.pt")
    e = summary["iterations"] // 2  # iterations per epoch
    assert last["ema"]["steps"] == summary["iterations"] and e >= 2  # one EMA update per iteration
    assert any(not torch.equal(last["state_dict"][k], last["train_state_dict"][k]) for k in last["state_dict"])
    lrs = [x["lr"] for x in read_metrics(tmp_path / "runs" / "r") if x["event"] == "train"]
    # logged at each epoch's last iteration (e - 1, 2e - 1); lr = Lite-HRNet's 2e-3 x 4 / 512; a warm-up of 2
    # iterations has the factor 1 from iteration 1 on; the cosine runs over epoch 1 (T = e iterations), at
    # iteration 2e - 1: t = e - 1
    lr = summary["lr"]
    last_lr = 0.05 * lr + 0.95 * lr * (1 + math.cos(math.pi * (e - 1) / e)) / 2
    assert lr == pytest.approx(2e-3 * 4 / 512) and lrs == pytest.approx([lr, last_lr], rel=1e-12)
    # hrbench eval reads the EMA weights: it reproduces the validation of the best epoch
    ev = subprocess.run([sys.executable, "-m", "hrbench", "eval", "lite18", "--checkpoint",
                         summary["checkpoints"]["best"], "--data", str(data), "--device", "cpu", "--workers", "0",
                         "--threads", "1", "--json"], capture_output=True, text=True, timeout=300)
    assert ev.returncode == 0, ev.stderr[-3000:]
    assert json.loads(ev.stdout)["AP"] == summary["best"]["AP"]


@pytest.mark.parametrize("amp", [None, "fp16", "bf16"])
def test_gradient_clipping_under_amp_clips_the_unscaled_gradients(amp, tmp_path):
    """One real step of Lite-HRNet-18 through the Trainer with clip_grad_norm 1e-3: what the optimiser steps with
    has global L2 norm 1e-3 in every precision. With fp16 the gradients are unscaled first (a clip of the scaled
    gradients would leave 1e-3 / 65536 after GradScaler's own unscaling); the EMA is updated after the step."""
    from hrbench.data.synth import generate
    from hrbench.engine.api import build_split
    from hrbench.engine.trainer import Trainer

    generate("coco", tmp_path / "c", 4, 2, seed=1)
    cfg = resolve_config(TrainOptions("lite18", tmp_path / "c", epochs=1, batch=2, input_hw=(64, 64), out=None,
                                      workers=0, amp=amp, train_overrides={**RTM, "clip_grad_norm": 1e-3}),
                         world_size=1)
    tr = Trainer(create_model("lite18", num_keypoints=17), build_split("coco", tmp_path / "c", "train", (64, 64),
                                                                       train=True), None, cfg, None,
                 torch.device("cpu"))
    assert tr.scaler.is_enabled() == (amp == "fp16")
    norms = []
    step = tr.optimizer.step

    def recording_step(*a, **k):
        norms.append(torch.cat([p.grad.flatten() for p in tr.raw_model.parameters() if p.grad is not None]).norm())
        return step(*a, **k)

    tr.optimizer.step = recording_step
    batch = next(iter(tr.loader))
    tr.loader, tr.steps_per_epoch = [batch], 1
    tr.train_epoch()
    assert len(norms) == 1 and norms[0].item() == pytest.approx(1e-3, rel=1e-3)
    assert tr.ema.steps == 1
