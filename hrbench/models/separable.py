"""Convolution units of the shuffle-based HRNets (Lite-HRNet Section 3.1, after ShuffleNet V2):
conv + BN + activation, depthwise-separable convolutions and channel shuffle.

Key layouts follow the official implementations (mmcv ``ConvModule`` / ``DepthwiseSeparableConvModule``
and plain ``nn.Sequential`` indices), so official ``state_dict`` keys map one to one.
"""

from __future__ import annotations

import torch
from torch import nn

from hrbench.models.shapes import Shape


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Channel shuffle of ShuffleNet V2 (Lite-HRNet Sec. 3.1): interleave ``groups`` channel groups."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def make_activation(act: str | None) -> nn.Module | None:
    """``"relu"`` / ``"relu6"`` / ``"silu"`` / ``"sigmoid"`` / ``"hswish"`` / ``"hsigmoid"`` (MobileNetV3's
    hard-swish and hard-sigmoid) / ``None`` -> a fresh activation module (never shared)."""
    if act is None:
        return None
    if act == "relu":
        return nn.ReLU(inplace=True)
    if act == "relu6":
        return nn.ReLU6(inplace=True)
    if act == "silu":
        return nn.SiLU(inplace=True)
    if act == "sigmoid":
        return nn.Sigmoid()
    if act == "hswish":
        return nn.Hardswish()
    if act == "hsigmoid":
        return nn.Hardsigmoid()
    raise ValueError(f"unknown activation {act!r}")


class ConvBNAct(nn.Module):
    """Convolution -> BatchNorm (optional) -> activation (optional); mmcv ``ConvModule`` layout.

    Parameter keys are ``conv.*`` and ``bn.*`` as in the official checkpoints. ``bias=None``
    means "bias only without BN" (mmcv's ``bias='auto'``).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1,
                 padding: int | None = None, groups: int = 1, *, norm: bool = True, act: str | None = "relu",
                 bias: bool | None = None) -> None:
        super().__init__()
        padding = kernel_size // 2 if padding is None else padding
        bias = (not norm) if bias is None else bias
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=bias)
        self.bn = nn.BatchNorm2d(out_channels) if norm else None
        self.activate = make_activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        if self.activate is not None:
            x = self.activate(x)
        return x

    def walk(self, w, x: Shape) -> Shape:
        x = w(self.conv, x)
        if self.bn is not None:
            x = w(self.bn, x)
        if self.activate is not None:
            x = w(self.activate, x)
        return x


class DepthwiseSeparableConv(nn.Module):
    """3x3 depthwise conv + BN, then 1x1 pointwise conv + BN + ReLU (the separable convolution
    of Lite-HRNet Sec. 3.1, as mmcv ``DepthwiseSeparableConvModule`` with ``dw_act_cfg=None``)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.depthwise_conv = ConvBNAct(in_channels, in_channels, 3, groups=in_channels, act=None)
        self.pointwise_conv = ConvBNAct(in_channels, out_channels, 1, act="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))

    def walk(self, w, x: Shape) -> Shape:
        return w(self.pointwise_conv, w(self.depthwise_conv, x))


def separable_unit(in_channels: int, out_channels: int, stride: int, relu: bool) -> nn.Sequential:
    """Depthwise 3x3 (stride ``stride``) + BN + 1x1 conv + BN (+ ReLU): a plain ``nn.Sequential``
    whose indices (0 dw conv, 1 BN, 2 pw conv, 3 BN, 4 ReLU) are the official key layout of the
    transitions and fusion paths."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, in_channels, 3, stride, 1, groups=in_channels, bias=False),
        nn.BatchNorm2d(in_channels),
        nn.Conv2d(in_channels, out_channels, 1, bias=False),
        nn.BatchNorm2d(out_channels),
    ]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)
