"""Hook-based counting, the papers' own way: forward hooks on leaf modules, one batch-1 input."""

from __future__ import annotations

import torch
from torch import nn

from hrbench.complexity.conventions import Convention


def hook_counts(model: nn.Module, convention: Convention, input_hw: tuple[int, int]) -> dict[str, int]:
    """Per-module counts (qualified name -> raw count) of one forward pass on a random input.

    Hooks go on every leaf module and on any module the convention has a rule for (e.g. the
    dynamic-kernel convolution); with ``convention.last_call_only`` a module's last call wins.
    """
    counts: dict[str, int] = {}
    handles = []

    def make_hook(name: str, rule):
        def hook(mod, inp, out):
            x = tuple(inp[0].shape)
            y = tuple((out[0] if isinstance(out, (tuple, list)) else out).shape)
            value = int(rule(mod, x, y))
            counts[name] = value if convention.last_call_only else counts.get(name, 0) + value

        return hook

    for name, mod in model.named_modules():
        rule = convention.rule_for(mod)
        if rule is not None:
            handles.append(mod.register_forward_hook(make_hook(name, rule)))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.randn(1, 3, *input_hw))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return counts
