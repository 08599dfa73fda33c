"""Lite-HRNet (Yu et al., CVPR 2021): conditional channel weighting, the naive shuffle block,
the backbone and its configuration.

Facts from the paper (Sections 3.1-3.2, Tables 1, 6, 7) and the official configs
(github HRNet/Lite-HRNet ``configs/top_down/``); the shared skeleton is in
:mod:`hrbench.models.hr_modules`, the stem in :mod:`hrbench.models.stem`.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from hrbench.config import ModelConfig, is_positive_int, require
from hrbench.models.hr_modules import HRBackbone, MultiBranchSequential, PerBranch, init_weights_official, make_stage
from hrbench.models.separable import ConvBNAct, channel_shuffle
from hrbench.models.shapes import Shape
from hrbench.models.stem import lite_stem


class SpatialWeighting(nn.Module):
    """Spatial weight computation F_s (Sec. 3.2, Eq. 6): GAP -> FC -> ReLU -> FC -> sigmoid,
    one weight per channel shared by all positions (FCs are 1x1 convs with bias, no BN)."""

    def __init__(self, channels: int, ratio: int = 4) -> None:
        super().__init__()
        mid = int(channels / ratio)
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.conv1 = ConvBNAct(channels, mid, 1, norm=False, act="relu")
        self.conv2 = ConvBNAct(mid, channels, 1, norm=False, act="sigmoid")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv2(self.conv1(self.global_avgpool(x)))

    def walk(self, w, x: Shape) -> Shape:
        w(self.conv2, w(self.conv1, w(self.global_avgpool, x)))
        return x


class CrossResolutionWeighting(nn.Module):
    """Cross-resolution weight computation H_s (Sec. 3.2, Eqs. 3-4): adaptive-average-pool every
    branch to the lowest resolution, concatenate, 1x1 conv + BN + ReLU, 1x1 conv + BN + sigmoid,
    split per branch, nearest-upsample each weight map and multiply it in."""

    def __init__(self, channels: tuple[int, ...], ratio: int) -> None:
        super().__init__()
        self.channels = tuple(channels)
        total = sum(self.channels)
        mid = int(total / ratio)
        self.conv1 = ConvBNAct(total, mid, 1, act="relu")
        self.conv2 = ConvBNAct(mid, total, 1, act="sigmoid")

    def context(self, xs: list[torch.Tensor]) -> torch.Tensor:
        """Every branch average-pooled to the lowest resolution, concatenated (the input of the two convs)."""
        size = xs[-1].shape[-2:]
        return torch.cat([F.adaptive_avg_pool2d(s, size) for s in xs[:-1]] + [xs[-1]], dim=1)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        weights = self.conv2(self.conv1(self.context(xs)))
        return [s * F.interpolate(a, size=s.shape[-2:], mode="nearest")
                for s, a in zip(xs, torch.split(weights, self.channels, dim=1), strict=True)]

    def walk(self, w, xs: list[Shape]) -> list[Shape]:
        n, _, h, wd = xs[-1]
        w(self.conv2, w(self.conv1, (n, sum(s[1] for s in xs), h, wd)))
        return list(xs)


class ConditionalChannelWeighting(nn.Module):
    """The Lite block, conditional channel weighting (Sec. 3.2, Fig. 1b): split each branch's
    channels in two halves; the second half goes through cross-resolution weighting, a 3x3
    depthwise conv + BN, and spatial weighting; concatenate with the first half and shuffle.

    ``with_cross_resolution`` / ``with_spatial`` switch the two weightings off for the Table 7
    ablations ("CCW only w/ spatial weights" / "only w/ multi-resolution weights").
    """

    def __init__(self, channels: tuple[int, ...], reduce_ratio: int, stride: int = 1, *,
                 with_cross_resolution: bool = True, with_spatial: bool = True) -> None:
        super().__init__()
        half = tuple(c // 2 for c in channels)
        if with_cross_resolution:
            self.cross_resolution_weighting = CrossResolutionWeighting(half, reduce_ratio)
        else:
            self.cross_resolution_weighting = None
        self.depthwise_convs = nn.ModuleList(
            [ConvBNAct(c, c, 3, stride=stride, groups=c, act=None) for c in half])
        self.spatial_weighting = nn.ModuleList([SpatialWeighting(c, 4) for c in half]) if with_spatial else None

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        halves = [s.chunk(2, dim=1) for s in xs]
        x1 = [h[0] for h in halves]
        x2 = [h[1] for h in halves]
        if self.cross_resolution_weighting is not None:
            x2 = self.cross_resolution_weighting(x2)
        x2 = [dw(s) for dw, s in zip(self.depthwise_convs, x2, strict=True)]
        if self.spatial_weighting is not None:
            x2 = [sw(s) for sw, s in zip(self.spatial_weighting, x2, strict=True)]
        return [channel_shuffle(torch.cat((a, b), dim=1), 2) for a, b in zip(x1, x2, strict=True)]

    def walk(self, w, xs: list[Shape]) -> list[Shape]:
        x1 = [(s[0], s[1] // 2, s[2], s[3]) for s in xs]
        x2 = [(s[0], s[1] - s[1] // 2, s[2], s[3]) for s in xs]
        if self.cross_resolution_weighting is not None:
            x2 = w(self.cross_resolution_weighting, x2)
        x2 = [w(dw, s) for dw, s in zip(self.depthwise_convs, x2, strict=True)]
        if self.spatial_weighting is not None:
            x2 = [w(sw, s) for sw, s in zip(self.spatial_weighting, x2, strict=True)]
        return [(a[0], a[1] + b[1], b[2], b[3]) for a, b in zip(x1, x2, strict=True)]


class ShuffleBlock(nn.Module):
    """The naive Lite-HRNet block, ShuffleNet V2's stride-1 shuffle block (Sec. 3.1, Fig. 1a):
    split the channels; one half goes through 1x1 conv + BN + ReLU, 3x3 depthwise conv + BN,
    1x1 conv + BN + ReLU; concatenate with the other half and shuffle.

    ``num_pointwise`` < 2 drops 1x1 convs for the Table 6 ablation ("one / two 1x1 conv.
    dropped", no official code): 1 keeps 1x1 conv + BN, 3x3 depthwise conv + BN; 0 keeps the
    depthwise conv + BN only. No ReLU is left in either (the reading that reproduces the printed
    MFLOPs to the digit; see the model cards). Key layout ``branch2.<k>.*``.
    """

    def __init__(self, channels: int, num_pointwise: int = 2) -> None:
        super().__init__()
        c = channels // 2
        if num_pointwise == 2:
            layers = [ConvBNAct(c, c, 1), ConvBNAct(c, c, 3, groups=c, act=None), ConvBNAct(c, c, 1)]
        elif num_pointwise == 1:
            layers = [ConvBNAct(c, c, 1, act=None), ConvBNAct(c, c, 3, groups=c, act=None)]
        elif num_pointwise == 0:
            layers = [ConvBNAct(c, c, 3, groups=c, act=None)]
        else:
            raise ValueError(f"num_pointwise must be 0, 1 or 2, got {num_pointwise}")
        self.branch2 = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=1)
        return channel_shuffle(torch.cat((x1, self.branch2(x2)), dim=1), 2)

    def walk(self, w, x: Shape) -> Shape:
        y = w(self.branch2, (x[0], x[1] - x[1] // 2, x[2], x[3]))
        return (x[0], x[1] // 2 + y[1], x[2], x[3])


MODULE_TYPES = ("LITE", "NAIVE")


@dataclasses.dataclass(frozen=True)
class LiteHRNetConfig(ModelConfig):
    """Every hyper-parameter of the official ``LiteHRNet`` backbone config (``extra``), plus three
    ablation switches (paper Tables 6-7; defaults = the official model). Per-stage tuples list the
    stages in order; ``num_channels`` lists each stage's branch widths, highest resolution first.
    """

    in_channels: int = 3
    stem_channels: int = 32
    stem_out_channels: int = 32
    stem_expand_ratio: float = 1.0
    num_modules: tuple[int, ...] = (2, 4, 2)
    num_branches: tuple[int, ...] = (2, 3, 4)
    num_blocks: tuple[int, ...] = (2, 2, 2)
    module_type: tuple[str, ...] = ("LITE", "LITE", "LITE")
    with_fuse: tuple[bool, ...] = (True, True, True)
    reduce_ratios: tuple[int, ...] = (8, 8, 8)
    num_channels: tuple[tuple[int, ...], ...] = ((40, 80), (40, 80, 160), (40, 80, 160, 320))
    with_head: bool = True
    ccw_cross_resolution: bool = True
    ccw_spatial: bool = True
    shuffle_pointwise: int = 2

    def validate(self) -> None:
        require(is_positive_int(self.in_channels), "in_channels",
                f"must be a positive integer, got {self.in_channels!r}")
        require(is_positive_int(self.stem_channels) and self.stem_channels % 2 == 0, "stem_channels",
                f"must be a positive even integer, got {self.stem_channels!r}")
        require(is_positive_int(self.stem_out_channels) and self.stem_out_channels >= self.stem_channels,
                "stem_out_channels",
                f"must be an integer >= stem_channels ({self.stem_channels}), got {self.stem_out_channels!r}")
        require(isinstance(self.stem_expand_ratio, (int, float)) and not isinstance(self.stem_expand_ratio, bool)
                and self.stem_expand_ratio > 0 and round(self.stem_channels * self.stem_expand_ratio) >= 1,
                "stem_expand_ratio", f"must be a positive number, got {self.stem_expand_ratio!r}")
        require(isinstance(self.num_channels, tuple) and len(self.num_channels) >= 1, "num_channels",
                "must be a tuple of per-stage channel tuples")
        n = len(self.num_channels)
        for name in ("num_modules", "num_branches", "num_blocks", "module_type", "with_fuse", "reduce_ratios"):
            value = getattr(self, name)
            require(isinstance(value, tuple) and len(value) == n, name,
                    f"needs {n} values (one per stage, as num_channels), got {value!r}")
        for i, chans in enumerate(self.num_channels):
            require(isinstance(chans, tuple) and all(is_positive_int(c) and c % 2 == 0 for c in chans),
                    "num_channels", f"stage {i} widths must be positive even integers, got {chans!r}")
            require(len(chans) == self.num_branches[i], "num_branches",
                    f"stage {i} has {self.num_branches[i]} branches but num_channels lists {len(chans)} widths")
            prev = len(self.num_channels[i - 1]) if i else 1
            require(prev <= len(chans), "num_branches", f"stage {i} has fewer branches than the stage before it")
            require(is_positive_int(self.num_modules[i]), "num_modules",
                    f"must be positive integers, got {self.num_modules!r}")
            require(is_positive_int(self.num_blocks[i]), "num_blocks",
                    f"must be positive integers, got {self.num_blocks!r}")
            require(isinstance(self.module_type[i], str) and self.module_type[i].upper() in MODULE_TYPES,
                    "module_type", f"must be LITE or NAIVE per stage, got {self.module_type!r}")
            require(isinstance(self.with_fuse[i], bool), "with_fuse", f"must be booleans, got {self.with_fuse!r}")
            require(is_positive_int(self.reduce_ratios[i]) and sum(chans) // 2 >= self.reduce_ratios[i],
                    "reduce_ratios",
                    f"must be positive integers no larger than half the stage width, got {self.reduce_ratios!r}")
        require(len(self.num_channels[0]) >= 1, "num_channels", "stage 0 needs at least one branch")
        require(isinstance(self.with_head, bool), "with_head", f"must be a boolean, got {self.with_head!r}")
        require(isinstance(self.ccw_cross_resolution, bool), "ccw_cross_resolution", "must be a boolean")
        require(isinstance(self.ccw_spatial, bool), "ccw_spatial", "must be a boolean")
        require(self.shuffle_pointwise in (0, 1, 2) and not isinstance(self.shuffle_pointwise, bool),
                "shuffle_pointwise",
                f"must be 0, 1 or 2 (1x1 convs kept per shuffle block), got {self.shuffle_pointwise!r}")
        for chans in self.num_channels:
            for c in chans:
                require(c // 2 >= 4, "num_channels", f"width {c} is too small (spatial weighting needs >= 8)")

    def build_backbone(self) -> LiteHRNet:
        self.validate()
        return LiteHRNet(self)


class LiteHRNet(HRBackbone):
    """Lite-HRNet / naive Lite-HRNet backbone (Table 1): stem, three stages of LITE (two CCW
    blocks per module) or NAIVE (shuffle-block stacks per branch) modules with multi-resolution
    fusion, and the iterative head; returns the 1/4-resolution branch. Official init."""

    def __init__(self, cfg: LiteHRNetConfig) -> None:
        stem = lite_stem(cfg.in_channels, cfg.stem_channels, cfg.stem_out_channels, cfg.stem_expand_ratio)

        def build_stage(i: int, chans: tuple[int, ...]) -> nn.Module:
            if cfg.module_type[i].upper() == "LITE":
                def layers() -> nn.Module:
                    return MultiBranchSequential(*[
                        ConditionalChannelWeighting(chans, cfg.reduce_ratios[i],
                                                    with_cross_resolution=cfg.ccw_cross_resolution,
                                                    with_spatial=cfg.ccw_spatial)
                        for _ in range(cfg.num_blocks[i])])
            else:
                def layers() -> nn.Module:
                    return PerBranch([nn.Sequential(*[ShuffleBlock(c, cfg.shuffle_pointwise)
                                                      for _ in range(cfg.num_blocks[i])]) for c in chans])
            return make_stage(chans, cfg.num_modules[i], layers, with_fuse=cfg.with_fuse[i])

        super().__init__(stem, cfg.num_channels, build_stage, with_head=cfg.with_head)
        self.config = cfg
        init_weights_official(self)
