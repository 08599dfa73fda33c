"""The head contract and registry: a head turns the backbone's features into the output its
codec (:mod:`hrbench.codecs`) encodes targets for, decodes, flips and scores.

A head is built as ``cls(in_channels, num_keypoints, codec=None, **options)`` (``codec``: a
:class:`~hrbench.codecs.Codec`, a registered codec name, or None for the head's ``codec_name``),
has ``forward(features)``, ``walk(w, x)`` (the closed-form counter's traversal; required) and
``codec``. A new head is one module in this package subclassing :class:`Head` under
:func:`register_head` (found by name at the first lookup, like the registry's specs); a family picks
it with its config's ``head`` (:class:`hrbench.config.ModelConfig`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from torch import nn

from hrbench.codecs import Codec, build_codec
from hrbench.plugins import Registry


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


HEADS: Registry[type[Head]] = Registry("head", package=__package__)


def register_head(name: str) -> Callable[[type[Head]], type[Head]]:
    """Class decorator registering a :class:`Head` subclass as ``name`` (sets its ``name``)."""

    def deco(cls: type[Head]) -> type[Head]:
        if not (isinstance(cls, type) and issubclass(cls, Head)):
            raise TypeError(f"head {name!r}: {cls!r} is not a Head subclass")
        cls.name = name
        return HEADS.add(name, cls)

    return deco


def list_heads() -> list[str]:
    return sorted(HEADS.names())


def build_head(name: str, in_channels: int, num_keypoints: int, **options: Any) -> Head:
    """The head registered as ``name``; an unknown name is a one-line ConfigError."""
    return HEADS.get(name)(in_channels, num_keypoints, **options)
