"""DPM / DPN: dilation schemes, receptive field, reconstructed complexity vs the slides, grids."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hrbench.cli import main
from hrbench.complexity.conventions import get_convention
from hrbench.complexity.hooks import hook_counts
from hrbench.complexity.walker import analytic_counts
from hrbench.errors import ConfigError
from hrbench.factory import create_model
from hrbench.models.dpn import DilationPyramid, dilation_schedule, pyramid_receptive_field
from hrbench.reference import reported_rows
from hrbench.registry import create_config, get_grid, list_models

SUMMARY = get_convention("hrnet-summary")


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _gflops(model: nn.Module, hw=(256, 192), convention=SUMMARY) -> float:
    return sum(analytic_counts(model, convention, hw).values()) / 2**30


@pytest.mark.parametrize(("name", "k", "hw", "params_m", "gflops", "published"), [
    # reading A figures of architectures.md (params in M to 3 decimals, conv MACs / 2^30 to 3)
    ("dpn4_32", 17, (256, 192), 0.705, 1.058, (0.7, 1.1)),
    ("dpn4_32", 16, (256, 256), 0.705, 1.410, (0.7, 1.4)),
    ("dpn4_64", 17, (256, 192), 3.341, 3.006, (3.3, 3.0)),
    ("dpn4_64", 16, (256, 256), 3.341, 4.007, (3.3, 4.0)),
    ("dpn1_64", 17, (256, 192), None, 2.109, (None, 2.1)),
    ("dpn2_64", 17, (256, 192), None, 2.408, (None, 2.4)),
    ("dpn3_64", 17, (256, 192), None, 2.707, (None, 2.7)),
    ("dpn1_64_hr", 17, (256, 192), None, 5.968, (None, 6.0)),
    ("dpn2_64_hr", 17, (256, 192), None, 7.163, (None, 7.2)),
    ("dpn3_64_hr", 17, (256, 192), None, 8.358, (None, 8.4)),
    ("dpn4_64_hr", 17, (256, 192), None, 9.554, (None, 9.6)),
])
def test_reading_a_matches_slides(name, k, hw, params_m, gflops, published):
    model = create_model(name, k)
    g = _gflops(model, hw)
    assert round(g, 3) == gflops
    assert round(g, 1) == published[1]
    if params_m is not None:
        assert round(_params(model) / 1e6, 3) == params_m
        assert round(_params(model) / 1e6, 1) == published[0]


def test_reading_b_literal():
    """Reading B (the table as printed): 0.688M / 1.046 and 3.270M / 2.956 (architectures.md)."""
    m32, m64 = create_model("dpn4_32", variant="literal"), create_model("dpn4_64", variant="literal")
    assert (round(_params(m32) / 1e6, 3), round(_gflops(m32), 3)) == (0.688, 1.046)
    assert (round(_params(m64) / 1e6, 3), round(_gflops(m64), 3)) == (3.270, 2.956)


def test_dpn2_hrnet_within_two_percent():
    model = create_model("dpn2_hrnet")
    p, g = _params(model) / 1e6, _gflops(model)
    assert abs(p - 29.5) / 29.5 < 0.02 and abs(g - 7.8) / 7.8 < 0.02
    assert (round(p, 3), round(g, 3)) == (29.464, 7.784)
    other = create_model("dpn2_hrnet", conv2="conv3x3", variant="literal")  # the other reading
    assert (round(_params(other) / 1e6, 3), round(_gflops(other), 3)) == (29.459, 7.781)


@pytest.mark.parametrize("name", ["dpn1_32", "dpn2_64_hr"])
def test_dilation_never_changes_complexity(name):
    ref = create_model(name)
    ref_counts = {c: analytic_counts(ref, get_convention(c), (256, 192)) for c in ("hrnet-summary", "torchstat")}
    for scheme in ("normal", "rdpm", "const:3", "const:8"):
        model = create_model(name, dilation=scheme)
        assert _params(model) == _params(ref)
        for conv, counts in ref_counts.items():
            assert analytic_counts(model, get_convention(conv), (256, 192)) == counts
    assert hook_counts(create_model(name, dilation="normal"), SUMMARY, (256, 192)) == ref_counts["hrnet-summary"]


def test_dilation_schedules():
    assert dilation_schedule("dpm", 6) == (32, 16, 8, 4, 2, 1)
    assert dilation_schedule("rdpm", 6) == (1, 2, 4, 8, 16, 32)
    assert dilation_schedule("normal", 3) == (1, 1, 1)
    assert dilation_schedule("const:6", 2) == (6, 6)
    assert dilation_schedule(2, 2) == dilation_schedule("2", 2) == dilation_schedule(" CONST:2 ", 2) == (2, 2)
    blocks = create_model("dpn1_32", dilation="rdpm").backbone.dpms[0]
    assert [b.conv2.dilation[0] for b in blocks] == [1, 2, 4, 8, 16, 32]
    assert [b.conv2.padding[0] for b in blocks] == [1, 2, 4, 8, 16, 32]


@pytest.mark.parametrize("bad", ["const:0", "const:-2", "-1", "0", 0, -3, "dmp", "const:", "const:x", "", None, 1.5,
                                 True])
def test_bad_dilation_is_one_line_config_error(bad):
    with pytest.raises(ConfigError, match="dilation") as info:
        create_config("dpn4_32", dilation=bad)
    assert "\n" not in str(info.value)


def _empirical_rf(dilations: tuple[int, ...]) -> int:
    """Nonzero-gradient extent at the input of one output pixel through plain dilated 3x3 convs."""
    rf_max = 1 + 2 * sum(dilations)
    size = 2 * rf_max + 1
    layers = []
    for d in dilations:
        conv = nn.Conv2d(2, 2, 3, padding=d, dilation=d, bias=False).double()
        nn.init.ones_(conv.weight)
        layers.append(conv)
    x = torch.zeros(1, 2, size, size, dtype=torch.float64, requires_grad=True)
    y = nn.Sequential(*layers)(x)
    y[0, 0, size // 2, size // 2].backward()
    rows = torch.nonzero(x.grad[0].abs().sum(dim=(0, 2)))
    cols = torch.nonzero(x.grad[0].abs().sum(dim=(0, 1)))
    extent_h = int(rows.max() - rows.min() + 1)
    assert extent_h == int(cols.max() - cols.min() + 1)
    return extent_h


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6])
def test_receptive_field_formula_matches_gradient(n):
    dilations = dilation_schedule("dpm", n)
    dpm = DilationPyramid(8, 2, dilations)
    assert dpm.dilations == dilations
    assert dpm.receptive_field == pyramid_receptive_field(n) == (3 - 1) * (2**n - 1) + 1
    assert _empirical_rf(dilations) == dpm.receptive_field


def test_large_dilation_keeps_shape():
    dpm = DilationPyramid(16, 4, (32, 16, 8, 4, 2, 1)).eval()
    with torch.no_grad():
        assert dpm(torch.randn(1, 16, 32, 24)).shape == (1, 16, 32, 24)
        assert dpm(torch.randn(1, 16, 3, 2)).shape == (1, 16, 3, 2)
        for name, k in (("dpn1_32", 17), ("dpn1_64_hr", 16)):
            model = create_model(name, k, dilation="const:40").eval()
            assert model(torch.randn(1, 3, 256, 192)).shape == (1, k, 64, 48)


@pytest.mark.parametrize("name", list_models("dpn*"))
def test_analytic_equals_hooks(name):
    for hw, k in (((256, 192), 17), ((256, 256), 16)):
        model = create_model(name, k)
        assert analytic_counts(model, SUMMARY, hw) == hook_counts(model, SUMMARY, hw)
    if name in ("dpn4_32", "dpn1_64_hr"):  # the torchstat rules too (BN, ReLU, pools, upsampling)
        ts = get_convention("torchstat")
        assert analytic_counts(model, ts, (256, 256)) == hook_counts(model, ts, (256, 256))


def test_registered_set():
    expected = {f"dpn{n}_{c}" for n in range(1, 5) for c in (32, 64)} | {f"dpn{n}_64_hr" for n in range(1, 5)}
    assert set(list_models("dpn*")) == expected | {"dpn2_hrnet"}


@pytest.mark.parametrize(("grid", "table", "cells"), [
    ("dpn-table2", "T2", 8), ("dpn-table3", "T3", 12), ("dpn-table4", "T4", 8), ("dpn-table5", "T5", 8)])
def test_grids_match_reported_rows(grid, table, cells):
    g = get_grid(grid)
    assert (g.source, g.table, len(g.cells)) == ("dpn", table, cells)
    names = {r["model"] for r in reported_rows() if r["source"] == "dpn" and r["table"] == table}
    assert {c.labels["reported"] for c in g.cells} == names
    for cell in g.cells:
        create_config(cell.model, **cell.overrides)  # every cell is buildable


def test_grid_dilations():
    t3 = {c.labels["reported"]: c for c in get_grid("dpn-table3").cells}
    cfg = create_config(t3["DPN4_32 (D=6)"].model, **t3["DPN4_32 (D=6)"].overrides)
    assert cfg.dilations() == (6,) * 6
    t5 = {c.labels["reported"]: c for c in get_grid("dpn-table5").cells}
    assert create_config(t5["DPN2_32 (RDPM)"].model, **t5["DPN2_32 (RDPM)"].overrides).dilations()[0] == 1


def test_info_describes_dpms(capsys):
    assert main(["info", "dpn2_64"]) == 0
    out = capsys.readouterr().out
    assert out.count("dilations 32,16,8,4,2,1, receptive field 127") == 2
    rows = dict(create_config("dpn1_32", dilation="rdpm").describe())
    assert rows["DPM 1"].endswith("dilations 1,2,4,8,16,32, receptive field 127")
    assert "receptive field 13" in dict(create_config("dpn1_32", dilation="normal").describe())["DPM 1"]
