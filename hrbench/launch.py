"""Ablation cells as cluster jobs, through ``submitit`` (``hrbench ablate GRID --train --launcher submitit``).

Each unfinished cell of a grid becomes one job of one job array (Slurm) or one process (submitit's
local executor, ``--cluster local``). A job is one training run: :class:`CellJob` turns the job's
tasks (one per GPU, ``--gpus-per-node`` x ``--nodes``) into the ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/
``MASTER_ADDR``/``MASTER_PORT`` environment ``torchrun`` would give them and calls
:func:`hrbench.engine.train`, which writes ``<out>/<run name>/`` exactly as a local run does (rank 0
only). A job that is preempted or reaches its time limit is requeued by submitit
(:class:`submitit.helpers.Checkpointable`) and continues from the run's ``checkpoints/last.pt``;
so does a cell that is submitted again after it was killed. Job files (pickles, logs) live under
``<out>/.submitit/<grid>/``; the job of every cell is recorded in ``<out>/ablate-<grid>.json``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import re
import shutil
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import submitit
from submitit.helpers import Checkpointable, clean_env
from submitit.slurm.slurm import _get_default_parameters, _make_sbatch_string

from hrbench.errors import HrbenchError
from hrbench.signals import Terminated

CLUSTERS = ("slurm", "local")
#: sbatch settings with an option of their own (refused in ``--slurm-opt``).
DEDICATED = {"partition": "--slurm-partition", "time": "--timeout", "nodes": "--nodes",
             "gpus_per_node": "--gpus-per-node", "ntasks_per_node": "--gpus-per-node (one task per GPU)",
             "array": "--array-parallelism", "array_parallelism": "--array-parallelism"}
#: submitit parameters that are not sbatch flags (a ``--slurm-opt`` cannot set them).
NOT_SBATCH = ("setup", "teardown", "srun_args", "use_srun", "stderr_to_stdout", "additional_parameters",
              "map_count", "num_gpus", "signal_delay_s", "command", "folder")
#: What a ``--slurm-opt`` key may be (an sbatch long option name).
SLURM_KEY = re.compile(r"[A-Za-z0-9_-]+")
QUEUED = ("PENDING", "REQUEUED", "PREEMPTED", "CONFIGURING", "RESIZING", "SUSPENDED")
RUNNING = ("RUNNING", "COMPLETING", "STAGE_OUT")


@dataclasses.dataclass(frozen=True)
class JobOptions:
    """Where and how the jobs run. ``gpus_per_node``: processes per node, one per GPU (on a CPU-only
    machine, CPU processes); ``timeout_min``: the job's time limit; ``signal_delay_s``: how long
    before it the job is told to checkpoint and requeue (submitit's default when None)."""

    cluster: str = "slurm"
    partition: str | None = None
    gpus_per_node: int = 1
    nodes: int = 1
    timeout_min: float = 24 * 60
    array_parallelism: int | None = None
    slurm_opts: tuple[tuple[str, str], ...] = ()
    signal_delay_s: int | None = None

    @property
    def world_size(self) -> int:
        return self.nodes * self.gpus_per_node


def parse_slurm_opts(items: list[str] | None) -> tuple[tuple[str, str], ...]:
    """``["mem=64G", "qos=high"]`` -> ((key, value), ...) with ``-`` in keys read as ``_``; one-line errors.
    Each becomes one ``#SBATCH --key=value`` line of a script run on a shared cluster, so a key is letters,
    digits, ``_`` and ``-`` only, and a value holds no newline or other control character."""
    out = []
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip().lstrip("-").replace("-", "_")
        if not sep or not key or not value.strip():
            raise HrbenchError(f"malformed --slurm-opt {item!r}: expected KEY=VALUE (an sbatch option), e.g. mem=64G")
        if not SLURM_KEY.fullmatch(key):
            raise HrbenchError(f"invalid --slurm-opt key {key!r}: an sbatch option name is letters, digits, '_' "
                               "and '-' only (no spaces, newlines or shell characters)")
        bad = next((c for c in value if ord(c) < 32 or ord(c) == 127), None)
        if bad is not None:
            raise HrbenchError(f"invalid --slurm-opt value for {key}: it holds a control character "
                               f"({bad!r}); a value is one line of the sbatch script")
        if key in DEDICATED:
            raise HrbenchError(f"--slurm-opt {item!r}: use {DEDICATED[key]} for this setting")
        if key in NOT_SBATCH:
            raise HrbenchError(f"--slurm-opt {item!r}: {key} is not an sbatch option")
        out.append((key, value.strip()))
    return tuple(out)


def check_options(opts: JobOptions, dry_run: bool = False) -> None:
    """One-line errors for what cannot be submitted (before anything is written)."""
    if opts.cluster not in CLUSTERS:
        raise HrbenchError(f"unknown --cluster {opts.cluster!r}: choose from {', '.join(CLUSTERS)}")
    for name, value in (("--gpus-per-node", opts.gpus_per_node), ("--nodes", opts.nodes),
                        ("--array-parallelism", opts.array_parallelism)):
        if value is not None and value < 1:
            raise HrbenchError(f"invalid {name} {value}: must be at least 1")
    if opts.timeout_min <= 0:
        raise HrbenchError(f"invalid --timeout {opts.timeout_min:g}: must be a positive number of minutes")
    if opts.cluster == "local":
        given = [n for n, v in (("--slurm-partition", opts.partition), ("--slurm-opt", opts.slurm_opts),
                                ("--array-parallelism", opts.array_parallelism)) if v]
        if opts.nodes > 1:
            given.append("--nodes > 1")
        if given:
            raise HrbenchError(f"{', '.join(given)} apply to Slurm only (--cluster slurm); submitit's local "
                               "executor runs every job at once on this machine")
    elif not dry_run and shutil.which("srun") is None:
        raise HrbenchError("no Slurm on this machine (srun not found): use --cluster local to run the jobs here "
                           "as separate processes, or --dry-run to see the job that would be submitted")


def slurm_parameters(opts: JobOptions, job_name: str) -> dict[str, Any]:
    """The parameters of :class:`submitit.SlurmExecutor` (sbatch names): one task per GPU."""
    params: dict[str, Any] = {"job_name": job_name, "nodes": opts.nodes, "gpus_per_node": opts.gpus_per_node,
                              "ntasks_per_node": opts.gpus_per_node, "time": max(1, round(opts.timeout_min))}
    if opts.partition:
        params["partition"] = opts.partition
    if opts.array_parallelism:
        params["array_parallelism"] = opts.array_parallelism
    if opts.signal_delay_s is not None:
        params["signal_delay_s"] = opts.signal_delay_s
    known = _get_default_parameters()
    extra = {}
    for key, value in opts.slurm_opts:
        if key in known:
            params[key] = value
        else:
            extra[key] = value
    if extra:
        params["additional_parameters"] = extra
    return params


def local_parameters(opts: JobOptions) -> dict[str, Any]:
    """The parameters of :class:`submitit.LocalExecutor`: ``gpus_per_node`` processes per job."""
    params: dict[str, Any] = {"timeout_min": opts.timeout_min, "gpus_per_node": opts.gpus_per_node,
                              "tasks_per_node": opts.gpus_per_node}
    if opts.signal_delay_s is not None:
        params["signal_delay_s"] = opts.signal_delay_s
    return params


def sbatch_script(folder: str | Path, params: dict[str, Any], n_jobs: int) -> str:
    """The sbatch script :class:`submitit.SlurmExecutor` submits for ``n_jobs`` cells (an array when > 1)."""
    command = " ".join([sys.executable, "-u -m submitit.core._submit", str(folder)])
    return _make_sbatch_string(command=command, folder=folder, map_count=n_jobs if n_jobs > 1 else None, **params)


def jobs_folder(out: str | Path, grid: str) -> Path:
    return Path(out).resolve() / ".submitit" / grid


def make_executor(folder: Path, opts: JobOptions, job_name: str) -> submitit.core.core.PicklingExecutor:
    if opts.cluster == "local":
        executor = submitit.LocalExecutor(folder)
        executor.update_parameters(**local_parameters(opts))
    else:
        executor = submitit.SlurmExecutor(folder)
        executor.update_parameters(**slurm_parameters(opts, job_name))
    return executor


# ---------------------------------------------------------------------------------------------- the job
def _master_port(job_id: str) -> int:
    return 20000 + int(hashlib.sha256(job_id.encode()).hexdigest(), 16) % 40000


def export_distributed() -> int:
    """Inside a submitit job of several tasks: the environment variables ``torchrun`` sets (rank 0's
    node is the rendezvous; one node: the loopback address). Returns the world size."""
    env = submitit.JobEnvironment()
    if env.num_tasks <= 1:
        return 1
    master = "127.0.0.1" if env.num_nodes == 1 else env.hostnames[0]
    os.environ.update(MASTER_ADDR=master, MASTER_PORT=str(_master_port(str(env.job_id))), RANK=str(env.global_rank),
                      WORLD_SIZE=str(env.num_tasks), LOCAL_RANK=str(env.local_rank),
                      LOCAL_WORLD_SIZE=str(env.num_tasks // env.num_nodes))
    return env.num_tasks


class CellJob(Checkpointable):
    """One cell's training run as a submitit job. ``spec``: its :class:`hrbench.engine.TrainOptions` as a
    dict (absolute ``data``/``out``). Requeued as it is (submitit's
    ``checkpoint``): every start continues from ``<out>/<name>/checkpoints/last.pt`` when it exists."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = dict(spec)

    def __call__(self) -> dict[str, Any]:
        from rich.console import Console

        from hrbench.engine import TrainOptions, train

        world = export_distributed()
        spec = self.spec
        resume = (Path(spec["out"]) / spec["name"] / "checkpoints" / "last.pt").exists()
        print(f"hrbench: cell {spec['name']} on {socket.gethostname()} ({world} process(es)); "
              f"{'resuming' if resume else 'starting'}", file=sys.stderr, flush=True)
        options = TrainOptions.from_dict({**spec, "resume": resume, "progress": False})
        try:
            summary = train(options, console=Console(stderr=True, width=120))
        except Terminated:  # SIGTERM (preemption): the run stopped cleanly; requeue as for a time-out
            requeue_as_timeout()
            raise
        return {"name": spec["name"], "status": summary.get("status"), "epochs_done": summary.get("epochs_done"),
                "resumed": resume}


def requeue_as_timeout() -> None:
    """Inside a submitit job: deliver submitit's time-out signal (``SIGUSR2`` unless configured) to this
    process, whose handler checkpoints the job (:class:`CellJob` as it is) and requeues it; outside a job,
    nothing."""
    if os.environ.get("SUBMITIT_EXECUTOR") is None or not submitit.JobEnvironment().activated():
        return
    signal.raise_signal(submitit.JobEnvironment._usr_sig())


def submit(cells: list[tuple[str, dict[str, Any]]], opts: JobOptions, folder: Path,
           job_name: str) -> tuple[dict[str, dict[str, Any]], list[submitit.Job]]:
    """Submit one job per ``(run name, train kwargs)`` as one array; returns ``{run name: job record}``
    and the submitit jobs."""
    executor = make_executor(folder, opts, job_name)
    with clean_env():  # a job submitted from inside a job must not inherit its Slurm/torch variables
        jobs = executor.submit_array([CellJob(spec) for _, spec in cells])
    from hrbench.engine.runs import now_iso

    records = {name: {"cluster": opts.cluster, "id": str(job.job_id), "folder": str(folder),
                      "stdout": str(job.paths.stdout), "stderr": str(job.paths.stderr), "submitted": now_iso(),
                      "world_size": opts.world_size}
               for (name, _), job in zip(cells, jobs, strict=True)}
    return records, list(jobs)


# ---------------------------------------------------------------------------------------------- job state
def _local_alive(pid: int) -> bool:
    """Whether the local job controller ``pid`` still runs (an exited one a parent has not reaped is not)."""
    proc = Path(f"/proc/{pid}")
    if proc.is_dir():
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:  # it exited between the two reads
            return False
        return stat.rsplit(")", 1)[-1].split()[0] != "Z" and b"submitit.local._local" in cmdline
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process took the id
        return False
    return True


def job_state(record: dict[str, Any]) -> str:
    """``queued`` | ``running`` | ``unknown`` (Slurm cannot say) | ``ended`` for a recorded job."""
    if record["cluster"] == "local":
        return "running" if _local_alive(int(record["id"])) else "ended"
    state = submitit.SlurmJob(record["folder"], record["id"]).state.upper()
    if state.startswith(QUEUED):
        return "queued"
    if state.startswith(RUNNING):
        return "running"
    return "unknown" if state in ("UNKNOWN", "") else "ended"


def job_error(record: dict[str, Any]) -> str:
    """Why an ended job did not finish its run: the last line of its error, or that it left no result."""
    result = submitit.core.utils.JobPaths(record["folder"], record["id"], 0).result_pickle
    if not result.exists():
        return "the job ended without a result (killed, out of memory or out of time)"
    with open(result, "rb") as f:
        outcome, value = pickle.load(f)
    if outcome == "error":
        lines = [ln for ln in str(value).splitlines() if ln.strip()]
        return lines[-1].strip() if lines else "failed"
    return "the job ended before the run finished"
