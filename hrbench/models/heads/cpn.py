"""Cascaded Pyramid Network's two stages (Chen et al., CVPR 2018, Sec. 3.1 and Fig. 1), as the
official tf-cpn ``models/COCO.res50.256x192.CPN/network.py`` builds them on ResNet's C2..C5.

* **GlobalNet** (``create_global_net``), from C5 down to C2: a ``lateral`` 1x1 conv -> 256 + BN + ReLU
  on each level; the coarser running map is bilinearly resized to the level's size and goes through
  an ``upsample`` 1x1 conv 256 -> 256 *with bias, no BN, no ReLU* (outside the official arg scope),
  then is added to the lateral. Each level's map is one of the pyramid features the RefineNet takes;
  during training each also ``predict``-s heatmaps: 1x1 conv 256 + BN + ReLU, 3x3 conv -> K + BN,
  resized to 1/4 of the input (the four GlobalNet outputs, L2 loss).
* **RefineNet** (``create_refine_net``): level i (C2..C5) goes through i bottlenecks 256 -> 128 -> 256
  with identity shortcut ("no projection"), is resized to 1/4, the four are concatenated (1024 ch), a
  final bottleneck 1024 -> 128 -> 256 (1x1 projection shortcut), ``refine_out`` 3x3 conv -> K + BN.

Output unit: the official heatmaps / 255 (:mod:`hrbench.codecs.cpn`), so the last BN of each prediction
starts at scale 1/255, the official initialisation (scale 1) in that unit.

In training the head returns ``(refine, global_c2, global_c3, global_c4, global_c5)``, the outputs its
codec (:class:`hrbench.codecs.cpn.CPNHeatmap`) supervises; in eval mode only the RefineNet heatmaps
(the official test graph's ``refine_out``; GlobalNet's predictions are not computed), so evaluation,
export, bench and profile see one output as for every other head.

Resizing: PyTorch's half-pixel bilinear (``align_corners=False``); TF1's ``resize_bilinear`` maps
``src = dst * scale`` (a sub-pixel shift), which matters only for official TF weights (not ported).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hrbench.codecs import Codec
from hrbench.codecs.cpn import PEAK
from hrbench.errors import ConfigError
from hrbench.models.heads.base import Head, register_head
from hrbench.models.resnet_blocks import Bottleneck, conv_bn_relu, init_weights, projection


class RefineBottleneck(Bottleneck):
    """tf-slim's ``bottleneck(depth=256, depth_bottleneck=128)``: 1x1 -> 128, 3x3, 1x1 -> 256 (x2 expansion)."""

    expansion = 2


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return x if tuple(x.shape[-2:]) == tuple(size) else F.interpolate(x, size=size, mode="bilinear",
                                                                      align_corners=False)


class GlobalNet(nn.Module):
    """CPN's feature pyramid with one heatmap prediction per level (paper Sec. 3.2); index 0 is C2."""

    def __init__(self, in_channels: tuple[int, ...], num_keypoints: int, channels: int = 256) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(conv_bn_relu(c, channels, 1) for c in in_channels)
        self.upsample = nn.ModuleList(nn.Conv2d(channels, channels, 1) for _ in in_channels[:-1])
        self.predict = nn.ModuleList(
            nn.Sequential(conv_bn_relu(channels, channels, 1),
                          nn.Conv2d(channels, num_keypoints, 3, padding=1, bias=False), nn.BatchNorm2d(num_keypoints))
            for _ in in_channels)

    def forward(self, feats: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        """C2..C5 -> the pyramid features (256 ch, same sizes), coarse to fine as the official loop."""
        fms: list[torch.Tensor] = [feats[0]] * len(feats)
        last = None
        for i in reversed(range(len(feats))):
            lateral = self.lateral[i](feats[i])
            last = lateral if last is None else self.upsample[i](_resize(last, lateral.shape[-2:])) + lateral
            fms[i] = last
        return fms

    def predictions(self, fms: list[torch.Tensor], size: tuple[int, int]) -> list[torch.Tensor]:
        """The four GlobalNet heatmaps, each resized to ``size`` (1/4 of the input)."""
        return [_resize(self.predict[i](fm), size) for i, fm in enumerate(fms)]

    def walk(self, w, feats):
        fms: list = [feats[0]] * len(feats)
        last = None
        for i in reversed(range(len(feats))):
            lateral = w(self.lateral[i], feats[i])
            last = lateral if last is None else w(self.upsample[i], (*last[:2], *lateral[2:]))
            fms[i] = last
        return fms


class RefineNet(nn.Module):
    """CPN's RefineNet (paper Sec. 3.3): i bottlenecks on level i, resize, concat, final bottleneck, 3x3 -> K + BN."""

    def __init__(self, levels: int, num_keypoints: int, channels: int = 256, bottleneck: int = 128) -> None:
        super().__init__()
        if channels != bottleneck * RefineBottleneck.expansion:
            raise ConfigError(f"invalid CPN widths: the RefineNet bottleneck ({bottleneck}) must be half the "
                              f"pyramid width ({channels}), as tf-slim's bottleneck(256, 128)")
        self.refine = nn.ModuleList(nn.Sequential(*(RefineBottleneck(channels, bottleneck) for _ in range(i)))
                                    if i else nn.Identity() for i in range(levels))
        self.final_bottleneck = RefineBottleneck(levels * channels, bottleneck,
                                                 downsample=projection(levels * channels, channels))
        self.refine_out = nn.Sequential(nn.Conv2d(channels, num_keypoints, 3, padding=1, bias=False),
                                        nn.BatchNorm2d(num_keypoints))

    def forward(self, fms: list[torch.Tensor]) -> torch.Tensor:
        size = tuple(fms[0].shape[-2:])
        x = torch.cat([_resize(self.refine[i](fm), size) for i, fm in enumerate(fms)], dim=1)
        return self.refine_out(self.final_bottleneck(x))

    def walk(self, w, fms):
        size = fms[0][2:]
        outs = [w(self.refine[i], fm) for i, fm in enumerate(fms)]
        x = (outs[0][0], sum(o[1] for o in outs), *size)
        return w(self.refine_out, w(self.final_bottleneck, x))


@register_head("cpn")
class CPNHead(Head):
    """GlobalNet + RefineNet on a ResNet's C2..C5 (the backbone returns them as a tuple, finest first,
    C5 last); ``in_channels`` is C5's width, ``pyramid_channels`` the levels' widths (C2..C5). A
    backbone giving one map (a tensor) is a pyramid of one level (the default ``pyramid_channels``)."""

    codec_name = "cpn"

    def __init__(self, in_channels: int, num_keypoints: int, codec: Codec | str | None = None,
                 pyramid_channels: tuple[int, ...] | None = None, channels: int = 256,
                 bottleneck: int = 128) -> None:
        super().__init__(in_channels, num_keypoints, codec)
        pyramid_channels = (in_channels,) if pyramid_channels is None else tuple(pyramid_channels)
        if not pyramid_channels or pyramid_channels[-1] != in_channels:
            raise ConfigError(f"CPN head: the last pyramid width {tuple(pyramid_channels)} must be the backbone's "
                              f"C5 width {in_channels}")
        self.global_net = GlobalNet(tuple(pyramid_channels), num_keypoints, channels)
        self.refine_net = RefineNet(len(pyramid_channels), num_keypoints, channels, bottleneck)
        init_weights(self)  # Kaiming-normal convs, BN 1 / 0, bias 0
        for m in (*self.global_net.lateral, *self.global_net.upsample, *self.global_net.predict,
                  self.refine_net.refine_out):  # the official explicit xavier_initializer convs
            for conv in (m.modules() if isinstance(m, nn.Sequential) else (m,)):
                if isinstance(conv, nn.Conv2d):
                    nn.init.xavier_uniform_(conv.weight)
        for out in (*self.global_net.predict, self.refine_net.refine_out):  # the heatmaps' last BN
            nn.init.constant_(out[-1].weight, 1.0 / PEAK)  # the official BN (scale 1) in units of the 255 peak

    def forward(self, feats: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor | tuple[torch.Tensor, ...]:
        fms = self.global_net((feats,) if isinstance(feats, torch.Tensor) else feats)
        refine = self.refine_net(fms)
        if not self.training:
            return refine
        return (refine, *self.global_net.predictions(fms, tuple(refine.shape[-2:])))

    def walk(self, w, feats):
        """The eval forward (what every counter counts): GlobalNet features, RefineNet."""
        feats = (feats,) if isinstance(feats[0], int) else feats  # one shape: a one-level pyramid
        return w(self.refine_net, self.global_net.walk(w, feats))
