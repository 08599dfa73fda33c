"""Top-down pose model = backbone (:class:`~hrbench.models.backbone.Backbone`) + head
(:class:`~hrbench.models.heads.Head`, with its codec); no neck. The papers' models end in the
1x1-conv heatmap head (``TopDownSimpleHead``)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hrbench.codecs import Codec, MSRAHeatmap
from hrbench.errors import ConfigError
from hrbench.models.backbone import Backbone
from hrbench.models.heads import Head, HeatmapHead, build_head

__all__ = ["PoseModel", "HeatmapHead", "codec_of"]


class PoseModel(nn.Module):
    """``backbone`` followed by ``head``: a registered head name (built with ``head_options`` on
    the backbone's ``out_channels``) or a built :class:`Head`.

    The backbone returns the highest-resolution feature map (a tensor) at 1/``out_stride`` of the
    input (4 for the papers' backbones); the head takes it to its codec's resolution.
    Any ``nn.Module`` with an integer ``out_channels`` serves as a backbone; one that is not a
    :class:`Backbone` accepts every input size.
    """

    def __init__(self, backbone: nn.Module, num_keypoints: int, head: str | Head = "heatmap",
                 **head_options: Any) -> None:
        super().__init__()
        channels = getattr(backbone, "out_channels", None)  # the contract's one check of a foreign module
        if not isinstance(channels, int):
            raise ConfigError(f"backbone {type(backbone).__name__} has no integer out_channels (the backbone contract)")
        if isinstance(backbone, Backbone):
            backbone.bind_keypoints(num_keypoints)
        self.backbone = backbone
        self.head = head if isinstance(head, Head) else build_head(head, channels, num_keypoints, **head_options)
        self.num_keypoints = num_keypoints
        self.arch = ""
        self.config = None

    @property
    def codec(self) -> Codec:
        """The codec that encodes this model's targets and reads its output (its head's)."""
        return self.head.codec

    def check_input_size(self, h: int, w: int) -> None:
        """One-line HrbenchError unless the backbone can take an (h, w) input."""
        if isinstance(self.backbone, Backbone):
            self.backbone.check_input_size(h, w)

    def forward(self, x: torch.Tensor) -> Any:
        return self.head(self.backbone(x))

    def walk(self, w, x):
        return w(self.head, w(self.backbone, x))


def codec_of(model: nn.Module) -> Codec:
    """The codec of ``model``'s head; a bare module (not a :class:`PoseModel`) is read as the
    papers' MSRA heatmaps (K maps at 1/4 of the input)."""
    return model.codec if isinstance(model, PoseModel) else MSRAHeatmap()
