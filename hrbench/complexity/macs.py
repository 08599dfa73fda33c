"""True multiply-accumulates of one forward pass, with PyTorch's own counter as the engine.

``torch.utils.flop_counter.FlopCounterMode`` sees every convolution (``nn.Conv2d`` or a
functional / dynamic ``F.conv2d``, any ``groups``, transposed too) and every matrix product
(``matmul``, ``einsum``, ``linear`` decomposed into ``mm`` / ``bmm`` / ``addmm``) at the ATen
level, however the model calls them; :data:`EXTRA_FORMULAS` adds the products it has no formula
for (``mv``, ``addmv``, ``dot``, ``vdot``). MACs = its FLOPs / 2, decimal unit (1 MAC = one
multiply + one add; no bias, no elementwise ops). :class:`MacCounter` also attributes each count
to the innermost module.

The same probe pass takes a census of the ``torch`` functions each module calls
(:class:`FunctionCensus`), which tells what the hook-based conventions and the libraries skip,
and an ATen census of kernel launches and elements moved (:mod:`hrbench.complexity.traffic`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections import Counter

import torch
from torch import nn
from torch.overrides import TorchFunctionMode, resolve_name
from torch.utils._pytree import tree_map
from torch.utils.flop_counter import FlopCounterMode, flop_registry

from hrbench.complexity.conventions import Convention
from hrbench.complexity.hooks import PaperHooks
from hrbench.complexity.traffic import AtenCensus, Traffic

aten = torch.ops.aten


def _numel(shape) -> int:
    return math.prod(int(s) for s in shape)


def _on_shapes(formula):
    """A FlopCounterMode formula on raw arguments, from one written on shapes (as torch's own)."""

    def raw(*args, out_val=None, **kwargs) -> int:
        shapes = tree_map(lambda t: t.shape if isinstance(t, torch.Tensor) else t, (args, kwargs, out_val))
        return int(formula(*shapes[0], **shapes[1], out_shape=shapes[2]))

    raw._get_raw = True  # FlopCounterMode passes such a formula the raw arguments
    return raw


def _conv_backward(grad_out, x, w, bias, stride, padding, dilation, transposed, output_padding, groups,
                   output_mask, **kwargs) -> int:
    """Grad-input and grad-weight each repeat the forward's products: forward MACs per output."""
    kernel, spatial = _numel(w[2:]), _numel((x if transposed else grad_out)[2:])
    forward = 2 * int(x[0]) * spatial * kernel * int(w[0]) * int(w[1])  # w: (C_out, C_in/g, k..)
    return forward * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


def _conv(x, w, *args, **kwargs) -> int:
    """conv1d/2d/3d (composite, seen undecomposed under inference_mode): w = (C_out, C_in/g, k..)."""
    out = kwargs["out_shape"]
    return 2 * _numel(out) * int(w[1]) * _numel(w[2:])


def _conv_transpose(x, w, *args, **kwargs) -> int:
    """conv_transpose1d/2d/3d: every input element meets C_out/g kernels, w = (C_in, C_out/g, k..)."""
    return 2 * _numel(x) * int(w[1]) * _numel(w[2:])


def _matmul(a, b, **kwargs) -> int:
    """torch.matmul semantics: 1-D operands are promoted, leading dimensions broadcast."""
    sa, sb = list(a), list(b)
    sa, sb = ([1, *sa] if len(sa) == 1 else sa), ([*sb, 1] if len(sb) == 1 else sb)
    batch = torch.broadcast_shapes(tuple(sa[:-2]), tuple(sb[:-2]))
    return 2 * _numel(batch) * sa[-2] * sa[-1] * sb[-1]


#: Formulas (in FLOPs = 2 per multiply-accumulate, FlopCounterMode's unit) for the ATen ops with
#: multiply-accumulates that ``torch.utils.flop_counter`` has no formula for. Composite ops
#: (conv2d, matmul, linear) would be decomposed into ``convolution`` / ``mm`` / ``addmm`` by the
#: mode; counting them directly saves a dispatch round per call (einsum stays decomposed).
EXTRA_FORMULAS = {
    **{op: _on_shapes(_conv) for op in (aten.conv1d, aten.conv2d, aten.conv3d)},
    **{op: _on_shapes(_conv_transpose) for op in (aten.conv_transpose1d, aten.conv_transpose2d,
                                                  aten.conv_transpose3d)},
    aten.matmul: _on_shapes(_matmul),
    aten.linear: _on_shapes(lambda x, w, *args, **kw: 2 * _numel(x) * int(w[0])),
    aten.mv: _on_shapes(lambda a, v, **kw: 2 * _numel(a)),
    aten.addmv: _on_shapes(lambda s, a, v, **kw: 2 * _numel(a)),
    aten.dot: _on_shapes(lambda a, b, **kw: 2 * _numel(a)),
    aten.vdot: _on_shapes(lambda a, b, **kw: 2 * _numel(a)),
    # torch's convolution_backward formula ignores ``groups`` in the grad-weight product (it
    # counts a depthwise conv's grad-weight C times over); this one is exact for any groups.
    aten.convolution_backward: _on_shapes(_conv_backward),
}


def flop_formulas() -> dict:
    """Every formula hrbench counts with: PyTorch's registry, :data:`EXTRA_FORMULAS` replacing."""
    return {**flop_registry, **EXTRA_FORMULAS}


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


class ModuleStack:
    """Tracks which modules are executing (pre/post forward hooks on every module of ``model``).

    ``stack`` holds ``(name, module)`` pairs, outermost first; ``calls`` counts calls per name.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.names = {m: n for n, m in model.named_modules()}
        self.stack: list[tuple[str, nn.Module]] = []
        self.calls: Counter[str] = Counter()
        self._handles: list = []

    def __enter__(self) -> ModuleStack:
        for module, name in self.names.items():
            self._handles.append(module.register_forward_pre_hook(self._push(name)))
            self._handles.append(module.register_forward_hook(self._pop))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self.stack.clear()

    def _push(self, name: str):
        def hook(module, args):
            self.stack.append((name, module))
            self.calls[name] += 1

        return hook

    def _pop(self, module, args, out) -> None:
        if self.stack and self.stack[-1][1] is module:
            self.stack.pop()

    @property
    def current(self) -> str:
        return self.stack[-1][0] if self.stack else ""


@dataclasses.dataclass
class MacsResult:
    """Outcome of :class:`MacCounter`: ``total`` MACs and their partition over the innermost executing
    modules; ``other_ops`` counts ATen ops that do arithmetic but no MACs."""

    total: int = 0
    by_module: dict[str, int] = dataclasses.field(default_factory=dict)
    other_ops: Counter = dataclasses.field(default_factory=Counter)


class _GlobalOnly:
    """Stands in for FlopCounterMode's module tracker (global hooks walking the module tree at
    every call, a third of the probe's time): every count goes to its "Global" total only."""

    parents = ("Global",)

    def __enter__(self) -> _GlobalOnly:
        return self

    def __exit__(self, *exc) -> None:
        return None


class MacCounter:
    """PyTorch's ``FlopCounterMode`` as the MAC engine (MACs = its FLOPs / 2), every formula
    wrapped so that each count is also attributed to the innermost executing module (``stack``).
    Use as a context manager; ``result`` holds the outcome."""

    def __init__(self, stack: ModuleStack | None = None) -> None:
        self.stack = stack
        self.result = MacsResult()
        mapping = {op: self._attributed(f) for op, f in flop_formulas().items()}
        self.mode = FlopCounterMode(display=False, custom_mapping=mapping)
        if hasattr(self.mode, "mod_tracker"):  # torch >= 2.4 names modules itself; ``stack`` does that here
            self.mode.mod_tracker = _GlobalOnly()

    def _attributed(self, formula):
        def raw(*args, out_val=None, **kwargs) -> int:
            flops = int(formula(*args, out_val=out_val, **kwargs))
            self._record(flops // 2)
            return flops

        raw._get_raw = True
        return raw

    def _record(self, macs: int) -> None:
        by_module = self.result.by_module
        name = self.stack.current if self.stack else ""
        by_module[name] = by_module.get(name, 0) + macs

    @property
    def flops(self) -> int:
        """FlopCounterMode's own total (2 per multiply-accumulate)."""
        return self.mode.get_total_flops()

    def __enter__(self) -> MacCounter:
        self.mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.mode.__exit__(*exc)
        self.result.total = self.flops // 2


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
