"""Dilation Pyramid Module (DPM) and Dilation Pyramid Net (DPN), after the slides of Liu & Guan
("Efficient High-Resolution High-Level-Semantic Representation Learning for Human Pose
Estimation"). No official code exists: this is a reconstruction (see ``architectures.md``):

- DPM (slides, "Method"): N consecutive residual bottlenecks whose 3x3 convolutions have
  dilations d_i = 2^(N-i), i = 1..N, so the receptive field is (k-1)(2^N - 1) + 1.
- DPN (slides' architecture table): ResNet stem and layer1 at 1/4, a "conv2" transition to 1/8
  (DPN_32: one 1x1/2 conv; DPN_64: ResNet-50 layer2 + 1x1 conv), n DPMs of width 4C, an x2
  upsampling back to 1/4, and the 1x1 heatmap head (:class:`hrbench.models.heads.HeatmapHead`).
- ``variant="fitted"`` (reading A, default) adds one plain bottleneck after the DPMs, which makes
  all 13 published complexity figures come out; ``variant="literal"`` (reading B) is the table
  as printed.
"""

from __future__ import annotations

import dataclasses
import re

import torch
from torch import nn

from hrbench.config import ModelConfig, require
from hrbench.errors import ConfigError
from hrbench.models.backbone import Backbone
from hrbench.models.hrnet import HRNet, HRNetConfig
from hrbench.models.resnet_blocks import Bottleneck, conv_bn_relu, init_weights, make_layer

#: The dilation schemes of the slides' ablations (Tables II, III, V).
DILATION_SCHEMES = ("dpm", "normal", "rdpm", "const:K")


def dilation_schedule(scheme: str | int, n: int) -> tuple[int, ...]:
    """Dilations d_1..d_n of one pyramid under ``scheme``.

    ``dpm``: 2^(n-i) (slides' DPM); ``normal``: all 1 (Table II); ``const:k``: all k >= 1
    (Table III's "D=k"; a bare integer k means the same); ``rdpm``: 2^(i-1) (Table V's reversed DPM).
    """
    if isinstance(scheme, bool) or not isinstance(scheme, (str, int)):
        raise ConfigError(f"invalid hyper-parameter dilation: expected one of {', '.join(DILATION_SCHEMES)}, "
                          f"got {scheme!r}")
    if isinstance(scheme, int):
        k = scheme
    else:
        s = scheme.strip().lower()
        if s == "dpm":
            return tuple(2 ** (n - i) for i in range(1, n + 1))
        if s == "rdpm":
            return tuple(2 ** (i - 1) for i in range(1, n + 1))
        if s == "normal":
            return (1,) * n
        m = re.fullmatch(r"(?:(?:const|d)\s*[:=]\s*)?([+-]?\d+)", s)
        if not m:
            raise ConfigError(f"invalid hyper-parameter dilation: expected one of {', '.join(DILATION_SCHEMES)} "
                              f"(e.g. const:2), got {scheme!r}")
        k = int(m.group(1))
    if k < 1:
        raise ConfigError(f"invalid hyper-parameter dilation: a constant dilation must be >= 1, got {scheme!r}")
    return (k,) * n


def receptive_field(dilations: tuple[int, ...], kernel: int = 3) -> int:
    """Receptive field (one axis) of a chain of stride-1 kxk convolutions with these dilations."""
    return 1 + (kernel - 1) * sum(dilations)


def pyramid_receptive_field(n: int, kernel: int = 3) -> int:
    """The slides' closed form for a DPM of n layers: (k-1)(2^n - 1) + 1."""
    return (kernel - 1) * (2 ** n - 1) + 1


class DilationPyramid(nn.Sequential):
    """Dilation Pyramid Module (slides, "Method", DPM equation): N residual bottlenecks
    (1x1 4C->C, 3x3 C->C with dilation d_i, 1x1 C->4C, identity shortcut), applied in order.

    Padding equals the dilation, so every layer keeps the spatial size, even when the
    dilation exceeds the feature map (the slides use 32 on 32x24).
    """

    def __init__(self, channels: int, planes: int, dilations: tuple[int, ...]) -> None:
        super().__init__(*(Bottleneck(channels, planes, dilation=d) for d in dilations))

    @property
    def dilations(self) -> tuple[int, ...]:
        return tuple(block.dilation for block in self)

    @property
    def receptive_field(self) -> int:
        """Receptive field of the pyramid of dilated 3x3 layers (1x1 layers add nothing)."""
        return receptive_field(self.dilations, kernel=3)


class DPN(Backbone):
    """Dilation Pyramid Net backbone (slides' architecture table, reconstructed).

    trunk (ResNet stem + layer1, or HRNet-W32's 1/4 branch) -> conv2 transition to the DPM
    resolution -> n DPMs [-> plain bottleneck (reading A)] [-> x2 bilinear upsampling].
    """

    def __init__(self, cfg: DPNConfig) -> None:
        super().__init__()
        self.cfg = cfg
        channels, planes = 4 * cfg.width, cfg.width
        stride = 2 if cfg.dpm_stride == 8 else 1
        if cfg.trunk == "resnet":
            self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
            self.layer1 = make_layer(Bottleneck, 64, 64, 3)
            trunk_channels = 256
        else:
            self.hrnet = HRNet(HRNetConfig(widths=(32, 64, 128, 256)))
            trunk_channels = self.hrnet.out_channels
        if cfg.conv2 == "layer2":
            self.layer2 = make_layer(Bottleneck, trunk_channels, 128, 4, stride=stride)
            self.transition = conv_bn_relu(512, channels, 1)
        else:
            kernel = 1 if cfg.conv2 == "conv1x1" else 3
            self.transition = conv_bn_relu(trunk_channels, channels, kernel, stride=stride)
        self.dpms = nn.Sequential(*(DilationPyramid(channels, planes, cfg.dilations())
                                    for _ in range(cfg.num_dpms)))
        self.refine = Bottleneck(channels, planes) if cfg.variant == "fitted" else None
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False) if stride == 2 else None
        self.out_channels = channels
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.cfg.trunk == "resnet":
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer1(x)
        else:
            x = self.hrnet(x)
        if self.cfg.conv2 == "layer2":
            x = self.layer2(x)
        x = self.dpms(self.transition(x))
        if self.refine is not None:
            x = self.refine(x)
        return x if self.upsample is None else self.upsample(x)

    def walk(self, w, x):
        if self.cfg.trunk == "resnet":
            x = w(self.maxpool, w(self.relu, w(self.bn1, w(self.conv1, x))))
            x = w(self.layer1, x)
        else:
            x = w(self.hrnet, x)
        if self.cfg.conv2 == "layer2":
            x = w(self.layer2, x)
        x = w(self.dpms, w(self.transition, x))
        if self.refine is not None:
            x = w(self.refine, x)
        return x if self.upsample is None else w(self.upsample, x)


VARIANTS = ("fitted", "literal")
TRUNKS = ("resnet", "hrnet_w32")
TRANSITIONS = ("layer2", "conv1x1", "conv3x3")


@dataclasses.dataclass(frozen=True)
class DPNConfig(ModelConfig):
    """DPN hyper-parameters ("DPN{num_dpms}_{width}").

    ``width``: C (DPM bottleneck width; DPM channels 4C). ``dpm_layers``: N bottlenecks per DPM.
    ``dilation``: dpm | normal | rdpm | const:k. ``conv2``: the transition to the DPM resolution
    (``layer2`` = ResNet-50 layer2 + 1x1 conv, DPN_64; ``conv1x1`` / ``conv3x3`` = one conv,
    DPN_32 and DPN2_hrnet). ``dpm_stride``: 8 (DPMs at 32x24 for 256x192, then x2 upsampling) or
    4 (Table IV's high-resolution DPMs at 64x48). ``variant``: fitted (reading A) | literal (B).
    ``trunk``: resnet (stem + layer1) | hrnet_w32 (DPN2_hrnet).
    """

    width: int = 64
    num_dpms: int = 4
    dpm_layers: int = 6
    dilation: str = "dpm"
    conv2: str = "layer2"
    dpm_stride: int = 8
    variant: str = "fitted"
    trunk: str = "resnet"

    def validate(self) -> None:
        for name in ("width", "num_dpms", "dpm_layers"):
            v = getattr(self, name)
            require(isinstance(v, int) and not isinstance(v, bool) and v >= 1, name,
                    f"must be a positive integer, got {v!r}")
        require(self.dpm_layers <= 16, "dpm_layers", f"at most 16 (dilation 2^15), got {self.dpm_layers}")
        self.dilations()
        require(self.conv2 in TRANSITIONS, "conv2", f"must be one of {', '.join(TRANSITIONS)}, got {self.conv2!r}")
        require(self.dpm_stride in (4, 8), "dpm_stride", f"must be 4 or 8, got {self.dpm_stride!r}")
        require(self.variant in VARIANTS, "variant", f"must be one of {', '.join(VARIANTS)}, got {self.variant!r}")
        require(self.trunk in TRUNKS, "trunk", f"must be one of {', '.join(TRUNKS)}, got {self.trunk!r}")
        require(not (self.trunk == "hrnet_w32" and self.conv2 == "layer2"), "conv2",
                "the hrnet_w32 trunk needs conv1x1 or conv3x3")

    def dilations(self) -> tuple[int, ...]:
        """The 3x3 dilations inside each DPM (the same for every DPM)."""
        return dilation_schedule(self.dilation, self.dpm_layers)

    def build_backbone(self) -> nn.Module:
        return DPN(self)

    def describe(self) -> list[tuple[str, str]]:
        d = self.dilations()
        rows = [("trunk", "HRNet-W32 (1/4 branch)" if self.trunk == "hrnet_w32" else "7x7/2 conv, 3x3/2 max-pool, "
                 "ResNet-50 layer1"),
                ("conv2", {"layer2": "ResNet-50 layer2 + 1x1 conv 512->4C", "conv1x1": "1x1 conv -> 4C",
                           "conv3x3": "3x3 conv -> 4C"}[self.conv2]
                 + (", stride 2" if self.dpm_stride == 8 else ", stride 1"))]
        for i in range(self.num_dpms):
            rows.append((f"DPM {i + 1}", f"{self.dpm_layers} bottlenecks {4 * self.width}-{self.width}-"
                                         f"{4 * self.width}, dilations {','.join(map(str, d))}, "
                                         f"receptive field {receptive_field(d)}"))
        if self.variant == "fitted":
            rows.append(("refine", "plain bottleneck (dilation 1), reading A of the reconstruction"))
        rows.append(("output", "x2 bilinear upsampling to 1/4" if self.dpm_stride == 8 else "1/4, no upsampling"))
        return rows
