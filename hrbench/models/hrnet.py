"""HRNet (Sun et al., CVPR 2019, "Deep High-Resolution Representation Learning") for pose.

A high-resolution stem, stage 1 of residual blocks at 1/4 resolution, then stages that add one
lower-resolution branch each and repeat multi-resolution modules (parallel BasicBlock branches +
standard fusion). The backbone returns the 1/4-resolution branch. Small HRNet-W16 (Lite-HRNet
paper Sec. 3, Fig. 2; its baseline) and HRNet-W32/W48 are configurations of it.

Module names follow the official pose HRNet / mmpose-0.x tree (``conv1``, ``bn1``, ``layer1``,
``transition1``, ``stage2.0.branches``, ``stage2.0.fuse_layers``, …) so checkpoints load 1:1.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from hrbench.codecs import list_codecs
from hrbench.config import ModelConfig, require
from hrbench.models.backbone import Backbone
from hrbench.models.resnet_blocks import BLOCKS, BasicBlock, conv3x3, init_weights, make_layer


class ExchangeBlock(nn.Module):
    """An exchange block (HRNet paper Sec. 3, "Network instantiation"), one multi-resolution module
    of a stage: parallel branches of residual blocks, then the exchange units of the standard fusion
    (Sec. 3, "Repeated multi-scale fusion"): lower→higher = 1x1 conv + BN + nearest upsampling;
    higher→lower = chained 3x3/2 conv + BN (+ReLU except the last); sum, then ReLU.

    ``num_outputs`` < number of branches keeps only the highest-resolution outputs (the last
    module of HRNet's final stage returns the 1/4 branch only).
    """

    def __init__(self, widths: tuple[int, ...], num_blocks: int, num_outputs: int | None = None,
                 block: type[nn.Module] = BasicBlock) -> None:
        super().__init__()
        self.widths = tuple(widths)
        n = len(widths)
        num_outputs = n if num_outputs is None else num_outputs
        self.branches = nn.ModuleList(
            make_layer(block, c, c // block.expansion, num_blocks) for c in widths)
        self.fuse_layers = nn.ModuleList()
        if n > 1:
            for i in range(num_outputs):
                row = nn.ModuleList()
                for j in range(n):
                    row.append(self._fuse_path(j, i))
                self.fuse_layers.append(row)
        self.relu = nn.ReLU(inplace=False)

    def _fuse_path(self, src: int, dst: int) -> nn.Module | None:
        """The exchange unit from branch ``src`` to branch ``dst`` (None on the diagonal)."""
        c_src, c_dst = self.widths[src], self.widths[dst]
        if src == dst:
            return None
        if src > dst:
            return nn.Sequential(
                nn.Conv2d(c_src, c_dst, 1, bias=False),
                nn.BatchNorm2d(c_dst),
                nn.Upsample(scale_factor=2 ** (src - dst), mode="nearest"),
            )
        steps = []
        for k in range(dst - src):
            last = k == dst - src - 1
            c_out = c_dst if last else c_src
            layers: list[nn.Module] = [conv3x3(c_src, c_out, stride=2), nn.BatchNorm2d(c_out)]
            if not last:
                layers.append(nn.ReLU(inplace=False))
            steps.append(nn.Sequential(*layers))
        return nn.Sequential(*steps)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs, strict=True)]
        if len(xs) == 1:
            return xs
        outs = []
        for i, row in enumerate(self.fuse_layers):
            y = None
            for j, xj in enumerate(xs):
                t = xj if i == j else row[j](xj)
                y = t if y is None else y + t
            outs.append(self.relu(y))
        return outs

    def walk(self, w, xs):
        xs = [w(branch, x) for branch, x in zip(self.branches, xs, strict=True)]
        if len(xs) == 1:
            return xs
        outs = []
        for i, row in enumerate(self.fuse_layers):
            for j, xj in enumerate(xs):
                t = xj if i == j else w(row[j], xj)
                if tuple(t) != tuple(xs[i]):
                    raise ValueError(f"ExchangeBlock fusion {j}->{i}: shape {t} does not match {xs[i]}")
            outs.append(w(self.relu, xs[i]))
        return outs


class HRNet(Backbone):
    """The HRNet backbone: stem (two 3x3/2 convs), stage 1, transitions and multi-resolution
    stages; returns the 1/4-resolution branch of the last stage (``out_channels`` = widths[0])."""

    def __init__(self, cfg: HRNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg.stem_channels
        self.conv1 = nn.Conv2d(3, c, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        block = BLOCKS[cfg.stage1_block]
        self.layer1 = make_layer(block, c, cfg.stage1_planes, cfg.stage1_blocks)
        prev = [cfg.stage1_planes * block.expansion]
        num_stages = len(cfg.modules)
        for s in range(num_stages):
            widths = cfg.widths[: s + 2]
            setattr(self, f"transition{s + 1}", self._transition(prev, widths))
            last_stage = s == num_stages - 1
            mods = []
            for m in range(cfg.modules[s]):
                outputs = 1 if last_stage and m == cfg.modules[s] - 1 else None
                mods.append(ExchangeBlock(widths, cfg.blocks[s], num_outputs=outputs))
            setattr(self, f"stage{s + 2}", nn.Sequential(*mods))
            prev = list(widths)
        self.out_channels = cfg.widths[0]
        init_weights(self, std=0.001)  # as the official pose HRNet (trained from scratch)

    @staticmethod
    def _transition(prev: list[int], widths: tuple[int, ...]) -> nn.ModuleList:
        """Transition to the next stage: 3x3 conv+BN+ReLU where a width changes (None if not);
        a new lower branch comes from the lowest previous branch through 3x3/2 conv+BN+ReLU steps."""
        layers = nn.ModuleList()
        for i, c in enumerate(widths):
            if i < len(prev):
                if prev[i] == c:
                    layers.append(None)
                else:
                    layers.append(nn.Sequential(conv3x3(prev[i], c), nn.BatchNorm2d(c), nn.ReLU(inplace=True)))
                continue
            steps = []
            for k in range(i + 1 - len(prev)):
                c_in = prev[-1]
                c_out = c if k == i - len(prev) else c_in
                steps.append(nn.Sequential(conv3x3(c_in, c_out, stride=2), nn.BatchNorm2d(c_out),
                                           nn.ReLU(inplace=True)))
            layers.append(nn.Sequential(*steps))
        return layers

    def _stages(self):
        for s in range(len(self.cfg.modules)):
            yield getattr(self, f"transition{s + 1}"), getattr(self, f"stage{s + 2}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        ys = [self.layer1(x)]
        for transition, stage in self._stages():
            xs = []
            for i, t in enumerate(transition):
                src = ys[i] if i < len(ys) else ys[-1]
                xs.append(src if t is None else t(src))
            for module in stage:
                xs = module(xs)
            ys = xs
        return ys[0]

    def walk(self, w, x):
        x = w(self.relu, w(self.bn1, w(self.conv1, x)))
        x = w(self.relu, w(self.bn2, w(self.conv2, x)))
        ys = [w(self.layer1, x)]
        for transition, stage in self._stages():
            xs = []
            for i, t in enumerate(transition):
                src = ys[i] if i < len(ys) else ys[-1]
                xs.append(src if t is None else w(t, src))
            for module in stage:
                xs = w(module, xs)
            ys = xs
        return ys[0]


@dataclasses.dataclass(frozen=True)
class HRNetConfig(ModelConfig):
    """HRNet hyper-parameters. ``modules`` / ``blocks`` are per stage 2, 3, 4 (modules per stage,
    BasicBlocks per branch); ``widths`` are the branch widths, highest resolution first; ``codec`` is
    the registered codec of its heatmap head (``msra_heatmap``, or ``udp`` for HRNet-W32 + UDP)."""

    stem_channels: int = 64
    stage1_block: str = "bottleneck"
    stage1_blocks: int = 4
    stage1_planes: int = 64
    widths: tuple[int, ...] = (32, 64, 128, 256)
    modules: tuple[int, ...] = (1, 4, 3)
    blocks: tuple[int, ...] = (4, 4, 4)
    codec: str = "msra_heatmap"

    def validate(self) -> None:
        require(isinstance(self.stem_channels, int) and self.stem_channels >= 1, "stem_channels",
                f"must be a positive integer, got {self.stem_channels!r}")
        require(self.stage1_block in BLOCKS, "stage1_block",
                f"must be one of {', '.join(BLOCKS)}, got {self.stage1_block!r}")
        for name in ("stage1_blocks", "stage1_planes"):
            v = getattr(self, name)
            require(isinstance(v, int) and v >= 1, name, f"must be a positive integer, got {v!r}")
        for name in ("widths", "modules", "blocks"):
            v = getattr(self, name)
            require(isinstance(v, tuple) and len(v) >= 1 and all(isinstance(e, int) and e >= 1 for e in v), name,
                    f"must be a tuple of positive integers, got {v!r}")
        require(len(self.modules) <= 3, "modules", f"at most 3 stages after stage 1, got {len(self.modules)}")
        require(len(self.blocks) == len(self.modules), "blocks",
                f"needs {len(self.modules)} values (one per stage), got {len(self.blocks)}")
        require(len(self.widths) == len(self.modules) + 1, "widths",
                f"needs {len(self.modules) + 1} values (one per branch, highest resolution first), "
                f"got {len(self.widths)}")
        require(self.codec in list_codecs(), "codec",
                f"must be a registered codec ({', '.join(list_codecs())}), got {self.codec!r}")

    def head_options(self) -> dict:
        return {"codec": self.codec}

    def build_backbone(self) -> nn.Module:
        return HRNet(self)

    def describe(self) -> list[tuple[str, str]]:
        block = BLOCKS[self.stage1_block]
        rows = [("stem", f"3x3/2 conv 3->{self.stem_channels}, 3x3/2 conv {self.stem_channels}->{self.stem_channels}"),
                ("stage 1", f"{self.stage1_blocks} x {block.__name__} ({self.stage1_planes} planes, "
                            f"out {self.stage1_planes * block.expansion})")]
        for s, (m, b) in enumerate(zip(self.modules, self.blocks, strict=True)):
            rows.append((f"stage {s + 2}", f"{m} module(s) x {b} BasicBlocks per branch, widths "
                                           f"{', '.join(map(str, self.widths[: s + 2]))}"))
        return rows
