"""Inference-time switches that keep every module class and what the model computes.

* :func:`fold_batchnorm` folds each eval-mode ``BatchNorm2d`` that is applied directly to the output
  of an ``nn.Conv2d`` into that convolution (``W' = W·γ/σ``, ``b' = (b - μ)·γ/σ + β`` with
  ``σ = sqrt(var + eps)``, computed in float64) and puts an ``nn.Identity`` in the BatchNorm's place,
  so the module tree, its classes and its ``walk`` methods stay as they are.
* :func:`to_channels_last` / :func:`prepare_for_inference`: the NHWC memory format for every rank-4
  parameter and buffer (Dite-HRNet's dynamic kernels are rank 5 and stay as they are), and
  optionally a traced + frozen graph of the prepared model (no Python overhead per layer).

Which (convolution, BatchNorm) pairs are folded is decided structurally, never by guessing from the
names alone: inside a plain ``nn.Sequential`` a ``Conv2d`` immediately followed by a ``BatchNorm2d``;
in the classes listed in :data:`CONV_BN_ATTRIBUTES` the attribute pairs whose ``forward`` feeds the
convolution's output straight into the BatchNorm (checked against each class's ``forward``).
Not folded, on purpose:

* a BatchNorm after Dite-HRNet's dynamic kernel aggregation (DKA): BN's scale could move into the N
  candidate kernels, but its shift would have to be added after the per-sample aggregation whatever
  the attention, and :class:`~hrbench.models.dynamic.KernelAggregation` has no such constant bias,
  so the fold would not be exact; the BatchNorm stays (the ONNX export form
  :class:`hrbench.speed.onnx.StaticKernelAggregation` has that bias and folds it);
* a BatchNorm that follows anything else (e.g. GCM's BN after the context product).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator

import torch
from torch import nn

from hrbench.errors import HrbenchError
from hrbench.models.dpn import DPN
from hrbench.models.dymobilenetv2 import DyConvBNAct
from hrbench.models.dynamic import ConvNorm, KernelAttention
from hrbench.models.hrnet import HRNet
from hrbench.models.resnet import ResNet
from hrbench.models.resnet_blocks import BasicBlock, Bottleneck
from hrbench.models.separable import ConvBNAct

#: (convolution attribute, BatchNorm attribute) pairs per class whose forward is ``bn(conv(x))``.
CONV_BN_ATTRIBUTES: dict[type[nn.Module], tuple[tuple[str, str], ...]] = {
    ConvBNAct: (("conv", "bn"),),  # forward: x = conv(x); x = bn(x) if bn is not None
    ConvNorm: (("conv", "bn"),),  # forward: bn(conv(x)); conv is a Conv2d only when num_kernels == 1
    DyConvBNAct: (("conv", "bn"),),  # forward: bn(conv(x)); conv is a Conv2d when static (DY-ReLU, stems)
    KernelAttention: (("conv1", "bn"),),  # forward: relu(bn(conv1(avg_pool(x))))
    BasicBlock: (("conv1", "bn1"), ("conv2", "bn2")),
    Bottleneck: (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")),
    HRNet: (("conv1", "bn1"), ("conv2", "bn2")),  # stem: relu(bn1(conv1(x))), relu(bn2(conv2(x)))
    ResNet: (("conv1", "bn1"),),  # SimpleBaseline's stem: maxpool(relu(bn1(conv1(x))))
}


def _conv_bn_attribute_pairs() -> dict[type[nn.Module], tuple[tuple[str, str], ...]]:
    return {**CONV_BN_ATTRIBUTES, DPN: (("conv1", "bn1"),)}  # DPN's trunk stem: maxpool(relu(bn1(conv1(x))))


def conv_bn_pairs(model: nn.Module) -> Iterator[tuple[nn.Module, str, str]]:
    """Every foldable pair as ``(parent, conv_name, bn_name)``: ``parent.<bn_name>`` is a
    ``BatchNorm2d`` applied directly to the output of the ``nn.Conv2d`` ``parent.<conv_name>``."""
    table = _conv_bn_attribute_pairs()
    for parent in model.modules():
        if type(parent) is nn.Sequential:
            names = list(parent._modules)
            for a, b in zip(names, names[1:], strict=False):
                if isinstance(parent._modules[a], nn.Conv2d) and isinstance(parent._modules[b], nn.BatchNorm2d):
                    yield parent, a, b
            continue
        for conv_name, bn_name in table.get(type(parent), ()):
            conv, bn = getattr(parent, conv_name, None), getattr(parent, bn_name, None)
            if type(conv) is nn.Conv2d and isinstance(bn, nn.BatchNorm2d):
                yield parent, conv_name, bn_name


def _check_eval(model: nn.Module, what: str) -> None:
    training = [name or "<model>" for name, m in model.named_modules() if m.training]
    if training:
        raise HrbenchError(f"{what} needs an eval-mode model (BatchNorm must use its running statistics); "
                           f"call model.eval() first ({training[0]} is in training mode)")


@torch.no_grad()
def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Fold ``bn`` (eval statistics) into ``conv`` in place; a bias is added if the conv has none.

    The per-output-channel scale is the same for plain, grouped and depth-wise convolutions."""
    if bn.running_mean is None or bn.running_var is None:
        raise HrbenchError("cannot fold a BatchNorm2d without running statistics (track_running_stats=False)")
    var = bn.running_var.double()
    mean = bn.running_mean.double()
    gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(var)
    beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(var)
    scale = gamma / torch.sqrt(var + bn.eps)
    w = conv.weight
    bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(var)
    new_w = (w.double() * scale.reshape(-1, *([1] * (w.dim() - 1)))).to(w.dtype)
    new_b = ((bias - mean) * scale + beta).to(w.dtype)
    w.copy_(new_w)
    if conv.bias is None:
        conv.bias = nn.Parameter(new_b.to(w.device), requires_grad=w.requires_grad)
    else:
        conv.bias.copy_(new_b)


def fold_batchnorm(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """Fold every BatchNorm2d that directly follows a Conv2d into it (see the module docstring).

    ``model`` must be in eval mode (otherwise :class:`HrbenchError`). By default the model is
    deep-copied first and the copy is returned, so the trainable model keeps its BatchNorms;
    ``inplace=True`` folds ``model`` itself and returns it. Folding is idempotent: a folded model
    has no foldable pair left, and folding it again changes nothing. The folded model's
    ``state_dict`` has no ``bn.*`` keys for the folded layers (save the unfolded model).
    """
    _check_eval(model, "fold_batchnorm")
    if not inplace:
        model = copy.deepcopy(model)
    for parent, conv_name, bn_name in list(conv_bn_pairs(model)):
        conv, bn = getattr(parent, conv_name), getattr(parent, bn_name)
        fold_conv_bn(conv, bn)
        setattr(parent, bn_name, nn.Identity().train(bn.training))
    return model


def count_batchnorms(model: nn.Module) -> int:
    """Number of BatchNorm2d modules left in ``model`` (e.g. those after dynamic kernels)."""
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


@torch.no_grad()
def to_channels_last(model: nn.Module) -> nn.Module:
    """Channels-last (NHWC) storage for every rank-4 parameter and buffer, in place.

    ``nn.Module.to(memory_format=torch.channels_last)`` refuses Dite-HRNet's rank-5 dynamic kernels;
    this converts the rank-4 tensors only and leaves the others contiguous. Values are unchanged."""
    for module in model.modules():
        for p in module._parameters.values():
            if p is not None and p.dim() == 4:
                p.data = p.data.contiguous(memory_format=torch.channels_last)
        for name, b in module._buffers.items():
            if b is not None and b.dim() == 4:
                module._buffers[name] = b.contiguous(memory_format=torch.channels_last)
    return model


def prepare_for_inference(model: nn.Module, fold_bn: bool = True, channels_last: bool = True, *,
                          inplace: bool = False, trace_input: torch.Tensor | None = None) -> nn.Module:
    """An eval-mode inference model: BatchNorms folded (``fold_bn``) and NHWC weights
    (``channels_last``; feed it ``x.contiguous(memory_format=torch.channels_last)`` too).

    The model is put in eval mode first. Without ``inplace`` the input model is left untouched
    and a prepared deep copy is returned.

    ``trace_input`` (an example input of the shape that will be used) additionally records the
    forward once with ``torch.jit.trace`` and freezes it (``torch.jit.freeze``): the same operations
    without the Python module overhead, which dominates these many-small-layer networks at batch 1
    on CPU. The result is a ``ScriptModule`` fixed to that input shape and memory format (the
    backbone's input-size check is skipped while tracing).
    """
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    if fold_bn:
        model = fold_batchnorm(model, inplace=True)
    if channels_last:
        to_channels_last(model)
    if trace_input is not None:
        if channels_last:
            trace_input = trace_input.contiguous(memory_format=torch.channels_last)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated but still the leanest here
            model = torch.jit.freeze(torch.jit.trace(model, trace_input))
    return model
