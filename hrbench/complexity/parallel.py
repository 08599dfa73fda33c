"""Counting many models: :func:`measure_many` (in order, optionally over spawned processes) and
:func:`counting_threads` (one intra-op thread while counting)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from hrbench.complexity.measure import measure
from hrbench.complexity.result import Complexity
from hrbench.errors import HrbenchError, brief

__all__ = ["counting_threads", "measure_many"]


def _measure_or_error(name: str, kwargs: dict[str, Any]) -> Complexity | dict[str, str]:
    try:
        return measure(name, **kwargs)
    except HrbenchError as e:
        return {"arch": name, "error": str(e)}
    except Exception as e:  # one broken model must not stop the others
        return {"arch": name, "error": brief(e)}


def _worker_init() -> None:
    """A spawned counting process: one thread for its lifetime (see :func:`counting_threads`), no warnings."""
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")


def measure_many(names: Sequence[str], jobs: int = 1, **kwargs: Any) -> list[Complexity | dict[str, str]]:
    """:func:`~hrbench.complexity.measure.measure` for each of ``names`` (same keyword arguments), in
    order; a model that fails gives ``{"arch", "error"}``. ``jobs > 1`` spreads the models over that
    many spawned processes (fvcore's JIT trace is the slow part and is single-threaded); the models
    (and engines) must then be registered by hrbench's own modules (a spawned process only sees those)."""
    if jobs <= 1 or len(names) < 2:
        return [_measure_or_error(n, kwargs) for n in names]
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(min(jobs, len(names)), mp_context=ctx,
                                                initializer=_worker_init) as pool:
        return list(pool.map(_measure_or_error, names, [kwargs] * len(names)))


@contextlib.contextmanager
def counting_threads() -> Iterator[None]:
    """One intra-op thread while counting (latency-bound on tiny ops: more threads only oversubscribe);
    torch's thread count is restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
