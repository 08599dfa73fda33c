"""``hrbench bench-data``: one worker count (--workers, as everywhere) or several (--worker-counts)."""

from __future__ import annotations

import json

import pytest
from conftest import cli_error

from hrbench.cli import main

ARGS = ["--input", "64x48", "--batch", "2", "--batches", "1", "--device", "cpu", "--threads", "1", "--json"]


def run_json(capsys, root, *argv: str) -> dict:
    assert main(["bench-data", str(root), *ARGS, *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_worker_counts_compare_each(synth, capsys):
    d = run_json(capsys, synth, "--worker-counts", "0,1", "--pipelines", "cpu")
    assert [(r["pipeline"], r["workers"]) for r in d["rows"]] == [("cpu", 0), ("cpu", 1)]
    assert all(r["samples"] == 2 and r["per_worker"] == r["samples_per_s"] for r in d["rows"])
    assert d["device_step_samples_per_s"] is None  # no tensor pipeline asked for
    d = run_json(capsys, synth, "--worker-counts", "0-1", "--pipelines", "tensor")
    assert [(r["pipeline"], r["workers"]) for r in d["rows"]] == [("tensor", 0), ("tensor", 1)]
    assert d["device_step_samples_per_s"] > 0


def test_workers_is_one_count(synth, capsys):
    d = run_json(capsys, synth, "--workers", "1", "--pipelines", "cpu")
    assert [(r["pipeline"], r["workers"]) for r in d["rows"]] == [("cpu", 1)]


@pytest.mark.parametrize("argv, message", [
    (["--workers", "1", "--worker-counts", "0,1"], "not both"),
    (["--worker-counts", "1,x"], "malformed --worker-counts '1,x'"),
    (["--worker-counts", "2-1"], "invalid --worker-counts '2-1'"),
    (["--workers", "-1"], "invalid --workers -1"),
    (["--dataset", "lsp"], "unknown --dataset 'lsp'"),
])
def test_errors(synth, capsys, argv, message):
    assert main(["bench-data", str(synth), *argv]) == 2
    assert message in cli_error(capsys)
