"""Training-step cost, measured: forward + backward multiply-accumulates per image.

``FlopCounterMode`` counts the forward pass and, separately, the backward pass of a scalar loss
(``convolution_backward``: grad-input and grad-weight products as the output mask asks; the
``mm`` of matrix-product gradients). The input image needs no gradient, so the first layer's
grad-input product is not computed, and the ratio is measured, not assumed to be 2 or 3.
"""

from __future__ import annotations

import copy
import dataclasses
from collections import Counter
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from hrbench.complexity.macs import EXTRA_FORMULAS
from hrbench.complexity.probe import example_input
from hrbench.complexity.traffic import by_count

#: Images per measured step: train-mode BatchNorm needs more than one value per channel.
TRAIN_BATCH = 2


@dataclasses.dataclass
class TrainCost:
    """MACs per image of one training step (``batch`` images, train mode, loss = mean square)."""

    forward: int
    backward: int
    batch: int
    backward_by_op: dict[str, int]

    @property
    def total(self) -> int:
        return self.forward + self.backward

    @property
    def ratio(self) -> float:
        """(forward + backward) / forward."""
        return self.total / self.forward if self.forward else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"forward_macs": self.forward, "backward_macs": self.backward, "step_macs": self.total,
                "ratio": round(self.ratio, 4), "batch": self.batch, "backward_by_op": self.backward_by_op,
                "unit": "MACs per image (FlopCounterMode FLOPs / 2 / batch), decimal",
                "loss": "mean of squared outputs (no products); input needs no gradient"}


def _per_image(counter: FlopCounterMode, batch: int) -> tuple[int, dict[str, int]]:
    by_op: Counter[str] = Counter()
    for op, flops in counter.get_flop_counts().get("Global", {}).items():
        by_op[getattr(op, "__name__", str(op))] += flops // 2 // batch
    return counter.get_total_flops() // 2 // batch, by_count(by_op)


def train_step_macs(model: nn.Module, input_hw: tuple[int, int], batch: int = TRAIN_BATCH) -> TrainCost:
    """Forward and backward MACs per image of one training step on a copy of ``model``."""
    net = copy.deepcopy(model).train()
    x = torch.cat([example_input(input_hw)] * batch)
    with FlopCounterMode(display=False, custom_mapping=EXTRA_FORMULAS) as fwd:
        out = net(x)
        leaves = [t for t in torch.utils._pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]
        loss = sum(t.float().square().mean() for t in leaves if t.requires_grad)
    with FlopCounterMode(display=False, custom_mapping=EXTRA_FORMULAS) as bwd:
        loss.backward()
    forward, _ = _per_image(fwd, batch)
    backward, by_op = _per_image(bwd, batch)
    return TrainCost(forward, backward, batch, by_op)
