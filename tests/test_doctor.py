"""``hrbench doctor --device cpu``: every CPU path passes; CUDA-only paths are skipped with a reason."""

from __future__ import annotations

import json

import pytest

from hrbench.cli import main


@pytest.mark.slow
def test_doctor_cpu_passes(capsys):
    code = main(["doctor", "--device", "cpu", "--steps", "5", "--json"])
    report = json.loads(capsys.readouterr().out)
    rows = {c["name"]: c for c in report["checks"]}
    print("\n" + "\n".join(f"{c['status']:4s} {c['seconds']:5.1f}s {c['name']}: {c['detail']}" for c in rows.values()))
    assert code == 0 and report["ok"] and report["device"] == "cpu"
    must_pass = ("train fp32", "train bf16 autocast", "train fp16 + GradScaler", "channels-last training",
                 "--gpu-aug pipeline", "evaluation + flip test", "DDP (torchrun, 2 processes)")
    assert all(rows[name]["status"] == "pass" for name in must_pass), rows
    assert rows["CUDA-graph inference"]["status"] == "skip" and "CUDA" in rows["CUDA-graph inference"]["detail"]
    assert "->" in rows["train fp32"]["detail"]  # the loss before -> after is reported


def test_doctor_refuses_bad_input(capsys):
    assert main(["doctor", "--arch", "nonet"]) == 2
    assert "nonet" in capsys.readouterr().err
    assert main(["doctor", "--steps", "1", "--device", "cpu"]) == 2
    assert "--steps" in capsys.readouterr().err
