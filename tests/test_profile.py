"""``hrbench profile``: the module timeline's attribution (fake clock), the rows' structure on Lite-HRNet-18
at 64x48, ONNX node names mapped back to modules, the latency fit, the busy-machine stamp, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import cli_error
from torch import nn

from hrbench.bench.latency import BUSY_SHARE, benchmark_model, load_stamp
from hrbench.bench.profile import GROUPINGS, ModuleTimeline, profile_eager
from hrbench.bench.profile_api import fit_latency
from hrbench.cli import main
from hrbench.complexity.measure import measure_model
from hrbench.factory import create_model

HW = (64, 64)


class FakeClock:
    """A clock that moves only when a module's forward says so."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Leaf(nn.Module):
    def __init__(self, clock: FakeClock, cost: float) -> None:
        super().__init__()
        self.clock, self.cost = clock, cost

    def forward(self, x):
        self.clock.t += self.cost
        return x


class Parent(nn.Module):
    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.a = Leaf(clock, 0.004)
        self.b = Leaf(clock, 0.001)

    def forward(self, x):
        self.clock.t += 0.002  # own code before the children
        x = self.b(self.a(x))
        x = self.b(x)  # called twice: both calls are b's
        self.clock.t += 0.0005
        return x


def test_timeline_charges_each_interval_to_the_innermost_module():
    clock = FakeClock()
    model = Parent(clock)
    timeline = ModuleTimeline(model, torch.device("cpu"), clock=clock)
    with timeline:
        model(torch.zeros(1))
    ms = timeline.take()
    assert ms == pytest.approx({"": 2.5, "a": 4.0, "b": 2.0})
    assert timeline.calls == {"": 1, "a": 1, "b": 2}
    assert timeline.take() == {}  # taken once
    model(torch.zeros(1))  # hooks removed on exit: nothing recorded
    assert timeline.take() == {}


@pytest.fixture(scope="module")
def lite18():
    torch.manual_seed(0)
    return create_model("lite18", num_keypoints=17).eval()


@pytest.fixture(scope="module")
def lite18_counts(lite18):
    c = measure_model(lite18, HW, engines=("macs",), by_module=False)
    return c.counts["macs"], c.traffic["total"]


@pytest.fixture(scope="module")
def lite18_onnx(lite18):
    """Lite-HRNet-18's export at 64x64 without and with the rewrites (one export each for the module)."""
    pytest.importorskip("onnxruntime")
    from hrbench.speed.onnx import onnx_bytes

    x = torch.randn(1, 3, *HW, generator=torch.Generator().manual_seed(1))
    return x, onnx_bytes(lite18, x, forms=False), onnx_bytes(lite18, x)


def _check_rows(d, macs_total, traffic_total):
    for group in GROUPINGS:
        rows = d["groups"][group]
        assert rows and len({r["name"] for r in rows}) == len(rows)
        assert sum(r["macs"] for r in rows) == macs_total  # every MAC in exactly one row
        assert sum(r["launches"] for r in rows) == traffic_total["launches"]
        assert sum(r["bytes"] for r in rows) == traffic_total["bytes_fp32"]
        assert sum(r["time_ms"] for r in rows) == pytest.approx(d["row_sum_ms"], rel=1e-3)
        assert sum(r["time_share"] for r in rows) == pytest.approx(1.0, abs=1e-3)
        assert sum(r["mac_share"] for r in rows) == pytest.approx(1.0, abs=1e-3)
        for r in rows:
            if r["time_ms"] >= 0.05 and r["macs"]:  # times are rounded to 1e-4 ms
                assert r["gmacs_per_s"] == pytest.approx(r["macs"] / (r["time_ms"] / 1e3) / 1e9, rel=2e-3)
                assert r["macs_per_byte"] == pytest.approx(r["macs"] / r["bytes"], rel=1e-3)


def test_eager_profile_rows(lite18, lite18_counts):
    macs, traffic = lite18_counts
    d = profile_eager(lite18, HW, iters=2, warmup=1)
    _check_rows(d, macs, traffic)
    types = {r["name"] for r in d["groups"]["block_type"]}
    # Lite-HRNet's parts (Sec. 3): stem, CCW (split/concat/shuffle), its CRW and SW weightings, fusion, upsample
    assert {"ShuffleStem", "ConditionalChannelWeighting", "CrossResolutionWeighting", "SpatialWeighting",
            "MultiResolutionFusion", "Upsample"} <= types
    assert {r["name"] for r in d["groups"]["stage"]} >= {"backbone.stem", "backbone.stage0", "backbone.stage1",
                                                          "backbone.stage2", "head"}
    assert "ConvBNAct" not in types  # conv units belong to the block that uses them
    assert d["e2e_ms"] > 0 and d["profiled_ms"] > 0 and d["sum_vs_e2e"] > 0
    assert d["module_calls"] > len(list(lite18.modules())) / 2  # every module called (the fusion ReLU several times)
    assert 0 <= d["hook_leak_us"] < 1000
    assert d["hook_leak_ms"] == pytest.approx(d["hook_leak_us"] * d["module_calls"] / 1000, rel=0.01, abs=1e-3)


def test_onnx_node_names_map_to_the_modules_that_ran_them(lite18, lite18_onnx):
    import onnx

    from hrbench.bench.profile_ort import module_of
    from hrbench.speed.onnx import prepare_export_model

    data = lite18_onnx[1][0]  # the stock export (its module tree is the model's)
    graph = onnx.load_from_string(data).graph
    export_model, _ = prepare_export_model(lite18, 1, forms=False)
    mods = dict(export_model.named_modules())
    conv_modules = {n for n, m in mods.items() if isinstance(m, nn.Conv2d)}
    mapped = [module_of(node.name, mods) for node in graph.node if node.op_type == "Conv"]
    assert len(mapped) == len(conv_modules) and set(mapped) == conv_modules  # each conv node -> its own Conv2d
    resize = {module_of(node.name, mods) for node in graph.node if node.op_type == "Resize"}
    assert any(isinstance(mods[n], nn.Upsample) for n in resize)  # nn.Upsample of the fusion
    assert module_of("Conv_17", mods) is None and module_of("/no/such/Conv", mods) is None


def test_ort_profile_rows(lite18, lite18_counts):
    pytest.importorskip("onnxruntime")
    from hrbench.bench.profile_ort import profile_ort

    macs, traffic = lite18_counts
    d = profile_ort(lite18, HW, iters=2, warmup=1)
    _check_rows(d, macs, traffic)
    assert d["unmapped_ms"] <= 0.05 * d["row_sum_ms"]  # (nearly) every node's time has a module
    ops = {r["name"]: r for r in d["by_op_type"]}
    assert "Conv" in ops or "FusedConv" in ops
    assert sum(r["nodes"] for r in d["by_op_type"]) == d["nodes"]
    assert sum(r["time_ms"] for r in d["by_op_type"]) == pytest.approx(d["row_sum_ms"], rel=1e-3)


def test_fit_recovers_known_coefficients_and_leave_one_out():
    rng = np.random.default_rng(0)
    models = [{"arch": f"m{i}", "launches": int(rng.integers(100, 3000)), "bytes": int(rng.integers(1e7, 1e9)),
               "macs": int(rng.integers(1e8, 1e10))} for i in range(6)]
    for m in models:  # 10 µs per launch, 0.1 ms per MB, 5 ms per GMAC
        m["e2e_ms"] = 0.01 * m["launches"] + 1e-7 * m["bytes"] + 5e-9 * m["macs"]
    f = fit_latency(models)
    assert f["coef"]["launches"] == pytest.approx(0.01, rel=1e-6)
    assert f["coef"]["bytes"] == pytest.approx(1e-7, rel=1e-6)
    assert f["coef"]["macs"] == pytest.approx(5e-9, rel=1e-6)
    assert all(abs(r["loo_error"]) < 1e-6 for r in f["models"])
    only_macs = fit_latency(models, ("macs",))
    assert only_macs["mean_abs_loo_error"] > 0.05  # launches and bytes matter here: MACs alone cannot fit


def test_busy_stamp():
    assert load_stamp(0.6, 0.4, cpus=2)["other_share"] == 0.25 and load_stamp(0.6, 0.4, cpus=2)["busy"]
    idle = load_stamp(0.05, 0.1, cpus=2)
    assert not idle["busy"] and idle["other_share"] == pytest.approx(0.0375, abs=1e-3) and BUSY_SHARE == 0.25
    r = benchmark_model(nn.Conv2d(3, 4, 3), (16, 12), iters=2, warmup=0)
    load = r.to_dict()["load"]
    assert set(load) >= {"cpus", "busy_cpus_before", "busy_cpus_after", "other_share", "busy"}
    assert 0 <= load["other_share"] and load["busy"] == (load["other_share"] >= BUSY_SHARE)


def test_cli_profile_json_and_picture(tmp_path, capsys):
    out = tmp_path / "p.png"
    assert main(["profile", "lite18", "--input", "64x64", "--iters", "2", "--warmup", "1", "--threads", "1",
                 "--json", "--out", str(out)]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["arch"] == "litehrnet_18" and d["mode"] == "eager" and d["threads"] == 1 and d["input"] == "64x64"
    assert set(d["groups"]) == set(GROUPINGS) and d["peaks"]["gmacs"] > 0 and d["peaks"]["gbs"] > 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and d["picture"] == str(out)


@pytest.mark.parametrize("argv, needle", [
    (["lite18", "--mode", "trt"], "unknown --mode"),
    (["lite18", "--out", "x.txt"], "expected a FILE.png"),
    ([], "give one architecture"),
    (["lite18", "--compare", "lite18,dite18"], "give one architecture"),
    (["--compare", "lite18"], "at least two"),
    (["lite18", "--iters", "0"], "invalid --iters"),
])
def test_cli_profile_errors(argv, needle, capsys, tmp_path):
    assert main(["profile", *argv]) == 2
    assert needle in cli_error(capsys)
    assert not (tmp_path / "x.txt").exists()


def test_interleave_shuffle_form_is_bit_identical_and_removes_every_transpose(lite18_onnx):
    import onnx

    from hrbench.speed.onnx import ort_session
    from hrbench.speed.onnx_forms import apply_forms

    x, (stock, c0), (formed, c1) = lite18_onnx
    shuffles = [n for n in onnx.load_from_string(stock).graph.node if n.op_type == "Transpose"]
    # one Transpose per channel shuffle: the stem, and each CCW block once per branch (2 blocks per module,
    # modules x branches 2x2, 4x3, 2x4 in stages 0-2: 8 + 24 + 16)
    assert len(shuffles) == 49 and c0["forms"] == {} and c1["forms"]["interleave_shuffle"] == 49
    interleaved, changed = apply_forms(stock, ("interleave_shuffle",))  # this rewrite alone
    assert changed == {"interleave_shuffle": 49}
    for data in (interleaved, formed):
        g = onnx.load_from_string(data).graph
        assert not [n for n in g.node if n.op_type == "Transpose"]
        assert sum(n.op_type == "Concat" and n.attribute[0].i == 2 for n in g.node) == 49
    feed = {"input": x.numpy()}
    a = ort_session(stock).run(["heatmaps"], feed)[0]
    b = ort_session(interleaved).run(["heatmaps"], feed)[0]
    assert np.array_equal(a, b)  # pure data movement: bit for bit


def test_cli_compare_writes_the_report(tmp_path, capsys, lite18_counts):
    assert main(["profile", "--compare", "lite18,dite18", "--input", "64x64", "--iters", "1", "--warmup", "0",
                 "--threads", "1", "--out", str(tmp_path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [m["arch"] for m in d["models"]] == ["litehrnet_18", "ditehrnet_18"]
    lite, dite = d["models"]
    assert lite["macs"] == lite18_counts[0] and lite["macs_ratio"] == 1.0 and lite["latency_ratio"] == 1.0
    assert dite["latency_ratio"] == pytest.approx(dite["e2e_ms"] / lite["e2e_ms"], rel=1e-3)
    assert {tuple(f["predictors"]) for f in d["fits"]} == {("launches",), ("bytes",), ("macs",)}  # 2 models: 1 each
    md = (tmp_path / "profile-compare.md").read_text()
    assert "| litehrnet_18 |" in md and "| ditehrnet_18 |" in md and "leave-one-out" in md
    assert json.loads((tmp_path / "profile-compare.json").read_text())["models"] == d["models"]
    assert (tmp_path / "profile-compare.png").read_bytes()[:4] == b"\x89PNG"


def test_bench_cpu_clock_and_ort_stock(capsys):
    pytest.importorskip("onnxruntime")
    r = benchmark_model(create_model("lite18", num_keypoints=17), HW, modes=("eager", "ort_stock", "ort"), iters=3,
                        warmup=1, clock="cpu", alternate=True)
    d = r.to_dict()
    assert d["clock"] == "cpu" and d["alternate"] and [row.mode for row in r.rows] == ["eager", "ort_stock", "ort"]
    assert all(row.error is None and row.ok and row.p10_ms <= row.median_ms <= row.p90_ms for row in r.rows)
    assert r.rows[0].ratio == 1.0 and r.rows[2].ratio == pytest.approx(r.rows[2].median_ms / r.rows[0].median_ms)
    assert r.rows[1].max_rel_diff <= 1e-5 and r.rows[2].max_rel_diff <= 1e-5  # exact forms: rounding only
    assert main(["bench", "lite18", "--clock", "sundial"]) == 2
    assert "invalid --clock" in cli_error(capsys)
