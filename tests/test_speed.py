"""Speed switches (hrbench.speed): BatchNorm folding, channels-last, tracing, bf16 autocast, and the
accelerator-side top-down pipeline checked on CPU against the OpenCV/numpy pipeline."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
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


# ------------------------------------------------------------- ONNX export forms (issue 23, hrbench.speed.onnx*)
def _count(model, cls) -> int:
    return sum(isinstance(m, cls) for m in model.modules())


@pytest.mark.parametrize("name", ("lite18", "dite18"))
@pytest.mark.parametrize("batch", (1, 2))
def test_export_forms_equal_the_module(name, batch):
    from hrbench.models.context import DenseContextModeling, GlobalContextModeling
    from hrbench.models.dynamic import KernelAttention
    from hrbench.models.hr_modules import MultiResolutionFusion
    from hrbench.models.litehrnet import CrossResolutionWeighting, SpatialWeighting
    from hrbench.speed.onnx import PARITY_TOL, prepare_export_model

    m = model(name)
    x = sample_input(batch)
    formed, counts = prepare_export_model(m, batch)
    with torch.no_grad():
        ref, out = m(x), formed(x)
    # the forms sum in other orders (mask products, padded hidden units, the fusion's identity last): fp32
    # rounding, ~1e-5 here, inside the export's parity bar; a wrong channel order would be O(1)
    assert ref.abs().max().item() > 0.5 and (out - ref).abs().max().item() <= PARITY_TOL
    fusions = sum(type(f) is MultiResolutionFusion and len(f) > 1 for f in m.modules())
    assert counts["doubled_fusion"] == fusions == 8  # 2 + 4 + 2 modules, every one with >= 2 outputs
    assert counts["chained_upsample"] == 6  # stages 3 and 4 (4 + 2 modules): an output fed by >= 2 upsamplings
    assert counts["branch_shift"] == _count(m, CrossResolutionWeighting) + _count(m, DenseContextModeling) == 16
    called_masks = _count(m, GlobalContextModeling) + sum(len(d.conv_mask) - 1 for d in m.modules()
                                                         if isinstance(d, DenseContextModeling))
    assert counts["mask_projection"] == called_masks == (82 if name == "dite18" else 0)
    if name == "lite18":
        assert counts["pooled_linear"] == _count(m, SpatialWeighting) == 48 and counts["dka_bn"] == 0
    else:
        dka = _count(m, KernelAggregation)
        assert counts["dka_bn"] == counts["static_dka"] == dka == 62
        assert counts["pooled_linear"] == dka + _count(m, GlobalContextModeling) == _count(m, KernelAttention) + 50
        assert counts["kept_bn"] == _count(m, GlobalContextModeling)  # GCM's BN after the context product stays


def test_chained_upsampling_is_the_sum_of_the_direct_paths():
    """Four branches (8 / 16 / 32 / 64 ch at 32x24 ... 4x3): output i's upsampled paths summed low resolution
    first equal ``Σ_j up_{2^(j-i)}(conv_ij x_j)`` computed directly, in float64 to 1e-12 (only the order of
    the additions differs); the doubled path and the downsampling paths are untouched."""
    from hrbench.models.hr_modules import MultiResolutionFusion
    from hrbench.speed.fuse import fold_batchnorm
    from hrbench.speed.onnx_modules import ChainedUpsampleFusion, DoubledPathFusion

    g = torch.Generator().manual_seed(0)
    fusion = MultiResolutionFusion([8, 16, 32, 64]).double().eval()
    with torch.no_grad():
        for m in fusion.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
    holder = fold_batchnorm(nn.Sequential(fusion).eval(), inplace=True)
    xs = [torch.randn(1, c, 32 // 2 ** k, 24 // 2 ** k, generator=g, dtype=torch.float64)
          for k, c in enumerate((8, 16, 32, 64))]
    relu = nn.ReLU()
    with torch.no_grad():
        ref = MultiResolutionFusion.forward(holder[0], xs, relu)
        doubled = DoubledPathFusion.from_fusion(holder[0])
        chained = ChainedUpsampleFusion.from_fusion(doubled)
        out = chained(xs, relu)
        direct = [sum(F.interpolate(chained[i][j][0](xs[j]), scale_factor=2.0 ** (j - i)) for j in range(i + 1, 4))
                  for i in range(3)]
        assert all(torch.allclose(chained._upsampled_sum(i, xs), direct[i], atol=1e-12) for i in range(3))
    assert chained._upsampled_sum(3, xs) is None
    assert all(torch.allclose(a, b, atol=1e-12) for a, b in zip(out, ref, strict=True))


@pytest.mark.parametrize(("kind", "hw"), (("crw", (16, 12)), ("dcm", (16, 12)), ("crw", (15, 11))))
def test_branch_shift_weighting_equals_the_module(kind, hw):
    """CRW / DCM on three branches (8 / 16 / 32 ch) in float64, BatchNorms randomised and folded: the per-branch
    form (hidden width padded to 16, one output conv per branch, constant-factor upsampling; at 15x11 the
    sizes do not divide and it upsamples to the size; DCM's context pool needs them to) equals the module to 1e-12."""
    from hrbench.models.context import DenseContextModeling
    from hrbench.models.litehrnet import CrossResolutionWeighting
    from hrbench.speed.onnx_modules import CHANNEL_BLOCK, BranchShiftWeighting, substitute_branch_shift

    g = torch.Generator().manual_seed(4)
    module = CrossResolutionWeighting((8, 16, 32), 8) if kind == "crw" else DenseContextModeling([8, 16, 32], 8)
    module = module.double().eval()
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
            elif isinstance(m, nn.Conv2d):
                m.weight.normal_(generator=g)
    holder = fold_batchnorm(nn.Sequential(module).eval(), inplace=True)
    assert substitute_branch_shift(holder) == 1
    form = holder[0]
    assert isinstance(form, BranchShiftWeighting) and form.hidden.out_channels % CHANNEL_BLOCK == 0
    assert form.hidden.out_channels > 56 // 8 and [c.out_channels for c in form.outs] == [8, 16, 32]
    sizes = [hw, ((hw[0] + 1) // 2, (hw[1] + 1) // 2), ((hw[0] + 3) // 4, (hw[1] + 3) // 4)]
    xs = [torch.randn(1, c, *s, generator=g, dtype=torch.float64) for c, s in zip((8, 16, 32), sizes, strict=True)]
    with torch.no_grad():
        ref, out = form.source(xs), form(xs)
    assert all(torch.allclose(a, b, rtol=0, atol=1e-12) for a, b in zip(out, ref, strict=True))
    assert ref[0].std().item() > 0.1  # the weights vary: a constant map would hide a wrong upsampling


def test_mask_projection_is_the_one_channel_convolution():
    """ACPool's C -> 1 mask convolution as a matrix product: the conv's output to 1e-12 (float64, batch 2); any
    other convolution is refused."""
    from hrbench.speed.onnx_modules import MaskProjection

    g = torch.Generator().manual_seed(5)
    conv = nn.Conv2d(24, 1, 1).double()
    x = torch.randn(2, 24, 9, 7, generator=g, dtype=torch.float64)
    with torch.no_grad():
        conv.bias.fill_(0.75)
        ref, out = conv(x), MaskProjection(conv)(x)
    assert out.shape == ref.shape == (2, 1, 9, 7) and torch.allclose(out, ref, rtol=0, atol=1e-12)
    for bad in (nn.Conv2d(24, 2, 1), nn.Conv2d(24, 1, 3, padding=1)):
        with pytest.raises(ValueError, match="MaskProjection"):
            MaskProjection(bad)


@pytest.mark.parametrize("bias", (False, True))
def test_dka_batchnorm_folded_into_the_kernels(bias):
    from hrbench.speed.onnx import StaticKernelAggregation

    g = torch.Generator().manual_seed(3)
    agg = KernelAggregation(8, 8, 3, padding=1, groups=8, bias=bias, num_kernels=4)
    bn = nn.BatchNorm2d(8).eval()
    with torch.no_grad():
        for t, lo, hi in ((bn.running_mean, -1, 1), (bn.running_var, 0.2, 2), (bn.weight, -1.5, 1.5), (bn.bias, -1, 1)):
            t.copy_(torch.rand(8, generator=g) * (hi - lo) + lo)
        if bias:
            agg.bias.copy_(torch.randn(4, 8, generator=g))
    for batch in (1, 2):
        x, att = torch.randn(batch, 8, 9, 7, generator=g), torch.rand(batch, 4, generator=g)
        with torch.no_grad():
            ref = bn(agg(x, att))
            for plain in (True, False):  # batch 1: the plain convolution, or the batch-folded one
                out = StaticKernelAggregation(agg, batch, bn, plain_at_batch1=plain)(x, att)
                assert (out - ref).abs().max().item() <= 1e-5 * ref.abs().max().item()


def test_doubled_path_fusion_is_bit_identical():
    from hrbench.models.hr_modules import MultiResolutionFusion
    from hrbench.speed.onnx_modules import DoubledPathFusion

    m = fold_batchnorm(model("lite18"))
    fusion = m.backbone.stage2[0].fuse_layers
    assert type(fusion) is MultiResolutionFusion and len(fusion) == 4
    relu = nn.ReLU()
    g = torch.Generator().manual_seed(2)
    xs = [torch.randn(2, c, 16 // 2 ** i, 16 // 2 ** i, generator=g) for i, c in enumerate((40, 80, 160, 320))]
    with torch.no_grad():
        ref = fusion(xs, relu)
        import copy

        out = DoubledPathFusion.from_fusion(copy.deepcopy(fusion))(xs, relu)
    assert all(torch.equal(a, b) for a, b in zip(ref, out, strict=True))  # a factor 2 is exact


#: Node counts by op type of the exports at 64x64, batch 1: stock (the exporter's graph) -> with the forms.
#: Derived: each SpatialWeighting (48 in Lite-18) / KernelAttention (62) / GCM shift (50) turns 2 Conv into 2 Gemm
#: and its GlobalAveragePool into a ReduceMean; each DKA's BN (62) is folded; each of the 8 fusions' 2-4 outputs
#: loses one Add (16); each CRW / DCM (16) loses the Resize of its lowest branch to its own size and the Split of
#: its weights, its output conv split per branch (2, 3 or 4 branches: 4x1 + 8x2 + 4x3 = 32 Conv more); every
#: channel shuffle (Lite 49, Dite 65) loses its Transpose (Dite keeps the 32 context-pool permutes of GCM / DCM);
#: Dite's 82 called mask convolutions (50 GCM, 32 DCM) become MatMul + bias Add.
NODE_COUNTS = {
    "lite18": ({"Conv": 301, "Gemm": 0, "MatMul": 0, "BatchNormalization": 0, "Add": 128, "Resize": 77,
                "Transpose": 49, "Split": 16, "GlobalAveragePool": 48, "ReduceMean": 0},
               {"Conv": 237, "Gemm": 96, "MatMul": 0, "BatchNormalization": 0, "Add": 112, "Resize": 61,
                "Transpose": 0, "Split": 0, "GlobalAveragePool": 0, "ReduceMean": 48}),
    "dite18": ({"Conv": 536, "Gemm": 0, "MatMul": 144, "BatchNormalization": 112, "Add": 128, "Resize": 77,
                "Transpose": 147, "Split": 32, "GlobalAveragePool": 62, "ReduceMean": 0},
               {"Conv": 262, "Gemm": 224, "MatMul": 226, "BatchNormalization": 50, "Add": 194, "Resize": 61,
                "Transpose": 32, "Split": 16, "GlobalAveragePool": 0, "ReduceMean": 62}),
}


@pytest.mark.parametrize("name", ("lite18", "dite18"))
def test_export_forms_node_counts_and_onnx_runtime_outputs(name):
    import collections

    import onnx

    from hrbench.speed.onnx import onnx_bytes, ort_session
    from hrbench.speed.onnx_forms import apply_forms

    m = model(name)
    x = sample_input(1)
    stock, c0 = onnx_bytes(m, x, forms=False)
    formed, c1 = onnx_bytes(m, x)
    for data, expected in zip((stock, formed), NODE_COUNTS[name], strict=True):
        ops = collections.Counter(n.op_type for n in onnx.load_from_string(data).graph.node)
        assert {op: ops[op] for op in expected} == expected
    shuffles = {"lite18": 49, "dite18": 65}[name]
    assert c0["forms"] == {} and c1["forms"]["interleave_shuffle"] == shuffles
    # Lite-18's only shape-only nodes were its CRWs' lowest-branch Resizes, which the per-branch form no longer
    # emits; Dite-18 keeps GCM / DCM reshape chains to fold.
    assert (c1["forms"]["fold_reshapes"] > 0) == (name == "dite18")
    feed = {"input": x.numpy()}
    with torch.no_grad():
        ref = m(x).numpy()
    a = ort_session(stock).run(["heatmaps"], feed)[0]
    b = ort_session(formed).run(["heatmaps"], feed)[0]
    assert np.abs(a - ref).max() <= 1e-5 and np.abs(b - ref).max() <= 1e-5
    folded, changed = apply_forms(stock, ("fold_reshapes",))  # shape-only nodes: bit for bit
    assert changed["fold_reshapes"] > 0 and np.array_equal(ort_session(folded).run(["heatmaps"], feed)[0], a)


def test_fold_reshapes_on_a_small_graph():
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from hrbench.speed.onnx_forms import fold_reshapes

    def const(name, values):
        return numpy_helper.from_array(np.array(values, dtype=np.int64), name)

    nodes = [
        helper.make_node("Reshape", ["x", "s1"], ["a"], name="r1"),  # (1,6,4,1) -> (1,24): kept (feeds a chain)
        helper.make_node("Reshape", ["a", "s2"], ["b"], name="r2"),  # -> (1,6,4): one Reshape of x
        helper.make_node("Unsqueeze", ["b", "ax"], ["c"], name="u"),  # -> (1,6,4,1) = x's shape: dropped
        helper.make_node("Relu", ["c"], ["d"], name="relu"),
        helper.make_node("Transpose", ["d"], ["e"], name="t", perm=[0, 1, 3, 2]),  # moves a size-1 axis only
        helper.make_node("Transpose", ["d"], ["f"], name="t2", perm=[0, 2, 1, 3]),  # moves data: kept
        helper.make_node("Resize", ["d", "", "sc"], ["g"], name="rs", mode="nearest"),  # scale 1: dropped
        helper.make_node("Add", ["g", "d"], ["h"], name="add"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 4, 1])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, shape)
         for o, shape in (("e", [1, 6, 1, 4]), ("f", [1, 4, 6, 1]), ("h", [1, 6, 4, 1]))],
        [const("s1", [1, 24]), const("s2", [1, 6, 4]), const("ax", [3]),
         numpy_helper.from_array(np.ones(4, dtype=np.float32), "sc")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = np.random.default_rng(0).standard_normal((1, 6, 4, 1)).astype(np.float32)
    import onnxruntime as ort

    def run(mp):
        return ort.InferenceSession(mp.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})

    ref = run(model)
    assert fold_reshapes(model) == 4  # r1, r2 (dead after the chain fold), u, rs gone; t became a Reshape
    onnx.checker.check_model(model)
    assert [(n.name, n.op_type) for n in model.graph.node] == [("relu", "Relu"), ("t", "Reshape"),
                                                                ("t2", "Transpose"), ("add", "Add")]
    assert model.graph.node[0].input[0] == "x" and list(model.graph.node[3].input) == ["d", "d"]
    assert all(np.array_equal(a, b) for a, b in zip(ref, run(model), strict=True))


def test_fold_reshapes_leaves_a_dynamic_batch_export():
    from hrbench.speed.onnx import onnx_bytes

    m = hrbench.create_model("small_hrnet_w16").eval()
    _, counts = onnx_bytes(m, torch.randn(2, 3, 64, 64), dynamic=True)
    assert counts["forms"]["fold_reshapes"] == 0  # shapes are not static: nothing is assumed
