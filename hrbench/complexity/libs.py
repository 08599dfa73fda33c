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

from hrbench.complexity.macs import _DATA_OPS, ModuleStack, Probe, example_input


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


def _error(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".strip()


def _sorted_counter(c: Counter) -> dict[str, int]:
    return dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))


# --- fvcore ---------------------------------------------------------------------------------
def fvcore_count(model: nn.Module, input_hw: tuple[int, int]) -> LibCount:
    """fvcore's total with ``unsupported_ops()`` (what it warns about), the ops it ignores by
    default that do arithmetic (e.g. ``aten::relu``), and ``uncalled_modules()``."""
    try:
        with _quiet():
            from fvcore.nn import FlopCountAnalysis
            from fvcore.nn.jit_analysis import _IGNORED_OPS
    except Exception as e:  # pragma: no cover - fvcore is a dependency
        return LibCount(error=f"fvcore unavailable: {_error(e)}")
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
        return LibCount(error=f"fvcore failed: {_error(e)}")
    finally:
        model.train(was_training)
    unsupported = Counter({k: v for k, v in all_skipped.items() if k not in _IGNORED_OPS})
    # ops fvcore ignores by default that do arithmetic (relu, clamp, floor_divide, ...), not views/copies
    ignored = Counter({k: v for k, v in all_skipped.items() if k in _IGNORED_OPS and not _fvcore_data_op(k)})
    return LibCount(
        total=total,
        by_module=_exclusive(dict(by_mod), model),
        skipped={"unsupported_ops": _sorted_counter(unsupported), "ignored_ops": _sorted_counter(ignored),
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
        return LibCount(error=f"ptflops unavailable: {_error(e)}")

    names = {m: n for n, m in model.named_modules()}
    supported = set(MODULES_MAPPING)
    per_module: dict[str, int] = {}

    def wrap(orig):
        def hook(mod, inp, out):
            orig(mod, inp, out)
            per_module[names.get(mod, type(mod).__name__)] = int(mod.__flops__)

        return hook

    custom = {t: wrap(MODULES_MAPPING[t]) for t in {type(m) for m in names} if t in supported}
    op_names = {id(f): resolve_name(f) or getattr(f, "__qualname__", repr(f))
                for f in (*FUNCTIONAL_MAPPING, *TENSOR_OPS_MAPPING)}
    counted_out: Counter[str] = Counter()  # patched functions counted outside hooked modules
    counted_twice: Counter[str] = Counter()
    by_function: Counter[str] = Counter()  # ptflops' count per patched function ("... in Module" inside one)
    stack = ModuleStack(model)
    original_call = engine.torch_function_wrapper.__call__

    def recording_call(self, *args, **kwargs):
        name = op_names.get(id(self.op), getattr(self.op, "__name__", "?"))
        inner = stack.stack[-1][1] if stack.stack else None
        if inner is not None and type(inner) in supported:
            name = f"{name} in {type(inner).__name__}"
            counted_twice[name] += 1
        else:
            counted_out[name] += 1
        before = len(self.collector)
        out = original_call(self, *args, **kwargs)
        by_function[name] += int(sum(self.collector[before:]))
        return out

    was_training = model.training
    x = example_input(input_hw)
    try:
        engine.torch_function_wrapper.__call__ = recording_call
        with _quiet() as printed, stack, torch.no_grad():
            macs, _ = get_model_complexity_info(
                model, (3, *input_hw), print_per_layer_stat=False, as_strings=False,
                input_constructor=lambda _res: x, ost=io.StringIO(), verbose=False,
                custom_modules_hooks=custom, backend="pytorch")
        if macs is None:
            lines = [ln for ln in printed.getvalue().splitlines() if ln.strip()]
            return LibCount(error="ptflops failed: " + (lines[-1] if lines else "no result"))
    except Exception as e:
        return LibCount(error=f"ptflops failed: {_error(e)}")
    finally:
        engine.torch_function_wrapper.__call__ = original_call
        model.train(was_training)
        _strip_ptflops(model)

    zero_types: Counter[str] = Counter()
    for mod, name in names.items():
        if next(mod.children(), None) is None and type(mod) not in supported and stack.calls.get(name):
            zero_types[type(mod).__name__] += 1
    skipped: dict[str, object] = {"zero_op_modules": _sorted_counter(zero_types)}
    if probe is not None:
        mods = dict(model.named_modules())
        seen: Counter[str] = Counter(
            f for f, owner in probe.census.calls if type(mods.get(owner)) not in supported)
        missed = Counter({f: n - counted_out.get(f, 0) for f, n in seen.items() if n > counted_out.get(f, 0)})
        skipped["uncounted_functions"] = _sorted_counter(missed)
    skipped["counted_twice"] = _sorted_counter(counted_twice)
    functional = int(macs) - sum(per_module.values())
    if functional:
        per_module["(patched functions)"] = functional
    return LibCount(total=int(macs), by_module=per_module, skipped=skipped,
                    by_function=dict(sorted(by_function.items())))


def _strip_ptflops(model: nn.Module) -> None:
    """Remove the methods/attributes ptflops leaves on the model it measured."""
    for attr in ("start_flops_count", "stop_flops_count", "reset_flops_count", "compute_average_flops_cost",
                 "__batch_counter__"):
        if attr in model.__dict__:
            delattr(model, attr)
