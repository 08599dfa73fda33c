"""CSPNeXt, the backbone of RTMPose (Jiang et al., 2023, arXiv 2303.07399, Sec. 3.1; RTMDet's backbone),
as the official configs build it (mmpose 1.x @759b39c ``projects/rtmpose/rtmpose/body_2d_keypoint/
rtmpose-{t,s,m}_8xb256-420e_coco-256x192.py`` lines 63-79: ``CSPNeXt(arch='P5', expand_ratio=0.5,
channel_attention=True, out_indices=(4,), norm_cfg=SyncBN, act_cfg=SiLU)``, deepen / widen factors
t 0.167 / 0.375, s 0.33 / 0.5, m 0.67 / 0.75). The configs take it from mmdet's scope; the layer facts
below were read in mmpose's copy (``mmpose/models/backbones/cspnext.py``, ``mmpose/models/utils/csp_layer.py``,
``mmpose/models/backbones/csp_darknet.py``):

* stem: three 3x3 conv + BN + SiLU, 3 -> 64w/2 (stride 2) -> 64w/2 -> 64w (cspnext.py 104-128);
* stage i (P5 table, cspnext.py 57-58): 3x3/2 conv + BN + SiLU, c_in -> c_out (64/128, 128/256,
  256/512, 512/1024, times w), then in the last stage the SPP bottleneck (1x1 to c/2, max-pools 5, 9,
  13 side by side, concat, 1x1; csp_darknet.py 85-122 — parallel pools, not the chained SPPF), then the
  CSP layer with max(round(n d), 1) CSPNeXt blocks (n = 3, 6, 6, 3; cspnext.py 131-169);
* CSP layer (csp_layer.py 208-273): 1x1 ``main_conv`` and ``short_conv`` to c/2, the blocks on the
  main path, concat, channel attention (global average pool, 1x1 conv with bias, hard sigmoid, scale;
  lines 12-36), 1x1 ``final_conv``;
* CSPNeXt block (csp_layer.py 133-177): 3x3 conv + BN + SiLU, then a depthwise-separable 5x5 (depthwise
  5x5 + BN + SiLU, pointwise 1x1 + BN + SiLU); identity added except in the last stage.

Every conv is bias-free before its BN (mmcv ``ConvModule``; keys ``conv``, ``bn``); BN is the configs'
``SyncBN`` with PyTorch's defaults (eps 1e-5, momentum 0.1), not the backbone's default (eps 1e-3,
momentum 0.03), which the configs override. Returns the 1/32 features (stride 32), 1024w channels.
Convolutions keep PyTorch's default init (mmdet's ``Kaiming(a=sqrt(5), uniform, fan_in)`` is that
init; the official runs start from CSPNeXt weights pre-trained on AIC + COCO, hrbench from scratch).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch import nn

from hrbench.config import ModelConfig, is_positive_int, require
from hrbench.errors import HrbenchError
from hrbench.models.backbone import Backbone
from hrbench.models.separable import ConvBNAct
from hrbench.models.shapes import Shape, require_multiple

#: P5 stages (cspnext.py 57-58): (c_in, c_out, blocks, identity in the blocks, SPP bottleneck).
P5 = ((64, 128, 3, True, False), (128, 256, 6, True, False), (256, 512, 6, True, False),
      (512, 1024, 3, False, True))


def conv_unit(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1) -> ConvBNAct:
    """mmcv ``ConvModule`` with the configs' BN and SiLU: k x k conv (no bias) + BN + SiLU."""
    return ConvBNAct(c_in, c_out, k, stride, k // 2, groups=groups, act="silu")


class DepthwiseSeparable(nn.Module):
    """mmcv ``DepthwiseSeparableConvModule``: depthwise k x k + BN + SiLU, pointwise 1x1 + BN + SiLU."""

    def __init__(self, c_in: int, c_out: int, k: int) -> None:
        super().__init__()
        self.depthwise_conv = conv_unit(c_in, c_in, k, groups=c_in)
        self.pointwise_conv = conv_unit(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))

    def walk(self, w, x: Shape) -> Shape:
        return w(self.pointwise_conv, w(self.depthwise_conv, x))


class CSPNeXtBlock(nn.Module):
    """3x3 conv, then the large-kernel (5x5) depthwise-separable conv; identity shortcut if ``identity``."""

    def __init__(self, channels: int, identity: bool, kernel: int = 5) -> None:
        super().__init__()
        self.conv1 = conv_unit(channels, channels, 3)
        self.conv2 = DepthwiseSeparable(channels, channels, kernel)
        self.add_identity = identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        return out + x if self.add_identity else out

    def walk(self, w, x: Shape) -> Shape:
        return w(self.conv2, w(self.conv1, x))  # the shortcut is a functional add


class ChannelAttention(nn.Module):
    """Global average pool, 1x1 conv (with bias), hard sigmoid, channel-wise scale of the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Conv2d(channels, channels, 1, bias=True)
        self.act = nn.Hardsigmoid(inplace=True)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.act(self.fc(self.global_avgpool(x)))

    def walk(self, w, x: Shape) -> Shape:
        w(self.act, w(self.fc, w(self.global_avgpool, x)))
        return x  # the scale is a functional mul


class CSPLayer(nn.Module):
    """Cross-stage partial layer: two 1x1 halves, blocks on one, concat, channel attention, 1x1."""

    def __init__(self, channels: int, blocks: int, identity: bool) -> None:
        super().__init__()
        mid = int(channels * 0.5)  # expand_ratio 0.5
        self.main_conv = conv_unit(channels, mid, 1)
        self.short_conv = conv_unit(channels, mid, 1)
        self.final_conv = conv_unit(2 * mid, channels, 1)
        self.blocks = nn.Sequential(*[CSPNeXtBlock(mid, identity) for _ in range(blocks)])
        self.attention = ChannelAttention(2 * mid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        short = self.short_conv(x)
        main = self.blocks(self.main_conv(x))
        return self.final_conv(self.attention(torch.cat((main, short), dim=1)))

    def walk(self, w, x: Shape) -> Shape:
        short = w(self.short_conv, x)
        main = w(self.blocks, w(self.main_conv, x))
        cat = (x[0], main[1] + short[1], *x[2:])
        return w(self.final_conv, w(self.attention, cat))


class SPPBottleneck(nn.Module):
    """1x1 conv to c/2, max-pools 5, 9, 13 (stride 1) beside the input, concat (4 x c/2), 1x1 conv."""

    def __init__(self, channels: int, kernels: tuple[int, ...] = (5, 9, 13)) -> None:
        super().__init__()
        mid = channels // 2
        self.conv1 = conv_unit(channels, mid, 1)
        self.poolings = nn.ModuleList([nn.MaxPool2d(k, stride=1, padding=k // 2) for k in kernels])
        self.conv2 = conv_unit(mid * (len(kernels) + 1), channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(torch.cat([x] + [pool(x) for pool in self.poolings], dim=1))

    def walk(self, w, x: Shape) -> Shape:
        x = w(self.conv1, x)
        for pool in self.poolings:
            w(pool, x)
        return w(self.conv2, (x[0], x[1] * (len(self.poolings) + 1), *x[2:]))


class CSPNeXt(Backbone):
    """CSPNeXt P5 (``stem``, ``stage1``..``stage4``); returns the stage-4 (1/32) features."""

    out_stride = 32

    def __init__(self, cfg: CSPNeXtConfig) -> None:
        super().__init__()
        self.cfg = cfg
        wf = cfg.widen_factor
        half, first = int(P5[0][0] * wf // 2), int(P5[0][0] * wf)
        self.stem = nn.Sequential(conv_unit(3, half, 3, 2), conv_unit(half, half, 3), conv_unit(half, first, 3))
        for i, (c_in, c_out, n, identity, spp) in enumerate(P5):
            c_in, c_out = int(c_in * wf), int(c_out * wf)
            layers: list[nn.Module] = [conv_unit(c_in, c_out, 3, 2)]
            if spp:
                layers.append(SPPBottleneck(c_out))
            layers.append(CSPLayer(c_out, max(round(n * cfg.deepen_factor), 1), identity))
            self.add_module(f"stage{i + 1}", nn.Sequential(*layers))
        self.out_channels = int(P5[-1][1] * wf)

    @property
    def stages(self) -> list[nn.Module]:
        return [getattr(self, f"stage{i + 1}") for i in range(len(P5))]

    def check_input_size(self, h: int, w: int) -> None:
        require_multiple(h, w, 32, "five stride-2 convolutions to the 1/32 features the RTMCC head flattens")
        if (h, w) != tuple(self.cfg.input_size):
            ih, iw = self.cfg.input_size
            raise HrbenchError(f"input {h}x{w} does not fit this model: its RTMCC head is built for {ih}x{iw} "
                               f"(a {ih // 32}x{iw // 32} feature map, {int(iw * 2)} x / {int(ih * 2)} y bins); "
                               f"build it for this input with --set input_size={h},{w}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x

    def walk(self, w, x):
        x = w(self.stem, x)
        for stage in self.stages:
            x = w(stage, x)
        return x


@dataclasses.dataclass(frozen=True)
class CSPNeXtConfig(ModelConfig):
    """RTMPose = CSPNeXt (``deepen_factor``, ``widen_factor``) + the RTMCC head
    (:mod:`hrbench.models.heads.rtmcc`), built for one ``input_size`` (H, W): the head flattens the
    (H/32) x (W/32) feature map and classifies 2W x and 2H y bins (rtmcc_head.py 103-132)."""

    head: ClassVar[str] = "rtmcc"
    deepen_factor: float = 0.167
    widen_factor: float = 0.375
    input_size: tuple[int, int] = (256, 192)
    final_kernel: int = 7
    hidden_dims: int = 256
    attention_dims: int = 128
    expansion_factor: int = 2

    def validate(self) -> None:
        for name in ("deepen_factor", "widen_factor"):
            v = getattr(self, name)
            require(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 4, name,
                    f"must be a number in (0, 4], got {v!r}")
        s = self.input_size
        require(isinstance(s, tuple) and len(s) == 2 and all(is_positive_int(v) and v % 32 == 0 for v in s),
                "input_size", f"must be 2 positive multiples of 32 (H,W), got {s!r}")
        require(is_positive_int(self.final_kernel) and self.final_kernel % 2 == 1, "final_kernel",
                f"must be an odd positive integer, got {self.final_kernel!r}")
        for name in ("hidden_dims", "attention_dims", "expansion_factor"):
            v = getattr(self, name)
            require(is_positive_int(v), name, f"must be a positive integer, got {v!r}")

    def build_backbone(self) -> nn.Module:
        return CSPNeXt(self)

    def head_options(self) -> dict:
        return {"input_hw": self.input_size, "final_kernel": self.final_kernel, "hidden_dims": self.hidden_dims,
                "attention_dims": self.attention_dims, "expansion_factor": self.expansion_factor}

    def describe(self) -> list[tuple[str, str]]:
        wf, d = self.widen_factor, self.deepen_factor
        half, first = int(64 * wf // 2), int(64 * wf)
        rows = [("stem", f"3 x 3x3 conv + BN + SiLU: 3->{half}/2, {half}->{half}, {half}->{first}")]
        for i, (c_in, c_out, n, identity, spp) in enumerate(P5):
            blocks = max(round(n * d), 1)
            rows.append((f"stage{i + 1}", f"3x3/2 conv {int(c_in * wf)}->{int(c_out * wf)}"
                         + (", SPP bottleneck (max-pool 5/9/13)" if spp else "")
                         + f", CSP layer: {blocks} x CSPNeXt block (3x3 + dw 5x5){'' if identity else ', no identity'}"
                         ", channel attention"))
        h, w = self.input_size
        rows.append(("head", f"RTMCC: {self.final_kernel}x{self.final_kernel} conv -> K, flatten {h // 32}x{w // 32}, "
                             f"ScaleNorm + linear -> {self.hidden_dims}, GAU (s={self.attention_dims}, "
                             f"e={self.expansion_factor * self.hidden_dims}), linear -> {2 * w} x / {2 * h} y bins"))
        return rows
