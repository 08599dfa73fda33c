"""mmcv's ``get_model_complexity_info`` as a counting convention: the counter of mmpose 1.x
``tools/analysis_tools/get_flops.py`` up to v1.0.0 (``from mmcv.cnn import get_model_complexity_info``,
line 11; the RTMPose figures date from then), which later releases replaced by mmengine's jit counter
(mmpose commit 470dce1, 2023-04-21; that one is fvcore's, hrbench's ``fvcore`` engine).

Rules as data (mmcv ``mmcv/cnn/utils/flops_counter.py``, module hooks on exact types, every call counted,
batch 1; see /work/wt/issue21-facts.md 1a): Conv2d k_h k_w C_in C_out/g H W (+ C_out H W bias),
ConvTranspose2d at input positions (+ bias), BatchNorm / GroupNorm / LayerNorm 2 per element (1 without
affine), ReLU / ReLU6 / PReLU / ELU / LeakyReLU 1 per element, max / average / adaptive pooling 1 per
*input* element, Linear numel(input) x out_features, Upsample 1 per output element; everything else 0
(SiLU, Hardsigmoid, Sigmoid, custom modules such as ScaleNorm, every functional op: ``torch.bmm``,
add, mul, cat). Printed in decimal G ("GFLOPs", which are multiply-accumulates).
"""

from __future__ import annotations

import math

from torch import nn

from hrbench.complexity import conventions as cv


def pool_input(m, i: cv.Shape, o: cv.Shape) -> int:
    """mmcv's pooling hook: numel of the input (the kernel size is ignored)."""
    return math.prod(i)


def upsample_output(m, i: cv.Shape, o: cv.Shape) -> int:
    return math.prod(o)


def norm_mmcv(m, i: cv.Shape, o: cv.Shape) -> int:
    affine = getattr(m, "affine", getattr(m, "elementwise_affine", False))
    return math.prod(i) * (2 if affine else 1)


POOL_INPUT = cv.Rule(pool_input, "pooling", "+ pooling (max / avg / adaptive): 1 per input element (mmcv)")
NORM = cv.Rule(norm_mmcv, "norm", "+ BatchNorm / GroupNorm / LayerNorm: 2 per element (1 without affine)")
UPSAMPLE = cv.Rule(upsample_output, "upsample", "+ nn.Upsample: 1 per output element")

MMCV = cv.register_convention(cv.Convention(
    name="mmcv-flops",
    description="mmcv get_model_complexity_info (mmpose 1.x tools/analysis_tools/get_flops.py to v1.0.0): "
    "module hooks, conv k*k*Cin*Cout/g*H*W (+bias), BN 2/elem, ReLU-family 1/elem, pooling 1 per input "
    "element, Linear numel(in)*out, every call counted; decimal G",
    rules=((nn.Conv2d, cv.CONV2D), (nn.ConvTranspose2d, cv.CONV_TRANSPOSE2D),
           (nn.BatchNorm2d, NORM), (nn.BatchNorm1d, NORM), (nn.GroupNorm, NORM), (nn.LayerNorm, NORM),
           (nn.InstanceNorm2d, NORM), (nn.ReLU, cv.ACTIVATION), (nn.ReLU6, cv.ACTIVATION),
           (nn.PReLU, cv.ACTIVATION), (nn.ELU, cv.ACTIVATION), (nn.LeakyReLU, cv.ACTIVATION),
           (nn.MaxPool2d, POOL_INPUT), (nn.AvgPool2d, POOL_INPUT), (nn.AdaptiveAvgPool2d, POOL_INPUT),
           (nn.AdaptiveMaxPool2d, POOL_INPUT), (nn.Linear, cv.LINEAR_MACS), (nn.Upsample, UPSAMPLE)),
    last_call_only=False,
    divisor=10**6,
    skips="SiLU, Hardsigmoid, Sigmoid, custom modules (ScaleNorm, Scale), every functional op (torch.bmm "
    "of attention, add, mul, cat, interpolate)",
))
