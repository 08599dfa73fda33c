"""``hrbench bench``: timing statistics, every CPU mode against eager, CLI errors."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import cli_error
from test_complexity import TinyBackbone, register_tiny
from torch import nn

from hrbench.bench.latency import TOLERANCE, benchmark, benchmark_model
from hrbench.bench.timing import percentile, summarize
from hrbench.cli import main

register_tiny()


def test_percentile_and_summary():
    times = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(times, 50) == 3.0 and percentile(times, 0) == 1.0 and percentile(times, 100) == 5.0
    assert percentile(times, 25) == 2.0 and percentile([1.0, 2.0], 10) == pytest.approx(1.1)
    s = summarize(times, batch=4)
    assert s["median_ms"] == 3.0 and s["iqr_ms"] == 2.0 and s["p10_ms"] == pytest.approx(1.4)
    assert s["throughput"] == pytest.approx(4 / 0.003)


def test_cpu_modes_match_eager():
    torch.manual_seed(0)
    model = nn.Sequential(TinyBackbone(8), nn.Conv2d(8, 4, 1)).eval()
    r = benchmark_model(model, (32, 24), batch=2, modes=("eager", "channels_last", "amp"), iters=3, warmup=1)
    assert [row.mode for row in r.rows] == ["eager", "channels_last", "amp"]
    for row in r.rows:
        assert row.error is None, row.error
        assert row.ok and row.max_rel_diff <= TOLERANCE[row.mode]
        assert row.p10_ms <= row.median_ms <= row.p90_ms and row.iqr_ms >= 0
        assert row.throughput == pytest.approx(2 / (row.median_ms / 1000))
        assert row.peak_mem_mb is None and row.compile_s is None
    assert r.rows[0].ratio == 1.0 and r.rows[0].max_rel_diff == 0.0
    assert r.rows[2].max_rel_diff > 0  # bf16 really ran
    d = r.to_dict()
    assert d["device"] == "cpu" and d["peak_memory"] == "n/a on CPU" and d["input"] == "32x24"


def test_compile_mode_reports_compile_time():
    # The 'eager' dynamo backend keeps this test fast; the CLI uses the default (inductor).
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1)).eval()
    r = benchmark_model(model, (16, 12), modes=("compile",), iters=2, warmup=1, compile_kwargs={"backend": "eager"})
    (row,) = r.rows
    assert row.error is None, row.error
    assert row.compile_s > 0 and row.ok and row.max_rel_diff <= 1e-4 and row.ratio == 1.0


def test_benchmark_registered_model_and_failing_mode_is_reported():
    r = benchmark("_test_tiny", (32, 24), modes=("eager", "compile"), iters=2, warmup=0,
                  compile_kwargs={"backend": "no_such_backend"})
    assert r.arch == "_test_tiny" and r.rows[0].error is None
    assert r.rows[1].error and r.rows[1].median_ms is None


def test_cli_json(capsys):
    assert main(["bench", "_test_tiny", "--input", "32x24", "--modes", "eager,amp", "--iters", "3", "--warmup", "1",
                 "--threads", "1", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["arch"] == "_test_tiny" and d["threads"] == 1 and [r["mode"] for r in d["rows"]] == ["eager", "amp"]
    assert all(r["ok"] for r in d["rows"]) and d["rows"][1]["ratio"] > 0


def test_cli_table(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # the console is built when the command runs
    assert main(["bench", "_test_tiny", "--input", "32x24", "--iters", "2", "--warmup", "0"]) == 0
    out = capsys.readouterr().out
    assert "median" in out and "times in ms" in out and "n/a" in out


@pytest.mark.parametrize("argv, message", [
    (["--device", "cuda"], "CUDA is not available"),
    (["--device", "tpu"], "unknown --device 'tpu'"),
    (["--modes", "eager,turbo"], "unknown --modes 'turbo'"),
    (["--batch", "0"], "invalid --batch 0"),
    (["--iters", "0"], "invalid --iters 0"),
    (["--warmup", "-1"], "invalid --warmup -1"),
    (["--input", "32"], "malformed --input '32'"),
    (["--threads", "0"], "invalid --threads 0"),
])
def test_cli_errors(capsys, argv, message):
    if argv[:2] == ["--device", "cuda"] and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert main(["bench", "_test_tiny", *argv]) == 2
    assert message in cli_error(capsys)


# ------------------------------------------------------------------ hrbench bench-dka
def test_dka_cli_json(capsys):
    argv = ["bench-dka", "--batch", "2", "--input", "64x64", "--repeats", "1", "--threads", "1", "--device", "cpu"]
    assert main([*argv, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["input"] == "64x64" and d["batch"] == 2 and d["device"] == "cpu" and d["threads"] == 1
    assert {r["mode"] for r in d["rows"]} == {"forward", "forward+backward"} and len(d["rows"]) % 2 == 0
    assert all(r["batched_ms"] > 0 and r["loop_ms"] > 0 and r["speedup"] == r["loop_ms"] / r["batched_ms"]
               for r in d["rows"])
    # Dite-HRNet-18 at 64x64: branch 0 is 40 channels at 1/4 (16x16), branch 1 80 at 1/8 (8x8); the DSC's
    # dynamic half is C/2 channels; 3x3 kernels; N = 4,4,2,1 kernels to aggregate (Section 3.1).
    shapes = {r["case"]: r["shape"] for r in d["rows"]}
    assert shapes["branch 0 group 0"] == "20x16x16 k3 N4" and shapes["branch 1 group 0"] == "40x8x8 k3 N4"


def test_dka_cli_table(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["bench-dka", "--batch", "2", "--input", "64x64", "--repeats", "1", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "DKA, Dite-HRNet-18 DSC shapes at 64x64, batch 2, cpu" in out and "speed-up" in out and "branch 1" in out


@pytest.mark.parametrize("argv, message", [
    (["--input", "48x64"], "multiples of 32"),
    (["--repeats", "0"], "invalid --repeats 0"),
    (["--batch", "1"], "invalid --batch 1"),
    (["--device", "tpu"], "unknown --device 'tpu'"),
    (["--threads", "x"], "invalid --threads x"),
])
def test_dka_cli_errors(capsys, argv, message):
    assert main(["bench-dka", *argv]) == 2
    assert message in cli_error(capsys)


# ------------------------------------------------------------------ hrbench bench-threads
def test_threads_cli_json(capsys):
    before = torch.get_num_threads()
    assert main(["bench-threads", "--arch", "_test_tiny", "--input", "32x24", "--batch", "2", "--steps", "1",
                 "--busy", "0", "--json"]) == 0
    assert torch.get_num_threads() == before  # the benchmark restores torch's thread count
    d = json.loads(capsys.readouterr().out)
    assert d["arch"] == "_test_tiny" and d["input"] == "32x24" and d["batch"] == 2 and d["cpus"] >= 1
    for label in ("loaded", "idle"):
        m = d[label]
        assert m["busy_processes"] == 0 and m["before_threads"] == d["cpus"] and m["auto_threads"] >= 1
        assert m["before_step_s"] > 0 and m["auto_step_s"] > 0 and m["speedup"] > 0


def test_threads_cli_text(capsys):
    assert main(["bench-threads", "--arch", "_test_tiny", "--input", "32x24", "--batch", "1", "--steps", "1",
                 "--busy", "0"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("_test_tiny 32x24 batch 1, loaded (0 busy process(es))")
    assert "s/step, auto = " in lines[1] and lines[1].endswith("x")


@pytest.mark.parametrize("argv, message", [
    (["--steps", "0"], "invalid --steps 0"),
    (["--busy", "-1"], "invalid --busy -1"),
    (["--input", "32"], "malformed --input '32'"),
    (["--arch", "no_such_net"], "unknown architecture 'no_such_net'"),
])
def test_threads_cli_errors(capsys, argv, message):
    assert main(["bench-threads", "--arch", "_test_tiny", *argv]) == 2
    assert message in cli_error(capsys)
