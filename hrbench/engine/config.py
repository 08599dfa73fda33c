"""The resolved configuration of a training run (``config.json``): recipe + the user's options.

Every option is ``None`` when the user did not give it; :func:`resolve_config` fills in the
defaults. What was given (``hrbench.engine.api._requested``) is what ``--resume`` compares with
the checkpoint's configuration (:mod:`hrbench.engine.resume`).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from hrbench.datasets import DATASET_INPUT, DATASET_KEYPOINTS, DATASET_METRIC, check_dataset
from hrbench.engine.recipes import get_recipe, resolve_training
from hrbench.engine.runs import default_run_name
from hrbench.errors import ConfigError
from hrbench.precision import normalize_amp

CONFIG_FORMAT = "hrbench-config-v1"


def _check_options(input_hw: tuple[int, ...], val_interval: int, workers: int, seed: int) -> None:
    if len(input_hw) != 2 or any(not isinstance(v, int) or v < 1 for v in input_hw):
        raise ConfigError(f"invalid input size {input_hw!r}: expected two positive integers (H, W)")
    if input_hw[0] % 4 or input_hw[1] % 4:
        raise ConfigError(f"invalid input size {input_hw[0]}x{input_hw[1]}: height and width must be multiples of 4")
    if not isinstance(val_interval, int) or val_interval < 1:
        raise ConfigError(f"invalid val interval {val_interval!r}: must be an integer >= 1")
    if not isinstance(workers, int) or workers < 0:
        raise ConfigError(f"invalid workers {workers!r}: must be an integer >= 0")
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"invalid seed {seed!r}: must be a non-negative integer")


def resolve_config(arch: str, data: str | Path | None = None, dataset: str | None = None, epochs: int | None = None,
                   batch_size: int | None = None, input_hw: tuple[int, int] | None = None,
                   overrides: dict[str, Any] | None = None, out: str | Path | None = "runs", name: str | None = None,
                   seed: int | None = None, amp: str | None = None, channels_last: bool | None = None,
                   workers: int = 2, val_interval: int | None = None, lr: float | None = None,
                   train_overrides: dict[str, Any] | None = None, val_flip: bool | None = None,
                   world_size: int | None = None, gpu_aug: bool | None = None) -> dict[str, Any]:
    """The fully resolved configuration of a training run (recipe + overrides); builds nothing.

    ``batch_size`` is per process (the total batch is ``batch_size x world_size``, and the recipe's
    lr is scaled to it, :mod:`hrbench.engine.recipes`). Raises :class:`ConfigError` (one line) for an
    unknown architecture/dataset, an unknown model hyper-parameter or an out-of-range value.
    """
    from hrbench.registry import create_config, get_entry

    entry = get_entry(arch)
    dataset = check_dataset(dataset or "coco")
    overrides = dict(overrides or {})
    create_config(entry.name, **overrides)  # validates the model overrides
    input_hw = tuple(input_hw) if input_hw is not None else DATASET_INPUT[dataset]
    seed = 0 if seed is None else seed
    val_interval = 1 if val_interval is None else val_interval
    _check_options(input_hw, val_interval, workers, seed)
    amp = normalize_amp(amp)
    world = world_size if world_size is not None else int(os.environ.get("WORLD_SIZE", "1"))
    recipe = get_recipe(entry.paper, dataset, input_hw)
    training = resolve_training(recipe, epochs=epochs, batch_size=batch_size, world_size=world, lr=lr,
                                train_overrides=train_overrides)
    run_name = name or default_run_name(entry.name, dataset, input_hw)
    if "/" in run_name or run_name in (".", ".."):
        raise ConfigError(f"invalid run name {run_name!r}: must be a plain folder name")
    return {
        "format": CONFIG_FORMAT,
        "arch": entry.name,
        "paper": entry.paper,
        "overrides": overrides,
        "dataset": dataset,
        "data": None if data is None else os.path.realpath(data),  # never raises: a symlink loop is named later
        "input": list(input_hw),
        "keypoints": DATASET_KEYPOINTS[dataset],
        "metric": DATASET_METRIC[dataset],
        "seed": seed,
        "recipe": dataclasses.asdict(recipe),
        "train": training,
        "val_interval": val_interval,
        "val_flip": True if val_flip is None else bool(val_flip),
        "amp": amp,
        "channels_last": bool(channels_last),
        "gpu_aug": bool(gpu_aug),
        "workers": workers,
        "name": run_name,
        "run_dir": None if out is None else str(Path(out) / run_name),
    }
