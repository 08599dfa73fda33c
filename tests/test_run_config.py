"""One options object, one run configuration: ``--print-config``, ``config.json``, resume's refusals and
``summary.json`` come from :class:`TrainOptions` / :class:`RunConfig`, and what an earlier version wrote
(``tests/old_runs``, hrbench at commit 6cbd94b) still prints, loads and resumes the same."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest
import torch

from hrbench.checkpoint import read_checkpoint
from hrbench.engine import RunConfig, TrainOptions, resolve_config, train
from hrbench.engine.resume import OPTION_NAMES, saved_value
from hrbench.engine.run_config import EXTENDS, FREE, LOCATES, REFUSED

OLD = Path(__file__).parent / "old_runs"
README = Path(__file__).parent.parent / "README.md"
REFUSED_OPTIONS = ["dataset", "input_hw", "batch", "lr", "seed", "amp", "channels_last", "gpu_aug", "val_interval",
                   "val_flip", "overrides", "train_overrides"]


def test_every_option_says_what_resume_does_with_it():
    rules = {f.name: f.metadata["on_resume"] for f in dataclasses.fields(TrainOptions)}
    assert set(rules.values()) == {REFUSED, EXTENDS, FREE, LOCATES}
    assert [n for n, r in rules.items() if r == REFUSED] == REFUSED_OPTIONS == list(OPTION_NAMES)
    assert [n for n, r in rules.items() if r == EXTENDS] == ["epochs"]
    cfg = resolve_config(TrainOptions("lite18", input_hw=(128, 96), batch=4), world_size=1)
    assert [saved_value(cfg, n) for n in ("input_hw", "batch", "lr", "dataset")] == \
        [(128, 96), 4, pytest.approx(2e-3 * 4 / 512), "coco"]
    # the README's resume rules name the same flags
    text = " ".join(README.read_text().split())
    listed = re.search(r"An option given with another value \(([^)]*)\) is refused", text).group(1)
    assert sorted(re.findall(r"`([^`]*)`", listed)) == sorted({f.split()[0] for f in OPTION_NAMES.values()})
    free = re.search(r"may extend a run[^;]*; (.*?) may change", text).group(1)
    flags = {f.metadata["flag"] for f in dataclasses.fields(TrainOptions) if f.metadata["on_resume"] == FREE}
    assert set(re.findall(r"`([^`]*)`", free)) <= flags


def test_the_cli_builds_the_options_from_exactly_its_flags():
    from typer.main import get_command

    from hrbench.cli import app

    cmd = get_command(app).commands["train"]
    cli = {o.upper() if not o.startswith("-") else o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
    flags = {f.metadata["flag"].split()[0] for f in dataclasses.fields(TrainOptions)}
    assert flags - cli == {"stop_after", "log_interval"}  # Python only
    assert cli - flags == {"--no-channels-last", "--no-gpu-aug", "--no-val-flip", "--no-tensorboard", "--print-config",
                           "--json"}


def test_options_and_config_round_trip(tmp_path):
    o = TrainOptions("dite18", tmp_path, "mpii", input_hw=[256, 256], batch=8, amp="bf16", overrides={"groups": 2},
                     train_overrides={"warmup_iters": 3}, out=tmp_path / "runs", name="r")
    assert TrainOptions.from_dict(json.loads(json.dumps(o.to_dict()))) == o
    cfg = resolve_config(o, world_size=2)
    d = cfg.to_dict()
    assert RunConfig.from_dict(json.loads(json.dumps(d))) == cfg
    assert (d["input"], d["train"]["batch_per_process"], d["train"]["total_batch"], d["train"]["epochs"]) == \
        ([256, 256], 8, 16, 260)
    with pytest.raises(Exception, match="not an hrbench run configuration"):
        RunConfig.from_dict({**d, "format": "something-else"})


@pytest.mark.parametrize("name, args", [
    ("lite18", ["lite18", "--dataset", "mpii", "--epochs", "9", "--batch", "4", "--set", "train.warmup_iters=7",
                "--amp", "bf16"]),
    ("dite18", ["dite18", "--input", "384x288"]),
    ("w32", ["hrnet_w32"]),
    ("dpn", ["dpn2_64", "--dataset", "mpii"]),
])
def test_print_config_is_what_the_earlier_version_printed(name, args, capsys, monkeypatch):
    from hrbench.cli import main

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert main(["train", *args, "--print-config", "--name", "fixed"]) == 0
    out = capsys.readouterr().out
    assert out == (OLD / "print_config" / f"{name}.json").read_text()
    d = json.loads(out)
    assert _json(RunConfig.from_dict(d).to_dict()) == d


def _json(obj):
    return json.loads(json.dumps(obj))


def _same_as_config(summary: dict, config: dict) -> None:
    """summary.json's copies of the configuration are the configuration's values."""
    assert {k: summary[k] for k in ("arch", "overrides", "dataset", "input", "keypoints", "seed", "metric")} == \
        {k: config[k] for k in ("arch", "overrides", "dataset", "input", "keypoints", "seed", "metric")}
    t = config["train"]
    assert (summary["epochs"], summary["world_size"], summary["total_batch"], summary["lr"], summary["recipe"]) == \
        (t["epochs"], t["world_size"], t["total_batch"], t["lr"], config["recipe"]["source"])


def test_run_folder_of_an_earlier_version_refuses_and_resumes(tiny_arch, synth, tmp_path, capsys):
    from hrbench.cli import main

    old = tmp_path / "old-run"
    shutil.copytree(OLD / "tiny-6cbd94b", old)
    config_text = (old / "config.json").read_text()
    saved = json.loads(config_text)
    assert _json(RunConfig.from_dict(saved).to_dict()) == saved
    ckpt = read_checkpoint(old / "checkpoints" / "last.pt")
    assert RunConfig.from_dict(ckpt["config"]).to_dict() == ckpt["config"]

    # the same refusal, word for word, as the version that wrote the run
    refused = ["--batch", "8", "--lr", "1e-3", "--seed", "3", "--input", "64x64", "--set", "width=4", "--amp", "bf16",
               "--set", "train.gamma=0.5", "--no-val-flip", "--channels-last", "--gpu-aug", "--val-interval", "2",
               "--dataset", "coco", "--epochs", "5"]
    assert main(["train", tiny_arch, "--data", str(synth), "--resume", "--out", str(tmp_path), "--name", "old-run",
                 "--device", "cpu", "--workers", "0", *refused]) == 2
    expected = (OLD / "tiny-6cbd94b.refusal.txt").read_text().strip().replace("RUN", str(old))
    assert capsys.readouterr().err.strip().splitlines()[-1] == expected

    args = dict(device="cpu", workers=0, progress=False, threads=1)
    resumed = train(tiny_arch, synth, resume=old, **args)
    straight = train(tiny_arch, synth, epochs=2, batch=4, input_hw=(64, 48), out=tmp_path, name="straight", lr=5e-3,
                     **args)
    assert resumed["status"] == "finished" and resumed["epochs_done"] == 2
    assert resumed["iterations"] == straight["iterations"]
    a = read_checkpoint(old / "checkpoints" / "last.pt")["state_dict"]
    b = read_checkpoint(tmp_path / "straight" / "checkpoints" / "last.pt")["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)  # old first epoch + today's second = today's two
    assert resumed["final"]["val_loss"] == straight["final"]["val_loss"]
    assert (old / "config.json").read_text() == config_text  # the run's own configuration, untouched
    assert resumed["created"] == json.loads((OLD / "tiny-6cbd94b" / "summary.json").read_text())["created"]
    for run, summary in ((old, resumed), (tmp_path / "straight", straight)):
        _same_as_config(summary, json.loads((run / "config.json").read_text()))
        assert json.loads((run / "summary.json").read_text()) == summary
