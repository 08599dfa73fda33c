"""Intra-op CPU threads that behave on a shared machine (``--threads`` of train / eval / bench).

The cause of slow steps under load: a pose network is hundreds of small kernels, and each one
is split over torch's intra-op threads, which meet at a barrier when it ends. With as many
threads as cores and one other busy process, one of our threads is always waiting for a core,
so every kernel waits a scheduler time slice for its slowest thread; a 1 s step becomes
15-40 s. One thread fewer per busy core removes the wait.

Default (``--threads auto``): ``OMP_NUM_THREADS`` when it is set (a launcher or the user chose);
otherwise the CPUs this process may use (affinity mask and cgroup CPU quota) minus the CPUs other
processes keep busy (measured over a quarter of a second from ``/proc/stat``), shared out among
this node's training processes (``LOCAL_WORLD_SIZE``, set by torchrun and by the cluster launcher),
at least 1.

At most :data:`THREADS_PER_CPU` times the usable CPUs are accepted (``--threads`` or ``OMP_NUM_THREADS``):
more only oversubscribes the cores (``--threads 5000`` on 2 CPUs: load average 1,700), and torch's thread
pool crashes (segmentation fault) near 100,000.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import torch

from hrbench.errors import ConfigError

#: The most intra-op threads accepted per usable CPU (:func:`check_threads`).
THREADS_PER_CPU = 4


def usable_cpus() -> int:
    """CPUs this process may run on: the affinity mask, capped by a cgroup v2 ``cpu.max`` quota."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = Path("/sys/fs/cgroup/cpu.max")
    if quota.exists():
        limit, _, period = quota.read_text().strip().partition(" ")
        if limit != "max" and period:
            cpus = min(cpus, max(1, math.ceil(int(limit) / int(period))))
    return max(1, cpus)


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs from ``/proc/stat``; None where there is no such file."""
    stat = Path("/proc/stat")
    if not stat.exists():
        return None
    fields = [int(v) for v in stat.read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def busy_cpus(window: float = 0.25) -> float:
    """CPUs other processes keep busy right now: the machine's non-idle CPU time over ``window``
    seconds while this process sleeps (``/proc/stat``); the 1-minute load average elsewhere. (The
    load average lags by a minute, so it would still count a job that just finished, or this
    process's own earlier work.)"""
    before = _cpu_times()
    if before is None:
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    time.sleep(window)
    after = _cpu_times()
    busy, total = after[0] - before[0], after[1] - before[1]
    return (os.cpu_count() or 1) * busy / max(total, 1)


#: Where ``hrbench/__init__.py`` sets aside a malformed ``OMP_NUM_THREADS`` before torch (libgomp) reads it.
INVALID_OMP_ENV = "HRBENCH_INVALID_OMP_NUM_THREADS"


def check_omp_env() -> None:
    """A malformed ``OMP_NUM_THREADS`` (set aside at import, see :data:`INVALID_OMP_ENV`) -> ConfigError."""
    bad = os.environ.get(INVALID_OMP_ENV)
    if bad is not None:
        raise ConfigError(f"invalid OMP_NUM_THREADS {bad!r}: must be a positive integer")


def default_threads() -> tuple[int, str]:
    """The ``auto`` thread count and why (module docstring)."""
    check_omp_env()
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ConfigError(f"invalid OMP_NUM_THREADS {env!r}: must be a positive integer")
        return check_threads(int(env), "OMP_NUM_THREADS"), "OMP_NUM_THREADS"
    cpus, busy = usable_cpus(), busy_cpus()
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    n = max(1, min(cpus, cpus - math.floor(busy + 0.5)) // max(1, local))
    return n, f"{cpus} CPU(s), {busy:.1f} busy" + (f", {local} processes on this node" if local > 1 else "")


def parse_threads(value: str | int | None) -> int | None:
    """``--threads``: a positive integer, or None for ``auto`` (:func:`default_threads`)."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"invalid --threads {value}: expected a positive integer or auto") from None
    if n < 1:
        raise ConfigError(f"invalid --threads {value}: expected a positive integer or auto")
    return n


def check_threads(n: int, option: str = "--threads") -> int:
    """``n`` if it is at most :data:`THREADS_PER_CPU` x :func:`usable_cpus`, else a one-line ConfigError
    with both numbers."""
    cpus = usable_cpus()
    if n > THREADS_PER_CPU * cpus:
        raise ConfigError(f"invalid {option} {n}: more than {THREADS_PER_CPU} x the {cpus} usable CPU(s) "
                          f"(at most {THREADS_PER_CPU * cpus})")
    return n


def configure_threads(value: str | int | None) -> tuple[int, str]:
    """Set torch's intra-op threads from ``--threads`` (N or ``auto``; the CLI's default is ``auto``);
    None (the Python API's default) leaves the caller's setting alone. Returns (threads, reason)."""
    if value is None:
        return torch.get_num_threads(), "unchanged"
    n = parse_threads(value)
    n, why = (check_threads(n), "--threads") if n is not None else default_threads()
    torch.set_num_threads(n)
    return n, why
