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
    notes="NOTES",
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
    notes="NOTES",
)
def dyrelu_mobilenetv2_1x() -> DyMobileNetV2Config:
    return DyMobileNetV2Config(dynamic="relu")
