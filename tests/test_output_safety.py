"""Issue 20: hrbench never deletes or replaces what it did not write (real FIFOs, character devices, a
real full tmpfs, real SIGTERM to a real training process, foreign files in every output location)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from hrbench.checkpoint import load_checkpoint, save_checkpoint
from hrbench.cli import main
from hrbench.errors import CheckpointError, ConfigError, DiskFullError, HrbenchError
from hrbench.fsutil import FolderLock, atomic_write, write_json_atomic
from hrbench.launch import parse_slurm_opts, requeue_as_timeout, sbatch_script
from hrbench.manifest import MANIFEST, commit, staging
from hrbench.reports import generate_reports

TESTS = Path(__file__).parent


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _plant(root: Path, rels: list[str]) -> dict[str, bytes]:
    """Foreign files (content unique to each) at ``rels`` under ``root``; returns them."""
    files = {}
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        data = f"the user's own {rel} \u2014 not hrbench's\n".encode()
        (root / rel).write_bytes(data)
        files[rel] = data
    return files


def _still_there(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        assert (root / rel).read_bytes() == data, rel


def _one_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("hrbench: error:") and not any("Traceback" in ln for ln in err), err
    return err[-1]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("d") / "coco"
    assert main(["data", "synth", "--dataset", "coco", "--out", str(root), "--train", "8", "--val", "3", "-q"]) == 0
    return root


@pytest.fixture
def chardev(tmp_path) -> Path:
    """A real character device (a copy of /dev/full's node, 1:7) in the test's folder, so that a failing
    check would replace this node, never the machine's /dev/full."""
    path = tmp_path / "full"
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    except PermissionError:
        pytest.skip("creating a device node needs root (mknod); the FIFO tests cover the same check")
    return path


@pytest.fixture
def full_fs(tmp_path):
    """A real 64 KiB tmpfs (root only), unmounted afterwards."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()})")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


# ------------------------------------------------------------------- class 1a: run folders hrbench did not make
def test_train_refuses_a_folder_it_did_not_create_and_clears_only_its_own(tiny_arch, data, tmp_path, capsys):
    project = tmp_path / "runs" / "mine"
    files = _plant(project, ["notes.md", "src/model.py", "checkpoints/other.pt"])
    args = ["train", tiny_arch, "--data", str(data), "--input", "64x48", "--out", str(tmp_path / "runs"),
            "--name", "mine", "--device", "cpu", "--workers", "0", "--batch", "4", "--epochs", "1", "--no-progress"]
    assert main(args) == 2
    assert "hrbench did not create it" in _one_error(capsys)
    assert _snapshot(project) == files  # nothing added, nothing removed
    # --data inside the folder: the data set is never cleared either
    inside = ["train", tiny_arch, "--data", str(data), "--input", "64x48", "--out", str(data.parent),
              "--name", data.name, "--device", "cpu", "--workers", "0", "--batch", "4", "--epochs", "1"]
    before = _snapshot(data)
    assert main(inside) == 2
    assert _snapshot(data) == before


# ------------------------------------------------------------------- class 1b: shared output folders (manifest)
def _hash_measurer(model, overrides, input_hw, k):
    from hrbench.complexity.measurer import Measurement

    h = sum(map(ord, f"{model}{input_hw}{k}"))
    return Measurement(1_000_000 + h, 200 + h % 100, 200_000_000 + h)


def test_tables_keep_the_users_files_and_refuse_to_replace_them(tmp_path):
    out = tmp_path / "reports"
    ids = ("lite-T5", "dpn-T3")
    mine = _plant(out, ["tables/my-notes.md", "plots/my-figure.png", "draft.txt", "bench/latency.md"])
    first = generate_reports(out, runs_dir=None, measurer=_hash_measurer, table_ids=ids)
    _still_there(out, mine)
    assert any("kept 2 file(s) hrbench did not write" in n for n in first.notes), first.notes
    produced = _snapshot(out)
    manifest = json.loads((out / MANIFEST).read_text())
    assert set(manifest["files"]) == {k for k in produced if k not in mine and k != MANIFEST}
    # a second run replaces hrbench's files (same bytes: deterministic) and still keeps the user's
    generate_reports(out, runs_dir=None, measurer=_hash_measurer, table_ids=ids)
    assert _snapshot(out) == produced
    # a file the user put at an output path (README.md replaced by their own) is refused before the work
    readme = _plant(out, ["README.md"])
    with pytest.raises(ConfigError, match=r"1 file\(s\) hrbench did not write.*README.md"):
        generate_reports(out, runs_dir=None, measurer=_hash_measurer, table_ids=ids)
    _still_there(out, {**mine, **readme})
    # a stale table of hrbench's own is removed when no longer produced; the user's stay
    (out / "README.md").unlink()
    generate_reports(out, runs_dir=None, measurer=_hash_measurer, table_ids=("lite-T5",))
    assert not (out / "tables" / "dpn-T3.md").exists() and (out / "tables" / "lite-T5.md").exists()
    _still_there(out, mine)


def test_synth_force_replaces_only_its_own_files(tmp_path, capsys):
    root = tmp_path / "d"
    assert main(["data", "synth", "--out", str(root), "--train", "3", "--val", "1", "-q"]) == 0
    mine = _plant(root, ["annotations/my_split.json", "images/train/holiday.jpg", "person_detection_results/x.json",
                         "README.txt"])
    assert main(["data", "synth", "--out", str(root), "--train", "2", "--val", "1", "--seed", "1", "-q",
                 "--force"]) == 0
    _still_there(root, mine)
    assert "kept 3 file(s) hrbench did not write" in capsys.readouterr().err
    ann = json.loads((root / "annotations" / "person_keypoints_train.json").read_text())
    assert sorted(p.name for p in (root / "images" / "train").iterdir()) == \
        sorted([im["file_name"] for im in ann["images"]] + ["holiday.jpg"])
    # a user file at a name synth writes: refused, and nothing at all is changed
    theirs = _plant(root, ["annotations/person_keypoints_val.json"])
    before = _snapshot(root)
    assert main(["data", "synth", "--out", str(root), "--train", "2", "--val", "1", "-q", "--force"]) == 2
    assert "person_keypoints_val.json" in _one_error(capsys)
    assert _snapshot(root) == before
    _still_there(root, {**mine, **theirs})


def test_commit_of_a_staged_output_refuses_a_fifo_at_an_output_path(tmp_path):
    root = tmp_path / "out"
    root.mkdir()
    os.mkfifo(root / "predictions.json")
    with staging(root) as stage, pytest.raises(ConfigError, match="predictions.json"):
        (stage / "predictions.json").write_text("[]")
        commit(stage, root)
    assert stat.S_ISFIFO(os.lstat(root / "predictions.json").st_mode)
    assert sorted(p.name for p in root.iterdir()) == ["predictions.json"]  # staging folder gone


# ------------------------------------------------------------------- class 1c: non-regular destinations
def test_atomic_writer_refuses_fifo_and_character_device(tmp_path, chardev):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    for node, kind in ((fifo, "a FIFO"), (chardev, "a character device")):
        with pytest.raises(ConfigError, match=kind):
            write_json_atomic(node, {"a": 1})
        with pytest.raises(ConfigError, match=kind), atomic_write(node, binary=True) as fh:
            fh.write(b"x")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and stat.S_ISCHR(os.lstat(chardev).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full", "pipe.png"]  # no temporary left


def test_show_and_export_refuse_a_node_before_any_work(data, tmp_path, chardev, capsys):
    fifo = tmp_path / "grid.png"
    os.mkfifo(fifo)
    assert main(["data", "show", str(data), "--n", "2", "--input", "64x48", "--out", str(fifo)]) == 2
    assert "a FIFO" in _one_error(capsys)
    t = time.perf_counter()
    assert main(["export", "lite18", "--format", "onnx", "--out", str(chardev)]) == 2
    assert "a character device" in _one_error(capsys)
    assert time.perf_counter() - t < 5  # refused before the model was built or exported
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and stat.S_ISCHR(os.lstat(chardev).st_mode)


def test_export_to_an_unwritable_place_is_refused_before_the_export(tmp_path, capsys):
    t = time.perf_counter()
    assert main(["export", "lite18", "--format", "onnx", "--out", "/proc/hrbench.onnx"]) == 2
    assert "cannot write --out /proc/hrbench.onnx" in _one_error(capsys)
    assert time.perf_counter() - t < 5


# ------------------------------------------------------------------- class 1d / 4: a full disk
def test_a_full_disk_leaves_the_old_file_and_says_so_in_one_line(full_fs, capsys):
    old = write_json_atomic(full_fs / "keypoints_val_results.json", [{"score": 0.5}])
    before = old.read_bytes()
    with pytest.raises(DiskFullError, match=f"no space left on device writing {old}"):
        write_json_atomic(old, [{"score": 0.5, "pad": "x" * 200_000}])
    assert old.read_bytes() == before
    assert sorted(p.name for p in full_fs.iterdir()) == ["keypoints_val_results.json"]  # no torn temporary
    with pytest.raises(DiskFullError):
        save_checkpoint(full_fs / "last.pt", {"w": torch.zeros(50_000)})
    assert not (full_fs / "last.pt").exists()
    # a command: one line, exit 2, nothing half-written
    assert main(["data", "synth", "--out", str(full_fs / "d"), "--train", "20", "--val", "2", "-q"]) == 2
    assert "no space left on device" in _one_error(capsys)
    assert not (full_fs / "d").exists()


# ------------------------------------------------------------------- class 2: FIFO checkpoint, SIGTERM
def test_a_fifo_checkpoint_is_refused_not_waited_on(tmp_path, capsys):
    fifo = tmp_path / "ckpt.pt"
    os.mkfifo(fifo)
    codes = []
    t = threading.Thread(target=lambda: codes.append(main(["export", "lite18", "--checkpoint", str(fifo),
                                                           "--format", "onnx", "--out", str(tmp_path / "m.onnx")])),
                         daemon=True)
    t.start()
    t.join(60)
    if t.is_alive():  # unblock the reader so the thread can end, then fail
        with contextlib.suppress(OSError), open(fifo, "wb"):
            pass
        pytest.fail("reading a FIFO checkpoint blocked")
    assert codes == [2]
    assert "is a FIFO, not a regular file" in _one_error(capsys)


_RUNNER = (
    "import sys\nfrom conftest import TinyConfig, tiny_recipe\nfrom hrbench import registry\n"
    "from hrbench.cli import main\n"
    "registry.list_models()\n"
    "registry._REGISTRY['tiny_engine_test'] = registry.ModelEntry('tiny_engine_test', TinyConfig, paper='test',\n"
    "                                                             recipe=tiny_recipe)\n"
    "sys.exit(main(sys.argv[1:]))\n")


def test_sigterm_mid_training_stops_like_ctrl_c(data, tmp_path):
    """A real `hrbench train` process gets SIGTERM after its first checkpoint: exit 143, one line,
    summary "interrupted", last.pt intact and loadable, the folder lock free."""
    script = tmp_path / "run.py"
    script.write_text(_RUNNER)
    run = tmp_path / "runs" / "t"
    cmd = [sys.executable, str(script), "train", "tiny_engine_test", "--data", str(data), "--input", "64x48",
           "--out", str(tmp_path / "runs"), "--name", "t", "--device", "cpu", "--workers", "0", "--batch", "4",
           "--epochs", "400", "--no-progress", "--lr", "1e-3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(TESTS)}
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (run / "summary.json").exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None and (run / "summary.json").exists(), "no first checkpoint"
        time.sleep(0.3)  # inside a later epoch
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert lines[-1] == "hrbench: interrupted by SIGTERM (exit 143)" and "Traceback" not in err, err
    assert "continue with --resume" in (run / "log.txt").read_text().splitlines()[-1]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    ckpt = torch.load(run / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    assert ckpt["epoch"] >= summary["epochs_done"] >= 1
    assert not list((run / "checkpoints").glob(".*.tmp"))
    lock = FolderLock(run)
    assert not lock.locked_by_other()
    lock.acquire()  # no stale lock: the next run (a --resume) can take the folder
    lock.release()


def test_sigterm_in_a_submitit_job_requeues_through_its_timeout_signal(tmp_path):
    """:func:`requeue_as_timeout` delivers submitit's time-out signal (USR2) to the job process, whose
    handler (submitit's checkpoint-and-requeue) then runs; outside a job it does nothing."""
    code = ("import os, signal, sys\nfrom hrbench.launch import requeue_as_timeout\n"
            "got = []\nsignal.signal(signal.SIGUSR2, lambda s, f: got.append(s))\n"
            "requeue_as_timeout()\nprint(got == [signal.SIGUSR2])\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUBMITIT")}
    inside = subprocess.run([sys.executable, "-c", code], env={**env, "SUBMITIT_EXECUTOR": "local"},
                            capture_output=True, text=True, timeout=120)
    outside = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert inside.stdout.strip() == "True", inside.stderr
    assert outside.stdout.strip() == "False", outside.stderr
    requeue_as_timeout()  # this test process is no job: nothing happens


# ------------------------------------------------------------------- class 3: checkpoints that lie
def test_non_finite_weights_are_refused_naming_file_and_tensor(tiny_arch, tmp_path, capsys):
    from hrbench.checkpoint import hrbench_payload
    from hrbench.factory import create_model

    model = create_model(tiny_arch, num_keypoints=17)
    payload = hrbench_payload(model)
    key = next(k for k, v in payload["state_dict"].items() if v.is_floating_point() and v.numel() > 3)
    payload["state_dict"][key].view(-1)[1] = float("nan")
    payload["state_dict"][key].view(-1)[2] = float("inf")
    path = save_checkpoint(tmp_path / "nan.pt", payload)
    with pytest.raises(CheckpointError, match=rf"{path}: tensor {key} holds 1 NaN and 1 infinite value"):
        load_checkpoint(create_model(tiny_arch, num_keypoints=17), path)
    assert main(["export", tiny_arch, "--checkpoint", str(path), "--format", "onnx",
                 "--out", str(tmp_path / "m.onnx")]) == 2
    assert f"tensor {key}" in _one_error(capsys)
    assert not (tmp_path / "m.onnx").exists()
    with pytest.raises(HrbenchError, match="NaN or infinity"):
        write_json_atomic(tmp_path / "r.json", {"AP": float("nan")})
    assert not (tmp_path / "r.json").exists()


# ------------------------------------------------------------------- class 4: --slurm-opt
@pytest.mark.parametrize("item", ["foo bar=1", "mem=64G\nrm -rf ~", "x;y=1", "qos=high\r", "comment=a\x1bb",
                                  "$(id)=1"])
def test_slurm_opt_that_would_inject_a_line_is_refused(item):
    with pytest.raises(HrbenchError, match="--slurm-opt"):
        parse_slurm_opts([item])


def test_valid_slurm_opts_give_one_sbatch_line_each(tmp_path):
    opts = parse_slurm_opts(["mem=64G", "--qos=high", "constraint=a100|h100"])
    assert opts == (("mem", "64G"), ("qos", "high"), ("constraint", "a100|h100"))
    from hrbench.launch import JobOptions, slurm_parameters

    script = sbatch_script(tmp_path, slurm_parameters(JobOptions(slurm_opts=opts), "cell"), 1)
    plain = sbatch_script(tmp_path, slurm_parameters(JobOptions(), "cell"), 1)
    body = [ln for ln in script.splitlines() if ln.strip()]
    assert "#SBATCH --mem=64G" in body and "#SBATCH --qos=high" in body
    assert "#SBATCH --constraint='a100|h100'" in body  # quoted by submitit
    assert len(body) == len([ln for ln in plain.splitlines() if ln.strip()]) + 3  # one line per option


# ------------------------------------------------------------------- every other output location
def test_eval_predict_export_show_keep_foreign_files(tiny_arch, data, tmp_path, capsys):
    """Each --out location filled with the user's files first: after a successful command every one is
    still there byte for byte; a user file at hrbench's own output name is refused before the work."""
    from hrbench.checkpoint import hrbench_payload
    from hrbench.factory import create_model

    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "tiny.pt", hrbench_payload(create_model(tiny_arch, num_keypoints=17)))
    image = sorted((data / "images" / "val").iterdir())[0]
    places = {name: tmp_path / name for name in ("eval", "predict", "export", "show")}
    mine = {name: _plant(d, ["notes.txt", "sub/kept.bin", f".{name}.hidden"]) for name, d in places.items()}
    common = ["--input", "64x48", "--device", "cpu"]
    ev = ["eval", tiny_arch, "--checkpoint", str(ckpt), "--data", str(data), "--workers", "0", "--batch", "4",
          "--out", str(places["eval"]), *common]
    pr = ["predict", tiny_arch, "--checkpoint", str(ckpt), str(image), "--out", str(places["predict"]), "--input",
          "64x48"]
    assert main(ev) == 0 and (places["eval"] / "keypoints_val_results.json").is_file()
    assert main(pr) == 0 and (places["predict"] / "predictions.json").is_file()
    assert main(["export", tiny_arch, "--format", "onnx", "--input", "64x48",
                 "--out", str(places["export"] / "m.onnx")]) == 0
    assert main(["data", "show", str(data), "--n", "2", "--input", "64x48",
                 "--out", str(places["show"] / "grid.png")]) == 0
    capsys.readouterr()
    for name, d in places.items():
        _still_there(d, mine[name])
        assert not [p for p in d.rglob("*") if p.name.endswith(".tmp") or "staging" in p.name], name
    # a second eval / predict replaces hrbench's own results (manifest) ...
    assert main(ev) == 0 and main(pr) == 0
    capsys.readouterr()
    # ... but never the user's file at that name: refused before the work, and kept
    for args, d, rel in ((ev, places["eval"], "keypoints_val_results.json"),
                         (pr, places["predict"], "predictions.json")):
        theirs = _plant(d, [rel])
        assert main(args) == 2
        assert rel in _one_error(capsys)
        _still_there(d, {**mine[d.name], **theirs})


def test_export_to_a_read_only_mount_is_refused_before_the_export(tmp_path, capsys):
    mnt = tmp_path / "ro"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,ro", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a read-only tmpfs here")
    try:
        t = time.perf_counter()
        assert main(["export", "lite18", "--format", "onnx", "--out", str(mnt / "m.onnx")]) == 2
        assert "Read-only file system" in _one_error(capsys)
        assert time.perf_counter() - t < 5
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_train_and_show_on_a_full_disk_one_line_nothing_left(tiny_arch, data, full_fs, capsys):
    with open(full_fs / "filler", "wb", buffering=0) as f:  # fill the 64 KiB tmpfs to the last byte
        with contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 512)
    assert main(["train", tiny_arch, "--data", str(data), "--input", "64x48", "--out", str(full_fs / "runs"),
                 "--name", "r", "--device", "cpu", "--workers", "0", "--batch", "4", "--epochs", "1",
                 "--no-progress"]) == 2
    line = _one_error(capsys)
    assert "no space left on device" in line, line
    assert not (full_fs / "runs").exists(), line
    assert main(["data", "show", str(data), "--n", "2", "--input", "64x48", "--out", str(full_fs / "grid.png")]) == 2
    assert "no space left on device writing" in _one_error(capsys)
    assert sorted(p.name for p in full_fs.iterdir()) == ["filler"]  # no run folder, grid or temporary left


def test_latency_report_replaces_only_its_own_files(tmp_path):
    """``tables --bench`` into a folder holding the user's files: one at an output path is refused
    before any timing; after a real (one-model) run the user's neighbour is there byte for byte, and
    a second run replaces hrbench's own files (the manifest says they are hrbench's)."""
    from hrbench.reports.bench import run_bench

    out = tmp_path / "bench"
    out.mkdir()
    (out / "latency.md").write_bytes(b"my own latency notes\n")
    t = time.perf_counter()
    with pytest.raises(ConfigError, match="hrbench did not write"):
        run_bench(out, models=["lite18"], repeats=1)
    assert time.perf_counter() - t < 5 and (out / "latency.md").read_bytes() == b"my own latency notes\n"
    (out / "latency.md").rename(out / "notes.md")
    run_bench(out, models=["lite18"], repeats=1)
    run_bench(out, models=["lite18"], repeats=1)  # its own files: replaced, not refused
    assert (out / "notes.md").read_bytes() == b"my own latency notes\n"
    owned = json.loads((out / MANIFEST).read_text())["files"]
    assert "latency.md" in owned and "notes.md" not in owned
    assert "| lite18 |" in (out / "latency.md").read_text()  # the timed row


def test_json_on_stdout_is_strict(capsys):
    """``--json`` output holds no NaN / Infinity tokens (not JSON): they print as null."""
    from hrbench.cli.options import print_json

    print_json({"AP": float("nan"), "rows": [1.5, float("inf"), {"x": -float("inf")}], "n": 3})
    text = capsys.readouterr().out
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"AP": None, "rows": [1.5, None, {"x": None}], "n": 3}
