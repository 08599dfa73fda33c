"""The deployment comparison of ``make bench`` (hrbench.reports.deploy): structure, ratios, safety.

Timings are not asserted (a shared machine); what is checked is that every (model, mode) pair was
timed, the ratios are the printed figures' quotients, the ORT graph agrees with eager, and the report
refuses to replace a file hrbench did not write.
"""

from __future__ import annotations

import csv

import pytest

from hrbench.errors import ConfigError
from hrbench.reports.deploy import run_deploy

MODELS = ["litehrnet_18", "shufflenetv2_1x"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("deploy")
    return out, run_deploy(out, models=MODELS, rounds=3, input_hw=(128, 96))


def test_every_pair_timed_and_ratios_are_quotients(report):
    out, res = report
    rows = {r["model"]: r for r in res["rows"]}
    assert list(rows) == MODELS
    base = rows["litehrnet_18"]
    for r in rows.values():
        assert r["eager"] > 0 and r["ort"] > 0
        assert r["ort_diff"] <= 1e-4
        assert r["eager_vs_base"] == pytest.approx(r["eager"] / base["eager"])
        assert r["ort_vs_base"] == pytest.approx(r["ort"] / base["ort"])
    assert base["eager_vs_base"] == 1.0 and base["ort_vs_base"] == 1.0
    # published AP is printed only at the input it was published for (256x192), not at 128x96
    assert all(r["ap"] == "" for r in rows.values())
    assert rows["shufflenetv2_1x"]["params_M"] == pytest.approx(7.550965)


def test_files_and_csv_agree(report):
    out, res = report
    assert {p.name for p in out.iterdir()} >= {"deploy.md", "deploy.csv", "ap-vs-deploy-latency.png",
                                               "ap-vs-deploy-latency.svg"}
    table = list(csv.DictReader((out / "deploy.csv").open(encoding="utf-8")))
    assert [t["model"] for t in table] == MODELS
    for t, r in zip(table, res["rows"], strict=True):
        assert float(t["ort / eager"]) == pytest.approx(r["ort"] / r["eager"], abs=6e-4)
    md = (out / "deploy.md").read_text(encoding="utf-8")
    assert "3 rounds" in md and "Others' CPU share" in md


def test_refuses_a_foreign_file(tmp_path):
    (tmp_path / "deploy.md").write_text("the user's notes\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="deploy.md"):
        run_deploy(tmp_path, models=MODELS[:1], rounds=1, input_hw=(128, 96))
    assert (tmp_path / "deploy.md").read_text(encoding="utf-8") == "the user's notes\n"
    assert not (tmp_path / "deploy.csv").exists()
