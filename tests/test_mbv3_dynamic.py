"""MobileNetV3 1x (MobileNetV3-Large 1.0) and the dynamic MobileNetV2s (DY-MobileNetV2 1x: dynamic
convolution; DY-ReLU 1x: dynamic ReLU), each + SimpleBaseline's deconvolution head (issue 21).

#Params and FLOPs are derived here by hand from the papers' layer lists (MobileNetV3 Table 1, MobileNetV2
Table 2; closed-form sums, no model code) and must equal hrbench's counts. Also: DynamicConv2d equals the
K separate convolutions weighted by the attention (batch of 2, different attentions), DyReLU equals its
formula on a hand-made tensor, walk == hooks, a 2-epoch training run and a flip-test evaluation.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hrbench.complexity.conventions import TORCHSTAT, get_convention
from hrbench.complexity.hooks import hook_counts
from hrbench.complexity.walker import analytic_counts
from hrbench.errors import ConfigError
from hrbench.factory import create_model
from hrbench.models.dyops import DynamicConv2d, DyReLU
from hrbench.registry import get_entry

#: MobileNetV3-Large, paper Table 1: (kernel, expansion, output, SE, ReLU (else hard-swish), stride).
TABLE1 = ((3, 16, 16, 0, 1, 1), (3, 64, 24, 0, 1, 2), (3, 72, 24, 0, 1, 1), (5, 72, 40, 1, 1, 2),
          (5, 120, 40, 1, 1, 1), (5, 120, 40, 1, 1, 1), (3, 240, 80, 0, 0, 2), (3, 200, 80, 0, 0, 1),
          (3, 184, 80, 0, 0, 1), (3, 184, 80, 0, 0, 1), (3, 480, 112, 1, 0, 1), (3, 672, 112, 1, 0, 1),
          (5, 672, 160, 1, 0, 2), (5, 960, 160, 1, 0, 1), (5, 960, 160, 1, 0, 1))
SQUEEZE = {72: 24, 120: 32, 480: 120, 672: 168, 960: 240}  # exp / 4 rounded up to a multiple of 8
MBV2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
DY_MADDS = get_convention("dy-madds")


def head(c_in: int, k: int, h: int, w: int) -> tuple[int, int, int]:
    """SimpleBaseline's head on an h x w input: (params, torchstat count, products at input positions)."""
    params = c_in * 256 * 16 + 2 * 256 * 256 * 16 + 3 * 2 * 256 + 256 * k + k
    ts = prod = 0
    for _ in range(3):
        ts += c_in * 256 * 16 * h * w
        prod += c_in * 256 * 16 * h * w
        h, w, c_in = 2 * h, 2 * w, 256
        ts += 3 * 256 * h * w  # BN 2 + ReLU 1 per element
    return params, ts + 256 * k * h * w + k * h * w, prod + 256 * k * h * w


# ------------------------------------------------------------------------------ MobileNetV3, torchstat
def mbv3_hand(k: int, hw: tuple[int, int], se: bool = True, final: bool = True) -> tuple[int, int]:
    """(params, torchstat count): conv (+bias), BN 2/elem, ReLU 1/elem, hard-swish / hard-sigmoid 0,
    adaptive pool to 1x1: (H+1)(W+1) per channel."""
    h, w = hw[0] // 2, hw[1] // 2
    p, f = 27 * 16 + 32, 27 * 16 * h * w + 2 * 16 * h * w  # stem, hard-swish: 0
    c = 16
    for kk, exp, out, use_se, relu, s in TABLE1:
        if exp != c:
            p += c * exp + 2 * exp
            f += c * exp * h * w + 2 * exp * h * w + (exp * h * w if relu else 0)
        h, w = (h + 1) // s if s == 2 else h, (w + 1) // s if s == 2 else w
        p += kk * kk * exp + 2 * exp
        f += kk * kk * exp * h * w + 2 * exp * h * w + (exp * h * w if relu else 0)
        if se and use_se:
            sq = SQUEEZE[exp]
            p += exp * sq + sq + sq * exp + exp
            f += exp * (h + 1) * (w + 1) + exp * sq + sq + sq + sq * exp + exp
        p += exp * out + 2 * out
        f += exp * out * h * w + 2 * out * h * w
        c = out
    if final:
        p += c * 960 + 2 * 960
        f += c * 960 * h * w + 2 * 960 * h * w
        c = 960
    hp, hf, _ = head(c, k, h, w)
    return p + hp, f + hf


@pytest.mark.parametrize("overrides", [{}, {"final_conv": False}, {"se": False}])
def test_mobilenetv3_params_and_torchstat_by_hand(overrides):
    model = create_model("mobilenetv3_1x", num_keypoints=16, **overrides)
    params, flops = mbv3_hand(16, (256, 256), overrides.get("se", True), overrides.get("final_conv", True))
    assert sum(p.numel() for p in model.parameters()) == params
    assert sum(analytic_counts(model, TORCHSTAT, (256, 256)).values()) == flops


def test_mobilenetv3_totals_and_published_gap():
    assert get_entry("mobilenetv3_1x").convention == "torchstat"
    params, flops = mbv3_hand(16, (256, 256))
    assert (params, flops) == (9_006_912, 1_909_366_576)
    assert f"{params / 1e6:.1f}" == "9.0" and f"{flops / 2**30:.2f}" == "1.78"  # published 8.7M / 1.82: the gap
    backbone = create_model("mobilenetv3_1x").backbone
    assert sum(p.numel() for p in backbone.parameters()) == 2_971_952  # torchvision's mobilenet_v3_large features
    model = create_model("mobilenetv3_1x", num_keypoints=16)
    assert hook_counts(model, TORCHSTAT, (64, 64)) == analytic_counts(model, TORCHSTAT, (64, 64))


# ------------------------------------------------------------------------------ DY models, dy-madds
def dy_hand(mode: str, k: int, hw: tuple[int, int], n_kernels: int = 4, red: int = 8) -> tuple[int, int]:
    """(params, dy-madds): conv/FC products; dynamic conv: K kernels + attention (pool, FC C->max(C/4, K)
    with bias, FC -> K with bias) + K per kernel element; DY-ReLU: hyper-function (pool, FC C->C/R, FC ->
    4C, biases) + 2 per element; BN: 2 params per channel, 0 MAdds."""

    def unit(c_in, c_out, kk, h, w, groups=1, act=True, dynamic=True):
        weights = kk * kk * c_in // groups * c_out
        p, f = weights + 2 * c_out, weights * h * w
        if mode == "conv" and dynamic:
            hid = max(c_in // 4, n_kernels)
            p += (n_kernels - 1) * weights + c_in * hid + hid + hid * n_kernels + n_kernels
            f += n_kernels * weights + c_in * h_in * w_in + c_in * hid + hid * n_kernels
        if mode == "relu" and act:
            r = c_out // red
            p += c_out * r + r + r * 4 * c_out + 4 * c_out
            f += c_out * h * w + c_out * r + r * 4 * c_out + 2 * c_out * h * w
        return p, f

    h_in, w_in = hw
    h, w = hw[0] // 2, hw[1] // 2
    p, f = unit(3, 32, 3, h, w, dynamic=False)
    c = 32
    for t, c_out, n, s in MBV2:
        for b in range(n):
            hidden = c * t
            parts = []
            h_in, w_in = h, w
            if t != 1:
                parts.append(unit(c, hidden, 1, h, w))
            if b == 0 and s == 2:
                h, w = h // 2, w // 2
            parts.append(unit(hidden, hidden, 3, h, w, groups=hidden))
            h_in, w_in = h, w
            parts.append(unit(hidden, c_out, 1, h, w, act=False))
            p, f = p + sum(x for x, _ in parts), f + sum(y for _, y in parts)
            c = c_out
    h_in, w_in = h, w
    dp, df = unit(320, 1280, 1, h, w, dynamic=False)
    hp, _, hf = head(1280, k, h, w)
    return p + dp + hp, f + df + hf


@pytest.mark.parametrize("arch, mode, totals", [("dy_mobilenetv2_1x", "conv", (17_214_673, 1_580_927_808)),
                                                ("dyrelu_mobilenetv2_1x", "relu", (16_298_281, 1_589_650_560))])
def test_dynamic_models_params_and_madds_by_hand(arch, mode, totals):
    assert get_entry(arch).convention == "dy-madds"
    model = create_model(arch, num_keypoints=17)
    params, madds = dy_hand(mode, 17, (256, 192))
    assert (params, madds) == totals
    assert sum(p.numel() for p in model.parameters()) == params
    assert sum(analytic_counts(model, DY_MADDS, (256, 192)).values()) == madds
    assert hook_counts(model, DY_MADDS, (64, 64)) == analytic_counts(model, DY_MADDS, (64, 64))
    # the published 16.1M / 1.01 and 9.0M / 1.03 are not reproduced by this head: the documented gap
    assert f"{params / 1e6:.1f}" != {"conv": "16.1", "relu": "9.0"}[mode]


def test_backbones_and_the_imagenet_dy_mobilenetv2():
    """The backbone counts the cards quote (model minus SimpleBaseline's head, by hand); DyConv's DY-MobileNetV2
    x1.0 has 11.1M params with its 1280 x 1000 classifier (+ bias)."""
    for arch, mode, count in (("dy_mobilenetv2_1x", "conv", 9_868_736), ("dyrelu_mobilenetv2_1x", "relu", 8_952_344)):
        backbone = create_model(arch).backbone
        assert sum(p.numel() for p in backbone.parameters()) == count == dy_hand(mode, 17, (256, 192))[0] - \
            head(1280, 17, 8, 6)[0]
    assert f"{(9_868_736 + 1280 * 1000 + 1000) / 1e6:.1f}" == "11.1"


# ------------------------------------------------------------------------------ the operators
def test_dynamic_conv_is_the_attention_weighted_sum_of_k_convolutions():
    torch.manual_seed(0)
    for groups, stride in ((1, 1), (6, 2)):
        conv = DynamicConv2d(6, 12, 3, stride, 1, groups=groups, num_kernels=4, temperature=1.0).eval()
        x = torch.randn(2, 6, 9, 7)
        x[1] *= 3.0  # a different sample -> a different attention
        with torch.no_grad():
            pi = conv.attention(x)
            assert pi.shape == (2, 4) and torch.allclose(pi.sum(1), torch.ones(2))
            assert (pi[0] - pi[1]).abs().max() > 1e-3
            expected = torch.stack([
                sum(pi[i, j] * F.conv2d(x[i:i + 1], conv.aggregation.weight[j], None, stride, 1, 1, groups)[0]
                    for j in range(4)) for i in range(2)])
            assert torch.allclose(conv(x), expected, atol=1e-5)


def test_dyrelu_is_its_formula_on_a_hand_made_tensor():
    act = DyReLU(2, reduction=1, pieces=2).eval()
    with torch.no_grad():
        act.fc1.weight.zero_()
        act.fc1.bias.zero_()  # hidden = ReLU(0) = 0, so fc2's output is its bias
        act.fc2.weight.zero_()
        big = 50.0  # 2 sigmoid(+-50) - 1 = +-1
        # (N, C, 2K) layout: channel 0 residuals (a1, a2, b1, b2) = (+1, -1, 0, +1), channel 1 all 0
        act.fc2.bias.copy_(torch.tensor([big, -big, 0.0, big, 0.0, 0.0, 0.0, 0.0]))
        x = torch.tensor([[[[-2.0, -0.5], [0.25, 1.0]], [[-2.0, -0.5], [0.25, 1.0]]]])
        # channel 0: a1 = 1 + 1, a2 = 0 - 1, b1 = 0, b2 = 0 + 0.5 * 1 -> max(2x, -x + 0.5); channel 1: ReLU
        expected = torch.tensor([[[[2.5, 1.0], [0.5, 2.0]], [[0.0, 0.0], [0.25, 1.0]]]])
        assert torch.allclose(act(x), expected)


def test_dynamic_config_refusals():
    with pytest.raises(ConfigError, match="dynamic"):
        create_model("dy_mobilenetv2_1x", dynamic="weights")
    with pytest.raises(ConfigError, match="temperature"):
        create_model("dy_mobilenetv2_1x", temperature=0)


# ------------------------------------------------------------------------------ training and evaluation
def test_two_epochs_of_dy_mobilenetv2_then_flip_test_eval(synth, tmp_path):
    from hrbench.engine import evaluate_checkpoint, train

    s = train("dy_mobilenetv2_1x", synth, epochs=2, batch=4, input_hw=(64, 64), out=tmp_path, name="dy",
              device="cpu", workers=0, progress=False)
    assert s["status"] == "finished" and s["epochs_done"] == 2 and math.isfinite(s["final"]["val_loss"])
    r = evaluate_checkpoint("dy_mobilenetv2_1x", tmp_path / "dy" / "checkpoints" / "best.pt", synth, device="cpu",
                            workers=0, batch_size=3, flip=True)
    assert 0 <= r["AP"] <= 1


@pytest.mark.parametrize("arch, kept", [("mobilenetv3_1x", 3), ("dyrelu_mobilenetv2_1x", 3),
                                        ("dy_mobilenetv2_1x", 53)])
def test_batchnorm_folding_is_exact_and_keeps_the_bns_after_dynamic_kernels(arch, kept):
    """Static conv + BN pairs fold (the head's 3 deconvolution BNs stay); a BN after a dynamic convolution
    stays (its kernel differs per sample): DY-MobileNetV2 keeps 52 - 2 = 50 of its 52 backbone BNs (all but
    the static stem's and conv2's) + the head's 3."""
    from hrbench.speed.fuse import count_batchnorms, fold_batchnorm

    model = create_model(arch, num_keypoints=4).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    x = torch.randn(2, 3, 64, 64, generator=g)
    folded = fold_batchnorm(model)
    assert count_batchnorms(folded) == kept
    with torch.no_grad():
        ref, out = model(x), folded(x)
    assert (out - ref).abs().max() <= 1e-5 * ref.abs().max() and ref.abs().max() > 0
