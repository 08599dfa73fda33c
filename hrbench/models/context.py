"""Adaptive Context Modeling of Dite-HRNet (Section 3.2, Eq. 4-6): GCM and DCM.

ACM = Weight(X, Shift(ACPool(H, W)(X))) (Eq. 4):
- ACPool: a 1x1 "channel pooling" convolution to one mask channel, a softmax over all H*W
  positions, then the mask-weighted sum of the features over windows giving an H x W output;
- Shift: 1x1 conv (no bias) -> BN -> ReLU -> 1x1 conv (bias) -> Sigmoid;
- Weight: element-wise product of the input with the (up-sampled) shifted context.

Layer order, widths and reductions follow the official implementation (github
ZiyiZhang27/Dite-HRNet); attribute names match its checkpoints.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def context_shift(channels: int, reduction: int) -> nn.Sequential:
    """Shift(.) of Eq. 4: 1x1 conv C -> C/r (no bias), BN, ReLU, 1x1 conv C/r -> C (bias), Sigmoid."""
    mid = channels // reduction
    if mid < 1:
        raise ValueError(f"context shift: {channels} channels // reduction {reduction} leaves no hidden unit")
    return nn.Sequential(
        nn.Conv2d(channels, mid, kernel_size=1, bias=False),
        nn.BatchNorm2d(mid),
        nn.ReLU(inplace=True),
        nn.Conv2d(mid, channels, kernel_size=1, bias=True),
        nn.Sigmoid(),
    )


def adaptive_context_pool(x: torch.Tensor, mask: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """ACPool(h, w) of Eq. 4 (Figure 3) given the softmax-normalised mask ``(B, 1, H*W)``.

    Follows the official tensor layout exactly: the flattened features ``(B, C, H*W)`` and the
    mask are reshaped (not permuted) into h*w chunks of H*W/(h*w) consecutive elements, and each
    chunk is reduced by a matrix product with its part of the mask. For 1x1 this is the global
    mask-weighted sum; for larger outputs the chunks of the feature tensor cut across channels
    (an artefact of the official code that its checkpoints depend on).
    """
    b, c, h, w = x.shape
    cells = out_hw[0] * out_hw[1]
    feats = x.reshape(b, cells, c, (h * w) // cells)
    weights = mask.reshape(b, cells, (h * w) // cells, 1)
    pooled = torch.matmul(feats, weights)  # (B, cells, C, 1)
    return pooled.permute(0, 2, 1, 3).reshape(b, c, out_hw[0], out_hw[1])


class GlobalContextModeling(nn.Module):
    """GCM (Section 3.2, Eq. 6): ACM with a 1x1 adaptive context pool on one branch,
    then BN of the context-weighted features."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        self.conv_mask = nn.Conv2d(channels, 1, kernel_size=1, bias=True)
        self.softmax = nn.Softmax(dim=2)
        self.channel_attention = context_shift(channels, reduction)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        mask = self.softmax(self.conv_mask(x).reshape(b, 1, h * w))
        context = self.channel_attention(adaptive_context_pool(x, mask, (1, 1)))
        return self.bn(x * context)

    def walk(self, w, x):
        m = w(self.conv_mask, x)
        w(self.softmax, (m[0], 1, m[2] * m[3]))
        w(self.channel_attention, (x[0], x[1], 1, 1))
        return w(self.bn, x)


class DenseContextModeling(nn.Module):
    """DCM (Section 3.2, Eq. 5): every branch but the lowest-resolution one is pooled by ACPool to the
    lowest resolution, all are concatenated and shifted together, and the shifted context is
    split, up-sampled (nearest) and used to weight each branch.

    One mask convolution is built per branch, as in the official code, but the last one (the
    lowest-resolution branch, which is not pooled) is never called: its parameters are dead but
    present in official checkpoints and parameter counts. They are kept (checkpoint keys and
    #Params stay the official ones) but ``conv_mask[-1]`` is frozen with ``requires_grad_(False)``,
    so that ``DistributedDataParallel`` (which otherwise waits for their gradients) and the
    optimiser skip them.
    """

    def __init__(self, channels: Sequence[int], reduction: int = 8) -> None:
        super().__init__()
        self.channels = list(channels)
        total = sum(self.channels)
        self.conv_mask = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=True) for c in self.channels)
        self.softmax = nn.Softmax(dim=2)
        self.channel_attention = context_shift(total, reduction)
        self.conv_mask[-1].requires_grad_(False)

    def context(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Every branch but the lowest ACPooled to the lowest resolution, concatenated with it (Shift's input)."""
        mini = (xs[-1].shape[-2], xs[-1].shape[-1])
        pooled = []
        for x, conv_mask in zip(xs[:-1], self.conv_mask, strict=False):  # the last mask conv is unused
            b, _, h, w = x.shape
            mask = self.softmax(conv_mask(x).reshape(b, 1, h * w))
            pooled.append(adaptive_context_pool(x, mask, mini))
        return torch.cat([*pooled, xs[-1]], dim=1)

    def forward(self, xs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        context = self.channel_attention(self.context(xs))
        parts = torch.split(context, self.channels, dim=1)
        return [x * F.interpolate(a, size=x.shape[-2:], mode="nearest") for x, a in zip(xs, parts, strict=True)]

    def walk(self, w, xs):
        mini = xs[-1][2:]
        for x, conv_mask in zip(xs[:-1], self.conv_mask, strict=False):
            m = w(conv_mask, x)
            w(self.softmax, (m[0], 1, m[2] * m[3]))
        w(self.channel_attention, (xs[-1][0], sum(self.channels), *mini))
        return list(xs)
