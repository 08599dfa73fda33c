"""The top-down training loop shared by every registered model (CPU or CUDA, one or many processes).

* Loss: the model's codec's (:mod:`hrbench.codecs`); for the papers' heatmaps the reference
  ``JointsMSELoss(use_target_weight=True)`` of mmpose 0.13/0.16, the mean over joints of the
  weighted heatmap MSE (:func:`joints_mse_loss`), so logged losses compare with the published
  training logs.
* Divergence: the training loss is all-reduced at every log point and at the end of every epoch,
  and validation metrics are the same on every rank; a non-finite value stops every rank together
  with :class:`~hrbench.errors.DivergedError` before anything is checkpointed.
* Optimiser: the recipe's (:mod:`hrbench.engine.optim`: Adam, or AdamW with weight-decay multipliers)
  with the schedule of :mod:`hrbench.engine.recipes`, set per iteration; optionally the gradients'
  global L2 norm clipped (``clip_grad_norm``, after fp16 unscaling, as mmengine's ``AmpOptimWrapper``).
* EMA (``ema``): an averaged copy updated after every optimiser step (:mod:`hrbench.engine.ema`); it is
  what validation, ``best.pt`` and the checkpoints' ``state_dict`` hold.
* Augmentation set (``augment``): set on the training dataset before each epoch (its stage from
  ``stage2_begin``); the loader's workers start per epoch, so they see it.
* Data order: a ``DistributedSampler`` (also with one process) seeded by ``seed`` and ``set_epoch``;
  with ``W`` processes of ``b`` samples each, step ``k`` uses exactly the samples that one process
  with batch ``W x b`` uses, and the augmentation of a sample depends only on ``(seed, epoch, index)``
  (:class:`SeededSamples`), so runs are reproducible whatever the number of processes or workers.
* Checkpoints (``hrbench-checkpoint-v1``, every value loadable with ``weights_only=True``) hold the
  model, optimiser, schedule position, best metric and RNG states, so training ``n`` epochs
  straight or ``k`` epochs + resume gives identical weights on CPU.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from hrbench.checkpoint import make_payload
from hrbench.codecs.heatmap import joints_mse_loss
from hrbench.data.augment import augmentation, check_device_aug
from hrbench.data.raw import RawTopDownDataset
from hrbench.engine import dist as D
from hrbench.engine.ema import ModelEMA
from hrbench.engine.optim import build_optimizer
from hrbench.engine.recipes import lr_at
from hrbench.engine.run_config import RunConfig
from hrbench.engine.runlog import RunLog
from hrbench.engine.runs import RunDir
from hrbench.engine.samples import (
    SeededSamples,
    capture_rng,
    collate_samples,
    restore_rng,
)
from hrbench.engine.tblog import TensorBoardLog
from hrbench.errors import CheckpointError, ConfigError, DataError, DivergedError
from hrbench.models.pose import codec_of
from hrbench.precision import autocast, normalize_amp
from hrbench.speed import to_channels_last
from hrbench.speed.gpu_pipeline import DeviceTopDown

__all__ = ["Evaluator", "Trainer", "joints_mse_loss"]

#: ``evaluator(model, val_set, info, device) -> metrics`` (collective; rank 0's dict is used).
Evaluator = Callable[[nn.Module, Dataset, D.DistInfo, torch.device], dict[str, Any]]


def _fmt_metrics(m: dict[str, Any]) -> str:
    """The headline validation numbers on one line."""
    keys = ("val_loss", "AP", "AP50", "AR", "PCKh", "val_time_s")
    return "  ".join(f"{k} {m[k]:.4g}" for k in keys if isinstance(m.get(k), (int, float)))


class Trainer:
    """Fits ``model`` on ``train_set`` and validates on ``val_set`` according to ``cfg``
    (:class:`~hrbench.engine.run_config.RunConfig`); ``cfg.metric`` names the validation metric used for
    ``best.pt`` (``val_loss`` is minimised, others maximised). ``log``: where the main rank writes and
    prints (default: ``run``'s files, no console).
    """

    def __init__(self, model: nn.Module, train_set: Dataset, val_set: Dataset | None, cfg: RunConfig,
                 run: RunDir | None, device: torch.device, info: D.DistInfo | None = None,
                 evaluator: Evaluator | None = None, progress: bool = False, log_interval: int = 50,
                 log: RunLog | None = None, collate: Callable[[list[Any]], Any] | None = None,
                 tb: TensorBoardLog | None = None) -> None:
        self.cfg = cfg
        self.tb = tb  # rank 0's TensorBoard log (None: not written)
        self.tcfg = cfg.train
        self.info = info or D.DistInfo()
        self.device = device
        self.run = run
        self.evaluator = evaluator
        self.progress = progress and self.info.is_main
        self.log_interval = max(1, log_interval)
        self.log = log if log is not None else RunLog(run, None, self.info.is_main)
        self.amp = amp = normalize_amp(cfg.amp)
        self.channels_last = cfg.channels_last
        self.metric = cfg.metric

        self.raw_model, self.model = self._place(model)
        self.codec = codec_of(self.raw_model)  # the loss and the batch's target keys
        self.optimizer = build_optimizer(self.raw_model, self.tcfg)
        t = self.tcfg
        self.ema = None if t.ema == "none" else ModelEMA(self.raw_model, t.ema_momentum, t.ema_gamma, t.ema_interval)
        # fp16 needs loss scaling (on CPU too: the same GradScaler logic as CUDA, tested there); bf16 does not
        self.scaler = torch.amp.GradScaler(device.type, enabled=amp == "fp16")
        self.val_set = val_set
        self.train_set = train_set
        self.collate = collate or getattr(train_set, "collate", None) or collate_samples
        self.loader = self._train_loader(train_set)
        self.steps_per_epoch = len(self.loader)
        if self.steps_per_epoch == 0:
            raise DataError(f"the training set has {len(train_set)} samples, fewer than one total batch of "
                            f"{self.tcfg.total_batch}; lower --batch")
        self.epoch = 0
        self.iteration = 0
        self.best: dict[str, Any] | None = None
        self.final: dict[str, Any] | None = None
        self.initial: dict[str, Any] | None = None
        self.train_time = 0.0
        self.history: list[dict[str, Any]] = []

    def _place(self, model: nn.Module) -> tuple[nn.Module, nn.Module]:
        """(the model on the device, channels-last if asked; what steps: DDP-wrapped when distributed)."""
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick the fastest kernels
        raw = model.to(self.device)
        if self.channels_last:  # rank-4 tensors only: Module.to(memory_format=...) rejects Dite-HRNet's rank-5 kernels
            raw = to_channels_last(raw)
        if not self.info.distributed:
            return raw, raw
        ids = [self.device.index] if self.device.type == "cuda" else None
        return raw, nn.parallel.DistributedDataParallel(raw, device_ids=ids)

    def _train_loader(self, train_set: Dataset) -> DataLoader:
        """The seeded, sharded training loader; with ``gpu_aug`` the workers only decode and draw the
        augmentation, and the device warps and draws the targets (:mod:`hrbench.speed.gpu_pipeline`)."""
        cfg = self.cfg
        self.train_view = SeededSamples(train_set, cfg.seed)
        self.device_aug = None
        collate = self.collate
        if cfg.gpu_aug:
            check_device_aug(self.tcfg.augment)
            raw = RawTopDownDataset(train_set)
            self.train_view = SeededSamples(raw, cfg.seed)
            self.device_aug = DeviceTopDown(raw.input_hw, self.device, raw.codec)
            collate = raw.collate
        self.sampler = DistributedSampler(self.train_view, num_replicas=self.info.world_size, rank=self.info.rank,
                                          shuffle=True, seed=cfg.seed, drop_last=True)
        return DataLoader(self.train_view, batch_size=self.tcfg.batch, sampler=self.sampler,
                          num_workers=cfg.workers, collate_fn=collate, drop_last=True,
                          pin_memory=self.device.type == "cuda")

    # ------------------------------------------------------------------ state
    @property
    def eval_model(self) -> nn.Module:
        """What validation uses and ``state_dict`` holds: the EMA's average when the run has one."""
        return self.raw_model if self.ema is None else self.ema.module

    def lr(self, epoch: int, iteration: int) -> float:
        return lr_at(self.tcfg, epoch, iteration, self.steps_per_epoch)

    def payload(self) -> dict[str, Any]:
        """The checkpoint (:func:`hrbench.checkpoint.make_payload`) of the current state, with what
        resuming needs (optimizer, schedule position, RNG states, scaler, metrics, configuration).
        With EMA, ``state_dict`` holds the averaged weights (what eval / predict / export load),
        ``train_state_dict`` the trained ones and ``ema`` the average's counter."""
        cfg = self.cfg
        extra: dict[str, Any] = {}
        if self.ema is not None:
            trained = {k: v.detach().cpu().contiguous() for k, v in self.raw_model.state_dict().items()}
            extra = {"train_state_dict": trained, "ema": self.ema.state()}
        return make_payload(
            cfg.arch, dict(cfg.overrides), cfg.keypoints, self.eval_model,
            **extra,
            optimizer=self.optimizer.state_dict(),
            scheduler={"epoch": self.epoch, "iteration": self.iteration,
                       "lr": self.lr(self.epoch, self.iteration), "train": self.tcfg.to_dict()},
            epoch=self.epoch,
            iteration=self.iteration,
            best_metric=None if self.best is None else dict(self.best),
            rng=capture_rng(),
            recipe=dataclasses.asdict(cfg.recipe),
            config=cfg.to_dict(),
            scaler=self.scaler.state_dict() if self.scaler.is_enabled() else None,
            train_time_s=self.train_time,
            final_metric=None if self.final is None else dict(self.final),
            initial_metric=None if self.initial is None else dict(self.initial),
        )

    def load_state(self, ckpt: dict[str, Any]) -> None:
        """Restore everything :meth:`payload` saved (for ``--resume``)."""
        if self.ema is None:
            self.raw_model.load_state_dict(ckpt["state_dict"], strict=True)
        else:
            if not isinstance(ckpt.get("ema"), dict) or not isinstance(ckpt.get("train_state_dict"), dict):
                raise CheckpointError("cannot resume: the run averages its weights (ema) but its checkpoint holds "
                                      "no EMA state")
            self.raw_model.load_state_dict(ckpt["train_state_dict"], strict=True)
            self.ema.load(ckpt["ema"], ckpt["state_dict"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(ckpt["scaler"])
        self.epoch = int(ckpt["epoch"])
        self.iteration = int(ckpt["iteration"])
        self.best = ckpt.get("best_metric")
        self.final = ckpt.get("final_metric")
        self.initial = ckpt.get("initial_metric")
        self.train_time = float(ckpt.get("train_time_s", 0.0))
        restore_rng(ckpt["rng"])

    # ------------------------------------------------------------------ helpers
    def _to(self, batch: dict[str, Any]) -> tuple[torch.Tensor, ...]:
        """(image, *targets) on the device, the targets in the codec's ``target_keys`` order."""
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        if self.device_aug is not None and "raw" in batch:
            batch = self.device_aug(batch)
        img = batch["image"].to(self.device, non_blocking=True).contiguous(memory_format=fmt)
        return img, *(batch[k].to(self.device, non_blocking=True) for k in self.codec.target_keys)

    def _autocast(self):
        return autocast(self.device, self.amp)

    # ------------------------------------------------------------------ loop
    def train_epoch(self, bar=None, task=None) -> float:
        """One epoch over the training set; returns the mean training loss (all ranks)."""
        self.model.train()
        self.sampler.set_epoch(self.epoch)
        self.train_view.set_epoch(self.epoch)
        aug = augmentation(self.tcfg.augment, self.epoch, self.tcfg.stage2_begin)
        if aug is not None:  # the loader's workers start with the epoch's iterator: they see it
            self.train_set.aug = aug
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        window = torch.zeros((), dtype=torch.float64, device=self.device)
        n_window, data_t, step_t = 0, 0.0, 0.0
        t0 = time.perf_counter()
        for step, batch in enumerate(self.loader):
            t1 = time.perf_counter()
            lr = self.lr(self.epoch, self.iteration)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            img, *targets = self._to(batch)
            with self._autocast():
                out = self.model(img)
            loss = self.codec.loss(out, *targets)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if self.tcfg.clip_grad_norm is not None:
                self.scaler.unscale_(self.optimizer)  # no-op without fp16 loss scaling
                nn.utils.clip_grad_norm_(self.raw_model.parameters(), self.tcfg.clip_grad_norm)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.ema is not None:
                self.ema.update(self.raw_model)
            self.iteration += 1
            detached = loss.detach().to(torch.float64)
            loss_sum += detached
            window += detached
            n_window += 1
            t2 = time.perf_counter()
            data_t += t1 - t0
            step_t += t2 - t1
            last = step + 1 == self.steps_per_epoch
            if self.iteration % self.log_interval == 0 or last:
                mean = self._global_mean(window.item(), n_window)  # collective: every rank checks the same value
                if self.info.is_main:
                    self.log.event({"event": "train", "epoch": self.epoch + 1, "iter": self.iteration, "lr": lr,
                                 "loss": mean, "data_time": data_t / n_window, "step_time": step_t / n_window})
                if self.tb is not None:
                    self.tb.train_point(self.iteration, mean, lr, n_window * self.tcfg.total_batch, data_t, step_t)
                if bar is not None:
                    bar.update(task, stats=f"loss {mean:.3e}  lr {lr:.2e}  data {data_t / n_window:.3f}s  "
                                           f"step {step_t / n_window:.3f}s")
                window.zero_()
                n_window, data_t, step_t = 0, 0.0, 0.0
            if bar is not None:
                bar.advance(task)
            t0 = time.perf_counter()
        return self._global_mean(loss_sum.item(), self.steps_per_epoch)

    def _global_mean(self, total: float, count: int) -> float:
        """Mean training loss over every rank's last ``count`` steps; :class:`DivergedError` on every
        rank when it is not finite (the all-reduce makes the ranks agree)."""
        s, n = D.all_reduce_sum([total, float(count)], self.device)
        mean = s / max(n, 1.0)
        if not math.isfinite(mean):
            raise DivergedError(f"training diverged: the loss became {mean} at epoch {self.epoch + 1}, iteration "
                                f"{self.iteration} (lr {self.lr(self.epoch, self.iteration - 1):.3g}); "
                                "checkpoints were left as they were -- lower --lr")
        return mean

    @torch.no_grad()
    def val_loss(self) -> float:
        """Mean loss (the codec's) over the whole validation set (sharded over ranks, no flip)."""
        assert self.val_set is not None
        self.model.eval()
        net = self.eval_model.eval()
        idx = D.shard(len(self.val_set), self.info)
        loader = DataLoader(Subset(self.val_set, idx), batch_size=self.tcfg.batch, shuffle=False,
                            num_workers=self.cfg.workers, collate_fn=self.collate)
        s, n = 0.0, 0
        for batch in loader:
            img, *targets = self._to(batch)
            with self._autocast():
                out = net(img)
            s += self.codec.loss(out, *targets, reduction="none").to(torch.float64).sum().item()
            n += img.shape[0]
        s, n = D.all_reduce_sum([s, float(n)], self.device)
        return s / max(n, 1.0)

    def validate(self) -> dict[str, Any]:
        """Validation loss and the dataset metric; the same dict on every rank."""
        t = time.perf_counter()
        if self.ema is not None:
            self.ema.sync_buffers()  # every rank validates its shard with rank 0's averaged statistics
        metrics: dict[str, Any] = {"epoch": self.epoch, "val_loss": self.val_loss()}
        if self.evaluator is not None:
            extra = self.evaluator(self.eval_model, self.val_set, self.info, self.device)
            metrics.update(D.broadcast_object(extra if self.info.is_main else None))
        metrics["val_time_s"] = time.perf_counter() - t
        bad = [k for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)]
        if bad:  # the same dict on every rank: every rank stops here
            raise DivergedError(f"training diverged: validation after epoch {self.epoch} gave "
                                f"{', '.join(f'{k} {metrics[k]}' for k in bad)}; checkpoints were left as they were "
                                "-- lower --lr")
        self.model.train()
        return metrics

    def _tb_val(self, m: dict[str, Any]) -> None:
        """A validation in the TensorBoard log: its scalars and the val crop grid (rank 0)."""
        if self.tb is not None:
            self.tb.validation(self.iteration, m, self.eval_model, self.val_set, self.device, self.amp)

    def _is_better(self, m: dict[str, Any]) -> bool:
        if self.metric not in m:
            return False
        if self.best is None:
            return True
        if self.metric == "val_loss":
            return m[self.metric] < self.best[self.metric]
        return m[self.metric] > self.best[self.metric]

    def fit(self, stop_after: int | None = None, validate_first: bool = False,
            on_checkpoint: Callable[[Trainer, bool], None] | None = None) -> None:
        """Train from the current epoch to ``cfg.train.epochs`` (or ``stop_after`` more epochs),
        validating every ``val_interval`` epochs and at the end, checkpointing every epoch."""
        epochs = self.tcfg.epochs
        if stop_after is not None and (not isinstance(stop_after, int) or stop_after < 1):
            raise ConfigError(f"invalid stop_after {stop_after!r}: must be an integer >= 1")
        end = epochs if stop_after is None else min(epochs, self.epoch + stop_after)
        if validate_first and self.epoch == 0 and self.val_set is not None and self.initial is None:
            self.initial = self.validate()
            self.log.event({"event": "val", **self.initial})
            self._tb_val(self.initial)
            self.log.say(f"epoch 0 (untrained) val: {_fmt_metrics(self.initial)}")
        bar = task = None
        if self.progress:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                           TimeRemainingColumn(), TextColumn("{task.fields[stats]}"), console=self.log.console,
                           transient=False)
            bar.start()
        try:
            while self.epoch < end:
                if bar is not None:
                    task = bar.add_task(f"epoch {self.epoch + 1}/{epochs}", total=self.steps_per_epoch, stats="")
                t = time.perf_counter()
                train_loss = self.train_epoch(bar, task)
                self.train_time += time.perf_counter() - t
                self.epoch += 1
                self.log.event({"event": "epoch", "epoch": self.epoch, "iter": self.iteration, "train_loss": train_loss,
                             "lr": self.lr(self.epoch - 1, self.iteration - 1),
                             "epoch_time_s": time.perf_counter() - t})
                self.log.say(f"epoch {self.epoch}/{epochs}: train loss {train_loss:.4e} "
                          f"({time.perf_counter() - t:.1f}s, {self.iteration} iterations)")
                improved = False
                if self.val_set is not None and (self.epoch % self.cfg.val_interval == 0 or self.epoch == epochs):
                    m = self.validate()
                    self.final = m
                    self.history.append(m)
                    self.log.event({"event": "val", **m})
                    self._tb_val(m)
                    self.log.say(f"epoch {self.epoch} val: {_fmt_metrics(m)}")
                    improved = self._is_better(m)
                    if improved:
                        self.best = dict(m)
                if on_checkpoint is not None and self.info.is_main:
                    on_checkpoint(self, improved)
                D.barrier()
        finally:
            if bar is not None:
                bar.stop()
