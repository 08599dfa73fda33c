"""Dite-HRNet: DKA / SCS / DSC, ACM (GCM, DCM), the network, its counts and the official fixture."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import official_fixture

from hrbench.complexity.conventions import TORCHSTAT_DITE
from hrbench.complexity.hooks import hook_counts
from hrbench.complexity.walker import analytic_counts
from hrbench.errors import ConfigError
from hrbench.factory import create_model
from hrbench.models.context import DenseContextModeling, GlobalContextModeling, adaptive_context_pool
from hrbench.models.dynamic import (
    DynamicKernelAggregation,
    DynamicSplitConvolution,
    KernelAggregation,
    SplitConcatShuffle,
    per_sample_reference,
)
from hrbench.reference import reported_rows
from hrbench.registry import get_entry, get_grid, list_models


def params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def paper_mflops(model: torch.nn.Module, hw: tuple[int, int], hook_hw: tuple[int, int] | None = (64, 64)) -> float:
    """Paper-convention (torchstat-dite) MFLOPs at ``hw`` by the analytic walker, after checking that
    it equals the hook-based count module for module (at ``hook_hw``, a cheaper forward pass)."""
    if hook_hw is not None:
        assert analytic_counts(model, TORCHSTAT_DITE, hook_hw) == hook_counts(model, TORCHSTAT_DITE, hook_hw)
    return sum(analytic_counts(model, TORCHSTAT_DITE, hw).values()) / 2**20


def truncated(x: float, digits: int) -> float:
    return math.floor(x * 10**digits + 1e-9) / 10**digits


def printed(source: str, table: str, model: str, dataset: str | None = None) -> dict:
    rows = [r for r in reported_rows() if r["source"] == source and r["table"] == table and r["model"] == model
            and (dataset is None or r["dataset"] == dataset)]
    assert len(rows) >= 1, (source, table, model)
    return rows[0]


# --- DKA ------------------------------------------------------------------------------------
@pytest.mark.parametrize("cin,cout,k,stride,groups,bias", [(6, 6, 3, 1, 6, False), (8, 4, 5, 2, 2, True),
                                                           (4, 6, 1, 1, 1, False)])
def test_batched_dka_equals_per_sample_reference_with_gradients(cin, cout, k, stride, groups, bias):
    torch.manual_seed(0)
    agg = KernelAggregation(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=bias, num_kernels=3)
    x = torch.randn(5, cin, 9, 7, requires_grad=True)
    att = torch.rand(5, 3, requires_grad=True)
    y = agg(x, att)
    ref = per_sample_reference(agg, x, att)
    assert y.shape == ref.shape == (5, cout, (9 + 2 * (k // 2) - k) // stride + 1, (7 + 2 * (k // 2) - k) // stride + 1)
    assert (y - ref).abs().max().item() <= 1e-5
    g = torch.randn_like(y)
    grads = torch.autograd.grad(y, (x, att, agg.weight), g)
    grads_ref = torch.autograd.grad(ref, (x, att, agg.weight), g)
    for a, b in zip(grads, grads_ref, strict=True):  # float32 sums of hundreds of terms: relative to their size
        assert (a - b).abs().max().item() <= 1e-5 * max(1.0, b.abs().max().item())


def test_dka_is_a_mixture_of_kernels():
    """Eq. 2: with one-hot attention the per-sample conv is exactly candidate kernel i."""
    torch.manual_seed(1)
    agg = KernelAggregation(4, 4, 3, padding=1, groups=4, num_kernels=2)
    x = torch.randn(2, 4, 6, 6)
    att = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    y = agg(x, att)
    for i in range(2):
        ref = F.conv2d(x[i:i + 1], agg.weight[i], padding=1, groups=4)
        assert torch.allclose(y[i:i + 1], ref, atol=1e-6)


def test_dka_attention_layers_and_counting_rule():
    dka = DynamicKernelAggregation(20, 20, 3, padding=1, groups=20, num_kernels=4)
    att = dka.attention
    assert (att.conv1.in_channels, att.conv1.out_channels, att.conv1.bias) == (20, 5, None)
    assert (att.conv2.out_channels, att.conv2.bias is not None) == (4, True)
    a = att.eval()(torch.randn(3, 20, 8, 8))
    assert a.shape == (3, 4) and bool(((a > 0) & (a < 1)).all())
    # the per-sample conv counts as a depth-wise Conv2d: 3*3*20*(20/20)*8*8, no bias
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 20, 1), dka)
    counts = hook_counts(net, TORCHSTAT_DITE, (8, 8))
    assert counts["1.aggregation"] == 9 * 20 * 64
    assert analytic_counts(net, TORCHSTAT_DITE, (8, 8)) == counts


def test_dka_exports_as_one_static_graph_with_one_convolution():
    """The inference path exports (torch.export, static shapes) to a graph whose only convolutions
    are the attention's two 1x1 convs and ONE aggregated convolution for the whole batch."""
    dka = DynamicKernelAggregation(8, 8, 3, padding=1, groups=8, num_kernels=4).eval()
    x = torch.randn(3, 8, 6, 6)
    program = torch.export.export(dka, (x,))
    convs = [n for n in program.graph.nodes if n.op == "call_function" and "conv" in str(n.target)]
    assert len(convs) == 3
    with torch.no_grad():
        assert torch.allclose(program.module()(x), dka(x), atol=1e-6)


# --- SCS / DSC ------------------------------------------------------------------------------
def test_scs_kernel_sizes_split_and_shuffle():
    scs = SplitConcatShuffle(12, groups=3)
    assert [m.conv.kernel_size for m in scs.conv] == [(3, 3), (5, 5), (7, 7)]
    assert all(m.conv.groups == 4 for m in scs.conv)
    scs.eval()
    x = torch.randn(1, 12, 9, 9)
    with torch.no_grad():
        parts = [conv(p) for conv, p in zip(scs.conv, x.split(4, dim=1), strict=True)]
        y = scs(x)
    # the shuffle interleaves the groups: output channel 3*j + g is channel j of group g
    for g in range(3):
        assert torch.allclose(y[:, g::3], parts[g])
    dsc = DynamicSplitConvolution(12, groups=2, num_kernels=3)
    assert all(isinstance(m.conv, DynamicKernelAggregation) and m.conv.aggregation.num_kernels == 3 for m in dsc.conv)


# --- ACM ------------------------------------------------------------------------------------
def test_gcm_global_pool_is_mask_weighted_sum():
    torch.manual_seed(2)
    x = torch.randn(2, 6, 5, 4)
    mask = torch.softmax(torch.randn(2, 1, 20), dim=2)
    pooled = adaptive_context_pool(x, mask, (1, 1))
    ref = (x.reshape(2, 6, 20) * mask).sum(-1)
    assert torch.allclose(pooled.reshape(2, 6), ref, atol=1e-6)
    gcm = GlobalContextModeling(16, reduction=4)
    assert gcm.channel_attention[0].out_channels == 4 and isinstance(gcm.bn, torch.nn.BatchNorm2d)


def test_dcm_shapes_and_dead_mask_conv():
    dcm = DenseContextModeling([4, 8, 16], reduction=8).eval()
    xs = [torch.randn(2, 4, 16, 12), torch.randn(2, 8, 8, 6), torch.randn(2, 16, 4, 3)]
    called = []
    handles = [m.register_forward_hook(lambda mod, i, o, k=k: called.append(k)) for k, m in enumerate(dcm.conv_mask)]
    with torch.no_grad():
        ys = dcm(xs)
    for h in handles:
        h.remove()
    assert [y.shape for y in ys] == [x.shape for x in xs]
    assert called == [0, 1]  # the lowest branch's mask conv is built but never called
    assert dcm.channel_attention[0].out_channels == 28 // 8


# --- the network ----------------------------------------------------------------------------
def test_official_fixture_reproduces_output():
    from hrbench.checkpoint import load_checkpoint

    path = official_fixture("ditehrnet_18_256x192.pt")
    fx = torch.load(path, weights_only=True)
    model = create_model("ditehrnet_18", num_keypoints=fx["meta"]["keypoints"])
    load_checkpoint(model, path)
    model.eval()
    with torch.no_grad():
        out = model(fx["input"])
    assert out.shape == fx["output"].shape
    assert (out - fx["output"]).abs().max().item() <= 1e-4


@pytest.mark.parametrize("name,printed_name,n_params,dead,flops", [
    ("ditehrnet_18", "Dite-HRNet-18", 1_186_933, 1456, (209.80, 471.86, 279.52)),
    ("ditehrnet_30", "Dite-HRNet-30", 1_862_549, 2508, (329.82, 741.77, 439.51)),
])
def test_paper_counts_to_the_printed_digit(name, printed_name, n_params, dead, flops):
    coco, mpii = create_model(name), create_model(name, num_keypoints=16)
    assert params(coco) == n_params
    # DCM's never-called mask convolutions of the lowest branch are counted, as officially
    dcms = [m for m in coco.modules() if isinstance(m, DenseContextModeling)]
    assert sum(params(d.conv_mask[-1]) for d in dcms) == dead
    for model, hw, hook_hw, expect in ((coco, (256, 192), (256, 192), flops[0]), (coco, (384, 288), None, flops[1]),
                                       (mpii, (256, 256), (64, 64), flops[2])):
        mflops = paper_mflops(model, hw, hook_hw)
        assert abs(mflops - expect) < 0.005
        row = next(r for r in reported_rows() if r["source"] == "dite-readme" and r["model"] == printed_name
                   and r["input"] == f"{hw[0]}x{hw[1]}")
        assert truncated(mflops, 1) == row["mflops"]  # the README truncates


# official implementation's parameter counts (K=17) for the 16 cells of Table 5 (G x N)
T5_OFFICIAL_PARAMS = {
    ("1 1 1 1", "1 1 1 1"): 1_096_357, ("1 1 1 1", "4 4 2 1"): 1_160_669,
    ("1 1 1 1", "1 2 4 4"): 1_199_653, ("1 1 1 1", "4 4 4 4"): 1_222_309,
    ("1 1 2 4", "1 1 1 1"): 1_124_517, ("1 1 2 4", "4 4 2 1"): 1_186_933,
    ("1 1 2 4", "1 2 4 4"): 1_283_589, ("1 1 2 4", "4 4 4 4"): 1_306_245,
    ("4 2 1 1", "1 1 1 1"): 1_111_717, ("4 2 1 1", "4 4 2 1"): 1_217_789,
    ("4 2 1 1", "1 2 4 4"): 1_216_965, ("4 2 1 1", "4 4 4 4"): 1_279_429,
    ("4 4 4 4", "1 1 1 1"): 1_178_277, ("4 4 4 4", "4 4 2 1"): 1_344_837,
    ("4 4 4 4", "1 2 4 4"): 1_417_093, ("4 4 4 4", "4 4 4 4"): 1_510_277,
}


def test_table5_grid_reproduces_every_cell():
    grid = get_grid("dite-table5")
    assert len(grid.cells) == 16
    for cell in grid.cells:
        model = create_model(cell.model, **cell.overrides)
        key = (cell.labels["G"], cell.labels["N"])
        assert params(model) == T5_OFFICIAL_PARAMS[key], key
        # printed "GFLOPs" = the binary-M figure / 1000, truncated (/2^30 fails G=4211 N=4421, rounding G=4211 N=1111)
        gflops = paper_mflops(model, cell.input_hw) / 1000
        g, n = (label.replace(" ", "") for label in key)
        row = printed("dite", "T5", f"Dite-HRNet-18 G={g} N={n}")
        assert truncated(gflops, 2) == row["gflops"], key


@pytest.mark.parametrize("name,printed_name", [
    ("litehrnet_18_acm", "Lite-HRNet-18 with ACM"),
    ("litehrnet_18_dsc", "Lite-HRNet-18 with DSC"),
    ("litehrnet_18_acm_dsc", "Lite-HRNet-18 with ACM & DSC"),
])
def test_table6_ablations_close_to_printed(name, printed_name):
    for dataset, hw, k in (("coco", (256, 192), 17), ("mpii", (256, 256), 16)):
        model = create_model(name, num_keypoints=k)
        mflops = paper_mflops(model, hw)
        row = printed("dite", "T6", printed_name, dataset)
        # within 1% except ACM & DSC on MPII (-1.01%), explained in the model card
        assert abs(mflops / row["mflops"] - 1) < 0.0105, (dataset, mflops)
        if k == 17:
            assert truncated(params(model) / 1e6, 1) == row["params_M"]
    assert "0.6% to 1.01%" in get_entry(name).notes


def test_table6_grid_models_are_registered():
    for cell in get_grid("dite-table6").cells:
        assert cell.model in list_models()


def test_per_branch_overrides_and_bad_hyper_parameters():
    model = create_model("dite18", groups=(4, 4, 4, 4), kernels=(1, 1, 1, 1))
    assert model.config.groups == (4, 4, 4, 4)
    assert not any(isinstance(m, DynamicKernelAggregation) for m in model.backbone.stage0.modules())
    assert create_model("dite18", kernels=2).config.kernels == (2, 2, 2, 2)
    for bad, param in ((dict(groups=(3, 1, 1, 1)), "groups"), (dict(kernels=(0, 4, 2, 1)), "kernels"),
                       (dict(groups=(1, 1, 2)), "groups"), (dict(kernels=(4, 4, 2, 1, 1)), "kernels"),
                       (dict(groups=(1, 1, 2, 0)), "groups"), (dict(stem="big"), "stem")):
        with pytest.raises(ConfigError) as err:
            create_model("dite18", **bad)
        message = str(err.value)
        assert "\n" not in message and param in message


def test_training_step_runs_on_the_batched_path():
    torch.manual_seed(3)
    model = create_model("dite18", num_keypoints=4)
    model.train()
    out = model(torch.randn(2, 3, 64, 64))
    out.square().mean().backward()
    weight = model.backbone.stage0[0].layers[0].conv[0].conv[0].conv.aggregation.weight
    assert out.shape == (2, 4, 16, 16) and weight.grad is not None and weight.grad.abs().sum() > 0


def test_dka_reduction_error_names_it_with_its_valid_range():
    # the DGC stem's bottleneck is the narrowest DKA input: 32 stem channels -> 16 per half -> 16 // 4 = 4
    for value in (5, 1000):
        with pytest.raises(ConfigError) as err:
            create_model("dite18", dka_reduction=value)
        message = str(err.value)
        assert message.startswith("invalid hyper-parameter dka_reduction:") and "from 1 to 4" in message
        assert "stem" in message and "stem_channels" not in message and "\n" not in message
    assert create_model("dite18", dka_reduction=4).config.dka_reduction == 4
    # static stem convolutions (N=1): the narrowest is branch 0, 40 channels -> 20 split channels, G=1
    model = create_model("dite18", stem_kernels=1, dka_reduction=20, num_keypoints=4)
    assert model.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 4, 16, 16)
    with pytest.raises(ConfigError, match=r"dka_reduction: must be an integer from 1 to 20 .*stage 0 branch 0"):
        create_model("dite18", stem_kernels=1, dka_reduction=21)
    # G=10 on branch 0: 20 split channels in groups of 2
    with pytest.raises(ConfigError, match=r"dka_reduction: must be an integer from 1 to 2 "):
        create_model("dite18", groups=(10, 1, 2, 4))
    with pytest.raises(ConfigError, match=r"stem_channels: must be at least 8"):
        create_model("dite18", stem_channels=4)
