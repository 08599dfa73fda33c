"""Nothing lost, nothing mixed: resume refuses changed options, run folders are locked and
recovered, diverged runs stop without touching checkpoints, bad input is one line + exit 2."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hrbench.cli import main
from hrbench.engine import train
from hrbench.engine import trainer as trainer_mod
from hrbench.errors import ConfigError, DivergedError, one_line
from hrbench.fsutil import FolderLock, check_output_dir


def _train(root, out, name, **kw):
    args = dict(epochs=2, batch=4, input_hw=(64, 48), out=out, name=name, device="cpu", workers=0, lr=5e-3,
                progress=False)
    return train("tiny_engine_test", root, **{**args, **kw})


def _cli(tiny_arch, synth, out, *extra):
    return ["train", tiny_arch, "--data", str(synth), "--input", "64x48", "--out", str(out), "--device", "cpu",
            "--workers", "0", "--batch", "4", "--lr", "5e-3", *extra]


def _tiny_cli(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A script that runs ``hrbench`` with ``tiny_engine_test`` registered, for separate processes."""
    script = tmp_path / "run.py"
    script.write_text(
        "import sys\nfrom conftest import TinyConfig, tiny_recipe\nfrom hrbench import registry\n"
        "from hrbench.cli import main\nregistry.list_models()\n"
        "registry._REGISTRY['tiny_engine_test'] = registry.ModelEntry('tiny_engine_test', TinyConfig, paper='test', "
        "recipe=tiny_recipe)\n"
        "sys.exit(main(sys.argv[1:]))\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent)}
    return script, env


def _one_error_line(capsys) -> str:
    """The error line of a failed command: exactly one, last on stderr (progress may precede it)."""
    err = capsys.readouterr().err.strip()
    errors = [ln for ln in err.splitlines() if "error" in ln.lower() or "Traceback" in ln]
    assert len(errors) == 1 and err.splitlines()[-1].startswith("hrbench: error:"), err
    return errors[0]


# ------------------------------------------------------------------------------------------- resume
def test_resume_refuses_each_changed_option_in_one_line(tiny_arch, synth, tmp_path, capsys):
    assert main(_cli(tiny_arch, synth, tmp_path, "--epochs", "1", "--name", "r", "--no-progress")) == 0
    capsys.readouterr()
    resume = ["train", tiny_arch, "--out", str(tmp_path), "--name", "r", "--resume", "--device", "cpu",
              "--workers", "0", "--no-progress"]
    for extra, named in ((["--lr", "1"], "--lr 1.0 (the run has 0.005)"),
                         (["--batch", "2"], "--batch 2 (the run has 4)"),
                         (["--amp", "bf16"], "--amp bf16 (the run has fp32)"),
                         (["--input", "128x96"], "--input 128x96 (the run has 64x48)"),
                         (["--dataset", "mpii"], "--dataset mpii (the run has coco)"),
                         (["--seed", "3"], "--seed 3 (the run has 0)"),
                         (["--channels-last"], "--channels-last True (the run has False)"),
                         (["--gpu-aug"], "--gpu-aug True (the run has False)"),
                         (["--val-interval", "2"], "--val-interval 2 (the run has 1)"),
                         (["--set", "width=3"], "--set width=3 (the run has 8)"),
                         (["--set", "train.gamma=0.5"], "--set train.gamma=0.5 (the run has 0.1)")):
        assert main(resume + extra) == 2, extra
        err = _one_error_line(capsys)
        assert "cannot resume" in err and named in err, (extra, err)
    # two differences are both named; the same values again are accepted; --epochs extends the run
    assert main(resume + ["--lr", "1", "--seed", "3"]) == 2
    err = _one_error_line(capsys)
    assert "--lr 1.0" in err and "--seed 3" in err
    assert main(resume + ["--lr", "5e-3", "--batch", "4", "--input", "64x48", "--epochs", "2", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "finished" and summary["epochs_done"] == 2 and summary["epochs"] == 2
    assert main(resume + ["--epochs", "1"]) == 2  # cannot cut below what is done
    assert "already trained 2 epochs" in _one_error_line(capsys)


def test_resume_of_a_folder_without_checkpoint_says_so(tiny_arch, tmp_path, capsys):
    (tmp_path / "k").mkdir()
    assert main(["train", tiny_arch, "--out", str(tmp_path), "--name", "k", "--resume"]) == 2
    assert "no checkpoints/last.pt" in _one_error_line(capsys)


# ------------------------------------------------------------------------------------------- run folders
def test_a_run_folder_in_use_is_refused(tiny_arch, synth, tmp_path, capsys):
    lock = FolderLock(tmp_path / "busy")
    lock.acquire()  # another hrbench process (flock is per open file: same process, other descriptor)
    try:
        assert main(_cli(tiny_arch, synth, tmp_path, "--epochs", "1", "--name", "busy")) == 2
        assert "in use by hrbench pid" in _one_error_line(capsys)
    finally:
        lock.release()
    assert {p.name for p in (tmp_path / "busy").iterdir()} == {".lock"}  # nothing of the refused run


def test_two_concurrent_runs_with_one_name_do_not_mix(tiny_arch, synth, tmp_path):
    """Two real processes start the same run name at once: exactly one trains, the other exits 2."""
    script, env = _tiny_cli(tmp_path)
    cmd = [sys.executable, str(script), *_cli("tiny_engine_test", synth, tmp_path, "--epochs", "1", "--name", "same",
                                              "--no-progress", "--seed", "0")]
    procs = [subprocess.Popen(cmd + (["--seed", str(i)] if i else []), env=env, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert "in use by" in loser or "already exists" in loser
    config = json.loads((tmp_path / "same" / "config.json").read_text())
    winner_seed = config["seed"]
    ckpt = torch.load(tmp_path / "same" / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["config"]["seed"] == winner_seed  # config and checkpoint come from the same run


def test_a_folder_left_by_a_run_killed_before_its_first_checkpoint_is_reused(tiny_arch, synth, tmp_path):
    """Cleared only with hrbench's marker (written at the claim); the same folder without it is refused."""
    left = tmp_path / "killed"
    (left / "checkpoints").mkdir(parents=True)
    (left / "log.txt").write_text("started\n")
    with pytest.raises(ConfigError, match="hrbench did not create it"):
        _train(synth, tmp_path, "killed", epochs=1)
    assert sorted(p.name for p in left.rglob("*")) == ["checkpoints", "log.txt"]
    assert (left / "log.txt").read_text() == "started\n"
    (left / ".hrbench-run").write_text("a run folder hrbench created\n")
    (left / "log.txt").write_text("started\n")
    (left / "checkpoints" / ".last.pt.abc123.tmp").write_bytes(b"half a checkpoint")
    summary = _train(synth, tmp_path, "killed", epochs=1)
    assert summary["status"] == "finished"
    assert not list((left / "checkpoints").glob(".*.tmp"))
    assert "cleared" in (left / "log.txt").read_text() and "started" not in (left / "log.txt").read_text()


def test_resume_removes_partial_files_of_a_killed_save(tiny_arch, synth, tmp_path):
    _train(synth, tmp_path, "p", stop_after=1)
    orphan = tmp_path / "p" / "checkpoints" / ".last.pt.k9x2.tmp"
    orphan.write_bytes(b"killed during torch.save")
    s = _train(synth, tmp_path, "p", resume=True)
    assert s["status"] == "finished" and not orphan.exists()


def test_run_files_get_ordinary_permissions(tiny_arch, synth, tmp_path):
    old = os.umask(0o022)
    try:
        _train(synth, tmp_path, "m", epochs=1)
    finally:
        os.umask(old)
    run = tmp_path / "m"
    for f in (run / "config.json", run / "summary.json", run / "checkpoints" / "last.pt"):
        assert stat.S_IMODE(f.stat().st_mode) == 0o644, f


# ------------------------------------------------------------------------------------------- divergence
def test_divergence_in_the_first_epoch_stops_and_leaves_nothing(tiny_arch, synth, tmp_path, capsys):
    assert main(_cli(tiny_arch, synth, tmp_path / "runs", "--epochs", "2", "--name", "d", "--lr", "1e12",
                     "--set", "train.warmup_iters=0")) == 3
    err = _one_error_line(capsys)
    assert "training diverged" in err and "lower --lr" in err
    assert not (tmp_path / "runs").exists()


def test_divergence_later_keeps_the_last_good_checkpoint(tiny_arch, synth, tmp_path, monkeypatch):
    _train(synth, tmp_path, "g", epochs=3, stop_after=1)
    run = tmp_path / "g"
    before = {p: p.read_bytes() for p in (run / "checkpoints" / "last.pt", run / "checkpoints" / "best.pt",
                                          run / "summary.json")}
    real = trainer_mod.lr_at
    monkeypatch.setattr(trainer_mod, "lr_at",
                 lambda cfg, epoch, it, *rest: 1e12 if epoch >= 1 else real(cfg, epoch, it, *rest))
    with pytest.raises(DivergedError):
        _train(synth, tmp_path, "g", resume=True)
    assert all(p.read_bytes() == data for p, data in before.items())  # untouched: no NaN epoch saved
    summary = json.loads((run / "summary.json").read_text())  # still strict JSON
    assert summary["epochs_done"] == 1


def test_nan_validation_metric_stops_the_run(tiny_arch, synth, tmp_path, monkeypatch):
    monkeypatch.setattr(trainer_mod.Trainer, "val_loss", lambda self: float("nan"))
    with pytest.raises(DivergedError, match="val_loss nan"):
        _train(synth, tmp_path, "v", epochs=1)
    assert not (tmp_path / "v").exists()


# ------------------------------------------------------------------------------------------- bad input
def test_output_locations_are_checked_before_any_work(tiny_arch, synth, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for argv in (_cli(tiny_arch, synth, blocker / "runs", "--epochs", "1"),
                 ["tables", "--out", str(blocker / "reports")],
                 ["ablate", "dite-table5", "--train", "--data", str(synth), "--out", str(blocker / "x")]):
        assert main(argv) == 2, argv
        assert "is a file, not a folder" in _one_error_line(capsys)
    with pytest.raises(ConfigError, match="is a file"):
        check_output_dir(blocker)
    assert blocker.read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == ["file"]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root to run a child as an unprivileged user (root may write anywhere)")
def test_a_read_only_folder_is_refused_for_an_unprivileged_user(tmp_path):
    ro = Path("/tmp") / f"hrbench-ro-{os.getpid()}"
    ro.mkdir(mode=0o555)
    try:
        code = ("from hrbench.fsutil import check_output_dir\nfrom hrbench.errors import ConfigError\n"
                f"try:\n    check_output_dir('{ro}/runs')\nexcept ConfigError as e:\n    print(e)\n")
        out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c",
                              code], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
        if "Permission denied" not in out.stdout and "No module named" in out.stderr:
            pytest.skip("the unprivileged user cannot read this checkout")
        assert "Permission denied" in out.stdout, (out.stdout, out.stderr)
    finally:
        ro.rmdir()


def test_input_that_does_not_fit_the_network_fails_before_the_banner(synth, tmp_path, capsys):
    assert main(["train", "lite18", "--data", str(synth), "--input", "100x76", "--out", str(tmp_path / "r"),
                 "--device", "cpu"]) == 2
    err = _one_error_line(capsys)
    assert "--input 100x76" in err and "multiples of 32" in err
    assert not (tmp_path / "r").exists()


def _corrupt(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])  # truncated image


def test_a_corrupt_val_image_is_found_before_training(tiny_arch, synth, tmp_path, capsys):
    data = tmp_path / "coco"
    shutil.copytree(synth, data)
    bad = sorted((data / "images" / "val").iterdir())[1]
    _corrupt(bad)
    assert main(_cli(tiny_arch, data, tmp_path / "runs", "--epochs", "1")) == 2
    err = _one_error_line(capsys)
    assert bad.name in err
    assert not (tmp_path / "runs").exists()


def test_a_corrupt_train_image_in_a_worker_is_one_line(tiny_arch, synth, tmp_path, capsys):
    data = tmp_path / "coco"
    shutil.copytree(synth, data)
    bad = sorted((data / "images" / "train").iterdir())[0]
    bad.write_bytes(b"not an image at all" * 10)  # undecodable (a truncated JPEG decodes grey, as in the reference)
    argv = _cli(tiny_arch, data, tmp_path / "runs", "--epochs", "1")
    argv[argv.index("--workers") + 1] = "2"
    assert main(argv) == 2
    err = _one_error_line(capsys)
    assert bad.name in err and "Traceback" not in err and "worker" not in err
    assert not (tmp_path / "runs").exists()


def test_one_line_of_a_worker_error():
    text = ("Caught DataError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
            '  File "x.py", line 1, in f\n    raise DataError(msg)\nhrbench.errors.DataError: img.jpg: corrupt image')
    assert one_line(RuntimeError(text)) == "img.jpg: corrupt image"
    assert one_line(ValueError("plain message")) == "plain message"


def test_eval_finds_a_detection_file_under_the_data_root(tiny_arch, synth, tmp_path, capsys):
    s = _train(synth, tmp_path, "e", epochs=1)
    gt = json.loads((synth / "annotations" / "person_keypoints_val.json").read_text())
    dets = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 0.9}
            for a in gt["annotations"]]
    data = tmp_path / "coco"
    shutil.copytree(synth, data)
    (data / "annotations" / "dets.json").write_text(json.dumps(dets))
    argv = ["eval", tiny_arch, "--checkpoint", s["checkpoints"]["last"], "--data", str(data), "--device", "cpu",
            "--workers", "0", "--json"]
    assert main(argv + ["--det-file", "annotations/dets.json"]) == 0
    assert json.loads(capsys.readouterr().out)["box_source"] == "detections"
    assert main(argv + ["--det-file", "annotations/none.json"]) == 2
    assert "looked in the working folder and under" in _one_error_line(capsys)


def test_version_and_interrupt(monkeypatch, capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("hrbench ")
    import hrbench.engine

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(hrbench.engine, "train", interrupted)
    assert main(["train", "lite18", "--data", "."]) == 130
    assert capsys.readouterr().err.strip() == "hrbench: interrupted"


def test_threads_option(monkeypatch):
    from hrbench.threads import configure_threads, default_threads

    before = torch.get_num_threads()
    try:
        assert configure_threads("1") == (1, "--threads") and torch.get_num_threads() == 1
        assert configure_threads(None) == (1, "unchanged")  # the Python API leaves the caller's setting
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        assert default_threads() == (2, "OMP_NUM_THREADS")
        monkeypatch.delenv("OMP_NUM_THREADS")
        n, why = default_threads()
        assert 1 <= n <= os.cpu_count() and "busy" in why
        for bad in ("0", "-1", "two"):
            with pytest.raises(ConfigError, match="--threads"):
                configure_threads(bad)
    finally:
        torch.set_num_threads(before)


def test_auto_threads_are_shared_by_the_processes_of_a_node(monkeypatch):
    """8 usable CPUs, 1.4 busy: 7 free (rounded), 3 each for 2 local ranks, 1 each for 8."""
    from hrbench import threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "usable_cpus", lambda: 8)
    monkeypatch.setattr(threads, "busy_cpus", lambda: 1.4)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert threads.default_threads() == (7, "8 CPU(s), 1.4 busy")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert threads.default_threads() == (3, "8 CPU(s), 1.4 busy, 2 processes on this node")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert threads.default_threads()[0] == 1

def test_eval_out_is_checked_first(tiny_arch, synth, tmp_path, capsys):
    s = _train(synth, tmp_path, "o", epochs=1)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["eval", tiny_arch, "--checkpoint", s["checkpoints"]["last"], "--data", str(synth), "--device", "cpu",
                 "--workers", "0", "--out", str(blocker / "res")]) == 2
    assert "is a file, not a folder" in _one_error_line(capsys)


@pytest.mark.slow
def test_kill_9_at_any_moment_leaves_a_run_that_resumes_or_restarts(synth, tmp_path):
    """Real SIGKILLs at several moments of a run (before, during and after checkpoint saves): the
    same command with --resume (when a checkpoint exists) or without (when none does) then finishes,
    and no partial .tmp file survives."""
    import signal
    import time

    script, env = _tiny_cli(tmp_path)
    base = [sys.executable, str(script), *_cli("tiny_engine_test", synth, tmp_path, "--epochs", "6", "--name", "k",
                                               "--no-progress", "--no-val-flip")]
    run = tmp_path / "k"
    for delay in (2.5, 4.0, 5.5, 7.0):
        resume = ["--resume"] if (run / "checkpoints" / "last.pt").exists() else []
        proc = subprocess.Popen(base + resume, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    resume = ["--resume"] if (run / "checkpoints" / "last.pt").exists() else []
    done = subprocess.run(base + resume, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["epochs_done"] == 6
    assert not list(run.rglob("*.tmp"))


def _summary(path: Path, **fields) -> None:
    from hrbench.engine.runs import SUMMARY_FORMAT

    path.mkdir(parents=True)
    (path / "summary.json").write_text(json.dumps({"format": SUMMARY_FORMAT, "name": path.name, **fields}))


def test_runs_registry_names_a_damaged_summary_instead_of_dropping_it(tmp_path, capsys):
    from hrbench.engine import list_runs
    from hrbench.errors import DataError

    root = tmp_path / "runs"
    (root / "data" / "images").mkdir(parents=True)  # not a run: passed over
    _summary(root / "a")
    assert [r["name"] for r in list_runs(root)] == ["a"]
    (root / "b").mkdir()
    (root / "b" / "summary.json").write_text('{"format": "hrbench-run-v1", "name": ')  # damaged
    with pytest.raises(DataError, match=r"run summary .*b/summary.json is not valid JSON"):
        list_runs(root)
    (root / "b" / "summary.json").write_text('{"format": "something-else"}')
    with pytest.raises(DataError, match=r"b/summary.json is not an hrbench run summary \(format 'something-else'"):
        list_runs(root)
    # the same through the CLI: one line, exit 2, no traceback, nothing written
    assert main(["tables", "--runs", str(root), "--out", str(tmp_path / "reports")]) == 2
    err = capsys.readouterr().err
    assert "b/summary.json is not an hrbench run summary" in err and "Traceback" not in err
    assert not (tmp_path / "reports").exists()


def test_metrics_log_skips_only_a_torn_last_line(tmp_path):
    from hrbench.engine import read_metrics
    from hrbench.errors import DataError

    (tmp_path / "metrics.jsonl").write_text('{"event": "train", "loss": 1.0}\n{"event": "train", "lo')
    assert read_metrics(tmp_path) == [{"event": "train", "loss": 1.0}]
    (tmp_path / "metrics.jsonl").write_text('{"event": "train", "lo\n{"event": "train", "loss": 1.0}\n')
    with pytest.raises(DataError, match=r"metrics.jsonl: line 1 is not JSON"):
        read_metrics(tmp_path)


def test_resuming_cuts_a_half_written_line_so_appends_stay_lines(tmp_path):
    from hrbench.engine import read_metrics
    from hrbench.engine.runs import RunDir

    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "metrics.jsonl").write_text('{"event": "train", "loss": 1.0}\n{"event": "tra')  # killed mid-append
    (tmp_path / "log.txt").write_text("epoch 1\nepo")
    run = RunDir(tmp_path)
    notes = run.claim_existing()
    run.append_metrics({"event": "resume", "epoch": 1})
    run.append_log("resumed")
    run.release()
    assert notes == ["cut the half-written last line of metrics.jsonl", "cut the half-written last line of log.txt"]
    assert read_metrics(tmp_path) == [{"event": "train", "loss": 1.0}, {"event": "resume", "epoch": 1}]
    assert (tmp_path / "log.txt").read_text() == "epoch 1\nresumed\n"
