"""Per-family training recipes (the official configs) and the resolved training configuration.

Facts taken from the official configurations (numbers only):

* Lite-HRNet (github HRNet/Lite-HRNet, ``configs/top_down/lite_hrnet``): Adam, lr 2e-3, 210 epochs,
  linear warm-up over 500 iterations from 0.001 x lr, lr x 0.1 at epochs 170 and 200; 64 samples
  per GPU on COCO 256x192 (the official config; the paper, Sec. 4.1, says 32 per GPU), 32 on COCO
  384x288 and on MPII; 8 GPUs (the paper).
* Dite-HRNet (github ZiyiZhang27/Dite-HRNet): the same optimiser and schedule, 270 epochs on COCO
  and 260 on MPII, 32 samples per GPU on 8 GPUs (its paper, Sec. 4.1).
* HRNet and DPN (no official DPN code): HRNet's Adam recipe, lr 1e-3, 210 epochs, steps 170/200,
  32 samples per GPU on 4 GPUs, with the same 500-iteration warm-up as the mmpose ports.
* Any other family: the Lite-HRNet recipe with 32 samples per GPU on 8 GPUs.

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


@dataclasses.dataclass(frozen=True)
class Recipe:
    """An official training recipe: optimiser, step schedule, warm-up and batch layout."""

    family: str
    source: str
    epochs: int
    batch_per_gpu: int
    gpus: int
    lr: float
    lr_steps: tuple[int, ...] = (170, 200)
    gamma: float = 0.1
    warmup_iters: int = 500
    warmup_ratio: float = 0.001
    optimizer: str = "adam"
    weight_decay: float = 0.0

    @property
    def total_batch(self) -> int:
        return self.batch_per_gpu * self.gpus


def get_recipe(family: str, dataset: str, input_hw: tuple[int, int]) -> Recipe:
    """The official recipe of a model family (``lite``/``dite``/``hrnet``/``dpn``/other)."""
    get_dataset(dataset)  # one-line ConfigError for an unregistered dataset
    if family == "lite":
        per_gpu = 64 if dataset == "coco" and max(input_hw) <= 256 else 32
        return Recipe("lite", "Lite-HRNet official configs", 210, per_gpu, 8, 2e-3)
    if family == "dite":
        return Recipe("dite", "Dite-HRNet official configs", 270 if dataset == "coco" else 260, 32, 8, 2e-3)
    if family in ("hrnet", "dpn"):
        return Recipe(family, "HRNet Adam recipe (w32_256x192_adam_lr1e-3)", 210, 32, 4, 1e-3)
    return Recipe(family or "default", "default (Lite-HRNet recipe, 32/GPU x 8)", 210, 32, 8, 2e-3)


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


def resolve_training(recipe: Recipe, *, epochs: int | None = None, batch_size: int | None = None,
                     world_size: int = 1, lr: float | None = None,
                     train_overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The resolved optimisation settings of a run (rules 1-3 of the module docstring)."""
    epochs = recipe.epochs if epochs is None else epochs
    batch = recipe.batch_per_gpu if batch_size is None else batch_size
    _check(isinstance(epochs, int) and epochs >= 1, "epochs", f"{epochs!r} (must be an integer >= 1)")
    _check(isinstance(batch, int) and batch >= 1, "batch size", f"{batch!r} (must be an integer >= 1)")
    _check(isinstance(world_size, int) and world_size >= 1, "world size", f"{world_size!r}")
    total = batch * world_size
    ratio = epochs / recipe.epochs
    out: dict[str, Any] = {
        "optimizer": recipe.optimizer,
        "epochs": epochs,
        "batch_per_process": batch,
        "world_size": world_size,
        "total_batch": total,
        "recipe_total_batch": recipe.total_batch,
        "lr": recipe.lr * total / recipe.total_batch if lr is None else lr,
        "lr_scaled": lr is None and total != recipe.total_batch,
        "lr_steps": list(scale_steps(recipe.lr_steps, epochs, recipe.epochs)),
        "gamma": recipe.gamma,
        "warmup_iters": recipe.warmup_iters if epochs == recipe.epochs else round(recipe.warmup_iters * ratio),
        "warmup_ratio": recipe.warmup_ratio,
        "weight_decay": recipe.weight_decay,
    }
    for key, value in (train_overrides or {}).items():
        if key not in TRAIN_KEYS:
            raise ConfigError(f"unknown training setting train.{key}; known: {', '.join(TRAIN_KEYS)}")
        if key == "lr_steps":
            value = [value] if isinstance(value, int) else list(value)
        out[key] = value
        if key == "lr":
            out["lr_scaled"] = False
    validate_training(out)
    return out


def validate_training(cfg: dict[str, Any]) -> None:
    """One-line ConfigError for an out-of-range optimisation setting."""
    lr = cfg["lr"]
    _check(isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0, "lr", f"{lr!r} (must be > 0)")
    steps = cfg["lr_steps"]
    _check(all(isinstance(s, int) and s >= 0 for s in steps), "lr_steps", f"{steps!r} (non-negative epochs)")
    _check(list(steps) == sorted(steps), "lr_steps", f"{steps!r} (must be increasing)")
    g = cfg["gamma"]
    _check(isinstance(g, (int, float)) and 0 < g <= 1, "gamma", f"{g!r} (must be in (0, 1])")
    wi = cfg["warmup_iters"]
    _check(isinstance(wi, int) and wi >= 0, "warmup_iters", f"{wi!r} (must be an integer >= 0)")
    wr = cfg["warmup_ratio"]
    _check(isinstance(wr, (int, float)) and 0 < wr <= 1, "warmup_ratio", f"{wr!r} (must be in (0, 1])")
    wd = cfg["weight_decay"]
    _check(isinstance(wd, (int, float)) and wd >= 0, "weight_decay", f"{wd!r} (must be >= 0)")


def lr_at(cfg: dict[str, Any], epoch: int, iteration: int) -> float:
    """Learning rate at 0-based ``epoch`` and global 0-based ``iteration`` (module docstring)."""
    lr = cfg["lr"] * cfg["gamma"] ** sum(epoch >= s for s in cfg["lr_steps"])
    wi = cfg["warmup_iters"]
    if iteration < wi:
        lr *= 1.0 - (1.0 - iteration / wi) * (1.0 - cfg["warmup_ratio"])
    return lr
