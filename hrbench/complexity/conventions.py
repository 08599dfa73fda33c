"""Counting conventions as tables of per-module rules (one small function per module type).

A rule is ``rule(module, in_shape, out_shape) -> int`` on batch-1 shapes ``(N, C, H, W)``; the
same rules serve the hook-based counter (shapes from a real forward pass) and the analytic
walker (shapes propagated in closed form), so the two agree by construction only when the
shape propagation is right. Facts: ``shared/reference/README.md`` and ``architectures.md``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from torch import nn

Shape = tuple[int, ...]
Rule = Callable[[nn.Module, Shape, Shape], int]


def _numel(shape: Shape) -> int:
    return math.prod(shape)


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


# --- torchstat rules (vendored in both official repositories' tools/torchstat) -------------
def conv2d(m, i: Shape, o: Shape) -> int:
    """(k_h k_w C_in / groups) C_out H_out W_out, + C_out H_out W_out for a bias."""
    kh, kw = _pair(m.kernel_size)
    n, c_out, h, w = o
    flops = kh * kw * i[1] * (c_out // m.groups) * n * h * w
    return flops + (c_out * n * h * w if m.bias is not None else 0)


def conv_transpose2d(m, i: Shape, o: Shape) -> int:
    kh, kw = _pair(m.kernel_size)
    flops = kh * kw * m.in_channels * (m.out_channels // m.groups) * i[0] * i[2] * i[3]
    return flops + (m.out_channels * o[0] * o[2] * o[3] if m.bias is not None else 0)


def batchnorm2d(m, i: Shape, o: Shape) -> int:
    return _numel(i) * (2 if m.affine else 1)


def elementwise(m, i: Shape, o: Shape) -> int:
    return _numel(i)


def pool2d(m, i: Shape, o: Shape) -> int:
    kh, kw = _pair(m.kernel_size)
    return kh * kw * _numel(o)


def adaptive_pool2d(m, i: Shape, o: Shape) -> int:
    n, c, h, w = i
    oh, ow = o[2], o[3]
    total = 0
    for a in range(oh):
        hh = math.ceil((a + 1) * h / oh) - math.floor(a * h / oh)
        for b in range(ow):
            ww = math.ceil((b + 1) * w / ow) - math.floor(b * w / ow)
            total += n * c * (hh + 1) * (ww + 1)
    return total


def upsample_torchstat(m, i: Shape, o: Shape) -> int:
    """torchstat drops the channel dimension by an indexing slip: batch * H_out * W_out."""
    return o[0] * o[2] * o[3]


def linear(m, i: Shape, o: Shape) -> int:
    return m.in_features * m.out_features


# --- HRNet get_model_summary: multiply-accumulates of Conv2d and Linear only ----------------
def conv2d_macs(m, i: Shape, o: Shape) -> int:
    kh, kw = _pair(m.kernel_size)
    n, c_out, h, w = o
    return kh * kw * (i[1] // m.groups) * c_out * n * h * w


def linear_macs(m, i: Shape, o: Shape) -> int:
    return m.in_features * m.out_features * (math.prod(i[:-1]) if len(i) > 1 else 1)


def conv_transpose2d_at_output(m, i: Shape, o: Shape) -> int:
    """get_model_summary's "Conv" name rule applied to a ConvTranspose2d: weight.numel() x N x H_out x W_out,
    i.e. the products counted at output positions (stride^2 x the true MACs; SimpleBaseline's head)."""
    return m.weight.numel() * o[0] * o[2] * o[3]


@dataclasses.dataclass(frozen=True)
class Convention:
    """One way of counting: ``rules`` maps module types (or class names) to rule functions.

    ``last_call_only``: a module called several times counts once, with its last call's shapes
    (torchstat overwrites its per-module record at each call). ``divisor`` turns the raw count
    into the printed unit (binary M = 2**20).
    """

    name: str
    description: str
    rules: tuple[tuple[type | str, Rule], ...]
    last_call_only: bool
    divisor: int = 2**20
    skips: str = ""

    def rule_for(self, module: nn.Module) -> Rule | None:
        cls_name = type(module).__name__
        for key, rule in self.rules:
            if (isinstance(key, str) and key == cls_name) or (isinstance(key, type) and isinstance(module, key)):
                return rule
        return None


_TORCHSTAT_RULES: tuple[tuple[type | str, Rule], ...] = (
    (nn.Conv2d, conv2d),
    (nn.ConvTranspose2d, conv_transpose2d),
    (nn.BatchNorm2d, batchnorm2d),
    ((nn.ReLU), elementwise),
    (nn.ReLU6, elementwise),
    (nn.PReLU, elementwise),
    (nn.ELU, elementwise),
    (nn.LeakyReLU, elementwise),
    (nn.AvgPool2d, pool2d),
    (nn.MaxPool2d, pool2d),
    (nn.AdaptiveAvgPool2d, adaptive_pool2d),
    (nn.AdaptiveMaxPool2d, adaptive_pool2d),
    (nn.Upsample, upsample_torchstat),
    (nn.Linear, linear),
)

TORCHSTAT = Convention(
    name="torchstat",
    description="torchstat as vendored in github HRNet/Lite-HRNet tools/: leaf-module hooks, conv "
    "k*k*Cin/g*Cout*H*W (+bias), BN 2/elem, ReLU 1/elem, Upsample N*H*W, Linear in*out; last call wins",
    rules=_TORCHSTAT_RULES,
    last_call_only=True,
    skips="Sigmoid, Softmax, every functional op (add, mul, matmul, interpolate, shuffle, F.conv2d); "
    "repeated calls of one module",
)

TORCHSTAT_DITE = Convention(
    name="torchstat-dite",
    description="torchstat as vendored in github ZiyiZhang27/Dite-HRNet: the torchstat rules plus "
    "the dynamic-kernel convolution module counted as a Conv2d",
    # hrbench.models.dynamic.KernelAggregation (the per-sample conv of DKA) counts as a Conv2d,
    # as the official counter's KernelAggregation; keyed by class name to avoid importing models.
    rules=(("KernelAggregation", conv2d), *_TORCHSTAT_RULES),
    last_call_only=True,
    skips=TORCHSTAT.skips.replace("F.conv2d", "F.conv2d outside the dynamic-kernel module"),
)

HRNET_SUMMARY = Convention(
    name="hrnet-summary",
    description="HRNet get_model_summary (leoxiaobin/deep-high-resolution-net.pytorch): "
    "multiply-accumulates of Conv2d and Linear only (ConvTranspose2d: weight x output positions), every call counted",
    rules=((nn.Conv2d, conv2d_macs), (nn.ConvTranspose2d, conv_transpose2d_at_output), (nn.Linear, linear_macs)),
    last_call_only=False,
    skips="bias, BatchNorm, activations, pooling, upsampling, every functional op; a ConvTranspose2d counts its "
    "products at output positions (stride^2 x its MACs)",
)

CONVENTIONS: dict[str, Convention] = {c.name: c for c in (TORCHSTAT, TORCHSTAT_DITE, HRNET_SUMMARY)}


def get_convention(name: str) -> Convention:
    return CONVENTIONS[name]
