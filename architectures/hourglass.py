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
    epochs, 32 samples per GPU on 8 GPUs. Newell's own RMSprop (lr 2.5e-4, alpha 0.99, batch 6, ``opts.lua``)
    is not used: hrbench's trainer has Adam only, and the published 66.9 AP is a COCO 256x192 figure from a
    re-implementation (CPN paper's comparison), not Newell's MPII training."""
    return Recipe("hourglass", "mmpose 0.x top_down hourglass52_coco_256x256", 210, 32, 8, 5e-4)


NOTES = """
PLACEHOLDER
"""


@register_model(
    "hourglass_8",
    aliases=("hourglass8", "hg8", "hourglass", "stacked_hourglass_8"),
    paper="hourglass",
    recipe=hourglass_recipe,
    convention="hrnet-summary",
    reported=(("lite", "8-stage Hourglass"), ("dite", "8-stage Hourglass"), ("dpn", "Hourglass")),
    tags=("baseline", "hourglass"),
    notes=" ".join(NOTES.split()),
)
def hourglass_8() -> HourglassConfig:
    return HourglassConfig(num_stacks=8, num_features=256, depth=4, num_blocks=1)
