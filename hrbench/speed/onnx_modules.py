"""Module-level export forms (issue 23): the same values, computed by ops ONNX Runtime runs with fewer nodes
and no layout reorders. Applied to the export copy only (:func:`hrbench.speed.onnx.prepare_export_model`).

* :class:`PooledLinear` — the small fully connected stacks that act on globally pooled ``(B, C, 1, 1)``
  tensors, written as 1x1 convolutions in the papers' code: Lite-HRNet's spatial weighting (Sec. 3.2,
  Eq. 6), Dite-HRNet's kernel attention (Eq. 3) and GCM's shift (Eq. 4, 6). As ``Conv`` nodes ONNX
  Runtime moves each of these 1x1 tensors into and out of its blocked NCHWc layout (a ReorderInput /
  ReorderOutput node per convolution whose channels are no multiple of the block); as ``Gemm`` on the
  flattened ``(B, C)`` vector they stay plain. ``W x + b`` either way (a 1x1 convolution of a 1x1 map
  is a matrix product), so only the order of float additions may differ.
* :class:`MaskProjection` — ACPool's channel pooling (Dite-HRNet Sec. 3.2, Eq. 4), a ``C -> 1`` 1x1
  convolution, as one matrix product on the ``(B, C, H*W)`` view. As ``Conv`` ONNX Runtime reorders the
  whole input into its blocked layout and computes a block of 16 output channels for the one; as
  ``MatMul`` it reads the input once. The same dot products, summed in another order.
* :class:`ChainedUpsampleFusion` — the upsampling paths into each fusion output summed from the lowest
  resolution up, one x2 upsampling per level (see the class).
* :class:`BranchShiftWeighting` — the shared shift of Lite-HRNet's cross-resolution weighting (Sec. 3.2,
  Eqs. 3-4) and Dite-HRNet's DCM (Eq. 5), ``1x1 conv -> ReLU -> 1x1 conv -> sigmoid`` on the pooled
  context, with the hidden width padded by zero units to a multiple of :data:`CHANNEL_BLOCK`, the output
  convolution split into one per branch (no ``Split``) and each weight map upsampled by its constant
  integer factor. ONNX Runtime then runs the two convolutions and the upsampling in its blocked layout;
  with the papers' widths (hidden 7 / 17 / 37 in Lite-HRNet-18) the convolutions ran in plain NCHW, and the
  ``Resize`` to a computed size in its generic kernel (0.70 of 13.5 ms). Zero units contribute exact zeros.
* :class:`DoubledPathFusion` — the fusion's doubled path ``y_i = f_i0(S0') + f_i0(S0') + ...``
  (:class:`~hrbench.models.hr_modules.MultiResolutionFusion`, the official in-place loop) with the factor 2
  moved into the last convolution of ``f_i0`` (weights and bias doubled; only ReLUs, which commute with a
  positive factor, may follow it): one ``Add`` less per output, bit-identical (a factor 2 is exact).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hrbench.models.context import DenseContextModeling, GlobalContextModeling
from hrbench.models.dynamic import KernelAttention
from hrbench.models.hr_modules import MultiResolutionFusion
from hrbench.models.litehrnet import CrossResolutionWeighting, SpatialWeighting

ELEMENTWISE = (nn.ReLU, nn.ReLU6, nn.Sigmoid, nn.Identity)

#: Channel multiple that ONNX Runtime's blocked (NCHWc) kernels need of a convolution's input: its block is
#: 16 floats with AVX-512 and 8 with AVX2, so a multiple of 16 serves both.
CHANNEL_BLOCK = 16


class PooledLinear(nn.Module):
    """``layers`` (1x1 convolutions, groups 1, and element-wise activations) applied to a ``(B, C, 1, 1)``
    tensor as matrix products on ``(B, C)``; ``flat_out``: return ``(B, C')`` instead of ``(B, C', 1, 1)``;
    ``pool``: the input is the ``(B, C, H, W)`` map, averaged here over ``H x W`` straight to ``(B, C)`` (one
    ``ReduceMean``: ONNX Runtime took 0.4 of a ``GlobalAveragePool``'s time on a 20x64x48 map)."""

    def __init__(self, layers: list[nn.Module], flat_out: bool = False, pool: bool = False) -> None:
        super().__init__()
        for m in layers:
            if isinstance(m, nn.Conv2d):
                if (m.kernel_size, m.stride, m.padding, m.dilation, m.groups) != ((1, 1), (1, 1), (0, 0), (1, 1), 1):
                    raise ValueError(f"PooledLinear: {m} is not a plain 1x1 convolution")
            elif not isinstance(m, ELEMENTWISE):
                raise ValueError(f"PooledLinear: {type(m).__name__} is neither a 1x1 convolution nor element-wise")
        self.layers = nn.ModuleList(layers)
        self.flat_out = flat_out
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.mean((2, 3)) if self.pool else x.reshape(x.shape[0], x.shape[1])
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
        self.fc = PooledLinear([*_unit(sw.conv1), *_unit(sw.conv2)], pool=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x)


class LinearKernelAttention(nn.Module):
    """:class:`~hrbench.models.dynamic.KernelAttention` (BatchNorm folded) with its FCs as :class:`PooledLinear`."""

    def __init__(self, att: KernelAttention) -> None:
        super().__init__()
        if not isinstance(att.bn, nn.Identity):
            raise ValueError("LinearKernelAttention: fold the BatchNorms first")
        self.fc = PooledLinear([att.conv1, att.relu, att.conv2, att.sigmoid], flat_out=True, pool=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class MaskProjection(nn.Module):
    """A ``C -> 1`` 1x1 convolution (bias kept) as ``w @ x`` on ``(B, C, H*W)``; output ``(B, 1, H, W)``."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        if (conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.groups) != (1, (1, 1), (1, 1),
                                                                                              (0, 0), 1):
            raise ValueError(f"MaskProjection: {conv} is not a plain 1x1 convolution to one channel")
        self.weight = nn.Parameter(conv.weight.detach().reshape(1, conv.in_channels).clone(), requires_grad=False)
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach().clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        y = torch.matmul(self.weight, x.reshape(b, c, h * w))
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(b, 1, h, w)


def substitute_mask_projection(model: nn.Module) -> int:
    """Put :class:`MaskProjection` in place of the mask convolutions of every GCM and DCM (in place); the count."""
    count = 0
    for m in list(model.modules()):
        if isinstance(m, GlobalContextModeling):
            m.conv_mask = MaskProjection(m.conv_mask)
            count += 1
        elif isinstance(m, DenseContextModeling):
            for k in range(len(m.conv_mask) - 1):  # the lowest branch's mask conv is never called
                m.conv_mask[k] = MaskProjection(m.conv_mask[k])
                count += 1
    return count


def _gcm_shift(gcm: GlobalContextModeling) -> PooledLinear:
    layers = [m for m in gcm.channel_attention if not isinstance(m, nn.Identity)]
    return PooledLinear(layers)


def upsample_to(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``a`` nearest-upsampled to ``x``'s size: by its constant integer factors where the sizes divide (the
    same indices, ``floor(i / k)``), else to the size itself."""
    (h, w), (big_h, big_w) = a.shape[-2:], x.shape[-2:]
    if (h, w) == (big_h, big_w):
        return a
    if big_h % h or big_w % w:
        return F.interpolate(a, size=(big_h, big_w), mode="nearest")
    return F.interpolate(a, scale_factor=(float(big_h // h), float(big_w // w)), mode="nearest")


class BranchShiftWeighting(nn.Module):
    """CRW / DCM (BatchNorms folded) as in the module docstring: ``source`` keeps the pooling (its
    ``context``); ``hidden`` is the padded first convolution, ``outs`` the per-branch output convolutions."""

    def __init__(self, source: CrossResolutionWeighting | DenseContextModeling, layers: list[nn.Module]) -> None:
        super().__init__()
        layers = [m for m in layers if not isinstance(m, nn.Identity)]
        if len(layers) != 4 or not (isinstance(layers[0], nn.Conv2d) and isinstance(layers[1], nn.ReLU)
                                    and isinstance(layers[2], nn.Conv2d) and isinstance(layers[3], nn.Sigmoid)):
            raise ValueError("BranchShiftWeighting: the shift is not conv -> ReLU -> conv -> sigmoid "
                             "(fold the BatchNorms first)")
        first, last = layers[0], layers[2]
        mid, wide = first.out_channels, -(-first.out_channels // CHANNEL_BLOCK) * CHANNEL_BLOCK
        like = {"dtype": first.weight.dtype, "device": first.weight.device}
        self.source = source
        self.hidden = nn.Conv2d(first.in_channels, wide, 1, **like)
        self.outs = nn.ModuleList(nn.Conv2d(wide, c, 1, **like) for c in source.channels)
        with torch.no_grad():
            self.hidden.weight.zero_()
            self.hidden.bias.zero_()
            self.hidden.weight[:mid] = first.weight
            if first.bias is not None:
                self.hidden.bias[:mid] = first.bias
            start = 0
            for conv, c in zip(self.outs, source.channels, strict=True):
                conv.weight.zero_()
                conv.weight[:, :mid] = last.weight[start:start + c]
                conv.bias.copy_(last.bias[start:start + c] if last.bias is not None else torch.zeros(c))
                start += c

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        h = F.relu(self.hidden(self.source.context(xs)))
        return [x * upsample_to(torch.sigmoid(conv(h)), x) for x, conv in zip(xs, self.outs, strict=True)]


def _shift_layers(m: nn.Module) -> list[nn.Module]:
    if isinstance(m, CrossResolutionWeighting):
        return [*_unit(m.conv1), *_unit(m.conv2)]
    return list(m.channel_attention)


def substitute_branch_shift(model: nn.Module) -> int:
    """Put :class:`BranchShiftWeighting` in place of every CRW / DCM (in place, BatchNorms folded); the count."""
    return _substitute(model, lambda c: isinstance(c, (CrossResolutionWeighting, DenseContextModeling)),
                       lambda c: BranchShiftWeighting(c, _shift_layers(c)))


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

    def output(self, i: int, y: torch.Tensor, xs: list[torch.Tensor]) -> torch.Tensor:
        """Output ``i``'s sum before the ReLU from ``y = 2 f_i0(high)``, added in the official order."""
        for j in range(1, i + 1):
            y = y + (xs[j] if j == i else self[i][j](xs[j]))
        return self.add_upsampled(i, y, xs)

    def forward(self, xs: list[torch.Tensor], relu: nn.Module) -> list[torch.Tensor]:
        s0 = self.add_upsampled(0, xs[0] + xs[0], xs)
        a0 = relu(s0)
        out = [a0]
        high = a0 if self.relu_inplace else s0
        for i in range(1, len(self)):
            out.append(relu(self.output(i, self[i][0](high), xs)))  # self[i][0] = 2 f_i0: doubled in the weights
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

    def output(self, i: int, y: torch.Tensor, xs: list[torch.Tensor]) -> torch.Tensor:
        """As :class:`DoubledPathFusion`'s, with output ``i``'s own branch ``x_i`` added last: the convolved paths
        are summed first, in ONNX Runtime's blocked layout, and leave it once per output (the official loop
        adds ``x_i``, which is in plain layout, between them)."""
        for j in range(1, i):
            y = y + self[i][j](xs[j])
        return self.add_upsampled(i, y, xs) + xs[i]


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


#: The module forms in the order :func:`hrbench.speed.onnx.prepare_export_model` applies them (BatchNorms
#: folded first): name -> substitution, each returning how many places it changed.
MODULE_FORMS = {
    "pooled_linear": substitute_pooled_linear,
    "doubled_fusion": substitute_doubled_fusion,
    "chained_upsample": substitute_chained_upsample,
    "branch_shift": substitute_branch_shift,
    "mask_projection": substitute_mask_projection,
}
