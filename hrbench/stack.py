"""The software stack a result was produced with, stamped on every run record and bench result.

:func:`software_stack` gives hrbench / torch / CUDA / cuDNN versions, the device name, the precision,
the intra-op CPU threads, the number of processes and, when hrbench runs from a git checkout, the
project's commit (``git_commit``; ``git_dirty``: tracked files differ from it). Outside a checkout, or
without ``git`` on the machine, the commit is None: the stamp never fails.
"""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

#: The package folder: a checkout's ``hrbench/`` when installed editable (``pip install -e .``).
PACKAGE_DIR = Path(__file__).resolve().parent


def _git(*args: str) -> str | None:
    """``git -C <package dir> ARGS`` output, or None when git is absent or fails (not a checkout)."""
    try:
        out = subprocess.run(["git", "-C", str(PACKAGE_DIR), *args], capture_output=True, text=True, timeout=10,
                             check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def git_state() -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout hrbench runs from; (None, None) when the package folder is not
    the ``hrbench/`` folder of a git work tree (an installed wheel, a venv inside some other repository)."""
    top = _git("rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() / "hrbench" != PACKAGE_DIR:
        return None, None
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return commit, None if status is None else bool(status)


def hrbench_version() -> str:
    """The installed distribution's version (the package's own metadata, no import of hrbench)."""
    try:
        return importlib.metadata.version("hrbench")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _cpu_name() -> str:
    """The CPU model from ``/proc/cpuinfo`` (Linux), else the machine type."""
    info = Path("/proc/cpuinfo")
    for line in info.read_text(errors="replace").splitlines() if info.is_file() else ():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def device_name(device: torch.device | str | None) -> str:
    """``"NVIDIA H200"`` for a CUDA device, ``"CPU (<model>)"`` for the CPU."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"CPU ({_cpu_name()})"


def software_stack(device: torch.device | str | None = None, precision: str | None = None,
                   threads: int | None = None, world_size: int = 1) -> dict[str, Any]:
    """The stamp: ``hrbench``, ``torch``, ``cuda`` (torch's CUDA build, None on a CPU build), ``cudnn``
    (None without cuDNN), ``device``, ``precision`` (``fp32`` for None), ``threads`` (torch's intra-op
    threads now, unless given), ``world_size``, ``python``, ``git_commit``, ``git_dirty``."""
    commit, dirty = git_state()
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {
        "hrbench": hrbench_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": cudnn,
        "device": device_name(device),
        "precision": precision or "fp32",
        "threads": int(threads) if threads is not None else torch.get_num_threads(),
        "world_size": int(world_size),
        "python": platform.python_version(),
        "git_commit": commit,
        "git_dirty": dirty,
    }
