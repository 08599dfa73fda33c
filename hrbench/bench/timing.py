"""Timing shared by the benchmarks: synchronised wall-clock (or CUDA-event) readings and their statistics."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch


def sync(device: torch.device) -> None:
    """Wait for the queued CUDA work of ``device`` (nothing on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


#: CPU clocks of :func:`time_calls`: wall time, or this process's CPU time (which the other processes
#: of a shared machine do not inflate; with N intra-op threads it sums their time).
CPU_CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def time_calls(fn: Callable[[], Any], iters: int, warmup: int, device: torch.device,
               clock: str = "wall") -> list[float]:
    """Milliseconds of ``iters`` calls of ``fn`` after ``warmup`` untimed ones: CUDA events around each
    call on a GPU (read after one synchronisation), on CPU the ``clock`` of :data:`CPU_CLOCKS`."""
    for _ in range(warmup):
        fn()
    sync(device)
    if device.type == "cuda":
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(iters)]
        for start, end in events:
            start.record()
            fn()
            end.record()
        torch.cuda.synchronize(device)
        return [start.elapsed_time(end) for start, end in events]
    read = CPU_CLOCKS[clock]
    times: list[float] = []
    for _ in range(iters):
        t = read()
        fn()
        times.append((read() - t) * 1000.0)
    return times


def median_ms(fn: Callable[[], Any], iters: int, warmup: int, device: torch.device) -> float:
    """Median of :func:`time_calls`, in milliseconds."""
    return statistics.median(time_calls(fn, iters, warmup, device))


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (q in [0, 100]) of ``values``."""
    s = sorted(values)
    if len(s) == 1:
        return s[0]
    pos = (len(s) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def summarize(times_ms: Sequence[float], batch: int) -> dict[str, float]:
    """Median, IQR, p10 and p90 (ms) and throughput (``batch`` / median, per second) of ``times_ms``."""
    med = statistics.median(times_ms)
    return {"median_ms": med, "iqr_ms": percentile(times_ms, 75) - percentile(times_ms, 25),
            "p10_ms": percentile(times_ms, 10), "p90_ms": percentile(times_ms, 90),
            "throughput": batch / (med / 1000.0) if med > 0 else float("inf")}
