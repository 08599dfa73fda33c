"""Checkpoint I/O: reading (safely), importing official checkpoints, saving atomically.

Accepted by :func:`load_checkpoint`:

* hrbench's own format: ``{"format": "hrbench-checkpoint-v1", "arch": <canonical name>,
  "overrides": {...}, "num_keypoints": K, "state_dict": {...}, ...optional training state}``;
* an official mmpose-0.x checkpoint (``{"state_dict": {"backbone.*", "keypoint_head.*"}, "meta": ...}``),
  as released with Lite-HRNet and Dite-HRNet;
* an mmpose-1.x checkpoint (``backbone.*`` / ``head.*``);
* a bare state_dict (name -> tensor).

Keys are mapped to hrbench's (``keypoint_head.final_layer`` -> ``head.final_layer``, a
DataParallel ``module.`` prefix dropped; the backbones keep the official names), and compared with the
model: missing, unexpected and shape-mismatched keys are reported, and with ``strict=True``
any of them is a :class:`~hrbench.errors.CheckpointError` (one line).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hrbench.errors import CheckpointError, HrbenchError
from hrbench.fsutil import atomic_write
from hrbench.registry import create_config, resolve

FORMAT = "hrbench-checkpoint-v1"

#: Prefix renames, applied in order: a DataParallel wrapper's ``module.``, then the mmpose-0.x
#: ``TopDownSimpleHead`` prefix (mmpose 1.x's ``HeatmapHead`` is already ``head.``).
_PREFIX_MAP = (("module.", ""), ("keypoint_head.", "head."))


@dataclasses.dataclass
class LoadReport:
    """What :func:`load_checkpoint` did: where from, which format, which keys fitted."""

    source: str
    format: str  # 'hrbench' | 'mmpose' | 'state_dict'
    loaded: list[str]
    missing: list[str]
    unexpected: list[str]
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]]  # key, checkpoint shape, model shape
    payload: dict[str, Any] = dataclasses.field(default_factory=dict)  # the rest (training state, meta)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self) -> str:
        parts = [f"{len(self.loaded)} tensors loaded"]
        if self.missing:
            parts.append(f"{len(self.missing)} missing")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unexpected")
        if self.mismatched:
            parts.append(f"{len(self.mismatched)} shape-mismatched")
        return f"{self.source} ({self.format}): " + ", ".join(parts)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """``torch.load(path, map_location="cpu", weights_only=True)``; every failure (missing file,
    corrupt file, a pickled object that is not plain data) -> one-line :class:`CheckpointError`. Only a
    regular file is opened: a FIFO would block the read forever, a device would stream endlessly."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"checkpoint {p}: no such file")
    if p.is_dir():
        raise CheckpointError(f"checkpoint {p}: is a directory, not a file")
    if not p.is_file():
        kind = "a FIFO" if p.is_fifo() else "a device" if p.is_char_device() or p.is_block_device() else \
            "a socket" if p.is_socket() else "not a regular file"
        raise CheckpointError(f"checkpoint {p}: is {kind}, not a regular file")
    try:
        with warnings.catch_warnings():  # torch's UserWarnings on a refused file (pickle protocol, TorchScript):
            warnings.simplefilter("ignore", UserWarning)  # hrbench says the one line below
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types (UnpicklingError, RuntimeError, EOFError...)
        reason = _load_failure(p, exc)
        raise CheckpointError(f"checkpoint {p}: {reason}") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"checkpoint {p}: expected a dict, found {type(obj).__name__}")
    return obj


def _load_failure(path: Path, exc: BaseException) -> str:
    """Why ``torch.load`` refused ``path``, in words: not a PyTorch file at all, a truncated/corrupt
    one, or one holding pickled objects that weights-only loading refuses."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head != b"PK\x03\x04" and head[:1] != b"\x80":  # torch.save's zip archive, or a legacy pickle
        return "not a PyTorch checkpoint (neither a torch.save zip archive nor a pickle)"
    text = str(exc)
    if "Unsupported global" in text or "GLOBAL" in text:
        return "holds pickled objects other than tensors and plain data (refused by weights_only loading)"
    first = next((ln.strip() for ln in text.splitlines() if ln.strip() and "weights_only" not in ln), "")
    first = first.split(". ")[0][:160]  # torch appends paragraphs of advice after the first sentence
    return f"truncated or corrupt ({type(exc).__name__}{': ' + first if first else ''})"


def _is_state_dict(obj: Any) -> bool:
    return (isinstance(obj, Mapping) and len(obj) > 0
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()))


def _describe_non_state_dict(obj: Any) -> str:
    if not isinstance(obj, Mapping):
        return f"a {type(obj).__name__}"
    if not obj:
        return "an empty dict"
    for k, v in obj.items():
        if not isinstance(k, str):
            return f"a dict with a non-string key {k!r}"
        if not isinstance(v, torch.Tensor):
            return f"a dict whose entry {k!r} is a {type(v).__name__}, not a tensor"
    return "a dict"


def split_payload(obj: Mapping[str, Any], source: str) -> tuple[str, dict[str, torch.Tensor], dict[str, Any]]:
    """(format, state_dict, rest) of a loaded checkpoint; CheckpointError if it holds no state_dict."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"checkpoint {source}: expected a dict, found {type(obj).__name__}")
    if obj.get("format") == FORMAT:
        fmt = "hrbench"
        sd = obj.get("state_dict")
    elif "format" in obj and isinstance(obj.get("format"), str) and str(obj["format"]).startswith("hrbench"):
        raise CheckpointError(f"checkpoint {source}: unsupported hrbench format {obj['format']!r} (expected {FORMAT})")
    elif "state_dict" in obj:
        fmt, sd = "mmpose", obj["state_dict"]
    elif _is_state_dict(obj):
        return "state_dict", dict(obj), {}
    else:
        raise CheckpointError(f"checkpoint {source}: not a state_dict or a checkpoint holding one "
                              f"({_describe_non_state_dict(obj)})")
    if not _is_state_dict(sd):
        what = _describe_non_state_dict(sd)
        raise CheckpointError(f"checkpoint {source}: its 'state_dict' is not a state_dict ({what})")
    rest = {k: v for k, v in obj.items() if k != "state_dict"}
    return fmt, dict(sd), rest


def map_official_key(key: str) -> str:
    """hrbench key for an official (mmpose 0.x/1.x) key."""
    for old, new in _PREFIX_MAP:
        if key.startswith(old):
            key = new + key[len(old):]
    return key


def check_arch(saved: Any, want: str, source: str) -> None:
    """One-line :class:`CheckpointError` unless the checkpoint's ``saved`` architecture (a name or
    alias; reported as the file spells it when not registered) is ``want`` (canonical)."""
    try:
        found = resolve(str(saved))
    except HrbenchError:
        found = str(saved)
    if found != want:
        raise CheckpointError(f"checkpoint {source} is for architecture {found}, not {want}")


def _check_arch(model: nn.Module, rest: Mapping[str, Any], source: str) -> None:
    arch = rest.get("arch")
    want = getattr(model, "arch", "") or ""
    if arch and want:
        check_arch(arch, want, source)
    k = rest.get("num_keypoints")
    model_k = getattr(model, "num_keypoints", None)
    if isinstance(k, int) and isinstance(model_k, int) and k != model_k:
        raise CheckpointError(f"checkpoint {source} predicts {k} keypoints, the model {model_k} "
                              f"(use num_keypoints={k})")


def _preview(keys: list[str], n: int = 3) -> str:
    return ", ".join(keys[:n]) + (", ..." if len(keys) > n else "")


def load_checkpoint(model: nn.Module, path_or_dict: str | Path | Mapping[str, Any], strict: bool = True,
                    source: str | None = None, check_header: bool = True) -> LoadReport:
    """Load hrbench / mmpose-0.x / mmpose-1.x / bare-state_dict weights into ``model``.

    With ``strict`` any missing, unexpected or shape-mismatched key raises a one-line
    :class:`CheckpointError` and the model is left untouched; otherwise the fitting tensors
    are loaded and the :class:`LoadReport` lists the rest. BatchNorm ``num_batches_tracked``
    counters absent from a checkpoint are not counted as missing. ``source`` names an already
    read checkpoint in error messages (its file path). ``check_header=False``: the caller has already
    checked an hrbench checkpoint's architecture and keypoint count (:func:`hrbench.factory.restore_model`).
    """
    if isinstance(path_or_dict, (str, Path)):
        source = str(path_or_dict)
        obj = read_checkpoint(path_or_dict)
    else:
        source = source or "<in-memory checkpoint>"
        obj = path_or_dict
    fmt, raw, rest = split_payload(obj, source)
    if fmt == "hrbench" and check_header:
        _check_arch(model, rest, source)

    state: dict[str, torch.Tensor] = {}
    for key, value in raw.items():
        state[key if fmt == "hrbench" else map_official_key(key)] = value
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    mismatched = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in state.items()
                  if k in own and tuple(v.shape) != tuple(own[k].shape)]
    arch = getattr(model, "arch", "") or type(model).__name__
    if strict and (missing or unexpected or mismatched):
        counts = ", ".join(p for p in (
            f"{len(missing)} missing" if missing else "",
            f"{len(unexpected)} unexpected" if unexpected else "",
            f"{len(mismatched)} shape-mismatched" if mismatched else "") if p)
        detail = "; ".join(p for p in (
            f"missing: {_preview(missing)}" if missing else "",
            f"unexpected: {_preview(unexpected)}" if unexpected else "",
            "shape: " + ", ".join(f"{k} {tuple(a)} vs {tuple(b)}" for k, a, b in mismatched[:2])
            + (", ..." if len(mismatched) > 2 else "") if mismatched else "") if p)
        raise CheckpointError(f"checkpoint {source} does not fit {arch}: {counts} keys ({detail})")
    bad = {k for k, _, _ in mismatched}
    fitting = {k: v for k, v in state.items() if k in own and k not in bad}
    check_finite(fitting, source)
    model.load_state_dict(fitting, strict=False)
    return LoadReport(source, fmt, sorted(fitting), missing, unexpected, mismatched, rest)


def check_finite(state: Mapping[str, torch.Tensor], source: str) -> None:
    """Refuse weights holding NaN or infinity (a diverged or damaged checkpoint evaluates to AP 0 and
    puts NaN into every result): one line naming the file, the first bad tensor and how many values."""
    for key, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            n_nan, n_inf = int(torch.isnan(value).sum()), int(torch.isinf(value).sum())
            what = " and ".join(p for p in (f"{n_nan} NaN" if n_nan else "", f"{n_inf} infinite" if n_inf else "")
                                if p)
            raise CheckpointError(f"checkpoint {source}: tensor {key} holds {what} value(s) of {value.numel()}; "
                                  "these weights are not usable (a diverged or damaged save)")


def make_payload(arch: str, overrides: Mapping[str, Any], num_keypoints: int | None, model: nn.Module,
                 **extra: Any) -> dict[str, Any]:
    """The hrbench checkpoint (format :data:`FORMAT`): ``arch`` (canonical), the hyper-parameter
    ``overrides`` it was built with, K, a contiguous CPU copy of ``model``'s state_dict (channels-last
    safe), and ``extra`` (epoch, optimizer state, metrics, the run's configuration...)."""
    return {"format": FORMAT, "arch": arch, "overrides": dict(overrides), "num_keypoints": num_keypoints,
            "state_dict": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, **extra}


def hrbench_payload(model: nn.Module, **extra: Any) -> dict[str, Any]:
    """:func:`make_payload` of a :func:`~hrbench.factory.create_model` model: its arch, the
    hyper-parameters that differ from the registered variant, its K."""
    arch = getattr(model, "arch", "")
    if not arch:
        raise CheckpointError("cannot save an hrbench checkpoint of a model without .arch (use create_model)")
    overrides: dict[str, Any] = {}
    cfg = getattr(model, "config", None)
    if cfg is not None:
        default = create_config(arch).to_dict()
        overrides = {k: v for k, v in cfg.to_dict().items() if default.get(k) != v}
    return make_payload(arch, overrides, getattr(model, "num_keypoints", None), model, **extra)


def save_checkpoint(path: str | Path, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` with ``torch.save`` atomically (:func:`hrbench.fsutil.atomic_write`: a
    killed run never leaves a half-written checkpoint). Returns the path."""
    with atomic_write(path, binary=True) as fh:
        torch.save(dict(payload), fh)
    return Path(path)
