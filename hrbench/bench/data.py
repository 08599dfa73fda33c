"""Training data throughput (``hrbench bench-data``): samples per second of the top-down training
pipeline's loader with 0..N workers, for

* ``cpu``: the reference pipeline (:class:`hrbench.data.TopDownDataset`): decode, augmentation,
  ``cv2.warpAffine`` warp, numpy targets, all in the loader workers;
* ``tensor``: the workers' part of the device-side pipeline
  (:class:`hrbench.speed.gpu_pipeline.RawTopDownDataset`: decode + augmentation draws + padding
  collate); the warp and targets then run batched on the device (:class:`DeviceTopDown`), whose
  throughput is measured on its own (``device_step``: the same batch ``batches`` times,
  synchronised on CUDA).

Each loader row iterates ``batches`` batches after one untimed batch (worker start-up excluded) and
reports samples/s overall and per worker (0 workers: the main process counts as one).
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from hrbench.bench.timing import sync
from hrbench.errors import HrbenchError

PIPELINES = ("cpu", "tensor")


@dataclasses.dataclass
class DataRow:
    pipeline: str
    workers: int
    samples: int
    seconds: float
    samples_per_s: float
    per_worker: float


@dataclasses.dataclass
class DataBenchResult:
    root: str
    dataset: str
    split: str
    input_hw: tuple[int, int]
    batch: int
    batches: int
    device: str
    threads: int
    rows: list[DataRow]
    device_step_samples_per_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"root": self.root, "dataset": self.dataset, "split": self.split,
                "input": f"{self.input_hw[0]}x{self.input_hw[1]}", "batch": self.batch, "batches": self.batches,
                "device": self.device, "threads": self.threads, "rows": [dataclasses.asdict(r) for r in self.rows],
                "device_step_samples_per_s": self.device_step_samples_per_s}


def _loader_rate(loader: DataLoader, batches: int) -> tuple[int, float]:
    """(samples, seconds) of ``batches`` batches after one untimed one."""
    it = iter(loader)
    next(it)
    n = 0
    t0 = time.perf_counter()
    for batch in itertools.islice(it, batches):
        n += len(batch["meta"]["bbox_id"])
    return n, time.perf_counter() - t0


def _step_rate(step, batch: dict, repeats: int, device: torch.device) -> float:
    """Samples/s of ``step(batch)`` (one untimed call, then ``repeats`` timed ones)."""
    step(batch)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        step(batch)
    sync(device)
    return repeats * len(batch["meta"]["bbox_id"]) / (time.perf_counter() - t0)


def bench_data(root: str | Path, dataset: str = "coco", split: str = "train", input_hw: tuple[int, int] = (256, 192),
               worker_counts: Sequence[int] = (0, 1, 2), batch: int = 32, batches: int = 4, device: str = "cpu",
               pipelines: Sequence[str] = PIPELINES) -> DataBenchResult:
    """Throughput of the training pipelines on the dataset under ``root``, one row per pipeline and
    loader worker count in ``worker_counts`` (see the module docstring)."""
    from hrbench.data import build_dataset, collate
    from hrbench.data.raw import RawTopDownDataset
    from hrbench.device import resolve_device
    from hrbench.speed.gpu_pipeline import DeviceTopDown

    if batch < 1:
        raise HrbenchError(f"invalid --batch {batch}: must be a positive integer")
    if batches < 1:
        raise HrbenchError(f"invalid --batches {batches}: must be a positive integer")
    if not worker_counts or any(w < 0 for w in worker_counts):
        raise HrbenchError(f"invalid worker counts {list(worker_counts)}: expected integers >= 0")
    bad = [p for p in pipelines if p not in PIPELINES]
    if bad or not pipelines:
        raise HrbenchError(f"unknown pipeline(s) {', '.join(bad) or '(none)'}: choose from {', '.join(PIPELINES)}")
    dev = resolve_device(device)
    hw = (int(input_hw[0]), int(input_hw[1]))
    ds = build_dataset(dataset, root, split, hw, train=True)
    need = batch * (batches + 1)
    order = [i % len(ds) for i in range(need)]  # small datasets are cycled
    rows: list[DataRow] = []
    raw = RawTopDownDataset(ds)
    for pipeline in pipelines:
        for w in worker_counts:
            if pipeline == "cpu":
                loader = DataLoader(ds, batch_size=batch, sampler=order, num_workers=w, collate_fn=collate)
            else:
                loader = DataLoader(raw, batch_size=batch, sampler=order, num_workers=w, collate_fn=raw.collate)
            n, secs = _loader_rate(loader, batches)
            rows.append(DataRow(pipeline, w, n, secs, n / secs, n / secs / max(w, 1)))
    step_rate = None
    if "tensor" in pipelines:
        one = raw.collate([raw[i] for i in order[:batch]])
        if dev.type == "cuda":
            one = {k: (v.pin_memory() if isinstance(v, torch.Tensor) else v) for k, v in one.items()}
        step_rate = _step_rate(DeviceTopDown(hw, dev, ds.codec), one, batches, dev)
    return DataBenchResult(str(root), dataset, split, hw, batch, batches, dev.type, torch.get_num_threads(), rows,
                           step_rate)
