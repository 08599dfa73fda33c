"""Dite-HRNet (Li et al., IJCAI-ECAI 2022): DMC and DGC blocks, the backbone and its configuration.

Facts from the paper (Section 3, Figure 2, Tables 1, 5, 6) and the official code and configs
(github ZiyiZhang27/Dite-HRNet); the high-resolution skeleton (transitions, fusion, iterative
head) is shared with Lite-HRNet in :mod:`hrbench.models.hr_modules` and the stem in
:mod:`hrbench.models.stem`. Module paths equal the official ones, so official checkpoints load
key for key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import nn

from hrbench.config import ModelConfig, is_positive_int, require
from hrbench.models.context import DenseContextModeling, GlobalContextModeling
from hrbench.models.dynamic import ConvNorm, DynamicSplitConvolution
from hrbench.models.hr_modules import HRBackbone, MultiBranchSequential, init_weights_official, make_stage
from hrbench.models.litehrnet import ConditionalChannelWeighting
from hrbench.models.separable import channel_shuffle
from hrbench.models.shapes import Shape
from hrbench.models.stem import ShuffleStem, lite_stem


class DynamicMultiScaleContextBlock(nn.Module):
    """DMC block (Section 3, Figure 2): split every branch's channels in two halves; the second
    halves go through DCM (across branches), then per branch DSC (G groups, N kernels) and GCM;
    concatenate with the first halves and channel-shuffle (2 groups).

    With G = N = 1 the DSC is a plain 3x3 depth-wise conv + BN: Lite-HRNet's CCW block with ACM
    in place of its two weightings (Table 6, "with ACM").
    """

    def __init__(self, channels: Sequence[int], groups: Sequence[int], kernels: Sequence[int], dcm_reduction: int,
                 gcm_reductions: Sequence[int], dka_reduction: int = 4) -> None:
        super().__init__()
        half = [c // 2 for c in channels]
        self.dcm = DenseContextModeling(half, dcm_reduction)
        self.conv = nn.ModuleList(
            DynamicSplitConvolution(c, groups[b], kernels[b], reduction=dka_reduction) for b, c in enumerate(half))
        self.gcm = nn.ModuleList(GlobalContextModeling(c, gcm_reductions[b]) for b, c in enumerate(half))

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        halves = [x.chunk(2, dim=1) for x in xs]
        x2 = self.dcm([h[1] for h in halves])
        x2 = [gcm(conv(x)) for x, conv, gcm in zip(x2, self.conv, self.gcm, strict=True)]
        return [channel_shuffle(torch.cat((h[0], y), dim=1), 2) for h, y in zip(halves, x2, strict=True)]

    def walk(self, w, xs: list[Shape]) -> list[Shape]:
        x2 = w(self.dcm, [(s[0], s[1] // 2, s[2], s[3]) for s in xs])
        x2 = [w(gcm, w(conv, x)) for x, conv, gcm in zip(x2, self.conv, self.gcm, strict=True)]
        return [(s[0], s[1] // 2 + y[1], y[2], y[3]) for s, y in zip(xs, x2, strict=True)]


class SplitConvChannelWeighting(ConditionalChannelWeighting):
    """Lite-HRNet's CCW block whose 3x3 depth-wise convs are replaced by DSC (Table 6, "with DSC")."""

    def __init__(self, channels: Sequence[int], reduce_ratio: int, groups: Sequence[int], kernels: Sequence[int],
                 dka_reduction: int = 4) -> None:
        super().__init__(tuple(channels), reduce_ratio)
        self.depthwise_convs = nn.ModuleList(
            DynamicSplitConvolution(c // 2, groups[b], kernels[b], reduction=dka_reduction)
            for b, c in enumerate(channels))


def dynamic_global_context_stem(in_channels: int, stem_channels: int, num_kernels: int = 4,
                                gcm_reduction: int = 4, dka_reduction: int = 4) -> ShuffleStem:
    """Stage 1 of Dite-HRNet (Table 1): a 3x3/2 conv + BN + ReLU, then the DGC block (Figure 2).

    DGC: the channels are split in two; one half goes through a 3x3/2 depth-wise conv + BN, GCM
    and a 1x1 conv + BN + ReLU; the other through a 3x3 depth-wise conv + BN, GCM, a 1x1 conv
    (to a quarter of the width) + BN + ReLU, a 1x1 conv back + BN and a 3x3/2 depth-wise conv +
    BN + ReLU; concatenation and channel shuffle. Every DGC convolution uses DKA (N kernels).
    """
    half = stem_channels // 2
    mid = half // 4

    def conv(cin: int, cout: int, k: int, stride: int = 1, depthwise: bool = False, relu: bool = False) -> ConvNorm:
        return ConvNorm(cin, cout, k, stride, k // 2, groups=cin if depthwise else 1, num_kernels=num_kernels,
                        relu=relu, reduction=dka_reduction)

    conv1 = ConvNorm(in_channels, stem_channels, 3, stride=2, padding=1, relu=True)
    branch1 = nn.Sequential(
        conv(half, half, 3, stride=2, depthwise=True),
        GlobalContextModeling(half, gcm_reduction),
        conv(half, half, 1, relu=True),
    )
    branch2 = nn.Sequential(
        conv(half, half, 3, depthwise=True),
        GlobalContextModeling(half, gcm_reduction),
        conv(half, mid, 1, relu=True),
        conv(mid, half, 1),
        conv(half, half, 3, stride=2, depthwise=True, relu=True),
    )
    return ShuffleStem(conv1, branch1, branch2, 2 * half)


STEMS = ("dgc", "lite")
PER_BRANCH = ("groups", "kernels", "gcm_reductions")
CONTEXTS = ("acm", "ccw")


@dataclasses.dataclass(frozen=True)
class DiteHRNetConfig(ModelConfig):
    """Every hyper-parameter of Dite-HRNet (defaults: Dite-HRNet-18, official config).

    Per-branch tuples (``groups`` G, ``kernels`` N, ``gcm_reductions``) list the branches from
    the highest to the lowest resolution; per-stage tuples list the stages in order.
    ``stem`` = "dgc" (Dite-HRNet) or "lite" (Lite-HRNet's stem, Table 6 ablations);
    ``context`` = "acm" (DCM + GCM, the DMC block) or "ccw" (Lite-HRNet's cross-resolution and
    spatial weighting around a DSC, Table 6 "with DSC"). ``fuse_relu_inplace`` reproduces the
    official Dite-HRNet fusion, whose in-place ReLU also rewrites the highest branch before the
    lower outputs read it (Lite-HRNet's is out of place).
    """

    in_channels: int = 3
    stem: str = "dgc"
    stem_channels: int = 32
    stem_kernels: int = 4
    stem_gcm_reduction: int = 4
    stem_expand_ratio: float = 1.0
    num_modules: tuple[int, ...] = (2, 4, 2)
    num_blocks: tuple[int, ...] = (2, 2, 2)
    num_channels: tuple[tuple[int, ...], ...] = ((40, 80), (40, 80, 160), (40, 80, 160, 320))
    with_fuse: tuple[bool, ...] = (True, True, True)
    with_head: bool = True
    context: str = "acm"
    groups: tuple[int, ...] = (1, 1, 2, 4)
    kernels: tuple[int, ...] = (4, 4, 2, 1)
    dka_reduction: int = 4
    gcm_reductions: tuple[int, ...] = (4, 4, 8, 8)
    dcm_reductions: tuple[int, ...] = (8, 8, 8)
    reduce_ratios: tuple[int, ...] = (8, 8, 8)
    fuse_relu_inplace: bool = True

    def override(self, **overrides):
        """As :meth:`ModelConfig.override`; a single integer for a per-branch parameter
        (``groups``, ``kernels``, ``gcm_reductions``) applies to every branch."""
        chans = overrides.get("num_channels", self.num_channels)
        nb = max((len(c) for c in chans if isinstance(c, (tuple, list))), default=0) if isinstance(
            chans, (tuple, list)) else 0
        for key in PER_BRANCH:
            value = overrides.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and nb:
                overrides[key] = (value,) * nb
        return super().override(**overrides)

    @property
    def num_branches(self) -> int:
        return max(len(c) for c in self.num_channels) if self.num_channels else 0

    def validate(self) -> None:
        """One :class:`~hrbench.errors.ConfigError` naming the first invalid hyper-parameter: the stem,
        the per-stage and per-branch tuples, every stage's widths, then ``dka_reduction``."""
        self._validate_stem()
        self._validate_layout()
        self._validate_stage_widths()
        self._validate_dka_reduction()

    def _int_tuple(self, name: str, n: int, what: str) -> None:
        value = getattr(self, name)
        require(isinstance(value, tuple) and len(value) == n, name, f"needs {n} values ({what}), got {value!r}")
        require(all(is_positive_int(v) for v in value), name, f"must be integers >= 1, got {value!r}")

    def _validate_stem(self) -> None:
        """Input, stem and block-kind parameters; the DGC stem (Fig. 2) or Lite-HRNet's stem."""
        require(is_positive_int(self.in_channels), "in_channels",
                f"must be a positive integer, got {self.in_channels!r}")
        require(self.stem in STEMS, "stem", f"must be one of {', '.join(STEMS)}, got {self.stem!r}")
        require(self.context in CONTEXTS, "context", f"must be one of {', '.join(CONTEXTS)}, got {self.context!r}")
        require(is_positive_int(self.stem_channels) and self.stem_channels % 2 == 0, "stem_channels",
                f"must be a positive even integer, got {self.stem_channels!r}")
        require(is_positive_int(self.stem_kernels), "stem_kernels",
                f"must be an integer >= 1, got {self.stem_kernels!r}")
        require(is_positive_int(self.dka_reduction), "dka_reduction",
                f"must be a positive integer, got {self.dka_reduction!r}")
        require(is_positive_int(self.stem_gcm_reduction), "stem_gcm_reduction",
                f"must be a positive integer, got {self.stem_gcm_reduction!r}")
        if self.stem == "dgc":
            half = self.stem_channels // 2
            require(half // 4 >= 1, "stem_channels", f"must be at least 8 for the DGC block, got {self.stem_channels}")
            require(half // self.stem_gcm_reduction >= 1, "stem_gcm_reduction",
                    f"{self.stem_gcm_reduction} leaves no hidden unit for {half} channels")
        else:
            require(isinstance(self.stem_expand_ratio, (int, float)) and not isinstance(self.stem_expand_ratio, bool)
                    and round(self.stem_channels * self.stem_expand_ratio) >= 1, "stem_expand_ratio",
                    f"must be a positive number, got {self.stem_expand_ratio!r}")

    def _validate_layout(self) -> None:
        """The shapes of the per-stage and per-branch tuples and the switches."""
        require(isinstance(self.num_channels, tuple) and len(self.num_channels) >= 1
                and all(isinstance(c, tuple) and len(c) >= 1 for c in self.num_channels), "num_channels",
                "must be a tuple of per-stage channel tuples")
        n_stages = len(self.num_channels)
        for name in ("num_modules", "num_blocks", "dcm_reductions", "reduce_ratios"):
            self._int_tuple(name, n_stages, "one per stage")
        require(isinstance(self.with_fuse, tuple) and len(self.with_fuse) == n_stages
                and all(isinstance(v, bool) for v in self.with_fuse), "with_fuse",
                f"needs {n_stages} booleans (one per stage), got {self.with_fuse!r}")
        require(isinstance(self.with_head, bool), "with_head", f"must be a boolean, got {self.with_head!r}")
        require(isinstance(self.fuse_relu_inplace, bool), "fuse_relu_inplace", "must be a boolean")
        what = f"one per resolution branch, highest first; the network has {self.num_branches} branches"
        for name in PER_BRANCH:
            self._int_tuple(name, self.num_branches, what)

    def _validate_stage_widths(self) -> None:
        """Every stage's widths against its branches' G (SCS groups) and context reductions."""
        groups, gcm_r = self.groups, self.gcm_reductions
        prev = 1
        for s, chans in enumerate(self.num_channels):
            require(all(is_positive_int(c) and c % 2 == 0 for c in chans), "num_channels",
                    f"stage {s} widths must be positive even integers, got {chans!r}")
            require(len(chans) >= prev, "num_channels", f"stage {s} has fewer branches than the stage before it")
            prev = len(chans)
            half = [c // 2 for c in chans]
            for b, c in enumerate(half):
                require(c % groups[b] == 0, "groups",
                        f"G={groups[b]} on branch {b} does not divide its {c} split channels (stage {s})")
                if self.context == "acm":
                    require(c // gcm_r[b] >= 1, "gcm_reductions", f"{gcm_r[b]} leaves no hidden unit on branch {b}")
                else:
                    require(c >= 4, "num_channels", f"width {chans[b]} too small for spatial weighting")
            ratio = self.dcm_reductions[s] if self.context == "acm" else self.reduce_ratios[s]
            name = "dcm_reductions" if self.context == "acm" else "reduce_ratios"
            require(sum(half) // ratio >= 1, name, f"{ratio} leaves no hidden unit in stage {s}")

    def _validate_dka_reduction(self) -> None:
        """``dka_reduction`` leaves a hidden unit in every DKA attention (Sec. 3.1, Eq. 3)."""
        inputs = [(c, where) for c, where in self.dka_inputs() if c != 3]  # 3 channels: N hidden units
        if inputs:
            narrowest, where = min(inputs)
            require(self.dka_reduction <= narrowest, "dka_reduction",
                    f"must be an integer from 1 to {narrowest} (the DKA attention's hidden width is its input "
                    f"channels // dka_reduction; the narrowest input, {where}, has {narrowest} channels), "
                    f"got {self.dka_reduction}")

    def dka_inputs(self) -> list[tuple[int, str]]:
        """(input channels, where) of every DKA attention (Sec. 3.1, Eq. 3) this config builds:
        the DGC stem's convolutions when ``stem_kernels`` > 1, each DSC group's when N > 1."""
        out: list[tuple[int, str]] = []
        if self.stem == "dgc" and self.stem_kernels > 1:
            half = self.stem_channels // 2
            out += [(half, "the DGC stem's half width"), (half // 4, "the DGC stem's bottleneck")]
        for s, chans in enumerate(self.num_channels):
            for b, c in enumerate(chans):
                if self.kernels[b] > 1:
                    g = self.groups[b]
                    out.append(((c // 2) // g, f"stage {s} branch {b}: {c // 2} split channels in G={g} groups"))
        return out

    def build_backbone(self) -> DiteHRNet:
        self.validate()
        return DiteHRNet(self)


class DiteHRNet(HRBackbone):
    """Dite-HRNet backbone (Table 1): the DGC stem, stages of modules of DMC blocks with
    multi-resolution fusion, and the iterative head (official ``with_head=True``); returns the
    1/4-resolution branch. Official initialisation."""

    def __init__(self, cfg: DiteHRNetConfig) -> None:
        if cfg.stem == "dgc":
            stem = dynamic_global_context_stem(cfg.in_channels, cfg.stem_channels, cfg.stem_kernels,
                                               cfg.stem_gcm_reduction, cfg.dka_reduction)
        else:
            stem = lite_stem(cfg.in_channels, cfg.stem_channels, cfg.stem_channels, cfg.stem_expand_ratio)

        def block(s: int, chans: tuple[int, ...]) -> nn.Module:
            if cfg.context == "acm":
                return DynamicMultiScaleContextBlock(chans, cfg.groups, cfg.kernels, cfg.dcm_reductions[s],
                                                     cfg.gcm_reductions, cfg.dka_reduction)
            return SplitConvChannelWeighting(chans, cfg.reduce_ratios[s], cfg.groups, cfg.kernels, cfg.dka_reduction)

        def build_stage(s: int, chans: tuple[int, ...]) -> nn.Module:
            def layers() -> nn.Module:
                return MultiBranchSequential(*[block(s, chans) for _ in range(cfg.num_blocks[s])])

            return make_stage(chans, cfg.num_modules[s], layers, with_fuse=cfg.with_fuse[s],
                              relu_inplace=cfg.fuse_relu_inplace)

        super().__init__(stem, cfg.num_channels, build_stage, with_head=cfg.with_head)
        self.config = cfg
        init_weights_official(self)
