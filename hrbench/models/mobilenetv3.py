"""MobileNetV3-Large 1.0 (Howard et al., "Searching for MobileNetV3", ICCV 2019) with SimpleBaseline's
deconvolution head: the "MobileNetV3 1x" rows of Lite-HRNet Table 5 and Dite-HRNet Table 4 (MPII).

Layout of the paper's Table 1 (as torchvision's ``mobilenet_v3_large`` builds it): a 3x3/2 conv 3->16 +
BN + hard-swish stem, fifteen ``bneck`` blocks (1x1 expansion + BN + activation, skipped when the
expansion width equals the input; k x k depthwise conv + BN + activation; optional squeeze-and-excite;
1x1 linear projection + BN; identity shortcut when the stride is 1 and the width is kept), then a 1x1
conv 160->960 + BN + hard-swish (the paper's last conv before pooling). Activations are ReLU ("RE") or
hard-swish ("HS", Sec. 5.2); squeeze-and-excite (Sec. 5.3) squeezes to a quarter of the expansion width
(rounded to a multiple of 8), ReLU, back to the expansion width, hard-sigmoid, and rescales the channels.
``se=False`` and ``final_conv=False`` give the layouts checked against the published 8.7M (model card).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from hrbench.config import require
from hrbench.models.backbone import Backbone
from hrbench.models.heads.deconv import DeconvHeadConfig
from hrbench.models.mobilenetv2 import make_divisible
from hrbench.models.separable import ConvBNAct
from hrbench.models.shapes import Shape, require_multiple

#: MobileNetV3-Large (paper Table 1): (kernel, expansion width, output width, SE, activation, stride).
LARGE = ((3, 16, 16, False, "relu", 1), (3, 64, 24, False, "relu", 2), (3, 72, 24, False, "relu", 1),
         (5, 72, 40, True, "relu", 2), (5, 120, 40, True, "relu", 1), (5, 120, 40, True, "relu", 1),
         (3, 240, 80, False, "hswish", 2), (3, 200, 80, False, "hswish", 1), (3, 184, 80, False, "hswish", 1),
         (3, 184, 80, False, "hswish", 1), (3, 480, 112, True, "hswish", 1), (3, 672, 112, True, "hswish", 1),
         (5, 672, 160, True, "hswish", 2), (5, 960, 160, True, "hswish", 1), (5, 960, 160, True, "hswish", 1))
STEM_WIDTH, LAST_WIDTH = 16, 960


class SqueezeExcite(nn.Module):
    """Squeeze-and-excite of MobileNetV3 (Sec. 5.3): global average pool, 1x1 conv to ``squeeze``
    (bias) + ReLU, 1x1 conv back (bias) + hard-sigmoid, channel-wise rescaling of the input."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.hsigmoid = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.hsigmoid(self.fc2(self.relu(self.fc1(self.avg_pool(x)))))

    def walk(self, w, x: Shape) -> Shape:
        w(self.hsigmoid, w(self.fc2, w(self.relu, w(self.fc1, w(self.avg_pool, x)))))
        return x  # the rescaling is a functional multiply


class Bneck(nn.Module):
    """One ``bneck`` row of Table 1: ``expand`` (or None), ``depthwise``, ``se`` (or None), ``project``."""

    def __init__(self, in_channels: int, kernel: int, expansion: int, out_channels: int, se: bool, act: str,
                 stride: int) -> None:
        super().__init__()
        self.use_shortcut = stride == 1 and in_channels == out_channels
        self.expand = ConvBNAct(in_channels, expansion, 1, act=act) if expansion != in_channels else None
        self.depthwise = ConvBNAct(expansion, expansion, kernel, stride, groups=expansion, act=act)
        self.se = SqueezeExcite(expansion, make_divisible(expansion // 4)) if se else None
        self.project = ConvBNAct(expansion, out_channels, 1, act=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.depthwise(y)
        if self.se is not None:
            y = self.se(y)
        y = self.project(y)
        return x + y if self.use_shortcut else y

    def walk(self, w, x: Shape) -> Shape:
        y = w(self.expand, x) if self.expand is not None else x
        y = w(self.depthwise, y)
        if self.se is not None:
            y = w(self.se, y)
        return w(self.project, y)  # the shortcut is a functional add


class MobileNetV3(Backbone):
    """MobileNetV3-Large trunk (``stem``, ``bnecks``, ``final_conv``); returns the 1/32 features."""

    out_stride = 32

    def __init__(self, cfg: MobileNetV3Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.stem = ConvBNAct(3, STEM_WIDTH, 3, 2, act="hswish")
        blocks, c = [], STEM_WIDTH
        for k, exp, out, se, act, s in LARGE:
            blocks.append(Bneck(c, k, exp, out, se and cfg.se, act, s))
            c = out
        self.bnecks = nn.Sequential(*blocks)
        self.final_conv = ConvBNAct(c, LAST_WIDTH, 1, act="hswish") if cfg.final_conv else None
        self.out_channels = LAST_WIDTH if cfg.final_conv else c
        for m in self.modules():  # torchvision's MobileNetV3 init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def check_input_size(self, h: int, w: int) -> None:
        require_multiple(h, w, 32, "five stride-2 layers, then three x2 deconvolutions back to 1/4")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bnecks(self.stem(x))
        return self.final_conv(x) if self.final_conv is not None else x

    def walk(self, w, x: Shape) -> Shape:
        x = w(self.bnecks, w(self.stem, x))
        return w(self.final_conv, x) if self.final_conv is not None else x


@dataclasses.dataclass(frozen=True)
class MobileNetV3Config(DeconvHeadConfig):
    """MobileNetV3-Large 1.0 + the deconvolution head; ``se``: squeeze-and-excite in the rows of Table 1
    that have it; ``final_conv``: the 1x1 conv 160->960 (mmpose 0.x's ``MobileNetV3('big')`` has none)."""

    se: bool = True
    final_conv: bool = True

    def validate(self) -> None:
        super().validate()
        for name in ("se", "final_conv"):
            require(isinstance(getattr(self, name), bool), name, f"must be true or false, got {getattr(self, name)!r}")

    def build_backbone(self) -> nn.Module:
        return MobileNetV3(self)

    def describe(self) -> list[tuple[str, str]]:
        rows = [("stem", f"3x3/2 conv 3->{STEM_WIDTH} + BN + hard-swish"),
                ("bnecks", f"{len(LARGE)} x bneck (MobileNetV3-Large Table 1{', SE' if self.se else ', no SE'})")]
        if self.final_conv:
            rows.append(("final_conv", f"1x1 conv {LARGE[-1][2]}->{LAST_WIDTH} + BN + hard-swish"))
        return [*rows, self.describe_head()]
