"""CPN (Chen et al., "Cascaded Pyramid Network for Multi-Person Pose Estimation", CVPR 2018): ResNet-50 +
GlobalNet + RefineNet, the "CPN" ResNet-50 256x192 rows of Lite-HRNet Table 3, Dite-HRNet Table 2 and
DPN Table 6.

Configuration only; the model code is :mod:`hrbench.models.cpn`, :mod:`hrbench.models.heads.cpn` and the
codec :mod:`hrbench.codecs.cpn`. Official code: github chenyilun95/tf-cpn (``models/COCO.res50.256x192.CPN/``).
"""

from __future__ import annotations

from hrbench.models.cpn import CPNConfig
from hrbench.registry import Recipe, register_model


def cpn_recipe(dataset: str, input_hw: tuple[int, int]) -> Recipe:
    """tf-cpn's recipe (``config.py``): Adam lr 5e-4, weight decay 1e-5, batch 32, no warm-up; lr x0.5 every
    ``lr_dec_epoch`` = 60 of its "epochs" of ``epoch_size`` = 60,000 samples, 400 of them (``max_itr``). Its
    trainer counts samples (the iteration counter advances by the batch), so training sees 24.0M samples with a
    halving every 3.6M. In hrbench epochs of COCO train2017's 149,813 person instances: 24.0M / 149,813 = 160
    epochs, a halving every 3.6M / 149,813 = 24 epochs (at 24, 48, ..., 144) -- the same number of samples and
    steps at batch 32 (the PyTorch port's 40 epochs, halving every 6, count passes over the annotations, each of
    which tf-cpn expands into 4 samples). Not carried over: the weight decay is tf-slim's L2 on the conv
    weights only (hrbench's Adam decays every parameter); BN decay 0.99 / epsilon 1e-9 (hrbench: PyTorch's
    momentum 0.1 / 1e-5); the ImageNet-pretrained ResNet-50 start; tf-cpn's own augmentation (each annotation
    as 4 samples: plain, flipped, 2 rotations within 45 degrees; hrbench uses the pipeline's top-down one)."""
    return Recipe("cpn", "tf-cpn official (COCO.res50.256x192.CPN config.py)", 160, 32, 1, 5e-4,
                  lr_steps=(24, 48, 72, 96, 120, 144), gamma=0.5, warmup_iters=0, weight_decay=1e-5)


def _card(text: str) -> str:
    return " ".join(text.split())


@register_model(
    "cpn_r50",
    aliases=("cpn", "cpn_res50", "cpn_resnet50"),
    paper="cpn",
    recipe=cpn_recipe,
    convention="hrnet-summary",
    reported=(("lite", "CPN", "ResNet-50"), ("dite", "CPN", "ResNet-50"), ("dpn", "CPN", "ResNet-50")),
    tags=("baseline", "cpn"),
    notes=_card("""
CPN ResNet-50, 256x192 (official tf-cpn COCO.res50.256x192.CPN): ResNet-50 C2..C5; GlobalNet (per level 1x1
lateral 256 + BN + ReLU, bilinear upsampling + 1x1 conv 256 with bias, add; a 1x1 256 + BN + ReLU, 3x3 conv to K
+ BN prediction per level, training only); RefineNet (i bottlenecks 256-128-256 with identity shortcut on level
i, resized to 1/4, concatenated, a bottleneck 1024-128-256 with projection, 3x3 conv to K + BN). Targets: tf-cpn's
255-peak maps, one set per Gaussian kernel 15/11/9/7 (GlobalNet C2..C5, RefineNet the 7), in units of the
peak (the output is the official one / 255, the loss x 255^2: official values and gradients), L2 loss on
GlobalNet, online hard keypoint mining (top 8 of K) on RefineNet; flip test without shift. 27,009,770 params (K=17):
the published 27.0M (the PyTorch port GengDavid/pytorch-cpn, with a projection on every RefineNet bottleneck
and BN instead of the merge bias, has 27.4M). "GFLOPs" are HRNet's get_model_summary count (conv and linear
weight x output positions, / 2^30; the HRNet paper's table the three papers copy): 6.336 GFLOPs at 256x192
for the inference network (GlobalNet's four predictions are not computed, as TF runs only the ops of
refine_out). Not reproduced: the published 6.20 (Lite-HRNet T3; 6.2 in Dite-HRNet T2, DPN T6). Measured in
every convention: true MACs 6.336 binary / 6.803 decimal G, torchstat 6.375, fvcore 6.847e9, ptflops 6.865e9;
with GlobalNet's predictions (the training graph) 6.734 binary / 7.231 decimal; the backbone alone 3.729 /
4.004, backbone + GlobalNet 4.724 / 5.073; TF's own profiler counts 2 FLOPs per MAC (twice these). The
nearest variant, a max-pool without its 1-pixel pad (VALID on the 128x96 map), gives 6.234 binary G but a
63x47 output, not the official 64x48: no counting of the released network gives 6.20. Published accuracy
68.6 AP (Lite-HRNet, Dite-HRNet) and 69.4 AP (DPN) on COCO val; the tf-cpn README gives 69.7 with its own
detector.
"""),
)
def cpn_r50() -> CPNConfig:
    return CPNConfig(depth=50)
