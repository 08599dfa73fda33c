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

The lr at iteration ``i`` of epoch ``e`` (both 0-based) is ``lr x gamma ** #{s in lr_steps: e >= s}``,
multiplied during warm-up (``i < warmup_iters``) by ``1 - (1 - i / warmup_iters) x (1 - warmup_ratio)``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from hrbench.datasets import get_dataset
from hrbench.errors import ConfigError
from hrbench.registry import Recipe, get_entry


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

    def to_dict(self) -> dict[str, Any]:
        """The ``config.json`` form (key order and names of every earlier run folder)."""
        out = {FILE_KEYS.get(k, k): v for k, v in dataclasses.asdict(self).items()}
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


#: Training-recipe keys a user may override (``--set train.KEY=VALUE``).
TRAIN_KEYS = ("lr", "lr_steps", "gamma", "warmup_iters", "warmup_ratio", "weight_decay")


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
    }
    for key, value in (train_overrides or {}).items():
        if key not in TRAIN_KEYS:
            raise ConfigError(f"unknown training setting train.{key}; known: {', '.join(TRAIN_KEYS)}")
        if key == "lr_steps":
            value = (value,) if isinstance(value, int) else tuple(value)
        out[key] = value
        if key == "lr":
            out["lr_scaled"] = False
    return Training(**out)


def lr_at(t: Training, epoch: int, iteration: int) -> float:
    """Learning rate at 0-based ``epoch`` and global 0-based ``iteration`` (module docstring)."""
    lr = t.lr * t.gamma ** sum(epoch >= s for s in t.lr_steps)
    if iteration < t.warmup_iters:
        lr *= 1.0 - (1.0 - iteration / t.warmup_iters) * (1.0 - t.warmup_ratio)
    return lr
