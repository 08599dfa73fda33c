"""MobileNetV2 (Sandler et al., CVPR 2018) with SimpleBaseline's deconvolution head, the "MobileNetV2
1x" rows of Lite-HRNet Tables 3-5 (mmpose 0.x ``configs/top_down/mobilenet_v2``).

Inverted residual blocks (paper Sec. 3.3, Table 1): 1x1 expansion by t (skipped when t = 1) + BN +
ReLU6, 3x3 depthwise (stride s on a stage's first block) + BN + ReLU6, 1x1 linear projection + BN;
identity shortcut when the stride is 1 and the width is kept. Stem 3x3/2 conv 3->32, final 1x1
conv 320->1280; every conv is bias-free and followed by BN. Keys are mmpose's (``conv1.conv``,
``layer2.0.conv.1.bn``, ``conv2.conv``; mmcv ``ConvModule`` = :class:`ConvBNAct`; not yet tested
against an official checkpoint).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from hrbench.config import require
from hrbench.models.backbone import Backbone
from hrbench.models.heads.deconv import DeconvHeadConfig
from hrbench.models.separable import ConvBNAct
from hrbench.models.shapes import require_multiple

#: (expansion t, channels c, blocks n, first stride s) per stage (MobileNetV2 paper, Table 2).
STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def make_divisible(value: float, divisor: int = 8, min_ratio: float = 0.9) -> int:
    """Round a width to a multiple of ``divisor`` without going below ``min_ratio`` of it (the
    width rule of the MobileNet reference code)."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < min_ratio * value else new


class InvertedResidual(nn.Module):
    """MobileNetV2's bottleneck block (paper Fig. 3b / Table 1); ``conv`` is an ``nn.Sequential``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = int(round(in_channels * expand_ratio))
        self.use_shortcut = stride == 1 and in_channels == out_channels
        layers = [ConvBNAct(in_channels, hidden, 1, act="relu6")] if expand_ratio != 1 else []
        layers += [ConvBNAct(hidden, hidden, 3, stride, 1, groups=hidden, act="relu6"),
                   ConvBNAct(hidden, out_channels, 1, act=None)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_shortcut else self.conv(x)

    def walk(self, w, x):
        return w(self.conv, x)  # the shortcut is a functional add


class InvertedResidualTrunk(Backbone):
    """What every MobileNetV2-shaped trunk shares (paper Table 2): ``conv1``, ``layer1``..``layer7``,
    ``conv2`` run in order to the 1/32 features; subclasses build the layers."""

    out_stride = 32

    @property
    def stages(self) -> list[nn.Module]:
        return [getattr(self, f"layer{i + 1}") for i in range(len(STAGES))]

    def check_input_size(self, h: int, w: int) -> None:
        require_multiple(h, w, 32, "five stride-2 layers, then three x2 deconvolutions back to 1/4")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        for stage in self.stages:
            x = stage(x)
        return self.conv2(x)

    def walk(self, w, x):
        x = w(self.conv1, x)
        for stage in self.stages:
            x = w(stage, x)
        return w(self.conv2, x)


class MobileNetV2(InvertedResidualTrunk):
    """MobileNetV2 trunk (``conv1``, ``layer1``..``layer7``, ``conv2``); returns the 1/32 features."""

    def __init__(self, cfg: MobileNetV2Config) -> None:
        super().__init__()
        self.cfg = cfg
        channels = make_divisible(32 * cfg.widen_factor)
        self.conv1 = ConvBNAct(3, channels, 3, 2, 1, act="relu6")
        for i, (t, c, n, s) in enumerate(STAGES):
            out = make_divisible(c * cfg.widen_factor)
            blocks = [InvertedResidual(channels if j == 0 else out, out, s if j == 0 else 1, t) for j in range(n)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            channels = out
        self.out_channels = int(1280 * cfg.widen_factor) if cfg.widen_factor > 1.0 else 1280
        self.conv2 = ConvBNAct(channels, self.out_channels, 1, act="relu6")
        for m in self.modules():  # mmpose's MobileNetV2.init_weights without a checkpoint
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)


@dataclasses.dataclass(frozen=True)
class MobileNetV2Config(DeconvHeadConfig):
    """MobileNetV2 hyper-parameters: ``widen_factor`` (the paper's width multiplier) and the
    deconvolution head's (:class:`~hrbench.models.heads.deconv.DeconvHeadConfig`)."""

    widen_factor: float = 1.0

    def validate(self) -> None:
        super().validate()
        require(isinstance(self.widen_factor, (int, float)) and not isinstance(self.widen_factor, bool)
                and 0 < self.widen_factor <= 4, "widen_factor",
                f"must be a number in (0, 4], got {self.widen_factor!r}")

    def build_backbone(self) -> nn.Module:
        return MobileNetV2(self)

    def describe(self) -> list[tuple[str, str]]:
        wf = self.widen_factor
        rows = [("stem", f"3x3/2 conv 3->{make_divisible(32 * wf)} + BN + ReLU6")]
        for i, (t, c, n, s) in enumerate(STAGES):
            rows.append((f"layer{i + 1}", f"{n} x inverted residual (t={t}, {make_divisible(c * wf)} ch, stride {s})"))
        rows += [("conv2", f"1x1 conv -> {int(1280 * wf) if wf > 1.0 else 1280} + BN + ReLU6"), self.describe_head()]
        return rows
