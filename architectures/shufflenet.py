"""ShuffleNetV2 1x (Ma et al., ECCV 2018) + SimpleBaseline's deconvolution head: the "ShuffleNetV2 1x"
rows of Lite-HRNet Tables 3-5 and Dite-HRNet Tables 2-4, as mmpose 0.x trained it
(``configs/top_down/shufflenet_v2/{coco,mpii}/``).

Configuration only; the model code is :mod:`hrbench.models.shufflenetv2` and
:mod:`hrbench.models.heads.deconv`.
"""

from __future__ import annotations

from hrbench.architectures.mobilenet import mmpose_light_recipe

from hrbench.models.shufflenetv2 import ShuffleNetV2Config
from hrbench.registry import register_model


@register_model(
    "shufflenetv2_1x",
    aliases=("shufflenetv2", "shufflenet_v2"),
    paper="shufflenetv2",
    recipe=mmpose_light_recipe,
    convention="torchstat",
    reported=(("lite", "ShuffleNetV2 1x"), ("dite", "ShuffleNetV2 1x")),
    tags=("baseline", "small"),
    notes=" ".join("""
mmpose 0.x shufflenetv2_coco_256x192 (also 384x288 and MPII 256x256): ShuffleNetV2(widen_factor=1.0)
to the 1024-channel 1x1 conv, then SimpleBaseline's head (3 x [4x4/2 deconv 256 ch + BN + ReLU] + 1x1
conv to K); ImageNet-pretrained backbone (mmcls://shufflenet_v2; hrbench starts from scratch unless
given a checkpoint). Counted with torchstat, binary G, as the Lite-HRNet authors did (channel split,
concatenation and shuffle are functional: 0): 7,550,965 params (K=17), 7,550,708 params (K=16): the
published 7.6M; 1.277 GFLOPs at 256x192, 2.874 GFLOPs at 384x288, 1.702 GFLOPs at 256x256 (K=16): the
published 1.28 / 2.87 / 1.70 (Lite-HRNet T3-T5); Dite-HRNet T2-T4 print them truncated to one decimal
(1.2 / 2.8 / 1.7). Every published cell reproduces.
""".split()),
)
def shufflenetv2_1x() -> ShuffleNetV2Config:
    return ShuffleNetV2Config(widen_factor=1.0)
