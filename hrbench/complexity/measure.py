"""``measure``: #Params and every FLOPs count of one model, side by side, each with its unit.

Engines (all on one model built once, batch 1, eval mode):

* ``paper``    — forward hooks under the model card's convention (the published way), /2**20;
* ``analytic`` — the same convention in closed form (:mod:`walker`), must equal ``paper``;
* ``fvcore``   — fvcore ``FlopCountAnalysis`` (1 per MAC of conv/matmul, + norm/upsample/pool);
* ``ptflops``  — ptflops pytorch backend (MACs of hooked layers, + bias/BN/ReLU/pool/upsample);
* ``macs``     — true multiply-accumulates of every convolution and matrix product (:mod:`macs`,
  PyTorch's ``FlopCounterMode`` / 2), with the memory traffic of the same pass (:mod:`traffic`).

Optional: the training-step cost (:mod:`train`) and the reconciliation of every count with the
true MACs (:mod:`explain`). Every result is stamped with the versions, input, K and convention.
:func:`default_measurer` is the cached (#Params, paper MFLOPs, MACs) of one model at one input that
``hrbench tables`` and ``hrbench ablate`` put beside the printed figures.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import gc
import importlib.metadata
import json
import multiprocessing
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
from torch import nn

from hrbench.complexity import explain as ex
from hrbench.complexity.breakdown import ENGINES, block_type_rows, convention_skips, module_rows, scaled
from hrbench.complexity.conventions import Convention, get_convention
from hrbench.complexity.libs import LibCount, fvcore_count, ptflops_count
from hrbench.complexity.macs import Probe, run_probe
from hrbench.complexity.traffic import by_count
from hrbench.complexity.traffic import summary as traffic_summary
from hrbench.complexity.train import train_step_macs
from hrbench.complexity.walker import analytic_counts
from hrbench.datasets import dataset_of
from hrbench.errors import HrbenchError, brief

__all__ = ["ENGINES", "UNITS", "Complexity", "Measurement", "Measurer", "counting_threads", "default_measurer",
           "measure", "measure_model", "measure_many", "stamp"]

UNITS = {
    "params": "parameters (exact count, every parameter incl. unused ones)",
    "paper_mflops": "MFLOPs under the card's convention, binary M (count / 2**20), as the papers print",
    "analytic": "same convention and unit as paper_mflops, computed without a forward pass",
    "fvcore": "M fvcore flops, decimal (1e6); 1 per MAC of conv/matmul + norm, upsample, adaptive-pool terms",
    "ptflops": "MMac, decimal (1e6); MACs of hooked layers + bias, BN, activations, pooling, upsampling",
    "macs": "M MACs, decimal (1e6); every convolution and matrix product, functional ones included",
}



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
    traffic: dict[str, Any] | None = None
    train: dict[str, Any] | None = None
    explain: dict[str, Any] | None = None

    @property
    def paper_mflops(self) -> float | None:
        return scaled("paper", self.counts.get("paper"))

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
            "analytic": scaled("analytic", self.counts.get("analytic")),
            "fvcore": scaled("fvcore", self.counts.get("fvcore")),
            "ptflops": scaled("ptflops", self.counts.get("ptflops")),
            "macs": scaled("macs", self.counts.get("macs")),
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
        for key in ("traffic", "train", "explain"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        d["stamp"] = stamp(self.input_hw, self.keypoints, self.convention)
        return d


@functools.cache
def versions() -> dict[str, str]:
    """hrbench, torch, fvcore and ptflops versions (installed distributions)."""
    import hrbench

    out = {"hrbench": hrbench.__version__, "torch": torch.__version__}
    for dist in ("fvcore", "ptflops"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def stamp(input_hw: tuple[int, int], keypoints: int, convention: str) -> dict[str, Any]:
    """What every figure was counted with: versions, input, K, convention."""
    return {**versions(), "input": f"{input_hw[0]}x{input_hw[1]}", "keypoints": keypoints, "convention": convention}


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
    train: bool = False,
    explain: bool = False,
) -> Complexity:
    """Build registered ``arch`` once and count it with every engine in ``engines`` (``train``:
    also the training-step cost; ``explain``: also the reconciliation of each count with MACs)."""
    from hrbench.factory import create_model
    from hrbench.registry import get_entry

    entry = get_entry(arch)
    model = create_model(entry.name, num_keypoints=num_keypoints, **(overrides or {}))
    result = measure_model(model, input_hw, convention=entry.convention, engines=engines, by_module=by_module,
                           arch=entry.name, train=train, explain=explain)
    result.overrides = dict(overrides or {})
    result.published = published_for(entry.name, input_hw, num_keypoints, result, dataset, bool(overrides))
    return result


def published_for(name: str, input_hw: tuple[int, int], keypoints: int, result: Complexity,
                  dataset: str | None, overridden: bool) -> dict[str, Any]:
    """The model card's published params/MFLOPs at this input, with the deltas of our counts."""
    from hrbench.cards import published_complexity

    pub = published_complexity(name, input_hw, dataset or dataset_of(keypoints))
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
    train: bool = False,
    explain: bool = False,
) -> Complexity:
    """Count an already-built ``model`` (any nn.Module taking one (1, 3, H, W) tensor).
    ``explain`` starts from true MACs, so it adds the ``macs`` engine."""
    engines = tuple(engines)
    if explain and "macs" not in engines:
        engines += ("macs",)
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        raise HrbenchError(f"unknown engine(s) {', '.join(unknown)}: choose from {', '.join(ENGINES)}")
    conv = convention if isinstance(convention, Convention) else get_convention(convention)
    h, w = int(input_hw[0]), int(input_hw[1])
    res = Complexity(arch=arch or getattr(model, "arch", "") or type(model).__name__, input_hw=(h, w),
                     keypoints=int(getattr(model, "num_keypoints", 0) or 0), params=count_params(model),
                     convention=conv.name, counts={e: None for e in ENGINES})
    gc_was_enabled = gc.isenabled()
    gc.disable()  # the JIT trace allocates ~1e5 small objects; collections only cost time here
    try:
        exclusive: dict[str, dict[str, int]] = {}
        probe = _probe_engines(res, model, conv, engines, exclusive)
        _analytic(res, model, conv, engines, exclusive)
        libs = _lib_engines(res, model, engines, probe, exclusive)
    finally:
        if gc_was_enabled:
            gc.enable()
    if by_module:
        res.by_module = module_rows(model, exclusive, by_module_depth)
        res.by_block_type = block_type_rows(model, exclusive)
    if explain:
        res.explain = _explain(res, model, conv, probe, libs)
    if train:
        t = time.perf_counter()
        res.train = train_step_macs(model, (h, w)).to_dict()
        res.seconds["train"] = time.perf_counter() - t
    return res


def _probe_engines(res: Complexity, model: nn.Module, conv: Convention, engines: tuple[str, ...],
                   exclusive: dict[str, dict[str, int]]) -> Probe | None:
    """paper and macs (+ traffic) from one instrumented forward pass (also ptflops' census)."""
    if not {"paper", "macs", "ptflops"} & set(engines):
        return None
    h, w = res.input_hw
    t = time.perf_counter()
    try:
        probe = run_probe(model, (h, w), conv if "paper" in engines else None)
    except HrbenchError as e:
        raise HrbenchError(f"{res.arch}: {e}") from e
    except Exception as e:  # a model that cannot run at this input is a user error
        raise HrbenchError(f"{res.arch} cannot run on a {h}x{w} input: {brief(e)}") from e
    res.seconds["probe"] = time.perf_counter() - t
    if "paper" in engines:
        res.counts["paper"] = sum(probe.paper.values())
        exclusive["paper"] = dict(probe.paper)
        res.skipped["paper"] = convention_skips(model, conv, probe)
    if "macs" in engines:
        res.counts["macs"] = probe.macs.total
        exclusive["macs"] = dict(probe.macs.by_module)
        res.skipped["macs"] = {"not_macs_aten_ops": by_count(probe.macs.other_ops)}
        res.traffic = traffic_summary(model, probe.traffic, probe.macs.by_module)
        exclusive["launches"] = dict(probe.traffic.launches)
        exclusive["written"] = dict(probe.traffic.written)
        exclusive["bytes_fp32"] = {n: 4 * (v + probe.traffic.read.get(n, 0)) for n, v in probe.traffic.written.items()}
    return probe


def _analytic(res: Complexity, model: nn.Module, conv: Convention, engines: tuple[str, ...],
              exclusive: dict[str, dict[str, int]]) -> None:
    if "analytic" not in engines:
        return
    t = time.perf_counter()
    try:
        counts = analytic_counts(model, conv, res.input_hw)
        res.counts["analytic"] = sum(counts.values())
        exclusive["analytic"] = counts
    except Exception as e:  # recorded under errors["analytic"], shown beside the other counts
        res.errors["analytic"] = f"{type(e).__name__}: {e}"
    res.seconds["analytic"] = time.perf_counter() - t


def _lib_engines(res: Complexity, model: nn.Module, engines: tuple[str, ...], probe: Probe | None,
                 exclusive: dict[str, dict[str, int]]) -> dict[str, LibCount]:
    libs: dict[str, LibCount] = {}
    for name, fn in (("fvcore", lambda: fvcore_count(model, res.input_hw)),
                     ("ptflops", lambda: ptflops_count(model, res.input_hw, probe))):
        if name not in engines:
            continue
        t = time.perf_counter()
        lib: LibCount = fn()
        res.seconds[name] = time.perf_counter() - t
        if lib.error:
            res.errors[name] = lib.error
            continue
        res.counts[name] = lib.total
        res.skipped[name] = lib.skipped
        exclusive[name] = lib.by_module
        libs[name] = lib
    return libs


def _explain(res: Complexity, model: nn.Module, conv: Convention, probe: Probe,
             libs: dict[str, LibCount]) -> dict[str, Any]:
    """Reconciliations of true MACs with each counted engine (paper, fvcore, ptflops)."""
    out: dict[str, Any] = {}
    if res.counts["paper"] is not None:
        out["paper"] = ex.explain_paper(model, conv, probe, res.counts["paper"]).to_dict()
    if "fvcore" in libs:
        out["fvcore"] = ex.explain_fvcore(libs["fvcore"], probe).to_dict()
    if "ptflops" in libs:
        out["ptflops"] = ex.explain_ptflops(model, libs["ptflops"], probe).to_dict()
    return out


def _measure_or_error(name: str, kwargs: dict[str, Any]) -> Complexity | dict[str, str]:
    try:
        return measure(name, **kwargs)
    except HrbenchError as e:
        return {"arch": name, "error": str(e)}
    except Exception as e:  # one broken model must not stop the others
        return {"arch": name, "error": brief(e)}


def _worker_init() -> None:
    """A spawned counting process: one thread for its lifetime (see :func:`counting_threads`), no warnings."""
    torch.set_num_threads(1)
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


@contextlib.contextmanager
def counting_threads() -> Iterator[None]:
    """One intra-op thread while counting (latency-bound on tiny ops: more threads only oversubscribe);
    torch's thread count is restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# --------------------------------------------------------------------------------------------
# The measurer of the paper tables and ablation grids (hrbench tables, hrbench ablate)
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Measurement:
    """hrbench's figures for one model at one input: #Params, the paper's own FLOPs convention
    (binary M, as the papers print it), true multiply-accumulates (decimal); ``error``: why the
    model could not be built or measured (shown in its table row)."""

    params: int
    paper_mflops: float
    macs: int | None = None
    error: str = ""


#: ``(model, overrides, input_hw, keypoints) -> Measurement``; tests pass fakes.
Measurer = Callable[[str, dict, tuple[int, int], int], Measurement]


def freeze_overrides(overrides: dict[str, Any]) -> str:
    """``overrides`` as canonical JSON (sorted keys, tuples as lists): a hashable key that compares equal
    for equal overrides."""
    return json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in sorted(overrides.items())},
                      sort_keys=True, default=str)


@functools.cache
def _measured(model: str, frozen: str, input_hw: tuple[int, int], k: int) -> Measurement:
    try:
        c = measure(model, input_hw, k, overrides=json.loads(frozen) or None, engines=("paper", "macs"))
        macs = c.counts.get("macs")
        return Measurement(int(c.params), float(c.paper_mflops), int(macs) if macs is not None else None)
    except Exception as e:  # a model that cannot be built/measured is reported in its row, not hidden
        return Measurement(0, 0.0, None, error=brief(e))


def default_measurer(model: str, overrides: dict, input_hw: tuple[int, int], k: int) -> Measurement:
    """Measure with :func:`measure` (``paper`` and ``macs`` engines), cached per process."""
    return _measured(model, freeze_overrides(overrides), tuple(input_hw), k)
