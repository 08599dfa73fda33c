"""Mixed precision in one place: the ``--amp`` names, their dtypes and the autocast context that
training, validation and evaluation share (a run is evaluated in the precision it trained in)."""

from __future__ import annotations

import contextlib

import torch

from hrbench.errors import ConfigError

#: ``--amp`` values; ``fp32`` (stored as ``None``) says "no mixed precision" explicitly.
AMP_CHOICES = ("fp32", "bf16", "fp16")
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def normalize_amp(amp: str | None) -> str | None:
    """``None``/``fp32`` -> None; ``bf16``/``fp16`` as given; one-line error otherwise."""
    if amp is None or amp == "fp32":
        return None
    if amp not in AMP_DTYPES:
        raise ConfigError(f"invalid --amp {amp!r}: expected {', '.join(AMP_CHOICES)}")
    return amp


def autocast(device: torch.device, amp: str | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` on ``device`` in the dtype of ``amp`` (``bf16``/``fp16``); no-op for None."""
    if amp is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=AMP_DTYPES[normalize_amp(amp)])
