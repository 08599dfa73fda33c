"""ResNet residual blocks (He et al., CVPR 2016), the building blocks of HRNet and DPN.

Layout and attribute names follow the torchvision / mmpose convention (``conv1``, ``bn1``, …,
``downsample.0/1``) so official HRNet checkpoints map one-to-one. One ``relu`` module is reused
inside a block, as in those implementations: torchstat (last call wins) counts it once.
"""

from __future__ import annotations

import torch
from torch import nn


def conv3x3(in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    """3x3 convolution without bias; padding = dilation keeps the size at stride 1."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


def conv_bn_relu(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """Conv (no bias, 'same' padding) + BN + ReLU, as one ``nn.Sequential`` (keys ``0``, ``1``)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def projection(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """The 1x1 projection shortcut (conv + BN) used when a block changes width or stride."""
    return nn.Sequential(conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))


def _same(a: tuple[int, ...], b: tuple[int, ...], what: str) -> None:
    if tuple(a) != tuple(b):
        raise ValueError(f"{what}: residual branch {a} and shortcut {b} differ")


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual shortcut (ResNet paper, Fig. 5 left)."""

    expansion = 1

    def __init__(self, in_channels: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels, planes, stride, dilation)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes, 1, dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)

    def walk(self, w, x):
        out = w(self.relu, w(self.bn1, w(self.conv1, x)))
        out = w(self.bn2, w(self.conv2, out))
        shortcut = x if self.downsample is None else w(self.downsample, x)
        _same(out, shortcut, "BasicBlock")
        return w(self.relu, out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (optionally strided / dilated), 1x1 expand x4, residual shortcut
    (ResNet paper, Fig. 5 right; stride on the 3x3 as in torchvision)."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = conv1x1(in_channels, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride, dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    @property
    def dilation(self) -> int:
        return int(self.conv2.dilation[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)

    def walk(self, w, x):
        out = w(self.relu, w(self.bn1, w(self.conv1, x)))
        out = w(self.relu, w(self.bn2, w(self.conv2, out)))
        out = w(self.bn3, w(self.conv3, out))
        shortcut = x if self.downsample is None else w(self.downsample, x)
        _same(out, shortcut, "Bottleneck")
        return w(self.relu, out)


def init_weights(model: nn.Module, std: float | None = None) -> None:
    """Initialise convs and BNs: conv weights ~ N(0, std^2) when ``std`` is given (official HRNet
    pose code: 0.001), else Kaiming-normal (fan_out, ReLU) as torchvision's ResNet; conv bias 0,
    BN weight 1 and bias 0."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            if std is None:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            else:
                nn.init.normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {"basic": BasicBlock, "bottleneck": Bottleneck}


def make_layer(block: type[BasicBlock] | type[Bottleneck], in_channels: int, planes: int, num_blocks: int,
               stride: int = 1, dilations: tuple[int, ...] | None = None) -> nn.Sequential:
    """A ResNet stage: ``num_blocks`` blocks, the first with stride and (if needed) a projection.

    ``dilations`` gives each block's 3x3 dilation (default all 1).
    """
    dilations = dilations if dilations is not None else (1,) * num_blocks
    if len(dilations) != num_blocks:
        raise ValueError(f"make_layer: {len(dilations)} dilations for {num_blocks} blocks")
    out_channels = planes * block.expansion
    downsample = projection(in_channels, out_channels, stride) if stride != 1 or in_channels != out_channels else None
    layers = [block(in_channels, planes, stride, downsample, dilations[0])]
    layers += [block(out_channels, planes, 1, None, d) for d in dilations[1:]]
    return nn.Sequential(*layers)
