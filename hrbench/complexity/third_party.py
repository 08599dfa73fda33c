"""Third-party counters, run quietly, each with a concrete list of what it left out.

* fvcore ``FlopCountAnalysis`` traces the model with the JIT and counts one "flop" per
  multiply-accumulate of convolutions and matrix products (plus norm / upsample / adaptive-pool
  terms); ATen ops without a handle are either reported as unsupported or silently ignored.
* ptflops ``get_model_complexity_info`` (pytorch backend) hooks known ``nn`` module types and
  patches a few ``torch`` / ``F`` functions; any other module type or function counts zero.

Each function returns a :class:`LibCount`; a library failure becomes ``error`` (never raises).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import warnings
from collections import Counter

import torch
from torch import nn
from torch.overrides import resolve_name

from hrbench.complexity.hooks import ModuleStack
from hrbench.complexity.probe import _DATA_OPS, Probe, example_input
from hrbench.complexity.traffic import by_count
from hrbench.errors import brief


@dataclasses.dataclass
class LibCount:
    """A library's total (raw, its own unit), per-module counts and what it skipped."""

    total: int | None = None
    by_module: dict[str, int] = dataclasses.field(default_factory=dict)  # exclusive per module
    skipped: dict[str, object] = dataclasses.field(default_factory=dict)
    error: str | None = None
    by_operator: dict[str, int] = dataclasses.field(default_factory=dict)  # fvcore: per handled op
    by_function: dict[str, int] = dataclasses.field(default_factory=dict)  # ptflops: per patched function


@contextlib.contextmanager
def _quiet():
    """Swallow the libraries' prints, warnings and log records."""
    out, err = io.StringIO(), io.StringIO()
    loggers = [logging.getLogger(n) for n in ("fvcore", "fvcore.nn.jit_analysis", "ptflops")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            warnings.simplefilter("ignore")
            yield out
    finally:
        for lg, lv in zip(loggers, levels, strict=True):
            lg.setLevel(lv)


# --- fvcore ---------------------------------------------------------------------------------
def fvcore_count(model: nn.Module, input_hw: tuple[int, int]) -> LibCount:
    """fvcore's total with ``unsupported_ops()`` (what it warns about), the ops it ignores by
    default that do arithmetic (e.g. ``aten::relu``), and ``uncalled_modules()``."""
    try:
        with _quiet():
            from fvcore.nn import FlopCountAnalysis
            from fvcore.nn.jit_analysis import _IGNORED_OPS
    except Exception as e:  # pragma: no cover - fvcore is a dependency
        return LibCount(error=f"fvcore unavailable: {brief(e)}")
    was_training = model.training
    model.eval()
    try:
        with _quiet(), torch.no_grad():
            fa = FlopCountAnalysis(model, (example_input(input_hw),))
            fa.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
            # Report every op fvcore gives no count to: clear its default "ignore" list (the
            # number is unchanged: ignored and unsupported ops both count zero).
            if hasattr(fa, "_ignored_ops"):
                fa._ignored_ops = set()
            total = int(fa.total())
            all_skipped = fa.unsupported_ops()
            by_mod = fa.by_module()
            by_op = {k: int(v) for k, v in fa.by_operator().items() if v}
            uncalled = sorted(fa.uncalled_modules())
    except Exception as e:
        return LibCount(error=f"fvcore failed: {brief(e)}")
    finally:
        model.train(was_training)
    unsupported = Counter({k: v for k, v in all_skipped.items() if k not in _IGNORED_OPS})
    # ops fvcore ignores by default that do arithmetic (relu, clamp, floor_divide, ...), not views/copies
    ignored = Counter({k: v for k, v in all_skipped.items() if k in _IGNORED_OPS and not _fvcore_data_op(k)})
    return LibCount(
        total=total,
        by_module=_exclusive(dict(by_mod), model),
        skipped={"unsupported_ops": by_count(unsupported), "ignored_ops": by_count(ignored),
                 "uncalled_modules": uncalled},
        by_operator=dict(sorted(by_op.items())),
    )


_FVCORE_META = {"Int", "ScalarImplicit", "size", "to", "type_as", "arange", "nonzero", "index_put", "masked_fill",
                "new_empty", "new_full", "new_zeros", "zeros", "zeros_like", "ones", "full", "full_like", "empty",
                "dropout"}


def _fvcore_data_op(kind: str) -> bool:
    """An ATen op of fvcore's ignore list that only allocates, views or moves data."""
    name = kind.split("::")[-1].rstrip("_")
    return name in _DATA_OPS or name in _FVCORE_META


def _exclusive(inclusive: dict[str, int], model: nn.Module) -> dict[str, int]:
    """Per-module counts excluding children, from fvcore's inclusive ``by_module``."""
    out: dict[str, int] = {}
    for name, mod in model.named_modules():
        own = inclusive.get(name, 0) - sum(inclusive.get(f"{name}.{c}" if name else c, 0)
                                           for c, _ in mod.named_children())
        if own:
            out[name] = int(own)
    return out


# --- ptflops --------------------------------------------------------------------------------
def ptflops_count(model: nn.Module, input_hw: tuple[int, int], probe: Probe | None = None) -> LibCount:
    """ptflops (pytorch backend) total, per-module counts, the module types it treats as zero-op,
    the ``torch`` functions it did not count (from ``probe``'s census) and the ones it counted
    twice (a patched function called inside a module it already hooks, e.g. ``F.relu`` in ReLU)."""
    try:
        with _quiet():
            from ptflops import get_model_complexity_info
            from ptflops import pytorch_engine as engine
            from ptflops.pytorch_ops import FUNCTIONAL_MAPPING, MODULES_MAPPING, TENSOR_OPS_MAPPING
    except Exception as e:  # pragma: no cover - ptflops is a dependency
        return LibCount(error=f"ptflops unavailable: {brief(e)}")

    rec = _PtflopsRecorder(model, MODULES_MAPPING, (*FUNCTIONAL_MAPPING, *TENSOR_OPS_MAPPING))
    was_training = model.training
    x = example_input(input_hw)
    original_call = engine.torch_function_wrapper.__call__
    try:
        engine.torch_function_wrapper.__call__ = rec.wrap_call(original_call)
        with _quiet() as printed, rec.stack, torch.no_grad():
            macs, _ = get_model_complexity_info(
                model, (3, *input_hw), print_per_layer_stat=False, as_strings=False,
                input_constructor=lambda _res: x, ost=io.StringIO(), verbose=False,
                custom_modules_hooks=rec.module_hooks(), backend="pytorch")
        if macs is None:
            lines = [ln for ln in printed.getvalue().splitlines() if ln.strip()]
            return LibCount(error="ptflops failed: " + (lines[-1] if lines else "no result"))
    except Exception as e:
        return LibCount(error=f"ptflops failed: {brief(e)}")
    finally:
        engine.torch_function_wrapper.__call__ = original_call
        model.train(was_training)
        _strip_ptflops(model)
    return rec.result(int(macs), probe)


class _PtflopsRecorder:
    """What ptflops counts where during one run: per module (its own module hooks, wrapped) and per
    patched function (inside a module it hooks: counted twice; outside one: counted once)."""

    def __init__(self, model: nn.Module, modules_mapping: dict, functions: tuple) -> None:
        self.model = model
        self.names = {m: n for n, m in model.named_modules()}
        self.mapping = modules_mapping
        self.supported = set(modules_mapping)
        self.op_names = {id(f): resolve_name(f) or getattr(f, "__qualname__", repr(f)) for f in functions}
        self.per_module: dict[str, int] = {}
        self.counted_out: Counter[str] = Counter()  # patched functions counted outside hooked modules
        self.counted_twice: Counter[str] = Counter()
        self.by_function: Counter[str] = Counter()  # ptflops' count per patched function ("... in Module" inside one)
        self.stack = ModuleStack(model)

    def module_hooks(self) -> dict:
        """ptflops' hook of every module type of the model it supports, also recording the module's count."""
        def wrap(orig):
            def hook(mod, inp, out):
                orig(mod, inp, out)
                self.per_module[self.names.get(mod, type(mod).__name__)] = int(mod.__flops__)

            return hook

        return {t: wrap(self.mapping[t]) for t in {type(m) for m in self.names} if t in self.supported}

    def wrap_call(self, original_call):
        """A replacement for ptflops' patched-function wrapper's ``__call__`` that records each call."""
        rec = self

        def recording_call(wrapper, *args, **kwargs):
            name = rec.op_names.get(id(wrapper.op), getattr(wrapper.op, "__name__", "?"))
            inner = rec.stack.stack[-1][1] if rec.stack.stack else None
            if inner is not None and type(inner) in rec.supported:
                name = f"{name} in {type(inner).__name__}"
                rec.counted_twice[name] += 1
            else:
                rec.counted_out[name] += 1
            before = len(wrapper.collector)
            out = original_call(wrapper, *args, **kwargs)
            rec.by_function[name] += int(sum(wrapper.collector[before:]))
            return out

        return recording_call

    def result(self, macs: int, probe: Probe | None) -> LibCount:
        """The count of a finished run: ``macs`` split per module, and what was skipped or counted twice."""
        zero_types: Counter[str] = Counter()
        for mod, name in self.names.items():
            if next(mod.children(), None) is None and type(mod) not in self.supported and self.stack.calls.get(name):
                zero_types[type(mod).__name__] += 1
        skipped: dict[str, object] = {"zero_op_modules": by_count(zero_types)}
        if probe is not None:
            mods = dict(self.model.named_modules())
            seen: Counter[str] = Counter(
                f for f, owner in probe.census.calls if type(mods.get(owner)) not in self.supported)
            out = self.counted_out
            skipped["uncounted_functions"] = by_count(
                Counter({f: n - out.get(f, 0) for f, n in seen.items() if n > out.get(f, 0)}))
        skipped["counted_twice"] = by_count(self.counted_twice)
        per_module = dict(self.per_module)
        functional = macs - sum(per_module.values())
        if functional:
            per_module["(patched functions)"] = functional
        return LibCount(total=macs, by_module=per_module, skipped=skipped,
                        by_function=dict(sorted(self.by_function.items())))


def _strip_ptflops(model: nn.Module) -> None:
    """Remove the methods/attributes ptflops leaves on the model it measured."""
    for attr in ("start_flops_count", "stop_flops_count", "reset_flops_count", "compute_average_flops_cost",
                 "__batch_counter__"):
        if attr in model.__dict__:
            delattr(model, attr)
