"""Module-level export forms (issue 23): the same values, computed by ops ONNX Runtime runs with fewer nodes
and no layout reorders. Applied to the export copy only (:func:`hrbench.speed.onnx.prepare_export_model`).

* :class:`PooledLinear` — the small fully connected stacks that act on globally pooled ``(B, C, 1, 1)``
  tensors, written as 1x1 convolutions in the papers' code: Lite-HRNet's spatial weighting (Sec. 3.2,
  Eq. 6), Dite-HRNet's kernel attention (Eq. 3) and GCM's shift (Eq. 4, 6). As ``Conv`` nodes ONNX
  Runtime moves each of these 1x1 tensors into and out of its blocked NCHWc layout (a ReorderInput /
  ReorderOutput node per convolution whose channels are no multiple of the block); as ``Gemm`` on the
  flattened ``(B, C)`` vector they stay plain. ``W x + b`` either way (a 1x1 convolution of a 1x1 map
  is a matrix product), so only the order of float additions may differ.
* :class:`ChainedUpsampleFusion` — the upsampling paths into each fusion output summed from the lowest
  resolution up, one x2 upsampling per level (see the class).
* :class:`DoubledPathFusion` — the fusion's doubled path ``y_i = f_i0(S0') + f_i0(S0') + ...``
  (:class:`~hrbench.models.hr_modules.MultiResolutionFusion`, the official in-place loop) with the factor 2
  moved into the last convolution of ``f_i0`` (weights and bias doubled; only ReLUs, which commute with a
  positive factor, may follow it): one ``Add`` less per output, bit-identical (a factor 2 is exact).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hrbench.models.context import GlobalContextModeling
from hrbench.models.dynamic import KernelAttention
from hrbench.models.hr_modules import MultiResolutionFusion
from hrbench.models.litehrnet import SpatialWeighting

ELEMENTWISE = (nn.ReLU, nn.ReLU6, nn.Sigmoid, nn.Identity)


class PooledLinear(nn.Module):
    """``layers`` (1x1 convolutions, groups 1, and element-wise activations) applied to a ``(B, C, 1, 1)``
    tensor as matrix products on ``(B, C)``; ``flat_out``: return ``(B, C')`` instead of ``(B, C', 1, 1)``."""

    def __init__(self, layers: list[nn.Module], flat_out: bool = False) -> None:
        super().__init__()
        for m in layers:
            if isinstance(m, nn.Conv2d):
                if (m.kernel_size, m.stride, m.padding, m.dilation, m.groups) != ((1, 1), (1, 1), (0, 0), (1, 1), 1):
                    raise ValueError(f"PooledLinear: {m} is not a plain 1x1 convolution")
            elif not isinstance(m, ELEMENTWISE):
                raise ValueError(f"PooledLinear: {type(m).__name__} is neither a 1x1 convolution nor element-wise")
        self.layers = nn.ModuleList(layers)
        self.flat_out = flat_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.reshape(x.shape[0], x.shape[1])
        for m in self.layers:
            y = F.linear(y, m.weight.reshape(m.out_channels, m.in_channels), m.bias) if isinstance(m, nn.Conv2d) \
                else m(y)
        return y if self.flat_out else y.reshape(y.shape[0], y.shape[1], 1, 1)


def _unit(m: nn.Module) -> list[nn.Module]:
    """A ``ConvBNAct`` of the spatial weighting as its layers (its BatchNorm is absent there)."""
    if getattr(m, "bn", None) is not None and not isinstance(m.bn, nn.Identity):
        raise ValueError("PooledLinear: a BatchNorm is left in the unit (fold the BatchNorms first)")
    return [m.conv] + ([m.activate] if m.activate is not None else [])


class LinearSpatialWeighting(nn.Module):
    """:class:`~hrbench.models.litehrnet.SpatialWeighting` with its two FCs as :class:`PooledLinear`."""

    def __init__(self, sw: SpatialWeighting) -> None:
        super().__init__()
        self.global_avgpool = sw.global_avgpool
        self.fc = PooledLinear([*_unit(sw.conv1), *_unit(sw.conv2)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(self.global_avgpool(x))


class LinearKernelAttention(nn.Module):
    """:class:`~hrbench.models.dynamic.KernelAttention` (BatchNorm folded) with its FCs as :class:`PooledLinear`."""

    def __init__(self, att: KernelAttention) -> None:
        super().__init__()
        if not isinstance(att.bn, nn.Identity):
            raise ValueError("LinearKernelAttention: fold the BatchNorms first")
        self.avg_pool = att.avg_pool
        self.fc = PooledLinear([att.conv1, att.relu, att.conv2, att.sigmoid], flat_out=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.avg_pool(x))


def _gcm_shift(gcm: GlobalContextModeling) -> PooledLinear:
    layers = [m for m in gcm.channel_attention if not isinstance(m, nn.Identity)]
    return PooledLinear(layers)


class DoubledPathFusion(MultiResolutionFusion):
    """:class:`MultiResolutionFusion` whose paths ``f_i0`` (i >= 1) compute ``2 f_i0`` (see the module
    docstring); eval only (no BatchNorm is left to update)."""

    @classmethod
    def from_fusion(cls, fusion: MultiResolutionFusion) -> DoubledPathFusion:
        form = cls.__new__(cls)
        nn.ModuleList.__init__(form, list(fusion))
        form.relu_inplace = fusion.relu_inplace
        with torch.no_grad():
            for row in list(form)[1:]:
                conv = _last_conv(row[0])
                conv.weight.mul_(2.0)
                if conv.bias is not None:
                    conv.bias.mul_(2.0)
        return form

    def add_upsampled(self, i: int, y: torch.Tensor, xs: list[torch.Tensor]) -> torch.Tensor:
        """``y`` plus output ``i``'s upsampling paths ``f_ij(x_j)``, j > i, added one by one in the official order."""
        for j in range(i + 1, len(xs)):
            y = y + self[i][j](xs[j])
        return y

    def forward(self, xs: list[torch.Tensor], relu: nn.Module) -> list[torch.Tensor]:
        s0 = self.add_upsampled(0, xs[0] + xs[0], xs)
        a0 = relu(s0)
        out = [a0]
        high = a0 if self.relu_inplace else s0
        for i in range(1, len(self)):
            y = self[i][0](high)  # = 2 f_i0(high): the doubling is in the weights
            for j in range(1, i + 1):
                y = y + (xs[j] if j == i else self[i][j](xs[j]))
            out.append(relu(self.add_upsampled(i, y, xs)))
        return out


class ChainedUpsampleFusion(DoubledPathFusion):
    """:class:`DoubledPathFusion` whose upsampling paths into each output are summed low resolution first:
    ``Σ_{j>i} up_{2^(j-i)}(c_ij(x_j)) = up2(c_i,i+1(x_i+1) + up2(c_i,i+2(x_i+2) + ...))`` with ``c_ij`` a path's
    1x1 convolution (BatchNorm folded) and ``up`` nearest upsampling, which is linear and composes exactly
    (``up4 = up2 o up2``). Each output then upsamples once per level from the level below instead of
    once per branch to its own resolution (Lite-HRNet-18's stage-4 output 0: 1 + 1/4 + 1/16 of a full-size
    write instead of 3), and every ``Add`` but the last joins two tensors ONNX Runtime keeps in its blocked layout. Only
    the order of float additions changes (parity as the export's)."""

    @classmethod
    def from_fusion(cls, fusion: MultiResolutionFusion) -> ChainedUpsampleFusion:
        form = DoubledPathFusion.from_fusion(fusion) if not isinstance(fusion, DoubledPathFusion) else fusion
        form.__class__ = cls
        for i, row in enumerate(form):
            for j in range(i + 1, len(row)):
                conv, bn, up = row[j]
                if not (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.Identity) and isinstance(up, nn.Upsample)
                        and up.mode == "nearest" and up.scale_factor == 2 ** (j - i)):
                    raise ValueError("ChainedUpsampleFusion: an upsampling path is not 1x1 conv + folded BN + "
                                     "nearest upsample (fold the BatchNorms first)")
        return form

    def _upsampled_sum(self, i: int, xs: list[torch.Tensor]) -> torch.Tensor | None:
        """``Σ_{j>i} f_ij(x_j)`` of output ``i`` as the chain of the class docstring (None when i is the last)."""
        t = None
        for j in range(len(xs) - 1, i, -1):
            c = self[i][j][0](xs[j])
            t = c if t is None else c + _up2(t)
        return None if t is None else _up2(t)

    def add_upsampled(self, i: int, y: torch.Tensor, xs: list[torch.Tensor]) -> torch.Tensor:
        up = self._upsampled_sum(i, xs)
        return y if up is None else y + up


def _up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


def _last_conv(path: nn.Module) -> nn.Conv2d:
    """The last convolution of a fusion path, checked to be followed by nothing but ReLUs / identities."""
    layers = [m for m in path.modules() if not list(m.children())]
    k = max(i for i, m in enumerate(layers) if isinstance(m, nn.Conv2d))
    if not all(isinstance(m, (nn.ReLU, nn.Identity)) for m in layers[k + 1:]):
        raise ValueError("DoubledPathFusion: the path's last convolution is followed by more than ReLUs "
                         "(fold the BatchNorms first)")
    return layers[k]


def _substitute(model: nn.Module, wanted, form) -> int:
    """Replace (in place) every child module ``c`` of ``model`` with ``wanted(c)`` by ``form(c)``; the count."""
    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if wanted(child):
                setattr(parent, name, form(child))
                count += 1
    return count


def substitute_doubled_fusion(model: nn.Module) -> int:
    """Put :class:`DoubledPathFusion` in place of every fusion with a doubled path (in place); returns the count."""
    return _substitute(model, lambda c: type(c) is MultiResolutionFusion and len(c) > 1, DoubledPathFusion.from_fusion)


def substitute_chained_upsample(model: nn.Module) -> int:
    """Put :class:`ChainedUpsampleFusion` in place of every fusion with an output fed by two or more upsampling
    paths (in place, BatchNorms folded); returns the count."""
    def wanted(c: nn.Module) -> bool:
        return isinstance(c, MultiResolutionFusion) and not isinstance(c, ChainedUpsampleFusion) and len(c[0]) > 2

    return _substitute(model, wanted, ChainedUpsampleFusion.from_fusion)


def substitute_pooled_linear(model: nn.Module) -> int:
    """Put the :class:`PooledLinear` forms in place (in place, BatchNorms already folded); returns the count."""
    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, SpatialWeighting):
                setattr(parent, name, LinearSpatialWeighting(child))
            elif isinstance(child, KernelAttention):
                setattr(parent, name, LinearKernelAttention(child))
            elif isinstance(child, GlobalContextModeling):
                child.channel_attention = _gcm_shift(child)
            else:
                continue
            count += 1
    return count
