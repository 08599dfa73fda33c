"""``dy-madds``: the multiply-adds count of Chen et al.'s dynamic-convolution and dynamic-ReLU papers
(DyConv CVPR 2020 Sec. 3.2 "computational cost", DY-ReLU ECCV 2020 Sec. 3), as rules.

MobileNet-style MAdds: the products of every convolution and fully connected layer (no bias, BatchNorm,
activation or elementwise op), plus what the dynamic operators add: the attention / hyper-function
(their global average pool: 1 per input element; their FCs: products), the kernel aggregation of a
dynamic convolution (K multiply-adds per element of the aggregated kernel, per sample), and the K
linear pieces of a DY-ReLU (K multiply-adds per element; the max over pieces: 0, comparisons). The
papers state these terms in words, not the per-layer sums; the reconstruction is checked against
their ImageNet MobileNetV2 figures in the model cards. Hard-swish / hard-sigmoid / sigmoid / softmax: 0,
as every other convention here (torchstat and mmcv have no rule for them).
"""

from __future__ import annotations

from torch import nn

from hrbench.complexity.conventions import (
    CONV2D_MACS,
    LINEAR_MACS,
    Convention,
    Rule,
    Shape,
    _numel,
    _pair,
    register_convention,
)


def conv_transpose2d_macs(m, i: Shape, o: Shape) -> int:
    """Products of a ConvTranspose2d: every input element meets C_out/g kernels of k_h k_w."""
    kh, kw = _pair(m.kernel_size)
    return kh * kw * m.in_channels * (m.out_channels // m.groups) * i[0] * i[2] * i[3]


def kernel_aggregation(m, i: Shape, o: Shape) -> int:
    """A dynamic convolution (``KernelAggregation``, keyed by class name): the convolution of the
    aggregated kernel, + :func:`aggregation_cost`."""
    n, c_out, h, w = o
    k = m.kernel_size
    return k * k * (m.in_channels // m.groups) * c_out * n * h * w + aggregation_cost(m, i, o)


def aggregation_cost(m, i: Shape, o: Shape) -> int:
    """sum_k pi_k W_k per sample: K multiply-adds per element of one kernel (and of one bias)."""
    per_kernel = m.weight[0].numel() + (m.bias.shape[1] if m.bias is not None else 0)
    return m.num_kernels * per_kernel * i[0]


def dyrelu_pieces(m, i: Shape, o: Shape) -> int:
    """DY-ReLU: a_k x + b_k for each of the K pieces, per element (the max: 0)."""
    return m.pieces * _numel(i)


def pool_input(m, i: Shape, o: Shape) -> int:
    return _numel(i)


#: All products: the convolution of the aggregated kernel and the aggregation, which the true MACs hold as
#: the kernel-mixing matmul, so ``--explain`` needs no row for it (it equals the module's ATen MACs).
KERNEL_AGGREGATION = Rule(kernel_aggregation, products=True)
DYRELU = Rule(dyrelu_pieces, "dy-relu pieces", "+ DY-ReLU: K multiply-adds per element (a_k x + b_k; max 0)")
ATTENTION_POOL = Rule(pool_input, "attention pooling",
                      "+ global average pool of attentions / hyper-functions / SE: 1 per input element")

DY_MADDS = register_convention(Convention(
    name="dy-madds",
    description="MAdds of the DyConv / DY-ReLU papers (Chen et al. 2020): conv and FC products, + average "
    "pools 1/elem, + dynamic-kernel aggregation K/kernel element/sample, + DY-ReLU K/elem; every call counted",
    rules=(("KernelAggregation", KERNEL_AGGREGATION), ("DyReLU", DYRELU), (nn.Conv2d, CONV2D_MACS),
           (nn.ConvTranspose2d, Rule(conv_transpose2d_macs, products=True)), (nn.Linear, LINEAR_MACS),
           (nn.AdaptiveAvgPool2d, ATTENTION_POOL)),
    last_call_only=False,
    skips="bias, BatchNorm, ReLU / ReLU6 / hard-swish / hard-sigmoid / sigmoid / softmax, max pooling, "
    "elementwise adds and multiplies (SE rescaling, shortcuts)",
    gap_by_block_type=True,
))
