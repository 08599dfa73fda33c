"""Lite-HRNet variants (Yu et al., CVPR 2021) and the paper's Table 6 / Table 7 ablation grids.

Configuration only; the model code is :mod:`hrbench.models.litehrnet`. Official configs:
github HRNet/Lite-HRNet ``configs/top_down/{lite_hrnet,naive_litehrnet}/``. All counts are
torchstat (binary M), full model with the 1x1 head, as the paper and README print them.
"""

from __future__ import annotations

from hrbench.models.litehrnet import LiteHRNetConfig
from hrbench.registry import Grid, GridCell, Recipe, register_grid, register_model

NAIVE = ("NAIVE", "NAIVE", "NAIVE")


def lite_recipe(dataset: str, input_hw: tuple[int, int]) -> Recipe:
    """The official Lite-HRNet recipe (github HRNet/Lite-HRNet ``configs/top_down/lite_hrnet``): Adam,
    lr 2e-3, 210 epochs, linear warm-up over 500 iterations from 0.001 x lr, lr x 0.1 at epochs 170 and 200,
    8 GPUs (the paper); 64 samples per GPU on COCO up to 256 px (the official config of 256x192; the paper,
    Sec. 4.1, says 32 per GPU), 32 at 384x288, on MPII and on any other data set."""
    per_gpu = 64 if dataset == "coco" and max(input_hw) <= 256 else 32
    return Recipe("lite", "Lite-HRNet official configs", 210, per_gpu, 8, 2e-3)


def _card(text: str) -> str:
    """A model card note as one paragraph (source line breaks removed)."""
    return " ".join(text.split())

NAIVE_18_CHANNELS = ((30, 60), (30, 60, 120), (30, 60, 120, 240))


@register_model(
    "litehrnet_18",
    aliases=("lite18",),
    paper="lite",
    recipe=lite_recipe,
    reported=(("lite", "Lite-HRNet-18"), ("lite-readme", "Lite-HRNet-18"), ("dite", "Lite-HRNet-18")),
    tags=("lite", "official"),
    notes=_card("""
Official config litehrnet_18_coco_256x192 (also 384x288 and MPII 256x256): stem 32->32
(expand ratio 1), stages of 2/4/2 modules with 2/3/4 branches, 2 CCW blocks per module,
reduce ratio 8, widths 40/80/160/320, iterative head. Measured (torchstat, /2^20):
205.23 (256x192, K=17), 461.56 (384x288), 273.43 (256x256, K=16); 1,130,769 params (K=17).
Loads the official checkpoints (mmpose-0.x keys) one-to-one.
"""),
)
def litehrnet_18() -> LiteHRNetConfig:
    return LiteHRNetConfig()


@register_model(
    "litehrnet_30",
    aliases=("lite30",),
    paper="lite",
    recipe=lite_recipe,
    reported=(("lite", "Lite-HRNet-30"), ("lite-readme", "Lite-HRNet-30"), ("dite", "Lite-HRNet-30")),
    tags=("lite", "official"),
    notes=_card("""
Official config litehrnet_30_coco_256x192: as Lite-HRNet-18 with 3/8/3 modules per stage.
Measured: 319.20 (256x192), 717.84 (384x288), 425.34 (256x256, K=16); 1,763,717 params (K=17).
"""),
)
def litehrnet_30() -> LiteHRNetConfig:
    return LiteHRNetConfig(num_modules=(3, 8, 3))


@register_model(
    "naive_litehrnet_18",
    aliases=("naive18",),
    paper="lite",
    recipe=lite_recipe,
    reported=(("lite", "Naive Lite-HRNet-18"), ("lite-readme", "Naive Lite-HRNet-18")),
    tags=("lite", "naive", "official"),
    notes=_card("""
Official config naive_litehrnet_18_coco_256x192: module type NAIVE (two ShuffleNet V2 shuffle
blocks per branch and module), widths 30/60/120/240. The official config declares the head's
input as 40 channels although the backbone outputs 30 (it cannot run as configured); here the
head is built on the backbone's 30 channels, which reproduces the published 194.8 / 259.6.
Measured: 194.76 (256x192), 259.55 (256x256, K=16); 760,365 params (K=17). The paper and
README print 0.7M, i.e. 0.76M truncated, while their other rows round (Lite-HRNet-30 1.76M ->
1.8M); the MFLOPs match to the digit, so the architecture is the official one.
"""),
)
def naive_litehrnet_18() -> LiteHRNetConfig:
    return LiteHRNetConfig(module_type=NAIVE, reduce_ratios=(1, 1, 1), num_channels=NAIVE_18_CHANNELS)


@register_model(
    "wider_naive_litehrnet_18",
    aliases=("wider_naive18", "wnaive18"),
    paper="lite",
    recipe=lite_recipe,
    reported=(("lite", "Wider Naive Lite-HRNet-18"), ("lite-readme", "Wider Naive Lite-HRNet-18")),
    tags=("lite", "naive", "official"),
    notes=_card("""
Official config wider_naive_litehrnet_18_coco_256x192: naive Lite-HRNet-18 at the widths of
Lite-HRNet-18 (40/80/160/320). Measured: 311.05 (256x192, published 311.1), 414.58 at 256x256
(K=16). The paper/README print 418.7 for MPII, which the official config does not give (its
MPII backbone equals the COCO one; 311.1 x 4/3 = 414.8): kept as published, not "fixed".
1,318,625 params (K=17; published 1.3M).
"""),
)
def wider_naive_litehrnet_18() -> LiteHRNetConfig:
    return LiteHRNetConfig(module_type=NAIVE, reduce_ratios=(1, 1, 1))


_DROP_NOTE = """
Lite-HRNet Table 6 ablation; no official code. Reading: the wider naive Lite-HRNet-18 with 1x1
convolutions removed from every shuffle block of the three stages (the stem is unchanged), and
no ReLU left in the shuffled branch. {which} Only this reading reproduces the printed MFLOPs
to the digit: keeping one ReLU per block adds exactly one op per branch element
(+1.61 M at 256x192, +2.15 M at 256x256) and gives {with_relu}.
"""


@register_model(
    "wider_naive_litehrnet_18_drop1",
    paper="lite",
    recipe=lite_recipe,
    reported=(("lite", "Wider Naive Lite-HRNet-18 (one 1x1 conv dropped)"),),
    tags=("lite", "naive", "ablation"),
    notes=_card(_DROP_NOTE.format(
        which="One dropped: each block's branch is 1x1 conv + BN, 3x3 depthwise conv + BN. "
              "Measured 248.36 (256x192; published 248.4), 330.98 (256x256, K=16; published 331.0), "
              "1,102,305 params (published 1.1M).",
        with_relu="249.97 / 333.13")),
)
def wider_naive_litehrnet_18_drop1() -> LiteHRNetConfig:
    return LiteHRNetConfig(module_type=NAIVE, reduce_ratios=(1, 1, 1), shuffle_pointwise=1)


@register_model(
    "wider_naive_litehrnet_18_drop2",
    paper="lite",
    recipe=lite_recipe,
    reported=(("lite", "Wider Naive Lite-HRNet-18 (two 1x1 conv dropped)"),),
    tags=("lite", "naive", "ablation"),
    notes=_card(_DROP_NOTE.format(
        which="Two dropped: each block's branch is a 3x3 depthwise conv + BN only. "
              "Measured 188.89 (256x192; published 188.9), 251.69 (256x256, K=16; published 251.7), "
              "885,985 params (published 0.9M).",
        with_relu="190.50 / 253.84")),
)
def wider_naive_litehrnet_18_drop2() -> LiteHRNetConfig:
    return LiteHRNetConfig(module_type=NAIVE, reduce_ratios=(1, 1, 1), shuffle_pointwise=0)


_CCW_NOTE = """
Lite-HRNet Table 7 ablation; no official code. Reading: Lite-HRNet-18 whose conditional
channel weighting keeps {kept} and drops {dropped} (module removed, not replaced); everything
else as the official Lite-HRNet-18. MFLOPs: measured {flops}. #Params: measured {params}; the
paper prints 0.9M for both CCW ablations, which no reading that also reproduces the MFLOPs
gives (dropping the cross-resolution weighting removes 135,984 parameters, dropping the spatial
weighting 108,800; only dropping both is 0.9M, and that model is exactly the wider naive
two-1x1-dropped one of the table's first row, 885,985 params and 188.89 MFLOPs): the printed
0.9M looks carried over from that row.
"""


@register_model(
    "litehrnet_18_ccw_spatial",
    paper="lite",
    recipe=lite_recipe,
    reported=(("lite", "Lite-HRNet-18 (CCW only w/ spatial weights)"),),
    tags=("lite", "ablation"),
    notes=_card(_CCW_NOTE.format(kept="only the spatial weights (Eq. 6)",
                           dropped="the cross-resolution weights (Eqs. 3-4)",
                           flops="190.71 (256x192; published 190.6, +0.06%), 254.06 (256x256, K=16; published 254.0)",
                           params="994,785 (K=17) = 1.0M")),
)
def litehrnet_18_ccw_spatial() -> LiteHRNetConfig:
    return LiteHRNetConfig(ccw_cross_resolution=False)


@register_model(
    "litehrnet_18_ccw_multires",
    paper="lite",
    recipe=lite_recipe,
    reported=(("lite", "Lite-HRNet-18 (CCW only w/ multi-resolution weights)"),),
    tags=("lite", "ablation"),
    notes=_card(_CCW_NOTE.format(kept="only the multi-resolution (cross-resolution) weights (Eqs. 3-4)",
                           dropped="the spatial weights (Eq. 6)",
                           flops="203.41 (256x192; published 203.5, -0.04%), 271.06 (256x256, K=16; published 271.1)",
                           params="1,021,969 (K=17) = 1.0M")),
)
def litehrnet_18_ccw_multires() -> LiteHRNetConfig:
    return LiteHRNetConfig(ccw_spatial=False)


COCO = ("coco", (256, 192))
MPII = ("mpii", (256, 256))


def _cells(rows: tuple[tuple[str, str], ...]) -> tuple[GridCell, ...]:
    """One cell per (printed model, registered model) and dataset column (COCO 256x192, MPII 256x256)."""
    return tuple(GridCell(labels={"model": printed}, model=model, dataset=ds, input_hw=hw)
                 for ds, hw in (COCO, MPII) for printed, model in rows)


register_grid(Grid(
    name="lite-table6",
    source="lite",
    table="T6",
    description="Lite-HRNet Table 6: conditional channel weighting vs 1x1 convolutions "
                "(COCO val 256x192, MPII val 256x256)",
    cells=_cells((
        ("Small HRNet-W16", "small_hrnet_w16"),
        ("Naive Lite-HRNet-18", "naive_litehrnet_18"),
        ("Wider Naive Lite-HRNet-18", "wider_naive_litehrnet_18"),
        ("Wider Naive Lite-HRNet-18 (one 1x1 conv dropped)", "wider_naive_litehrnet_18_drop1"),
        ("Wider Naive Lite-HRNet-18 (two 1x1 conv dropped)", "wider_naive_litehrnet_18_drop2"),
        ("Lite-HRNet-18", "litehrnet_18"),
        ("Lite-HRNet-30", "litehrnet_30"),
    )),
))

register_grid(Grid(
    name="lite-table7",
    source="lite",
    table="T7",
    description="Lite-HRNet Table 7: spatial vs multi-resolution weights in conditional channel weighting "
                "(COCO val 256x192, MPII val 256x256)",
    cells=_cells((
        ("Wider Naive Lite-HRNet-18 (two 1x1 conv dropped)", "wider_naive_litehrnet_18_drop2"),
        ("Lite-HRNet-18 (CCW only w/ spatial weights)", "litehrnet_18_ccw_spatial"),
        ("Lite-HRNet-18 (CCW only w/ multi-resolution weights)", "litehrnet_18_ccw_multires"),
        ("Lite-HRNet-18", "litehrnet_18"),
        ("Lite-HRNet-30", "litehrnet_30"),
    )),
))
