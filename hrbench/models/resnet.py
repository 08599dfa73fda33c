"""ResNet (He et al., CVPR 2016) as SimpleBaseline's backbone (Xiao et al., ECCV 2018, Sec. 2):
the ImageNet classifier without its pooling and fully-connected layer, returning the 1/32 C5
features that the deconvolution head (:class:`hrbench.models.heads.DeconvHead`) takes to 1/4.

7x7/2 stem conv + BN + ReLU, 3x3/2 max-pool, four stages of residual blocks (planes 64/128/256/512,
stride 2 on the first 3x3 of stages 2-4: "PyTorch style", as SimpleBaseline's ``PoseResNet`` and
mmpose ``ResNet(style='pytorch')``). Keys (``conv1``, ``bn1``, ``layer1.0.conv1``, …,
``layer1.0.downsample.0``) are torchvision's and mmpose's (not yet tested against an official checkpoint).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from hrbench.config import require
from hrbench.models.backbone import Backbone
from hrbench.models.heads.deconv import DeconvHeadConfig
from hrbench.models.resnet_blocks import BasicBlock, Bottleneck, init_weights, make_layer
from hrbench.models.shapes import require_multiple

#: depth -> (block, blocks per stage) (ResNet paper, Table 1).
DEPTHS: dict[int, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}
PLANES = (64, 128, 256, 512)


class ResNet(Backbone):
    """ResNet-``depth`` trunk: stem, ``layer1``..``layer4``; returns the 1/32 features."""

    out_stride = 32

    def __init__(self, cfg: ResNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        block, counts = DEPTHS[cfg.depth]
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        channels = 64
        for i, (planes, n) in enumerate(zip(PLANES, counts, strict=True)):
            self.add_module(f"layer{i + 1}", make_layer(block, channels, planes, n, stride=1 if i == 0 else 2))
            channels = planes * block.expansion
        self.out_channels = channels
        init_weights(self)  # Kaiming-normal, as torchvision (SimpleBaseline starts from its ImageNet weights)

    def check_input_size(self, h: int, w: int) -> None:
        require_multiple(h, w, 32, "five stride-2 layers, then three x2 deconvolutions back to 1/4")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def walk(self, w, x):
        x = w(self.maxpool, w(self.relu, w(self.bn1, w(self.conv1, x))))
        return w(self.layer4, w(self.layer3, w(self.layer2, w(self.layer1, x))))


@dataclasses.dataclass(frozen=True)
class ResNetConfig(DeconvHeadConfig):
    """SimpleBaseline hyper-parameters: ResNet ``depth`` (18/34/50/101/152) and the deconvolution
    head's (:class:`~hrbench.models.heads.deconv.DeconvHeadConfig`)."""

    depth: int = 50

    def validate(self) -> None:
        super().validate()
        require(self.depth in DEPTHS, "depth", f"must be one of {', '.join(map(str, DEPTHS))}, got {self.depth!r}")

    def build_backbone(self) -> nn.Module:
        return ResNet(self)

    def describe(self) -> list[tuple[str, str]]:
        block, counts = DEPTHS[self.depth]
        return [("stem", "7x7/2 conv 3->64 + BN + ReLU, 3x3/2 max-pool"),
                *((f"layer{i + 1}", f"{n} x {block.__name__} ({p} planes, out {p * block.expansion})"
                   + (", stride 2 on the first 3x3" if i else "")) for i, (p, n) in enumerate(zip(PLANES, counts,
                                                                                                  strict=True))),
                self.describe_head()]
