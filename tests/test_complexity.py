"""Complexity engine: true MACs, paper hooks vs analytic walker, fvcore/ptflops skip lists, Table 2."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hrbench.complexity.conventions import HRNET_SUMMARY, TORCHSTAT
from hrbench.complexity.hooks import hook_counts
from hrbench.complexity.measure import measure, measure_model
from hrbench.complexity.probe import count_macs, run_probe
from hrbench.complexity.table2 import PRINTED, closed_form, layer_counts, table2
from hrbench.complexity.third_party import fvcore_count, ptflops_count
from hrbench.complexity.walker import analytic_counts
from hrbench.config import ModelConfig
from hrbench.registry import list_models, register_model


class FunctionalMix(nn.Module):
    """A block that calls F.conv2d (depthwise, groups=C) and torch.matmul itself, reuses a ReLU
    and applies a Sigmoid: everything the conventions and libraries disagree about."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.relu = nn.ReLU()
        self.dw_weight = nn.Parameter(torch.randn(c, 1, 3, 3) * 0.1)
        self.sig = nn.Sigmoid()

    def forward(self, x):
        y = self.relu(self.bn(self.conv(x)))
        y = F.conv2d(y, self.dw_weight, padding=1, groups=y.shape[1])
        n, c, h, w = y.shape
        a = torch.matmul(y.flatten(2).transpose(1, 2), y.flatten(2))  # (n, hw, hw)
        z = torch.matmul(y.flatten(2), a).view(n, c, h, w)
        return self.relu(x + self.sig(z) * y)

    def walk(self, w, x):
        y = w(self.relu, w(self.bn, w(self.conv, x)))
        w(self.sig, y)
        return w(self.relu, y)


class TinyBackbone(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, 2, 1), nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c, 3, 2, 1))
        self.block = FunctionalMix(c)
        self.out_channels = c

    def forward(self, x):
        return self.block(self.stem(x))

    def walk(self, w, x):
        return w(self.block, w(self.stem, x))


@dataclasses.dataclass(frozen=True)
class TinyConfig(ModelConfig):
    width: int = 8

    def build_backbone(self) -> nn.Module:
        return TinyBackbone(self.width)


def register_tiny() -> None:
    """Register ``_test_tiny`` (torchstat) and ``_test_tiny_dite`` (torchstat-dite) once."""
    if not list_models("_test_tiny"):
        register_model("_test_tiny", paper="lite")(lambda: TinyConfig())
    if not list_models("_test_tiny_dite"):
        register_model("_test_tiny_dite", paper="dite", convention="torchstat-dite")(lambda: TinyConfig())


register_tiny()
HW = (32, 24)  # stem output 8x6, C = 8
# Hand counts at 32x24, C = 8 (stem conv1 -> 16x12, conv2 -> 8x6; head 8 -> 17 at 8x6):
CONV_MACS = 27 * 8 * 192 + 72 * 8 * 48 + 72 * 8 * 48 + 8 * 17 * 48  # nn.Conv2d layers, no bias
DW_MACS = 9 * 8 * 48  # F.conv2d, groups = 8
MATMUL_MACS = 48 * 8 * 48 + 8 * 48 * 48  # (hw x C)(C x hw) and (C x hw)(hw x hw)
BIAS = 8 * 192 + 8 * 48 + 17 * 48
BN_ELEMS = 8 * 192 + 8 * 48


def test_true_macs_count_functional_conv_and_matmul():
    model = TinyBackbone(8)
    r = count_macs(nn.Sequential(model), HW)
    assert r.total == 27 * 8 * 192 + 2 * 72 * 8 * 48 + DW_MACS + MATMUL_MACS
    assert r.by_module["0.block"] == DW_MACS + MATMUL_MACS  # the functional ops are the block's own
    assert r.by_module["0.block.conv"] == 72 * 8 * 48
    assert r.by_module["0.stem.0"] == 27 * 8 * 192
    assert {"sigmoid", "mul", "add"} <= set(r.other_ops)


def test_macs_rules_for_every_matrix_product():
    class Products(nn.Module):
        def forward(self, x):
            a = x.flatten(1)  # (1, 12)
            w = torch.ones(12, 5)
            out = a @ w  # 60
            out = out + F.linear(a, torch.ones(7, 12), torch.ones(7)).sum()  # 84
            out = out + torch.einsum("bi,ij->bj", a, w).sum()  # 60
            out = out + torch.bmm(a[None], w[None]).sum()  # 60
            out = out + torch.addmm(torch.ones(5), a, w).sum()  # 60
            out = out + torch.baddbmm(torch.ones(1, 1, 5), a[None], w[None]).sum()  # 60
            out = out + F.conv_transpose2d(x, torch.ones(3, 2, 2, 2), stride=2).sum()  # 12 in * 2 out * 4
            return out

    r = count_macs(Products(), (2, 2))
    assert r.total == 60 + 84 + 60 + 60 + 60 + 60 + 12 * 2 * 4


def test_paper_hooks_equal_analytic_and_hand_count():
    model = TinyBackbone(8)
    paper = hook_counts(model, TORCHSTAT, HW)
    assert paper == analytic_counts(model, TORCHSTAT, HW)
    # conv (+bias) + BN 2/elem + stem ReLU + the reused ReLU counted once (last call)
    assert sum(paper.values()) == (CONV_MACS - 8 * 17 * 48) + 8 * 192 + 8 * 48 + 2 * BN_ELEMS + 8 * 192 + 8 * 48
    macs = hook_counts(model, HRNET_SUMMARY, HW)
    assert sum(macs.values()) == CONV_MACS - 8 * 17 * 48  # conv MACs only: no F.conv2d, no matmul


def test_fvcore_counts_functional_ops_and_lists_its_skips():
    model = nn.Sequential(TinyBackbone(8))
    r = fvcore_count(model, HW)
    assert r.error is None
    # one "flop" per MAC of convs (functional included) and matmuls + BN at 2 per element (affine, eval)
    assert r.total == CONV_MACS - 8 * 17 * 48 + DW_MACS + MATMUL_MACS + 2 * BN_ELEMS
    assert r.skipped["unsupported_ops"] == {"aten::add": 1, "aten::mul": 1, "aten::sigmoid": 1}
    assert r.skipped["ignored_ops"] == {"aten::relu": 3}
    assert r.skipped["uncalled_modules"] == []


def test_ptflops_misses_functional_conv_counts_matmul_and_relu_twice():
    model = nn.Sequential(TinyBackbone(8))
    probe = run_probe(model, HW)
    r = ptflops_count(model, HW, probe)
    assert r.error is None
    relu_elems = 8 * 192 + 2 * 8 * 48  # stem ReLU + the block's ReLU called twice
    conv_with_bias = CONV_MACS - 8 * 17 * 48 + 8 * 192 + 8 * 48  # the two stem convs have a bias
    # module hooks (conv + bias, BN 2/elem, ReLU per call) + the patched F.relu again + torch.matmul
    assert r.total == conv_with_bias + 2 * BN_ELEMS + relu_elems + relu_elems + MATMUL_MACS
    skipped = r.skipped
    assert skipped["zero_op_modules"] == {"Sigmoid": 1}
    assert skipped["uncounted_functions"] == {"torch.Tensor.add": 1, "torch.Tensor.mul": 1,
                                              "torch.nn.functional.conv2d": 1, "torch.sigmoid": 1}
    assert skipped["counted_twice"] == {"torch.nn.functional.relu in ReLU": 3}
    assert r.by_module["(patched functions)"] == relu_elems + MATMUL_MACS
    assert not hasattr(model, "start_flops_count")  # ptflops' leftovers removed


def test_measure_registered_tiny_all_engines():
    c = measure("_test_tiny", HW, 17, by_module=True)
    d = c.to_dict()
    assert d["analytic"] == d["paper_mflops"] and c.counts["analytic"] == c.counts["paper"]
    assert d["input"] == "32x24" and d["keypoints"] == 17 and d["arch"] == "_test_tiny"
    assert d["params"] == sum(p.numel() for p in TinyBackbone(8).parameters()) + 8 * 17 + 17
    assert c.counts["macs"] == CONV_MACS + DW_MACS + MATMUL_MACS
    assert d["macs"] == c.counts["macs"] / 1e6 and d["paper_mflops"] == c.counts["paper"] / 2**20
    assert set(d["units"]) >= {"paper_mflops", "analytic", "fvcore", "ptflops", "macs"}
    paper_skips = d["skipped"]["paper"]
    assert paper_skips["uncounted_functions"]["torch.nn.functional.conv2d"] == 1
    assert paper_skips["uncounted_functions"]["torch.matmul"] == 2
    assert paper_skips["zero_count_modules"] == {"Sigmoid": 1}
    assert paper_skips["repeated_calls_not_counted"] == {"backbone.block.relu": 1}
    rows = {r["module"]: r for r in d["by_module"]}
    assert rows["backbone.block"]["macs"] * 1e6 == pytest.approx(72 * 8 * 48 + DW_MACS + MATMUL_MACS)
    assert rows["(total)"]["fvcore"] == pytest.approx(d["fvcore"])
    blocks = d["by_block_type"]
    assert blocks["FunctionalMix"]["macs"] * 1e6 == pytest.approx(72 * 8 * 48 + DW_MACS + MATMUL_MACS)
    assert blocks["HeatmapHead"]["macs"] * 1e6 == pytest.approx(8 * 17 * 48)
    assert d["errors"] == {}
    assert measure("_test_tiny", HW, 17, by_module=True).to_dict() == d  # deterministic


class ReturnsDict(nn.Module):
    """Runs fine, but the JIT tracer (fvcore) refuses a non-tensor output."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        return {"heatmaps": self.conv(x), "stride": 4}


def test_library_failure_is_recorded_not_raised(monkeypatch):
    c = measure_model(ReturnsDict(), (8, 8), engines=("paper", "fvcore", "ptflops", "macs"))
    assert c.errors["fvcore"].startswith("fvcore failed: RuntimeError")
    assert c.counts["macs"] == 3 * 4 * 64 and c.counts["ptflops"] == 3 * 4 * 64 + 4 * 64
    assert c.to_dict()["fvcore"] is None and "fvcore" not in c.skipped

    import ptflops

    def broken(*args, **kwargs):
        raise ValueError("simulated ptflops bug")

    monkeypatch.setattr(ptflops, "get_model_complexity_info", broken)
    c = measure_model(ReturnsDict(), (8, 8), engines=("ptflops", "macs"))
    assert c.errors == {"ptflops": "ptflops failed: ValueError: simulated ptflops bug"}
    assert c.counts["macs"] == 3 * 4 * 64


def test_analytic_error_is_reported():
    class NoWalk(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)

        def forward(self, x):
            return self.conv(x)

    c = measure_model(nn.Sequential(NoWalk()), (8, 8), engines=("paper", "analytic"))
    assert "needs a walk() method" in c.errors["analytic"]
    assert c.counts["paper"] == 3 * 4 * 64 + 4 * 64


def test_table2_reproduced():
    rows = table2()
    assert [r.model for r in rows] == list(PRINTED)
    assert closed_form() == layer_counts()
    assert {r.model: r.count for r in rows} == {
        "1x1 convolution": 13_107_200,
        "3x3 depthwise convolution": 2_211_840,
        "CCW w/ spatial weights": 261_760,
        "CCW w/ multi-resolution weights": 274_560,
        "CCW": 536_320,
    }
    assert all(r.matches for r in rows)
    assert [round(r.mflops, 1) for r in rows[:2]] == [12.5, 2.1]
    assert [round(r.mflops, 2) for r in rows[2:]] == [0.25, 0.26, 0.51]
    # the printed "M" is binary: decimal millions would print 13.1 for the 1x1 row
    assert round(rows[0].count / 1e6, 1) == 13.1 != rows[0].printed


@pytest.mark.skipif(not list_models("litehrnet_18"), reason="Lite-HRNet-18 not registered")
def test_litehrnet18_engines():
    c = measure("litehrnet_18", (256, 192), 17, engines=("paper", "analytic", "macs"))
    assert c.params == 1_130_769
    assert c.counts["paper"] == c.counts["analytic"]
    assert round(c.paper_mflops, 2) == 205.23  # README: 215.20e6 counted -> 205.23 "MFLOPs"
    assert c.published and c.published["delta"] == pytest.approx(c.paper_mflops - c.published["mflops"], abs=1e-3)
    # true MACs of an implementation that runs the fused f_i0 path once (architectures.md)
    assert c.counts["macs"] / 1e6 == pytest.approx(198.6, abs=0.05)
