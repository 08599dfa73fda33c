"""Intermediate supervision (Newell et al., ECCV 2016, Sec. 3.3) on the MSRA heatmap codec: a stacked
network's training output is one heatmap tensor per stack, each compared with the same targets.

* Loss: the *sum* over stacks of ``JointsMSELoss`` (the official training applies one MSE criterion per
  stack output with weight 1, Torch's ``ParallelCriterion`` in ``pose-hg-train`` ``src/util/pose.lua``;
  ``bearpaw/pytorch-pose`` adds them the same way).
* Everything else (targets, decoding, flip test) is :class:`~hrbench.codecs.heatmap.MSRAHeatmap`'s, on the
  last stack's heatmaps: an evaluation model returns only those, and a tuple given anyway is read by its last.
  So the validation loss (evaluation mode) is the last stack's term alone, while the training loss sums all S.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch

from hrbench.codecs.base import Decoded, register_codec
from hrbench.codecs.heatmap import MSRAHeatmap


def final_stack(output: Any) -> Any:
    """The last stack's heatmaps of a tuple / list of stack outputs; a single output as it is."""
    return output[-1] if isinstance(output, (tuple, list)) else output


@register_codec("stacked_heatmap")
@dataclasses.dataclass(frozen=True)
class StackedHeatmap(MSRAHeatmap):
    """MSRA Gaussian heatmaps for every stack of a stacked network; the loss sums the stacks'."""

    def decode(self, output: Any, post_process: str = "default") -> Decoded:
        return super().decode(final_stack(output), post_process)

    def flip_back(self, flipped_output: Any, flip_pairs: Sequence[Sequence[int]]) -> torch.Tensor:
        return super().flip_back(final_stack(flipped_output), flip_pairs)

    def merge_flip(self, output: Any, flipped_output: Any, flip_pairs: Sequence[Sequence[int]]) -> Any:
        return super().merge_flip(final_stack(output), final_stack(flipped_output), flip_pairs)

    def loss(self, output: Any, *targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        stacks = output if isinstance(output, (tuple, list)) else (output,)
        one = super().loss  # the MSRA JointsMSELoss of one stack
        return sum(one(s, *targets, reduction=reduction) for s in stacks)
