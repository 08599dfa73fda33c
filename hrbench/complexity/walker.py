"""Closed-form shape propagation ("analytic" counting) without running a forward pass.

A :class:`Walker` is called like a module, but on shapes: ``w(module, shape) -> shape``.
Leaf layers (conv, BN, activations, pooling, upsampling, linear, identity-shaped ops) are
handled here by formula; every composite hrbench module implements
``walk(self, w, *shapes)`` mirroring its ``forward`` (``nn.Sequential`` is walked in order).
Each leaf call is recorded under the convention's rule, with the same "last call wins"
policy as the hook-based counter, so ``analytic == paper`` checks both.
"""

from __future__ import annotations

import math

from torch import nn

from hrbench.complexity.conventions import Convention, Shape, _pair
from hrbench.models.shapes import conv_out

#: Leaf modules whose output shape equals their input shape.
SHAPE_PRESERVING: tuple[type, ...] = (
    nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.PReLU, nn.ELU, nn.LeakyReLU, nn.Sigmoid, nn.Hardsigmoid,
    nn.Hardswish, nn.SiLU, nn.GELU, nn.Tanh, nn.Softmax, nn.Identity, nn.Dropout, nn.Dropout2d,
    nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d,
)


class AnalyticError(RuntimeError):
    """A module the walker cannot propagate shapes through (it lacks ``walk``)."""


def leaf_shape(m: nn.Module, x: Shape) -> Shape:
    """Output shape of a standard leaf layer for input shape ``x`` (N, C, H, W)."""
    if isinstance(m, nn.Conv2d):
        (kh, kw), (sh, sw), (dh, dw) = _pair(m.kernel_size), _pair(m.stride), _pair(m.dilation)
        if isinstance(m.padding, str):
            ph, pw = ((dh * (kh - 1)) // 2, (dw * (kw - 1)) // 2) if m.padding == "same" else (0, 0)
        else:
            ph, pw = _pair(m.padding)
        return (x[0], m.out_channels, conv_out(x[2], kh, sh, ph, dh), conv_out(x[3], kw, sw, pw, dw))
    if isinstance(m, nn.ConvTranspose2d):
        (kh, kw), (sh, sw), (ph, pw) = _pair(m.kernel_size), _pair(m.stride), _pair(m.padding)
        (oph, opw), (dh, dw) = _pair(m.output_padding), _pair(m.dilation)
        h = (x[2] - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
        w = (x[3] - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
        return (x[0], m.out_channels, h, w)
    if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
        (kh, kw), (ph, pw) = _pair(m.kernel_size), _pair(m.padding)
        sh, sw = _pair(m.stride or m.kernel_size)
        dh, dw = _pair(getattr(m, "dilation", 1))
        rnd = math.ceil if m.ceil_mode else math.floor
        h = rnd((x[2] + 2 * ph - dh * (kh - 1) - 1) / sh) + 1
        w = rnd((x[3] + 2 * pw - dw * (kw - 1) - 1) / sw) + 1
        return (x[0], x[1], int(h), int(w))
    if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        oh, ow = _pair(m.output_size)
        return (x[0], x[1], x[2] if oh is None else oh, x[3] if ow is None else ow)
    if isinstance(m, nn.Upsample):
        if m.size is not None:
            oh, ow = _pair(m.size)
        else:
            fh, fw = (m.scale_factor, m.scale_factor) if not isinstance(m.scale_factor, tuple) else m.scale_factor
            oh, ow = int(math.floor(x[2] * fh)), int(math.floor(x[3] * fw))
        return (x[0], x[1], oh, ow)
    if isinstance(m, nn.Linear):
        return (*x[:-1], m.out_features)
    if isinstance(m, nn.Flatten):
        return (*x[: m.start_dim], math.prod(x[m.start_dim:]))
    if isinstance(m, SHAPE_PRESERVING):
        return x
    raise AnalyticError(f"no shape rule for leaf {type(m).__name__}")


class Walker:
    """Propagates shapes through a model, recording per-module counts under ``convention``."""

    def __init__(self, model: nn.Module, convention: Convention) -> None:
        self.convention = convention
        self.names = {m: n for n, m in model.named_modules()}
        self.counts: dict[str, int] = {}

    def record(self, module: nn.Module, x: Shape, y: Shape) -> None:
        """Record ``module`` called on shape ``x`` giving ``y`` (used by custom leaves too)."""
        rule = self.convention.rule_for(module)
        if rule is None:
            return
        name = self.names.get(module, type(module).__name__)
        value = int(rule(module, x, y))
        if self.convention.last_call_only:
            self.counts[name] = value
        else:
            self.counts[name] = self.counts.get(name, 0) + value

    def __call__(self, module: nn.Module, *shapes):
        walk = getattr(module, "walk", None)
        if walk is not None:
            return walk(self, *shapes)
        if isinstance(module, nn.Sequential):
            (x,) = shapes
            for child in module:
                x = self(child, x)
            return x
        if next(module.children(), None) is not None:
            raise AnalyticError(f"{type(module).__name__} ({self.names.get(module, '?')}) needs a walk() method")
        (x,) = shapes
        y = leaf_shape(module, x)
        self.record(module, x, y)
        return y


def analytic_counts(model: nn.Module, convention: Convention, input_hw: tuple[int, int]) -> dict[str, int]:
    """Per-module counts of ``model`` on a (1, 3, H, W) input, in closed form (no forward)."""
    w = Walker(model, convention)
    w(model, (1, 3, *input_hw))
    return w.counts
