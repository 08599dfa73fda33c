"""ShuffleNetV2 (Ma et al., ECCV 2018) with SimpleBaseline's deconvolution head, the "ShuffleNetV2
1x" rows of Lite-HRNet Tables 3-5 (mmpose 0.x ``configs/top_down/shufflenet_v2``).

ShuffleNet V2 units (paper Sec. 4, Fig. 3c/d): a stride-1 unit splits the channels in two, runs one
half through 1x1 conv + BN + ReLU, 3x3 depthwise + BN, 1x1 conv + BN + ReLU, concatenates and
shuffles the channels (groups 2); a stride-2 unit runs the whole input through that branch
(``branch2``) and through a 3x3/2 depthwise + BN, 1x1 + BN + ReLU branch (``branch1``). Stem 3x3/2
conv 3->24 + BN + ReLU and 3x3/2 max-pool; stages of 4/8/4 units (paper Table 5: 116/232/464
channels at 1x); final 1x1 conv ->1024. Keys are mmpose's (``conv1.conv``,
``layers.0.0.branch1.0.conv``, ``layers.3.conv``; not yet tested against an official checkpoint).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from hrbench.config import require
from hrbench.models.backbone import Backbone
from hrbench.models.heads.deconv import DeconvHeadConfig
from hrbench.models.separable import ConvBNAct, channel_shuffle
from hrbench.models.shapes import require_multiple

#: widen factor -> stage widths and the final conv's width (paper Table 5).
WIDTHS: dict[float, tuple[int, int, int, int]] = {
    0.5: (48, 96, 192, 1024), 1.0: (116, 232, 464, 1024), 1.5: (176, 352, 704, 1024), 2.0: (244, 488, 976, 2048),
}
STAGE_UNITS = (4, 8, 4)


class ShuffleUnit(nn.Module):
    """One ShuffleNet V2 unit (paper Fig. 3c for stride 1, 3d for stride 2)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        half = out_channels // 2
        if stride == 1 and in_channels != 2 * half:
            raise ValueError(f"ShuffleUnit: a stride-1 unit keeps the width, got {in_channels} -> {out_channels}")
        self.stride = stride
        if stride > 1:
            self.branch1 = nn.Sequential(
                ConvBNAct(in_channels, in_channels, 3, stride, 1, groups=in_channels, act=None),
                ConvBNAct(in_channels, half, 1))
        self.branch2 = nn.Sequential(ConvBNAct(in_channels if stride > 1 else half, half, 1),
                                     ConvBNAct(half, half, 3, stride, 1, groups=half, act=None),
                                     ConvBNAct(half, half, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        else:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        return channel_shuffle(out, 2)

    def walk(self, w, x):
        if self.stride > 1:
            a, b = w(self.branch1, x), w(self.branch2, x)
        else:
            a = b = w(self.branch2, (x[0], x[1] // 2, *x[2:]))
        return (a[0], a[1] + b[1], *a[2:])  # concat + shuffle: functional


class ShuffleNetV2(Backbone):
    """ShuffleNetV2 trunk (``conv1``, ``maxpool``, ``layers.0-2`` stages, ``layers.3`` final 1x1 conv);
    returns the 1/32 features."""

    out_stride = 32

    def __init__(self, cfg: ShuffleNetV2Config) -> None:
        super().__init__()
        self.cfg = cfg
        widths = WIDTHS[float(cfg.widen_factor)]
        self.conv1 = ConvBNAct(3, 24, 3, 2, 1)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layers = nn.ModuleList()
        channels = 24
        for width, n in zip(widths, STAGE_UNITS, strict=False):
            self.layers.append(nn.Sequential(*(ShuffleUnit(channels if j == 0 else width, width, 2 if j == 0 else 1)
                                               for j in range(n))))
            channels = width
        self.layers.append(ConvBNAct(channels, widths[-1], 1))
        self.out_channels = widths[-1]
        for name, m in self.named_modules():  # mmpose's ShuffleNetV2.init_weights without a checkpoint
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.01 if name.startswith("conv1") else 1.0 / m.weight.shape[1])

    def check_input_size(self, h: int, w: int) -> None:
        require_multiple(h, w, 32, "five stride-2 layers, then three x2 deconvolutions back to 1/4")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        for layer in self.layers:
            x = layer(x)
        return x

    def walk(self, w, x):
        x = w(self.maxpool, w(self.conv1, x))
        for layer in self.layers:
            x = w(layer, x)
        return x


@dataclasses.dataclass(frozen=True)
class ShuffleNetV2Config(DeconvHeadConfig):
    """ShuffleNetV2 hyper-parameters: ``widen_factor`` (0.5, 1.0, 1.5 or 2.0: the paper's "0.5x".."2x")
    and the deconvolution head's (:class:`~hrbench.models.heads.deconv.DeconvHeadConfig`)."""

    widen_factor: float = 1.0

    def validate(self) -> None:
        super().validate()
        require(not isinstance(self.widen_factor, bool) and self.widen_factor in WIDTHS, "widen_factor",
                f"must be one of {', '.join(map(str, WIDTHS))}, got {self.widen_factor!r}")

    def build_backbone(self) -> nn.Module:
        return ShuffleNetV2(self)

    def describe(self) -> list[tuple[str, str]]:
        widths = WIDTHS[float(self.widen_factor)]
        rows = [("stem", "3x3/2 conv 3->24 + BN + ReLU, 3x3/2 max-pool")]
        rows += [(f"stage {i + 2}", f"{n} ShuffleNet V2 units, {c} ch (first stride 2)")
                 for i, (c, n) in enumerate(zip(widths, STAGE_UNITS, strict=False))]
        return [*rows, ("conv5", f"1x1 conv -> {widths[-1]} + BN + ReLU"), self.describe_head()]
