"""The stride-4 stem shared by Lite-HRNet and Dite-HRNet (Lite-HRNet Table 1; Dite-HRNet Table 1,
Fig. 2): a 3x3/2 convolution, then a two-branch stride-2 shuffle block.

Dite-HRNet's DGC variant is built in :mod:`hrbench.models.ditehrnet`; both use :class:`ShuffleStem`.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from hrbench.models.separable import ConvBNAct, channel_shuffle
from hrbench.models.shapes import Shape


class ShuffleStem(nn.Module):
    """The stem (Lite-HRNet Table 1 / Dite-HRNet Fig. 2): a 3x3/2 conv + BN + ReLU to
    ``stem_channels``, then a stride-2 shuffle block: the channels are split in two halves, the
    first goes through ``branch1``, the second through the second branch, the outputs are
    concatenated and channel-shuffled (groups 2). Output at 1/4 of the input resolution.

    ``branch1``: a module (key ``branch1.*``). ``branch2``: either a module (key ``branch2.*``, as
    in Dite-HRNet) or an ordered mapping name -> module whose entries are registered directly on
    the stem under those names and applied in order (Lite-HRNet: ``expand_conv``,
    ``depthwise_conv``, ``linear_conv``), which keeps the official key names.
    """

    def __init__(self, conv1: nn.Module, branch1: nn.Module, branch2: nn.Module | Mapping[str, nn.Module],
                 out_channels: int) -> None:
        super().__init__()
        self.conv1 = conv1
        self.branch1 = branch1
        if isinstance(branch2, nn.Module):
            self.branch2 = branch2
            self._branch2_names: tuple[str, ...] = ("branch2",)
        else:
            for name, mod in branch2.items():
                self.add_module(name, mod)
            self._branch2_names = tuple(branch2)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x1, x2 = x.chunk(2, dim=1)
        x1 = self.branch1(x1)
        for name in self._branch2_names:
            x2 = getattr(self, name)(x2)
        return channel_shuffle(torch.cat((x1, x2), dim=1), 2)

    def walk(self, w, x: Shape) -> Shape:
        x = w(self.conv1, x)
        half = (x[0], x[1] // 2, x[2], x[3])
        x1 = w(self.branch1, half)
        x2 = (x[0], x[1] - x[1] // 2, x[2], x[3])
        for name in self._branch2_names:
            x2 = w(getattr(self, name), x2)
        return (x1[0], x1[1] + x2[1], x1[2], x1[3])


def lite_stem(in_channels: int, stem_channels: int, out_channels: int, expand_ratio: float) -> ShuffleStem:
    """Lite-HRNet's stem: the second branch is 1x1 expand (+BN+ReLU), 3x3/2 depthwise (+BN),
    1x1 linear (+BN+ReLU); the first branch is 3x3/2 depthwise (+BN), 1x1 (+BN+ReLU)."""
    mid = int(round(stem_channels * expand_ratio))
    half = stem_channels // 2
    if stem_channels == out_channels:
        inc, lin_out = out_channels - half, half
    else:
        inc, lin_out = out_channels - stem_channels, stem_channels
    conv1 = ConvBNAct(in_channels, stem_channels, 3, stride=2)
    branch1 = nn.Sequential(ConvBNAct(half, half, 3, stride=2, groups=half, act=None), ConvBNAct(half, inc, 1))
    branch2 = {
        "expand_conv": ConvBNAct(half, mid, 1),
        "depthwise_conv": ConvBNAct(mid, mid, 3, stride=2, groups=mid, act=None),
        "linear_conv": ConvBNAct(mid, lin_out, 1),
    }
    return ShuffleStem(conv1, branch1, branch2, inc + lin_out)
