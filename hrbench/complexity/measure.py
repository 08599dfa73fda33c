"""``measure``: #Params and every FLOPs count of one model, side by side, each with its unit.

Engines (all on one model built once, batch 1, eval mode):

* ``paper``    — forward hooks under the model card's convention (the published way), /2**20;
* ``analytic`` — the same convention in closed form (:mod:`walker`), must equal ``paper``;
* ``fvcore``   — fvcore ``FlopCountAnalysis`` (1 per MAC of conv/matmul, + norm/upsample/pool);
* ``ptflops``  — ptflops pytorch backend (MACs of hooked layers, + bias/BN/ReLU/pool/upsample);
* ``macs``     — true multiply-accumulates of every convolution and matrix product (:mod:`macs`).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import gc
import multiprocessing
import time
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from hrbench.complexity.conventions import Convention, get_convention
from hrbench.complexity.libs import LibCount, fvcore_count, ptflops_count
from hrbench.complexity.macs import Probe, is_data_movement, is_user_module, run_probe
from hrbench.complexity.walker import analytic_counts
from hrbench.errors import HrbenchError

ENGINES = ("paper", "analytic", "fvcore", "ptflops", "macs")

UNITS = {
    "params": "parameters (exact count, every parameter incl. unused ones)",
    "paper_mflops": "MFLOPs under the card's convention, binary M (count / 2**20), as the papers print",
    "analytic": "same convention and unit as paper_mflops, computed without a forward pass",
    "fvcore": "M fvcore flops, decimal (1e6); 1 per MAC of conv/matmul + norm, upsample, adaptive-pool terms",
    "ptflops": "MMac, decimal (1e6); MACs of hooked layers + bias, BN, activations, pooling, upsampling",
    "macs": "M MACs, decimal (1e6); every convolution and matrix product, functional ones included",
}

DATASET_OF_K = {17: "coco", 16: "mpii"}


@dataclasses.dataclass
class Complexity:
    """The result of :func:`measure`; ``to_dict()`` is the JSON form (deterministic numbers)."""

    arch: str
    input_hw: tuple[int, int]
    keypoints: int
    params: int
    convention: str
    counts: dict[str, int | None]  # raw integer counts per engine
    errors: dict[str, str] = dataclasses.field(default_factory=dict)
    skipped: dict[str, Any] = dataclasses.field(default_factory=dict)
    published: dict[str, Any] = dataclasses.field(default_factory=dict)
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    by_module: list[dict[str, Any]] | None = None
    by_block_type: dict[str, dict[str, float]] | None = None
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)  # wall time per engine (not in to_dict)

    def _scaled(self, engine: str) -> float | None:
        raw = self.counts.get(engine)
        if raw is None:
            return None
        return raw / (2**20 if engine in ("paper", "analytic") else 1e6)

    @property
    def paper_mflops(self) -> float | None:
        return self._scaled("paper")

    @property
    def analytic_matches(self) -> bool | None:
        p, a = self.counts.get("paper"), self.counts.get("analytic")
        return None if p is None or a is None else p == a

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "arch": self.arch,
            "input": f"{self.input_hw[0]}x{self.input_hw[1]}",
            "keypoints": self.keypoints,
            "params": self.params,
            "paper_mflops": self.paper_mflops,
            "analytic": self._scaled("analytic"),
            "fvcore": self._scaled("fvcore"),
            "ptflops": self._scaled("ptflops"),
            "macs": self._scaled("macs"),
            "analytic_matches": self.analytic_matches,
            "counts": dict(self.counts),
            "units": dict(UNITS),
            "convention": self.convention,
            "convention_skips": get_convention(self.convention).skips,
            "skipped": self.skipped,
            "published": self.published,
            "errors": self.errors,
        }
        if self.overrides:
            d["overrides"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.overrides.items()}
        if self.by_module is not None:
            d["by_module"] = self.by_module
        if self.by_block_type is not None:
            d["by_block_type"] = self.by_block_type
        return d


def count_params(model: nn.Module) -> int:
    """Every parameter (trainable or not, called or not), shared ones once."""
    return sum(p.numel() for p in model.parameters())


def measure(
    arch: str,
    input_hw: tuple[int, int] = (256, 192),
    num_keypoints: int = 17,
    overrides: dict[str, Any] | None = None,
    engines: Iterable[str] = ENGINES,
    by_module: bool = False,
    dataset: str | None = None,
) -> Complexity:
    """Build registered ``arch`` once and count it with every engine in ``engines``."""
    from hrbench.registry import create_model, get_entry

    entry = get_entry(arch)
    model = create_model(entry.name, num_keypoints=num_keypoints, **(overrides or {}))
    result = measure_model(model, input_hw, convention=entry.convention, engines=engines, by_module=by_module,
                           arch=entry.name)
    result.overrides = dict(overrides or {})
    result.published = published_for(entry.name, input_hw, num_keypoints, result, dataset, bool(overrides))
    return result


def published_for(name: str, input_hw: tuple[int, int], keypoints: int, result: Complexity,
                  dataset: str | None, overridden: bool) -> dict[str, Any]:
    """The model card's published params/MFLOPs at this input, with the deltas of our counts."""
    from hrbench.cards import published_complexity

    pub = published_complexity(name, input_hw, dataset or DATASET_OF_K.get(keypoints))
    if not pub:
        return {}
    pub = dict(pub)
    if overridden:
        pub["note"] = "published for the unmodified variant; --set overrides applied here"
    if pub.get("mflops") is not None and result.paper_mflops is not None:
        pub["delta_mflops"] = round(result.paper_mflops - pub["mflops"], 4)
        pub["delta"] = pub["delta_mflops"]
    if pub.get("params_M") is not None:
        pub["delta_params_M"] = round(result.params / 1e6 - pub["params_M"], 4)
    return pub


def measure_model(
    model: nn.Module,
    input_hw: tuple[int, int] = (256, 192),
    convention: str | Convention = "torchstat",
    engines: Iterable[str] = ENGINES,
    by_module: bool = False,
    arch: str | None = None,
    by_module_depth: int = 3,
) -> Complexity:
    """Count an already-built ``model`` (any nn.Module taking one (1, 3, H, W) tensor)."""
    engines = tuple(engines)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # the JIT trace allocates ~1e5 small objects; collections only cost time here
    try:
        return _measure_model(model, input_hw, convention, engines, by_module, arch, by_module_depth)
    finally:
        if gc_was_enabled:
            gc.enable()


def _measure_model(model: nn.Module, input_hw: tuple[int, int], convention: str | Convention,
                   engines: tuple[str, ...], by_module: bool, arch: str | None, by_module_depth: int) -> Complexity:
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        raise HrbenchError(f"unknown engine(s) {', '.join(unknown)}: choose from {', '.join(ENGINES)}")
    conv = convention if isinstance(convention, Convention) else get_convention(convention)
    h, w = int(input_hw[0]), int(input_hw[1])
    keypoints = int(getattr(model, "num_keypoints", 0) or 0)
    res = Complexity(arch=arch or getattr(model, "arch", "") or type(model).__name__, input_hw=(h, w),
                     keypoints=keypoints, params=count_params(model), convention=conv.name,
                     counts={e: None for e in ENGINES})
    seconds = res.seconds
    exclusive: dict[str, dict[str, int]] = {}

    probe: Probe | None = None
    if {"paper", "macs", "ptflops"} & set(engines):
        t = time.perf_counter()
        try:
            probe = run_probe(model, (h, w), conv if "paper" in engines else None)
        except HrbenchError as e:
            raise HrbenchError(f"{res.arch}: {e}") from e
        except Exception as e:  # a model that cannot run at this input is a user error
            raise HrbenchError(f"{res.arch} cannot run on a {h}x{w} input: {type(e).__name__}: "
                               f"{str(e).splitlines()[0] if str(e) else ''}") from e
        seconds["probe"] = time.perf_counter() - t
        if "paper" in engines:
            res.counts["paper"] = sum(probe.paper.values())
            exclusive["paper"] = dict(probe.paper)
            res.skipped["paper"] = convention_skips(model, conv, probe)
        if "macs" in engines:
            res.counts["macs"] = probe.macs.total
            exclusive["macs"] = dict(probe.macs.by_module)
            res.skipped["macs"] = {"not_macs_aten_ops": dict(sorted(probe.macs.other_ops.items(),
                                                                     key=lambda kv: (-kv[1], kv[0])))}
    if "analytic" in engines:
        t = time.perf_counter()
        try:
            counts = analytic_counts(model, conv, (h, w))
            res.counts["analytic"] = sum(counts.values())
            exclusive["analytic"] = counts
        except Exception as e:
            res.errors["analytic"] = f"{type(e).__name__}: {e}"
        seconds["analytic"] = time.perf_counter() - t
    for name, fn in (("fvcore", lambda: fvcore_count(model, (h, w))),
                     ("ptflops", lambda: ptflops_count(model, (h, w), probe))):
        if name not in engines:
            continue
        t = time.perf_counter()
        lib: LibCount = fn()
        seconds[name] = time.perf_counter() - t
        if lib.error:
            res.errors[name] = lib.error
            continue
        res.counts[name] = lib.total
        res.skipped[name] = lib.skipped
        exclusive[name] = lib.by_module
    if by_module:
        res.by_module = module_rows(model, exclusive, by_module_depth)
        res.by_block_type = block_type_rows(model, exclusive)
    return res


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
        "zero_count_modules": dict(sorted(zero_types.items(), key=lambda kv: (-kv[1], kv[0]))),
        "uncounted_functions": dict(sorted(funcs.items(), key=lambda kv: (-kv[1], kv[0]))),
    }
    if conv.last_call_only:
        repeated = {n: c - 1 for n, c in probe.stack.calls.items()
                    if c > 1 and mods.get(n) is not None and conv.rule_for(mods[n]) is not None}
        out["repeated_calls_not_counted"] = dict(sorted(repeated.items()))
    return out


def _scale(engine: str, raw: int) -> float:
    return raw / (2**20 if engine in ("paper", "analytic") else 1e6)


def module_rows(model: nn.Module, exclusive: dict[str, dict[str, int]], depth: int) -> list[dict[str, Any]]:
    """Per-module totals (each engine in its unit) for module names up to ``depth`` dotted parts."""
    names = [n for n, _ in model.named_modules()]
    keep = [n for n in names if n.count(".") < depth]
    keep_set = set(keep)
    sums: dict[str, dict[str, int]] = {n: {} for n in keep}
    for engine, counts in exclusive.items():
        for name, value in counts.items():
            parts = name.split(".") if name and name in names else []
            for i in range(0, min(depth, len(parts)) + 1):
                prefix = ".".join(parts[:i])
                if prefix in keep_set:
                    sums[prefix][engine] = sums[prefix].get(engine, 0) + value
    rows = []
    for n in keep:
        if not sums[n]:
            continue
        row: dict[str, Any] = {"module": n or "(total)", "type": type(dict(model.named_modules())[n]).__name__}
        for engine in ENGINES:
            if engine in exclusive:
                row[engine] = round(_scale(engine, sums[n].get(engine, 0)), 6)
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

    return {cls: {e: round(v / 1e6, 6) for e, v in sorted(d.items())} for cls, d in sorted(out.items(), key=key)}


def _measure_or_error(name: str, kwargs: dict[str, Any]) -> Complexity | dict[str, str]:
    try:
        return measure(name, **kwargs)
    except HrbenchError as e:
        return {"arch": name, "error": str(e)}
    except Exception as e:  # one broken model must not stop the others
        return {"arch": name, "error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}


def _worker_init() -> None:
    set_threads_for_counting()
    warnings.filterwarnings("ignore")


def measure_many(names: Sequence[str], jobs: int = 1, **kwargs: Any) -> list[Complexity | dict[str, str]]:
    """:func:`measure` for each of ``names`` (same keyword arguments), in order; a model that
    fails gives ``{"arch", "error"}``. ``jobs > 1`` spreads the models over that many spawned
    processes (fvcore's JIT trace is the slow part and is single-threaded); the models must
    then be registered by ``architectures/`` (a spawned process only sees those)."""
    if jobs <= 1 or len(names) < 2:
        return [_measure_or_error(n, kwargs) for n in names]
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(min(jobs, len(names)), mp_context=ctx,
                                                initializer=_worker_init) as pool:
        return list(pool.map(_measure_or_error, names, [kwargs] * len(names)))


def set_threads_for_counting() -> None:
    """Counting is latency-bound on tiny ops: one thread avoids oversubscription."""
    torch.set_num_threads(1)
