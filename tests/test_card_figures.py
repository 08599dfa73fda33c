"""Every "measured" figure a model card prints (``architectures/*.py`` notes, shown by ``hrbench
info``) is what :func:`hrbench.complexity.measure.measure` counts today.

Each figure is listed once below with the model, input and keypoint count it was measured at (a card
may quote another model's figure, e.g. the CCW ablations quote the two-1x1-dropped naive model). A
coverage check finds every figure-shaped number in every card and requires it to be listed here, so a
new or edited card figure cannot go unchecked.
"""

from __future__ import annotations

import functools
import re

import pytest

from hrbench.complexity.measure import measure
from hrbench.registry import get_entry, list_models

COCO, COCO_L, MPII = ((256, 192), 17), ((384, 288), 17), ((256, 256), 16)
DROP2 = "wider_naive_litehrnet_18_drop2"

#: card -> [(text as printed, what it is, model measured (None: the card's), overrides, (input, K))]
FIGURES: dict[str, list[tuple[str, str, str | None, dict, tuple]]] = {
    "litehrnet_18": [("205.23", "mflops", None, {}, COCO), ("461.56", "mflops", None, {}, COCO_L),
                     ("273.43", "mflops", None, {}, MPII), ("1,130,769", "params", None, {}, COCO)],
    "litehrnet_30": [("319.20", "mflops", None, {}, COCO), ("717.84", "mflops", None, {}, COCO_L),
                     ("425.34", "mflops", None, {}, MPII), ("1,763,717", "params", None, {}, COCO)],
    "naive_litehrnet_18": [("194.76", "mflops", None, {}, COCO), ("259.55", "mflops", None, {}, MPII),
                           ("760,365", "params", None, {}, COCO)],
    "wider_naive_litehrnet_18": [("311.05", "mflops", None, {}, COCO), ("414.58", "mflops", None, {}, MPII),
                                 ("1,318,625", "params", None, {}, COCO)],
    "wider_naive_litehrnet_18_drop1": [("248.36", "mflops", None, {}, COCO), ("330.98", "mflops", None, {}, MPII),
                                       ("1,102,305", "params", None, {}, COCO)],
    DROP2: [("188.89", "mflops", None, {}, COCO), ("251.69", "mflops", None, {}, MPII),
            ("885,985", "params", None, {}, COCO)],
    "litehrnet_18_ccw_spatial": [("190.71", "mflops", None, {}, COCO), ("254.06", "mflops", None, {}, MPII),
                                 ("994,785", "params", None, {}, COCO), ("885,985", "params", DROP2, {}, COCO),
                                 ("188.89", "mflops", DROP2, {}, COCO)],
    "litehrnet_18_ccw_multires": [("203.41", "mflops", None, {}, COCO), ("271.06", "mflops", None, {}, MPII),
                                  ("1,021,969", "params", None, {}, COCO), ("885,985", "params", DROP2, {}, COCO),
                                  ("188.89", "mflops", DROP2, {}, COCO)],
    "ditehrnet_18": [("209.80", "mflops", None, {}, COCO), ("471.86", "mflops", None, {}, COCO_L),
                     ("279.52", "mflops", None, {}, MPII), ("1,186,933", "params", None, {}, COCO)],
    "ditehrnet_30": [("329.82", "mflops", None, {}, COCO), ("741.77", "mflops", None, {}, COCO_L),
                     ("439.51", "mflops", None, {}, MPII), ("1,862,549", "params", None, {}, COCO)],
    "litehrnet_18_acm": [("209.34", "mflops", None, {}, COCO), ("278.94", "mflops", None, {}, MPII),
                         ("1,093,985", "params", None, {}, COCO)],
    "litehrnet_18_dsc": [("209.27", "mflops", None, {}, COCO), ("278.79", "mflops", None, {}, MPII),
                         ("1,221,345", "params", None, {}, COCO)],
    "litehrnet_18_acm_dsc": [("213.38", "mflops", None, {}, COCO), ("284.30", "mflops", None, {}, MPII),
                             ("1,184,561", "params", None, {}, COCO)],
    "small_hrnet_w16": [("551.67", "mflops", None, {}, COCO), ("1,284,961", "params", None, {}, COCO)],
    "hrnet_w32": [("28,536,113", "params", None, {}, COCO), ("7.120", "gflops", None, {}, COCO)],
    "hrnet_w48": [("63,595,745", "params", None, {}, COCO), ("32.882", "gflops", None, {}, COCO_L)],
    "hrnet_w32_udp": [("28,536,113", "params", None, {}, COCO), ("7.120", "gflops", None, {}, COCO)],
    "simplebaseline_r50": [("33,999,697", "params", None, {}, COCO), ("8.991", "gflops", None, {}, COCO),
                           ("20.230", "gflops", None, {}, COCO_L)],
    "simplebaseline_r101": [("52,991,825", "params", None, {}, COCO), ("12.378", "gflops", None, {}, COCO)],
    "simplebaseline_r152": [("68,635,473", "params", None, {}, COCO), ("68,635,216", "params", None, {}, MPII),
                            ("15.765", "gflops", None, {}, COCO), ("35.470", "gflops", None, {}, COCO_L),
                            ("21.019", "gflops", None, {}, MPII)],
    "mobilenetv2_1x": [("9,569,809", "params", None, {}, COCO), ("9,569,552", "params", None, {}, MPII),
                       ("1.478", "gflops", None, {}, COCO), ("3.326", "gflops", None, {}, COCO_L),
                       ("1.970", "gflops", None, {}, MPII)],
    "shufflenetv2_1x": [("7,550,965", "params", None, {}, COCO), ("7,550,708", "params", None, {}, MPII),
                        ("1.277", "gflops", None, {}, COCO), ("2.874", "gflops", None, {}, COCO_L),
                        ("1.702", "gflops", None, {}, MPII)],
    "hourglass_8": [("25,437,960", "params", None, {}, COCO), ("25,434,112", "params", None, {}, MPII),
                    ("19.178", "gflops", None, {}, COCO), ("25.556", "gflops", None, {}, MPII),
                    ("25,598,472", "params", None, {"stem": "bearpaw"}, COCO),
                    ("19.635", "gflops", None, {"stem": "bearpaw"}, COCO),
                    ("25,379,144", "params", None, {"bias": False}, COCO)],
    "cpn_r50": [("27,009,770", "params", None, {}, COCO), ("6.336", "gflops", None, {}, COCO)],
    "mobilenetv3_1x": [("9,006,912", "params", None, {}, MPII), ("1.778", "gflops", None, {}, MPII),
                       ("5,574,592", "params", None, {"final_conv": False}, MPII),
                       ("1.574", "gflops", None, {"final_conv": False}, MPII),
                       ("7,494,632", "params", None, {"se": False}, MPII),
                       ("1.776", "gflops", None, {"se": False}, MPII),
                       ("4,062,312", "params", None, {"se": False, "final_conv": False}, MPII),
                       ("1.571", "gflops", None, {"se": False, "final_conv": False}, MPII)],
    "dy_mobilenetv2_1x": [("17,214,673", "params", None, {}, COCO), ("1.472", "gflops", None, {}, COCO)],
    "dyrelu_mobilenetv2_1x": [("16,298,281", "params", None, {}, COCO), ("1.480", "gflops", None, {}, COCO),
                              ("22,964,545", "params", None, {"relu_reduction": 4}, COCO)],
    "dpn2_hrnet": [("29.464M / 7.784", "M/G", None, {}, COCO),
                   ("29.459M / 7.781", "M/G", None, {"conv2": "conv3x3", "variant": "literal"}, COCO)],
    "rtmpose_t": [("3,337,007", "params", None, {}, COCO), ("0.359", "gdec", None, {}, COCO)],
    "rtmpose_s": [("5,473,251", "params", None, {}, COCO), ("0.682", "gdec", None, {}, COCO)],
    "rtmpose_m": [("13,587,611", "params", None, {}, COCO), ("1.929", "gdec", None, {}, COCO)],
}

#: What a measured figure looks like in a card: MFLOPs (2 decimals) at an input, a parameter count,
#: DPN's "params M / GFLOPs", binary GFLOPs (3 decimals) of the deconvolution-head families, or decimal
#: GFLOPs (3 decimals) of the mmcv-counted RTMPose cards.
FIGURE_SHAPES = (r"\d+\.\d\d(?= \(\d+x\d+| at \d+x\d+| MFLOPs)", r"\d{1,3}(?:,\d{3})+(?= params| \(K=)",
                 r"\d+\.\d{3}M / \d+\.\d{3}", r"\d+\.\d{3}(?= GFLOPs)", r"\d+\.\d{3}(?= decimal GFLOPs)")


@functools.cache
def _counted(model: str, overrides: tuple, input_hw: tuple[int, int], k: int) -> tuple[int, float]:
    r = measure(model, input_hw, k, overrides=dict(overrides) or None, engines=("paper",))
    return r.params, r.paper_mflops


def _as_printed(kind: str, params: int, mflops: float) -> str:
    if kind == "mflops":
        return f"{mflops:.2f}"
    if kind == "params":
        return f"{params:,}"
    if kind == "gflops":
        return f"{mflops / 1024:.3f}"  # binary G of the card's convention
    if kind == "gdec":
        return f"{mflops * 2**20 / 1e9:.3f}"  # decimal G (mmcv prints count / 1e9)
    return f"{params / 1e6:.3f}M / {mflops / 1024:.3f}"  # hrnet-summary GFLOPs: binary G


@pytest.mark.parametrize("card", sorted(FIGURES))
def test_card_figures_are_measured_today(card):
    notes = get_entry(card).notes
    for text, kind, model, overrides, (input_hw, k) in FIGURES[card]:
        assert text in notes, f"{card}: the card no longer prints {text}"
        counted = _as_printed(kind, *_counted(model or card, tuple(sorted(overrides.items())), input_hw, k))
        assert counted == text, f"{card}: prints {text}, {model or card} at {input_hw} K={k} counts {counted}"


def test_every_card_figure_is_listed():
    unlisted = {}
    for name in list_models():
        notes = " ".join(get_entry(name).notes.split())
        found = {m for shape in FIGURE_SHAPES for m in re.findall(shape, notes)}
        listed = {text for text, *_ in FIGURES.get(name, [])}
        if found - listed:
            unlisted[name] = sorted(found - listed)
    assert unlisted == {}
    # the shapes do find the figures (else the check above could not fail)
    assert {m for shape in FIGURE_SHAPES for m in re.findall(shape, get_entry("litehrnet_18").notes)} == \
        {"205.23", "461.56", "273.43", "1,130,769"}
