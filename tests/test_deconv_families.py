"""The deconvolution-head families (issue 21): SimpleBaseline ResNet-50/101/152, MobileNetV2 1x and
ShuffleNetV2 1x, each + SimpleBaseline's head (3 x [4x4/2 deconv 256 + BN + ReLU] + 1x1 conv).

#Params and FLOPs are derived here by hand from the layer lists of the papers / official configs
(closed-form sums over the layers, no model code) and must equal hrbench's counts; the published
cells they reproduce are pinned as printed. Also: shapes, the head's keys, walk == hooks, the
hrnet-summary deconvolution rule and its --explain row, one engine training step, bad input.
"""

from __future__ import annotations

import math

import pytest
import torch

from hrbench.complexity.conventions import HRNET_SUMMARY, TORCHSTAT, conv_transpose2d_at_output
from hrbench.complexity.hooks import hook_counts
from hrbench.complexity.measure import measure
from hrbench.complexity.walker import analytic_counts
from hrbench.errors import ConfigError, HrbenchError
from hrbench.factory import create_model
from hrbench.models.heads import DeconvHead, build_head
from hrbench.models.pose import PoseModel
from hrbench.registry import get_entry

G = 2**30
BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
MBV2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
SHV2 = ((116, 4), (232, 8), (464, 4))


# ------------------------------------------------------------------------------ hand counts
def head_params(c_in: int, k: int) -> int:
    """3 deconvs 4x4 (no bias) + 3 BN(256) + 1x1 conv 256->K with bias."""
    return c_in * 256 * 16 + 2 * 256 * 256 * 16 + 3 * 2 * 256 + 256 * k + k


def head_macs(c_in: int, k: int, h: int, w: int, at_output: bool) -> int:
    """Deconv products at input (true MACs, torchstat) or output (get_model_summary) positions + final conv;
    ``h, w``: the 1/32 input of the head."""
    total, c = 0, c_in
    for _ in range(3):
        pos = (2 * h) * (2 * w) if at_output else h * w
        total += c * 256 * 16 * pos
        c, h, w = 256, 2 * h, 2 * w
    return total + 256 * k * h * w


def resnet_params(depth: int) -> int:
    n, c = 3 * 64 * 49 + 2 * 64, 64
    for planes, blocks in zip((64, 128, 256, 512), BLOCKS[depth], strict=True):
        for b in range(blocks):
            n += c * planes + 9 * planes * planes + planes * 4 * planes + 2 * (planes + planes + 4 * planes)
            if b == 0:
                n += c * 4 * planes + 2 * 4 * planes  # projection conv + BN
            c = 4 * planes
    return n


def resnet_summary(depth: int, k: int, hw: tuple[int, int]) -> int:
    """get_model_summary: conv weight x output positions, over the ResNet and the head."""
    h, w = hw[0] // 2, hw[1] // 2
    total = 3 * 64 * 49 * h * w
    h, w, c = h // 2, w // 2, 64
    for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), BLOCKS[depth], strict=True)):
        for b in range(blocks):
            total += c * planes * h * w  # 1x1 reduce at the block's input size
            if b == 0 and i > 0:
                h, w = h // 2, w // 2  # stride on the 3x3
            total += (9 * planes * planes + planes * 4 * planes) * h * w
            if b == 0:
                total += c * 4 * planes * h * w
            c = 4 * planes
    return total + head_macs(2048, k, h, w, at_output=True)


def conv_unit(c_in: int, c_out: int, k: int, h: int, w: int, groups: int = 1, act: bool = True) -> tuple[int, int]:
    """(params, torchstat count) of conv (no bias, 'same') + BN (+ activation) with output h x w."""
    out = c_out * h * w
    return k * k * c_in // groups * c_out + 2 * c_out, k * k * c_in // groups * c_out * h * w + 2 * out + (out if act
                                                                                                         else 0)


def torchstat_head(c_in: int, k: int, h: int, w: int) -> int:
    total = 0
    for _ in range(3):
        total += c_in * 256 * 16 * h * w  # deconv at input positions, no bias
        h, w, c_in = 2 * h, 2 * w, 256
        total += 3 * 256 * h * w  # BN 2 + ReLU 1 per element
    return total + 256 * k * h * w + k * h * w  # final conv + its bias


def mobilenetv2_hand(k: int, hw: tuple[int, int]) -> tuple[int, int]:
    h, w = hw[0] // 2, hw[1] // 2
    p, f = conv_unit(3, 32, 3, h, w)
    c = 32
    for t, c_out, n, s in MBV2:
        for b in range(n):
            hidden = c * t
            parts = [conv_unit(c, hidden, 1, h, w)] if t != 1 else []
            if b == 0 and s == 2:
                h, w = h // 2, w // 2
            parts += [conv_unit(hidden, hidden, 3, h, w, groups=hidden), conv_unit(hidden, c_out, 1, h, w, act=False)]
            p, f = p + sum(x for x, _ in parts), f + sum(y for _, y in parts)
            c = c_out
    dp, df = conv_unit(320, 1280, 1, h, w)
    return p + dp + head_params(1280, k), f + df + torchstat_head(1280, k, h, w)


def shufflenetv2_hand(k: int, hw: tuple[int, int]) -> tuple[int, int]:
    h, w = hw[0] // 2, hw[1] // 2
    p, f = conv_unit(3, 24, 3, h, w)
    h, w = h // 2, w // 2
    f += 9 * 24 * h * w  # torchstat max-pool: k^2 per output element
    c = 24
    for c_out, n in SHV2:
        half = c_out // 2
        for b in range(n):
            if b == 0:
                h2, w2 = h // 2, w // 2
                parts = [conv_unit(c, c, 3, h2, w2, groups=c, act=False), conv_unit(c, half, 1, h2, w2),  # branch1
                         conv_unit(c, half, 1, h, w), conv_unit(half, half, 3, h2, w2, groups=half, act=False),
                         conv_unit(half, half, 1, h2, w2)]
                h, w = h2, w2
            else:
                parts = [conv_unit(half, half, 1, h, w), conv_unit(half, half, 3, h, w, groups=half, act=False),
                         conv_unit(half, half, 1, h, w)]
            p, f = p + sum(x for x, _ in parts), f + sum(y for _, y in parts)
            c = c_out
    dp, df = conv_unit(464, 1024, 1, h, w)
    return p + dp + head_params(1024, k), f + df + torchstat_head(1024, k, h, w)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------------ #Params and FLOPs
@pytest.mark.parametrize("arch, depth", [("simplebaseline_r50", 50), ("simplebaseline_r101", 101),
                                         ("simplebaseline_r152", 152)])
def test_simplebaseline_params_by_hand(arch, depth):
    for k in (17, 16):
        assert n_params(create_model(arch, num_keypoints=k)) == resnet_params(depth) + head_params(2048, k)


def test_simplebaseline_published_params_and_summary_flops():
    assert resnet_params(50) + head_params(2048, 17) == 33_999_697  # published 34.0M
    assert f"{(resnet_params(152) + head_params(2048, 17)) / 1e6:.1f}" == "68.6"
    assert f"{(resnet_params(152) + head_params(2048, 16)) / 1e6:.1f}" == "68.6"  # DPN T7, MPII
    # hrnet-summary (hooks, a real forward) == the hand sum; 8.991 prints 9.0, not the published 8.90
    r50 = create_model("simplebaseline_r50")
    counted = sum(hook_counts(r50, HRNET_SUMMARY, (256, 192)).values())
    assert counted == resnet_summary(50, 17, (256, 192)) == 9_654_239_232
    assert f"{counted / G:.3f}" == "8.991"
    r152 = create_model("simplebaseline_r152")
    assert sum(analytic_counts(r152, HRNET_SUMMARY, (384, 288)).values()) == resnet_summary(152, 17, (384, 288))
    assert f"{resnet_summary(152, 17, (384, 288)) / G:.1f}" == "35.5"  # published 35.6: the documented gap
    # conv products scale with the pixels: the R-152 - R-50 difference grows exactly 2.25x (published: 6.8, 15.6)
    d_small = resnet_summary(152, 17, (256, 192)) - resnet_summary(50, 17, (256, 192))
    d_large = resnet_summary(152, 17, (384, 288)) - resnet_summary(50, 17, (384, 288))
    assert d_large * 4 == d_small * 9 and f"{d_small / G:.1f}" == "6.8" and f"{d_large / G:.1f}" == "15.2"


@pytest.mark.parametrize("arch, hand, published", [
    ("mobilenetv2_1x", mobilenetv2_hand, {(256, 192): "1.48", (384, 288): "3.33", (256, 256): "1.97"}),
    ("shufflenetv2_1x", shufflenetv2_hand, {(256, 192): "1.28", (384, 288): "2.87", (256, 256): "1.70"}),
])
def test_small_networks_reproduce_lite_hrnet_under_torchstat(arch, hand, published):
    """Lite-HRNet T3-T5 counted these with torchstat, binary G: every cell reproduces (K=16 on MPII)."""
    assert get_entry(arch).convention == "torchstat"
    for hw, text in published.items():
        k = 16 if hw == (256, 256) else 17
        model = create_model(arch, num_keypoints=k)
        params, flops = hand(k, hw)
        assert n_params(model) == params and f"{params / 1e6:.1f}" == ("9.6" if arch == "mobilenetv2_1x" else "7.6")
        counts = hook_counts(model, TORCHSTAT, hw) if hw == (256, 192) else analytic_counts(model, TORCHSTAT, hw)
        assert sum(counts.values()) == flops, hw
        assert f"{flops / G:.2f}" == text, hw


def test_small_networks_hand_totals():
    assert mobilenetv2_hand(17, (256, 192)) == (9_569_809, 1_587_256_320)
    assert shufflenetv2_hand(17, (256, 192)) == (7_550_965, 1_371_367_296)


# ------------------------------------------------------------------------------ the head
def test_deconv_head_keys_shapes_init_and_refusals():
    head = build_head("deconv", 2048, 17)
    assert isinstance(head, DeconvHead) and head.codec.stride == 4
    sd = head.state_dict()
    bn = {f"deconv_layers.{i}.{p}" for i in (1, 4, 7)
          for p in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}
    assert set(sd) == {"deconv_layers.0.weight", "deconv_layers.3.weight", "deconv_layers.6.weight",
                       "final_layer.weight", "final_layer.bias"} | bn  # official / mmpose TopDownSimpleHead keys
    assert tuple(sd["deconv_layers.0.weight"].shape) == (2048, 256, 4, 4)  # (C_in, C_out, k, k)
    assert tuple(sd["final_layer.weight"].shape) == (17, 256, 1, 1)
    assert 0.0008 < float(sd["deconv_layers.3.weight"].std()) < 0.0012  # N(0, 0.001^2), as the official head
    assert float(sd["final_layer.bias"].abs().max()) == 0
    assert tuple(head(torch.zeros(1, 2048, 8, 6)).shape) == (1, 17, 64, 48)  # x8: 1/32 -> 1/4
    with pytest.raises(ConfigError, match="deconv kernel"):
        build_head("deconv", 8, 17, kernel=5)
    with pytest.raises(ConfigError, match="deconv_channels"):
        create_model("sbl_r50", deconv_channels=(256, 256))


@pytest.mark.parametrize("kernel", [4, 3, 2])
def test_deconv_head_walk_equals_hooks_and_the_summary_rule(kernel):
    head = build_head("deconv", 64, 5, channels=(8, 8, 8), kernel=kernel)
    model = PoseModel(torch.nn.Conv2d(3, 64, 1), 5, head=head)  # a 1x1 conv "backbone" feeds it 64 channels
    for conv in (TORCHSTAT, HRNET_SUMMARY):
        assert analytic_counts(model, conv, (3, 2)) == hook_counts(model, conv, (3, 2)), conv.name
    summary = {n: v for n, v in analytic_counts(model, HRNET_SUMMARY, (3, 2)).items() if n.startswith("head.")}
    # by hand: weight x output positions (6x4, 12x8, 24x16), then the 1x1 conv (no bias in the summary)
    assert summary == {"head.deconv_layers.0": 64 * 8 * kernel**2 * 24, "head.deconv_layers.3": 64 * kernel**2 * 96,
                       "head.deconv_layers.6": 64 * kernel**2 * 384, "head.final_layer": 8 * 5 * 384}
    torchstat = analytic_counts(model, TORCHSTAT, (3, 2))
    assert torchstat["head.deconv_layers.0"] == 64 * 8 * kernel**2 * 6  # torchstat: at input positions
    deconv = head.deconv_layers[0]
    assert conv_transpose2d_at_output(deconv, (1, 64, 3, 2), (1, 8, 6, 4)) == deconv.weight.numel() * 24


def test_explain_names_the_deconvolution_term():
    d = measure("sbl_r50", (64, 64), 17, engines=("paper", "macs"), explain=True).to_dict()
    rows = {r["term"]: r["raw"] for r in d["explain"]["paper"]["rows"]}
    # the three deconvs at output minus input positions: 3x their MACs (2x2 -> 4x4 -> 8x8 -> 16x16)
    assert rows["deconv at output"] == 3 * (2048 * 256 * 16 * 4 + 256 * 256 * 16 * (16 + 64))
    assert "unexplained" not in rows and sum(rows.values()) == d["counts"]["paper"]


# ------------------------------------------------------------------------------ the models
@pytest.mark.parametrize("arch, channels, key", [
    ("simplebaseline_r152", 2048, "backbone.layer3.35.conv2.weight"),
    ("mobilenetv2_1x", 1280, "backbone.layer7.0.conv.2.bn.running_var"),
    ("shufflenetv2_1x", 1024, "backbone.layers.0.0.branch1.0.conv.weight"),
])
def test_forward_shape_keys_and_input_check(arch, channels, key):
    model = create_model(arch, num_keypoints=4).eval()
    assert model.backbone.out_channels == channels and model.backbone.out_stride == 32
    assert key in model.state_dict() and "head.deconv_layers.6.weight" in model.state_dict()
    with torch.no_grad():
        assert tuple(model(torch.randn(2, 3, 64, 96)).shape) == (2, 4, 16, 24)
    model.check_input_size(384, 288)
    with pytest.raises(HrbenchError, match="multiples of 32"):
        model.check_input_size(256, 200)


def test_batchnorm_folding_leaves_only_the_heads_deconvolution_bns():
    from hrbench.speed.fuse import count_batchnorms, fold_batchnorm

    for arch in ("sbl_r50", "mobilenetv2_1x", "shufflenetv2_1x"):
        model = create_model(arch, num_keypoints=4).eval()
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():  # non-trivial BN statistics, so that folding is not an identity
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                    m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                    m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
        x = torch.randn(1, 3, 64, 64, generator=g)
        folded = fold_batchnorm(model)
        assert count_batchnorms(folded) == 3, arch  # the BNs after the ConvTranspose2d layers stay
        with torch.no_grad():
            ref, out = model(x), folded(x)
        assert (out - ref).abs().max() <= 1e-4 * ref.abs().max() and ref.abs().max() > 0, arch


def test_recipes_are_the_official_configs():
    from hrbench.engine.recipes import get_recipe

    sbl = get_recipe("sbl_r50", "coco", (256, 192))
    assert (sbl.optimizer, sbl.lr, sbl.epochs, sbl.lr_steps, sbl.warmup_iters, sbl.weight_decay,
            sbl.batch_per_gpu, sbl.gpus) == ("adam", 1e-3, 140, (90, 120), 0, 0.0, 32, 4)
    assert get_recipe("sbl_r152", "mpii", (256, 256)) == sbl
    for arch in ("mobilenetv2_1x", "shufflenetv2_1x"):
        r = get_recipe(arch, "coco", (384, 288))
        assert (r.lr, r.epochs, r.lr_steps, r.warmup_iters, r.batch_per_gpu, r.gpus) == (5e-4, 210, (170, 200),
                                                                                          500, 64, 8)


def test_one_engine_training_step(synth, tmp_path):
    from hrbench.engine import train

    s = train("shufflenetv2_1x", synth, epochs=1, batch=4, input_hw=(64, 64), out=tmp_path, name="r", device="cpu",
              workers=0, progress=False)
    assert s["status"] == "finished" and s["epochs_done"] == 1 and s["iterations"] >= 1
    assert math.isfinite(s["final"]["val_loss"]) and 0 <= s["final"]["AP"] <= 1  # validated with flip test
