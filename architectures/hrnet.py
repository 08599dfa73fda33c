"""HRNet baselines: Small HRNet-W16 (Lite-HRNet's baseline) and HRNet-W32 / W48 (pose)."""

from __future__ import annotations

from hrbench.architectures.litehrnet import lite_recipe

from hrbench.models.hrnet import HRNetConfig
from hrbench.registry import Recipe, register_model


def hrnet_recipe(dataset: str, input_hw: tuple[int, int]) -> Recipe:
    """HRNet's Adam recipe (``w32_256x192_adam_lr1e-3``): lr 1e-3, 210 epochs, steps 170/200, 32 samples per
    GPU on 4 GPUs, with the 500-iteration warm-up of the mmpose ports; the same on every data set."""
    return Recipe("hrnet", "HRNet Adam recipe (w32_256x192_adam_lr1e-3)", 210, 32, 4, 1e-3)


@register_model(
    "small_hrnet_w16",
    aliases=("small_w16", "small_hrnet"),
    paper="lite",
    recipe=lite_recipe,  # Lite-HRNet's baseline, trained with its recipe
    convention="torchstat",
    reported=(("lite", "Small HRNet"), ("lite", "Small HRNet-W16"), ("dite", "Small HRNet")),
    notes="""
Small HRNet-W16 as the Lite-HRNet paper used it (Sec. 3, Fig. 2; "HRNet-W18 small v1" in
HRNet-Semantic-Segmentation, whose branch widths are nevertheless 16/32/64/128): two 3x3/2 stem
convs, one Bottleneck (32 planes) in stage 1, then one module per stage with 2 BasicBlocks per
branch. The Dite-HRNet paper prints the same model as "HRNet-W18". Counted with torchstat
(binary M) as the Lite-HRNet authors did: 1,284,961 params, 551.67 MFLOPs at 256x192.
""",
    tags=("baseline",),
)
def small_hrnet_w16() -> HRNetConfig:
    return HRNetConfig(stage1_blocks=1, stage1_planes=32, widths=(16, 32, 64, 128), modules=(1, 1, 1),
                       blocks=(2, 2, 2))


@register_model(
    "hrnet_w32",
    aliases=("w32",),
    paper="hrnet",
    recipe=hrnet_recipe,
    convention="hrnet-summary",
    reported=(("dite", "HRNet"), ("dpn", "HRNet-w32"), ("lite", "HRNetV1", "HRNetV1-W32")),
    notes="""
HRNet-W32 for pose (Sun et al. 2019): stage 1 = 4 Bottlenecks, stages 2/3/4 = 1/4/3 modules of
4 BasicBlocks per branch, widths 32/64/128/256. "GFLOPs" are HRNet's get_model_summary count
(multiply-accumulates of Conv2d and Linear, every call) / 2^30. The Lite-HRNet paper's
"HRNetV1" rows (W32 and W48 under one name) are told apart by their backbone column.
""",
    tags=("baseline",),
)
def hrnet_w32() -> HRNetConfig:
    return HRNetConfig(widths=(32, 64, 128, 256))


@register_model(
    "hrnet_w48",
    aliases=("w48",),
    paper="hrnet",
    recipe=hrnet_recipe,
    convention="hrnet-summary",
    reported=(("dpn", "HRNet-w48"), ("lite", "HRNetV1", "HRNetV1-W48")),
    notes="""
HRNet-W48 for pose: HRNet-W32's layout with widths 48/96/192/384. Counted like W32
(get_model_summary conv+linear MACs / 2^30).
""",
    tags=("baseline",),
)
def hrnet_w48() -> HRNetConfig:
    return HRNetConfig(widths=(48, 96, 192, 384))
