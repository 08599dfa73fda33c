"""Process-group helpers: one process (plain ``python``/``hrbench``) or several under ``torchrun``.

Under ``torchrun`` (``WORLD_SIZE`` > 1) the default process group uses NCCL on CUDA and gloo on
CPU; every helper here degrades to a no-op in a single process.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist

from hrbench.device import resolve_device
from hrbench.errors import HrbenchError


@dataclasses.dataclass(frozen=True)
class DistInfo:
    """Rank layout of this process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(device: str) -> tuple[DistInfo, torch.device]:
    """Join the torchrun process group if there is one; return the layout and this rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), resolve_device(device)
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    dev = resolve_device(device, info.local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
        # one group per process, kept for every later train/evaluate call and closed at exit
        # (re-creating a group in the same torchrun job can hang)
        atexit.register(teardown)
    return info, dev


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def barrier() -> None:
    if active():
        dist.barrier()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` of rank ``src`` on every rank."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def on_main(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on rank 0 only and give every rank its result; when it fails, every rank raises
    (rank 0 the original error, the others the same one-line error marked ``all_ranks`` so that only
    rank 0 prints it) instead of the other ranks waiting forever in their next collective."""
    if not active():
        return fn()
    result: Any = None
    failure: BaseException | None = None
    if dist.get_rank() == 0:
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - every failure must reach the other ranks, then re-raised
            failure = exc
    shared = broadcast_object((result, _portable(failure)))
    if failure is not None:
        raise failure
    if shared[1] is not None:
        raise shared[1]
    return shared[0]


def _portable(exc: BaseException | None) -> HrbenchError | None:
    """``exc`` as the one-line error other ranks raise (marked so that only rank 0 prints it)."""
    if exc is None:
        return None
    err = exc if isinstance(exc, HrbenchError) else HrbenchError(f"rank 0 failed: {type(exc).__name__}: {exc}")
    copy = type(err)(*err.args)
    copy.all_ranks = True
    return copy


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, ordered by rank."""
    if not active():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Element-wise sum over ranks (float64)."""
    if not active():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def shard(n: int, info: DistInfo) -> list[int]:
    """Indices ``rank, rank + world, ...`` of ``range(n)``: disjoint, together covering every index once."""
    return list(range(info.rank, n, info.world_size))


def unshard(parts: list[list[Any]], n: int) -> list[Any]:
    """Inverse of :func:`shard`: rank-ordered per-rank lists back into the original order."""
    world = len(parts)
    out: list[Any] = [None] * n
    for rank, items in enumerate(parts):
        for j, item in enumerate(items):
            out[rank + j * world] = item
    return out
