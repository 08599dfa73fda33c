"""Training-step time on a shared CPU: torch's default thread count vs ``--threads auto``
(``hrbench bench-threads``).

Starts ``busy`` CPU-bound background processes (the "other job" of a shared machine), then times
training steps of the same model and batch with (a) one intra-op thread per core, torch's default
and hrbench's behaviour before ``--threads``, and (b) :func:`hrbench.threads.default_threads`, in
alternation, under the same load; then once more with the machine otherwise idle. Reports the
median step time of each and the ratio (see :mod:`hrbench.threads` for the cause).
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import time
from typing import Any

import torch

from hrbench.bench.timing import time_calls
from hrbench.engine.trainer import joints_mse_loss
from hrbench.errors import HrbenchError
from hrbench.factory import create_model
from hrbench.threads import default_threads, usable_cpus


def _spin(stop: Any) -> None:
    """A CPU-bound background process, until ``stop`` is set."""
    x = 0
    while not stop.is_set():
        x += 1


def _step_times(model: torch.nn.Module, x: torch.Tensor, t: torch.Tensor, threads: int, steps: int) -> list[float]:
    """Seconds of ``steps`` Adam training steps with ``threads`` intra-op threads (after one dropped warm-up)."""
    torch.set_num_threads(threads)
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    w = torch.ones(x.shape[0], t.shape[1], 1)

    def step() -> None:
        loss = joints_mse_loss(model(x), t, w)
        opt.zero_grad()
        loss.backward()
        opt.step()

    # the first step warms up allocators and is not timed
    return [ms / 1e3 for ms in time_calls(step, steps, 1, torch.device("cpu"))]


def _compare(model: torch.nn.Module, x: torch.Tensor, t: torch.Tensor, n_busy: int, steps: int,
             rounds: int) -> dict[str, Any]:
    """Both thread counts in alternation under ``n_busy`` background spinners."""
    default = usable_cpus()
    stop = mp.Event()
    spinners = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(n_busy)]
    for p in spinners:
        p.start()
    try:
        time.sleep(1.5 if n_busy else 0.0)  # let the load show in /proc/loadavg's running count
        auto, why = default_threads()
        before: list[float] = []
        after: list[float] = []
        for _ in range(rounds):
            before += _step_times(model, x, t, default, steps)
            after += _step_times(model, x, t, auto, steps)
    finally:
        stop.set()
        for p in spinners:
            p.join()
    b, a = statistics.median(before), statistics.median(after)
    return {"busy_processes": n_busy, "before_threads": default, "auto_threads": auto, "auto_why": why,
            "before_step_s": b, "auto_step_s": a, "speedup": b / a}


def bench_threads(arch: str = "lite18", input_hw: tuple[int, int] = (128, 96), batch: int = 16, steps: int = 6,
                  busy: int = 1, rounds: int = 2) -> dict[str, Any]:
    """Median training-step seconds with torch's default threads and with the ``auto`` default,
    under ``busy`` background spinners (``loaded``), and idle. torch's thread count is restored after."""
    for name, value, least in (("--batch", batch, 1), ("--steps", steps, 1), ("--busy", busy, 0)):
        if value < least:
            raise HrbenchError(f"invalid {name} {value}: must be >= {least}")
    torch.manual_seed(0)
    model = create_model(arch, num_keypoints=17).train()
    x = torch.randn(batch, 3, *input_hw)
    t = torch.rand(batch, 17, input_hw[0] // 4, input_hw[1] // 4)
    result: dict[str, Any] = {"arch": arch, "input": f"{input_hw[0]}x{input_hw[1]}", "batch": batch,
                              "cpus": usable_cpus()}
    threads = torch.get_num_threads()
    try:
        for label, n_busy in (("loaded", busy), ("idle", 0)):
            result[label] = _compare(model, x, t, n_busy, steps, rounds)
    finally:
        torch.set_num_threads(threads)
    return result
