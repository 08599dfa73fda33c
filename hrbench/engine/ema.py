"""Exponential moving average of a model's weights (``--set train.ema=exp-momentum``; RTMPose-s/m's recipe).

Semantics as mmengine's ``BaseAveragedModel.update_parameters`` (``mmengine/model/averaged_model.py``
lines 91-117) with mmpose's ``ExpMomentumEMA.avg_func`` (``mmpose/engine/hooks/ema_hook.py`` lines 13-69,
a port of mmdet's ``mmdet/models/layers/ema.py``), driven as mmengine's ``EMAHook``
(``mmengine/hooks/ema_hook.py``):

* the average is a copy of the model; with ``update_buffers`` (the RTMPose configs) it averages the
  whole ``state_dict`` (BatchNorm running statistics included); entries that are not floating point
  (``num_batches_tracked``) keep the value of the first update;
* update ``n`` (0-based, counted by ``steps``; once per training iteration, after the optimiser step:
  ``after_train_iter``): ``n = 0`` copies the model; otherwise, when ``n % interval == 0``,
  ``avg = (1 - m_n) x avg + m_n x param`` with ``m_n = (1 - momentum) x exp(-(1 + n) / gamma) + momentum``
  (RTMPose: momentum 0.0002, gamma 2000); ``steps`` counts every call;
* validation, ``best.pt`` selection and the checkpoints' ``state_dict`` use the averaged weights (EMAHook
  swaps them in before validation and into the saved ``state_dict``, "so that we can directly load the
  averaged model weights for deployment"); ``hrbench eval`` / ``predict`` / ``export`` therefore read the
  EMA weights. The trained weights travel as ``train_state_dict``, the average's counter as ``ema``,
  so a resumed run continues bit for bit.

Several processes: DDP keeps the parameters equal on every rank, so their averages are; the BatchNorm
statistics are each rank's own (DDP broadcasts rank 0's before every forward, and rank 0's are saved),
so :meth:`ModelEMA.sync_buffers` gives every rank rank 0's averaged buffers before they are used.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

from hrbench.engine import dist as D


def exp_momentum(steps: int, momentum: float, gamma: float) -> float:
    """ExpMomentumEMA's momentum of update number ``steps``: ``(1 - momentum) exp(-(1 + steps) / gamma) + momentum``."""
    return (1.0 - momentum) * math.exp(-float(1 + steps) / gamma) + momentum


class ModelEMA:
    """The averaged copy of ``model`` (module docstring); ``module`` is the averaged model (eval-ready)."""

    def __init__(self, model: nn.Module, momentum: float = 0.0002, gamma: float = 2000.0, interval: int = 1,
                 update_buffers: bool = True) -> None:
        self.module = copy.deepcopy(model).requires_grad_(False)
        self.momentum = float(momentum)
        self.gamma = float(gamma)
        self.interval = int(interval)
        self.update_buffers = update_buffers
        self.steps = 0

    def _pairs(self, model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if self.update_buffers:
            src, avg = model.state_dict(), self.module.state_dict()
            return [(avg[k], src[k]) for k in avg]
        return list(zip(self.module.parameters(), model.parameters(), strict=True))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One update from ``model``'s current weights (after an optimiser step)."""
        if self.steps == 0:
            for avg, src in self._pairs(model):
                avg.copy_(src)
        elif self.steps % self.interval == 0:
            m = exp_momentum(self.steps, self.momentum, self.gamma)
            for avg, src in self._pairs(model):
                if avg.dtype.is_floating_point:
                    avg.mul_(1.0 - m).add_(src.to(avg.device), alpha=m)
        if not self.update_buffers:  # buffers follow the model
            for b_avg, b_src in zip(self.module.buffers(), model.buffers(), strict=True):
                b_avg.copy_(b_src)
        self.steps += 1

    @torch.no_grad()
    def sync_buffers(self, src: int = 0) -> None:
        """Every rank takes rank ``src``'s averaged buffers (module docstring); no-op in one process."""
        if D.active():
            for b in self.module.buffers():
                torch.distributed.broadcast(b, src=src)

    def state(self) -> dict[str, Any]:
        """The checkpoint's ``ema`` entry (the weights themselves are its ``state_dict``)."""
        return {"kind": "exp-momentum", "steps": self.steps, "momentum": self.momentum, "gamma": self.gamma,
                "interval": self.interval, "update_buffers": self.update_buffers}

    def load(self, state: dict[str, Any], weights: dict[str, torch.Tensor]) -> None:
        """Restore :meth:`state` and the averaged ``weights``."""
        self.module.load_state_dict(weights, strict=True)
        self.steps = int(state["steps"])
