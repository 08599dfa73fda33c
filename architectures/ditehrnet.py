"""Dite-HRNet variants (Li et al., IJCAI-ECAI 2022), its Table 6 ablations on Lite-HRNet-18, and the
Table 5 (G x N) and Table 6 grids.

Configuration only; the model code is :mod:`hrbench.models.ditehrnet`. Official configs:
github ZiyiZhang27/Dite-HRNet ``configs/top_down/dite_hrnet/``. Counts use the Dite-HRNet
repository's torchstat (the dynamic-kernel convolution counted as a Conv2d), binary M, full
model with the 1x1 head.
"""

from __future__ import annotations

from hrbench.models.ditehrnet import DiteHRNetConfig
from hrbench.registry import Grid, GridCell, Recipe, register_grid, register_model

_DITE_COMMON = """
Differences from the paper's text, all as in the official code: the DGC block is the second
half of the stem (stage 1, Table 1) and every one of its convolutions uses DKA with N=4; the
DKA attention (Eq. 3) has a BatchNorm between its first FC (1x1 conv, no bias, width C/4) and
the ReLU; GCM (Eq. 6) ends with a BatchNorm after the context weighting; DCM's adaptive context
pool to the lowest resolution (Eq. 5, Fig. 3) reshapes the flattened features into chunks
instead of spatial windows (the chunks cut across channels); the multi-resolution fusion adds
the highest branch twice and, its ReLU being in place, feeds the lower outputs ReLU of that sum.
Dead parameters: DCM builds a mask convolution for every branch but never calls the one of the
lowest-resolution branch ({dead} parameters here), which the official parameter count and
checkpoints include. The paper and README truncate MFLOPs to one decimal (471.86 -> 471.8,
741.77 -> 741.7) and #Params to 0.1M (1.19M -> 1.1M).
"""


def dite_recipe(dataset: str, input_hw: tuple[int, int]) -> Recipe:
    """The official Dite-HRNet recipe (github ZiyiZhang27/Dite-HRNet; its paper, Sec. 4.1): Lite-HRNet's
    optimiser, warm-up and steps, 32 samples per GPU on 8 GPUs, 270 epochs (COCO; 260 on MPII)."""
    return Recipe("dite", "Dite-HRNet official configs", 260 if dataset == "mpii" else 270, 32, 8, 2e-3)


@register_model(
    "ditehrnet_18",
    aliases=("dite18",),
    paper="dite",
    recipe=dite_recipe,
    convention="torchstat-dite",
    reported=(("dite", "Dite-HRNet-18"), ("dite-readme", "Dite-HRNet-18")),
    tags=("dite", "official"),
    notes="""
Official config ditehrnet_18_coco_256x192 (also 384x288 and MPII 256x256): stem 32 channels
(3x3/2 conv + DGC block), stages of 2/4/2 modules with 2/3/4 branches, 2 DMC blocks per module,
widths 40/80/160/320, iterative head; DSC G = 1,1,2,4 and N = 4,4,2,1 (highest to lowest
resolution branch), GCM reductions 4,4,8,8, DCM reduction 8. Measured (/2^20): 209.80
(256x192, K=17), 471.86 (384x288), 279.52 (256x256, K=16); 1,186,933 params (K=17), equal to
the official implementation. Loads the official checkpoints key for key.
Table 5 (grid dite-table5, G x N on this model): all 16 printed GFLOPs reproduce (MFLOPs / 1000,
truncated) and every cell's params equal the official implementation's, but the printed #Params
round inconsistently: truncated in G=1111/N=1111, G=1111/N=4421, G=1124/N=4421 (this model,
1.187M -> 1.1), G=1124/N=1244 and G=4444/N=1111; rounded in G=1111/N=1244 and G=4211/N=4444;
G=1124/N=4444 prints 1.2 for 1.306M (neither).
""" + _DITE_COMMON.format(dead="1,456"),
)
def ditehrnet_18() -> DiteHRNetConfig:
    return DiteHRNetConfig()


@register_model(
    "ditehrnet_30",
    aliases=("dite30",),
    paper="dite",
    recipe=dite_recipe,
    convention="torchstat-dite",
    reported=(("dite", "Dite-HRNet-30"), ("dite-readme", "Dite-HRNet-30")),
    tags=("dite", "official"),
    notes="""
Official config ditehrnet_30_coco_256x192: as Dite-HRNet-18 with 3/8/3 modules per stage.
Measured (/2^20): 329.82 (256x192, K=17), 741.77 (384x288), 439.51 (256x256, K=16);
1,862,549 params (K=17).
""" + _DITE_COMMON.format(dead="2,508"),
)
def ditehrnet_30() -> DiteHRNetConfig:
    return DiteHRNetConfig(num_modules=(3, 8, 3))


_T6_NOTE = """
Dite-HRNet Table 6 ablation (Section 4.3); not in the official code. Reading: the official
Lite-HRNet-18 (its stem, transitions, fusion with out-of-place ReLU, head) with {what}.
Measured (/2^20): {coco} at 256x192 (K=17, published {pc}), {mpii} at 256x256 (K=16, published
{pm}); {params} params (K=17, published {pp}M, truncated). All three ablations come out 0.6% to 1.01%
below the printed MFLOPs, and the printed ones are not additive (ACM +5.4, DSC +5.8, both
+10.3 over Lite-HRNet-18's 205.2) while the released modules are (+4.10, +4.04, +8.15); no
substitution of the released modules found reproduces them, so the ablations were probably
measured on an earlier version of the blocks. Dite-HRNet-18 itself (this row's blocks with the
DGC stem) matches to the digit.
"""


@register_model(
    "litehrnet_18_acm",
    paper="dite",
    recipe=dite_recipe,
    convention="torchstat-dite",
    reported=(("dite", "Lite-HRNet-18 with ACM"),),
    tags=("dite", "ablation"),
    notes=_T6_NOTE.format(
        what="ACM in each CCW block: DCM replaces the cross-resolution weighting and GCM the spatial "
             "weighting (DCM/GCM as in Dite-HRNet); the 3x3 depth-wise conv + BN stays (a DMC block with "
             "G = N = 1)",
        coco="209.34", pc="210.6, -0.60%", mpii="278.94", pm="280.6, -0.59%", params="1,093,985", pp="1.0"),
)
def litehrnet_18_acm() -> DiteHRNetConfig:
    return DiteHRNetConfig(stem="lite", groups=(1, 1, 1, 1), kernels=(1, 1, 1, 1), fuse_relu_inplace=False)


@register_model(
    "litehrnet_18_dsc",
    paper="dite",
    recipe=dite_recipe,
    convention="torchstat-dite",
    reported=(("dite", "Lite-HRNet-18 with DSC"),),
    tags=("dite", "ablation"),
    notes=_T6_NOTE.format(
        what="DSC (G = 1,1,2,4, N = 4,4,2,1 as in Dite-HRNet-18) in place of each CCW block's 3x3 "
             "depth-wise conv + BN; the cross-resolution and spatial weightings stay",
        coco="209.27", pc="211.0, -0.82%", mpii="278.79", pm="281.1, -0.82%", params="1,221,345", pp="1.2"),
)
def litehrnet_18_dsc() -> DiteHRNetConfig:
    return DiteHRNetConfig(stem="lite", context="ccw", fuse_relu_inplace=False)


@register_model(
    "litehrnet_18_acm_dsc",
    paper="dite",
    recipe=dite_recipe,
    convention="torchstat-dite",
    reported=(("dite", "Lite-HRNet-18 with ACM & DSC"),),
    tags=("dite", "ablation"),
    notes=_T6_NOTE.format(
        what="both ACM and DSC, i.e. Dite-HRNet-18's DMC blocks on Lite-HRNet-18's stem",
        coco="213.38", pc="215.5, -0.98%", mpii="284.30", pm="287.2, -1.01%", params="1,184,561", pp="1.1"),
)
def litehrnet_18_acm_dsc() -> DiteHRNetConfig:
    return DiteHRNetConfig(stem="lite", fuse_relu_inplace=False)


# --- Table 5: DSC hyper-parameters G (groups) x N (kernels), Dite-HRNet-18, COCO 256x192 -------
T5_GROUPS = ((1, 1, 1, 1), (1, 1, 2, 4), (4, 2, 1, 1), (4, 4, 4, 4))
T5_KERNELS = ((1, 1, 1, 1), (4, 4, 2, 1), (1, 2, 4, 4), (4, 4, 4, 4))


def _printed(values: tuple[int, ...]) -> str:
    """A Table 5 row/column header as printed: the values from the highest-resolution branch."""
    return " ".join(str(v) for v in values)


register_grid(Grid(
    name="dite-table5",
    source="dite",
    table="T5",
    description="Dite-HRNet Table 5: DSC groups G x kernels N (highest to lowest resolution branch), "
                "Dite-HRNet-18 on COCO val 256x192. The printed GFLOPs are the MFLOPs figure (count / 2^20) "
                "divided by 1000 and truncated to two decimals (240.30 -> 0.24); so read, all 16 reproduce "
                "(count / 2^30 does not: 241.21 / 1024 = 0.2356 is printed 0.24, 240.30 / 1024 = 0.2347 too). "
                "Printed #Params mix rounding modes: truncated in G=1111 "
                "N=1111 (1.096M -> 1.0), G=1111 N=4421 (1.161 -> 1.1), G=1124 N=4421 (1.187 -> 1.1), "
                "G=1124 N=1244 (1.284 -> 1.2), G=4444 N=1111 (1.178 -> 1.1); rounded in G=1111 N=1244 "
                "(1.1997 -> 1.2), G=4211 N=4444 (1.279 -> 1.3); G=1124 N=4444 prints 1.2 for 1.306M "
                "(neither). Every cell's params equal the official implementation's.",
    cells=tuple(
        GridCell(labels={"G": _printed(g), "N": _printed(n)}, model="ditehrnet_18",
                 overrides={"groups": g, "kernels": n}, dataset="coco", input_hw=(256, 192))
        for g in T5_GROUPS for n in T5_KERNELS
    ),
))

# --- Table 6: ACM and DSC on Lite-HRNet-18, COCO val 256x192 and MPII val 256x256 ------------
_T6_ROWS = (
    ("Lite-HRNet-18", "litehrnet_18"),
    ("Lite-HRNet-18 with ACM", "litehrnet_18_acm"),
    ("Lite-HRNet-18 with DSC", "litehrnet_18_dsc"),
    ("Lite-HRNet-18 with ACM & DSC", "litehrnet_18_acm_dsc"),
    ("Dite-HRNet-18", "ditehrnet_18"),
)

register_grid(Grid(
    name="dite-table6",
    source="dite",
    table="T6",
    description="Dite-HRNet Table 6: ACM and DSC applied to Lite-HRNet-18 (COCO val 256x192, MPII val 256x256)",
    cells=tuple(GridCell(labels={"model": printed}, model=model, dataset=ds, input_hw=hw)
                for ds, hw in (("coco", (256, 192)), ("mpii", (256, 256))) for printed, model in _T6_ROWS),
))
