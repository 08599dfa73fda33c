"""The exponential moving average (ExpMomentumEMA under mmengine's EMAHook): momentum values and averages by hand,
checkpoints, a resumed run bit for bit equal to a straight one with EMA on (Lite-HRNet-18), and 2-process DDP."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import torchrun
from torch import nn

from hrbench.checkpoint import read_checkpoint
from hrbench.data.synth import generate
from hrbench.engine import TrainOptions, resolve_config, train
from hrbench.engine.api import build_split
from hrbench.engine.ema import ModelEMA, exp_momentum
from hrbench.engine.trainer import Trainer, joints_mse_loss
from hrbench.factory import create_model, restore_model

EMA_RUN = {"ema": "exp-momentum", "optimizer": "adamw", "schedule": "flat-cosine", "augment": "rtmpose",
           "stage2_begin": 1, "weight_decay": 0.05, "norm_decay_mult": 0.0, "bias_decay_mult": 0.0,
           "clip_grad_norm": 35.0, "warmup_iters": 3}


def test_momentum_values_by_hand():
    # (1 - 0.0002) exp(-(1 + n) / 2000) + 0.0002
    assert exp_momentum(1, 0.0002, 2000) == pytest.approx(0.9998 * 0.99900049983 + 0.0002, rel=1e-10)  # 0.99900070
    assert exp_momentum(1999, 0.0002, 2000) == pytest.approx(0.9998 * 0.36787944 + 0.0002, rel=1e-7)  # exp(-1)
    assert exp_momentum(10 ** 6, 0.0002, 2000) == pytest.approx(0.0002, rel=1e-12)  # the momentum in the end


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(1, 1, bias=False)
        self.bn = nn.BatchNorm1d(1)


def _set(net: _Net, w: float, mean: float, count: int) -> None:
    with torch.no_grad():
        net.lin.weight.fill_(w)
        net.bn.running_mean.fill_(mean)
        net.bn.num_batches_tracked.fill_(count)


def test_average_of_a_known_sequence_by_hand():
    net = _Net()
    ema = ModelEMA(net, momentum=0.5, gamma=1.0)  # m_n = 0.5 exp(-(1 + n)) + 0.5
    for n, w in enumerate((1.0, 2.0, 4.0)):
        _set(net, w, mean=10 * w, count=n + 1)
        ema.update(net)
    m1, m2 = 0.5 * math.exp(-2) + 0.5, 0.5 * math.exp(-3) + 0.5  # 0.5676676, 0.5248935
    avg1 = 1.0 * (1 - m1) + 2.0 * m1  # 1.5676676
    avg2 = avg1 * (1 - m2) + 4.0 * m2  # 1.5676676 x 0.4751065 + 2.0995741 = 2.8443832
    assert avg2 == pytest.approx(2.8443832, abs=1e-7)
    assert ema.module.lin.weight.item() == pytest.approx(avg2, rel=1e-6)
    assert ema.module.bn.running_mean.item() == pytest.approx(10 * avg2, rel=1e-6)  # buffers averaged too
    assert ema.module.bn.num_batches_tracked.item() == 1  # not floating point: the first update's copy
    assert ema.steps == 3 and net.lin.weight.item() == 4.0
    # interval 2: update 0 copies, update 1 is skipped, update 2 averages with m_2
    net2 = _Net()
    ema2 = ModelEMA(net2, momentum=0.5, gamma=1.0, interval=2)
    for w in (1.0, 2.0, 4.0):
        _set(net2, w, 0.0, 0)
        ema2.update(net2)
    assert ema2.module.lin.weight.item() == pytest.approx(1.0 * (1 - m2) + 4.0 * m2, rel=1e-6)


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    root = tmp_path_factory.mktemp("ema") / "coco"
    generate("coco", root, 5, 2, seed=6)
    return root


@pytest.mark.slow
def test_resumed_run_equals_straight_run_bit_for_bit_with_ema(coco, tmp_path):
    args = dict(batch=4, input_hw=(64, 64), out=tmp_path, device="cpu", workers=0, progress=False, threads=1,
                lr=2e-3, train_overrides=EMA_RUN, tensorboard=False)
    straight = train("litehrnet_18", coco, epochs=2, name="straight", **args)
    first = train("litehrnet_18", coco, epochs=2, name="resumed", stop_after=1, **args)
    assert first["epochs_done"] == 1
    resumed = train("litehrnet_18", coco, resume=True, name="resumed", out=tmp_path, device="cpu", workers=0,
                    progress=False, threads=1, tensorboard=False)
    assert resumed["status"] == straight["status"] == "finished"
    assert resumed["iterations"] == straight["iterations"] >= 4
    a, b = (read_checkpoint(tmp_path / n / "checkpoints" / "last.pt") for n in ("straight", "resumed"))
    for key in ("state_dict", "train_state_dict"):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key]), key
    assert a["ema"] == b["ema"] and a["ema"]["steps"] == straight["iterations"]
    assert resumed["final"]["val_loss"] == straight["final"]["val_loss"]
    assert straight["weights"] == "ema"
    # the checkpoint's state_dict is the average, which eval / predict / export load; the trained weights differ
    assert any(not torch.equal(a["state_dict"][k], a["train_state_dict"][k]) for k in a["state_dict"])
    restored = restore_model("litehrnet_18", tmp_path / "straight" / "checkpoints" / "last.pt").model.state_dict()
    assert all(torch.equal(restored[k], a["state_dict"][k]) for k in restored)


def test_a_checkpoint_without_ema_state_is_refused_for_an_ema_run(coco):
    cfg = resolve_config(TrainOptions("litehrnet_18", coco, epochs=1, batch=4, input_hw=(64, 64), out=None,
                                      workers=0, train_overrides={"ema": "exp-momentum"}), world_size=1)
    model = create_model("litehrnet_18", num_keypoints=17)
    tr = Trainer(model, build_split("coco", coco, "train", (64, 64), train=True), None, cfg, None, torch.device("cpu"))
    payload = tr.payload()
    assert payload["ema"]["steps"] == 0
    del payload["ema"]
    with pytest.raises(Exception, match="holds no EMA state"):
        tr.load_state(payload)


# ---------------------------------------------------------------------------------------------- DDP
HW, PER_RANK, LR = (64, 64), 2, 1e-3
WORKER = f'''
import os, sys
import torch
import hrbench.engine.trainer as T
from hrbench.engine import train
data, out = sys.argv[1:]
fit = T.Trainer.fit
def fit_and_dump(self, *a, **k):  # each rank's EMA and trained weights after training
    fit(self, *a, **k)
    torch.save({{"ema": self.ema.module.state_dict(), "raw": self.raw_model.state_dict()}},
               f"{{out}}/rank{{os.environ['RANK']}}.pt")
T.Trainer.fit = fit_and_dump
train("litehrnet_18", data, epochs=1, batch={PER_RANK}, input_hw={HW}, out=out, name="ddp", device="cpu", workers=0,
      lr={LR}, train_overrides={{"warmup_iters": 0, "ema": "exp-momentum"}}, val_flip=False, progress=False,
      log_interval=1, threads=1, tensorboard=False)
'''


def _ddp_reference_with_ema(coco) -> dict[str, torch.Tensor]:
    """One process computing what 2-rank DDP must (tests/test_ddp.py's definition: each rank's loss over its own 2
    samples, gradients averaged, BatchNorm per rank, rank 0's running statistics kept), with the average updated
    after each step by the formula written out here."""
    cfg = resolve_config(TrainOptions("litehrnet_18", coco, epochs=1, batch=2 * PER_RANK, input_hw=HW, out=None,
                                      workers=0, lr=LR, train_overrides={"warmup_iters": 0}), world_size=1)
    import hrbench.engine.samples as S

    torch.set_num_threads(1)
    S.seed_everything(cfg.seed)
    model = create_model("litehrnet_18", num_keypoints=17)
    tr = Trainer(model, build_split("coco", coco, "train", HW, train=True), None, cfg, None, torch.device("cpu"))
    tr.model.train()
    tr.sampler.set_epoch(0)
    tr.train_view.set_epoch(0)
    avg: dict[str, torch.Tensor] = {}
    for n, batch in enumerate(tr.loader):
        for group in tr.optimizer.param_groups:
            group["lr"] = LR
        img, tgt, tw = tr._to(batch)
        tr.optimizer.zero_grad(set_to_none=True)
        buffers = {k: v.clone() for k, v in tr.raw_model.named_buffers()}
        for rank in (1, 0):
            with torch.no_grad():
                for k, v in tr.raw_model.named_buffers():
                    v.copy_(buffers[k])
            (joints_mse_loss(tr.model(img[rank::2]), tgt[rank::2], tw[rank::2]) / 2).backward()
        tr.optimizer.step()
        src = {k: v.detach().clone() for k, v in tr.raw_model.state_dict().items()}
        if n == 0:
            avg = src
        else:
            m = (1 - 0.0002) * math.exp(-(1 + n) / 2000) + 0.0002
            avg = {k: (a * (1 - m) + src[k] * m) if a.is_floating_point() else a for k, a in avg.items()}
    return avg


@pytest.mark.slow
def test_ddp_two_ranks_hold_one_ema_matching_its_definition(tmp_path):
    coco = tmp_path / "coco"
    generate("coco", coco, 10, 3, seed=5)
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    run = torchrun([str(script), str(coco), str(tmp_path)])
    assert run.returncode == 0, run.stderr[-4000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    # the ranks' BatchNorm statistics differ (each its own samples), their averages agree after the sync
    assert any(not torch.equal(r0["raw"][k], r1["raw"][k]) for k in r0["raw"] if "running" in k)
    assert all(torch.equal(r0["ema"][k], r1["ema"][k]) for k in r0["ema"])
    saved = read_checkpoint(tmp_path / "ddp" / "checkpoints" / "last.pt")
    assert all(torch.equal(saved["state_dict"][k], r0["ema"][k]) for k in r0["ema"])
    steps = saved["ema"]["steps"]
    assert steps == saved["iteration"] >= 2
    ref = _ddp_reference_with_ema(coco)
    # tolerances of tests/test_ddp.py: weights to 2 x lr x steps (Adam's first steps are lr x g / |g|), BN stats 2e-2
    params = [k for k in ref if ref[k].is_floating_point() and "running" not in k]
    w_err = max((r0["ema"][k] - ref[k]).abs().max().item() for k in params)
    s_err = max(((r0["ema"][k] - ref[k]).abs() / (ref[k].abs() + 1e-3)).max().item() for k in ref if "running" in k)
    assert w_err <= 2 * LR * steps + 1e-6 and s_err < 2e-2, (w_err, s_err)
    print(f"\nDDP EMA vs its definition: weights max abs {w_err:.1e}, BN stats rel {s_err:.1e}")
