"""The optimiser of a run (``train.optimizer``) and its parameter groups.

* ``adam``: ``torch.optim.Adam`` over all parameters, L2 weight decay (the papers' recipes, mmcv 1.x).
* ``adamw``: ``torch.optim.AdamW`` (decoupled weight decay, Loshchilov & Hutter 2019), betas and eps at
  their defaults as the RTMPose configs leave them.

Weight-decay multipliers (mmengine ``DefaultOptimWrapperConstructor.add_params``,
``mmengine/optim/optimizer/default_constructor.py`` lines 196-270, with ``bypass_duplicate=True``):
the weight and bias of a normalisation layer (``_BatchNorm``, ``_InstanceNorm``, ``GroupNorm``,
``LayerNorm``) decay with ``weight_decay x norm_decay_mult``; any other parameter named ``bias`` with
``weight_decay x bias_decay_mult``; everything else with ``weight_decay``. A parameter shared by several
modules counts once, where the module walk meets it first. RTMPose: both multipliers 0. With both
multipliers 1 there is one group, exactly as before.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

from hrbench.engine.recipes import Training

#: The normalisation layers of mmengine's ``is_norm``.
NORM_TYPES = (_BatchNorm, _InstanceNorm, nn.GroupNorm, nn.LayerNorm)


def param_groups(model: nn.Module, weight_decay: float, norm_decay_mult: float = 1.0,
                 bias_decay_mult: float = 1.0) -> list[dict[str, Any]]:
    """Parameter groups by weight decay (module docstring), in the order the module walk meets them;
    each group has ``params``, ``weight_decay`` and ``names`` (for reading, not used by torch)."""
    groups: dict[float, dict[str, Any]] = {}
    seen: set[int] = set()
    for prefix, module in model.named_modules():
        is_norm = isinstance(module, NORM_TYPES)
        for name, p in module.named_parameters(recurse=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            if is_norm:
                wd = weight_decay * norm_decay_mult
            elif name == "bias":
                wd = weight_decay * bias_decay_mult
            else:
                wd = weight_decay
            group = groups.setdefault(wd, {"params": [], "weight_decay": wd, "names": []})
            group["params"].append(p)
            group["names"].append(f"{prefix}.{name}" if prefix else name)
    return list(groups.values())


def build_optimizer(model: nn.Module, t: Training) -> torch.optim.Optimizer:
    """The optimiser of the resolved training settings ``t`` over ``model``'s parameters."""
    if t.optimizer == "adam" and t.norm_decay_mult == 1 and t.bias_decay_mult == 1:
        return torch.optim.Adam(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)  # one group, as before
    groups = [{k: v for k, v in g.items() if k != "names"}
              for g in param_groups(model, t.weight_decay, t.norm_decay_mult, t.bias_decay_mult)]
    cls = torch.optim.AdamW if t.optimizer == "adamw" else torch.optim.Adam
    return cls(groups, lr=t.lr, weight_decay=t.weight_decay)
