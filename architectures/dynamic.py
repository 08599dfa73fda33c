"""DY-MobileNetV2 1x and DY-ReLU 1x (Chen et al.: "Dynamic Convolution: Attention over Convolution Kernels",
CVPR 2020; "Dynamic ReLU", ECCV 2020), the rows of Lite-HRNet Table 3 (COCO val, 256x192) that cite them.

Configuration only; the model code is :mod:`hrbench.models.dymobilenetv2`, :mod:`hrbench.models.dyops` and
:mod:`hrbench.models.heads.deconv`. Both papers report their keypoint results with their own light head and
their own MAdds count (``dy-madds``); neither released pose code.
"""

from __future__ import annotations

from hrbench.architectures.mobilenet import mmpose_light_recipe

from hrbench.models.dymobilenetv2 import DyMobileNetV2Config
from hrbench.registry import register_model


@register_model(
    "dy_mobilenetv2_1x",
    aliases=("dy_mobilenetv2", "dymbv2", "dyconv_mobilenetv2"),
    paper="dyconv",
    recipe=mmpose_light_recipe,
    convention="dy-madds",
    reported=(("lite", "DY-MobileNetV2 1x"),),
    tags=("baseline", "small", "dynamic"),
    notes=" ".join("""
MobileNetV2 1.0 whose convolutions, except the stem and the final 1x1 conv to 1280, are dynamic
convolutions (DyConv Sec. 3: K=4 kernels aggregated per sample by softmax attention over average pool
-> FC C/4 -> ReLU -> FC K, temperature 30; the paper anneals it to 1 early in training, hrbench keeps
it fixed), then SimpleBaseline's head. The backbone matches DyConv's ImageNet DY-MobileNetV2 x1.0:
9,868,736 backbone params + the 1,281,000 of its classifier = 11.1M as published (with the 1280 conv
dynamic too it would be 12.4M). Counted as the DY papers count MAdds (dy-madds: conv and FC products,
attention pooling, K multiply-adds per aggregated kernel element): 17,214,673 params (K=17) and 1.472
GFLOPs (binary; 1.581e9 MAdds) at 256x192. Not reproduced: the published 16.1M / 1.01 (Lite-HRNet T3,
from the DyConv paper): the source uses its own light keypoint head, which this head is not: with the
backbone fixed by the ImageNet match, the published row leaves 16.1M - 9.87M = 6.2M params and
1.01e9 - 0.309e9 = 0.70e9 MAdds to its head, against SimpleBaseline's 7.35M and 1.27e9. The DyConv
paper's head layout could not be read here (no released pose code). Also not exact: the same count at
224x224 with the classifier gives 316.9M MAdds against the paper's 313M (papers-with-code lists
626M FLOPs = 2 x 313M; 310.3M without the attention pooling): the paper does not give its per-term sums.
Recipe: mmpose's light recipe (the
source's pose recipe not read). The same model under the other counters (binary G at 256x192): torchstat 1.242 (the
per-sample F.conv2d of a dynamic convolution is functional, invisible to torchstat: only the attention
FCs count), torchstat-dite 1.487 (the aggregated convolution counted as a Conv2d, no aggregation term),
HRNet's summary 4.730; true MACs 1.574e9 (they include the aggregation's mixing matmul).
""".split()),
)
def dy_mobilenetv2_1x() -> DyMobileNetV2Config:
    return DyMobileNetV2Config(dynamic="conv")


@register_model(
    "dyrelu_mobilenetv2_1x",
    aliases=("dyrelu_mobilenetv2", "dyrelu"),
    paper="dyrelu",
    recipe=mmpose_light_recipe,
    convention="dy-madds",
    reported=(("lite", "DY-ReLU 1x"),),
    tags=("baseline", "small", "dynamic"),
    notes=" ".join("""
MobileNetV2 1.0 with every ReLU6 of the backbone (stem, expansions, depthwise convs, the 1x1 conv
to 1280) replaced by DY-ReLU-B (DY-ReLU Sec. 3: spatially shared, channel-wise, K=2 linear pieces,
coefficients alpha + lambda (2 sigmoid - 1) from average pool -> FC C/8 -> ReLU -> FC 2KC, lambdas 1.0
/ 0.5, a ReLU at zero residual), then SimpleBaseline's head. Counted as the DY papers count MAdds
(dy-madds: conv and FC products, hyper-function pooling, K multiply-adds per activated element):
16,298,281 params (K=17) and 1.480 GFLOPs (binary; 1.590e9 MAdds) at 256x192. Not reproduced: the
published 9.0M / 1.03 (Lite-HRNet T3, from the DY-ReLU paper), which use the paper's own light head:
its backbone's 8,952,344 parameters leave the published row 0.05M for a head whose MAdds
(1.03e9 - 0.318e9 = 0.71e9) match the 0.70e9 the DyConv row leaves for its head (the same head, not
SimpleBaseline's 7.35M / 1.27e9). The hyper-function width (C/R) is not settled by what could be read
here: R=4 (the reference re-implementations' default) gives 22,964,545 params (K=17). Recipe: mmpose's
light recipe (the source's pose recipe not read). The same model under the other counters (binary G
at 256x192): torchstat 1.485 (DY-ReLU's pieces and max are functional: 0; its FCs and pooling
count), HRNet's summary 4.979; true MACs 1.572e9.
""".split()),
)
def dyrelu_mobilenetv2_1x() -> DyMobileNetV2Config:
    return DyMobileNetV2Config(dynamic="relu")
