"""SimpleBaseline (Xiao et al., "Simple Baselines for Human Pose Estimation and Tracking", ECCV 2018):
ResNet-50/101/152 + three 4x4 stride-2 deconvolutions (256 ch) + a 1x1 conv, the "SimpleBaseline" /
"SBL" rows of Lite-HRNet Tables 3-4, Dite-HRNet Tables 2-3 and DPN Tables 6-7.

Configuration only; the model code is :mod:`hrbench.models.resnet` and
:mod:`hrbench.models.heads.deconv`. Official code: github microsoft/human-pose-estimation.pytorch
(``lib/models/pose_resnet.py``, ``experiments/{coco,mpii}/resnet*/``).
"""

from __future__ import annotations

from hrbench.models.resnet import ResNetConfig
from hrbench.registry import Recipe, register_model


def sbl_recipe(dataset: str, input_hw: tuple[int, int]) -> Recipe:
    """SimpleBaseline's own recipe (``experiments/coco/resnet50/256x192_d256x3_adam_lr1e-3.yaml``, the same
    for every depth, input and data set): Adam lr 1e-3 without weight decay or warm-up, x0.1 at epochs 90 and
    120, 140 epochs, 32 samples per GPU on 4 GPUs (README). The published rows (70.4 AP, ...) are this
    recipe's; mmpose's port (``res50_coco_256x192``: Adam 5e-4, 210 epochs, 500-iteration warm-up) is not used."""
    return Recipe("simplebaseline", "SimpleBaseline official (256x192_d256x3_adam_lr1e-3)", 140, 32, 4, 1e-3,
                  lr_steps=(90, 120), warmup_iters=0)


def _card(text: str) -> str:
    return " ".join(text.split())


@register_model(
    "simplebaseline_r50",
    aliases=("sbl_r50", "simplebaseline", "sbl", "pose_resnet_50"),
    paper="simplebaseline",
    recipe=sbl_recipe,
    convention="hrnet-summary",
    reported=(("lite", "SimpleBaseline", "ResNet-50"), ("dite", "SimpleBaseline", "ResNet-50"),
              ("dpn", "SBL", "ResNet-50")),
    tags=("baseline", "simplebaseline"),
    notes=_card("""
SimpleBaseline ResNet-50, 256x192 (official 256x192_d256x3_adam_lr1e-3; mmpose res50_coco_256x192):
ResNet-50 (stride on the 3x3) + 3 x [4x4/2 deconv 256 ch, no bias, + BN + ReLU] + 1x1 conv to K.
33,999,697 params (K=17): the published 34.0M. "GFLOPs" are HRNet's get_model_summary count (every
module whose class name contains "Conv": weight x output positions, so the head's deconvolutions count
4x their multiply-accumulates; Linear; / 2^30), the counter of the HRNet paper whose SimpleBaseline
figures the three papers copy (the UDP-Pose README prints the same set, "for convolution and linear
layers only"): 8.991 GFLOPs at 256x192 and 20.230 GFLOPs at 384x288. Not reproduced: the published
8.90 (Lite-HRNet T3, UDP README; 8.9 in Dite-HRNet T2-T3 and DPN T6) is 0.09 below the count, and
20.0 at 384x288 is 0.23 below. No counter fits the published set: conv products scale exactly with
the pixels, so the ResNet-152 minus ResNet-50 difference (backbone blocks only) must grow 2.25x from
256x192 to 384x288; it is 6.773 measured and 6.8 published at 256x192 but 15.6 published at 384x288
(measured 15.240). `hrbench flops --explain` shows the deconvolution term; the true MACs count the
deconvolutions at their input positions.
"""),
)
def simplebaseline_r50() -> ResNetConfig:
    return ResNetConfig(depth=50)


@register_model(
    "simplebaseline_r101",
    aliases=("sbl_r101", "pose_resnet_101"),
    paper="simplebaseline",
    recipe=sbl_recipe,
    convention="hrnet-summary",
    tags=("baseline", "simplebaseline"),
    notes=_card("""
SimpleBaseline ResNet-101 (ResNet-101 + the deconvolution head; official
256x192_d256x3_adam_lr1e-3): 52,991,825 params (K=17), 12.378 GFLOPs at 256x192 under HRNet's
get_model_summary count (deconvolutions at output positions, / 2^30). None of the three papers
prints a ResNet-101 row; it is registered to complete the family.
"""),
)
def simplebaseline_r101() -> ResNetConfig:
    return ResNetConfig(depth=101)


@register_model(
    "simplebaseline_r152",
    aliases=("sbl_r152", "pose_resnet_152"),
    paper="simplebaseline",
    recipe=sbl_recipe,
    convention="hrnet-summary",
    reported=(("lite", "SimpleBaseline", "ResNet-152"), ("dpn", "SBL", "")),
    tags=("baseline", "simplebaseline"),
    notes=_card("""
SimpleBaseline ResNet-152 (official 384x288_d256x3_adam_lr1e-3; the "SimpleBaseline ResNet-152"
row of Lite-HRNet T4 and "SBL" of DPN T7): 68,635,473 params (K=17) and 68,635,216 params (K=16),
both the published 68.6M. HRNet's get_model_summary count (see simplebaseline_r50): 15.765 GFLOPs
at 256x192, 35.470 GFLOPs at 384x288 and 21.019 GFLOPs at 256x256 (K=16). Not reproduced: 35.6
(Lite-HRNet T4, also the UDP README) is 0.13 above the count and inconsistent with the published
256x192 figures (see simplebaseline_r50); DPN T7's MPII 20.9 is 0.12 below, and equals the 256x192
figure 15.7 scaled by the pixel ratio 4/3 (20.93), not a count at 256x256.
"""),
)
def simplebaseline_r152() -> ResNetConfig:
    return ResNetConfig(depth=152)
