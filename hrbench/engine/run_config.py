"""A training run's options and configuration, each written once.

* :class:`TrainOptions` — what the user gave (``hrbench train`` builds it from its flags; Python callers
  with ``train(arch, data, **options)``); ``None`` is "not given". Every field says what ``--resume``
  does with it (``on_resume``): ``refused`` when it differs from the run's, ``extends`` (``--epochs``),
  ``free`` (may change: where the data is, workers, device, display), ``locates`` (finds the run).
* :class:`RunConfig` — what the run uses: the family's recipe + the defaults + the world size, resolved
  by :func:`resolve_config`. :meth:`RunConfig.to_dict` is ``config.json`` (and ``--print-config``, and
  the checkpoint's ``config``) in the keys of every run folder so far; :meth:`RunConfig.from_dict`
  reads them back.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from hrbench.data.augment import check_device_aug
from hrbench.datasets import DEFAULT_DATASET, get_dataset
from hrbench.engine.recipes import Training, get_recipe, resolve_training
from hrbench.engine.runs import default_run_name
from hrbench.errors import ConfigError
from hrbench.precision import normalize_amp
from hrbench.registry import RECIPE_LATER_FIELDS, Recipe, create_config, get_entry, shown_fields

CONFIG_FORMAT = "hrbench-config-v1"

#: ``on_resume`` values of :class:`TrainOptions` fields (module docstring).
REFUSED, EXTENDS, FREE, LOCATES = "refused", "extends", "free", "locates"


def _opt(flag: str, on_resume: str, default: Any = None, saved: str | None = None) -> Any:
    """A :class:`TrainOptions` field: its CLI flag, what resume does with it and, for a refused option, where
    the run keeps its value (a :class:`RunConfig` attribute path; default: the field's name)."""
    return dataclasses.field(default=default, metadata={"flag": flag, "on_resume": on_resume, "saved": saved})


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """The options of ``hrbench train`` as given (``None``: not given, the recipe's / the default).

    ``batch`` is per process; ``overrides``: model hyper-parameters (``--set KEY=VALUE``);
    ``train_overrides``: training settings (``--set train.KEY=VALUE``). ``resume``: True (``<out>/<name>``)
    or a run folder / checkpoint path. ``stop_after``: train at most this many epochs in this call;
    ``threads``: intra-op CPU threads, N or ``auto`` (None leaves torch's setting alone).
    """

    arch: str = _opt("ARCH", LOCATES, dataclasses.MISSING)  # must be the run's (checked on resume)
    data: str | None = _opt("--data", FREE)
    dataset: str | None = _opt("--dataset", REFUSED)
    input_hw: tuple[int, int] | None = _opt("--input", REFUSED, saved="input_hw")
    batch: int | None = _opt("--batch", REFUSED, saved="train.batch")
    lr: float | None = _opt("--lr", REFUSED, saved="train.lr")
    seed: int | None = _opt("--seed", REFUSED)
    amp: str | None = _opt("--amp", REFUSED)
    channels_last: bool | None = _opt("--channels-last", REFUSED)
    gpu_aug: bool | None = _opt("--gpu-aug", REFUSED)
    val_interval: int | None = _opt("--val-interval", REFUSED)
    val_flip: bool | None = _opt("--val-flip", REFUSED)
    overrides: dict[str, Any] | None = _opt("--set", REFUSED)
    train_overrides: dict[str, Any] | None = _opt("--set train.", REFUSED, saved="train")
    epochs: int | None = _opt("--epochs", EXTENDS)
    out: str | None = _opt("--out", LOCATES, "runs")
    name: str | None = _opt("--name", LOCATES)
    resume: bool | str = _opt("--resume", LOCATES, False)
    device: str = _opt("--device", FREE, "auto")
    workers: int = _opt("--workers", FREE, 2)
    threads: int | str | None = _opt("--threads", FREE)
    validate_first: bool = _opt("--validate-first", FREE, False)
    stop_after: int | None = _opt("stop_after", FREE)  # Python only
    progress: bool = _opt("--no-progress", FREE, True)
    tensorboard: bool = _opt("--tensorboard", FREE, True)
    log_interval: int = _opt("log_interval", FREE, 50)  # Python only

    def __post_init__(self) -> None:  # one form for what may come as Path / list / empty dict
        fix = object.__setattr__
        for key in ("data", "out"):
            if isinstance(getattr(self, key), Path):
                fix(self, key, str(getattr(self, key)))
        if isinstance(self.resume, Path):
            fix(self, "resume", str(self.resume))
        if self.input_hw is not None:
            fix(self, "input_hw", tuple(self.input_hw))
        for key in ("overrides", "train_overrides"):
            fix(self, key, dict(getattr(self, key)) if getattr(self, key) else None)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainOptions:
        return cls(**d)

    def given(self, on_resume: str = REFUSED) -> dict[str, Any]:
        """The options with ``on_resume`` the user gave (not None), in field order."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.metadata["on_resume"] == on_resume and getattr(self, f.name) is not None}


def option_fields(on_resume: str) -> list[dataclasses.Field]:
    """The :class:`TrainOptions` fields resume treats as ``on_resume``."""
    return [f for f in dataclasses.fields(TrainOptions) if f.metadata["on_resume"] == on_resume]


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The resolved configuration of a training run: what it trains, on what, and how (``config.json``)."""

    arch: str
    paper: str
    overrides: dict[str, Any]
    dataset: str
    data: str | None
    input_hw: tuple[int, int]
    keypoints: int
    metric: str
    seed: int
    recipe: Recipe
    train: Training
    val_interval: int
    val_flip: bool
    amp: str | None
    channels_last: bool
    gpu_aug: bool
    workers: int
    name: str
    run_dir: str | None

    def to_dict(self) -> dict[str, Any]:
        """``config.json``: the keys (and their order) of every run folder so far."""
        out: dict[str, Any] = {"format": CONFIG_FORMAT}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "input_hw":
                out["input"] = list(value)
            elif f.name == "recipe":
                out["recipe"] = shown_fields(value, RECIPE_LATER_FIELDS)
            elif f.name == "train":
                out["train"] = value.to_dict()
            else:
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """A ``config.json`` / checkpoint ``config`` back; one-line :class:`ConfigError` if it is not one."""
        try:
            if d.get("format") != CONFIG_FORMAT:
                raise ValueError(f"format {d.get('format')!r}, expected {CONFIG_FORMAT!r}")
            kw = {k: v for k, v in d.items() if k not in ("format", "input", "recipe", "train")}
            recipe = {**d["recipe"], "lr_steps": tuple(d["recipe"]["lr_steps"])}
            return cls(**kw, input_hw=tuple(d["input"]), recipe=Recipe(**recipe), train=Training.from_dict(d["train"]))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"not an hrbench run configuration ({type(exc).__name__}: {exc})") from None


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


def resolve_config(options: TrainOptions, world_size: int | None = None) -> RunConfig:
    """The resolved configuration of a new run (recipe + options + defaults); builds nothing.

    The total batch is ``options.batch x world_size`` (default: ``$WORLD_SIZE``, else 1), and the
    recipe's lr is scaled to it (:mod:`hrbench.engine.recipes`). Raises :class:`ConfigError` (one line)
    for an unknown architecture/dataset, an unknown model hyper-parameter or an out-of-range value.
    """
    o = options
    entry = get_entry(o.arch)
    spec = get_dataset(o.dataset or DEFAULT_DATASET)
    dataset = spec.name
    overrides = dict(o.overrides or {})
    create_config(entry.name, **overrides)  # validates the model overrides
    input_hw = o.input_hw if o.input_hw is not None else spec.input_hw
    seed = 0 if o.seed is None else o.seed
    val_interval = 1 if o.val_interval is None else o.val_interval
    _check_options(input_hw, val_interval, o.workers, seed)
    amp = normalize_amp(o.amp)
    world = world_size if world_size is not None else int(os.environ.get("WORLD_SIZE", "1"))
    recipe = get_recipe(entry.name, dataset, input_hw)
    training = resolve_training(recipe, epochs=o.epochs, batch=o.batch, world_size=world, lr=o.lr,
                                train_overrides=o.train_overrides)
    if o.gpu_aug:
        check_device_aug(training.augment)  # refused, never silently dropped
    run_name = o.name or default_run_name(entry.name, dataset, input_hw)
    if "/" in run_name or run_name in (".", ".."):
        raise ConfigError(f"invalid run name {run_name!r}: must be a plain folder name")
    return RunConfig(
        arch=entry.name, paper=entry.paper, overrides=overrides, dataset=dataset,
        data=None if o.data is None else os.path.realpath(o.data), input_hw=tuple(input_hw),  # never raises
        keypoints=spec.num_keypoints, metric=spec.metric, seed=seed, recipe=recipe,
        train=training, val_interval=val_interval, val_flip=True if o.val_flip is None else bool(o.val_flip),
        amp=amp, channels_last=bool(o.channels_last), gpu_aug=bool(o.gpu_aug), workers=o.workers, name=run_name,
        run_dir=None if o.out is None else str(Path(o.out) / run_name))
