"""True multiply-accumulates, counted at the ATen level during one forward pass.

Every convolution (``nn.Conv2d`` or a functional / dynamic ``F.conv2d``, any ``groups``,
transposed too) and every matrix product (``matmul``, ``mm``, ``bmm``, ``einsum``, ``linear``,
``addmm``, ``baddbmm``, ``mv``, ``dot``) reaches the dispatcher as one of a few ATen ops, so a
:class:`~torch.utils._python_dispatch.TorchDispatchMode` sees them all, however the model calls
them. The unit is decimal (1 MAC = one multiply + one add; no bias, no elementwise ops).

The same probe pass also takes a census of the ``torch`` functions each module calls
(:class:`FunctionCensus`), which tells what the hook-based conventions and the libraries skip.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections import Counter

import torch
from torch import nn
from torch.overrides import TorchFunctionMode, resolve_name
from torch.utils._python_dispatch import TorchDispatchMode

from hrbench.complexity.conventions import Convention
from hrbench.complexity.hooks import PaperHooks

aten = torch.ops.aten


def _numel(shape) -> int:
    return math.prod(int(s) for s in shape)


def _conv_macs(args, out) -> int:
    x, weight = args[0], args[1]
    transposed = bool(args[6]) if len(args) > 6 else False
    kernel = _numel(weight.shape[2:])
    if transposed:  # weight (C_in, C_out/groups, k...): every input element meets C_out/groups kernels
        return _numel(x.shape) * int(weight.shape[1]) * kernel
    return _numel(out.shape) * int(weight.shape[1]) * kernel  # weight (C_out, C_in/groups, k...)


def _mm_macs(a, b) -> int:
    return int(a.shape[0]) * int(a.shape[1]) * int(b.shape[1])


def _bmm_macs(a, b) -> int:
    return int(a.shape[0]) * int(a.shape[1]) * int(a.shape[2]) * int(b.shape[2])


def _matmul_macs(a, b) -> int:
    """torch.matmul semantics: 1-D operands are promoted, leading dimensions broadcast."""
    sa, sb = list(a.shape), list(b.shape)
    if len(sa) == 1:
        sa = [1, sa[0]]
    if len(sb) == 1:
        sb = [sb[0], 1]
    batch = torch.broadcast_shapes(tuple(sa[:-2]), tuple(sb[:-2]))
    return _numel(batch) * sa[-2] * sa[-1] * sb[-1]


def _convnd_macs(args, out) -> int:
    return _numel(out.shape) * int(args[1].shape[1]) * _numel(args[1].shape[2:])


def _conv_transpose_macs(args, out) -> int:
    return _numel(args[0].shape) * int(args[1].shape[1]) * _numel(args[1].shape[2:])


#: ATen overload packets that carry multiply-accumulates -> MACs(args, out). The composite
#: ones (conv2d, matmul, linear) reach a dispatch mode undecomposed in some modes (e.g. under
#: inference_mode); otherwise their decompositions (convolution, mm, bmm, addmm) do. Either
#: way a call is seen once.
MAC_OPS = {
    aten.conv1d: _convnd_macs,
    aten.conv2d: _convnd_macs,
    aten.conv3d: _convnd_macs,
    aten.conv_transpose1d: _conv_transpose_macs,
    aten.conv_transpose2d: _conv_transpose_macs,
    aten.conv_transpose3d: _conv_transpose_macs,
    aten.matmul: lambda args, out: _matmul_macs(args[0], args[1]),
    aten.linear: lambda args, out: _numel(args[0].shape) * int(args[1].shape[0]),
    aten.convolution: lambda args, out: _conv_macs(args, out),
    aten._convolution: lambda args, out: _conv_macs(args, out),
    aten.mm: lambda args, out: _mm_macs(args[0], args[1]),
    aten.addmm: lambda args, out: _mm_macs(args[1], args[2]),
    aten.bmm: lambda args, out: _bmm_macs(args[0], args[1]),
    aten.baddbmm: lambda args, out: _bmm_macs(args[1], args[2]),
    aten.mv: lambda args, out: _numel(args[0].shape),
    aten.addmv: lambda args, out: _numel(args[1].shape),
    aten.dot: lambda args, out: int(args[0].shape[0]),
}

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


def is_user_module(m: nn.Module) -> bool:
    """A module written for a model (not a ``torch.nn`` layer or container)."""
    return not type(m).__module__.startswith("torch.")


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

    def owner_block(self) -> nn.Module | None:
        """The innermost executing module written for the model (its block type)."""
        for _, m in reversed(self.stack):
            if is_user_module(m):
                return m
        return None


@dataclasses.dataclass
class MacsResult:
    """Outcome of :class:`MacCounter`: ``total`` MACs, per innermost module and per ATen op.

    ``by_class`` attributes each MAC to the innermost model-defined module (its block type), a
    partition of ``total``; ``other_ops`` counts ATen ops that do arithmetic but no MACs.
    """

    total: int = 0
    by_module: dict[str, int] = dataclasses.field(default_factory=dict)
    by_op: Counter = dataclasses.field(default_factory=Counter)
    by_class: dict[str, int] = dataclasses.field(default_factory=dict)
    other_ops: Counter = dataclasses.field(default_factory=Counter)


class MacCounter(TorchDispatchMode):
    """Dispatch mode adding up the MACs of every convolution / matrix product it sees."""

    def __init__(self, stack: ModuleStack | None = None) -> None:
        super().__init__()
        self.stack = stack
        self.result = MacsResult()
        self._depth = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        packet = func.overloadpacket
        rule = MAC_OPS.get(packet)
        if rule is None:
            # A composite op (e.g. einsum under inference_mode) reaches the mode undecomposed:
            # run its decomposition under the mode so that the products inside are seen.
            if self._depth == 0 and packet.__name__ not in _DATA_OPS:
                self.result.other_ops[packet.__name__] += 1
            self._depth += 1
            try:
                with self:
                    out = func.decompose(*args, **kwargs)
            finally:
                self._depth -= 1
            return func(*args, **kwargs) if out is NotImplemented else out
        out = func(*args, **kwargs)
        macs = int(rule(args, out))
        r = self.result
        r.total += macs
        r.by_op[packet.__name__] += macs
        name = self.stack.current if self.stack else ""
        r.by_module[name] = r.by_module.get(name, 0) + macs
        block = self.stack.owner_block() if self.stack else None
        cls = type(block).__name__ if block is not None else "(top level)"
        r.by_class[cls] = r.by_class.get(cls, 0) + macs
        return out


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


def run_probe(model: nn.Module, input_hw: tuple[int, int], convention: Convention | None = None) -> Probe:
    """One forward pass of ``model`` (eval, inference mode, batch 1) with the module stack, the
    MAC counter, the function census and (given ``convention``) the paper's hooks attached."""
    stack = ModuleStack(model)
    counter = MacCounter(stack)
    census = FunctionCensus(stack)
    paper = PaperHooks(model, convention) if convention is not None else contextlib.nullcontext()
    was_training = model.training
    model.eval()
    try:
        with stack, paper, torch.inference_mode(), census, counter:
            out = model(example_input(input_hw))
    finally:
        model.train(was_training)
    first = next((t for t in torch.utils._pytree.tree_leaves(out) if isinstance(t, torch.Tensor)), None)
    shape = tuple(first.shape) if first is not None else ()
    return Probe(stack, counter.result, census, paper.counts if convention is not None else None, shape)


def example_input(input_hw: tuple[int, int]) -> torch.Tensor:
    """A fixed (seeded) batch-1 image; counts depend on shapes only, values keep runs identical."""
    g = torch.Generator().manual_seed(0)
    return torch.randn(1, 3, *input_hw, generator=g)
