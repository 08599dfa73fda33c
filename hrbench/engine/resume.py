"""``train --resume``: find the run, and refuse any option that would silently change it.

A resumed run continues with the configuration saved in its checkpoint. An option given again
with the same value is fine; one with another value is refused in one line naming every
difference. What may change on resume: ``--epochs`` (to extend the run: the resolved schedule,
lr milestones and warm-up, stays as it was), ``--data`` (the data set moved), ``--workers``,
``--device``, ``--threads`` and the display options. Which option is which is declared once, on the
fields of :class:`~hrbench.engine.run_config.TrainOptions` (``on_resume``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from hrbench.engine.run_config import REFUSED, RunConfig, TrainOptions, option_fields
from hrbench.errors import CheckpointError, ConfigError
from hrbench.precision import normalize_amp
from hrbench.registry import create_config, resolve

#: The CLI flag of every option a resumed run refuses to change (:class:`TrainOptions` ``on_resume``).
OPTION_NAMES = {f.name: f.metadata["flag"] for f in option_fields(REFUSED)}


def locate_run(resume: bool | str | Path, out: str | Path | None, name: str | None) -> Path:
    """The run folder to resume: ``resume`` as a run folder / checkpoint path, or ``<out>/<name>``."""
    if resume is True:
        if not name:
            raise ConfigError("--resume needs --name (the run folder under --out) to know which run to continue")
        path = Path(out or "runs") / name
    else:
        path = Path(resume)
        if path.is_file():
            path = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    if not path.is_dir():
        raise CheckpointError(f"cannot resume {path}: no such run folder")
    if not (path / "checkpoints" / "last.pt").exists():
        raise CheckpointError(f"cannot resume {path}: it has no checkpoints/last.pt (the run stopped before its "
                              "first checkpoint); start it again without --resume")
    return path


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-12)
    return json.dumps(a, default=list) == json.dumps(b, default=list)


def saved_value(saved: RunConfig, option: str) -> Any:
    """The run's value of a refused option (the field's ``saved`` path in :class:`RunConfig`)."""
    value: Any = saved
    for part in (TrainOptions.__dataclass_fields__[option].metadata["saved"] or option).split("."):
        value = getattr(value, part)
    return value


def _shown(key: str, value: Any) -> str:
    if key == "input_hw":
        return "x".join(map(str, value))
    if key == "amp":
        return value or "fp32"
    return str(value)


def differences(saved: RunConfig, options: TrainOptions) -> list[str]:
    """``--option given (the run has saved)`` for every given option of :data:`OPTION_NAMES` that differs from
    the run's; model hyper-parameters (``--set``) compare as the resolved model configuration, training settings
    (``--set train.KEY``) key by key."""
    out = []
    for key, value in options.given(REFUSED).items():
        if key == "overrides":
            have = create_config(saved.arch, **saved.overrides).to_dict()
            want = create_config(saved.arch, **{**saved.overrides, **value}).to_dict()
            out += [f"--set {k}={want[k]} (the run has {have[k]})" for k in sorted(want) if not _same(want[k], have[k])]
        elif key == "train_overrides":
            train = saved.train.to_dict()
            out += [f"--set train.{k}={v} (the run has {train.get(k)})" for k, v in sorted(value.items())
                    if not _same(v, train.get(k))]
        else:
            have = saved_value(saved, key)
            want = normalize_amp(value) if key == "amp" else value
            if not _same(want, have):
                out.append(f"{OPTION_NAMES[key]} {_shown(key, want)} (the run has {_shown(key, have)})")
    return out


def resumed_config(saved: RunConfig, options: TrainOptions, *, epochs_done: int, world_size: int,
                   run_path: Path) -> RunConfig:
    """The configuration of the continued run, or one-line errors for what cannot be continued."""
    if resolve(options.arch) != saved.arch:
        raise CheckpointError(f"cannot resume {run_path}: it trains {saved.arch}, not {resolve(options.arch)}")
    diff = differences(saved, options)
    if diff:
        raise ConfigError(f"cannot resume {run_path} with other settings: {'; '.join(diff)}. Drop these options "
                          "(the run keeps its own) or start a new run")
    if saved.train.world_size != world_size:
        raise ConfigError(f"cannot resume {run_path} with {world_size} process(es): it was trained with "
                          f"{saved.train.world_size} (the total batch would change)")
    train = saved.train
    epochs = options.epochs
    if epochs is not None:
        if not isinstance(epochs, int) or epochs < max(1, epochs_done):
            raise ConfigError(f"invalid --epochs {epochs} on resume: {run_path} has already trained {epochs_done} "
                              "epochs (--epochs may extend a run, not cut it below what is done)")
        train = dataclasses.replace(train, epochs=epochs)
    data = saved.data if options.data is None else str(Path(options.data).resolve())
    return dataclasses.replace(saved, train=train, workers=options.workers, data=data, run_dir=str(run_path))
