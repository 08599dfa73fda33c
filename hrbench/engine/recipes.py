"""The training recipe of a registered model and the resolved training configuration (:class:`Training`).

A family's recipe facts (the official configs: optimiser, epochs, batch per GPU, GPUs, lr, steps,
warm-up) live in its spec module in ``architectures/``, registered with its variants
(``register_model(..., recipe=fn)``, ``fn(dataset, input_hw) -> Recipe``); :func:`get_recipe` looks it
up, and a variant registered without one cannot be trained (one-line :class:`ConfigError`).

Resolution rules (:func:`resolve_training`), applied in this order:

1. **Shorter/longer runs.** When ``epochs`` differs from the recipe's, every epoch-based milestone
   and the warm-up are scaled by ``epochs / recipe.epochs``: a step ``s`` becomes
   ``clamp(round(s * epochs / recipe.epochs), 1, epochs)`` and the warm-up becomes
   ``round(warmup_iters * epochs / recipe.epochs)`` iterations. E.g. Lite-HRNet at 21 epochs decays
   at epochs 17 and 20 and warms up for 50 iterations.
2. **Linear lr scaling.** The recipe's lr belongs to its total batch ``batch_per_gpu x gpus``; a run
   with another total batch (``batch x world_size``) uses ``lr x total / recipe_total``
   (Goyal et al., 2017). An explicit ``lr`` is used as given (no scaling).
3. Explicit training overrides (``train.KEY=VALUE``, e.g. ``warmup_iters``, ``lr_steps``) win last.

Schedules (``schedule``; :func:`lr_at` is the one formula, a pure function of the resolved settings):

* ``step`` (mmcv's ``lr_config``, every recipe of the papers): the lr at iteration ``i`` of epoch ``e``
  (both 0-based) is ``lr x gamma ** #{s in lr_steps: e >= s}``, multiplied during warm-up
  (``i < warmup_iters``) by ``1 - (1 - i / warmup_iters) x (1 - warmup_ratio)``.
* ``flat-cosine`` (mmengine's ``param_scheduler`` of RTMPose: ``LinearLR(start_factor, by_epoch=False,
  begin=0, end=W)`` + ``CosineAnnealingLR(eta_min=lr x 0.05, begin=max_epochs // 2, end=max_epochs,
  T_max=max_epochs // 2, by_epoch=True, convert_to_iter_based=True)``, mmpose 1.x
  ``projects/rtmpose/rtmpose/body_2d_keypoint/rtmpose-t_8xb256-420e_coco-256x192.py`` lines 26-41). With
  ``E`` iterations per epoch, ``b = cosine_begin x E``, ``T = (cosine_end - cosine_begin) x E``:
  ``lr`` until iteration ``b``, then ``eta_min + (lr - eta_min) x (1 + cos(pi x t / T)) / 2`` with
  ``t = min(i - b, T - 1)`` (mmengine's scheduler steps while ``begin <= i < end``, so the last value is held),
  ``eta_min = lr x eta_min_ratio``; times the warm-up factor ``start + (1 - start) x min(i, W - 1) / (W - 1)``
  (``start = warmup_ratio``; mmengine's ``LinearParamScheduler`` has ``total_iters = end - begin - 1``,
  mmengine ``optim/scheduler/param_scheduler.py`` lines 758 and 791-801: the factor is 1 from iteration
  ``W - 1`` on). Where warm-up and cosine overlap (only in runs cut very short) the two factors
  multiply; mmengine's chained form differs there, the official recipe never has them overlap.
  ``eta_min`` follows the lr's linear scaling (a ratio; the official 2e-4 is 4e-3 x 0.05 at its batch).

Rule 1 also scales ``cosine_begin`` (at most the last epoch's index) and the first stage-2 epoch
(``stage2_begin``, the epoch mmdet's ``PipelineSwitchHook`` switches at: ``max_epochs - stage2_num_epochs``)
as milestones; ``cosine_end`` is the run's last epoch.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from hrbench.data.augment import augment_sets
from hrbench.datasets import get_dataset
from hrbench.errors import ConfigError
from hrbench.registry import Recipe, get_entry, shown_fields


def get_recipe(arch: str, dataset: str, input_hw: tuple[int, int]) -> Recipe:
    """The training recipe ``arch``'s family registered, for ``dataset`` at ``input_hw``."""
    entry = get_entry(arch)
    get_dataset(dataset)  # one-line ConfigError for an unregistered dataset
    if entry.recipe is None:
        raise ConfigError(f"{entry.name} has no training recipe: its spec module in architectures/ must register "
                          "one (register_model(..., recipe=...))")
    return entry.recipe(dataset, tuple(input_hw))


@dataclasses.dataclass(frozen=True)
class Training:
    """The resolved optimisation settings of a run (``config.json``'s ``train``). ``batch`` is per process
    (``--batch``); its ``config.json`` key is ``batch_per_process``, as in every run folder so far."""

    optimizer: str
    epochs: int
    batch: int
    world_size: int
    total_batch: int
    recipe_total_batch: int
    lr: float
    lr_scaled: bool
    lr_steps: tuple[int, ...]
    gamma: float
    warmup_iters: int
    warmup_ratio: float
    weight_decay: float
    schedule: str = "step"
    cosine_begin: int | None = None  # flat-cosine: first epoch of the cosine (0-based); None with "step"
    cosine_end: int | None = None  # flat-cosine: the epoch the cosine ends at; None with "step"
    eta_min_ratio: float = 0.05
    norm_decay_mult: float = 1.0
    bias_decay_mult: float = 1.0
    clip_grad_norm: float | None = None
    ema: str = "none"
    ema_momentum: float = 0.0002
    ema_gamma: float = 2000.0
    ema_interval: int = 1
    augment: str = "msra"
    stage2_begin: int | None = None  # the first epoch (0-based) of the stage-2 augmentation; None: one stage

    def __post_init__(self) -> None:
        """One-line ConfigError for an out-of-range optimisation setting."""
        lr = self.lr
        _check(isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0, "lr", f"{lr!r} (must be > 0)")
        steps = self.lr_steps
        _check(all(isinstance(s, int) and s >= 0 for s in steps), "lr_steps", f"{steps!r} (non-negative epochs)")
        _check(list(steps) == sorted(steps), "lr_steps", f"{steps!r} (must be increasing)")
        g = self.gamma
        _check(isinstance(g, (int, float)) and 0 < g <= 1, "gamma", f"{g!r} (must be in (0, 1])")
        wi = self.warmup_iters
        _check(isinstance(wi, int) and wi >= 0, "warmup_iters", f"{wi!r} (must be an integer >= 0)")
        wr = self.warmup_ratio
        _check(isinstance(wr, (int, float)) and 0 < wr <= 1, "warmup_ratio", f"{wr!r} (must be in (0, 1])")
        wd = self.weight_decay
        _check(isinstance(wd, (int, float)) and wd >= 0, "weight_decay", f"{wd!r} (must be >= 0)")
        _check(self.optimizer in OPTIMIZERS, "optimizer", f"{self.optimizer!r} (known: {', '.join(OPTIMIZERS)})")
        _check(self.schedule in SCHEDULES, "schedule", f"{self.schedule!r} (known: {', '.join(SCHEDULES)})")
        if self.schedule == "flat-cosine":
            cb, ce = self.cosine_begin, self.cosine_end
            _check(isinstance(cb, int) and isinstance(ce, int) and 0 <= cb < ce, "cosine_begin",
                   f"{cb!r} (an epoch before the cosine's end {ce!r})")
        r = self.eta_min_ratio
        _check(isinstance(r, (int, float)) and 0 <= r <= 1, "eta_min_ratio", f"{r!r} (must be in [0, 1])")
        for name in ("norm_decay_mult", "bias_decay_mult"):
            v = getattr(self, name)
            _check(isinstance(v, (int, float)) and v >= 0, name, f"{v!r} (must be >= 0)")
        c = self.clip_grad_norm
        _check(c is None or (isinstance(c, (int, float)) and c > 0), "clip_grad_norm", f"{c!r} (must be > 0)")
        _check(self.ema in EMAS, "ema", f"{self.ema!r} (known: {', '.join(EMAS)})")
        m = self.ema_momentum
        _check(isinstance(m, (int, float)) and 0 < m < 1, "ema_momentum", f"{m!r} (must be in (0, 1))")
        g = self.ema_gamma
        _check(isinstance(g, (int, float)) and g > 0, "ema_gamma", f"{g!r} (must be > 0)")
        iv = self.ema_interval
        _check(isinstance(iv, int) and iv >= 1, "ema_interval", f"{iv!r} (must be an integer >= 1)")
        _check(self.augment in augment_sets(), "augment", f"{self.augment!r} (known: {', '.join(augment_sets())})")
        sb = self.stage2_begin
        _check(sb is None or (isinstance(sb, int) and sb >= 0), "stage2_begin", f"{sb!r} (an epoch >= 0, or none)")

    def to_dict(self) -> dict[str, Any]:
        """The ``config.json`` form (key order and names of every earlier run folder; the fields from
        ``schedule`` on appear where they differ from their defaults, :func:`~hrbench.registry.shown_fields`)."""
        out = {FILE_KEYS.get(k, k): v for k, v in shown_fields(self, "schedule").items()}
        out["lr_steps"] = list(self.lr_steps)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Training:
        names = {v: k for k, v in FILE_KEYS.items()}
        kw = {names.get(k, k): v for k, v in d.items()}
        kw["lr_steps"] = tuple(kw["lr_steps"])
        return cls(**kw)


#: Python field name -> ``config.json`` key, where they differ (kept so existing run folders load).
FILE_KEYS = {"batch": "batch_per_process"}


#: Training-recipe keys a user may override (``--set train.KEY=VALUE``; ``none`` sets an optional one to None).
TRAIN_KEYS = ("lr", "lr_steps", "gamma", "warmup_iters", "warmup_ratio", "weight_decay", "optimizer", "schedule",
              "cosine_begin", "eta_min_ratio", "norm_decay_mult", "bias_decay_mult", "clip_grad_norm", "ema",
              "ema_momentum", "ema_gamma", "ema_interval", "augment", "stage2_begin")

#: The optimisers (:mod:`hrbench.engine.optim`), schedules (:func:`lr_at`) and EMA kinds (:mod:`hrbench.engine.ema`).
OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("step", "flat-cosine")
EMAS = ("none", "exp-momentum")


def _check(cond: bool, name: str, msg: str) -> None:
    if not cond:
        raise ConfigError(f"invalid {name}: {msg}")


def scale_steps(steps: tuple[int, ...], epochs: int, recipe_epochs: int) -> tuple[int, ...]:
    """Rule 1 of the module docstring: epoch milestones scaled to a run of ``epochs`` epochs."""
    if epochs == recipe_epochs:
        return tuple(steps)
    return tuple(min(epochs, max(1, round(s * epochs / recipe_epochs))) for s in steps)


def resolve_training(recipe: Recipe, *, epochs: int | None = None, batch: int | None = None,
                     world_size: int = 1, lr: float | None = None,
                     train_overrides: dict[str, Any] | None = None) -> Training:
    """The resolved optimisation settings of a run (rules 1-3 of the module docstring)."""
    epochs = recipe.epochs if epochs is None else epochs
    batch = recipe.batch_per_gpu if batch is None else batch
    _check(isinstance(epochs, int) and epochs >= 1, "epochs", f"{epochs!r} (must be an integer >= 1)")
    _check(isinstance(batch, int) and batch >= 1, "batch size", f"{batch!r} (must be an integer >= 1)")
    _check(isinstance(world_size, int) and world_size >= 1, "world size", f"{world_size!r}")
    total = batch * world_size
    ratio = epochs / recipe.epochs
    out: dict[str, Any] = {
        "optimizer": recipe.optimizer,
        "epochs": epochs,
        "batch": batch,
        "world_size": world_size,
        "total_batch": total,
        "recipe_total_batch": recipe.total_batch,
        "lr": recipe.lr * total / recipe.total_batch if lr is None else lr,
        "lr_scaled": lr is None and total != recipe.total_batch,
        "lr_steps": scale_steps(recipe.lr_steps, epochs, recipe.epochs),
        "gamma": recipe.gamma,
        "warmup_iters": recipe.warmup_iters if epochs == recipe.epochs else round(recipe.warmup_iters * ratio),
        "warmup_ratio": recipe.warmup_ratio,
        "weight_decay": recipe.weight_decay,
        "schedule": recipe.schedule,
        "cosine_begin": None,
        "cosine_end": None,
        "eta_min_ratio": recipe.eta_min_ratio,
        "norm_decay_mult": recipe.norm_decay_mult,
        "bias_decay_mult": recipe.bias_decay_mult,
        "clip_grad_norm": recipe.clip_grad_norm,
        "ema": recipe.ema,
        "ema_momentum": recipe.ema_momentum,
        "ema_gamma": recipe.ema_gamma,
        "ema_interval": recipe.ema_interval,
        "augment": recipe.augment,
        "stage2_begin": None,
    }
    if recipe.schedule == "flat-cosine":
        begin = recipe.epochs // 2 if recipe.cosine_begin is None else recipe.cosine_begin
        # scaled as a milestone, but kept before the last epoch (a 1-epoch run is all cosine)
        out["cosine_begin"] = min(epochs - 1, scale_steps((begin,), epochs, recipe.epochs)[0])
        out["cosine_end"] = epochs
    if recipe.stage2_epochs > 0:
        out["stage2_begin"] = scale_steps((recipe.epochs - recipe.stage2_epochs,), epochs, recipe.epochs)[0]
    for key, value in (train_overrides or {}).items():
        if key not in TRAIN_KEYS:
            raise ConfigError(f"unknown training setting train.{key}; known: {', '.join(TRAIN_KEYS)}")
        if key == "lr_steps":
            value = (value,) if isinstance(value, int) else tuple(value)
        if key == "ema" and value is None:  # --set train.ema=none
            value = "none"
        out[key] = value
        if key == "lr":
            out["lr_scaled"] = False
    if out["schedule"] == "flat-cosine":  # a step recipe switched to flat-cosine by an override: the defaults
        out["cosine_end"] = epochs
        if out["cosine_begin"] is None:
            out["cosine_begin"] = epochs // 2
    else:
        out["cosine_begin"] = out["cosine_end"] = None
    return Training(**out)


def lr_at(t: Training, epoch: int, iteration: int, steps_per_epoch: int | None = None) -> float:
    """Learning rate at 0-based ``epoch`` and global 0-based ``iteration`` (module docstring);
    ``steps_per_epoch`` (iterations per epoch) is needed by the iteration-based ``flat-cosine``."""
    if t.schedule == "step":
        lr = t.lr * t.gamma ** sum(epoch >= s for s in t.lr_steps)
        if iteration < t.warmup_iters:
            lr *= 1.0 - (1.0 - iteration / t.warmup_iters) * (1.0 - t.warmup_ratio)
        return lr
    if not isinstance(steps_per_epoch, int) or steps_per_epoch < 1:
        raise ValueError(f"the {t.schedule} schedule needs steps_per_epoch >= 1, got {steps_per_epoch!r}")
    assert t.cosine_begin is not None and t.cosine_end is not None  # Training checks it
    lr = t.lr
    begin, span = t.cosine_begin * steps_per_epoch, (t.cosine_end - t.cosine_begin) * steps_per_epoch
    if iteration >= begin:
        eta_min = t.lr * t.eta_min_ratio
        lr = eta_min + (t.lr - eta_min) * (1.0 + math.cos(math.pi * min(iteration - begin, span - 1) / span)) / 2.0
    w = t.warmup_iters
    if w > 1 and iteration < w - 1:
        lr *= t.warmup_ratio + (1.0 - t.warmup_ratio) * iteration / (w - 1)
    return lr
