"""Top-down pose model = backbone + 1x1-conv heatmap head (the papers' ``TopDownSimpleHead``)."""

from __future__ import annotations

import torch
from torch import nn


class HeatmapHead(nn.Module):
    """A single 1x1 convolution (with bias) from the backbone's highest-resolution output to K
    heatmaps, the head of every model in the three papers (no deconvolution layers)."""

    def __init__(self, in_channels: int, num_keypoints: int) -> None:
        super().__init__()
        self.final_layer = nn.Conv2d(in_channels, num_keypoints, kernel_size=1)
        nn.init.normal_(self.final_layer.weight, std=0.001)
        nn.init.zeros_(self.final_layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final_layer(x)

    def walk(self, w, x):
        return w(self.final_layer, x)


class PoseModel(nn.Module):
    """``backbone`` (must expose ``out_channels``) followed by :class:`HeatmapHead`.

    The backbone returns the highest-resolution feature map (a tensor) at 1/4 input resolution.
    """

    def __init__(self, backbone: nn.Module, num_keypoints: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = HeatmapHead(backbone.out_channels, num_keypoints)
        self.num_keypoints = num_keypoints
        self.arch = ""
        self.config = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def walk(self, w, x):
        return w(self.head, w(self.backbone, x))
