"""MobileNetV2 1.0 with Chen et al.'s dynamic operators (:mod:`hrbench.models.dyops`) and SimpleBaseline's
deconvolution head: the "DY-MobileNetV2 1x" and "DY-ReLU 1x" rows of Lite-HRNet Table 3.

- ``dynamic="conv"`` (DY-MobileNetV2, DyConv Sec. 4): every convolution except the first (the stem) is a
  :class:`~hrbench.models.dyops.DynamicConv2d` with K = 4 kernels; activations stay ReLU6.
- ``dynamic="relu"`` (DY-ReLU, DY-ReLU Sec. 4): every ReLU6 of the backbone (stem, expansions, depthwise
  convolutions, the final 1x1 conv) becomes DY-ReLU-B with K = 2 pieces; convolutions stay static.

The trunk is :mod:`hrbench.models.mobilenetv2`'s (paper Table 2 widths, mmpose key layout ``conv1``,
``layerN.i.conv.j``, ``conv2``). The head is SimpleBaseline's, not the papers' own light head (their
keypoint heads are not reproduced here; see the model cards).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from hrbench.config import is_positive_int, require
from hrbench.models.dyops import DynamicConv2d, DyReLU
from hrbench.models.heads.deconv import DeconvHeadConfig
from hrbench.models.mobilenetv2 import STAGES, InvertedResidualTrunk
from hrbench.models.shapes import Shape

DYNAMIC = ("conv", "relu")


class DyConvBNAct(nn.Module):
    """``conv`` (static or :class:`DynamicConv2d`) -> ``bn`` -> ``activate`` (ReLU6, :class:`DyReLU` or None)."""

    def __init__(self, cfg: DyMobileNetV2Config, in_channels: int, out_channels: int, kernel_size: int = 1,
                 stride: int = 1, groups: int = 1, act: bool = True, dynamic_conv: bool = True) -> None:
        super().__init__()
        pad = kernel_size // 2
        if cfg.dynamic == "conv" and dynamic_conv:
            self.conv: nn.Module = DynamicConv2d(in_channels, out_channels, kernel_size, stride, pad, groups,
                                                 num_kernels=cfg.num_kernels, reduction=cfg.reduction,
                                                 temperature=cfg.temperature)
        else:
            self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, pad, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.activate: nn.Module | None = None
        if act:
            self.activate = (DyReLU(out_channels, cfg.relu_reduction, cfg.pieces) if cfg.dynamic == "relu"
                             else nn.ReLU6(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return self.activate(x) if self.activate is not None else x

    def walk(self, w, x: Shape) -> Shape:
        x = w(self.bn, w(self.conv, x))
        return w(self.activate, x) if self.activate is not None else x


class DyInvertedResidual(nn.Module):
    """MobileNetV2's inverted residual (Fig. 3b) with dynamic units; ``conv`` is an ``nn.Sequential``."""

    def __init__(self, cfg: DyMobileNetV2Config, in_channels: int, out_channels: int, stride: int,
                 expand_ratio: int) -> None:
        super().__init__()
        hidden = in_channels * expand_ratio
        self.use_shortcut = stride == 1 and in_channels == out_channels
        layers = [DyConvBNAct(cfg, in_channels, hidden, 1)] if expand_ratio != 1 else []
        layers += [DyConvBNAct(cfg, hidden, hidden, 3, stride, groups=hidden),
                   DyConvBNAct(cfg, hidden, out_channels, 1, act=False)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_shortcut else self.conv(x)

    def walk(self, w, x: Shape) -> Shape:
        return w(self.conv, x)


class DyMobileNetV2(InvertedResidualTrunk):
    """MobileNetV2 1.0 trunk with dynamic convolutions or dynamic ReLUs; returns the 1/32 features."""

    def __init__(self, cfg: DyMobileNetV2Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.conv1 = DyConvBNAct(cfg, 3, 32, 3, 2, dynamic_conv=False)  # DyConv: "except the first layer"
        c = 32
        for i, (t, width, n, s) in enumerate(STAGES):
            self.add_module(f"layer{i + 1}", nn.Sequential(
                *(DyInvertedResidual(cfg, c if j == 0 else width, width, s if j == 0 else 1, t) for j in range(n))))
            c = width
        self.out_channels = 1280
        self.conv2 = DyConvBNAct(cfg, c, self.out_channels, 1, dynamic_conv=False)  # static: see the card
        for m in self.modules():  # MobileNetV2's init of the static convs and BNs (dynamic kernels: their own)
            if isinstance(m, DyConvBNAct):
                if type(m.conv) is nn.Conv2d:
                    nn.init.kaiming_normal_(m.conv.weight, mode="fan_out", nonlinearity="relu")
                nn.init.ones_(m.bn.weight)
                nn.init.zeros_(m.bn.bias)


@dataclasses.dataclass(frozen=True)
class DyMobileNetV2Config(DeconvHeadConfig):
    """``dynamic``: ``"conv"`` (DY-MobileNetV2) or ``"relu"`` (DY-ReLU); ``num_kernels`` (K, DyConv: 4),
    ``reduction`` (attention FC width C / reduction, DyConv: 4), ``temperature`` (softmax tau, DyConv: 30 at
    the start of training); ``pieces`` (DY-ReLU's K: 2), ``relu_reduction`` (hyper-function width C / R)."""

    dynamic: str = "conv"
    num_kernels: int = 4
    reduction: int = 4
    temperature: float = 30.0
    pieces: int = 2
    relu_reduction: int = 8

    def validate(self) -> None:
        super().validate()
        require(self.dynamic in DYNAMIC, "dynamic", f"must be one of {', '.join(DYNAMIC)}, got {self.dynamic!r}")
        for name in ("num_kernels", "reduction", "pieces", "relu_reduction"):
            require(is_positive_int(getattr(self, name)), name, f"must be a positive integer, got "
                    f"{getattr(self, name)!r}")
        require(isinstance(self.temperature, (int, float)) and not isinstance(self.temperature, bool)
                and self.temperature > 0, "temperature", f"must be a positive number, got {self.temperature!r}")

    def build_backbone(self) -> nn.Module:
        return DyMobileNetV2(self)

    def describe(self) -> list[tuple[str, str]]:
        if self.dynamic == "conv":
            what = (f"every conv but the stem: dynamic convolution, K={self.num_kernels} kernels, softmax "
                    f"attention (tau={self.temperature:g}, C/{self.reduction})")
        else:
            what = f"every ReLU6: DY-ReLU-B, {self.pieces} pieces, hyper-function C/{self.relu_reduction}"
        return [("trunk", "MobileNetV2 1.0 (conv1, layer1-7, conv2 -> 1280)"), ("dynamic", what),
                self.describe_head()]
