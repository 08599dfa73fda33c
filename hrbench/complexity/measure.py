"""``measure``: #Params and every FLOPs count of one model, side by side, each with its unit.

Every registered engine (:mod:`~hrbench.complexity.engines`; hrbench's five in
:mod:`~hrbench.complexity.standard_engines`) counts one model built once, batch 1, eval mode; the
engines that read a forward pass share one instrumented pass (:mod:`~hrbench.complexity.probe`).
Optional: the training-step cost (:mod:`~hrbench.complexity.train_step`) and the reconciliation of
every count with the true MACs (:mod:`~hrbench.complexity.explain`). Every result is stamped with
the versions, input, K and convention (:mod:`~hrbench.complexity.result`).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterable
from typing import Any

from torch import nn

from hrbench.complexity.breakdown import block_type_rows, module_rows
from hrbench.complexity.conventions import Convention, get_convention
from hrbench.complexity.engines import Count, Counting, get_engine, select
from hrbench.complexity.probe import run_probe
from hrbench.complexity.result import Complexity
from hrbench.complexity.train_step import train_step_macs
from hrbench.datasets import dataset_of
from hrbench.errors import HrbenchError, brief
from hrbench.registry import ModelEntry, get_entry

__all__ = ["count_params", "measure", "measure_model", "published_for"]

#: The engine ``--explain`` starts from (true MACs).
EXPLAIN_START = "macs"


def count_params(model: nn.Module) -> int:
    """Every parameter (trainable or not, called or not), shared ones once."""
    return sum(p.numel() for p in model.parameters())


def measure(
    arch: str | ModelEntry,
    input_hw: tuple[int, int] = (256, 192),
    num_keypoints: int = 17,
    overrides: dict[str, Any] | None = None,
    engines: Iterable[str] | None = None,
    by_module: bool = False,
    dataset: str | None = None,
    train: bool = False,
    explain: bool = False,
) -> Complexity:
    """Build registered ``arch`` (a name, or its resolved entry) once and count it with every engine
    in ``engines`` (None: all registered; ``train``: also the training-step cost; ``explain``: also
    the reconciliation of each count with MACs)."""
    from hrbench.factory import create_model

    entry = arch if isinstance(arch, ModelEntry) else get_entry(arch)
    conv = get_convention(entry.convention)
    model = create_model(entry, num_keypoints=num_keypoints, **(overrides or {}))
    result = measure_model(model, input_hw, convention=conv, engines=engines, by_module=by_module,
                           arch=entry.name, train=train, explain=explain)
    result.overrides = dict(overrides or {})
    result.published = published_for(entry, input_hw, num_keypoints, result, dataset, bool(overrides))
    return result


def published_for(entry: ModelEntry, input_hw: tuple[int, int], keypoints: int, result: Complexity,
                  dataset: str | None, overridden: bool) -> dict[str, Any]:
    """The model card's published params/MFLOPs at this input, with the deltas of our counts."""
    from hrbench.cards import published_complexity

    pub = published_complexity(entry, input_hw, dataset or dataset_of(keypoints))
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
    engines: Iterable[str] | None = None,
    by_module: bool = False,
    arch: str | None = None,
    by_module_depth: int = 3,
    train: bool = False,
    explain: bool = False,
) -> Complexity:
    """Count an already-built ``model`` (any nn.Module taking one (1, 3, H, W) tensor) with the
    registered engines in ``engines`` (None: all). ``explain`` starts from true MACs, so it adds
    the ``macs`` engine."""
    names = select(engines)
    if explain and EXPLAIN_START not in names:
        names = select((*names, EXPLAIN_START))
    conv = convention if isinstance(convention, Convention) else get_convention(convention)
    h, w = int(input_hw[0]), int(input_hw[1])
    res = Complexity(arch=arch or getattr(model, "arch", "") or type(model).__name__, input_hw=(h, w),
                     keypoints=int(getattr(model, "num_keypoints", 0) or 0), params=count_params(model),
                     convention=conv.name, counts={e: None for e in select(None)})
    counting = Counting(model, (h, w), conv, names)
    exclusive: dict[str, dict[str, int]] = {}
    gc_was_enabled = gc.isenabled()
    gc.disable()  # the JIT trace allocates ~1e5 small objects; collections only cost time here
    try:
        counted = _run_engines(res, counting, exclusive)
    finally:
        if gc_was_enabled:
            gc.enable()
    if by_module:
        res.by_module = module_rows(model, exclusive, by_module_depth)
        res.by_block_type = block_type_rows(model, exclusive)
    if explain:
        res.explain = {name: get_engine(name).explain(counting, count).to_dict()
                       for name, count in counted.items() if get_engine(name).explain is not None}
    if train:
        t = time.perf_counter()
        res.train = train_step_macs(model, (h, w)).to_dict()
        res.seconds["train"] = time.perf_counter() - t
    return res


def _run_engines(res: Complexity, counting: Counting, exclusive: dict[str, dict[str, int]]) -> dict[str, Count]:
    """Run each selected engine (the shared probe pass first, if one reads it) and record its count."""
    specs = [get_engine(n) for n in counting.engines]
    if any(s.uses_probe for s in specs):
        counting.probe = _probe(res, counting, any(s.uses_hooks for s in specs))
    counted: dict[str, Count] = {}
    for spec in specs:
        t = time.perf_counter()
        count = spec.run(counting)
        res.seconds[spec.name] = time.perf_counter() - t
        if count.error:
            res.errors[spec.name] = count.error
            continue
        res.counts[spec.name] = count.total
        if count.skipped is not None:
            res.skipped[spec.name] = count.skipped
        exclusive[spec.name] = dict(count.by_module)
        exclusive.update(count.series)
        for field, value in count.sections.items():
            setattr(res, field, value)
        counted[spec.name] = count
    return counted


def _probe(res: Complexity, counting: Counting, hooks: bool):
    """The one instrumented forward pass (the convention's hooks attached when an engine needs them);
    a model that cannot run at this input is a user error."""
    h, w = counting.input_hw
    t = time.perf_counter()
    try:
        probe = run_probe(counting.model, (h, w), counting.convention if hooks else None)
    except HrbenchError as e:
        raise HrbenchError(f"{res.arch}: {e}") from e
    except Exception as e:  # a model that cannot run at this input is a user error
        raise HrbenchError(f"{res.arch} cannot run on a {h}x{w} input: {brief(e)}") from e
    res.seconds["probe"] = time.perf_counter() - t
    return probe
