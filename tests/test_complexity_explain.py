"""FlopCounterMode as the MAC engine, training-step cost, memory traffic and the term-by-term
reconciliation of every count (hand counts on small networks; one shared registry measurement)."""

from __future__ import annotations

import concurrent.futures
import multiprocessing

import pytest
import torch
from test_complexity import BIAS, BN_ELEMS, CONV_MACS, DW_MACS, HW, MATMUL_MACS, register_tiny
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from hrbench.complexity.measure import measure, measure_model
from hrbench.complexity.probe import example_input
from hrbench.complexity.train_step import train_step_macs
from hrbench.factory import create_model
from hrbench.registry import get_entry, list_models

register_tiny()


def test_train_step_two_layers_hand_count():
    # grouped conv 3 -> 6 (groups 3, 3x3, pad 1) on 4x4, then Linear(96 -> 5)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1, groups=3), nn.ReLU(), nn.Flatten(), nn.Linear(96, 5))
    conv = 16 * 6 * 1 * 9  # positions * C_out * C_in/groups * k*k
    lin = 96 * 5
    cost = train_step_macs(net, (4, 4))
    assert cost.forward == conv + lin
    # the image needs no gradient: the conv computes grad-weight only; the Linear grad-input and grad-weight
    assert cost.backward == conv + 2 * lin
    assert cost.backward_by_op == {"mm": 2 * lin, "convolution_backward": conv}
    assert cost.ratio == pytest.approx((2 * conv + 3 * lin) / (conv + lin))
    assert all(p.grad is None for p in net.parameters())  # measured on a copy


def test_traffic_hand_count():
    net = nn.Sequential(nn.Conv2d(3, 4, 1, bias=False), nn.ReLU())
    t = measure_model(net, (2, 2), engines=("macs",)).traffic
    # conv: reads 12 input + 12 weight elements, writes 16; relu: reads 16, writes 16
    assert t["total"] == {"macs": 48, "launches": 2, "written": 32, "read": 40, "bytes_fp32": 288,
                          "intensity_fp32": round(48 / 288, 4), "bytes_bf16": 144, "intensity_bf16": round(48 / 144, 4)}
    assert t["launches_by_op"] in ({"convolution": 1, "relu": 1}, {"conv2d": 1, "relu": 1})
    assert t["by_stage"]["0"]["written"] == 16 and t["by_stage"]["0"]["macs"] == 48


def rows(rec: dict) -> dict[str, int]:
    return {r["term"]: r["raw"] for r in rec["rows"]}


def test_explain_tiny_term_by_term():
    c = measure("_test_tiny", HW, 17, explain=True)
    macs = CONV_MACS + DW_MACS + MATMUL_MACS
    relu_calls = 8 * 192 + 2 * 8 * 48  # stem ReLU + the block's ReLU called twice
    paper = rows(c.explain["paper"])
    assert paper == {"macs": macs, "outside": -(DW_MACS + MATMUL_MACS), "bias": BIAS, "batchnorm": 2 * BN_ELEMS,
                     "activation": relu_calls, "repeated": -8 * 48}
    assert rows(c.explain["fvcore"]) == {"macs": macs, "batch_norm": 2 * BN_ELEMS, "zero": 0}
    assert rows(c.explain["ptflops"]) == {"macs": macs, "outside": -(DW_MACS + MATMUL_MACS), "Conv2d": BIAS,
                                          "BatchNorm2d": 2 * BN_ELEMS, "ReLU": relu_calls,
                                          "torch.matmul": MATMUL_MACS, "F.relu in ReLU": relu_calls}
    # the rows reach the counts of a measurement without --explain (explaining changes no count)
    plain = measure("_test_tiny", HW, 17)
    assert {t: rec["figure"] for t, rec in c.to_dict()["explain"].items()} == \
        {t: plain.counts[t] for t in ("paper", "fvcore", "ptflops")}


def measure_and_count_flops(name: str):
    """One registered model at 256x192: every engine with --explain, then a bare FlopCounterMode."""
    torch.set_num_threads(1)
    model = create_model(name, num_keypoints=17)
    c = measure_model(model, (256, 192), convention=get_entry(name).convention, arch=name, explain=True)
    model.eval()
    with FlopCounterMode(display=False) as fcm, torch.no_grad():
        model(example_input((256, 192)))
    return c, fcm.get_total_flops()


def distinct_models() -> list[str]:
    """The smallest registered model of each (config class, set of module types): a variant that only repeats
    or widens the modules of another (Lite-HRNet-30 of -18, ResNet-152 of -50, RTMPose-s of -t) adds no
    rule to check, so it is left out; every family and every structural variant stays."""
    seen: dict[tuple, tuple[int, str]] = {}
    for name in list_models("*"):
        if not name.startswith("_test"):
            model = create_model(name, num_keypoints=17)
            key = (type(get_entry(name).config()), frozenset(type(m).__name__ for m in model.modules()))
            seen[key] = min(seen.get(key, (10 ** 9, "")), (sum(1 for _ in model.modules()), name))
    return sorted(name for _, name in seen.values())


@pytest.fixture(scope="module")
def registry():
    """Every structurally distinct registered model (:func:`distinct_models`) measured once, spread over
    two spawned processes."""
    names = sorted({*distinct_models(), "ditehrnet_18"})  # the paper's model for the DKA formula row
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        return dict(zip(names, pool.map(measure_and_count_flops, names), strict=True))


def test_macs_equal_flop_counter_mode_half(registry):
    families = {type(get_entry(n).config()) for n in list_models("*") if not n.startswith("_test")}
    assert {type(get_entry(n).config()) for n in registry} == families and len(families) >= 12
    assert {"ditehrnet_18", "litehrnet_18", "dyrelu_mobilenetv2_1x", "small_hrnet_w16", "rtmpose_t"} <= set(registry)
    for name, (c, flops) in registry.items():
        assert c.counts["macs"] * 2 == flops, name


def test_explain_rows_sum_exactly_over_registry(registry):
    for name, (c, _) in registry.items():
        assert set(c.explain) == {"paper", "fvcore", "ptflops"}, name
        for target, rec in c.explain.items():
            terms = rows(rec)
            assert sum(terms.values()) == c.counts[target] == rec["figure"], (name, target)
            assert "unexplained" not in terms and terms["macs"] == c.counts["macs"], (name, target)
            assert all(r["rule"] for r in rec["rows"]), (name, target)
            # fvcore's and ptflops' product formulas agree with ATen; the conventions' too, except the
            # dynamic-kernel module (its mixing matmul is not part of the Conv2d rule)
            formula = {k: v for k, v in terms.items() if k.startswith("formula")}
            dite = target == "paper" and c.convention == "torchstat-dite"
            assert set(formula) <= ({"formula KernelAggregation"} if dite else set()), (name, target, formula)
            assert all(v < 0 for v in formula.values()), (name, formula)


def test_dite_formula_row_is_the_kernel_mixing_matmul(registry):
    c, _ = registry["ditehrnet_18"]
    model = create_model("ditehrnet_18", num_keypoints=17)
    # each dynamic-kernel module runs once per forward: attention (1 x N) @ kernels (N x C_out*C_in/g*k*k)
    mixing = sum(m.weight.numel() + (m.bias.numel() if m.bias is not None else 0)
                 for m in model.modules() if type(m).__name__ == "KernelAggregation")
    assert rows(c.explain["paper"])["formula KernelAggregation"] == -mixing
