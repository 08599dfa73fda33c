"""Counting conventions as data: each a registered :class:`Convention`, a table of per-module
:class:`Rule` s (one small function per module type, each carrying its own words for ``--explain``).

A rule counts ``count(module, in_shape, out_shape) -> int`` on batch-1 shapes ``(N, C, H, W)``;
the same rules serve the hook-based counter (shapes from a real forward pass) and the analytic
walker (shapes propagated in closed form), so the two agree by construction only when the shape
propagation is right. Sources: ``torchstat`` as vendored in the Lite-HRNet and Dite-HRNet
repositories (``tools/torchstat``) and HRNet's ``get_model_summary``
(deep-high-resolution-net.pytorch ``lib/utils/utils.py``); README "How FLOPs are counted".

A new convention is one module calling :func:`register_convention`, named in :data:`MODULES`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from torch import nn

from hrbench.errors import HrbenchError
from hrbench.plugins import Registry

Shape = tuple[int, ...]
Count = Callable[[nn.Module, Shape, Shape], int]

#: Modules that register further conventions, imported at the first lookup (plugin style).
MODULES: tuple[str, ...] = ("hrbench.complexity.conventions_dynamic", "hrbench.complexity.mmcv_counter")


def _numel(shape: Shape) -> int:
    return math.prod(shape)


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


@dataclasses.dataclass(frozen=True)
class Rule:
    """One module type's count under a convention, with what it adds beyond the true MACs.

    ``count``: the raw count of one call. ``products``: the count is (or starts with) the module's
    multiply-accumulates; what is not products is ``extra`` of the call (a convolution's bias) or,
    without ``extra``, nothing (products) / all of it (no products). ``term`` and ``words`` name that
    part in ``hrbench flops --explain``.
    """

    count: Count
    term: str = ""
    words: str = ""
    products: bool = False
    extra: Count | None = None

    def __call__(self, m: nn.Module, i: Shape, o: Shape) -> int:
        return self.count(m, i, o)

    @property
    def name(self) -> str:
        return self.count.__name__

    def beyond_products(self, m: nn.Module, i: Shape, o: Shape, value: int) -> int:
        """The part of ``value`` (this rule's count of one call) that is not multiply-accumulates."""
        if self.extra is not None:
            return self.extra(m, i, o)
        return 0 if self.products else value


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


def conv_bias(m, i: Shape, o: Shape) -> int:
    """The bias term of :func:`conv2d` / :func:`conv_transpose2d`: C_out N H_out W_out."""
    return o[0] * o[1] * o[2] * o[3] if getattr(m, "bias", None) is not None else 0


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


def deconv_output_excess(m, i: Shape, o: Shape) -> int:
    """What :func:`conv_transpose2d_at_output` counts beyond the true MACs: weight x (H_out W_out - H_in W_in)."""
    return m.weight.numel() * o[0] * (o[2] * o[3] - i[2] * i[3])


_BIAS = "+ bias: C_out*H_out*W_out per call of a convolution that has one"
CONV2D = Rule(conv2d, "bias", _BIAS, products=True, extra=conv_bias)
CONV_TRANSPOSE2D = Rule(conv_transpose2d, "bias", _BIAS, products=True, extra=conv_bias)
BATCHNORM2D = Rule(batchnorm2d, "batchnorm", "+ BatchNorm2d: 2 per element (1 without affine)")
ACTIVATION = Rule(elementwise, "activation", "+ ReLU / ReLU6 / PReLU / ELU / LeakyReLU modules: 1 per element")
POOL2D = Rule(pool2d, "pooling", "+ Max/AvgPool2d: k*k per output element")
ADAPTIVE_POOL2D = Rule(adaptive_pool2d, "pooling", "+ adaptive pooling: (bin_h+1)*(bin_w+1) per output element")
UPSAMPLE_TORCHSTAT = Rule(upsample_torchstat, "upsample",
                          "+ nn.Upsample: N*H_out*W_out (torchstat's indexing slip drops C)")
LINEAR = Rule(linear, products=True)
CONV2D_MACS = Rule(conv2d_macs, products=True)
LINEAR_MACS = Rule(linear_macs, products=True)
CONV_TRANSPOSE2D_AT_OUTPUT = Rule(conv_transpose2d_at_output, "deconv at output",
                                  "+ ConvTranspose2d counted at output positions: weight x (H_out*W_out - H_in*W_in) "
                                  "= (stride^2 - 1) x its MACs (get_model_summary)", products=True,
                                  extra=deconv_output_excess)


@dataclasses.dataclass(frozen=True)
class Convention:
    """One way of counting: ``rules`` maps module types (or class names) to :class:`Rule` s.

    ``last_call_only``: a module called several times counts once, with its last call's shapes
    (torchstat overwrites its per-module record at each call). ``divisor`` turns the raw count
    into the printed unit (binary M = 2**20). ``skips``: what it never counts, in words.
    ``gap_by_block_type``: ``hrbench flops`` shows this convention's gap with the true MACs per
    block type (Dite-HRNet: the dynamic kernels).
    """

    name: str
    description: str
    rules: tuple[tuple[type | str, Rule], ...]
    last_call_only: bool
    divisor: int = 2**20
    skips: str = ""
    gap_by_block_type: bool = False

    def rule_for(self, module: nn.Module) -> Rule | None:
        cls_name = type(module).__name__
        for key, rule in self.rules:
            if (isinstance(key, str) and key == cls_name) or (isinstance(key, type) and isinstance(module, key)):
                return rule
        return None


CONVENTIONS: Registry[Convention] = Registry("counting convention", modules=MODULES, error=HrbenchError)


def register_convention(convention: Convention) -> Convention:
    """Add ``convention`` to the table a model card names its convention from."""
    return CONVENTIONS.add(convention.name, convention)


def list_conventions() -> list[str]:
    return sorted(CONVENTIONS.names())


def get_convention(name: str) -> Convention:
    """The registered convention ``name``; one-line :class:`HrbenchError` otherwise."""
    return CONVENTIONS.get(name)


_TORCHSTAT_RULES: tuple[tuple[type | str, Rule], ...] = (
    (nn.Conv2d, CONV2D),
    (nn.ConvTranspose2d, CONV_TRANSPOSE2D),
    (nn.BatchNorm2d, BATCHNORM2D),
    (nn.ReLU, ACTIVATION),
    (nn.ReLU6, ACTIVATION),
    (nn.PReLU, ACTIVATION),
    (nn.ELU, ACTIVATION),
    (nn.LeakyReLU, ACTIVATION),
    (nn.AvgPool2d, POOL2D),
    (nn.MaxPool2d, POOL2D),
    (nn.AdaptiveAvgPool2d, ADAPTIVE_POOL2D),
    (nn.AdaptiveMaxPool2d, ADAPTIVE_POOL2D),
    (nn.Upsample, UPSAMPLE_TORCHSTAT),
    (nn.Linear, LINEAR),
)

TORCHSTAT = register_convention(Convention(
    name="torchstat",
    description="torchstat as vendored in github HRNet/Lite-HRNet tools/: leaf-module hooks, conv "
    "k*k*Cin/g*Cout*H*W (+bias), BN 2/elem, ReLU 1/elem, Upsample N*H*W, Linear in*out; last call wins",
    rules=_TORCHSTAT_RULES,
    last_call_only=True,
    skips="Sigmoid, Softmax, Hardswish, Hardsigmoid, every functional op (add, mul, matmul, interpolate, shuffle, "
    "F.conv2d); repeated calls of one module",
))

TORCHSTAT_DITE = register_convention(Convention(
    name="torchstat-dite",
    description="torchstat as vendored in github ZiyiZhang27/Dite-HRNet: the torchstat rules plus "
    "the dynamic-kernel convolution module counted as a Conv2d",
    # hrbench.models.dynamic.KernelAggregation (the per-sample conv of DKA) counts as a Conv2d,
    # as the official counter's KernelAggregation; keyed by class name to avoid importing models.
    rules=(("KernelAggregation", CONV2D), *_TORCHSTAT_RULES),
    last_call_only=True,
    skips=TORCHSTAT.skips.replace("F.conv2d", "F.conv2d outside the dynamic-kernel module"),
    gap_by_block_type=True,
))

HRNET_SUMMARY = register_convention(Convention(
    name="hrnet-summary",
    description="HRNet get_model_summary (leoxiaobin/deep-high-resolution-net.pytorch): "
    "multiply-accumulates of Conv2d and Linear only (ConvTranspose2d: weight x output positions), every call counted",
    rules=((nn.Conv2d, CONV2D_MACS), (nn.ConvTranspose2d, CONV_TRANSPOSE2D_AT_OUTPUT), (nn.Linear, LINEAR_MACS)),
    last_call_only=False,
    skips="bias, BatchNorm, activations, pooling, upsampling, every functional op; a ConvTranspose2d counts its "
    "products at output positions (stride^2 x its MACs)",
))
