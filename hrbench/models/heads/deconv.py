"""SimpleBaseline's deconvolution head (Xiao et al., ECCV 2018, Sec. 2 and Fig. 1c): three 4x4
stride-2 transposed convolutions (256 channels, no bias) each + BN + ReLU, then a 1x1 convolution
(with bias) to K heatmaps; read by the MSRA heatmap codec.

Layout and keys follow the official ``PoseResNet`` and mmpose 0.x ``TopDownSimpleHead``
(``deconv_layers.{0,1,3,4,6,7}``, ``final_layer``; mmpose's ``keypoint_head.`` maps to ``head.``). It takes
a 1/32 feature map to the 1/4 heatmaps (x8).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
from torch import nn

from hrbench.codecs import Codec
from hrbench.config import ModelConfig, is_positive_int, require
from hrbench.errors import ConfigError
from hrbench.models.heads.base import Head, register_head

#: SimpleBaseline's ``_get_deconv_cfg``: kernel -> (padding, output_padding) that doubles the size.
DECONV_PADDING = {4: (1, 0), 3: (1, 1), 2: (0, 0)}


@register_head("deconv")
class DeconvHead(Head):
    """``len(channels)`` x [ConvTranspose2d k x k / 2 (no bias) + BN + ReLU] + 1x1 conv to K (bias).

    Init as the official head: deconv and final weights N(0, 0.001^2), final bias 0, BN 1 / 0.
    """

    codec_name = "msra_heatmap"

    def __init__(self, in_channels: int, num_keypoints: int, codec: Codec | str | None = None,
                 channels: tuple[int, ...] = (256, 256, 256), kernel: int = 4) -> None:
        super().__init__(in_channels, num_keypoints, codec)
        if kernel not in DECONV_PADDING:
            raise ConfigError(f"invalid deconv kernel {kernel!r}: must be one of {', '.join(map(str, DECONV_PADDING))}")
        padding, output_padding = DECONV_PADDING[kernel]
        layers: list[nn.Module] = []
        c_in = in_channels
        for c_out in channels:
            layers += [nn.ConvTranspose2d(c_in, c_out, kernel, stride=2, padding=padding,
                                          output_padding=output_padding, bias=False),
                       nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            c_in = c_out
        self.deconv_layers = nn.Sequential(*layers)
        self.final_layer = nn.Conv2d(c_in, num_keypoints, kernel_size=1)
        for m in self.modules():
            if isinstance(m, (nn.ConvTranspose2d, nn.Conv2d)):
                nn.init.normal_(m.weight, std=0.001)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.final_layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final_layer(self.deconv_layers(x))

    def walk(self, w, x):
        return w(self.final_layer, w(self.deconv_layers, x))


@dataclasses.dataclass(frozen=True)
class DeconvHeadConfig(ModelConfig):
    """Base of the configs of families that end in :class:`DeconvHead` (SimpleBaseline, MobileNetV2,
    ShuffleNetV2): ``deconv_channels`` (one entry per deconvolution layer) and ``deconv_kernel``
    are the head's hyper-parameters (SimpleBaseline Table 1 varies both)."""

    head: ClassVar[str] = "deconv"
    deconv_channels: tuple[int, ...] = (256, 256, 256)
    deconv_kernel: int = 4

    def validate(self) -> None:
        require(isinstance(self.deconv_channels, tuple) and len(self.deconv_channels) == 3
                and all(is_positive_int(c) for c in self.deconv_channels), "deconv_channels",
                f"must be 3 positive integers (three x2 layers take the 1/32 features to the 1/4 heatmaps), "
                f"got {self.deconv_channels!r}")
        require(self.deconv_kernel in DECONV_PADDING, "deconv_kernel",
                f"must be one of {', '.join(map(str, DECONV_PADDING))}, got {self.deconv_kernel!r}")

    def head_options(self) -> dict[str, Any]:
        return {"channels": self.deconv_channels, "kernel": self.deconv_kernel}

    def describe_head(self) -> tuple[str, str]:
        k = self.deconv_kernel
        return ("head", f"{len(self.deconv_channels)} x [{k}x{k}/2 deconv ({', '.join(map(str, self.deconv_channels))} "
                        "ch, no bias) + BN + ReLU], 1x1 conv -> K")
