"""The papers' head: a 1x1 convolution to K heatmaps, read by the MSRA heatmap codec."""

from __future__ import annotations

import torch
from torch import nn

from hrbench.codecs import Codec
from hrbench.models.heads.base import Head, register_head


@register_head("heatmap")
class HeatmapHead(Head):
    """A single 1x1 convolution (with bias) from the backbone's highest-resolution output to K
    heatmaps, the head of every model in the three papers (``TopDownSimpleHead`` without
    deconvolution layers); read by the MSRA heatmap codec."""

    codec_name = "msra_heatmap"

    def __init__(self, in_channels: int, num_keypoints: int, codec: Codec | str | None = None) -> None:
        super().__init__(in_channels, num_keypoints, codec)
        self.final_layer = nn.Conv2d(in_channels, num_keypoints, kernel_size=1)
        nn.init.normal_(self.final_layer.weight, std=0.001)
        nn.init.zeros_(self.final_layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final_layer(x)

    def walk(self, w, x):
        return w(self.final_layer, x)
