"""The codec contract: how a head's output and its training targets relate to keypoints.

A codec is one pluggable unit beside its head (:mod:`hrbench.models.heads`): target encoding (one
sample in a loader worker, and a whole batch on the training device), decoding, the flip test and
the training loss. Codecs are pure tensor / numpy code, registered by name (:func:`register_codec`,
as mmengine's registries; every module of this package is imported at the first lookup, so a new
codec is one module); a head names the codec that reads its output. The first is the MSRA
Gaussian heatmap of the three papers (:mod:`hrbench.codecs.heatmap`).
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from hrbench.errors import ConfigError
from hrbench.plugins import Registry


@dataclasses.dataclass(frozen=True)
class Decoded:
    """Keypoints read from a batch of outputs, in the codec's frame: ``coords`` (N, K, 2) as x, y,
    where x = 0 and x = ``frame_wh[0]`` are the left and right edges of the crop box (y likewise),
    and ``scores`` (N, K, 1) float32. :func:`hrbench.evaluation.decode.to_image` maps them to image pixels."""

    coords: np.ndarray
    scores: np.ndarray
    frame_wh: tuple[float, float]


class Codec(abc.ABC):
    """What every codec provides (an instance holds its parameters, e.g. the Gaussian's sigma).

    ``target_keys``: the batch keys of the encoded targets, in the order :meth:`loss` takes them
    (datasets put one array per key in a sample; the trainer moves them to the device).
    ``post_processes``: the decoding variants :meth:`decode` accepts; every codec has ``"default"``
    (evaluation's ``--dark`` asks for ``"dark"``, which a codec without it refuses).
    ``affine``: the crop affine its targets and decoding assume, by name: ``"msra"`` (the reference
    ``get_affine_transform``) or ``"udp"`` (``get_warp_matrix``, pixel units); the data pipeline
    (:mod:`hrbench.data.transforms`) builds the crop with it.
    """

    name: ClassVar[str] = ""
    affine: ClassVar[str] = "msra"
    target_keys: ClassVar[tuple[str, ...]] = ("target", "target_weight")
    post_processes: ClassVar[tuple[str, ...]] = ("default",)

    @abc.abstractmethod
    def encode(self, joints: np.ndarray, vis: np.ndarray, input_hw: tuple[int, int]) -> dict[str, np.ndarray]:
        """Targets of one sample: joints (K, 2) in input (crop) pixels, visibility (K,) -> one
        array per :attr:`target_keys` entry."""

    @abc.abstractmethod
    def encode_batch(self, joints: torch.Tensor, vis: torch.Tensor,
                     input_hw: tuple[int, int]) -> dict[str, torch.Tensor]:
        """The same for a batch on any device: joints (B, K, 2), visibility (B, K) -> (B, ...)
        tensors equal (to float32 rounding) to stacking :meth:`encode` of each sample."""

    @abc.abstractmethod
    def decode(self, output: Any, post_process: str = "default") -> Decoded:
        """Keypoints and scores of a batch of head outputs (tensors on any device, any float dtype,
        or numpy). A ``post_process`` not in :attr:`post_processes` is a :class:`ConfigError`."""

    @abc.abstractmethod
    def flip_back(self, flipped_output: Any, flip_pairs: Sequence[Sequence[int]]) -> Any:
        """The output for a horizontally mirrored input brought back to the original frame
        (mirrored, left/right keypoints swapped, plus whatever shift the codec's flip test uses)."""

    def merge_flip(self, output: Any, flipped_output: Any, flip_pairs: Sequence[Sequence[int]]) -> Any:
        """Flip test: the float32 mean of ``output`` and :meth:`flip_back` of ``flipped_output``
        (a tensor, or a tuple of tensors averaged element by element)."""
        back = self.flip_back(_float(flipped_output), flip_pairs)
        if isinstance(output, torch.Tensor):
            return (output.float() + back) * 0.5
        return type(output)((o.float() + b) * 0.5 for o, b in zip(output, back, strict=True))

    @abc.abstractmethod
    def loss(self, output: Any, *targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """Training loss of a batch (computed in float32): ``targets`` as :attr:`target_keys` lists
        them; ``reduction="none"`` gives the per-sample loss (B,), whose mean is the batch loss."""

    def check_post_process(self, post_process: str) -> None:
        """Refuse a decoding variant this codec does not have, naming the ones it has."""
        if post_process not in self.post_processes:
            raise ConfigError(f"the {self.name} codec has no post-processing {post_process!r}: "
                              f"expected {' or '.join(self.post_processes)}")


def _float(output: Any) -> Any:
    return output.float() if isinstance(output, torch.Tensor) else type(output)(o.float() for o in output)


CODECS: Registry[type[Codec]] = Registry("codec", package=__package__)


def register_codec(name: str) -> Callable[[type[Codec]], type[Codec]]:
    """Class decorator registering a :class:`Codec` subclass as ``name`` (sets its ``name``)."""

    def deco(cls: type[Codec]) -> type[Codec]:
        if not (isinstance(cls, type) and issubclass(cls, Codec)):
            raise TypeError(f"codec {name!r}: {cls!r} is not a Codec subclass")
        cls.name = name
        return CODECS.add(name, cls)

    return deco


def list_codecs() -> list[str]:
    return sorted(CODECS.names())


def build_codec(name: str, **params: Any) -> Codec:
    """An instance of the codec registered as ``name`` with ``params``; one-line error otherwise."""
    return CODECS.get(name)(**params)
