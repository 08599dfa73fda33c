"""The backbone contract, declared once (as timm's shared backbone interface): what every
registered family's backbone provides to the pose model, the engine and the counters.

* ``out_channels`` (int): width of the single feature map ``forward`` returns, the head's input;
* ``out_stride`` (int, class attribute, default 4): that map's stride; the head takes it to its
  codec's resolution (the papers' 1x1 head keeps 1/4, SimpleBaseline's deconvolution head
  upsamples the 1/32 features of ResNet / MobileNetV2 / ShuffleNetV2 x8);
* ``forward(x)``: (N, 3, H, W) -> (N, out_channels, H/out_stride, W/out_stride), the highest-resolution features
  (a multi-scale head's backbone returns its levels as a tuple instead, finest first: CPN's C2..C5);
* ``check_input_size(h, w)``: a one-line :class:`~hrbench.errors.HrbenchError` for an input the
  network cannot take (default: every size is accepted);
* ``bind_keypoints(k)``: called by the pose model with K before the head is built, for a backbone
  whose layers depend on K (the stacked hourglass's intermediate predictions; default: nothing). Such a
  backbone may return, in training mode only, a tuple ending in the features, which its head reads;
* ``walk(w, x)``: the closed-form counter's traversal (:mod:`hrbench.complexity.walker`), mirroring
  ``forward`` on shapes; every subclass must define it (checked when the class is created).

A new family's backbone subclasses :class:`Backbone`; its config's ``build_backbone`` returns it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn


class Backbone(nn.Module):
    """Base class of every registered backbone (see the module docstring for the contract)."""

    out_channels: int
    out_stride: ClassVar[int] = 4

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not callable(getattr(cls, "walk", None)):
            raise TypeError(f"backbone {cls.__name__} must define walk(w, x), the closed-form counter's "
                            "traversal mirroring forward (see hrbench.models.backbone)")

    def check_input_size(self, h: int, w: int) -> None:
        """Raise a one-line HrbenchError unless the network can take an (h, w) input (here: any)."""

    def bind_keypoints(self, num_keypoints: int) -> None:
        """Build the layers that depend on the keypoint count K (here: none)."""
