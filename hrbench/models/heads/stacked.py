"""The stacked hourglass's head (Newell et al., ECCV 2016, Sec. 3.3): the last stack's 1x1 convolution
to K heatmaps; the intermediate stacks' predictions come from the backbone
(:class:`~hrbench.models.hourglass.StackedHourglass`) and pass through. Read by the
``stacked_heatmap`` codec (loss summed over the stacks, evaluation on the last)."""

from __future__ import annotations

from typing import Any

from torch import nn

from hrbench.codecs import Codec
from hrbench.models.heads.base import Head, register_head


@register_head("stacked_heatmap")
class StackedHeatmapHead(Head):
    """1x1 conv (bias) from the last stack's features to K heatmaps. Given the training-mode tuple
    ``(prediction_1, ..., prediction_{S-1}, features)`` it returns all S predictions (a tuple); given
    the evaluation-mode features, the last prediction alone (a tensor)."""

    codec_name = "stacked_heatmap"

    def __init__(self, in_channels: int, num_keypoints: int, codec: Codec | str | None = None) -> None:
        super().__init__(in_channels, num_keypoints, codec)
        self.final_layer = nn.Conv2d(in_channels, num_keypoints, kernel_size=1)

    def forward(self, x: Any) -> Any:
        if isinstance(x, tuple):
            return (*x[:-1], self.final_layer(x[-1]))
        return self.final_layer(x)

    def walk(self, w, x):
        return w(self.final_layer, x)
