"""The 8-stage stacked hourglass (Newell et al., ECCV 2016; issue 21): #Params and FLOPs derived here by
hand from the official layer list (``hg.lua`` / ``Residual.lua``: closed-form sums, no model code) under
every convention, the published 25.1M / 14.3 cells and the layouts that do not reach them, the input-size
refusal, intermediate supervision (summed loss, one output in evaluation), flip test, training.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from hrbench.cli import main
from hrbench.codecs import build_codec
from hrbench.complexity.conventions import HRNET_SUMMARY, TORCHSTAT
from hrbench.complexity.hooks import hook_counts
from hrbench.complexity.walker import analytic_counts
from hrbench.errors import HrbenchError
from hrbench.factory import create_model
from hrbench.memory import estimate_step
from hrbench.registry import get_entry

G = 2**30

# One layer of the hand layer list: ("conv", c_in, c_out, k, h_out, w_out, bias) | (kind, c, h_out, w_out)
Layer = tuple


def residual(c_in: int, c_out: int, h: int, w: int, bias: bool = True) -> Iterator[Layer]:
    """Residual.lua: BN-ReLU-1x1 (c_out/2), BN-ReLU-3x3, BN-ReLU-1x1 (c_out); 1x1 skip if the width changes."""
    mid = c_out // 2
    for c, c2, k in ((c_in, mid, 1), (mid, mid, 3), (mid, c_out, 1)):
        yield from (("bn", c, h, w), ("relu", c, h, w), ("conv", c, c2, k, h, w, bias))
    if c_in != c_out:
        yield ("conv", c_in, c_out, 1, h, w, bias)


def hourglass(depth: int, c: int, h: int, w: int, bias: bool = True) -> Iterator[Layer]:
    """hg.lua ``hourglass(n, f, inp)``: up1, pool, low1, (recursion | residual), low3, upsample."""
    yield from residual(c, c, h, w, bias)
    yield ("pool", c, h // 2, w // 2)
    yield from residual(c, c, h // 2, w // 2, bias)
    yield from (hourglass(depth - 1, c, h // 2, w // 2, bias) if depth > 1 else residual(c, c, h // 2, w // 2, bias))
    yield from residual(c, c, h // 2, w // 2, bias)
    yield ("upsample", c, h, w)


def network(hw: tuple[int, int], k: int, stacks: int = 8, c: int = 256, stem: str = "newell",
            bias: bool = True, post_residual: bool = True) -> Iterator[Layer]:
    """hg.lua ``createModel`` (``stem="bearpaw"``: the PyTorch port's 128->C, C->C after the pool)."""
    h, w = hw[0] // 2, hw[1] // 2
    yield from (("conv", 3, 64, 7, h, w, bias), ("bn", 64, h, w), ("relu", 64, h, w))
    yield from residual(64, 128, h, w, bias)
    h, w = h // 2, w // 2
    yield ("pool", 128, h, w)
    widths = ((128, 128), (128, c)) if stem == "newell" else ((128, c), (c, c))
    for a, b in widths:
        yield from residual(a, b, h, w, bias)
    for i in range(stacks):
        yield from hourglass(4, c, h, w, bias)
        if post_residual:
            yield from residual(c, c, h, w, bias)
        yield from (("conv", c, c, 1, h, w, True), ("bn", c, h, w), ("relu", c, h, w))  # lin
        yield ("conv", c, k, 1, h, w, True)  # the stack's prediction (the last one: the head)
        if i < stacks - 1:
            yield from (("conv", k, c, 1, h, w, True), ("conv", c, c, 1, h, w, True))  # tmpOut_, ll_


def hand(layers: Iterator[Layer]) -> dict[str, int]:
    """#Params, get_model_summary (conv weight x output positions), torchstat (conv + bias per output, BN 2
    and ReLU 1 per element, max-pool k^2 per output element, nn.Upsample N*H*W) and true MACs."""
    p = summary = torchstat = 0
    for layer in layers:
        kind = layer[0]
        if kind == "conv":
            _, a, b, k, h, w, bias = layer
            p += a * b * k * k + (b if bias else 0)
            summary += a * b * k * k * h * w
            torchstat += a * b * k * k * h * w + (b * h * w if bias else 0)
        elif kind == "bn":
            p += 2 * layer[1]
            torchstat += 2 * layer[1] * layer[2] * layer[3]
        elif kind == "relu":
            torchstat += layer[1] * layer[2] * layer[3]
        elif kind == "pool":
            torchstat += 4 * layer[1] * layer[2] * layer[3]
        elif kind == "upsample":
            torchstat += layer[2] * layer[3]
    return {"params": p, "summary": summary, "torchstat": torchstat, "macs": summary}


def elements(layers: Iterator[Layer]) -> dict[str, int]:
    """Output elements of the BN, ReLU, max-pool and upsampling layers, and conv bias positions."""
    out = {"bn": 0, "relu": 0, "pool": 0, "upsample": 0, "bias": 0}
    for layer in layers:
        if layer[0] == "conv":
            out["bias"] += layer[2] * layer[4] * layer[5] if layer[6] else 0
        else:
            out[layer[0]] += layer[1] * layer[2] * layer[3]
    return out


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------------ #Params and FLOPs
def test_hand_counts_equal_every_engine_at_256x192():
    model = create_model("hourglass_8").eval()
    want = hand(network((256, 192), 17))
    assert n_params(model) == want["params"] == 25_437_960
    assert sum(analytic_counts(model, HRNET_SUMMARY, (256, 192)).values()) == want["summary"] == 20_591_935_488
    assert sum(analytic_counts(model, TORCHSTAT, (256, 192)).values()) == want["torchstat"]
    assert f"{want['summary'] / G:.3f}" == "19.178" and f"{want['torchstat'] / G:.3f}" == "19.384"
    from hrbench.complexity.measure import measure

    r = measure("hg8", (256, 192), 17, engines=("paper", "macs", "fvcore", "ptflops"))
    assert r.counts["paper"] == r.counts["macs"] == want["macs"]  # no deconvolution: summary == true MACs
    # fvcore: + BN 2 per element + nearest upsampling 1 per output element; ptflops: + BN, conv bias, and
    # max-pool (1 per input element), ReLU and upsampling each counted twice (module hook + patched function)
    el = elements(network((256, 192), 17))
    assert r.counts["fvcore"] == want["macs"] + 2 * el["bn"] + el["upsample"]
    assert r.counts["ptflops"] == want["macs"] + 2 * el["bn"] + el["bias"] + 2 * (4 * el["pool"] + el["relu"] +
                                                                                   el["upsample"])
    assert (f"{r.counts['fvcore'] / 1e9:.3f}", f"{r.counts['ptflops'] / 1e9:.3f}") == ("20.698", "20.889")


def test_hooks_equal_walk_and_hand_on_a_small_config():
    for kw, hw in (({"num_stacks": 2}, (128, 128)), ({"num_stacks": 3, "stem": "bearpaw", "bias": False}, (64, 128))):
        model = create_model("hg8", num_keypoints=5, **kw).eval()
        want = hand(network(hw, 5, stacks=kw["num_stacks"], stem=kw.get("stem", "newell"), bias=kw.get("bias", True)))
        assert n_params(model) == want["params"], kw
        for conv, key in ((HRNET_SUMMARY, "summary"), (TORCHSTAT, "torchstat")):
            assert analytic_counts(model, conv, hw) == hook_counts(model, conv, hw), (kw, conv.name)
            assert sum(hook_counts(model, conv, hw).values()) == want[key], (kw, conv.name)


def test_the_published_cells_and_the_layouts_that_miss_them():
    """Published 25.1M / 14.3 (Lite T3, Dite T2, DPN T6) vs the measured layouts (the card's reason)."""
    newell, bearpaw = hand(network((256, 192), 17)), hand(network((256, 192), 17, stem="bearpaw"))
    nobias = hand(network((256, 192), 17, bias=False))
    assert bearpaw["params"] == 25_598_472 and f"{bearpaw['summary'] / G:.3f}" == "19.635"  # issue-21 facts' count
    assert nobias["params"] == 25_379_144 and nobias["summary"] == newell["summary"]
    for layout in (newell, bearpaw, nobias):
        assert f"{layout['params'] / 1e6:.1f}" != "25.1" and f"{layout['summary'] / G:.1f}" != "14.3"
    stem = hand(network((256, 192), 17, stacks=0))["params"]  # no stack: the stem alone
    assert stem == 352_640 and f"{(newell['params'] - stem) / 1e6:.1f}" == "25.1"  # stacks alone: 25,085,320
    no_post = hand(network((256, 192), 17, post_residual=False))
    assert f"{no_post['summary'] / G:.3f}" == "14.303" and no_post["params"] == 23_721_736  # 14.3, but 23.7M
    assert sum(hook_counts(create_model("hg8", stem="bearpaw").eval(), HRNET_SUMMARY, (256, 192)).values()) == \
        bearpaw["summary"]


def test_mpii_counts():
    model = create_model("hg8", num_keypoints=16).eval()
    want = hand(network((256, 256), 16))
    assert n_params(model) == want["params"] == 25_434_112
    assert sum(analytic_counts(model, HRNET_SUMMARY, (256, 256)).values()) == want["summary"]
    assert f"{want['summary'] / G:.3f}" == "25.556"


# ------------------------------------------------------------------------------ the models
def test_input_size_refusal(capsys):
    model = create_model("hg8", num_stacks=1)
    model.check_input_size(256, 192)
    with pytest.raises(HrbenchError, match=r"multiples of 64 \(stride-4 stem, then 4 2x2 max-pools"):
        model.check_input_size(256, 200)
    create_model("hg8", num_stacks=1, depth=3).check_input_size(96, 32)  # depth 3: multiples of 32
    with pytest.raises(HrbenchError, match="multiples of 64"):
        model.eval()(torch.zeros(1, 3, 64, 96))
    assert main(["flops", "hg8", "--input", "256x200", "--engines", "paper"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hrbench: error: ") and len(err.strip().splitlines()) == 1 and "multiples of 64" in err


def test_training_mode_gives_every_stack_evaluation_the_last():
    torch.manual_seed(0)
    model = create_model("hg8", num_keypoints=4, num_stacks=3)
    x = torch.randn(2, 3, 64, 64)
    model.train()
    out = model(x)
    assert isinstance(out, tuple) and len(out) == 3 and all(tuple(o.shape) == (2, 4, 16, 16) for o in out)
    model.eval()
    with torch.no_grad():
        single = model(x)
        feats = model.backbone(x)
    assert isinstance(single, torch.Tensor) and tuple(single.shape) == (2, 4, 16, 16)
    assert torch.equal(single, model.head.final_layer(feats))
    keys = set(model.state_dict())
    assert {"backbone.scores.1.weight", "backbone.remap_scores.1.weight", "backbone.remap_features.1.weight",
            "head.final_layer.weight", "backbone.hourglasses.2.low2.low2.low2.low2.0.conv_block.8.weight",
            "backbone.stem.3.skip_layer.weight"} <= keys
    assert "backbone.scores.2.weight" not in keys  # the last prediction is the head's
    assert model.codec.name == "stacked_heatmap" and get_entry("hg8").name == "hourglass_8"


def test_stacked_loss_is_the_sum_over_stacks_by_hand():
    codec = build_codec("stacked_heatmap")
    target = torch.zeros(1, 2, 2, 2)
    weight = torch.tensor([[[1.0], [0.0]]])  # keypoint 1 does not count
    a = torch.ones(1, 2, 2, 2)  # keypoint 0: mean of 1^2 = 1; keypoint 1 weighted 0 -> mean over K: 0.5
    b = torch.full((1, 2, 2, 2), 3.0)  # 9 -> 4.5
    assert codec.loss((a, b), target, weight).item() == 5.0
    assert codec.loss(b, target, weight).item() == 4.5  # one output: the MSRA loss
    per = codec.loss((a.repeat(2, 1, 1, 1), b.repeat(2, 1, 1, 1)), torch.zeros(2, 2, 2, 2), torch.ones(2, 2, 1),
                     reduction="none")
    assert per.tolist() == [10.0, 10.0]  # (1 + 9) per sample with every keypoint
    assert build_codec("msra_heatmap").loss(b, target, weight).item() == 4.5


def test_flip_test_uses_the_last_stack(synth):
    from hrbench.evaluation.flip import flip_test

    torch.manual_seed(0)
    model = create_model("hg8", num_keypoints=4, num_stacks=2).eval()
    x = torch.randn(2, 3, 64, 64)
    pairs = [(0, 1)]
    with torch.no_grad():
        plain, mirrored = model(x).numpy(), model(x.flip(3)).numpy()
    back = mirrored[:, [1, 0, 2, 3], :, ::-1].copy()  # mirror W, swap the pair
    back[..., 1:] = back[..., :-1].copy()  # the reference shift_heatmap: one pixel right
    assert np.allclose(flip_test(model, x, pairs).numpy(), (plain + back) / 2, atol=1e-6)


def test_memory_probe_takes_a_size_the_hourglass_accepts():
    est = estimate_step(create_model("hg8", num_stacks=1), (256, 192), 2, train=True)
    assert est.probe_hw == (256, 192)  # 128x96 would not pool 4 times exactly
    assert estimate_step(create_model("hg8", num_stacks=1), (512, 512), 2, train=True).probe_hw == (128, 128)
    assert estimate_step(create_model("lite18"), (256, 192), 2, train=True).probe_hw == (128, 96)


def test_recipe_is_mmpose_hourglass():
    from hrbench.engine.recipes import get_recipe

    r = get_recipe("hg8", "coco", (256, 192))
    assert (r.optimizer, r.lr, r.epochs, r.lr_steps, r.warmup_iters, r.batch_per_gpu, r.gpus) == \
        ("adam", 5e-4, 210, (170, 200), 500, 32, 8)


def test_two_epoch_training_and_flip_evaluation(synth, tmp_path):
    from hrbench.engine import evaluate_checkpoint, read_metrics, train

    s = train("hg8", synth, epochs=2, batch=4, input_hw=(64, 64), out=tmp_path, name="hg", device="cpu", workers=0,
              overrides={"num_stacks": 2}, progress=False, log_interval=1)
    assert s["status"] == "finished" and s["epochs_done"] == 2 and s["iterations"] >= 2
    losses = [e["loss"] for e in read_metrics(tmp_path / "hg") if e["event"] == "train"]
    assert all(math.isfinite(v) for v in losses) and len(losses) == s["iterations"]
    assert math.isfinite(s["final"]["val_loss"]) and 0 <= s["final"]["AP"] <= 1
    cfg = json.loads((tmp_path / "hg" / "config.json").read_text())
    assert cfg["overrides"] == {"num_stacks": 2}
    ckpt = tmp_path / "hg" / "checkpoints" / "last.pt"
    flipped = evaluate_checkpoint("hg8", ckpt, synth, device="cpu", workers=0, flip=True)
    assert flipped["flip"] is True and 0 <= flipped["AP"] <= 1
