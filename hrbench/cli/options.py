"""Parsers shared by the sub-commands: ``--input HxW``, ``--set KEY=VALUE``, dataset/keypoints."""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from rich.console import Console

from hrbench.datasets import DATASET_KEYPOINTS
from hrbench.errors import HrbenchError


def parse_input(text: str) -> tuple[int, int]:
    """``"256x192"`` -> (256, 192); one-line error for anything else or a non-positive size."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text or "")
    if not m:
        raise HrbenchError(f"malformed --input {text!r}: expected HxW, e.g. 256x192")
    h, w = int(m.group(1)), int(m.group(2))
    if h < 1 or w < 1:
        raise HrbenchError(f"invalid --input {text!r}: height and width must be positive")
    if h > 8192 or w > 8192:
        raise HrbenchError(f"invalid --input {text!r}: larger than 8192 pixels")
    return h, w


def parse_value(text: str) -> Any:
    """A ``--set`` value: int, float, bool, None, a comma-separated tuple of those, or a string."""
    t = text.strip()
    if "," in t:
        return tuple(parse_value(p) for p in t.split(",") if p.strip() != "")
    low = t.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for conv in (int, float):
        try:
            return conv(t)
        except ValueError:
            pass
    return t


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["groups=4,4,4,4", "kernels=1,1,1,1"]`` -> {"groups": (4, 4, 4, 4), ...}."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise HrbenchError(f"malformed --set {item!r}: expected KEY=VALUE, e.g. groups=4,4,4,4")
        out[key.strip()] = parse_value(value)
    return out


def resolve_keypoints(keypoints: int | None, dataset: str | None) -> int:
    """K from ``--keypoints`` or ``--dataset`` (COCO 17, MPII 16); COCO by default."""
    if dataset is not None and dataset not in DATASET_KEYPOINTS:
        raise HrbenchError(f"unknown --dataset {dataset!r}: expected coco or mpii")
    if keypoints is not None:
        if keypoints < 1:
            raise HrbenchError(f"invalid --keypoints {keypoints}: must be a positive integer")
        return keypoints
    return DATASET_KEYPOINTS[dataset or "coco"]


def parse_choices(text: str, allowed: tuple[str, ...], option: str) -> tuple[str, ...]:
    """A comma list of choices (``"eager,amp"``); one-line error naming ``option`` otherwise."""
    chosen = tuple(c.strip() for c in text.split(",") if c.strip())
    bad = [c for c in chosen if c not in allowed]
    if bad or not chosen:
        shown = ", ".join(repr(b) for b in bad) or repr(text)
        raise HrbenchError(f"unknown {option} {shown}: choose from {', '.join(allowed)}")
    return chosen


def fmt_number(v: float | None, digits: int = 2) -> str:
    """``1,234.57``-style, ``-`` for a missing value."""
    return "-" if v is None else f"{v:,.{digits}f}"


def make_console() -> Console:
    """A rich console; when the output is not a terminal (a pipe, a log file) tables get 160
    columns instead of rich's default 80, so wide tables are not cut."""
    return Console() if sys.stdout.isatty() or os.environ.get("COLUMNS") else Console(width=160)
