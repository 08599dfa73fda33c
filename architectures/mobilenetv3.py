"""MobileNetV3 1x (Howard et al., ICCV 2019: MobileNetV3-Large 1.0) + SimpleBaseline's deconvolution head:
the "MobileNetV3 1x" rows of Lite-HRNet Table 5 and Dite-HRNet Table 4 (MPII val, 256x256).

Configuration only; the model code is :mod:`hrbench.models.mobilenetv3` and :mod:`hrbench.models.heads.deconv`.
No official top-down MobileNetV3 config exists (mmpose 0.x / 1.x); the Lite-HRNet authors trained this row
themselves, so the mmpose recipe of their other small comparison networks is used.
"""

from __future__ import annotations

from hrbench.architectures.mobilenet import mmpose_light_recipe

from hrbench.models.mobilenetv3 import MobileNetV3Config
from hrbench.registry import register_model


@register_model(
    "mobilenetv3_1x",
    aliases=("mobilenetv3", "mbv3", "mobilenet_v3"),
    paper="mobilenetv3",
    recipe=mmpose_light_recipe,
    convention="torchstat",
    reported=(("lite", "MobileNetV3 1x"), ("dite", "MobileNetV3 1x")),
    tags=("baseline", "small"),
    notes="NOTES",
)
def mobilenetv3_1x() -> MobileNetV3Config:
    return MobileNetV3Config()
