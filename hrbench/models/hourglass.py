"""Stacked hourglass networks (Newell, Yang and Deng, "Stacked Hourglass Networks for Human Pose
Estimation", ECCV 2016), the "8-stage Hourglass" rows of Lite-HRNet Table 3, Dite-HRNet Table 2 and
DPN Table 6.

* :class:`Residual` (Sec. 3.1, Fig. 4 left): the pre-activation bottleneck "residual module",
  BN-ReLU-1x1 (C_out/2), BN-ReLU-3x3, BN-ReLU-1x1 (C_out), plus a 1x1 "skip layer" when the width
  changes; every conv with bias (Torch's default in the official ``Residual.lua``).
* :class:`Hourglass` (Sec. 3.1, Fig. 3): per level an upper branch of residuals at the level's
  resolution, a 2x2 max-pool, residuals, the next level (or, innermost, more residuals), residuals,
  nearest x2 upsampling, elementwise sum; ``depth`` levels (4: 64x48 down to 4x3 at 256x192).
* :class:`StackedHourglass` (Sec. 3.2-3.3, Fig. 2): stem (7x7/2 conv 3->64 + BN + ReLU, residual
  64->128, 2x2 max-pool, two residuals to ``num_features``), then ``num_stacks`` hourglasses, each
  followed by residuals and a 1x1 conv + BN + ReLU ("lin"); every stack predicts heatmaps (1x1
  conv to K, *intermediate supervision*); between stacks the prediction is mapped back (1x1 K->C)
  and added, with a 1x1 C->C of the features, to the stack's input.

The last stack's 1x1 prediction is the head (``stacked_heatmap``, :mod:`hrbench.models.heads.stacked`);
the intermediate ones need K, which the pose model passes with :meth:`StackedHourglass.bind_keypoints`.
In training mode the backbone returns ``(prediction_1, ..., prediction_{S-1}, features)``; in
evaluation mode only the features, so every consumer of an evaluation model sees one output.

``stem="newell"`` is the official Torch layout (``pose-hg-train`` ``src/models/hg.lua``: residuals
64->128, 128->128, 128->C); ``"bearpaw"`` the PyTorch port's (``bearpaw/pytorch-pose``
``pose/models/hourglass.py``: 64->128, 128->C, C->C).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch import nn

from hrbench.config import ModelConfig, is_positive_int, require
from hrbench.models.backbone import Backbone
from hrbench.models.shapes import require_multiple

#: The stem residuals' (in, out) widths per layout; ``C`` = ``num_features``.
STEMS = ("newell", "bearpaw")


def stem_widths(stem: str, features: int) -> tuple[tuple[int, int], ...]:
    """(C_in, C_out) of the stem's three residuals: before the max-pool, then two after it."""
    return ((64, 128), (128, 128), (128, features)) if stem == "newell" else ((64, 128), (128, features),
                                                                               (features, features))


class Residual(nn.Module):
    """The residual module (paper Fig. 4 left): ``conv_block`` (BN, ReLU, 1x1 C_in->C_out/2, BN, ReLU,
    3x3, BN, ReLU, 1x1 ->C_out) + ``skip_layer`` (identity, or a 1x1 conv when C_in != C_out)."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True) -> None:
        super().__init__()
        mid = out_channels // 2
        self.conv_block = nn.Sequential(
            nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True), nn.Conv2d(in_channels, mid, 1, bias=bias),
            nn.BatchNorm2d(mid), nn.ReLU(inplace=True), nn.Conv2d(mid, mid, 3, padding=1, bias=bias),
            nn.BatchNorm2d(mid), nn.ReLU(inplace=True), nn.Conv2d(mid, out_channels, 1, bias=bias))
        self.skip_layer = nn.Conv2d(in_channels, out_channels, 1, bias=bias) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.skip_layer is None else self.skip_layer(x)
        return self.conv_block(x) + skip

    def walk(self, w, x):
        out = w(self.conv_block, x)
        if self.skip_layer is not None:
            w(self.skip_layer, x)
        return out  # the sum is functional


def residuals(channels: int, n: int, bias: bool) -> nn.Sequential:
    """``n`` residual modules at constant width (the paper's ``nModules`` per position)."""
    return nn.Sequential(*(Residual(channels, channels, bias) for _ in range(n)))


class Hourglass(nn.Module):
    """One hourglass of ``depth`` levels (paper Fig. 3): ``up1`` + ``up2(low3(low2(low1(pool(x)))))``,
    where ``low2`` is the next level or, innermost, residuals."""

    def __init__(self, depth: int, channels: int, num_blocks: int = 1, bias: bool = True) -> None:
        super().__init__()
        self.up1 = residuals(channels, num_blocks, bias)
        self.pool = nn.MaxPool2d(2, 2)
        self.low1 = residuals(channels, num_blocks, bias)
        self.low2 = Hourglass(depth - 1, channels, num_blocks, bias) if depth > 1 else residuals(channels, num_blocks,
                                                                                                  bias)
        self.low3 = residuals(channels, num_blocks, bias)
        self.up2 = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up1(x) + self.up2(self.low3(self.low2(self.low1(self.pool(x)))))

    def walk(self, w, x):
        up1 = w(self.up1, x)
        w(self.up2, w(self.low3, w(self.low2, w(self.low1, w(self.pool, x)))))
        return up1


def lin(channels: int) -> nn.Sequential:
    """The official ``lin``: 1x1 conv (bias) + BN + ReLU."""
    return nn.Sequential(nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels), nn.ReLU(inplace=True))


class StackedHourglass(Backbone):
    """``stem``, then per stack ``hourglasses[i]``, ``residuals[i]``, ``lins[i]``; between stacks
    ``scores[i]`` (1x1 C->K, the intermediate predictions), ``remap_features[i]`` (1x1 C->C) and
    ``remap_scores[i]`` (1x1 K->C). Returns the last stack's ``lin`` features (C channels, 1/4)."""

    def __init__(self, cfg: HourglassConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c, bias = cfg.num_features, cfg.bias
        (a_in, a_out), (b_in, b_out), (c_in, c_out) = stem_widths(cfg.stem, c)
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, 7, 2, 3, bias=bias), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            Residual(a_in, a_out, bias), nn.MaxPool2d(2, 2), Residual(b_in, b_out, bias), Residual(c_in, c_out, bias))
        s = cfg.num_stacks
        self.hourglasses = nn.ModuleList(Hourglass(cfg.depth, c, cfg.num_blocks, bias) for _ in range(s))
        self.residuals = nn.ModuleList(residuals(c, cfg.num_blocks, bias) for _ in range(s))
        self.lins = nn.ModuleList(lin(c) for _ in range(s))
        self.remap_features = nn.ModuleList(nn.Conv2d(c, c, 1) for _ in range(s - 1))
        self.scores = nn.ModuleList()
        self.remap_scores = nn.ModuleList()
        self.out_channels = c
        self.num_keypoints = 0

    def bind_keypoints(self, num_keypoints: int) -> None:
        """Build the intermediate predictions (1x1 C->K) and their remaps (1x1 K->C) for K keypoints."""
        c, s = self.cfg.num_features, self.cfg.num_stacks
        self.num_keypoints = num_keypoints
        self.scores = nn.ModuleList(nn.Conv2d(c, num_keypoints, 1) for _ in range(s - 1))
        self.remap_scores = nn.ModuleList(nn.Conv2d(num_keypoints, c, 1) for _ in range(s - 1))

    def check_input_size(self, h: int, w: int) -> None:
        require_multiple(h, w, 4 * 2 ** self.cfg.depth,
                         f"stride-4 stem, then {self.cfg.depth} 2x2 max-pools in each hourglass")

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if len(self.scores) != self.cfg.num_stacks - 1:
            raise RuntimeError("StackedHourglass.bind_keypoints(K) was not called (the pose model calls it)")
        if not (torch.jit.is_tracing() or torch.jit.is_scripting()):
            self.check_input_size(int(x.shape[-2]), int(x.shape[-1]))
        x = self.stem(x)
        predictions = []
        for i in range(self.cfg.num_stacks - 1):
            y = self._stack(i, x)
            score = self.scores[i](y)
            predictions.append(score)
            x = x + self.remap_features[i](y) + self.remap_scores[i](score)
        y = self._stack(self.cfg.num_stacks - 1, x)
        return (*predictions, y) if self.training else y

    def _stack(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """Stack ``i`` up to its features: hourglass, residuals, lin."""
        return self.lins[i](self.residuals[i](self.hourglasses[i](x)))

    def walk(self, w, x):
        self.check_input_size(x[-2], x[-1])
        x = w(self.stem, x)
        for i in range(self.cfg.num_stacks):
            y = w(self.lins[i], w(self.residuals[i], w(self.hourglasses[i], x)))
            if i < self.cfg.num_stacks - 1:
                w(self.remap_scores[i], w(self.scores[i], y))
                w(self.remap_features[i], y)
        return y


@dataclasses.dataclass(frozen=True)
class HourglassConfig(ModelConfig):
    """Stacked hourglass hyper-parameters (paper Sec. 3; official ``opts.lua``): ``num_stacks`` (nStack),
    ``num_features`` (nFeats), ``depth`` (levels of each hourglass), ``num_blocks`` (nModules: residuals
    per position), ``stem`` (:data:`STEMS`), ``bias`` (every conv of the residuals and stem)."""

    head: ClassVar[str] = "stacked_heatmap"
    num_stacks: int = 8
    num_features: int = 256
    depth: int = 4
    num_blocks: int = 1
    stem: str = "newell"
    bias: bool = True

    def validate(self) -> None:
        for name in ("num_stacks", "num_features", "num_blocks"):
            value = getattr(self, name)
            require(is_positive_int(value), name, f"must be a positive integer, got {value!r}")
        require(is_positive_int(self.depth) and self.depth <= 6, "depth",
                f"must be an integer in [1, 6], got {self.depth!r}")
        require(self.num_features % 2 == 0, "num_features",
                f"must be even (the residuals halve it), got {self.num_features}")
        require(self.stem in STEMS, "stem", f"must be one of {', '.join(STEMS)}, got {self.stem!r}")
        require(isinstance(self.bias, bool), "bias", f"must be true or false, got {self.bias!r}")

    def build_backbone(self) -> nn.Module:
        return StackedHourglass(self)

    def describe(self) -> list[tuple[str, str]]:
        c = self.num_features
        stem = ", ".join(f"residual {a}->{b}" + (", 2x2 max-pool" if i == 0 else "")
                         for i, (a, b) in enumerate(stem_widths(self.stem, c)))
        return [("stem", f"7x7/2 conv 3->64 + BN + ReLU, {stem} ({self.stem} layout)"),
                ("stacks", f"{self.num_stacks} x [hourglass (depth {self.depth}, {c} ch, {self.num_blocks} residual(s) "
                           f"per position), residual, 1x1 conv + BN + ReLU]"),
                ("between stacks", "1x1 conv C->K prediction (intermediate supervision); 1x1 C->C + 1x1 K->C added"),
                ("head", "1x1 conv C->K (the last stack's prediction)")]
