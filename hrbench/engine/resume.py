"""``train --resume``: find the run, and refuse any option that would silently change it.

A resumed run continues with the configuration saved in its checkpoint. An option given again
with the same value is fine; one with another value is refused in one line naming every
difference. What may change on resume: ``--epochs`` (to extend the run: the resolved schedule,
lr milestones and warm-up, stays as it was), ``--data`` (the data set moved), ``--workers``,
``--device``, ``--threads`` and the display options.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hrbench.errors import CheckpointError, ConfigError
from hrbench.precision import normalize_amp

#: The CLI option each resumable-check key stands for.
OPTION_NAMES = {"dataset": "--dataset", "input": "--input", "batch": "--batch", "lr": "--lr", "seed": "--seed",
                "amp": "--amp", "channels_last": "--channels-last", "gpu_aug": "--gpu-aug",
                "val_interval": "--val-interval", "val_flip": "--val-flip"}


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


def _saved_value(saved: dict[str, Any], key: str) -> Any:
    train = saved["train"]
    return {"batch": train["batch_per_process"], "lr": train["lr"]}.get(key, saved.get(key))


def _shown(key: str, value: Any) -> str:
    if key == "input":
        return "x".join(map(str, value))
    if key == "amp":
        return value or "fp32"
    return str(value)


def differences(saved: dict[str, Any], requested: dict[str, Any]) -> list[str]:
    """``--option given (the run has saved)`` for every requested option that differs from ``saved``.

    ``requested`` holds only the options the user gave: keys of :data:`OPTION_NAMES`, ``set``
    (model hyper-parameters, compared as the resolved model configuration) and ``train``
    (``train.KEY`` settings)."""
    from hrbench.registry import create_config

    out = []
    for key, value in requested.items():
        if key == "set":
            have = create_config(saved["arch"], **saved["overrides"]).to_dict()
            want = create_config(saved["arch"], **{**saved["overrides"], **value}).to_dict()
            out += [f"--set {k}={want[k]} (the run has {have[k]})" for k in sorted(want) if not _same(want[k], have[k])]
        elif key == "train":
            out += [f"--set train.{k}={v} (the run has {saved['train'].get(k)})" for k, v in sorted(value.items())
                    if not _same(v, saved["train"].get(k))]
        else:
            have = _saved_value(saved, key)
            want = normalize_amp(value) if key == "amp" else list(value) if key == "input" else value
            if not _same(want, have):
                out.append(f"{OPTION_NAMES[key]} {_shown(key, want)} (the run has {_shown(key, have)})")
    return out


def resumed_config(saved: dict[str, Any], requested: dict[str, Any], *, arch: str, epochs: int | None,
                   epochs_done: int, world_size: int, data: str | Path | None, workers: int,
                   run_path: Path) -> dict[str, Any]:
    """The configuration of the continued run, or one-line errors for what cannot be continued."""
    if arch != saved["arch"]:
        raise CheckpointError(f"cannot resume {run_path}: it trains {saved['arch']}, not {arch}")
    diff = differences(saved, requested)
    if diff:
        raise ConfigError(f"cannot resume {run_path} with other settings: {'; '.join(diff)}. Drop these options "
                          "(the run keeps its own) or start a new run")
    if saved["train"]["world_size"] != world_size:
        raise ConfigError(f"cannot resume {run_path} with {world_size} process(es): it was trained with "
                          f"{saved['train']['world_size']} (the total batch would change)")
    cfg = json.loads(json.dumps(saved))
    if epochs is not None:
        if not isinstance(epochs, int) or epochs < max(1, epochs_done):
            raise ConfigError(f"invalid --epochs {epochs} on resume: {run_path} has already trained {epochs_done} "
                              "epochs (--epochs may extend a run, not cut it below what is done)")
        cfg["train"]["epochs"] = epochs
    cfg["workers"] = workers
    if data is not None:
        cfg["data"] = str(Path(data).resolve())
    cfg["run_dir"] = str(run_path)
    return cfg
