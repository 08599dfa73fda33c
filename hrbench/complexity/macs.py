"""True multiply-accumulates of one forward pass, with PyTorch's own counter as the engine.

``torch.utils.flop_counter.FlopCounterMode`` sees every convolution (``nn.Conv2d`` or a
functional / dynamic ``F.conv2d``, any ``groups``, transposed too) and every matrix product
(``matmul``, ``einsum``, ``linear`` decomposed into ``mm`` / ``bmm`` / ``addmm``) at the ATen
level, however the model calls them; :data:`EXTRA_FORMULAS` adds the products it has no formula
for (``mv``, ``addmv``, ``dot``, ``vdot``). MACs = its FLOPs / 2, decimal unit (1 MAC = one
multiply + one add; no bias, no elementwise ops). :class:`MacCounter` also attributes each count
to the innermost module; it runs inside the probe pass (:mod:`~hrbench.complexity.probe`).
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter

import torch
from torch.utils._pytree import tree_map
from torch.utils.flop_counter import FlopCounterMode, flop_registry

from hrbench.complexity.hooks import ModuleStack

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
