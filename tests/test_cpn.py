"""CPN ResNet-50 (Chen et al., CVPR 2018; issue 21): GlobalNet + RefineNet on ResNet-50's C2..C5, its codec
(tf-cpn's 255-peak multi-kernel targets, global L2 + RefineNet OHKM loss, decoding, flip without shift).

#Params and the FLOPs of every variant the card names are derived here by hand from the official layer list
(tf-cpn ``network.py`` / ``basemodel.py``; closed-form sums, no model code); codec values from the official
target recipe (a one blurred by OpenCV, scaled to 255) at joints placed by hand.
"""

from __future__ import annotations

import math
import re

import cv2
import numpy as np
import pytest
import torch

from hrbench.codecs import build_codec
from hrbench.codecs.cpn import KERNELS, gaussian_kernel_1d, ohkm
from hrbench.complexity.conventions import HRNET_SUMMARY
from hrbench.complexity.hooks import hook_counts
from hrbench.complexity.measure import measure
from hrbench.complexity.walker import analytic_counts
from hrbench.errors import ConfigError, HrbenchError
from hrbench.factory import create_model
from hrbench.registry import get_entry

G = 2**30
WIDTHS = (256, 512, 1024, 2048)  # C2..C5
BOTTLENECK = 256 * 128 + 9 * 128 * 128 + 128 * 256  # tf-slim bottleneck(256, 128): conv weights


# ------------------------------------------------------------------------------ hand counts
def resnet50_params() -> int:
    n, c = 3 * 64 * 49 + 2 * 64, 64
    for planes, blocks in zip((64, 128, 256, 512), (3, 4, 6, 3), strict=True):
        for b in range(blocks):
            n += c * planes + 9 * planes * planes + planes * 4 * planes + 2 * (6 * planes)
            if b == 0:
                n += c * 4 * planes + 2 * 4 * planes
            c = 4 * planes
    return n


def cpn_params(k: int) -> int:
    lateral = sum(c * 256 + 2 * 256 for c in WIDTHS)
    upsample = 3 * (256 * 256 + 256)  # 1x1 with bias, no BN (the official "merge" conv)
    predict = 4 * (256 * 256 + 2 * 256 + 9 * 256 * k + 2 * k)
    refine = (0 + 1 + 2 + 3) * (BOTTLENECK + 2 * (128 + 128 + 256))
    final = 1024 * 128 + 9 * 128 * 128 + 128 * 256 + 2 * (128 + 128 + 256) + 1024 * 256 + 2 * 256
    return resnet50_params() + lateral + upsample + predict + refine + final + 9 * 256 * k + 2 * k


def positions(hw: tuple[int, int]) -> list[int]:
    """Pixels of C2..C5 (strides 4..32) for an input multiple of 32."""
    return [(hw[0] // s) * (hw[1] // s) for s in (4, 8, 16, 32)]


def backbone_summary(hw: tuple[int, int]) -> int:
    """Conv weight x output positions over ResNet-50 (stride on the first 3x3 of stages 2-4)."""
    total = 3 * 64 * 49 * (hw[0] // 2) * (hw[1] // 2)
    pos, c = positions(hw), 64
    for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3), strict=True)):
        for b in range(blocks):
            total += c * planes * (pos[i - 1] if b == 0 and i > 0 else pos[i])  # 1x1 reduce before the stride
            total += (9 * planes * planes + planes * 4 * planes) * pos[i]
            if b == 0:
                total += c * 4 * planes * pos[i]
            c = 4 * planes
    return total


def globalnet_summary(hw, k: int, predictions: bool) -> int:
    pos = positions(hw)
    total = sum(c * 256 * p for c, p in zip(WIDTHS, pos, strict=True)) + sum(256 * 256 * p for p in pos[:3])
    if predictions:
        total += sum((256 * 256 + 9 * 256 * k) * p for p in pos)
    return total


def refinenet_summary(hw, k: int) -> int:
    pos = positions(hw)
    total = sum(i * BOTTLENECK * p for i, p in enumerate(pos))
    return total + (1024 * 128 + 9 * 128 * 128 + 128 * 256 + 1024 * 256 + 9 * 256 * k) * pos[0]


def cpn_summary(hw=(256, 192), k: int = 17) -> int:
    return backbone_summary(hw) + globalnet_summary(hw, k, False) + refinenet_summary(hw, k)


# ------------------------------------------------------------------------------ #Params and FLOPs
def test_params_reproduce_the_published_27m():
    model = create_model("cpn_r50")
    assert sum(p.numel() for p in model.parameters()) == cpn_params(17) == 27_009_770
    assert f"{cpn_params(17) / 1e6:.1f}" == "27.0"
    # the PyTorch port: a projection (1x1 + BN) on each of the six level bottlenecks, BN instead of the bias
    assert f"{(cpn_params(17) + 6 * (256 * 256 + 2 * 256) + 3 * 256) / 1e6:.1f}" == "27.4"
    assert sum(p.numel() for p in create_model("cpn_r50", num_keypoints=16).parameters()) == cpn_params(16)


def test_flops_by_hand_every_engine_and_the_published_gap():
    model = create_model("cpn_r50")
    counted = sum(hook_counts(model, HRNET_SUMMARY, (256, 192)).values())
    assert counted == sum(analytic_counts(model, HRNET_SUMMARY, (256, 192)).values()) == cpn_summary()
    assert cpn_summary() == 6_803_423_232 and f"{cpn_summary() / G:.3f}" == "6.336"
    assert f"{cpn_summary() / G:.2f}" != "6.20"  # the published cell is not reproduced (the card says why)
    assert sum(analytic_counts(model, HRNET_SUMMARY, (384, 288)).values()) == cpn_summary((384, 288))
    r = measure("cpn_r50", (256, 192), 17)
    assert r.paper_mflops * 2**20 == cpn_summary() == r.counts["macs"]  # conv-only network: summary == true MACs
    assert r.published["gflops"] == pytest.approx(6.2) and r.published["params_M"] == pytest.approx(27.0)


def test_the_cards_variant_counts_are_the_hand_sums():
    """Every variant the card names, by hand (binary / decimal G), and each printed in the card."""
    hw, k = (256, 192), 17
    train_graph = cpn_summary() + globalnet_summary(hw, k, True) - globalnet_summary(hw, k, False)
    variants = {"6.734 binary / 7.231 decimal": train_graph,
                "3.729 / 4.004": backbone_summary(hw),
                "4.724 / 5.073": backbone_summary(hw) + globalnet_summary(hw, k, True),
                "6.336 binary / 6.803 decimal": cpn_summary()}
    notes = get_entry("cpn_r50").notes
    for text, n in variants.items():
        first, last = re.findall(r"\d+\.\d+", text)
        assert (first, last) == (f"{n / G:.3f}", f"{n / 1e9:.3f}") and text in notes, text
    # the max-pool without its pad: C2 63x47, the rest unchanged in size (SAME strides round up)
    model = create_model("cpn_r50").eval()
    model.backbone.maxpool.padding = 0
    with torch.no_grad():
        assert tuple(model(torch.zeros(1, 3, 256, 192)).shape) == (1, 17, 63, 47)
    valid = sum(hook_counts(model, HRNET_SUMMARY, (256, 192)).values())
    assert f"{valid / G:.3f}" == "6.234" and "6.234 binary G" in notes and "63x47" in notes


def test_eval_gives_the_refinenet_heatmaps_training_all_five():
    model = create_model("cpn_r50").eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        out = model(x)
    assert isinstance(out, torch.Tensor) and tuple(out.shape) == (2, 17, 16, 24)
    model.train()
    outs = model(x)
    assert isinstance(outs, tuple) and len(outs) == 5 and all(tuple(o.shape) == (2, 17, 16, 24) for o in outs)
    for m in model.modules():  # training mode with eval BNs: the same computation as eval, plus GlobalNet's maps
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
    with torch.no_grad():
        outs = model(x)
        model.eval()
        assert torch.equal(model(x), outs[0])  # the eval output is the RefineNet entry
        assert not any(torch.allclose(outs[0], o) for o in outs[1:])
    with pytest.raises(HrbenchError, match="multiples of 32"):
        model.check_input_size(64, 80)
    with pytest.raises(ConfigError, match="bottleneck"):
        create_model("cpn_r50", bottleneck=100)


def test_module_names_and_official_layout():
    head = create_model("cpn_r50").head
    names = {n for n, _ in head.named_children()}
    assert names == {"global_net", "refine_net"}
    assert head.global_net.upsample[0].bias is not None  # the official merge conv has a bias and no BN
    assert [len(s) if isinstance(s, torch.nn.Sequential) else 0 for s in head.refine_net.refine] == [0, 1, 2, 3]
    assert all(b.downsample is None for s in head.refine_net.refine[1:] for b in s)  # identity shortcuts
    assert head.refine_net.final_bottleneck.downsample is not None


# ------------------------------------------------------------------------------ codec
def test_kernels_are_opencvs():
    for k in (3, 5, 7, 11, 15, 21):
        assert np.allclose(gaussian_kernel_1d(k), cv2.getGaussianKernel(k, 0)[:, 0], atol=1e-12), k
    # 9 taps: the sampled Gaussian of sigma 0.3 * 3 + 0.8 = 1.7 (OpenCV 3; OpenCV >= 4 has a fixed 9-tap table)
    g = np.exp(-(np.arange(9) - 4.0) ** 2 / (2 * 1.7 ** 2))
    assert np.allclose(gaussian_kernel_1d(9), g / g.sum(), atol=1e-12)


def test_targets_by_hand_at_a_known_joint():
    """Joint (21.3, 30.9) in a 64x48 crop -> peak pixel (5, 7) of the 12x16 map, 255 there (1 in its units)."""
    codec = build_codec("cpn")
    joints = np.array([[21.3, 30.9], [1.0, 30.9], [47.0, 2.0], [50.0, 10.0]])
    vis = np.array([1, 1, 1, 1])
    t = codec.encode(joints, vis, (64, 48))
    assert set(t) == {"target_k15", "target_k11", "target_k9", "target_k7", "target_weight"}
    assert codec.target_keys == (*(f"target_k{k}" for k in KERNELS), "target_weight") and KERNELS == (15, 11, 9, 7)
    assert t["target_k7"].shape == (4, 16, 12) and t["target_k7"].dtype == np.float32
    assert t["target_weight"][:, 0].tolist() == [1, 1, 1, 0]  # x = 50 lies outside the 48-pixel crop
    k7 = t["target_k7"][0] * 255  # the official scale
    assert k7[7, 5] == pytest.approx(255) and k7.max() == pytest.approx(255)
    assert k7[7, 6] == pytest.approx(255 * 0.21875 / 0.28125)  # OpenCV's fixed 7-tap table
    assert k7[8, 6] == pytest.approx(255 * (0.21875 / 0.28125) ** 2)
    assert k7[7, 9] == 0  # 4 px away: outside the 7-tap support
    sigma = 0.3 * ((15 - 1) * 0.5 - 1) + 0.8  # 2.6
    e = [math.exp(-d * d / (2 * sigma * sigma)) for d in range(8)]
    k15 = t["target_k15"][0] * 255
    assert k15[7, 6] == pytest.approx(255 * e[1], rel=1e-6)
    assert k15[7, 0] == pytest.approx(255 * 2 * e[5], rel=1e-6)  # reflect-101: the mirror of x = 5 adds at 0
    assert k15[0, 5] == pytest.approx(255 * 2 * e[7], rel=1e-6)  # and of y = 7 at 0
    assert t["target_k15"][3].max() == 0  # no map for a joint outside


def test_targets_equal_opencvs_blur_of_the_one_and_the_batch_encoder():
    codec = build_codec("cpn")
    rng = np.random.default_rng(0)
    joints = np.concatenate([rng.uniform(0, 48, (17, 1)), rng.uniform(0, 64, (17, 1))], axis=1)
    joints[:3] = [[0.0, 0.0], [47.9, 63.9], [3.0, 61.0]]  # corners and an edge
    vis = np.ones(17)
    vis[5] = 0
    t = codec.encode(joints, vis, (64, 48))
    for k in (15, 11, 7):  # OpenCV >= 4 blurs with its own 9-tap table (see test_kernels_are_opencvs)
        for j in range(17):
            one = np.zeros((16, 12), np.float32)
            if vis[j]:
                one[int(joints[j, 1] * 16 / 64), int(joints[j, 0] * 12 / 48)] = 1
            ref = cv2.GaussianBlur(one, (k, k), 0)
            ref = ref / ref.max() * 255 if ref.max() > 0 else ref  # tf-cpn joints_heatmap_gen
            assert np.allclose(t[f"target_k{k}"][j] * 255, ref, atol=1e-3), (k, j)
    batch = codec.encode_batch(torch.tensor(np.stack([joints, joints[::-1]])), torch.tensor(np.stack([vis, vis[::-1]])),
                               (64, 48))
    assert np.allclose(batch["target_k9"][0].numpy(), t["target_k9"], atol=1e-6)
    assert np.allclose(batch["target_k15"][1].numpy(), codec.encode(joints[::-1], vis[::-1], (64, 48))["target_k15"],
                       atol=1e-6)
    assert torch.equal(batch["target_weight"][0], torch.from_numpy(t["target_weight"]))


def test_ohkm_and_the_loss_on_a_hand_made_loss_vector():
    assert ohkm(torch.arange(17.0)[None], 8).item() == pytest.approx(sum(range(9, 17)) / 8)  # 12.5
    codec = build_codec("cpn")
    b, k, h, w = 2, 17, 4, 3
    target = torch.rand(b, k, h, w)
    weight = torch.ones(b, k, 1)
    weight[:, 16] = 0  # the largest error is masked
    target[:, 16] = 0  # as the encoder leaves a weight-0 joint
    refine = target + torch.arange(k, dtype=torch.float32).reshape(1, k, 1, 1) / 255  # official scale: MSE k^2
    targets = [target] * 4 + [weight]
    refine_only = sum(j * j for j in range(8, 16)) / 8  # top 8 of 0..15 squared = 137.5
    assert codec.loss(refine, *targets).item() == pytest.approx(refine_only, rel=1e-4)  # eval output: RefineNet term
    globals_ = tuple(target + 1 / 255 for _ in range(4))  # official MSE 1 on every level: (1+1+1+1)/4/2
    assert codec.loss((refine, *globals_), *targets).item() == pytest.approx(refine_only + 0.5, rel=1e-4)
    per = codec.loss((refine, *globals_), *targets, reduction="none")
    assert per.shape == (2,) and torch.allclose(per, torch.full((2,), refine_only + 0.5), rtol=1e-4)


def test_decoding_by_hand_and_flip_without_shift():
    codec = build_codec("cpn")
    hm = np.zeros((1, 2, 16, 12), np.float32)
    hm[0, 0, 7, 5], hm[0, 0, 7, 6] = 1.0, 0.5  # peak at (5, 7), second-highest to its right
    hm[0, 1, 3, 2] = 0.8
    d = codec.decode(torch.from_numpy(hm))
    # 0.25 px towards the second maximum, + 0.5 (tf-cpn's 4x + 2 in input pixels)
    assert d.coords[0, 0].tolist() == pytest.approx([5.75, 7.5])
    assert d.scores[0, 0, 0] == pytest.approx(1.0) and d.scores[0, 1, 0] == pytest.approx(0.8)
    assert d.frame_wh == (12, 16)
    flipped = torch.zeros(1, 2, 16, 12)
    flipped[0, 0, 3, 2] = 1
    back = codec.flip_back(flipped, [(0, 1)])
    assert back[0, 1, 3, 9] == 1 and back.sum() == 1  # mirrored (12 - 1 - 2), swapped, not shifted
    with pytest.raises(ConfigError):
        codec.decode(torch.from_numpy(hm), post_process="dark")


def test_training_starts_at_the_official_loss_scale_and_falls():
    """The untrained heatmaps are ~0 in official units (last BN at scale 1/255 = the official 1), so the first
    loss is the loss of an all-zero output, computed here from the targets by the official formula; Adam lowers it."""
    torch.manual_seed(0)
    model = create_model("cpn_r50").train()
    codec = model.codec
    joints = torch.from_numpy(np.random.default_rng(0).uniform(8, 56, (2, 17, 2)))
    t = codec.encode_batch(joints, torch.ones(2, 17), (64, 64))
    official = {k: v * 255 for k, v in t.items() if k != "target_weight"}
    refine = (official["target_k7"] ** 2).mean(dim=(2, 3)).topk(8, dim=1).values.mean(1)  # OHKM of zero output
    glob = sum((official[f"target_k{k}"] ** 2).mean(dim=(1, 2, 3)) for k in KERNELS) / 4 / 2
    zero_loss = (refine + glob).mean().item()
    x = torch.randn(2, 3, 64, 64)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(4):
        loss = codec.loss(model(x), *(t[k] for k in codec.target_keys))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(zero_loss, rel=0.02) and zero_loss > 1000
    assert all(b < a for a, b in zip(losses[:-1], losses[1:], strict=True)), losses


# ------------------------------------------------------------------------------ recipe, training, flip test
def test_recipe_is_tf_cpns_translated():
    r = get_entry("cpn_r50").recipe("coco", (256, 192))
    assert (r.optimizer, r.lr, r.weight_decay, r.total_batch, r.warmup_iters) == ("adam", 5e-4, 1e-5, 32, 0)
    samples, step = 400 * 60_000, 60 * 60_000  # tf-cpn max_itr / step_size, counted in samples
    assert r.epochs == round(samples / 149_813) == 160 and r.gamma == 0.5
    assert r.lr_steps == tuple(round(step / 149_813) * i for i in range(1, 7))


def test_two_epochs_and_flip_test_evaluation(synth, tmp_path):
    from hrbench.engine import evaluate_checkpoint, train

    s = train("cpn_r50", synth, epochs=2, batch=4, input_hw=(64, 64), out=tmp_path, name="cpn", device="cpu",
              workers=0, progress=False, tensorboard=False)
    assert s["status"] == "finished" and s["epochs_done"] == 2 and math.isfinite(s["best"]["val_loss"])
    m = evaluate_checkpoint("cpn_r50", s["checkpoints"]["best"], synth, device="cpu", workers=0, batch_size=4)
    assert m["flip"] is True and m["AP"] == pytest.approx(s["best"]["AP"]) and 0 <= m["AP"] <= 1
