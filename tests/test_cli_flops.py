"""``hrbench flops``: JSON keys, units, --all, dataset defaults, the Dite gap table, bad input."""

from __future__ import annotations

import json

import pytest
from test_complexity import register_tiny

from hrbench.cli import main
from hrbench.registry import list_models

register_tiny()
KEYS = {"arch", "input", "keypoints", "params", "paper_mflops", "analytic", "fvcore", "ptflops", "macs"}


def run_json(capsys, *argv: str):
    assert main(["flops", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_keys_units_and_exact_analytic(capsys):
    d = run_json(capsys, "_test_tiny", "--input", "32x24")
    assert KEYS <= set(d)
    assert d["input"] == "32x24" and d["keypoints"] == 17 and d["convention"] == "torchstat"
    assert d["analytic"] == d["paper_mflops"] and d["counts"]["analytic"] == d["counts"]["paper"]
    assert "2**20" in d["units"]["paper_mflops"] and "1e6" in d["units"]["macs"] and "1e6" in d["units"]["fvcore"]
    assert d["skipped"]["paper"]["uncounted_functions"]["torch.nn.functional.conv2d"] == 1
    assert d["published"] == {} and d["errors"] == {}
    assert "by_module" not in d


def test_dataset_sets_default_input_and_keypoints(capsys):
    d = run_json(capsys, "_test_tiny", "--dataset", "mpii", "--engines", "paper,analytic")
    assert d["input"] == "256x256" and d["keypoints"] == 16
    assert d["fvcore"] is None and d["macs"] is None and d["analytic"] == d["paper_mflops"]
    d = run_json(capsys, "_test_tiny", "--keypoints", "5", "--input", "64x48", "--engines", "macs", "--by-module")
    assert d["keypoints"] == 5 and d["by_module"][0]["module"] == "(total)"
    assert d["macs"] == pytest.approx(d["by_module"][0]["macs"])


def test_overrides_are_applied(capsys):
    base = run_json(capsys, "_test_tiny", "--input", "32x24", "--engines", "macs")
    wide = run_json(capsys, "_test_tiny", "--input", "32x24", "--engines", "macs", "--set", "width=16")
    assert wide["params"] > base["params"] and wide["macs"] > base["macs"]
    assert wide["overrides"] == {"width": 16}


def test_all_lists_every_match(capsys):
    rows = run_json(capsys, "--all", "_test_tiny*", "--input", "32x24", "--jobs", "1",
                    "--engines", "paper,analytic,macs")
    assert [r["arch"] for r in rows] == ["_test_tiny", "_test_tiny_dite"]
    assert all(KEYS <= set(r) and r["analytic"] == r["paper_mflops"] for r in rows)


def test_table_output_labels_units_and_skips(capsys):
    assert main(["flops", "_test_tiny", "--input", "32x24"]) == 0
    out = capsys.readouterr().out
    for text in ("paper", "analytic", "fvcore", "ptflops", "macs", "MFLOPs /2^20", "MMac /1e6",
                 "analytic == paper", "uncounted_functions", "counted_twice", "unsupported_ops"):
        assert text in out, text


def test_dite_convention_shows_gap_per_block_type(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # the console is built when the command runs
    assert main(["flops", "_test_tiny_dite", "--input", "32x24"]) == 0
    out = capsys.readouterr().out
    assert "gap between the published convention and true MACs" in out
    assert "FunctionalMix" in out and "HeatmapHead" in out


@pytest.mark.parametrize("argv, message", [
    (["_test_tiny", "--input", "256"], "malformed --input '256'"),
    (["_test_tiny", "--input", "0x192"], "invalid --input '0x192'"),
    (["no_such_net"], "unknown architecture 'no_such_net'"),
    (["_test_tiny", "--keypoints", "-1"], "invalid --keypoints -1"),
    (["_test_tiny", "--engines", "paper,flux"], "unknown --engines 'flux'"),
    (["_test_tiny", "--dataset", "lsp"], "unknown --dataset 'lsp'"),
    (["_test_tiny", "--set", "depth=3"], "unknown hyper-parameter 'depth'"),
    ([], "missing ARCH"),
    (["--all", "zzz*"], "no registered architecture matches"),
    (["--all", "_test_tiny*", "--train"], "--train with --all needs --json"),
    (["--all", "_test_tiny*", "--explain", "--by-module"], "--by-module, --explain with --all need --json"),
])
def test_bad_input_is_one_line_exit_2(capsys, argv, message):
    assert main(["flops", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hrbench: error: ") and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.skipif(not list_models("litehrnet_18"), reason="Lite-HRNet-18 not registered")
def test_lite18_against_published(capsys):
    d = run_json(capsys, "lite18", "--engines", "paper,analytic")
    assert d["arch"] == "litehrnet_18" and d["params"] == 1_130_769
    assert round(d["paper_mflops"], 2) == 205.23 and d["analytic"] == d["paper_mflops"]
    assert d["published"]["delta"] == pytest.approx(d["paper_mflops"] - d["published"]["mflops"], abs=1e-3)


@pytest.mark.skipif(len(list_models("dpn1_*")) < 2, reason="DPN variants not registered")
def test_all_in_parallel_processes_matches_serial(capsys):
    argv = ["--all", "dpn1_*", "--engines", "paper,analytic,macs", "--input", "128x96"]
    parallel = run_json(capsys, *argv, "--jobs", "2")
    serial = run_json(capsys, *argv, "--jobs", "1")
    assert parallel == serial and len(serial) == len(list_models("dpn1_*"))
    assert all(r["analytic"] == r["paper_mflops"] for r in serial)


def test_explain_train_traffic_and_stamp_in_json(capsys):
    import torch

    d = run_json(capsys, "_test_tiny", "--input", "32x24", "--explain", "--train")
    for target in ("paper", "fvcore", "ptflops"):
        rec = d["explain"][target]
        assert "unexplained" not in {r["term"] for r in rec["rows"]}, target  # every unit of the gap has a rule
        assert sum(r["raw"] for r in rec["rows"]) == rec["figure"] == d["counts"][target]
        assert rec["rows"][0]["term"] == "macs" and rec["rows"][0]["raw"] == d["counts"]["macs"]
    assert d["train"]["forward_macs"] == d["counts"]["macs"] and d["train"]["backward_macs"] > 0
    assert d["stamp"]["torch"] == torch.__version__ and d["stamp"]["input"] == "32x24"
    assert d["stamp"]["convention"] == "torchstat" and d["stamp"]["keypoints"] == 17
    assert {"hrbench", "fvcore", "ptflops"} <= set(d["stamp"])
    assert d["traffic"]["total"]["macs"] == d["counts"]["macs"] and d["traffic"]["total"]["launches"] > 0


def test_explain_and_traffic_tables(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "220")  # the console is built when the command runs
    assert main(["flops", "_test_tiny", "--input", "32x24", "--explain", "--by-module", "--train"]) == 0
    out = capsys.readouterr().out
    for text in ("true MACs -> paper", "true MACs -> fvcore", "true MACs -> ptflops", "repeated calls",
                 "memory traffic per stage", "memory traffic per block type", "training step per image",
                 "counted with hrbench", "launches"):
        assert text in out, text


def test_all_json_reports_its_time(capsys):
    assert main(["flops", "--all", "_test_tiny*", "--input", "32x24", "--jobs", "1", "--engines", "macs",
                 "--json"]) == 0
    captured = capsys.readouterr()
    assert len(json.loads(captured.out)) == 2 and "2 models in" in captured.err
