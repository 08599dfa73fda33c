"""The head contract and the registered heads: a head turns the backbone's features into the
output its codec (:mod:`hrbench.codecs`) encodes targets for, decodes, flips and scores.

A head is built as ``cls(in_channels, num_keypoints, codec=None, **options)`` (``codec``: a
:class:`~hrbench.codecs.Codec`, a registered codec name, or None for the head's ``codec_name``),
has ``forward(features)``, ``walk(w, x)`` (the closed-form counter's traversal; required) and
``codec``. A new head is one module that subclasses :class:`Head` under :func:`register_head`; a
family picks it by name with its config's ``head`` (:class:`hrbench.config.ModelConfig`).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from hrbench.codecs import Codec, build_codec
from hrbench.errors import ConfigError


class Head(nn.Module):
    """Base class of every head (see the module docstring); ``codec_name`` names its default codec."""

    codec_name: ClassVar[str] = ""
    name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not callable(getattr(cls, "walk", None)):
            raise TypeError(f"head {cls.__name__} must define walk(w, x), the closed-form counter's traversal")

    def __init__(self, in_channels: int, num_keypoints: int, codec: Codec | str | None = None) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.num_keypoints = num_keypoints
        self.codec: Codec = codec if isinstance(codec, Codec) else build_codec(codec or self.codec_name)


_HEADS: dict[str, type[Head]] = {}


def register_head(name: str) -> Callable[[type[Head]], type[Head]]:
    """Class decorator registering a :class:`Head` subclass as ``name`` (sets its ``name``)."""

    def deco(cls: type[Head]) -> type[Head]:
        if not (isinstance(cls, type) and issubclass(cls, Head)):
            raise TypeError(f"head {name!r}: {cls!r} is not a Head subclass")
        if name in _HEADS:
            raise ValueError(f"head name {name!r} registered twice")
        cls.name = name
        _HEADS[name] = cls
        return cls

    return deco


def list_heads() -> list[str]:
    return sorted(_HEADS)


def build_head(name: str, in_channels: int, num_keypoints: int, **options: Any) -> Head:
    """The head registered as ``name``; an unknown name is a one-line ConfigError."""
    if name not in _HEADS:
        close = difflib.get_close_matches(name, list(_HEADS), n=3, cutoff=0.5)
        hint = f"; closest: {', '.join(close)}" if close else f"; known: {', '.join(sorted(_HEADS))}"
        raise ConfigError(f"unknown head {name!r}{hint}")
    return _HEADS[name](in_channels, num_keypoints, **options)


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
