"""Per-module and per-block-type breakdowns of the engines' exclusive (innermost-module) counts,
and what a hook-based convention left out on one model."""

from __future__ import annotations

from typing import Any

from torch import nn

from hrbench.complexity.conventions import Convention
from hrbench.complexity.engines import engine_names, scaled
from hrbench.complexity.probe import Probe, is_data_movement
from hrbench.complexity.traffic import by_count, is_user_module


def convention_skips(model: nn.Module, conv: Convention, probe: Probe) -> dict[str, Any]:
    """What the hook-based convention left out on this model: called modules without a rule
    (by type), ``torch`` functions called outside counted modules, and (torchstat) the calls
    beyond the first of modules called several times."""
    mods = dict(model.named_modules())
    zero_types: dict[str, int] = {}
    for name in probe.stack.calls:
        m = mods.get(name)
        if m is None or next(m.children(), None) is not None or conv.rule_for(m) is not None:
            continue
        zero_types[type(m).__name__] = zero_types.get(type(m).__name__, 0) + 1
    funcs: dict[str, int] = {}
    for f, owner in probe.census.calls:
        m = mods.get(owner)
        if m is not None and conv.rule_for(m) is not None:
            continue
        if not is_data_movement(f):
            funcs[f] = funcs.get(f, 0) + 1
    out: dict[str, Any] = {
        "zero_count_modules": by_count(zero_types),
        "uncounted_functions": by_count(funcs),
    }
    if conv.last_call_only:
        repeated = {n: c - 1 for n, c in probe.stack.calls.items()
                    if c > 1 and mods.get(n) is not None and conv.rule_for(mods[n]) is not None}
        out["repeated_calls_not_counted"] = dict(sorted(repeated.items()))
    return out


def module_rows(model: nn.Module, exclusive: dict[str, dict[str, int]], depth: int) -> list[dict[str, Any]]:
    """Per-module totals (each engine in its unit; traffic: launches, M elements written, MB at fp32)
    for module names up to ``depth`` dotted parts."""
    mods = dict(model.named_modules())
    keep = [n for n in mods if n.count(".") < depth]
    keep_set = set(keep)
    sums: dict[str, dict[str, int]] = {n: {} for n in keep}
    for engine, counts in exclusive.items():
        for name, value in counts.items():
            parts = name.split(".") if name and name in mods else []
            for i in range(0, min(depth, len(parts)) + 1):
                prefix = ".".join(parts[:i])
                if prefix in keep_set:
                    sums[prefix][engine] = sums[prefix].get(engine, 0) + value
    names = engine_names()  # the engines in table order, then the series they carry (traffic)
    columns = [e for e in names if e in exclusive] + [k for k in exclusive if k not in names]
    rows = []
    for n in keep:
        if not sums[n]:
            continue
        row: dict[str, Any] = {"module": n or "(total)", "type": type(mods[n]).__name__}
        for key in columns:
            row[key] = round(scaled(key, sums[n].get(key, 0)), 6)
        rows.append(row)
    return rows


def block_type_rows(model: nn.Module, exclusive: dict[str, dict[str, int]]) -> dict[str, dict[str, float]]:
    """Counts per block type, in decimal millions of each engine's raw count: for every
    model-defined module class, the count of everything executed inside its instances
    (inclusive, so rows nest: a DSC block's row includes its dynamic convolutions' row)."""
    mods = dict(model.named_modules())
    root = mods[""]

    def classes(name: str) -> set[str]:
        if name not in mods:
            return {name}  # e.g. ptflops' "(patched functions)"
        parts = name.split(".") if name else []
        found = {type(mods[".".join(parts[:i])]).__name__ for i in range(1, len(parts) + 1)
                 if is_user_module(mods[".".join(parts[:i])])}
        return found or {type(root).__name__}

    out: dict[str, dict[str, int]] = {}
    for engine, counts in exclusive.items():
        for name, value in counts.items():
            for cls in classes(name):
                out.setdefault(cls, {})
                out[cls][engine] = out[cls].get(engine, 0) + value

    def key(item):
        return (-item[1].get("macs", item[1].get("paper", 0)), item[0])

    return {cls: {e: round(v / (1 if e == "launches" else 1e6), 6) for e, v in sorted(d.items())}
            for cls, d in sorted(out.items(), key=key)}


