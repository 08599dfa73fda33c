"""ONNX export (`hrbench export`, :mod:`hrbench.speed.onnx`): ONNX Runtime parity for every family,
dynamic kernels made static, dynamic batch, nothing written on failure, the bench `ort` mode.
(onnx / onnxruntime come with `make setup`, the `onnx` extra: a missing one fails here, not skips.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hrbench.checkpoint import hrbench_payload, save_checkpoint
from hrbench.cli import main
from hrbench.factory import create_model
from hrbench.models.dynamic import KernelAggregation, per_sample_reference
from hrbench.speed.onnx import ExportError, StaticKernelAggregation, export_onnx

HW = (64, 64)


def realistic_bn(model: torch.nn.Module, g: torch.Generator) -> torch.nn.Module:
    """Random BN statistics/affines (folding is then not an identity), drawn from ``g``."""
    model.eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
    return model


def realistic(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """:func:`realistic_bn` and a head rescaled so that the heatmaps peak near 1, like a trained model's:
    the 1e-4 bar is then measured at the real scale."""
    g = torch.Generator().manual_seed(seed)
    model = realistic_bn(model, g)
    with torch.no_grad():
        peak = model(torch.randn(2, 3, *HW, generator=g)).abs().max()
        model.head.final_layer.weight.div_(peak)
        model.head.final_layer.bias.div_(peak)
    return model


def ort_run(path, x: torch.Tensor) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]


@pytest.mark.parametrize("arch, batch", [("lite18", 1), ("naive18", 1), ("dite18", 2), ("small_hrnet_w16", 1),
                                         ("dpn4_32", 1), ("mobilenetv2_1x", 1), ("hg8", 1), ("dy_mobilenetv2_1x", 2)])
def test_every_family_exports_with_ort_parity(arch, batch, tmp_path):
    model = realistic(create_model(arch, num_keypoints=17))
    path = tmp_path / f"{arch}.onnx"
    report = export_onnx(model, path, HW, batch)
    assert report.max_abs_diff <= 1e-4 and report.output_max > 0.5
    assert report.folded_bn > 0
    if arch in ("dite18", "dy_mobilenetv2_1x"):  # every DKA / DyConv made static (the BN after it folded in)
        assert report.static_dka == sum(isinstance(m, KernelAggregation) for m in model.modules()) > 0
        assert report.kept_bn > 0 or arch != "dite18"  # Dite: GCM's BNs after the context product are kept
    # an independent check of the written file on a fresh input
    x = torch.randn(batch, 3, *HW, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        ref = model(x).numpy()
    assert np.abs(ort_run(path, x) - ref).max() <= 1e-4


def test_cpn_exports_with_ort_parity(tmp_path):
    """CPN (issue 21): the eval model's one output, RefineNet's heatmaps (GlobalNet's predictions are training
    only); BN statistics as in :func:`realistic`, the last BN's affine scaled so that the heatmaps peak near 1."""
    g = torch.Generator().manual_seed(0)
    model = realistic_bn(create_model("cpn_r50", num_keypoints=17), g)
    with torch.no_grad():
        last = model.head.refine_net.refine_out[1]
        peak = model(torch.randn(2, 3, *HW, generator=g)).abs().max()
        last.weight.div_(peak)
        last.bias.div_(peak)
    report = export_onnx(model, tmp_path / "cpn.onnx", HW, 1)
    assert report.max_abs_diff <= 1e-4 and report.output_max > 0.5 and report.folded_bn > 0
    x = torch.randn(1, 3, *HW, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        assert np.abs(ort_run(tmp_path / "cpn.onnx", x) - model(x).numpy()).max() <= 1e-4


def test_static_kernel_aggregation_is_the_per_sample_convolution():
    torch.manual_seed(0)
    agg = KernelAggregation(6, 6, 3, stride=2, padding=1, groups=3, bias=True, num_kernels=4)
    x, att = torch.randn(3, 6, 9, 7), torch.rand(3, 4)
    with torch.no_grad():
        assert torch.allclose(StaticKernelAggregation(agg, 3)(x, att), per_sample_reference(agg, x, att), atol=1e-5)


def test_dynamic_batch_runs_any_batch(tmp_path):
    model = realistic(create_model("small_hrnet_w16", num_keypoints=17))
    path = tmp_path / "dyn.onnx"
    report = export_onnx(model, path, HW, "dynamic")
    assert report.batch == "dynamic" and report.checked_batches == [2, 1, 3]
    for b in (1, 4):
        x = torch.randn(b, 3, *HW)
        with torch.no_grad():
            assert np.abs(ort_run(path, x) - model(x).numpy()).max() <= 1e-4


def test_refusals_write_nothing(tmp_path):
    dite = create_model("dite18", num_keypoints=17)
    with pytest.raises(ExportError, match="dynamic"):
        export_onnx(dite, tmp_path / "d.onnx", HW, "dynamic")
    small = create_model("small_hrnet_w16", num_keypoints=17)
    with pytest.raises(ExportError, match="differs"):
        export_onnx(small, tmp_path / "s.onnx", HW, 1, tol=-1.0)  # a check that cannot pass
    with pytest.raises(ExportError, match="does not run"):
        export_onnx(small, tmp_path / "s.onnx", (3, 3), 1)
    assert list(tmp_path.iterdir()) == []


def test_parity_is_measured_at_the_outputs_scale(tmp_path):
    """An untrained model's heatmaps are ~1e-12, where any absolute bar passes: the check divides by the
    outputs' scale, so a bar just under the achieved relative difference refuses (and writes nothing) although
    the absolute difference is far below it."""
    small = create_model("small_hrnet_w16", num_keypoints=17)
    report = export_onnx(small, tmp_path / "s.onnx", HW, 1)
    assert report.output_max < 1e-6 and 0 < report.max_rel_diff <= 1e-4
    assert report.to_dict()["max_rel_diff"] == pytest.approx(report.max_abs_diff / report.output_max)
    bar = report.max_rel_diff / 2
    assert report.max_abs_diff < bar
    with pytest.raises(ExportError, match="more than"):
        export_onnx(small, tmp_path / "t.onnx", HW, 1, tol=bar)
    assert [p.name for p in tmp_path.iterdir()] == ["s.onnx"]


def test_cli_export_and_errors(tmp_path, capsys):
    model = realistic(create_model("small_hrnet_w16", num_keypoints=17))
    ckpt = save_checkpoint(tmp_path / "small.pt", hrbench_payload(model))
    out = tmp_path / "small.onnx"
    assert main(["export", "small_hrnet_w16", "--checkpoint", str(ckpt), "--format", "onnx", "--input", "64x64",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "parity: max |ONNX Runtime - PyTorch|" in text and "time: export" in text
    x = torch.randn(1, 3, *HW)
    with torch.no_grad():
        assert np.abs(ort_run(out, x) - model(x).numpy()).max() <= 1e-4
    bad = [(["--format", "tflite"], "unknown --format"), (["--format", "onnx", "--batch", "0"], "invalid --batch"),
           (["--format", "onnx", "--exporter", "tf"], "unknown --exporter")]
    for extra, words in bad:
        assert main(["export", "small_hrnet_w16", "--out", str(tmp_path / "b.onnx"), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert words in err and len(err.splitlines()) == 1
    assert main(["export", "lite18", "--checkpoint", str(ckpt), "--format", "onnx", "--out",
                 str(tmp_path / "c.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert "is for architecture small_hrnet_w16, not litehrnet_18" in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.onnx", "small.pt"]


def test_bench_ort_mode_row():
    from hrbench.bench.latency import benchmark

    res = benchmark("small_hrnet_w16", HW, modes=("eager", "ort"), iters=2, warmup=1).to_dict()
    ort_row = res["rows"][1]
    assert ort_row["mode"] == "ort" and ort_row["error"] is None, ort_row["error"]
    assert ort_row["ok"] and ort_row["median_ms"] > 0 and ort_row["threads"] == torch.get_num_threads()
    assert ort_row["compile_s"] > 0  # export + session creation


def test_two_output_model_exports_with_ort_parity(tmp_path):
    """RTMPose-t: two outputs (x and y SimCC vectors), both checked against PyTorch in the written file."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = realistic_bn(create_model("rtmpose_t", num_keypoints=17, input_size=HW), g)
    with torch.no_grad():  # classifiers rescaled so that each axis' logits peak near 1, like a trained model's
        for cls, out in zip((model.head.cls_x, model.head.cls_y), model(torch.randn(2, 3, *HW, generator=g)),
                            strict=True):
            cls.weight.div_(out.abs().max())
    report = export_onnx(model, tmp_path / "rtmpose_t.onnx", HW, 2)
    assert report.max_abs_diff <= 1e-4 and report.folded_bn > 0
    import onnxruntime as ort

    sess = ort.InferenceSession(str(tmp_path / "rtmpose_t.onnx"), providers=["CPUExecutionProvider"])
    x = torch.randn(2, 3, *HW, generator=torch.Generator().manual_seed(7))
    outs = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        ref = model(x)
    assert [o.shape for o in outs] == [(2, 17, 128), (2, 17, 128)]
    assert max(np.abs(o - r.numpy()).max() for o, r in zip(outs, ref, strict=True)) <= 1e-4
    assert min(np.abs(r.numpy()).max() for r in ref) > 0.5  # the comparison is at a trained model's scale
