"""Stacked hourglass (Newell et al., ECCV 2016) with 8 stacks: the "8-stage Hourglass" rows of
Lite-HRNet Table 3, Dite-HRNet Table 2 and DPN Table 6 (25.1M, 14.3 GFLOPs, 256x192, AP 66.9).

Configuration only; the model code is :mod:`hrbench.models.hourglass`, :mod:`hrbench.models.heads.stacked`
and :mod:`hrbench.codecs.stacked`. Official code: github princeton-vl/pose-hg-train (``src/models/hg.lua``,
``src/opts.lua``); PyTorch port bearpaw/pytorch-pose (``pose/models/hourglass.py``).
"""

from __future__ import annotations

from hrbench.models.hourglass import HourglassConfig
from hrbench.registry import Recipe, register_model


def hourglass_recipe(dataset: str, input_hw: tuple[int, int]) -> Recipe:
    """mmpose 0.x's only hourglass recipe (``configs/top_down/hourglass/coco/hourglass52_coco_256x256.py``):
    Adam lr 5e-4, linear warm-up over 500 iterations from 0.001 x lr, x0.1 at epochs 170 and 200, 210
    epochs, ``samples_per_gpu=32`` (on mmpose's usual 8 GPUs; the config names no GPU count), JointsMSELoss
    with target weights; its augmentation (rotation 40, scale 0.5, half-body 0.3) is not part of a Recipe.
    Newell's own RMSprop (lr 2.5e-4, alpha 0.99, batch 6, ``opts.lua``) is not used: hrbench's trainer
    has Adam only, and the published 66.9 AP is a COCO 256x192 figure of a re-implementation (the CPN
    paper's comparison, inferred), not of Newell's MPII training."""
    return Recipe("hourglass", "mmpose 0.x top_down hourglass52_coco_256x256", 210, 32, 8, 5e-4)


NOTES = """
Newell et al. (ECCV 2016) as released (pose-hg-train hg.lua, opts.lua): 8 stacks, 256 features, hourglass
depth 4, one pre-activation residual module per position (13 per hourglass), then 1 residual and a 1x1
conv + BN + ReLU per stack; intermediate supervision on all 8 predictions (training loss: the sum of the
8 JointsMSELoss terms), predictions mapped back (1x1 K->256) and added with a 1x1 256->256 of the features;
evaluation, flip test, export and timing use the last stack only. Trained from scratch (no pretraining, as
the tables' "N"). 25,437,960 params (K=17) and 25,434,112 params (K=16). "GFLOPs" under HRNet's
get_model_summary (conv and linear products, / 2^30), the counter of the HRNet paper whose comparison table
(carried over from the CPN paper's, inferred) the three papers copy: 19.178 GFLOPs at 256x192, 25.556 GFLOPs
at 256x256 (K=16); true MACs 20.592e9 (fvcore 20.698e9, ptflops 20.889e9, torchstat 19.384 G binary).
Not reproduced: the published 25.1M / 14.3 (Lite-HRNet T3, Dite-HRNet T2, DPN T6). Measured layouts:
bearpaw/pytorch-pose's stem (residual 128->256, then 256->256, instead of 128->128, 128->256):
25,598,472 params, 19.635 GFLOPs (--set stem=bearpaw); convs without bias: 25,379,144 params, the same
19.178 (--set bias=false); hourglass depth 3 or 5: 20.29M / 30.59M params, 19.12 / 19.19 G binary. No layout
gives both figures: the stacks without the stem hold 25,085,320 parameters (25.1M; the stem 352,640), and
the network without the residual after each hourglass counts 14.303 G binary (the 8 residuals: 4.875 G), but
that network has 23,721,736 parameters. The published 14.3 is 74.6% of the measured 19.178; the layout or
counter behind it is unknown.
"""


@register_model(
    "hourglass_8",
    aliases=("hourglass8", "hg8", "stacked_hourglass_8"),
    paper="hourglass",
    recipe=hourglass_recipe,
    convention="hrnet-summary",
    reported=(("lite", "8-stage Hourglass"), ("dite", "8-stage Hourglass"), ("dpn", "Hourglass")),
    tags=("baseline", "hourglass"),
    notes=" ".join(NOTES.split()),
)
def hourglass_8() -> HourglassConfig:
    return HourglassConfig(num_stacks=8, num_features=256, depth=4, num_blocks=1)
