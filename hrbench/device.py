"""``--device`` in one place: every command accepts ``auto`` (CUDA when available, else CPU),
``cpu``, ``cuda`` and ``cuda:N``, with ``auto`` as the default."""

from __future__ import annotations

import torch

from hrbench.errors import ConfigError

DEVICE_HELP = "auto | cpu | cuda | cuda:N (auto: CUDA when available)"


def resolve_device(device: str | None, local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` under torchrun -> ``cuda:<local_rank>``.
    One-line :class:`ConfigError` for anything else or a CUDA device this machine does not have."""
    name = "auto" if device is None else str(device).strip().lower()
    if not name:
        raise ConfigError(f"invalid --device {device!r}: empty; expected auto, cpu, cuda or cuda:N")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            why = "built without CUDA" if torch.version.cuda is None else "no visible GPU"
            raise ConfigError(f"invalid --device {device!r}: CUDA is not available here (torch {torch.__version__}, "
                              f"{why})")
        if name == "cuda":
            name = f"cuda:{local_rank}"
        try:
            dev = torch.device(name)
        except RuntimeError as e:
            raise ConfigError(f"invalid --device {device!r}: {e}") from None
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"invalid --device {device!r}: only {torch.cuda.device_count()} CUDA device(s)")
        return dev
    raise ConfigError(f"unknown --device {device!r}: expected auto, cpu, cuda or cuda:N")
