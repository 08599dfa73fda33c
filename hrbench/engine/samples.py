"""Reproducible sample order and augmentation, whatever the number of processes or workers.

The augmentation of sample ``i`` in epoch ``e`` is drawn from RNGs seeded by ``(seed, e, i)``
(:class:`SeededSamples`), so a run gives the same batches with 1 or W processes, 0 or N loader
workers, straight or resumed. RNG states are captured into checkpoints as plain tensors (loadable
with ``weights_only=True``).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A well-mixed 32-bit seed for the augmentation of sample ``index`` in ``epoch``."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class SeededSamples(Dataset):
    """A view of a dataset that seeds python/numpy/torch from ``(seed, epoch, index)`` before each
    sample, so the random augmentation of sample ``i`` in epoch ``e`` is the same in any process,
    worker or resumed run. In the main process (``workers=0``) the global RNG states are restored
    afterwards, so loading a sample never changes what the caller's RNGs draw next."""

    def __init__(self, base: Dataset, seed: int) -> None:
        self.base = base
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> Any:
        if get_worker_info() is not None:  # a loader worker: its RNGs are its own
            return self._draw(index)
        saved = random.getstate(), np.random.get_state(), torch.get_rng_state()  # as they are: no conversion
        try:
            return self._draw(index)
        finally:
            random.setstate(saved[0])
            np.random.set_state(saved[1])
            torch.set_rng_state(saved[2])

    def _draw(self, index: int) -> Any:
        s = sample_seed(self.seed, self.epoch, int(index))
        random.seed(s)  # the CPU generators only: what __getitem__ restores (CUDA's is not touched)
        np.random.seed(s)
        torch.default_generator.manual_seed(s)
        reseed = getattr(self.base, "reseed", None)
        if callable(reseed):  # hrbench datasets: the augmentation draw becomes a function of s
            reseed(s)
        return self.base[index]


def collate_samples(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensor/array fields of sample dicts; keep other fields (``meta``) as lists."""
    out: dict[str, Any] = {}
    for key in items[0]:
        values = [it[key] for it in items]
        if isinstance(values[0], torch.Tensor):
            out[key] = torch.stack(values)
        elif isinstance(values[0], np.ndarray):
            out[key] = torch.from_numpy(np.stack(values))
        else:
            out[key] = values
    return out


def capture_rng() -> dict[str, Any]:
    """python, numpy, torch (and CUDA) RNG states as tensors / plain values."""
    version, state, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    out: dict[str, Any] = {
        "python": {"version": version, "state": torch.tensor(state, dtype=torch.int64), "gauss": gauss},
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    nps = state["numpy"]
    np.random.set_state((nps["kind"], nps["keys"].numpy().astype(np.uint32), nps["pos"], nps["has_gauss"],
                         nps["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])

