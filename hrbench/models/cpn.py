"""Cascaded Pyramid Network, CPN (Chen et al., "Cascaded Pyramid Network for Multi-Person Pose
Estimation", CVPR 2018): a ResNet trunk whose C2..C5 feed GlobalNet and RefineNet
(:class:`hrbench.models.heads.cpn.CPNHead`), the "CPN" ResNet-50 rows of Lite-HRNet Table 3,
Dite-HRNet Table 2 and DPN Table 6.

The trunk is hrbench's ResNet (:class:`hrbench.models.resnet.ResNet`: 7x7/2 conv + BN + ReLU, 3x3/2
max-pool, bottleneck stages with the stride on the first 3x3 -- the official tf-cpn ``basemodel.py``
``resnet50`` has the same layer shapes: its "pad 1 + VALID 3x3/2" pooling gives the same map sizes as
PyTorch's padded pool); it returns the four stage outputs C2..C5 (strides 4..32), the multi-scale
features CPN's head takes, instead of C5 alone.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch

from hrbench.config import ModelConfig, is_positive_int, require
from hrbench.models.resnet import DEPTHS, PLANES, ResNet
from hrbench.models.shapes import require_multiple


class CPNResNet(ResNet):
    """ResNet-``depth`` trunk returning ``(C2, C3, C4, C5)``; ``out_channels`` is C5's width (the
    head's ``in_channels``), ``pyramid_channels`` the four widths."""

    out_stride = 32

    def __init__(self, cfg: CPNConfig) -> None:
        super().__init__(cfg)
        self.pyramid_channels = cfg.pyramid_channels()

    def check_input_size(self, h: int, w: int) -> None:
        require_multiple(h, w, 32, "five stride-2 layers down to C5, whose pyramid is resized back to 1/4")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:  # type: ignore[override]
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        return c2, c3, c4, self.layer4(c4)

    def walk(self, w, x):
        x = w(self.maxpool, w(self.relu, w(self.bn1, w(self.conv1, x))))
        c2 = w(self.layer1, x)
        c3 = w(self.layer2, c2)
        c4 = w(self.layer3, c3)
        return c2, c3, c4, w(self.layer4, c4)


@dataclasses.dataclass(frozen=True)
class CPNConfig(ModelConfig):
    """CPN hyper-parameters: the ResNet ``depth`` (tf-cpn ships 50 and 101), the pyramid width
    ``channels`` (256) and the RefineNet bottleneck width ``bottleneck`` (128, half of ``channels``)."""

    head: ClassVar[str] = "cpn"
    depth: int = 50
    channels: int = 256
    bottleneck: int = 128

    def validate(self) -> None:
        require(self.depth in DEPTHS, "depth", f"must be one of {', '.join(map(str, DEPTHS))}, got {self.depth!r}")
        require(is_positive_int(self.channels), "channels", f"must be a positive integer, got {self.channels!r}")
        require(is_positive_int(self.bottleneck) and 2 * self.bottleneck == self.channels, "bottleneck",
                f"must be half of channels ({self.channels}), as tf-slim's bottleneck(256, 128); "
                f"got {self.bottleneck!r}")

    def pyramid_channels(self) -> tuple[int, ...]:
        block, _ = DEPTHS[self.depth]
        return tuple(p * block.expansion for p in PLANES)

    def build_backbone(self) -> CPNResNet:
        return CPNResNet(self)

    def head_options(self) -> dict[str, Any]:
        return {"pyramid_channels": self.pyramid_channels(), "channels": self.channels,
                "bottleneck": self.bottleneck}

    def describe(self) -> list[tuple[str, str]]:
        block, counts = DEPTHS[self.depth]
        c, b = self.channels, self.bottleneck
        return [("stem", "7x7/2 conv 3->64 + BN + ReLU, 3x3/2 max-pool"),
                ("trunk", f"ResNet-{self.depth}: {'/'.join(map(str, counts))} x {block.__name__}, "
                          f"C2..C5 = {'/'.join(map(str, self.pyramid_channels()))} ch"),
                ("GlobalNet", f"per level 1x1 lateral -> {c} + BN + ReLU; bilinear x2 + 1x1 {c}->{c} (bias) + add; "
                              f"predict: 1x1 {c} + BN + ReLU, 3x3 -> K + BN, resized to 1/4 (training only)"),
                ("RefineNet", f"level i: i bottlenecks {c}->{b}->{c} (identity shortcut), resized to 1/4, "
                              f"concat ({4 * c}), bottleneck {4 * c}->{b}->{c} (projection), 3x3 -> K + BN")]
