"""Issue 19's acceptance: a new backbone family is its model, its spec (variant, recipe, card) and
nothing else. A tiny family is defined and registered here, in the test tree, through the public
contracts only (``Backbone``, ``ModelConfig``, ``register_model(..., recipe=...)``), then counted by
every registered engine, trained, evaluated and exported without touching hrbench's own files.

The expected counts are derived by hand from the layer list below (64x48 input, K = 17):

    conv1  3x3/2, 3 -> 8, no bias   32x24 out   216 MACs x 768 positions = 165,888
    bn1 + relu1 on 8 x 768 = 6,144 elements
    dw     3x3/2, 8 groups, no bias 16x12 out    72 MACs x 192 positions =  13,824
    bn2 + relu2 on 8 x 192 = 1,536 elements
    pw     1x1, 8 -> 16, no bias                128 MACs x 192 positions =  24,576
    head   1x1, 16 -> 17, bias                  272 MACs x 192 positions =  52,224  (+ bias 17 x 192 = 3,264)
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from torch import nn

from hrbench.config import ModelConfig, require
from hrbench.models.backbone import Backbone

HW = (64, 48)
MACS = 165_888 + 13_824 + 24_576 + 52_224  # every convolution
BN_ELEMS = 8 * 768 + 8 * 192
RELU_ELEMS = BN_ELEMS
BIAS = 17 * 192
PARAMS = 216 + 16 + 72 + 16 + 128 + (16 * 17 + 17)


class StridedBackbone(Backbone):
    """A full 3x3 stride-2 convolution, a depthwise 3x3 stride-2 one and a pointwise one: 1/4 resolution."""

    out_channels = 16

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = nn.ReLU()
        self.dw = nn.Conv2d(8, 8, 3, 2, 1, groups=8, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.relu2 = nn.ReLU()
        self.pw = nn.Conv2d(8, 16, 1, bias=False)

    def forward(self, x):
        return self.pw(self.relu2(self.bn2(self.dw(self.relu1(self.bn1(self.conv1(x)))))))

    def walk(self, w, x):
        for m in (self.conv1, self.bn1, self.relu1, self.dw, self.bn2, self.relu2, self.pw):
            x = w(m, x)
        return x


@dataclasses.dataclass(frozen=True)
class StridedConfig(ModelConfig):
    """The family's configuration (its one hyper-parameter only shows the override path)."""

    width: int = 16

    def validate(self) -> None:
        require(self.width == 16, "width", "this test family has one width, 16")

    def build_backbone(self) -> nn.Module:
        return StridedBackbone()


def strided_recipe(dataset: str, input_hw: tuple[int, int]):
    from hrbench.registry import Recipe

    return Recipe("strided", "test family (Adam 1e-3, 32/GPU x 1)", 2, 32, 1, 1e-3, lr_steps=(1,))


@pytest.fixture
def family():
    """``strided_16`` registered with the public decorator (and removed afterwards)."""
    from hrbench import registry

    registry.list_models()  # the real registry first
    registry.register_model("strided_16", aliases=("strided",), paper="test", convention="torchstat",
                            recipe=strided_recipe)(lambda: StridedConfig())
    yield "strided_16"
    registry._REGISTRY.pop("strided_16")
    registry._ALIASES.pop("strided")


def test_every_engine_counts_the_new_family_as_derived_by_hand(family):
    from hrbench.complexity.engines import engine_names
    from hrbench.complexity.measure import measure

    c = measure("strided", HW)
    assert c.arch == "strided_16" and c.params == PARAMS and c.errors == {}
    assert set(engine_names()) <= set(c.counts) and all(c.counts[e] is not None for e in engine_names())
    assert c.counts["macs"] == MACS
    # torchstat: conv MACs + bias, BN 2 per element, ReLU 1 per element
    assert c.counts["paper"] == c.counts["analytic"] == MACS + BIAS + 2 * BN_ELEMS + RELU_ELEMS
    # fvcore: conv MACs (no bias), eval batch_norm 2 per element, ReLU free
    assert c.counts["fvcore"] == MACS + 2 * BN_ELEMS
    # ptflops: conv MACs + bias, BN 2 per element, ReLU twice (the module, and its patched F.relu inside it)
    assert c.counts["ptflops"] == MACS + BIAS + 2 * BN_ELEMS + 2 * RELU_ELEMS


def test_the_new_family_trains_evaluates_and_exports(family, synth, tmp_path):
    from hrbench.engine import evaluate_checkpoint, train
    from hrbench.factory import restore_model
    from hrbench.speed.onnx import export_onnx

    s = train(family, synth, epochs=2, batch=4, input_hw=HW, out=tmp_path, name="strided", device="cpu",
              workers=0, progress=False, tensorboard=False)
    assert s["epochs_done"] == 2 and s["recipe"] == "test family (Adam 1e-3, 32/GPU x 1)"
    assert s["params"] == PARAMS and np.isfinite(s["best"]["val_loss"])
    m = evaluate_checkpoint(family, s["checkpoints"]["best"], synth, device="cpu", workers=0, batch_size=4)
    assert m["arch"] == "strided_16" and m["AP"] == pytest.approx(s["best"]["AP"]) and m["flip"] is True
    model = restore_model(family, s["checkpoints"]["best"]).model
    report = export_onnx(model, tmp_path / "strided.onnx", HW, 1)
    assert (tmp_path / "strided.onnx").is_file() and report.max_abs_diff <= 1e-4
