"""One validator per kind of value a user gives (CLI options and the Python API alike): a probability
(a score threshold), a random seed, a person box, a network input size. Each returns the value or
raises a one-line :class:`~hrbench.errors.ConfigError` naming the option and the value."""

from __future__ import annotations

import math
from typing import Any

from hrbench.errors import ConfigError

#: Seeds go to ``torch.manual_seed`` (which takes at most 2^64 - 1) and numpy (non-negative only).
MAX_SEED = 2 ** 64 - 1
#: Heatmaps are 1/4 of the input (every model here): the input sides must be multiples of it.
HEATMAP_STRIDE = 4
#: The smallest input side accepted (a 4 x 4 heatmap).
MIN_INPUT_SIDE = 16
#: The largest input side accepted (before the memory check of :mod:`hrbench.memory` looks closer).
MAX_INPUT_SIDE = 8192


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_probability(value: Any, option: str) -> float:
    """A finite number in [0, 1] (``--det-thr``, ``predict --thr``); NaN and inf are refused."""
    if not _finite_number(value) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"invalid {option} {value}: expected a number in [0, 1]")
    return float(value)


def check_seed(value: Any, option: str = "--seed") -> int:
    """An integer seed in [0, 2^64 - 1] (what both torch and numpy take)."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SEED:
        raise ConfigError(f"invalid {option} {value}: expected an integer in [0, 2^64 - 1]")
    return value


def check_box(box: Any, where: str, *, empty_ok: bool = False) -> list[float]:
    """A person box ``[x, y, w, h]``: 4 finite numbers with w, h > 0 (``empty_ok``: w, h >= 0, for
    detection files, whose zero-size boxes the reference keeps). ``where`` names the file and entry."""
    if not isinstance(box, (list, tuple)) or len(box) != 4 or not all(_finite_number(v) for v in box):
        shown = repr(box)
        raise ConfigError(f"{where} must be [x, y, w, h] (4 finite numbers), got "
                          f"{shown if len(shown) <= 60 else shown[:57] + '...'}")
    w, h = box[2], box[3]
    if w < 0 or h < 0 or (not empty_ok and (w == 0 or h == 0)):
        need = ">= 0" if empty_ok else "> 0"
        raise ConfigError(f"{where} has width {w} and height {h}: both must be {need}")
    return [float(v) for v in box]


def check_input_size(h: int, w: int, option: str = "--input") -> tuple[int, int]:
    """A network input H x W: sides multiples of :data:`HEATMAP_STRIDE`, in [16, 8192]."""
    text = repr(f"{h}x{w}")
    if not MIN_INPUT_SIDE <= h <= MAX_INPUT_SIDE or not MIN_INPUT_SIDE <= w <= MAX_INPUT_SIDE:
        raise ConfigError(f"invalid {option} {text}: height and width must be in [{MIN_INPUT_SIDE}, "
                          f"{MAX_INPUT_SIDE}]")
    if h % HEATMAP_STRIDE or w % HEATMAP_STRIDE:
        raise ConfigError(f"invalid {option} {text}: height and width must be multiples of {HEATMAP_STRIDE} "
                          "(the heatmaps are 1/4 of the input)")
    return h, w
