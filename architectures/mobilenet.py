"""MobileNetV2 1x (Sandler et al., CVPR 2018) + SimpleBaseline's deconvolution head: the "MobileNetV2 1x"
rows of Lite-HRNet Tables 3-5 and Dite-HRNet Tables 2-4, as mmpose 0.x trained it
(``configs/top_down/mobilenet_v2/{coco,mpii}/``).

Configuration only; the model code is :mod:`hrbench.models.mobilenetv2` and
:mod:`hrbench.models.heads.deconv`.
"""

from __future__ import annotations

from hrbench.models.mobilenetv2 import MobileNetV2Config
from hrbench.registry import Recipe, register_model


def mmpose_light_recipe(dataset: str, input_hw: tuple[int, int]) -> Recipe:
    """mmpose 0.x's recipe of its MobileNetV2 / ShuffleNetV2 top-down configs (v0.13.0
    ``configs/top_down/{mobilenet_v2,shufflenet_v2}/*``, every input and data set): Adam lr 5e-4, linear
    warm-up over 500 iterations from 0.001 x lr, x0.1 at epochs 170 and 200, 210 epochs, 64 samples per GPU
    on 8 GPUs (the 1.x names of the same configs: ``8xb64-210e``)."""
    return Recipe("mmpose-light", "mmpose 0.x top_down mobilenet_v2 / shufflenet_v2 configs", 210, 64, 8, 5e-4)


@register_model(
    "mobilenetv2_1x",
    aliases=("mobilenetv2", "mbv2", "mobilenet_v2"),
    paper="mobilenetv2",
    recipe=mmpose_light_recipe,
    convention="torchstat",
    reported=(("lite", "MobileNetV2 1x"), ("dite", "MobileNetV2 1x")),
    tags=("baseline", "small"),
    notes=" ".join("""
mmpose 0.x mobilenetv2_coco_256x192 (also 384x288 and MPII 256x256): MobileNetV2(widen_factor=1.0)
to the 1280-channel 1x1 conv, then SimpleBaseline's head (3 x [4x4/2 deconv 256 ch + BN + ReLU] + 1x1
conv to K); ImageNet-pretrained backbone (mmcls://mobilenet_v2; hrbench starts from scratch unless
given a checkpoint). Counted with torchstat, binary G, as the Lite-HRNet authors counted their
comparison networks: 9,569,809 params (K=17), 9,569,552 params (K=16): the published 9.6M;
1.478 GFLOPs at 256x192, 3.326 GFLOPs at 384x288, 1.970 GFLOPs at 256x256 (K=16): the published
1.48 / 3.33 / 1.97 (Lite-HRNet T3, T5); Dite-HRNet T2 / T4 print them truncated to one decimal
(1.4 / 3.3 / 1.9). Not reproduced: the 9.8M of the test-dev rows (Lite-HRNet T4, Dite-HRNet T3) for the
same 384x288 model that the val rows print as 9.6M; no layout change gives both.
""".split()),
)
def mobilenetv2_1x() -> MobileNetV2Config:
    return MobileNetV2Config(widen_factor=1.0)
