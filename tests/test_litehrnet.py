"""Lite-HRNet family: published complexity, analytic == hook counts, official numerics, config."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from conftest import official_fixture, official_inplace_fusion
from torch import nn

from hrbench.complexity.conventions import TORCHSTAT
from hrbench.complexity.hooks import hook_counts
from hrbench.complexity.walker import analytic_counts
from hrbench.errors import ConfigError, HrbenchError
from hrbench.factory import create_model
from hrbench.models.hr_modules import MultiResolutionFusion
from hrbench.models.separable import channel_shuffle
from hrbench.registry import create_config, get_entry, get_grid, list_models, resolve

REPORTED = Path(__file__).resolve().parents[1] / "hrbench" / "reference" / "reported.csv"

LITE_MODELS = (
    "litehrnet_18", "litehrnet_30", "naive_litehrnet_18", "wider_naive_litehrnet_18",
    "wider_naive_litehrnet_18_drop1", "wider_naive_litehrnet_18_drop2",
    "litehrnet_18_ccw_spatial", "litehrnet_18_ccw_multires",
)
INPUTS = (((256, 192), 17), ((384, 288), 17), ((256, 256), 16))

# Published MFLOPs (paper / README), compared at the printed digit; None = not published.
# wider naive at 256x256: README/paper print 418.7, the official config gives 414.6 (see card).
PUBLISHED_MFLOPS = {
    "litehrnet_18": (205.2, 461.6, 273.4),
    "litehrnet_30": (319.2, 717.8, 425.3),
    "naive_litehrnet_18": (194.8, None, 259.6),
    "wider_naive_litehrnet_18": (311.1, None, None),
    "wider_naive_litehrnet_18_drop1": (248.4, None, 331.0),
    "wider_naive_litehrnet_18_drop2": (188.9, None, 251.7),
}
# Ablations without official code: within 2% of Tables 6-7.
PUBLISHED_APPROX = {
    "litehrnet_18_ccw_spatial": (190.6, None, 254.0),
    "litehrnet_18_ccw_multires": (203.5, None, 271.1),
}
# Parameter counts at K=17 (Lite-HRNet-18's is the official code's exact count).
PARAMS = {
    "litehrnet_18": 1_130_769, "litehrnet_30": 1_763_717, "naive_litehrnet_18": 760_365,
    "wider_naive_litehrnet_18": 1_318_625, "wider_naive_litehrnet_18_drop1": 1_102_305,
    "wider_naive_litehrnet_18_drop2": 885_985, "litehrnet_18_ccw_spatial": 994_785,
    "litehrnet_18_ccw_multires": 1_021_969,
}


@pytest.fixture(scope="module")
def measured() -> dict[tuple[str, int], tuple[dict, dict, int]]:
    """(model, input index) -> (hook counts, analytic counts, #params); one forward each."""
    out = {}
    for name in LITE_MODELS:
        for idx, (hw, k) in enumerate(INPUTS):
            model = create_model(name, num_keypoints=k)
            params = sum(p.numel() for p in model.parameters())
            out[name, idx] = (hook_counts(model, TORCHSTAT, hw), analytic_counts(model, TORCHSTAT, hw), params)
    return out


def test_registered_names_and_aliases() -> None:
    assert set(LITE_MODELS) <= set(list_models("*lite*"))
    for alias, name in (("lite18", "litehrnet_18"), ("lite30", "litehrnet_30"), ("naive18", "naive_litehrnet_18"),
                        ("wider_naive18", "wider_naive_litehrnet_18"), ("wnaive18", "wider_naive_litehrnet_18")):
        assert resolve(alias) == name
    for name in LITE_MODELS:
        entry = get_entry(name)
        assert entry.paper == "lite" and entry.convention == "torchstat" and entry.notes


def test_reported_pairs_exist_in_csv() -> None:
    with REPORTED.open(encoding="utf-8") as fh:
        printed = {(r["source"], r["model"]) for r in csv.DictReader(fh)}
    for name in LITE_MODELS:
        pairs = get_entry(name).reported
        assert pairs, name
        for pair in pairs:
            assert pair in printed, (name, pair)


@pytest.mark.parametrize("name", LITE_MODELS)
def test_analytic_equals_hooks_all_inputs(measured, name: str) -> None:
    for idx in range(len(INPUTS)):
        hooks, analytic, _ = measured[name, idx]
        assert analytic == hooks, (name, INPUTS[idx])


@pytest.mark.parametrize("name", sorted(PUBLISHED_MFLOPS))
def test_published_mflops_to_the_digit(measured, name: str) -> None:
    for idx, want in enumerate(PUBLISHED_MFLOPS[name]):
        if want is not None:
            got = sum(measured[name, idx][0].values()) / 2**20
            assert round(got, 1) == pytest.approx(want, abs=1e-9), (name, INPUTS[idx], got)


@pytest.mark.parametrize("name", sorted(PUBLISHED_APPROX))
def test_ccw_ablations_within_two_percent(measured, name: str) -> None:
    for idx, want in enumerate(PUBLISHED_APPROX[name]):
        if want is not None:
            got = sum(measured[name, idx][0].values()) / 2**20
            assert got == pytest.approx(want, rel=0.02), (name, got)


def test_parameter_counts(measured) -> None:
    for name, want in PARAMS.items():
        assert measured[name, 0][2] == want, name
    # head is 1x1 conv with bias: K=16 has (C+1) fewer parameters than K=17
    assert measured["litehrnet_18", 2][2] == 1_130_769 - 41
    assert measured["naive_litehrnet_18", 2][2] == 760_365 - 31
    # printed #Params (0.1M); naive Lite-HRNet-18's printed 0.7M is 0.76M truncated (see its card)
    for name, printed in (("litehrnet_18", 1.1), ("litehrnet_30", 1.8),
                          ("wider_naive_litehrnet_18", 1.3), ("wider_naive_litehrnet_18_drop1", 1.1),
                          ("wider_naive_litehrnet_18_drop2", 0.9)):
        assert round(PARAMS[name] / 1e6, 1) == pytest.approx(printed), name


def test_ccw_without_both_weightings_is_the_two_dropped_naive_model() -> None:
    """Table 7's first row: a CCW block with neither weighting = the shuffle block without 1x1 convs."""
    a = create_model("lite18", ccw_spatial=False, ccw_cross_resolution=False)
    b = create_model("wider_naive_litehrnet_18_drop2")
    assert sum(p.numel() for p in a.parameters()) == sum(p.numel() for p in b.parameters()) == 885_985
    flops = [sum(analytic_counts(m, TORCHSTAT, (256, 192)).values()) for m in (a, b)]
    assert flops[0] == flops[1]


def test_naive_head_is_built_on_backbone_width() -> None:
    model = create_model("naive18")
    assert model.backbone.out_channels == 30
    assert model.head.final_layer.in_channels == 30


@pytest.mark.parametrize("name", LITE_MODELS)
def test_forward_shape_small_input(name: str) -> None:
    model = create_model(name, num_keypoints=5).eval()
    with torch.no_grad():
        y = model(torch.randn(2, 3, 64, 32))
    assert y.shape == (2, 5, 16, 8)


def test_input_size_must_halve_exactly() -> None:
    model = create_model("lite18")
    with pytest.raises(HrbenchError, match="multiples of 32"):
        model(torch.randn(1, 3, 64, 48))
    with pytest.raises(HrbenchError, match="64x48"):
        analytic_counts(model, TORCHSTAT, (64, 48))


def test_backward_runs_in_train_mode() -> None:
    model = create_model("lite18", num_keypoints=3).train()
    y = model(torch.randn(2, 3, 64, 64))
    y.square().mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads)


def test_official_initialisation() -> None:
    model = create_model("lite18")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    weights = torch.cat([m.weight.flatten() for m in convs])
    assert weights.std().item() == pytest.approx(0.001, rel=0.05)
    assert all(m.bias is None or torch.all(m.bias == 0) for m in convs)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)


@pytest.mark.parametrize("relu_inplace", [False, True])
def test_fusion_reproduces_official_inplace_loop(relu_inplace: bool) -> None:
    torch.manual_seed(0)
    chans = (8, 16, 32)
    fusion = MultiResolutionFusion(chans, relu_inplace=relu_inplace).eval()
    for p in fusion.parameters():
        nn.init.normal_(p, std=0.3)
    xs = [torch.randn(2, c, 16 // 2**i, 12 // 2**i) for i, c in enumerate(chans)]
    with torch.no_grad():
        ours = fusion(xs, nn.ReLU(inplace=relu_inplace))
        official = official_inplace_fusion(fusion, xs, nn.ReLU(inplace=relu_inplace))
        naive_reading = [torch.relu(sum(x if i == j else fusion[i][j](x) for j, x in enumerate(xs)))
                         for i in range(len(chans))]
    for a, b in zip(ours, official, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    assert (ours[1] - naive_reading[1]).abs().max() > 1e-2  # the quirk matters


def test_channel_shuffle_interleaves() -> None:
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]


def test_official_fixture_reproduces_output() -> None:
    path = official_fixture("litehrnet_18_256x192.pt")
    data = torch.load(path, map_location="cpu", weights_only=True)
    model = create_model("litehrnet_18", num_keypoints=data["meta"]["keypoints"], checkpoint=path).eval()
    with torch.no_grad():
        out = model(data["input"])
    assert out.shape == data["output"].shape
    assert (out - data["output"]).abs().max().item() <= 1e-4


@pytest.mark.parametrize("overrides, param", [
    ({"num_modules": (2, 4)}, "num_modules"),
    ({"num_channels": ((40, 80), (40, 80, 160), (40, 81, 160, 320))}, "num_channels"),
    ({"num_branches": (2, 3, 3)}, "num_branches"),
    ({"module_type": ("LITE", "FANCY", "LITE")}, "module_type"),
    ({"reduce_ratios": (8, 0, 8)}, "reduce_ratios"),
    ({"stem_channels": 31}, "stem_channels"),
    ({"stem_expand_ratio": -1}, "stem_expand_ratio"),
    ({"with_head": "yes"}, "with_head"),
    ({"shuffle_pointwise": 3}, "shuffle_pointwise"),
])
def test_config_errors_name_the_parameter(overrides: dict, param: str) -> None:
    with pytest.raises(ConfigError) as exc:
        create_config("litehrnet_18", **overrides)
    msg = str(exc.value)
    assert param in msg and "\n" not in msg


def test_unusual_but_valid_configs_build_and_count() -> None:
    for overrides in ({"num_channels": ((40,), (40, 80)), "num_modules": (1, 1), "num_branches": (1, 2),
                       "num_blocks": (1, 1), "module_type": ("LITE", "NAIVE"), "with_fuse": (True, False),
                       "reduce_ratios": (4, 8)},
                      {"stem_out_channels": 48, "stem_expand_ratio": 2.0, "with_fuse": (False, True, False)}):
        model = create_model("lite18", **overrides).eval()
        with torch.no_grad():
            assert model(torch.randn(1, 3, 64, 64)).shape == (1, 17, 16, 16)
        assert analytic_counts(model, TORCHSTAT, (64, 64)) == hook_counts(model, TORCHSTAT, (64, 64))


def test_override_builds_a_different_model() -> None:
    model = create_model("lite18", with_head=False, num_modules=[1, 1, 1])
    assert not hasattr(model.backbone, "head_layer")
    assert len(model.backbone.stage1) == 1
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 17, 16, 16)


def test_ablation_grids() -> None:
    with REPORTED.open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["source"] == "lite"]
    for grid_name, table in (("lite-table6", "T6"), ("lite-table7", "T7")):
        grid = get_grid(grid_name)
        assert grid.source == "lite" and grid.table == table
        labels = {c.labels["model"] for c in grid.cells}
        printed = {r["model"] for r in rows if r["table"] == table}
        assert labels == printed
        for cell in grid.cells:
            resolve(cell.model)
            assert (cell.dataset, cell.input_hw) in (("coco", (256, 192)), ("mpii", (256, 256)))
        assert len(grid.cells) == 2 * len(printed)


def test_nested_lists_from_json_are_tuples_at_every_depth() -> None:
    """A configuration read back from JSON (config.json, --set) has lists of lists: they are accepted
    as the nested tuples the model validates (num_channels per stage and branch)."""
    import json

    cfg = create_config("lite18")
    from_json = {k: v for k, v in json.loads(json.dumps(cfg.to_dict())).items() if k == "num_channels"}
    assert from_json["num_channels"][0] == [40, 80]
    assert create_config("lite18", **from_json).num_channels == ((40, 80), (40, 80, 160), (40, 80, 160, 320))
