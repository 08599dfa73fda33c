"""Dynamic convolutions of Dite-HRNet (Section 3.1): DKA, SCS and DSC.

- :class:`DynamicKernelAggregation` (DKA, Eq. 2-3): N kernels mixed per sample by a
  kernel-wise attention, then ONE convolution per sample, run for the whole batch as one
  grouped convolution (the batch is folded into the channel/group dimension).
- :class:`SplitConcatShuffle` (SCS, Eq. 1): channels split into G groups, depth-wise
  convolutions of sizes 3, 5, 7, ... on the groups, concatenation and channel shuffle.
- :class:`DynamicSplitConvolution` (DSC): SCS whose convolutions generate their kernels by DKA.

Module attribute names follow the official implementation (github ZiyiZhang27/Dite-HRNet) so
that official checkpoints load without renaming.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hrbench.models.separable import channel_shuffle
from hrbench.models.shapes import conv_out


class KernelAttention(nn.Module):
    """Kernel-wise attention a(X) of DKA (Eq. 3): Sigmoid(FC(ReLU(BN(FC(GAP(X)))))).

    The two FC layers are 1x1 convolutions; the first has no bias and is followed by BN
    (as in the official code, which the paper's Eq. 3 leaves out); its width is C / ``reduction``
    (``num_kernels`` for a 3-channel input).
    """

    def __init__(self, channels: int, num_kernels: int, reduction: int = 4) -> None:
        super().__init__()
        mid = num_kernels if channels == 3 else channels // reduction
        if mid < 1:
            raise ValueError(f"KernelAttention: {channels} channels // reduction {reduction} leaves no hidden unit")
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv1 = nn.Conv2d(channels, mid, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(mid)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(mid, num_kernels, kernel_size=1, bias=True)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.relu(self.bn(self.conv1(self.avg_pool(x))))
        a = self.conv2(a)
        return self.sigmoid(a.reshape(a.shape[0], -1))

    def walk(self, w, x):
        a = w(self.relu, w(self.bn, w(self.conv1, w(self.avg_pool, x))))
        a = w(self.conv2, a)
        return w(self.sigmoid, (a[0], a[1]))


class KernelAggregation(nn.Module):
    """Per-sample convolution with the aggregated kernel W(X) = sum_i a_i(X) w_i (Eq. 2).

    Holds the N candidate kernels. The whole batch runs as ONE grouped convolution: the batch
    is folded into the groups (B*G groups over a (1, B*C, H, W) tensor), each sample meeting its
    own aggregated kernel; no Python loop over samples. This is also the inference path: with a
    fixed batch size it traces to a single static graph (``torch.export``/ONNX ``Conv`` with a
    computed weight input). Counted by the Dite-HRNet torchstat convention as a Conv2d (reads
    ``kernel_size``, ``groups``, ``bias``).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1, groups: int = 1, bias: bool = False, num_kernels: int = 4) -> None:
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"KernelAggregation: groups={groups} must divide {in_channels} and {out_channels}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        self.num_kernels = num_kernels
        self.weight = nn.Parameter(torch.empty(num_kernels, out_channels, in_channels // groups,
                                               kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(num_kernels, out_channels)) if bias else None
        self.reset_parameters_official()

    def reset_parameters_official(self) -> None:
        """Kaiming-uniform init of each candidate kernel separately (official init)."""
        for i in range(self.num_kernels):
            nn.init.kaiming_uniform_(self.weight.data[i])

    def aggregated_weight(self, attention: torch.Tensor) -> torch.Tensor:
        """(B, N) attention -> (B*C_out, C_in/G, k, k) per-sample kernels stacked along dim 0."""
        mixed = attention @ self.weight.reshape(self.num_kernels, -1)
        return mixed.reshape(-1, self.in_channels // self.groups, self.kernel_size, self.kernel_size)

    def forward(self, x: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        weight = self.aggregated_weight(attention)
        bias = (attention @ self.bias).reshape(-1) if self.bias is not None else None
        y = F.conv2d(x.reshape(1, b * self.in_channels, h, w), weight, bias, stride=self.stride,
                     padding=self.padding, dilation=self.dilation, groups=self.groups * b)
        return y.reshape(b, self.out_channels, y.shape[-2], y.shape[-1])

    def output_shape(self, x: tuple[int, ...]) -> tuple[int, ...]:
        k, s, p, d = self.kernel_size, self.stride, self.padding, self.dilation
        return (x[0], self.out_channels, conv_out(x[2], k, s, p, d), conv_out(x[3], k, s, p, d))

    def walk(self, w, x, attention=None):
        y = self.output_shape(x)
        w.record(self, x, y)
        return y


def per_sample_reference(agg: KernelAggregation, x: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    """Reference for tests and benchmarks: one F.conv2d per sample with its own aggregated kernel."""
    outs = []
    for i in range(x.shape[0]):
        weight = (attention[i] @ agg.weight.reshape(agg.num_kernels, -1)).reshape(agg.weight.shape[1:])
        bias = attention[i] @ agg.bias if agg.bias is not None else None
        outs.append(F.conv2d(x[i:i + 1], weight, bias, stride=agg.stride, padding=agg.padding,
                             dilation=agg.dilation, groups=agg.groups))
    return torch.cat(outs)


class DynamicKernelAggregation(nn.Module):
    """DKA (Section 3.1, Eq. 2-3): attention over N kernels, then one convolution per sample."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1, groups: int = 1, bias: bool = False, num_kernels: int = 4,
                 reduction: int = 4) -> None:
        super().__init__()
        self.attention = KernelAttention(in_channels, num_kernels, reduction)
        self.aggregation = KernelAggregation(in_channels, out_channels, kernel_size, stride, padding, dilation,
                                             groups, bias, num_kernels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.aggregation(x, self.attention(x))

    def walk(self, w, x):
        a = w(self.attention, x)
        return w(self.aggregation, x, a)


def dynamic_conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 groups: int = 1, num_kernels: int = 1, reduction: int = 4) -> nn.Module:
    """A bias-free convolution: a plain ``nn.Conv2d`` for one kernel, DKA for ``num_kernels`` > 1
    (``reduction``: the DKA attention's hidden-width divisor)."""
    if num_kernels > 1:
        return DynamicKernelAggregation(in_channels, out_channels, kernel_size, stride, padding, groups=groups,
                                        num_kernels=num_kernels, reduction=reduction)
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False)


class ConvNorm(nn.Module):
    """Convolution (static or DKA) + BatchNorm (+ ReLU); attribute names ``conv``/``bn``/``relu``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1,
                 padding: int = 0, groups: int = 1, num_kernels: int = 1, relu: bool = False,
                 reduction: int = 4) -> None:
        super().__init__()
        self.conv = dynamic_conv(in_channels, out_channels, kernel_size, stride, padding, groups, num_kernels,
                                 reduction)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True) if relu else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return self.relu(x) if self.relu is not None else x

    def walk(self, w, x):
        x = w(self.bn, w(self.conv, x))
        return w(self.relu, x) if self.relu is not None else x


def split_channels(channels: int, groups: int) -> list[int]:
    """Equal split of ``channels`` into ``groups``; any remainder goes to the first group."""
    sizes = [channels // groups] * groups
    sizes[0] += channels - sum(sizes)
    return sizes


class SplitConcatShuffle(nn.Module):
    """SCS module (Section 3.1, Eq. 1): split into G groups, depth-wise K_i x K_i convolutions with
    K_i = 2i + 1 (i = 1..G) + BN on the groups, concatenate, channel-shuffle (G > 1 only).

    Each convolution uses DKA with ``num_kernels`` kernels when that is > 1 (then this is DSC).
    """

    def __init__(self, channels: int, groups: int = 1, num_kernels: int = 1, stride: int = 1,
                 reduction: int = 4) -> None:
        super().__init__()
        if groups < 1 or channels % groups:
            raise ValueError(f"SCS: groups={groups} must be >= 1 and divide {channels} channels")
        self.num_groups = groups
        self.num_kernels = num_kernels
        self.split_channels = split_channels(channels, groups)
        self.conv = nn.ModuleList(
            ConvNorm(c, c, kernel_size=2 * i + 3, stride=stride, padding=i + 1, groups=c, num_kernels=num_kernels,
                     reduction=reduction)
            for i, c in enumerate(self.split_channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.num_groups == 1:
            return self.conv[0](x)
        parts = torch.split(x, self.split_channels, dim=1)
        y = torch.cat([conv(p) for conv, p in zip(self.conv, parts, strict=True)], dim=1)
        return channel_shuffle(y, self.num_groups)

    def walk(self, w, x):
        if self.num_groups == 1:
            return w(self.conv[0], x)
        outs = [w(conv, (x[0], c, x[2], x[3])) for conv, c in zip(self.conv, self.split_channels, strict=True)]
        return (x[0], sum(o[1] for o in outs), outs[0][2], outs[0][3])


class DynamicSplitConvolution(SplitConcatShuffle):
    """DSC (Section 3.1, "Complementation"): SCS with G groups whose convolutions use DKA with N kernels."""

    def __init__(self, channels: int, groups: int = 1, num_kernels: int = 4, stride: int = 1,
                 reduction: int = 4) -> None:
        super().__init__(channels, groups, num_kernels, stride, reduction)
