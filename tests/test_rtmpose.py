"""RTMPose-t / s / m (CSPNeXt + RTMCC head + SimCC): parameter counts derived here from the official layer
tables, FLOPs under mmcv's counter (the published convention), output shapes, every counting engine,
the input-size refusal, and training + evaluation end to end on synthetic COCO."""

from __future__ import annotations

import json
import time

import pytest
import torch

from hrbench.cli import main
from hrbench.complexity.measure import measure
from hrbench.data.synth import generate
from hrbench.engine import evaluate_checkpoint, train
from hrbench.factory import create_model
from hrbench.registry import get_entry

K = 17
#: (deepen, widen) of the configs; P5 stage table (c_in, c_out, blocks, SPP) of CSPNeXt
VARIANTS = {"t": (0.167, 0.375), "s": (0.33, 0.5), "m": (0.67, 0.75)}
P5 = ((64, 128, 3, False), (128, 256, 6, False), (256, 512, 6, False), (512, 1024, 3, True))
#: The end-to-end run (test_rtmpose_t_learns_on_synthetic_coco's docstring).
LEARN = {"train_images": 2000, "val_images": 32, "epochs": 8, "lr": 1e-3, "warmup_iters": 50}
PUBLISHED = {"t": (3.34, 0.36), "s": (5.47, 0.68), "m": (13.59, 1.93)}


def conv_bn(c_in: int, c_out: int, k: int, groups: int = 1) -> int:
    return k * k * c_in // groups * c_out + 2 * c_out


def hand_params(deepen: float, widen: float, k: int = K, hw: tuple[int, int] = (256, 192)) -> int:
    """CSPNeXt P5 + RTMCC head, counted from the layer list (module docstrings of cspnext / rtmcc)."""
    half, first = int(64 * widen // 2), int(64 * widen)
    n = conv_bn(3, half, 3) + conv_bn(half, half, 3) + conv_bn(half, first, 3)
    for c_in, c_out, blocks, spp in P5:
        c_in, c_out = int(c_in * widen), int(c_out * widen)
        mid = c_out // 2
        n += conv_bn(c_in, c_out, 3)
        if spp:
            n += conv_bn(c_out, c_out // 2, 1) + conv_bn(4 * (c_out // 2), c_out, 1)
        n += 2 * conv_bn(c_out, mid, 1) + conv_bn(2 * mid, c_out, 1) + (c_out * c_out + c_out)  # + attention
        n += max(round(blocks * deepen), 1) * (conv_bn(mid, mid, 3) + conv_bn(mid, mid, 5, mid) + conv_bn(mid, mid, 1))
    c = int(1024 * widen)
    tokens = (hw[0] // 32) * (hw[1] // 32)
    head = c * k * 49 + k  # 7x7 conv with bias
    head += 1 + tokens * 256  # ScaleNorm g + linear
    head += 256 * (2 * 512 + 128) + 512 * 256 + 2 * 2 * 128 + 1 + 256  # GAU: uv, o, gamma, beta, ScaleNorm, Scale
    head += 256 * 2 * hw[1] + 256 * 2 * hw[0]  # cls_x, cls_y
    return n + head


@pytest.mark.parametrize("v", sorted(VARIANTS))
def test_params_equal_the_layer_table_and_the_published_count(v):
    model = create_model(f"rtmpose_{v}", K)
    params = sum(p.numel() for p in model.parameters())
    assert params == hand_params(*VARIANTS[v])
    assert round(params / 1e6, 2) == PUBLISHED[v][0]
    assert params == {"t": 3_337_007, "s": 5_473_251, "m": 13_587_611}[v]


@pytest.mark.parametrize("v", sorted(VARIANTS))
def test_mmcv_flops_give_the_published_gflops(v):
    """mmcv's counter (the card's convention) and fvcore (mmengine's jit counter) both round to the
    published GFLOPs; the analytic walk equals the hooks; the GAU's two matrix products (17^2 x (128 + 512)
    MACs) are in the true MACs, outside the mmcv count (the explain row), in fvcore's matmul handle."""
    r = measure(f"rtmpose_{v}", (256, 192), K, engines=("paper", "analytic", "fvcore", "macs"), explain=True)
    assert r.counts["paper"] == r.counts["analytic"]
    assert r.counts["paper"] == {"t": 358_640_384, "s": 682_034_928, "m": 1_928_529_104}[v]
    assert round(r.counts["paper"] / 1e9, 2) == PUBLISHED[v][1]
    assert round(r.counts["fvcore"] / 1e9, 2) == PUBLISHED[v][1]
    rows = {row["term"]: row["raw"] for row in r.explain["paper"]["rows"]}
    assert rows["outside"] == -K * K * (128 + 512)
    assert r.counts["macs"] - r.counts["paper"] == -rows["norm"] - rows["pooling"] - rows["bias"] + K * K * 640


def test_flops_prints_the_readme_figures_beside_the_count(capsys):
    """``hrbench flops rtmpose_t`` shows the README's 3.34M / 0.36 GFLOPs (reported.csv source
    rtmpose-readme), converted from decimal G to the paper column's binary M: 0.36e9 / 2^20 = 343.32."""
    assert main(["flops", "rtmpose_t", "--input", "256x192", "--json"]) == 0
    pub = json.loads(capsys.readouterr().out)["published"]
    assert (pub["source"], pub["params_M"], pub["gflops"]) == ("rtmpose-readme", 3.34, 0.36)
    assert pub["mflops"] == pytest.approx(0.36e9 / 2**20)
    assert pub["delta_params_M"] == pytest.approx(round(3.337007 - 3.34, 4))
    assert pub["delta_mflops"] == pytest.approx(358_640_384 / 2**20 - 0.36e9 / 2**20, abs=1e-4)


def test_every_engine_counts_rtmpose_t():
    r = measure("rtmpose_t", (256, 192), K)
    assert not r.errors
    for engine, raw in r.counts.items():
        assert raw is not None and raw > 0.9 * r.counts["macs"], engine


def test_output_shapes_and_input_size_option():
    x = torch.randn(2, 3, 256, 192)
    m = create_model("rtmpose_t", K).eval()
    with torch.no_grad():
        px, py = m(x)
    assert px.shape == (2, K, 384) and py.shape == (2, K, 512)
    small = create_model("rtmpose_t", K, input_size=(128, 96)).eval()
    with torch.no_grad():
        px, py = small(torch.randn(1, 3, 128, 96))
    assert px.shape == (1, K, 192) and py.shape == (1, K, 256)
    assert m.codec.name == "simcc" and m.codec.affine == "msra"
    e = get_entry("rtmpose_m")
    assert e.recipe("coco", (256, 192)).weight_decay == 0.05 and get_entry("rtmpose_t").recipe("coco", (256, 192)) \
        .weight_decay == 0.0  # the configs: AdamW weight decay 0.05 for m, 0 for t and s


def test_an_input_the_head_was_not_built_for_is_one_error_line(capsys):
    assert main(["flops", "rtmpose_t", "--input", "128x96"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hrbench: error:") and "--set input_size=128,96" in err[0]


@pytest.mark.slow
def test_rtmpose_t_learns_on_synthetic_coco(tmp_path):
    """``train`` then ``evaluate_checkpoint`` of RTMPose-t at 128x96 (a 4x3 feature map, 192 / 256 bins) on
    synthetic COCO, to Lite-HRNet-18's bar of tests/test_train_e2e.py: +20 AP.

    In Lite-HRNet-18's budget of iterations (256 of batch 16 on 300 images) RTMPose-t stays below 1 AP
    (measured: 0.3-1.2 at lr 1e-4 ... 4e-3, with either augmentation): its global x / y classifiers memorise
    so few crops (after 256 un-augmented steps: 8.9 px mean error on training crops, 14.8 px on validation
    ones, ~16 px for a constant guess). With more people and iterations it learns: 2,000 images (3,925
    people), 8 epochs = 1,720 iterations of batch 16 at lr 1e-3, measured AP 0 -> 33.5 (AP50 78.5; 6 epochs /
    1,290 iterations: 24.75; 1,500 images / 1,280 iterations: 21.65; 3,000 / 1,304 at lr 1.5e-3: 4.3). One
    RTMPose-t step at 128x96 costs about 0.35 of a Lite-HRNet-18 step, so the run takes about 1.3x the time
    of Lite-HRNet-18's 256 steps. The recipe is RTMPose-t's (AdamW, flat-cosine, clip) but
    for the papers' augmentation (``msra``: the two-stage RTMPose set is for 420 epochs) and a 50-iteration
    warm-up (the config's 1,000 would outlast the run)."""
    t0 = time.perf_counter()
    generate("coco", tmp_path / "coco", LEARN["train_images"], LEARN["val_images"], seed=0)
    t_data = time.perf_counter() - t0
    summary = train("rtmpose_t", tmp_path / "coco", epochs=LEARN["epochs"], batch=16, input_hw=(128, 96),
                    overrides={"input_size": (128, 96)}, out=tmp_path / "runs", name="rtm", device="cpu", workers=0,
                    lr=LEARN["lr"], train_overrides={"augment": "msra", "warmup_iters": LEARN["warmup_iters"]},
                    val_interval=LEARN["epochs"], val_flip=True, validate_first=True, progress=False, threads=1)
    before, after = summary["initial"], summary["final"]
    print(f"\nrtmpose_t synthetic COCO 128x96, {summary['iterations']} iterations: val loss "
          f"{before['val_loss']:.3e} -> {after['val_loss']:.3e}, AP {before['AP']:.1f} -> {after['AP']:.1f} "
          f"(AP50 {before['AP50']:.1f} -> {after['AP50']:.1f}); data {t_data:.0f}s, "
          f"total {time.perf_counter() - t0:.0f}s")
    assert summary["status"] == "finished" and summary["optimizer"] == "adamw" and summary["schedule"] == "flat-cosine"
    assert after["AP"] >= before["AP"] + 20.0 and after["val_loss"] <= 0.7 * before["val_loss"]
    run = summary["run_dir"]
    m = evaluate_checkpoint("rtmpose_t", f"{run}/checkpoints/best.pt", tmp_path / "coco", device="cpu", workers=0)
    assert m["AP"] == pytest.approx(summary["best"]["AP"], abs=1e-6)
    assert (m["input"], m["flip"]) == ("128x96", True)
