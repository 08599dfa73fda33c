"""Forward hooks: the stack of executing modules (:class:`ModuleStack`), and hook-based counting the
papers' own way (:class:`PaperHooks`: forward hooks on the modules a convention has a rule for, batch 1)."""

from __future__ import annotations

from collections import Counter

import torch
from torch import nn

from hrbench.complexity.conventions import Convention


def _shape(value) -> tuple[int, ...]:
    return tuple((value[0] if isinstance(value, (tuple, list)) else value).shape)


class ModuleStack:
    """Tracks which modules are executing (pre/post forward hooks on every module of ``model``).

    ``stack`` holds ``(name, module)`` pairs, outermost first; ``calls`` counts calls per name.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.names = {m: n for n, m in model.named_modules()}
        self.stack: list[tuple[str, nn.Module]] = []
        self.calls: Counter[str] = Counter()
        self._handles: list = []

    def __enter__(self) -> ModuleStack:
        for module, name in self.names.items():
            self._handles.append(module.register_forward_pre_hook(self._push(name)))
            self._handles.append(module.register_forward_hook(self._pop))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self.stack.clear()

    def _push(self, name: str):
        def hook(module, args):
            self.stack.append((name, module))
            self.calls[name] += 1

        return hook

    def _pop(self, module, args, out) -> None:
        if self.stack and self.stack[-1][1] is module:
            self.stack.pop()

    @property
    def current(self) -> str:
        return self.stack[-1][0] if self.stack else ""


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
