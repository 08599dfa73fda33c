"""Reports: agreement checks, deterministic rendering, the index counts, disagreement flags,
local-run joins, the ablation runner (complexity, resumability) and the CLI."""

from __future__ import annotations

import csv
import io
import json
import zlib
from pathlib import Path

import pytest

from hrbench.cli import main
from hrbench.complexity.measurer import Measurement
from hrbench.complexity.table2 import closed_form
from hrbench.reference import match_cell, parse_hw, rows_of
from hrbench.registry import get_grid
from hrbench.reports import generate_reports
from hrbench.reports.local_runs import LocalRun, load_runs
from hrbench.reports.specs import get_spec
from hrbench.reports.tables import Context, agreement, build_table
from hrbench.reports.targets import target_for


# ------------------------------------------------------------------------------------ agreement
def test_agreement_at_printed_precision():
    assert agreement("205.2", 215.20e6 / 2**20) == "yes"  # Lite-HRNet-18: 205.23 -> 205.2
    assert agreement("0.20", 0.2004) == "yes"
    assert agreement("0.2", 0.2607) == "no"
    assert agreement("0.2", 0.2607, truncates=True) == "trunc"  # Dite-HRNet prints truncated
    assert agreement("1.1", 1.186933, truncates=True) == "trunc"
    assert agreement("1.1", 1.186933) == "no"
    assert agreement("0.25", 0.245) == "yes"  # half up
    assert agreement("418.7", 414.5776) == "no"
    assert agreement("", 1.0) == "" and agreement("1.0", None) == ""


def test_lite_table2_formulas_match_print():
    assert list(closed_form().values()) == [13107200, 2211840, 261760, 274560, 536320]
    t = build_table(get_spec("lite-T2"), Context(measurer=_never))
    assert [c.status for c in t.checks] == ["yes"] * 5
    assert [c.printed for c in t.checks] == ["12.5", "2.1", "0.25", "0.26", "0.51"]


def _never(*a):  # a measurer that must not be called
    raise AssertionError("no measurement expected")


# ------------------------------------------------------------------------------------ joining rows
def test_rows_map_to_registry_and_grids():
    lite18 = next(r for r in rows_of("lite", "T3") if r["model"] == "Lite-HRNet-18")
    assert target_for(lite18).model == "litehrnet_18"
    mbv2 = next(r for r in rows_of("lite", "T3") if r["model"].startswith("MobileNetV2"))
    assert target_for(mbv2).model == "mobilenetv2_1x"
    mbv3 = next(r for r in rows_of("lite", "T5") if r["model"].startswith("MobileNetV3"))
    assert target_for(mbv3).model == "mobilenetv3_1x"
    grid = get_grid("dite-table5")
    row = next(r for r in rows_of("dite", "T5") if "G=4211 N=1244" in r["model"])
    cell = match_cell(row["model"], grid.cells)
    assert cell is not None and tuple(cell.overrides["groups"]) == (4, 2, 1, 1)
    assert tuple(cell.overrides["kernels"]) == (1, 2, 4, 4)
    # every printed row of every grid's table finds exactly its cell
    for name in ("dite-table5", "dpn-table2", "dpn-table3", "dpn-table4", "dpn-table5"):
        g = get_grid(name)
        rows = rows_of(g.source, g.table)
        assert {id(match_cell(r["model"], g.cells)) for r in rows} == {id(c) for c in g.cells}, name
    from hrbench.ablate import published_for_cell
    from hrbench.registry import list_grids

    for name in list_grids():  # and every cell of every grid finds its printed row
        g = get_grid(name)
        assert all(published_for_cell(g, c) for c in g.cells), name


def test_rows_match_as_the_model_card_matches():
    """The tables find a printed row's entry with the model card's matcher (backbone keys included):
    Lite-HRNet-18/30 in Dite-HRNet Tables 2-4, HRNetV1-W32/W48 in Lite-HRNet Tables 3-4, the DARK
    (HRNet-W48, DARK decoding) and UDP (HRNet-W32, udp codec) rows; every row an entry takes is on its card."""
    from hrbench.cards import reported_for
    from hrbench.reference import reported_rows

    def model_of(source, table, model, backbone=None):
        rows = [r for r in rows_of(source, table) if r["model"] == model and backbone in (None, r["backbone"])]
        assert rows, (source, table, model)
        return {t.model if t else None for t in map(target_for, rows)}

    for table in ("T2", "T3", "T4"):
        assert model_of("dite", table, "Lite-HRNet-18") == {"litehrnet_18"}
        assert model_of("dite", table, "Lite-HRNet-30") == {"litehrnet_30"}
    assert model_of("lite", "T3", "HRNetV1", "HRNetV1-W32") == {"hrnet_w32"}
    assert model_of("lite", "T4", "HRNetV1", "HRNetV1-W32") == {"hrnet_w32"}
    assert model_of("lite", "T4", "HRNetV1", "HRNetV1-W48") == {"hrnet_w48"}
    dark = next(r for r in rows_of("lite", "T3") if r["model"] == "DARK")
    assert target_for(dark).label() == "hrnet_w48 (dark decoding)" and dark["input"] == "128x96"
    assert model_of("dite", "T3", "DARK") == {"hrnet_w48"} and model_of("lite", "T4", "DARK") == {"hrnet_w48"}
    assert model_of("dite", "T2", "UDP") == {"hrnet_w32_udp"} and model_of("dite", "T3", "UDP") == {"hrnet_w32_udp"}
    for row in reported_rows():
        target = target_for(row)
        if target is not None and target.via == "entry":
            assert row in reported_for(target.model), (row["source"], row["table"], row["model"])


def test_systems_outside_scope_say_what_they_are(tmp_path):
    from hrbench.reports.scope import OUTSIDE_SCOPE, outside_scope

    openpose = next(r for r in rows_of("dpn", "T6") if r["model"] == "OpenPose")
    assert target_for(openpose) is None and outside_scope(openpose).startswith("bottom-up system")
    cpn = {r["backbone"]: outside_scope(r) for r in rows_of("lite", "T4") + rows_of("lite", "T3")
           if r["model"] == "CPN"}
    assert cpn["ResNet-Inception"].startswith("CPN test-dev entry") and cpn["ResNet-50"] == ""  # R-50 is a backbone
    printed = {(r["model"], r["backbone"]) for s in ("lite", "dite", "dpn") for t in ("T3", "T4", "T6", "T7")
               for r in rows_of(s, t)}
    for model, backbone in OUTSIDE_SCOPE:  # every entry names a printed row
        assert any(m == model and backbone in ("*", b) for m, b in printed), model
    generate_reports(tmp_path, runs_dir=None, measurer=_hash_measurer, table_ids=("dpn-T7",))
    rows = {r["model"]: r for r in csv.DictReader(io.StringIO((tmp_path / "tables" / "dpn-T7.csv").read_text()))}
    assert rows["Deepercut"]["hrbench_model"].startswith("bottom-up multi-person graph method")
    assert "multi-stage" in rows["MCA"]["hrbench_model"]
    index = (tmp_path / "README.md").read_text()
    assert "rows of systems outside its top-down scope (bottom-up, detector-integrated, multi-stage): 6." in index


# ------------------------------------------------------------------------------------ fake measurers
def _published_measurer(table_id: str, wrong: dict[tuple[str, str], float] | None = None):
    """A measurer returning exactly each printed figure of ``table_id`` (params, FLOPs), except
    the (model, input) pairs in ``wrong`` whose MFLOPs are replaced."""
    table: dict[tuple[str, str], Measurement] = {}
    spec = get_spec(table_id)
    for source, tid in spec.parts:
        for row in rows_of(source, tid):
            target = target_for(row)
            if target is None or not row["input"]:
                continue
            mflops = float(row["gflops"]) * 1024 if row["gflops"] else float(row["mflops"] or 0)
            params = int(float(row["params_M"] or 0) * 1e6)
            table[(target.model, row["input"])] = Measurement(params, mflops, 123_000_000)
    for key, value in (wrong or {}).items():
        m = table[key]
        table[key] = Measurement(m.params, value, m.macs)

    def measurer(model, overrides, input_hw, k):
        return table[(model, f"{input_hw[0]}x{input_hw[1]}")]

    return measurer


def _hash_measurer(model, overrides, input_hw, k):
    h = zlib.crc32(f"{model}{sorted(overrides.items())}{input_hw}{k}".encode())
    return Measurement(1_000_000 + h % 500_000, 200 + (h % 1000) / 10, 200_000_000 + h % 10_000)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------ determinism
def test_render_twice_gives_identical_bytes(tmp_path):
    ids = ("lite-T2", "lite-T3", "lite-T5", "dite-T5", "dpn-T3", "dpn-T4")
    a = generate_reports(tmp_path / "a", runs_dir=None, formats=("md", "csv", "tex"), measurer=_hash_measurer,
                         table_ids=ids)
    b = generate_reports(tmp_path / "b", runs_dir=None, formats=("md", "csv", "tex"), measurer=_hash_measurer,
                         table_ids=ids)
    ta, tb = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert ta.keys() == tb.keys()
    pngs = {"plots/coco-256x192-ap-vs-gflops.png", "plots/dite-T5-heatmaps.png", "plots/dpn-T3-dilation.png",
            "plots/dpn-T4-resolution.png"}
    assert {k for k in ta if k.endswith(".png")} >= pngs
    assert {k for k in ta if k.endswith(".tex")} == {f"tables/{i}.tex" for i in ids}
    assert {k for k in ta if k.endswith(".pdf")} == {k[:-4] + ".pdf" for k in ta if k.endswith(".png")}
    for k in ta:
        assert ta[k] == tb[k], k
    assert a.counts == b.counts
    svg = ta["plots/dpn-T4-resolution.svg"].decode()
    assert "<dc:date>" not in svg and "Matplotlib v" not in svg
    # a stale file of hrbench's earlier run is removed; a file it did not write is kept (issue 20), and so
    # is the machine-dependent bench/ folder
    (tmp_path / "a" / "tables" / "old.md").write_text("the user's")
    (tmp_path / "a" / "bench").mkdir()
    (tmp_path / "a" / "bench" / "latency.md").write_text("kept")
    generate_reports(tmp_path / "a", runs_dir=None, measurer=_hash_measurer, table_ids=ids)
    assert (tmp_path / "a" / "tables" / "old.md").read_text() == "the user's"
    assert (tmp_path / "a" / "bench" / "latency.md").exists()
    assert not (tmp_path / "a" / "tables" / "lite-T3.tex").exists()  # no tex this time
    assert not list((tmp_path / "a" / "plots").glob("*.pdf"))


# ------------------------------------------------------------------------------------ counts and flags
def test_index_counts_and_disagreeing_cell_is_flagged(tmp_path):
    good = generate_reports(tmp_path / "good", runs_dir=None, measurer=_published_measurer("lite-T5"),
                            table_ids=("lite-T5",))
    # Lite-HRNet-18, -30, Small HRNet-W16, MobileNetV2, ShuffleNetV2 and MobileNetV3 are held: 6 rows x (params, GFLOPs)
    assert good.counts["cells"] == 12 and good.counts["agree"] == 12 and good.counts["disagree"] == 0
    index = (tmp_path / "good" / "README.md").read_text()
    assert "**12 of 12**" in index and "Every measurable cell agrees." in index

    bad = generate_reports(tmp_path / "bad", runs_dir=None, table_ids=("lite-T5",),
                           measurer=_published_measurer("lite-T5", {("litehrnet_30", "256x256"): 500.0}))
    assert bad.counts["cells"] == 12 and bad.counts["agree"] == 11 and bad.counts["disagree"] == 1
    [d] = bad.disagreeing
    assert (d.table, d.printed, d.quantity) == ("lite-T5", "0.42", "GFLOPs")
    md = (tmp_path / "bad" / "tables" / "lite-T5.md").read_text()
    assert "**0.4883 ✗**" in md and "0.2700 ✓" in md
    rows = list(csv.DictReader(io.StringIO((tmp_path / "bad" / "tables" / "lite-T5.csv").read_text())))
    by_model = {r["model"]: r for r in rows}
    assert by_model["Lite-HRNet-30"]["agree"] == "no" and by_model["Lite-HRNet-30"]["flops_agree"] == "no"
    assert by_model["Lite-HRNet-30"]["params_agree"] == "yes"
    assert by_model["Lite-HRNet-18"]["agree"] == "yes"
    assert by_model["MobileNetV2 1x"]["hrbench_model"] == "mobilenetv2_1x"
    assert by_model["MobileNetV3 1x"]["hrbench_model"] == "mobilenetv3_1x"
    assert by_model["MobileNetV3 1x"]["agree"] == "yes"
    index = (tmp_path / "bad" / "README.md").read_text()
    assert "**11 of 12**" in index and "| Lite-HRNet-30 [mpii 256x256] | GFLOPs | 0.42 | 0.4883 |" in index
    assert "not in hrbench" not in md  # every row of the table is held (issue 21)


# ------------------------------------------------------------------------------------ local runs
def _write_run(root: Path, name: str, arch: str, inp, metric: float, overrides=None, status="finished",
               dataset="coco", epochs=1) -> None:
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    key = "PCKh" if dataset == "mpii" else "AP"
    (d / "summary.json").write_text(json.dumps({
        "format": "hrbench-run-v1", "name": name, "status": status, "arch": arch, "overrides": overrides or {},
        "dataset": dataset, "input": list(inp), "epochs": epochs, "epochs_done": epochs, "metric": key,
        "final": {key: metric - 1}, "best": {key: metric}}))


def test_local_runs_fill_the_accuracy_column(tmp_path):
    runs = tmp_path / "runs"
    _write_run(runs, "a-run", "litehrnet_18", (256, 192), 12.34)
    _write_run(runs, "b-unfinished", "litehrnet_30", (256, 192), 50.0, status="running")
    _write_run(runs, "c-mpii", "litehrnet_18", (256, 256), 33.3, dataset="mpii")
    loaded = load_runs(runs)
    assert [r.run_id for r in loaded] == ["a-run", "c-mpii"]
    assert loaded[0] == LocalRun("a-run", "litehrnet_18", "{}", "coco", "256x192", {"AP": 12.34}, 1)
    t = build_table(get_spec("lite-T3"), Context(measurer=_hash_measurer, runs=loaded))
    by = {(r.printed["model"], r.printed["input"]): r for r in t.rows}
    assert by[("Lite-HRNet-18", "256x192")].local.run_id == "a-run"
    assert by[("Lite-HRNet-30", "256x192")].local is None  # unfinished runs do not count
    from hrbench.reports.render import local_text

    assert local_text(by[("Lite-HRNet-18", "256x192")], "AP") == "12.3 (1 ep)"
    assert local_text(by[("Lite-HRNet-18", "384x288")], "AP") == "12.3 (@256x192, 1 ep)"
    t5 = build_table(get_spec("lite-T5"), Context(measurer=_hash_measurer, runs=loaded))
    lite18 = next(r for r in t5.rows if r.printed["model"] == "Lite-HRNet-18")
    assert lite18.local.metrics == {"PCKh": 33.3}


# ------------------------------------------------------------------------------------ ablate
def test_ablate_complexity_and_resume(tmp_path, monkeypatch):
    from hrbench import ablate

    res = ablate.run_ablation("dpn-table5", measurer=_hash_measurer)
    assert len(res["cells"]) == 8
    first = res["cells"][0]
    assert first["published"]["value"] == "50.6" and first["params"] is not None
    assert {c["published"]["model"] for c in res["cells"]} == {r["model"] for r in rows_of("dpn", "T5")}

    calls = []

    def fake_train(arch, data, *, dataset, epochs, batch, input_hw, overrides, out, name, resume, **kw):
        calls.append((name, resume))
        _write_run(Path(out), name, arch, input_hw, 10.0 + len(calls), overrides=overrides, epochs=epochs)
        return json.loads((Path(out) / name / "summary.json").read_text())

    monkeypatch.setattr("hrbench.engine.train", fake_train)
    out = tmp_path / "runs"
    # one cell was interrupted earlier: its folder has a checkpoint but no finished summary
    grid = get_grid("dpn-table5")
    stale = ablate.run_name(grid, 3, grid.cells[3], (64, 48), 1)
    (out / stale / "checkpoints").mkdir(parents=True)
    (out / stale / "checkpoints" / "last.pt").write_bytes(b"x")
    res1 = ablate.run_ablation("dpn-table5", train=True, epochs=1, data=tmp_path, out=out, input_hw=(64, 48),
                               measurer=_hash_measurer)
    assert len(calls) == 8 and dict(calls)[stale] is True
    assert [c["state"] for c in res1["cells"]].count("resumed") == 1
    assert all(c["value"] is not None for c in res1["cells"])
    state = json.loads((out / "ablate-dpn-table5.json").read_text())
    assert len(state["cells"]) == 8
    res2 = ablate.run_ablation("dpn-table5", train=True, epochs=1, data=tmp_path, out=out, input_hw=(64, 48),
                               measurer=_hash_measurer)
    assert len(calls) == 8  # nothing retrained
    assert [c["state"] for c in res2["cells"]] == ["skipped"] * 8
    assert [c["value"] for c in res2["cells"]] == [c["value"] for c in res1["cells"]]
    # the tables pick the runs up (at their own input)
    t = build_table(get_spec("dpn-T5"), Context(measurer=_hash_measurer, runs=load_runs(out)))
    assert all(r.local is not None and r.local.input == "64x48" for r in t.rows)


def test_cli_errors_and_list(capsys):
    assert main(["ablate", "--list"]) == 0
    assert "dite-table5" in capsys.readouterr().out
    assert main(["ablate", "no-such-grid"]) == 2
    assert "unknown ablation grid" in capsys.readouterr().err
    assert main(["ablate", "dite-table5", "--train"]) == 2
    assert "--data" in capsys.readouterr().err
    assert main(["ablate"]) == 2


def test_cli_ablate_json_measures_real_models(capsys):
    assert main(["ablate", "dpn-table4", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    gflops = {c["published"]["model"]: (c["published"]["flops"], c["paper_mflops"] / 1024) for c in res["cells"]}
    assert len(gflops) == 8
    for printed, measured in gflops.values():  # conv MACs / 2^30, as the slides print them
        assert agreement(printed, measured) == "yes"


# ------------------------------------------------------------------------------------ end to end
@pytest.mark.slow
def test_ablate_dite_table5_trains_and_reports(tmp_path):
    """4 of the 16 Dite-HRNet-18 cells (``--cells``: the first, two inner, the last) trained 1 epoch on a
    tiny synthetic set, then the Table 5 report: those rows carry their local AP, the other 12 none."""
    from hrbench.data.synth import generate

    data = tmp_path / "data"
    generate("coco", data, n_train=4, n_val=2, seed=0, image_hw=(96, 72))
    runs = tmp_path / "runs"
    argv = ["ablate", "dite-table5", "--train", "--cells", "0,5,10,15", "--epochs", "1", "--data", str(data),
            "--out", str(runs), "--input", "64x64", "--batch", "4", "--device", "cpu", "--json"]
    assert main(argv) == 0
    res = generate_reports(tmp_path / "reports", runs_dir=runs, table_ids=("dite-T5",))
    [t5] = res.tables
    assert len(t5.rows) == 16 and sum(r.local is not None and "AP" in r.local.metrics for r in t5.rows) == 4
    md = (tmp_path / "reports" / "tables" / "dite-T5.md").read_text()
    assert md.count("(@64x64, 1 ep)") >= 8  # the row table and the G x N block
    assert parse_hw("64x64") == (64, 64)


def test_latency_report_writes_its_files(tmp_path):
    import torch

    from hrbench.complexity.measurer import default_measurer
    from hrbench.reports.bench import run_bench

    res = run_bench(tmp_path / "bench", device="cpu", batch=2, models=["dpn1_32"], repeats=2)
    [row] = res["rows"]
    assert row["model"] == "dpn1_32" and row["latency_ms"] > 0 and row["throughput"] > 0
    assert row["ap"] == "50.6" and 0.1 < row["params_M"] < 1.0
    m = default_measurer("dpn1_32", {}, (256, 192), 17)  # the figures `hrbench tables` prints
    assert (row["params_M"], row["paper_gflops"], row["macs_G"]) == (m.params / 1e6, m.paper_mflops / 1024,
                                                                      m.macs / 1e9)
    assert row["launches"] > 0 and row["mb_fp32"] > 0
    assert row["intensity"] == pytest.approx(row["macs_G"] * 1e3 / row["mb_fp32"], abs=1e-4)  # MACs/byte, one pass
    for name in ("latency.md", "latency.csv", "ap-vs-latency.png", "ap-vs-latency.svg", "latency-vs-macs-bytes.png",
                 "latency-vs-macs-bytes.svg"):
        assert (tmp_path / "bench" / name).exists(), name
    md = (tmp_path / "bench" / "latency.md").read_text()
    assert "| dpn1_32 | dpn |" in md and "MB moved (fp32)" in md and "MACs/byte" in md
    assert f"torch {torch.__version__}" in md


def test_latency_report_refuses_a_model_it_cannot_count(tmp_path, monkeypatch):
    """A model whose forward fails is a one-line error naming it, not a row of zeros."""
    import torch

    from hrbench.errors import HrbenchError
    from hrbench.reports import bench

    class Broken(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("no forward here")

    monkeypatch.setattr(bench, "create_model", lambda name, num_keypoints: Broken())
    with pytest.raises(HrbenchError, match="dpn1_32 cannot run on a 256x192 input: RuntimeError: no forward here"):
        bench.run_bench(tmp_path / "bench", device="cpu", models=["dpn1_32"], repeats=2)
    assert not (tmp_path / "bench").exists()


def test_ablate_table_uses_the_tables_own_gflops_divisor():
    """Dite-HRNet Table 5 prints MFLOPs / 1000 (G=4211 N=1244: 240.30 -> 0.24, where / 1024 gives 0.2347 and
    would print 0.23); the DPN slides print / 1024. The ablate table divides as the source table does."""
    from rich.console import Console

    from hrbench.cli.ablate import _ablate_table
    from hrbench.reference import giga_of

    assert giga_of("dite", "T5") == 1000 and giga_of("dpn", "T4") == 1024
    cell = {"labels": {"G": "4,2,1,1", "N": "1,2,4,4"}, "model": "ditehrnet_18", "params": 1_200_000,
            "paper_mflops": 240.30, "macs": None, "error": None,
            "published": {"params_M": "1.2", "flops": "0.24", "flops_unit": "G", "metric": "AP", "value": "65.6"}}
    result = {"grid": "dite-table5", "source": "dite", "table": "T5", "description": "", "giga": 1000, "cells": [cell]}
    console = Console(width=200, record=True)
    console.print(_ablate_table(result, trained=False))
    text = console.export_text()
    assert "0.24/0.2403G" in text and "0.2347" not in text
