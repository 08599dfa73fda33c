"""HRNet baselines: Small HRNet-W16 (Lite-HRNet's baseline), HRNet-W32 / W48 (pose; W48 also the
DARK rows, decoded with DARK) and HRNet-W32 with the UDP codec."""

from __future__ import annotations

from hrbench.architectures.litehrnet import lite_recipe

from hrbench.models.hrnet import HRNetConfig
from hrbench.registry import Recipe, register_model


def hrnet_recipe(dataset: str, input_hw: tuple[int, int]) -> Recipe:
    """HRNet's Adam recipe (``w32_256x192_adam_lr1e-3``): lr 1e-3, 210 epochs, steps 170/200, 32 samples per
    GPU on 4 GPUs, with the 500-iteration warm-up of the mmpose ports; the same on every data set."""
    return Recipe("hrnet", "HRNet Adam recipe (w32_256x192_adam_lr1e-3)", 210, 32, 4, 1e-3)


def udp_recipe(dataset: str, input_hw: tuple[int, int]) -> Recipe:
    """mmpose 0.16 ``hrnet_w32_coco_256x192_udp``: Adam lr 5e-4, 210 epochs, steps 170/200, 500-iteration
    warm-up, 64 samples per GPU on 8 GPUs (mmpose's usual layout; the config names no GPU count)."""
    return Recipe("hrnet", "mmpose 0.16 hrnet_w32_coco_256x192_udp", 210, 64, 8, 5e-4)


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
Measured 28,536,113 params (K=17), 7.120 GFLOPs at 256x192, 16.020 at 384x288: 28.5M, 7.1 and 16.0
agree; Lite-HRNet Table 3's "7.10" (the HRNet paper's figure; HRNet's README prints 7.1) does not
at its second decimal, consistent with a one-decimal 7.1 printed with a trailing zero.
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
    reported=(("dpn", "HRNet-w48"), ("lite", "HRNetV1", "HRNetV1-W48"), ("lite", "DARK", "HRNetV1-W48"),
              ("dite", "DARK", "HRNet-W48")),
    notes="""
HRNet-W48 for pose: HRNet-W32's layout with widths 48/96/192/384. Counted like W32
(get_model_summary conv+linear MACs / 2^30): 63,595,745 params (K=17). The DARK rows (Zhang et
al., CVPR 2020: HRNet-W48 with distribution-aware decoding, `hrbench eval --dark`; the network is
unchanged) print 63.6M, 3.6 GFLOPs at 128x96 and 32.9 at 384x288; measured 3.654 and 32.882
GFLOPs: 32.9 agrees, 3.6 only by truncation (rounded half up it is 3.7), which Lite-HRNet Table 3
does not otherwise do.
""",
    tags=("baseline",),
)
def hrnet_w48() -> HRNetConfig:
    return HRNetConfig(widths=(48, 96, 192, 384))


@register_model(
    "hrnet_w32_udp",
    aliases=("w32_udp",),
    paper="hrnet",
    recipe=udp_recipe,
    convention="hrnet-summary",
    reported=(("dite", "UDP", "HRNet-W32"),),
    notes="""
HRNet-W32 trained and evaluated with UDP, unbiased data processing (Huang et al., CVPR 2020),
as mmpose 0.16 hrnet_w32_coco_256x192_udp: the udp codec (pixel-unit crop affine, UDP Gaussian
targets, UDP post-processing, flip test without the heatmap shift); the network is HRNet-W32's,
28,536,113 params (K=17), 7.120 GFLOPs at 256x192 and 16.020 at 384x288 (get_model_summary /
2^30). Published (UDP-Pose README, copied by Dite-HRNet Tables 2-3): 28.7M, 7.1 and 16.1. 7.1
agrees; 28.7M and 16.1 are not reproduced: the released code changes the network only for the
combined (offset) target, whose 3K-channel final layer adds 1,122 parameters (28.537M) and about 3
MFLOPs (1,088 weights x 64 x 48 / 2^20), and the README adds a constant +0.2M and +0.06 / +0.1
GFLOPs (256x192 / 384x288) to every backbone it lists, which no released layer explains.
Dite-HRNet Table 2's accuracy is UDP's test-dev row.
""",
    tags=("baseline",),
)
def hrnet_w32_udp() -> HRNetConfig:
    return HRNetConfig(widths=(32, 64, 128, 256), codec="udp")
