"""The high-resolution skeleton shared by Lite-HRNet and Dite-HRNet.

Both families share one structure (Lite-HRNet paper, Section 3 and Table 1; Dite-HRNet paper,
Section 3): a stride-4 *stem* (:mod:`hrbench.models.stem`), then stages of parallel resolution
branches. Entering a stage, a *transition* adapts existing branches and adds a half-resolution
branch; a stage is a sequence of *cross-resolution modules* (Dite-HRNet Section 3; Lite-HRNet
Table 1 "module"), each a sequence of multi-branch *blocks* followed by one *multi-resolution
fusion*. Optionally an *iterative head* (``with_head=True``) folds the low resolutions back into
the high one.

Only the per-block type differs between the families, so everything here is parameterised by
the block: :class:`CrossResolutionModule` takes the module's blocks (a module mapping a list of
branch tensors to a list of branch tensors; :class:`PerBranch` adapts one-tensor blocks) and
:class:`HRBackbone` takes a ``make_stage_fn(stage_index, channels)`` factory.

Submodule names follow the official implementations (github HRNet/Lite-HRNet and
ZiyiZhang27/Dite-HRNet, both mmpose-0.x based), so that official ``state_dict`` keys map one to
one: ``stem.conv1.conv.weight``, ``transition0.1.0.2.weight``, ``stage1.0.fuse_layers.1.0.0.0.weight``,
``head_layer.projects.3.pointwise_conv.bn.weight`` and so on.

Every composite module implements ``walk(w, *shapes)`` for the analytic counter
(:mod:`hrbench.complexity.walker`), mirroring its ``forward`` call for call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hrbench.errors import HrbenchError
from hrbench.models.backbone import Backbone
from hrbench.models.bn_updates import repeated_bn_updates
from hrbench.models.separable import DepthwiseSeparableConv, separable_unit
from hrbench.models.shapes import Shape


# --------------------------------------------------------------------------------------------
# transitions, per-branch adapter, fusion, module, head
# --------------------------------------------------------------------------------------------
class Transition(nn.ModuleList):
    """Between stages (Lite-HRNet Table 1): branch i keeps its tensor (entry ``None``) or, if
    its width changes, gets a separable unit (dw 3x3 + BN + 1x1 + BN + ReLU); each new
    lower-resolution branch is made from the previous stage's lowest branch by chained stride-2
    separable units (Sequential of Sequentials)."""

    def __init__(self, pre: Sequence[int], cur: Sequence[int]) -> None:
        layers: list[nn.Module | None] = []
        for i, c in enumerate(cur):
            if i < len(pre):
                layers.append(separable_unit(pre[i], c, 1, relu=True) if c != pre[i] else None)
            else:
                n_down = i + 1 - len(pre)
                chain = [separable_unit(pre[-1], c if k == n_down - 1 else pre[-1], 2, relu=True)
                         for k in range(n_down)]
                layers.append(nn.Sequential(*chain))
        super().__init__(layers)
        self.num_pre = len(pre)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for i, layer in enumerate(self):
            src = xs[i] if i < self.num_pre else xs[-1]
            out.append(src if layer is None else layer(src))
        return out

    def walk(self, w, xs: list[Shape]) -> list[Shape]:
        out = []
        for i, layer in enumerate(self):
            src = xs[i] if i < self.num_pre else xs[-1]
            out.append(src if layer is None else w(layer, src))
        return out


class PerBranch(nn.ModuleList):
    """Applies one module per branch (e.g. naive Lite-HRNet's per-branch shuffle-block stacks,
    key ``layers.<branch>.<block>.*``): list of tensors -> list of tensors."""

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        return [m(x) for m, x in zip(self, xs, strict=True)]

    def walk(self, w, xs: list[Shape]) -> list[Shape]:
        return [w(m, x) for m, x in zip(self, xs, strict=True)]


class MultiBranchSequential(nn.Sequential):
    """Multi-branch modules applied in order, list of branch tensors -> list: a module's blocks
    (e.g. two CCW blocks, key ``layers.<k>.*``) or a stage's modules (key ``stage<i>.<k>.*``)."""

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        for module in self:
            xs = module(xs)
        return xs

    def walk(self, w, xs: list[Shape]) -> list[Shape]:
        for module in self:
            xs = w(module, xs)
        return xs


def fuse_path(c_in: int, c_out: int, j: int, i: int) -> nn.Module | None:
    """The fusion path from branch j to output branch i (Lite-HRNet Sec. 3.1, "separable"
    version of HRNet's fusion): j > i: 1x1 conv + BN + nearest ×2^(j-i) upsample; j < i: i-j
    stride-2 separable units (ReLU on all but the last); j == i: ``None`` (identity)."""
    if j > i:
        return nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out),
                             nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"))
    if j == i:
        return None
    n_down = i - j
    return nn.Sequential(*[separable_unit(c_in, c_out if k == n_down - 1 else c_in, 2, relu=k < n_down - 1)
                           for k in range(n_down)])


class MultiResolutionFusion(nn.ModuleList):
    """Multi-resolution fusion (Lite-HRNet Sec. 3.1), ``fuse_layers[i][j]`` = path j -> i,
    reproducing the official in-place loop exactly.

    The official loop starts output 0's running sum *as* branch 0's tensor and adds in place,
    so branch 0 counts twice and the tensor of branch 0 is overwritten by the fused sum:
    ``S0 = 2·x0 + Σ_{j>0} f_0j(x_j)`` (pre-activation). Each later output i starts from
    ``f_i0`` of that overwritten tensor and adds ``f_i0`` of it once more:
    ``y_i = 2·f_i0(S0') + x_i + Σ_{j>0, j≠i} f_ij(x_j)``, ``out_i = ReLU(y_i)``.
    Here ``f_i0(S0')`` is computed once and doubled (a + a is exact), which the official code
    computes twice; torchstat counts the module once either way. The official double call also
    updates the running statistics of every BatchNorm in ``f_i0`` (i >= 1) twice per training
    forward, with the same batch statistics; :func:`repeated_bn_updates` reproduces exactly that
    (two updates' factor, ``num_batches_tracked += 2``) while computing the path once.

    ``S0'`` is the pre-ReLU sum ``S0`` when the fusion ReLU is out of place (Lite-HRNet,
    ``relu_inplace=False``); Dite-HRNet's fusion ReLU is in place, so there the overwritten
    tensor is ``ReLU(S0)`` (``relu_inplace=True``). The summation order is the official one.
    ``relu`` is the module's activation, passed in so that it stays registered on the
    :class:`CrossResolutionModule` (official key layout); it is called once per output, as in
    the official loop (torchstat: last call wins).
    """

    def __init__(self, channels: Sequence[int], multiscale_output: bool = True, relu_inplace: bool = False) -> None:
        n = len(channels)
        rows = [nn.ModuleList([fuse_path(channels[j], channels[i], j, i) for j in range(n)])
                for i in range(n if multiscale_output else 1)]
        super().__init__(rows)
        self.relu_inplace = relu_inplace

    def forward(self, xs: list[torch.Tensor], relu: nn.Module) -> list[torch.Tensor]:
        n = len(xs)
        out = []
        s0 = xs[0] + xs[0]
        for j in range(1, n):
            s0 = s0 + self[0][j](xs[j])
        a0 = relu(s0)
        out.append(a0)
        high = a0 if self.relu_inplace else s0
        for i in range(1, len(self)):
            with repeated_bn_updates(self[i][0], 2):
                a = self[i][0](high)
            y = a + a
            for j in range(1, n):
                y = y + (xs[j] if j == i else self[i][j](xs[j]))
            out.append(relu(y))
        return out

    def walk(self, w, xs: list[Shape], relu: nn.Module) -> list[Shape]:
        n = len(xs)
        s0 = xs[0]
        for j in range(1, n):
            w(self[0][j], xs[j])
        out = [w(relu, s0)]
        for i in range(1, len(self)):
            y = w(self[i][0], s0)
            for j in range(1, n):
                if j != i:
                    w(self[i][j], xs[j])
            out.append(w(relu, y))
        return out


class CrossResolutionModule(nn.Module):
    """One module of a stage, the cross-resolution module (Dite-HRNet Section 3; Lite-HRNet
    Table 1: "two blocks and one fusion block"): the module's ``layers`` (list of branch tensors
    -> list, e.g. a :class:`MultiBranchSequential` of CCW blocks or a :class:`PerBranch` of
    shuffle-block stacks), then (``with_fuse``) the :class:`MultiResolutionFusion` and its ReLU.
    Keys: ``layers.*``, ``fuse_layers.*``.

    Without fusion and with ``multiscale_output=False`` only the highest branch is returned
    (official behaviour).
    """

    def __init__(self, channels: Sequence[int], layers: nn.Module, *, with_fuse: bool = True,
                 multiscale_output: bool = True, relu_inplace: bool = False) -> None:
        super().__init__()
        self.in_channels = tuple(channels)
        self.num_branches = len(channels)
        self.layers = layers
        self.with_fuse = with_fuse and self.num_branches > 1
        self.multiscale_output = multiscale_output
        if self.with_fuse:
            self.fuse_layers = MultiResolutionFusion(channels, multiscale_output, relu_inplace)
            self.relu = nn.ReLU(inplace=relu_inplace)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        out = self.layers(list(xs))
        if self.with_fuse:
            return self.fuse_layers(out, self.relu)
        return out if self.multiscale_output else [out[0]]

    def walk(self, w, xs: list[Shape]) -> list[Shape]:
        out = w(self.layers, list(xs))
        if self.with_fuse:
            return self.fuse_layers.walk(w, out, self.relu)
        return out if self.multiscale_output else [out[0]]


class IterativeHead(nn.Module):
    """The backbone's iterative head (official ``with_head=True``): from the lowest resolution
    up, each branch adds the bilinearly (align_corners) up-sampled previous result and goes
    through a separable conv that maps it to the next-higher branch's width; the highest branch
    keeps its width. Returns the list highest-resolution first."""

    def __init__(self, channels: Sequence[int]) -> None:
        super().__init__()
        rev = list(channels)[::-1]
        self.projects = nn.ModuleList(
            [DepthwiseSeparableConv(rev[i], rev[i + 1] if i + 1 < len(rev) else rev[i]) for i in range(len(rev))])

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        ys: list[torch.Tensor] = []
        last = None
        for proj, s in zip(self.projects, xs[::-1], strict=True):
            if last is not None:
                s = s + F.interpolate(last, size=s.shape[-2:], mode="bilinear", align_corners=True)
            last = proj(s)
            ys.append(last)
        return ys[::-1]

    def walk(self, w, xs: list[Shape]) -> list[Shape]:
        ys = [w(proj, s) for proj, s in zip(self.projects, xs[::-1], strict=True)]
        return ys[::-1]


# --------------------------------------------------------------------------------------------
# backbone
# --------------------------------------------------------------------------------------------
def init_weights_official(module: nn.Module) -> None:
    """The official initialisation (``LiteHRNet.init_weights`` / ``DiteHRNet.init_weights``):
    every ``nn.Conv2d`` kernel ~ N(0, 0.001^2) with zero bias, every BatchNorm weight 1 / bias 0.

    Modules with their own ``reset_parameters_official()`` (e.g. Dite-HRNet's dynamic kernels)
    are re-initialised by it afterwards.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, mean=0.0, std=0.001)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            if m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
    for m in module.modules():
        reset = getattr(m, "reset_parameters_official", None)
        if callable(reset):
            reset()


def make_stage(channels: Sequence[int], num_modules: int, make_layers: Callable[[], nn.Module], *,
               with_fuse: bool = True, relu_inplace: bool = False) -> MultiBranchSequential:
    """A stage: ``num_modules`` :class:`CrossResolutionModule` s on ``channels``, each with fresh
    ``make_layers()`` blocks."""
    return MultiBranchSequential(*[
        CrossResolutionModule(channels, make_layers(), with_fuse=with_fuse, relu_inplace=relu_inplace)
        for _ in range(num_modules)])


class HRBackbone(Backbone):
    """Stem -> (transition<i>, stage<i>) for each stage -> optional iterative head; returns the
    highest-resolution output (1/4 of the input) as one tensor, ``out_channels`` wide.

    ``make_stage_fn(i, channels)`` builds stage i (normally via :func:`make_stage`); the stem must
    expose ``out_channels``. Subclasses (Lite-HRNet, Dite-HRNet) only choose stem and blocks.
    """

    def __init__(self, stem: nn.Module, stage_channels: Sequence[Sequence[int]],
                 make_stage_fn: Callable[[int, tuple[int, ...]], nn.Module], with_head: bool = True) -> None:
        super().__init__()
        self.stem = stem
        self.num_stages = len(stage_channels)
        prev: tuple[int, ...] = (stem.out_channels,)
        for i, chans in enumerate(stage_channels):
            chans = tuple(chans)
            setattr(self, f"transition{i}", Transition(prev, chans))
            setattr(self, f"stage{i}", make_stage_fn(i, chans))
            prev = chans
        self.with_head = with_head
        if with_head:
            self.head_layer = IterativeHead(prev)
        self.out_channels = prev[0]
        self.size_multiple = 4 * 2 ** (len(prev) - 1)

    def check_input_size(self, h: int, w: int) -> None:
        """One-line error unless every branch halves exactly (H and W multiples of 4·2^(branches-1))."""
        m = self.size_multiple
        if h % m or w % m:
            raise HrbenchError(f"input {h}x{w} does not fit this network: height and width must be multiples of {m} "
                               "(every lower-resolution branch must be exactly half the size of the one above)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (torch.jit.is_tracing() or torch.jit.is_scripting()):
            self.check_input_size(int(x.shape[-2]), int(x.shape[-1]))
        xs = [self.stem(x)]
        for i in range(self.num_stages):
            xs = getattr(self, f"transition{i}")(xs)
            xs = getattr(self, f"stage{i}")(xs)
        if self.with_head:
            xs = self.head_layer(xs)
        return xs[0]

    def walk(self, w, x: Shape) -> Shape:
        self.check_input_size(x[-2], x[-1])
        xs = [w(self.stem, x)]
        for i in range(self.num_stages):
            xs = w(getattr(self, f"transition{i}"), xs)
            xs = w(getattr(self, f"stage{i}"), xs)
        if self.with_head:
            xs = w(self.head_layer, xs)
        return xs[0]
