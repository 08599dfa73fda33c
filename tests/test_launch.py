"""Ablation grids as submitit jobs (``hrbench ablate GRID --train --launcher submitit``) and multi-node
training through ``torchrun --nnodes 2 --rdzv-backend c10d``.

No Slurm here: the Slurm job is checked from the sbatch script submitit would submit; the jobs
themselves run through submitit's local executor (``--cluster local``), each cell in its own
processes, on a tiny synthetic COCO set at 64x48 for 1-4 epochs.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import cli_error

from hrbench.cli import main
from hrbench.data.synth import generate
from hrbench.engine import list_runs, read_metrics
from hrbench.engine.api import build_split

GRID = "dpn-table5"  # DPN1..4_32: cheap at 64x48
TRAIN = ["--input", "64x48", "--device", "cpu", "--workers", "0", "--threads", "1"]


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    root = tmp_path_factory.mktemp("launch") / "coco"
    generate("coco", root, 8, 3, seed=0, image_hw=(96, 72))
    return root


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


# ------------------------------------------------------------------------------------ the Slurm job
def test_slurm_job_array_from_the_sbatch_script(tmp_path):
    from hrbench.launch import JobOptions, parse_slurm_opts, sbatch_script, slurm_parameters

    opts = JobOptions(partition="gpu", gpus_per_node=4, nodes=2, timeout_min=90, array_parallelism=3,
                      slurm_opts=parse_slurm_opts(["mem=64G", "account=pose", "--mail-user=a@b.c"]))
    script = sbatch_script(tmp_path, slurm_parameters(opts, "ablate-x"), 8).splitlines()
    for flag in ("--partition=gpu", "--gpus-per-node=4", "--nodes=2", "--ntasks-per-node=4", "--time=90",
                 "--array=0-7%3", "--mem=64G", "--account=pose", "--mail-user=a@b.c", "--job-name=ablate-x",
                 "--signal=USR2@90"):
        assert f"#SBATCH {flag}" in script, flag
    assert sum(line.startswith("#SBATCH --mem") for line in script) == 1
    assert any(line.startswith("srun ") and "submitit.core._submit" in line for line in script)
    one = sbatch_script(tmp_path, slurm_parameters(JobOptions(), "one"), 1)
    assert "--array" not in one and "#SBATCH --gpus-per-node=1" in one and "#SBATCH --time=1440" in one


def test_dry_run_prints_cells_recipes_and_job_and_submits_nothing(tmp_path, coco, capsys):
    out = tmp_path / "runs"
    argv = ["ablate", GRID, "--train", "--launcher", "submitit", "--data", str(coco), "--out", str(out), *TRAIN,
            "--epochs", "2", "--batch", "8", "--slurm-partition", "gpu", "--gpus-per-node", "4", "--nodes", "2",
            "--timeout", "120", "--array-parallelism", "2", "--slurm-opt", "qos=high", "--dry-run", "--json"]
    assert main(argv) == 0
    res = _json(capsys)
    assert [s["index"] for s in res["submit"]] == list(range(8))
    for s in res["submit"]:  # 2 nodes x 4 GPUs: 8 processes of 8 samples; Adam lr 1e-3 x 64 / 128
        assert s["train"]["world_size"] == 8 and s["train"]["total_batch"] == 64 and s["train"]["epochs"] == 2
        assert math.isclose(s["train"]["lr"], 5e-4) and s["input"] == [64, 48]
    assert res["job"] == {"job_name": f"ablate-{GRID}", "nodes": 2, "gpus_per_node": 4, "ntasks_per_node": 4,
                          "time": 120, "partition": "gpu", "array_parallelism": 2, "qos": "high"}
    assert "#SBATCH --array=0-7%2" in res["sbatch"] and "#SBATCH --qos=high" in res["sbatch"]
    assert not out.exists()  # nothing submitted, nothing written
    assert main(argv[:-1]) == 0
    text = capsys.readouterr().out
    assert "would submit 8 job(s) to slurm" in text and "#SBATCH --partition=gpu" in text


BAD = [
    (["--train", "--data", "{d}", "--launcher", "pbs"], "unknown --launcher 'pbs'"),
    (["--train", "--data", "{d}", "--launcher", "submitit", "--gpus-per-node", "0", "--dry-run"],
     "invalid --gpus-per-node 0"),
    (["--launcher", "submitit"], "--launcher submitit needs --train"),
    (["--train", "--data", "{d}", "--slurm-partition", "gpu"], "apply to --launcher submitit only"),
    (["--train", "--data", "{d}", "--launcher", "submitit", "--cluster", "local", "--array-parallelism", "2"],
     "apply to Slurm only"),
    (["--train", "--data", "{d}", "--launcher", "submitit", "--cluster", "pbs"], "unknown --cluster 'pbs'"),
    (["--train", "--data", "{d}", "--launcher", "submitit", "--slurm-opt", "mem", "--dry-run"], "malformed"),
    (["--train", "--data", "{d}", "--launcher", "submitit", "--slurm-opt", "time=5", "--dry-run"], "--timeout"),
    (["--train", "--data", "{d}", "--launcher", "submitit", "--timeout", "0", "--dry-run"], "invalid --timeout"),
    (["--train", "--data", "{d}", "--launcher", "submitit", "--cells", "9", "--dry-run"], "invalid --cells 9"),
    (["--status", "--train"], "do not apply with --status"),
]


@pytest.mark.parametrize("args,message", BAD, ids=[m for _, m in BAD])
def test_bad_input_is_one_line_and_exit_2(args, message, coco, tmp_path, capsys):
    argv = ["ablate", GRID, "--out", str(tmp_path / "runs"), *[a.format(d=coco) for a in args]]
    assert main(argv) == 2
    assert message in cli_error(capsys)
    assert not (tmp_path / "runs").exists()


def test_unknown_grid_and_no_slurm_are_one_line(coco, tmp_path, capsys):
    assert main(["ablate", "no-such-grid", "--train", "--launcher", "submitit", "--data", str(coco)]) == 2
    assert "unknown ablation grid 'no-such-grid'" in capsys.readouterr().err
    if shutil.which("srun") is None:
        assert main(["ablate", GRID, "--train", "--launcher", "submitit", "--data", str(coco)]) == 2
        assert "no Slurm on this machine (srun not found)" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ local executor
def _lock_pid(run: Path) -> int:
    return int((run / ".lock").read_text().split()[-1])


@pytest.mark.slow
def test_submitit_local_runs_cells_as_processes_into_registry_and_table(tmp_path, coco, capsys):
    from hrbench.reports import generate_reports

    out = tmp_path / "runs"
    argv = ["ablate", GRID, "--train", "--launcher", "submitit", "--cluster", "local", "--data", str(coco),
            "--out", str(out), "--epochs", "1", "--batch", "4", *TRAIN, "--cells", "0,1", "--wait", "--json"]
    t0 = time.perf_counter()
    assert main(argv) == 0
    res = _json(capsys)
    print(f"2 cells as submitit local jobs: {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    ids = {r["id"] for r in res["jobs"].values()}
    runs = {s["name"]: s for s in list_runs(out)}
    assert len(ids) == 2 and set(runs) == set(res["jobs"])
    pids = {_lock_pid(out / name) for name in runs}  # the process that trained each run
    assert len(pids) == 2 and os.getpid() not in pids
    for s in runs.values():
        assert s["status"] == "finished" and s["epochs_done"] == 1 and s["world_size"] == 1
        assert s["input"] == [64, 48] and math.isfinite(s["final"]["val_loss"]) and 0 <= s["best"]["AP"] <= 100
    assert [r["status"] for r in res["cells"]] == ["done", "done"] + ["not started"] * 6
    # the regenerated table carries both cells
    [t5] = generate_reports(tmp_path / "reports", runs_dir=out, table_ids=("dpn-T5",)).tables
    local = {r.printed["model"]: r.local for r in t5.rows if r.local is not None}
    assert set(local) == {"DPN1_32 (DPM)", "DPN2_32 (DPM)"} and all(v.input == "64x48" for v in local.values())
    assert (tmp_path / "reports" / "tables" / "dpn-T5.md").read_text().count("(@64x48, 1 ep)") == 2
    # again: nothing is submitted
    jobs_before = sorted(p.name for p in (out / ".submitit" / GRID).iterdir())
    assert main(argv) == 0
    assert _json(capsys)["jobs"] == {}
    assert sorted(p.name for p in (out / ".submitit" / GRID).iterdir()) == jobs_before
    assert main(["ablate", GRID, "--status", "--out", str(out), "--json"]) == 0
    rows = _json(capsys)
    assert [r["status"] for r in rows[:2]] == ["done", "done"] and rows[0]["log"].endswith("log.txt")


def _epochs_done(run: Path) -> int:
    try:
        return json.loads((run / "summary.json").read_text())["epochs_done"]
    except FileNotFoundError:
        return 0


@pytest.mark.slow
def test_killed_cell_is_resubmitted_and_resumes_from_its_checkpoint(tmp_path, capsys):
    data = tmp_path / "coco"
    generate("coco", data, 24, 3, seed=1, image_hw=(96, 72))
    out = tmp_path / "runs"
    argv = ["ablate", GRID, "--train", "--launcher", "submitit", "--cluster", "local", "--data", str(data),
            "--out", str(out), "--epochs", "4", "--batch", "4", *TRAIN, "--cells", "3", "--json"]
    assert main(argv) == 0
    [name] = _json(capsys)["jobs"]
    run = out / name
    deadline = time.time() + 120
    while _epochs_done(run) < 1:  # epoch 1 saved: kill the trainer mid-run
        assert time.time() < deadline, "the job saved no epoch"
        time.sleep(0.02)
    os.kill(_lock_pid(run), signal.SIGKILL)
    while True:
        assert main(["ablate", GRID, "--status", "--out", str(out), "--json"]) == 0
        row = _json(capsys)[3]
        if row["status"] == "failed":
            break
        assert row["status"] == "running" and time.time() < deadline
        time.sleep(0.2)
    assert "without a result" in row["why"] and Path(row["log"]).is_file()
    killed_at = _epochs_done(run)  # what its last.pt holds (the summary is written right after it)
    assert 1 <= killed_at < 4
    assert main([*argv, "--wait"]) == 0  # resubmitted
    res = _json(capsys)
    assert list(res["jobs"]) == [name] and res["cells"][3]["status"] == "done"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["epochs_done"] == 4
    resumes = [e for e in read_metrics(run) if e["event"] == "resume"]
    assert [e["epoch"] for e in resumes] == [killed_at]
    assert f"resumed {run} at epoch {killed_at}/4" in (run / "log.txt").read_text()


def test_cell_job_requeues_itself_unchanged():
    from hrbench.launch import CellJob

    job = CellJob({"name": "x", "out": "/tmp"})
    again = job.checkpoint()  # what submitit dumps and requeues on preemption / time-out
    assert again.function is job and again.args == () and again.kwargs == {}


# ------------------------------------------------------------------------------------ multi-node torchrun
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_train_on_two_nodes_through_torchrun_c10d_rendezvous(tmp_path, coco):
    """Two ``torchrun --nnodes 2 --nproc-per-node 1 --rdzv-backend c10d`` agents (two "nodes" on one
    machine) train one run; only global rank 0 writes it."""
    port, out = _free_port(), tmp_path / "runs"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
           "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "hrbench-test",
           "-m", "hrbench", "train", "dpn1_32", "--data", str(coco), "--epochs", "1", "--batch", "2",
           *TRAIN, "--out", str(out), "--name", "two-nodes", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    agents = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True) for _ in range(2)]
    try:
        logs = [a.communicate(timeout=240)[0] for a in agents]
    finally:
        for a in agents:
            if a.poll() is None:
                os.killpg(a.pid, signal.SIGKILL)
    assert [a.returncode for a in agents] == [0, 0], logs
    [summary] = list_runs(out)
    assert summary["name"] == "two-nodes" and summary["status"] == "finished" and summary["world_size"] == 2
    persons = len(build_split("coco", coco, "train", (64, 48), train=True))  # 17 people in 8 images
    assert summary["total_batch"] == 4 and summary["iterations"] == persons // 4  # 2 nodes x 2 per step
    log = (out / "two-nodes" / "log.txt").read_text()  # rank 0 alone writes: each line once
    assert log.count("training dpn1_32 on coco 64x48") == 1 and "device cpu x 2" in log
