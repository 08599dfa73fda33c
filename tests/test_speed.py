"""Speed switches (hrbench.speed): BatchNorm folding, channels-last, tracing, bf16 autocast, and the
accelerator-side top-down pipeline checked on CPU against the OpenCV/numpy pipeline."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from torch import nn

import hrbench
from hrbench.errors import HrbenchError
from hrbench.models.context import GlobalContextModeling
from hrbench.models.dynamic import ConvNorm, DynamicKernelAggregation, KernelAggregation
from hrbench.speed import conv_bn_pairs, count_batchnorms, fold_batchnorm, prepare_for_inference

FOLD_MODELS = ("lite18", "dite18", "naive18", "small_hrnet_w16")
X_HW = (64, 64)  # a multiple of 32: every branch of the four-branch networks halves exactly


def randomized(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BatchNorm statistics/affines and fan-in-scaled kernels (so every fold matters),
    then the head rescaled so that the heatmaps' largest magnitude on the test input is 1."""
    g = torch.Generator().manual_seed(seed)

    def u(t: torch.Tensor, lo: float, hi: float) -> None:
        t.copy_(torch.rand(t.shape, generator=g) * (hi - lo) + lo)

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                u(m.running_mean, -0.5, 0.5)
                u(m.running_var, 0.5, 2.0)
                u(m.weight, 0.5, 1.5)
                u(m.bias, -0.3, 0.3)
            elif isinstance(m, (nn.Conv2d, KernelAggregation)):  # DKA: N candidate kernels (N, C_out, C_in/G, k, k)
                fan_in = m.weight[0].numel() if isinstance(m, nn.Conv2d) else m.weight[0, 0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) / fan_in ** 0.5)
                if m.bias is not None:
                    u(m.bias, -0.1, 0.1)
        model.eval()
        y = model(sample_input())
        model.head.final_layer.weight /= y.abs().max()
        model.head.final_layer.bias /= y.abs().max()
    return model


def sample_input(batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, 3, *X_HW, generator=torch.Generator().manual_seed(1))


@functools.cache
def _model(name: str) -> nn.Module:
    return randomized(hrbench.create_model(name))


def model(name: str) -> nn.Module:
    import copy

    return copy.deepcopy(_model(name))


# ----------------------------------------------------------------------------------- folding
@pytest.mark.parametrize("name", FOLD_MODELS)
def test_folded_equals_plain(name):
    m = model(name)
    x = sample_input()
    with torch.no_grad():
        ref = m(x)
        folded = fold_batchnorm(m)
        out = folded(x)
    assert ref.abs().max().item() == pytest.approx(1.0, rel=1e-5)
    assert (out - ref).abs().max().item() <= 1e-4
    assert count_batchnorms(m) > 0  # the default folds a copy
    assert not list(conv_bn_pairs(folded))
    if name == "dite18":
        # only the BNs that follow dynamic kernel aggregation and GCM's BN are left
        dka = sum(isinstance(mm, ConvNorm) and isinstance(mm.conv, DynamicKernelAggregation)
                  for mm in folded.modules())
        gcm = sum(isinstance(mm, GlobalContextModeling) for mm in folded.modules())
        assert dka > 0 and gcm > 0
        assert count_batchnorms(folded) == dka + gcm
    else:
        assert count_batchnorms(folded) == 0


def test_fold_keeps_classes_and_is_idempotent():
    m = model("lite18")
    classes = [type(mm) for mm in m.modules() if not isinstance(mm, (nn.BatchNorm2d, nn.Identity))]
    once = fold_batchnorm(m)
    assert [type(mm) for mm in once.modules() if not isinstance(mm, (nn.BatchNorm2d, nn.Identity))] == classes
    state = {k: v.clone() for k, v in once.state_dict().items()}
    twice = fold_batchnorm(once, inplace=True)
    assert twice is once
    assert state.keys() == twice.state_dict().keys()
    assert all(torch.equal(state[k], v) for k, v in twice.state_dict().items())


def test_fold_refuses_train_mode():
    m = hrbench.create_model("lite18")
    with pytest.raises(HrbenchError, match="eval-mode"):
        fold_batchnorm(m)
    m.eval()
    m.backbone.stem.train()  # one submodule in training mode is enough to refuse
    with pytest.raises(HrbenchError, match="stem"):
        fold_batchnorm(m)


@pytest.mark.parametrize("groups,bias", [(1, False), (4, True), (8, False)])
def test_fold_single_conv(groups, bias):
    g = torch.Generator().manual_seed(groups)
    seq = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=groups, bias=bias), nn.BatchNorm2d(8), nn.ReLU())
    bn = seq[1]
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(8, generator=g))
        bn.running_var.copy_(torch.rand(8, generator=g) + 0.1)
        bn.weight.copy_(torch.randn(8, generator=g))
        bn.bias.copy_(torch.randn(8, generator=g))
    seq.eval()
    x = torch.randn(2, 8, 5, 5, generator=g)
    with torch.no_grad():
        ref = seq(x)
        fold_batchnorm(seq, inplace=True)
        out = seq(x)
    assert isinstance(seq[1], nn.Identity) and seq[0].bias is not None
    assert (out - ref).abs().max().item() <= 1e-5


# ------------------------------------------------------------------------ memory format, trace, bf16
@pytest.mark.parametrize("name", ("lite18", "dite18"))
def test_channels_last_and_fused_equal_plain(name):
    m = model(name)
    x = sample_input()
    xcl = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        ref = m(x)
        cl = prepare_for_inference(m, fold_bn=False)(xcl)
        fused = prepare_for_inference(m)(xcl)
    assert (cl - ref).abs().max().item() <= 1e-4
    assert (fused - ref).abs().max().item() <= 1e-4


def test_traced_equals_plain():
    # a two-stage Lite-HRNet keeps the traced graph short (tracing + freezing costs ~30 ms per layer)
    m = randomized(hrbench.create_model("lite18", num_modules=(1, 1), num_blocks=(1, 1), num_branches=(2, 3),
                                        module_type=("LITE", "LITE"), with_fuse=(True, True), reduce_ratios=(8, 8),
                                        num_channels=((40, 80), (40, 80, 160))))
    x = sample_input()
    traced = prepare_for_inference(m, trace_input=x)
    with torch.no_grad():
        assert (traced(x.contiguous(memory_format=torch.channels_last)) - m(x)).abs().max().item() <= 1e-4


#: bf16 keeps 8 significant bits (relative rounding 2^-9 per op). With heatmaps of max magnitude 1 the
#: fused model under bf16 autocast stays within 0.15 (max) and 0.02 (mean) absolute of fp32. Measured on
#: four random weight draws: Lite-HRNet-18 0.014-0.024 max / <= 0.004 mean; Dite-HRNet-18 0.019-0.086 max
#: / <= 0.011 mean (its GCM/DCM softmax masks and DKA attentions amplify bf16 rounding of their logits).
BF16_MAX, BF16_MEAN = 0.15, 0.02


@pytest.mark.parametrize("name", ("lite18", "dite18"))
def test_bf16_autocast_close_to_fp32(name):
    m = model(name)
    x = sample_input()
    with torch.no_grad():
        ref = m(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = prepare_for_inference(m)(x.contiguous(memory_format=torch.channels_last))
    diff = (out.float() - ref).abs()
    assert 0 < diff.max().item() <= BF16_MAX
    assert diff.mean().item() <= BF16_MEAN


# ------------------------------------------------------------------ device-side top-down pipeline (on CPU)
def _grey_levels(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """|a - b| of two ImageNet-normalised crops, in grey levels (0..255 units)."""
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return (a - b).abs() * 255 * std


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory):
    from hrbench.data.synth import generate

    root = tmp_path_factory.mktemp("speed") / "coco"
    generate("coco", root, n_train=6, n_val=1, seed=3)
    return root


@pytest.fixture(scope="module")
def coco_train(coco_root):
    from hrbench.data import build_dataset

    return build_dataset("coco", coco_root, "train", (128, 96), train=True)


@pytest.mark.parametrize("codec_name", ["msra_heatmap", "udp"])
def test_device_pipeline_matches_cpu_pipeline(coco_train, codec_name):
    """The device-side warp + targets equal the CPU pipeline for each codec (UDP: its own crop affine)."""
    import copy

    from hrbench.codecs import build_codec
    from hrbench.data import collate
    from hrbench.data.raw import RawTopDownDataset
    from hrbench.speed.gpu_pipeline import DeviceTopDown

    codec = build_codec(codec_name)
    coco_train = copy.copy(coco_train)
    coco_train.codec = codec
    raw_ds = RawTopDownDataset(coco_train)
    n = min(len(coco_train), 8)
    cpu, raw = [], []
    for i in range(n):
        coco_train.reseed(1000 + i)
        cpu.append(coco_train[i])
        raw_ds.reseed(1000 + i)
        raw.append(raw_ds[i])
    ref = collate(cpu)
    out = DeviceTopDown(coco_train.input_hw, codec=codec)(raw_ds.collate(raw))
    assert out["image"].shape == ref["image"].shape
    assert _grey_levels(out["image"], ref["image"]).max().item() <= 1.0 + 1e-3
    assert (out["target"] - ref["target"]).abs().max().item() <= 1e-5
    assert torch.equal(out["target_weight"], ref["target_weight"])
    peak = ref["target"].amax().item()  # some joints are really drawn (UDP: centred off the pixel grid)
    assert peak == pytest.approx(1.0) if codec_name == "msra_heatmap" else 0.9 < peak < 1.0
    for key in ("center", "scale", "rotation", "flipped"):
        np.testing.assert_array_equal(out["meta"][key], ref["meta"][key])
    from hrbench.data.transforms import crop_matrix

    plain = [r for r in raw if not r["meta"]["flipped"]]
    assert plain  # the codec's crop affine is the one the samples were cut with
    for r in plain:
        m = r["meta"]
        np.testing.assert_allclose(r["matrix"], crop_matrix(codec.affine, m["center"], m["scale"], m["rotation"],
                                                            (coco_train.input_hw[1], coco_train.input_hw[0])))


def test_heatmap_targets_batched_equal_numpy():
    from hrbench.data.targets import gaussian_targets
    from hrbench.speed.gpu_pipeline import heatmap_targets

    rng = np.random.default_rng(5)
    joints = rng.uniform(-40, 300, (4, 17, 2)).astype(np.float32)  # some far outside the 256x192 crop
    vis = (rng.random((4, 17)) > 0.2).astype(np.float32)
    tgt, wt = heatmap_targets(torch.from_numpy(joints), torch.from_numpy(vis), (256, 192))
    for b in range(4):
        t, w = gaussian_targets(joints[b], vis[b], (256, 192))
        assert (tgt[b] - torch.from_numpy(t)).abs().max().item() <= 1e-5
        assert torch.equal(wt[b], torch.from_numpy(w))
    assert 0 < wt.sum() < wt.numel()


def test_bench_data_cli(coco_root, capsys):
    import json

    from hrbench.cli import main

    assert main(["bench-data", str(coco_root), "--input", "128x96", "--workers", "0", "--batch", "4",
                 "--batches", "1", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [(r["pipeline"], r["workers"]) for r in d["rows"]] == [("cpu", 0), ("tensor", 0)]
    assert all(r["samples"] == 4 and r["samples_per_s"] > 0 and r["per_worker"] == r["samples_per_s"]
               for r in d["rows"])
    assert d["device_step_samples_per_s"] > 0 and d["input"] == "128x96"
    assert main(["bench-data", str(coco_root / "missing")]) == 2
    assert main(["bench-data", str(coco_root), "--workers", "1,x"]) == 2
    assert main(["bench-data", str(coco_root), "--pipelines", "gpu"]) == 2
    err = capsys.readouterr().err
    assert "dataset root not found" in err and "--workers" in err and "unknown pipeline" in err


def test_cuda_graph_needs_cuda():
    from hrbench.speed import CudaGraphForward

    if torch.cuda.is_available():
        pytest.skip("CUDA present: the refusal path is CPU-only")
    with pytest.raises(HrbenchError, match="CUDA"):
        CudaGraphForward(nn.Conv2d(3, 3, 1).eval(), torch.zeros(1, 3, 4, 4))


def test_latency_bench_speed_modes():
    from hrbench.bench.latency import benchmark_model

    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8), nn.Conv2d(8, 4, 1))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(8, generator=g))
                m.running_var.copy_(torch.rand(8, generator=g) + 0.5)
    r = benchmark_model(net.eval(), (32, 24), modes=("eager", "fused", "traced", "cudagraph"), iters=2, warmup=1)
    rows = {row.mode: row for row in r.rows}
    for mode in ("fused", "traced"):
        assert rows[mode].error is None, rows[mode].error
        assert rows[mode].ok and 0 < rows[mode].max_rel_diff <= 1e-4 and rows[mode].ratio > 0
    if not torch.cuda.is_available():
        assert "needs --device cuda" in rows["cudagraph"].error
    assert isinstance(net[1], nn.BatchNorm2d)  # the benchmark folded copies, not the model
