"""``hrbench doctor``: exercise every training/evaluation path a device offers, on synthetic data.

Each check runs the real code path a training run uses (the Trainer, the data pipeline, the
evaluator, the speed wrappers) with a registered model and verifies a property, not only that it
ran: a few steps on one fixed batch lower the loss; channels-last gives the gradients of the
contiguous layout; the device-side pipeline gives the CPU pipeline's crops and targets; compiled
and CUDA-graph forwards give the eager output; two DDP processes finish a real ``torchrun`` run.
Checks a device cannot run are skipped with the reason.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from hrbench.data.synth import generate
from hrbench.device import resolve_device
from hrbench.engine import dist as D
from hrbench.engine.api import build_split, make_evaluator
from hrbench.engine.run_config import TrainOptions, resolve_config
from hrbench.engine.runlog import RunLog
from hrbench.engine.trainer import Trainer
from hrbench.errors import ConfigError, brief
from hrbench.factory import create_model


@dataclasses.dataclass
class Check:
    """One row of the doctor's table."""

    name: str
    status: str  # "pass" | "fail" | "skip"
    seconds: float
    detail: str


class _Skip(Exception):
    """A check this device cannot run (the message says why)."""


@dataclasses.dataclass
class Setup:
    """What every check shares: the device, the model, the synthetic data set, the input size."""

    device: torch.device
    arch: str
    data: Path
    input_hw: tuple[int, int]
    batch: int
    steps: int


class _Losses(RunLog):
    """A run log that keeps the training loss of every log point (all ranks' mean, as logged)."""

    def __init__(self) -> None:
        super().__init__()
        self.losses: list[float] = []

    def event(self, event: dict[str, Any]) -> None:
        if event["event"] == "train":
            self.losses.append(event["loss"])


def _trainer(s: Setup, **options: Any) -> Trainer:
    config = resolve_config(TrainOptions(s.arch, str(s.data), epochs=1, batch=s.batch, input_hw=s.input_hw, out=None,
                                         workers=0, lr=1e-3, train_overrides={"warmup_iters": 0}, **options),
                            world_size=1)
    torch.manual_seed(0)
    model = create_model(s.arch, num_keypoints=17)
    train_set = build_split("coco", s.data, "train", s.input_hw, train=True)
    val_set = build_split("coco", s.data, "val", s.input_hw, train=False)
    return Trainer(model, train_set, val_set, config, None, s.device, log_interval=1, log=_Losses())


def _fit_one_batch(s: Setup, **cfg: Any) -> str:
    """``s.steps`` training steps on one fixed batch through :meth:`Trainer.train_epoch`."""
    tr = _trainer(s, **cfg)
    batch = next(iter(tr.loader))
    tr.loader, tr.steps_per_epoch = [batch] * s.steps, s.steps
    tr.train_epoch()
    losses = tr.log.losses  # one per step (log_interval 1)
    if not losses[-1] < 0.9 * losses[0]:
        raise AssertionError(f"loss did not fall: {losses[0]:.4e} -> {losses[-1]:.4e}")
    extra = f", loss scale {tr.scaler.get_scale():.0f}" if tr.scaler.is_enabled() else ""
    return f"loss {losses[0]:.3e} -> {losses[-1]:.3e} in {s.steps} steps{extra}"


def check_channels_last(s: Setup) -> str:
    grads = []
    for cl in (False, True):
        tr = _trainer(s, channels_last=cl)
        tr.loader, tr.steps_per_epoch = [next(iter(tr.loader))], 1
        tr.train_epoch()
        grads.append(torch.cat([p.grad.flatten().double() for p in tr.raw_model.parameters() if p.grad is not None]))
    cos = torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0).item()
    if cos < 0.999:
        raise AssertionError(f"channels-last gradients differ from contiguous ones (cosine {cos:.6f})")
    return f"gradients cosine {cos:.6f} vs contiguous"


def check_gpu_aug(s: Setup) -> str:
    from hrbench.data import collate
    from hrbench.data.raw import RawTopDownDataset
    from hrbench.speed.gpu_pipeline import DeviceTopDown

    base = build_split("coco", s.data, "train", s.input_hw, train=True)
    raw_ds = RawTopDownDataset(base)
    cpu, raw = [], []
    for i in range(min(len(base), s.batch)):
        base.reseed(1000 + i)
        cpu.append(base[i])
        raw_ds.reseed(1000 + i)
        raw.append(raw_ds[i])
    ref = collate(cpu)
    out = DeviceTopDown(base.input_hw, s.device)(raw_ds.collate(raw))
    from hrbench.data.transforms import IMAGENET_STD

    std = torch.from_numpy(IMAGENET_STD).view(1, 3, 1, 1)  # normalised units back to grey levels
    grey = ((out["image"].cpu() - ref["image"]).abs() * 255 * std).max().item()
    tgt = (out["target"].cpu() - ref["target"]).abs().max().item()
    if grey > 1.0 + 1e-3 or tgt > 1e-5:
        raise AssertionError(f"device pipeline differs: {grey:.2f} grey levels, targets {tgt:.1e}")
    return f"crops within {grey:.2f} grey levels, targets within {tgt:.1e} of the CPU pipeline"


def check_eval(s: Setup) -> str:
    tr = _trainer(s)
    model = tr.raw_model.eval()
    val_set = build_split("coco", s.data, "val", s.input_hw, train=False)
    metrics = make_evaluator(None, flip=True, batch_size=s.batch, workers=0)(model, val_set, D.DistInfo(), s.device)
    if not (0.0 <= metrics["AP"] <= 100.0) or metrics.get("flip") is False:
        raise AssertionError(f"implausible evaluation result {metrics}")
    return f"flip test, COCOeval on {len(val_set)} boxes: AP {metrics['AP']:.1f}"


def _compare_forward(s: Setup, wrap: Callable[[torch.nn.Module, torch.Tensor], Callable]) -> str:
    model = create_model(s.arch, num_keypoints=17).to(s.device).eval()
    x = torch.randn(s.batch, 3, *s.input_hw, device=s.device)
    with torch.no_grad():
        ref = model(x)
        out = wrap(model, x)(x)
    err = (out.float() - ref.float()).abs().max().item() / max(ref.abs().max().item(), 1e-12)
    if err > 1e-3:
        raise AssertionError(f"output differs from eager by {err:.2e} of its maximum")
    return f"output within {err:.1e} (relative) of eager"


def check_compile(s: Setup) -> str:
    if s.device.type != "cuda":
        raise _Skip("inductor compilation of these networks takes minutes on a CPU")
    return _compare_forward(s, lambda m, x: torch.compile(m))


def check_cuda_graph(s: Setup) -> str:
    if s.device.type != "cuda":
        raise _Skip("CUDA graphs need a CUDA device")
    from hrbench.speed.cuda_graph import CudaGraphForward

    return _compare_forward(s, lambda m, x: CudaGraphForward(m, x, clone_output=True))


def check_ddp(s: Setup) -> str:
    """A real ``torchrun`` run of ``hrbench train`` with 2 processes (NCCL on 2+ GPUs, else gloo on CPU)."""
    gpus = torch.cuda.device_count() if s.device.type == "cuda" else 0
    if s.device.type == "cuda" and gpus < 2:
        raise _Skip(f"NCCL DDP needs 2+ GPUs, this machine has {gpus}")
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
               "hrbench", "train", s.arch, "--data", str(s.data), "--input", f"{s.input_hw[0]}x{s.input_hw[1]}",
               "--batch", str(max(1, s.batch // 2)), "--epochs", "1", "--out", out, "--name", "ddp", "--workers", "0",
               "--device", "cuda" if gpus >= 2 else "cpu", "--no-progress", "--threads", "1", "--no-val-flip"]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
        if run.returncode != 0:
            raise AssertionError(f"torchrun exited {run.returncode}: {run.stderr.strip().splitlines()[-1:]}")
        summary = json.loads((Path(out) / "ddp" / "summary.json").read_text())
    backend = "NCCL" if gpus >= 2 else "gloo"
    return f"{backend}, 2 processes: {summary['iterations']} steps, val loss {summary['final']['val_loss']:.3e}"


#: (name, check) in the order they run.
CHECKS: tuple[tuple[str, Callable[[Setup], str]], ...] = (
        ("train fp32", lambda s: _fit_one_batch(s)),
        ("train bf16 autocast", lambda s: _fit_one_batch(s, amp="bf16")),
        ("train fp16 + GradScaler", lambda s: _fit_one_batch(s, amp="fp16")),
        ("channels-last training", check_channels_last),
        ("--gpu-aug pipeline", check_gpu_aug),
        ("evaluation + flip test", check_eval),
        ("torch.compile inference", check_compile),
        ("CUDA-graph inference", check_cuda_graph),
        ("DDP (torchrun, 2 processes)", check_ddp),
)


@dataclasses.dataclass
class DoctorReport:
    device: str
    arch: str
    input: str
    torch: str
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.status != "fail" for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "ok": self.ok}


def _timed(name: str, fn: Callable[[Setup], str], s: Setup) -> Check:
    t = time.perf_counter()
    try:
        detail, status = fn(s), "pass"
    except _Skip as why:
        detail, status = str(why), "skip"
    except Exception as exc:  # noqa: BLE001 - a doctor reports every failure as a row instead of stopping
        detail, status = brief(exc), "fail"
    return Check(name, status, time.perf_counter() - t, detail)


def run_doctor(device: str = "cpu", arch: str = "lite18", input_hw: tuple[int, int] | None = None,
               batch: int | None = None, steps: int = 8) -> Iterator[Check | DoctorReport]:
    """Yield each :class:`Check` as it finishes, then the :class:`DoctorReport`."""
    dev = resolve_device(device)
    hw = input_hw or ((256, 192) if dev.type == "cuda" else (64, 64))
    n = batch or (32 if dev.type == "cuda" else 4)
    if steps < 2:
        raise ConfigError(f"invalid --steps {steps}: must be at least 2")
    create_model(arch)  # an unknown architecture is refused before any work
    checks: list[Check] = []
    with tempfile.TemporaryDirectory(prefix="hrbench-doctor-") as tmp:
        data = Path(tmp) / "coco"
        generate("coco", data, 8, 3, seed=0)
        setup = Setup(dev, arch, data, hw, n, steps)
        for name, fn in CHECKS:
            check = _timed(name, fn, setup)
            checks.append(check)
            yield check
    yield DoctorReport(str(dev), arch, f"{hw[0]}x{hw[1]}", torch.__version__, checks)
