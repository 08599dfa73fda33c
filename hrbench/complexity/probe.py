"""The probe: one instrumented forward pass that every forward-reading engine shares.

It runs the module stack (:class:`~hrbench.complexity.hooks.ModuleStack`), the MAC counter
(:mod:`~hrbench.complexity.macs`), an ATen census of kernel launches and elements moved
(:mod:`~hrbench.complexity.traffic`), a census of the ``torch`` functions each module calls
(:class:`FunctionCensus`: what the hook-based conventions and the libraries skip) and, given a
convention, the paper's hooks (:class:`~hrbench.complexity.hooks.PaperHooks`).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections import Counter

import torch
from torch import nn
from torch.overrides import TorchFunctionMode, resolve_name

from hrbench.complexity.conventions import Convention
from hrbench.complexity.hooks import ModuleStack, PaperHooks
from hrbench.complexity.macs import MacCounter, MacsResult, flop_formulas
from hrbench.complexity.traffic import AtenCensus, Traffic

#: ATen ops that only move, view or allocate data (left out of the "not MACs" census).
_DATA_OPS = {
    "view", "_unsafe_view", "reshape", "expand", "permute", "transpose", "t", "clone", "contiguous",
    "cat", "stack", "split", "split_with_sizes", "chunk", "slice", "select", "unbind", "narrow",
    "squeeze", "unsqueeze", "flatten", "detach", "alias", "copy_", "_to_copy", "empty", "empty_like",
    "zeros", "zeros_like", "ones", "ones_like", "full", "fill_", "randn", "rand", "normal_", "uniform_",
    "new_empty", "new_zeros", "new_ones", "new_full", "lift_fresh", "as_strided", "_reshape_alias",
    "index", "index_select", "gather", "roll", "constant_pad_nd", "sym_size", "sym_stride", "sym_numel",
    "sym_storage_offset", "is_same_size", "empty_strided", "channel_shuffle", "pixel_shuffle",
}

#: ``torch`` function names (last dotted part) that only move or view data, or read metadata.
_DATA_FUNCS = {
    "view", "view_as", "reshape", "reshape_as", "flatten", "unflatten", "transpose", "permute", "contiguous",
    "chunk", "split", "cat", "concat", "stack", "unbind", "narrow", "select", "__getitem__", "__setitem__",
    "__get__", "size", "dim", "numel", "squeeze", "unsqueeze", "expand", "expand_as", "repeat", "clone", "to",
    "detach", "type_as", "float", "half", "bfloat16", "double", "randn", "rand", "zeros", "ones", "empty",
    "zeros_like", "ones_like", "empty_like", "new_empty", "new_zeros", "new_ones", "new_full", "tensor",
    "__len__", "__iter__", "__format__", "__repr__", "__hash__", "__eq__", "__bool__", "__index__",
    "__int__", "__float__", "item", "tolist", "is_contiguous", "stride", "data_ptr", "storage_offset",
    "requires_grad_", "_has_compatible_shallow_copy_type", "roll", "channel_shuffle", "pixel_shuffle",
    "device", "dtype", "layout", "is_floating_point", "shape", "ndim", "requires_grad", "grad_fn",
    "__reduce_ex__", "_make_subclass", "__contains__", "unsafe_chunk", "unsafe_split", "movedim", "t",
}


def is_data_movement(func_name: str) -> bool:
    """True for a ``torch`` function that does no arithmetic (views, copies, metadata)."""
    parts = func_name.split(".")
    last = parts[-1]
    if last == "__get__" and len(parts) > 1:
        return True
    return last in _DATA_FUNCS


class FunctionCensus(TorchFunctionMode):
    """Records every outermost ``torch`` function call with the innermost module running it."""

    def __init__(self, stack: ModuleStack) -> None:
        super().__init__()
        self.stack = stack
        self.calls: list[tuple[str, str]] = []  # (function name, module name)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = resolve_name(func) or getattr(func, "__qualname__", repr(func))
        if not is_data_movement(name):
            self.calls.append((name, self.stack.current))
        return func(*args, **(kwargs or {}))


def count_macs(model: nn.Module, input_hw: tuple[int, int]) -> MacsResult:
    """True MACs of ``model`` on one (1, 3, H, W) input (eval mode, no autograd)."""
    return run_probe(model, input_hw).macs


@dataclasses.dataclass
class Probe:
    """Everything one instrumented forward pass learns (see :func:`run_probe`)."""

    stack: ModuleStack
    macs: MacsResult
    census: FunctionCensus
    paper: dict[str, int] | None = None
    output_shape: tuple[int, ...] = ()
    traffic: Traffic = dataclasses.field(default_factory=Traffic)
    hooks: PaperHooks | None = None  # the convention's hooks (per-call shapes), given one


def run_probe(model: nn.Module, input_hw: tuple[int, int], convention: Convention | None = None) -> Probe:
    """One forward pass of ``model`` (eval, inference mode, batch 1) with the module stack, the
    MAC counter (FlopCounterMode), the ATen census of launches and elements, the function
    census and (given ``convention``) the paper's hooks attached."""
    stack = ModuleStack(model)
    counter = MacCounter(stack)
    aten_census = AtenCensus(stack)
    census = FunctionCensus(stack)
    hooks = PaperHooks(model, convention) if convention is not None else None
    was_training = model.training
    model.eval()
    x = example_input(input_hw)
    try:  # the MAC counter is entered last: it decomposes composite ops before the ATen census
        with stack, hooks or contextlib.nullcontext(), torch.inference_mode(), census, aten_census, counter:
            out = model(x)
    finally:
        model.train(was_training)
    first = next((t for t in torch.utils._pytree.tree_leaves(out) if isinstance(t, torch.Tensor)), None)
    shape = tuple(first.shape) if first is not None else ()
    traffic = aten_census.traffic
    formulas = {getattr(op, "__name__", str(op)) for op in flop_formulas()}
    counter.result.other_ops = Counter({op: n for op, n in traffic.by_op.items()
                                        if op not in formulas and op not in _DATA_OPS})
    return Probe(stack, counter.result, census, hooks.counts if hooks is not None else None, shape, traffic, hooks)


def example_input(input_hw: tuple[int, int]) -> torch.Tensor:
    """A fixed (seeded) batch-1 image; counts depend on shapes only, values keep runs identical."""
    g = torch.Generator().manual_seed(0)
    return torch.randn(1, 3, *input_hw, generator=g)
