"""Hook-based counting, the papers' own way: forward hooks on leaf modules, one batch-1 input."""

from __future__ import annotations

import torch
from torch import nn

from hrbench.complexity.conventions import Convention


def _shape(value) -> tuple[int, ...]:
    return tuple((value[0] if isinstance(value, (tuple, list)) else value).shape)


class PaperHooks:
    """Context manager: forward hooks that count every module ``convention`` has a rule for.

    ``counts`` maps qualified module names to raw counts; with ``convention.last_call_only`` a
    module's last call wins (torchstat), otherwise calls add up. ``calls`` counts the calls;
    ``shapes`` keeps every call's (input, output) shapes (for :mod:`~hrbench.complexity.explain`).
    """

    def __init__(self, model: nn.Module, convention: Convention) -> None:
        self.model = model
        self.convention = convention
        self.counts: dict[str, int] = {}
        self.calls: dict[str, int] = {}
        self.shapes: dict[str, list[tuple[tuple[int, ...], tuple[int, ...]]]] = {}
        self._handles: list = []

    def _hook(self, name: str, rule):
        def hook(mod, inp, out):
            i, o = _shape(inp[0]), _shape(out)
            value = int(rule(mod, i, o))
            self.calls[name] = self.calls.get(name, 0) + 1
            self.shapes.setdefault(name, []).append((i, o))
            if self.convention.last_call_only:
                self.counts[name] = value
            else:
                self.counts[name] = self.counts.get(name, 0) + value

        return hook

    def __enter__(self) -> PaperHooks:
        for name, mod in self.model.named_modules():
            rule = self.convention.rule_for(mod)
            if rule is not None:
                self._handles.append(mod.register_forward_hook(self._hook(name, rule)))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()


def hook_counts(model: nn.Module, convention: Convention, input_hw: tuple[int, int]) -> dict[str, int]:
    """Per-module counts (qualified name -> raw count) of one forward pass on a random input.

    Hooks go on every module the convention has a rule for (leaf layers and, e.g., the
    dynamic-kernel convolution); with ``convention.last_call_only`` a module's last call wins.
    """
    was_training = model.training
    try:
        model.eval()
        with PaperHooks(model, convention) as hooks, torch.no_grad():
            model(torch.randn(1, 3, *input_hw))
    finally:
        model.train(was_training)
    return hooks.counts
