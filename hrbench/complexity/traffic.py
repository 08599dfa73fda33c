"""Memory traffic beside FLOPs: an ATen-level census of one forward pass.

Every ATen op that reaches the dispatcher after ``FlopCounterMode`` has decomposed the composite
ones (``conv2d`` -> ``convolution``, ``matmul`` -> ``mm`` ...) is one kernel launch on an eager
device, except views and bare allocations (:data:`NO_KERNEL`). Per launch the census adds the
elements of its tensor outputs (*written*: the activations) and of its tensor inputs (*read*:
activations and weights), attributed to the innermost executing module. Bytes are elements x
the element size of the stated dtype (fp32 = 4, bf16 = 2: every tensor in that dtype), so the
arithmetic intensity (MACs per byte moved) of a stage or block type is a property of the
architecture, not of one run. A 0.2-GMAC Lite-HRNet with ~1000s of launches and ~1 MAC per byte
is launch- and bandwidth-bound; an HRNet-W32 at tens of MACs per byte is compute-bound.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

#: Non-view ATen ops that allocate or relabel memory without running a kernel.
NO_KERNEL = frozenset({"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "_unsafe_view",
                       "lift_fresh", "set_", "resize_"})

#: Bytes per element of each reported dtype.
BYTES = {"fp32": 4, "bf16": 2}

UNITS = {
    "launches": "ATen ops that run a kernel per forward (views and bare allocations excluded), batch 1",
    "written": "elements written by those ops (the activations), batch 1",
    "read": "elements read by those ops (activations and weights), batch 1",
    "bytes_fp32": "bytes read + written with every tensor in fp32 (4 B)",
    "bytes_bf16": "bytes read + written with every tensor in bf16 (2 B)",
    "intensity_fp32": "true MACs per byte moved at fp32",
    "intensity_bf16": "true MACs per byte moved at bf16",
}


def by_count(counts: Mapping[str, int]) -> dict[str, int]:
    """``counts`` ordered by count, largest first, then by name (how every census is printed)."""
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def is_user_module(m: nn.Module) -> bool:
    """A module written for a model (not a ``torch.nn`` layer or container)."""
    return not type(m).__module__.startswith("torch.")


def _elements(value) -> int:
    """Elements of the tensors in an ATen op's arguments or outputs (tensors, lists, dicts)."""
    if isinstance(value, torch.Tensor):
        return value.numel()
    if isinstance(value, (tuple, list)):
        return sum(_elements(v) for v in value)
    if isinstance(value, dict):
        return sum(_elements(v) for v in value.values())
    return 0


@dataclasses.dataclass
class Traffic:
    """Launches, elements written and read, per innermost module name; launches per ATen op."""

    launches: Counter = dataclasses.field(default_factory=Counter)
    written: Counter = dataclasses.field(default_factory=Counter)
    read: Counter = dataclasses.field(default_factory=Counter)
    by_op: Counter = dataclasses.field(default_factory=Counter)


class AtenCensus(TorchDispatchMode):
    """Dispatch mode recording a :class:`Traffic` of every kernel-running ATen op it sees.

    ``stack`` is a :class:`~hrbench.complexity.hooks.ModuleStack` (its ``current`` module name)."""

    def __init__(self, stack: Any = None) -> None:
        super().__init__()
        self.stack = stack
        self.traffic = Traffic()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func.overloadpacket.__name__
        if func.is_view or name in NO_KERNEL:
            return out
        where = self.stack.current if self.stack is not None else ""
        t = self.traffic
        t.launches[where] += 1
        t.by_op[name] += 1
        t.written[where] += _elements(out)
        t.read[where] += _elements((args, kwargs))
        return out


def figures(macs: int, launches: int, written: int, read: int) -> dict[str, float | int]:
    """One row: MACs, launches, elements, bytes at each dtype and the intensities."""
    row: dict[str, float | int] = {"macs": macs, "launches": launches, "written": written, "read": read}
    for dtype, size in BYTES.items():
        moved = (written + read) * size
        row[f"bytes_{dtype}"] = moved
        row[f"intensity_{dtype}"] = round(macs / moved, 4) if moved else 0.0
    return row


def grouped(traffic: Traffic, macs_by_module: dict[str, int], key: Callable[[str], str]) -> dict[str, dict]:
    """:func:`figures` per group of innermost module names (``key(name)``), largest MACs first."""
    sums: dict[str, list[int]] = {}
    for name in set(traffic.launches) | set(macs_by_module):
        acc = sums.setdefault(key(name), [0, 0, 0, 0])
        acc[0] += macs_by_module.get(name, 0)
        acc[1] += traffic.launches.get(name, 0)
        acc[2] += traffic.written.get(name, 0)
        acc[3] += traffic.read.get(name, 0)
    rows = {g: figures(*v) for g, v in sums.items()}
    return dict(sorted(rows.items(), key=lambda kv: (-kv[1]["macs"], -kv[1]["launches"], kv[0])))


def stage_of(name: str) -> str:
    """The stage a module belongs to: its first two name parts (``backbone.stage1``, ``head``)."""
    return ".".join(name.split(".")[:2]) if name else "(top level)"


def block_type_key(model: nn.Module) -> Callable[[str], str]:
    """Maps a module name to its innermost model-defined module class (its block type)."""
    mods = dict(model.named_modules())

    def key(name: str) -> str:
        parts = name.split(".") if name else []
        for i in range(len(parts), 0, -1):
            m = mods.get(".".join(parts[:i]))
            if m is not None and is_user_module(m):
                return type(m).__name__
        return type(model).__name__

    return key


def summary(model: nn.Module, traffic: Traffic, macs_by_module: dict[str, int]) -> dict[str, Any]:
    """The JSON form: totals, per stage, per block type, launches per ATen op, units."""
    total = figures(sum(macs_by_module.values()), sum(traffic.launches.values()), sum(traffic.written.values()),
                    sum(traffic.read.values()))
    return {
        "total": total,
        "by_stage": grouped(traffic, macs_by_module, stage_of),
        "by_block_type": grouped(traffic, macs_by_module, block_type_key(model)),
        "launches_by_op": by_count(traffic.by_op),
        "units": dict(UNITS),
    }
