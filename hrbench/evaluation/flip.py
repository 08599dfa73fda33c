"""Flip test: run the mirrored crop too, bring its output back to the original frame with the
model's codec (heatmaps: mirror, swap left/right channels, shift one pixel right -- the reference
``shift_heatmap``) and average with the plain output. The heatmap steps are the MSRA codec's
(:mod:`hrbench.codecs.heatmap`), named here for evaluation code."""

from __future__ import annotations

import torch

from hrbench.codecs.heatmap import flip_back, merge_flip, shift_right
from hrbench.models.pose import codec_of

__all__ = ["flip_back", "flip_test", "merge_flip", "shift_right"]


@torch.no_grad()
def flip_test(model: torch.nn.Module, images: torch.Tensor, flip_pairs) -> torch.Tensor:
    """Output of ``model`` on ``images`` (N, 3, H, W) averaged with its mirrored-input output,
    through the model's codec (:func:`~hrbench.models.pose.codec_of`)."""
    return codec_of(model).merge_flip(model(images), model(images.flip(3)), flip_pairs)
