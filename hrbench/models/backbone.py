"""The backbone contract, declared once (as timm's shared backbone interface): what every
registered family's backbone provides to the pose model, the engine and the counters.

* ``out_channels`` (int): width of the single feature map ``forward`` returns, the head's input;
* ``forward(x)``: (N, 3, H, W) -> (N, out_channels, H/4, W/4), the highest-resolution features;
* ``check_input_size(h, w)``: a one-line :class:`~hrbench.errors.HrbenchError` for an input the
  network cannot take (default: every size is accepted);
* ``walk(w, x)``: the closed-form counter's traversal (:mod:`hrbench.complexity.walker`), mirroring
  ``forward`` on shapes; every subclass must define it (checked when the class is created).

A new family's backbone subclasses :class:`Backbone`; its config's ``build_backbone`` returns it.
"""

from __future__ import annotations

from typing import Any

from torch import nn


class Backbone(nn.Module):
    """Base class of every registered backbone (see the module docstring for the contract)."""

    out_channels: int

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not callable(getattr(cls, "walk", None)):
            raise TypeError(f"backbone {cls.__name__} must define walk(w, x), the closed-form counter's "
                            "traversal mirroring forward (see hrbench.models.backbone)")

    def check_input_size(self, h: int, w: int) -> None:
        """Raise a one-line HrbenchError unless the network can take an (h, w) input (here: any)."""
