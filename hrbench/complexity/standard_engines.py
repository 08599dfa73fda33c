"""hrbench's five counting engines, registered in this order (README "How FLOPs are counted"):

* ``paper``    — forward hooks under the model card's convention (the published way), binary M;
* ``analytic`` — the same convention in closed form (:mod:`~hrbench.complexity.walker`), must equal ``paper``;
* ``fvcore``   — fvcore ``FlopCountAnalysis`` (1 per MAC of conv/matmul, + norm/upsample/pool);
* ``ptflops``  — ptflops pytorch backend (MACs of hooked layers, + bias/BN/ReLU/pool/upsample);
* ``macs``     — true multiply-accumulates of every convolution and matrix product (PyTorch's
  ``FlopCounterMode`` / 2), with the memory traffic of the same pass (:mod:`~hrbench.complexity.traffic`).
"""

from __future__ import annotations

from hrbench.complexity import explain as ex
from hrbench.complexity.breakdown import convention_skips
from hrbench.complexity.engines import Count, Counting, Engine, register_engine
from hrbench.complexity.third_party import LibCount, fvcore_count, ptflops_count
from hrbench.complexity.traffic import by_count
from hrbench.complexity.traffic import summary as traffic_summary
from hrbench.complexity.walker import analytic_counts


def _paper(c: Counting) -> Count:
    p = c.probe
    return Count(sum(p.paper.values()), dict(p.paper), convention_skips(c.model, c.convention, p))


def _analytic(c: Counting) -> Count:
    try:
        counts = analytic_counts(c.model, c.convention, c.input_hw)
    except Exception as e:  # recorded under errors["analytic"], shown beside the other counts
        return Count(error=f"{type(e).__name__}: {e}")
    return Count(sum(counts.values()), counts)


def _library(lib: LibCount) -> Count:
    if lib.error:
        return Count(error=lib.error)
    return Count(lib.total, lib.by_module, lib.skipped, detail=lib)


def _macs(c: Counting) -> Count:
    p = c.probe
    t = p.traffic
    return Count(p.macs.total, dict(p.macs.by_module), {"not_macs_aten_ops": by_count(p.macs.other_ops)},
                 series={"launches": dict(t.launches), "written": dict(t.written),
                         "bytes_fp32": {n: 4 * (v + t.read.get(n, 0)) for n, v in t.written.items()}},
                 sections={"traffic": traffic_summary(c.model, t, p.macs.by_module)})


register_engine(Engine(
    "paper", _paper, key="paper_mflops", scale=2**20, uses_probe=True, uses_hooks=True, under_convention=True,
    unit="MFLOPs under the card's convention, binary M (count / 2**20), as the papers print",
    short_unit="MFLOPs /2^20", skips="what the card's convention leaves out (below)",
    explain=lambda c, n: ex.explain_paper(c.model, c.convention, c.probe, n.total)))
register_engine(Engine(
    "analytic", _analytic, scale=2**20, must_equal="paper", under_convention=True,
    unit="same convention and unit as paper_mflops, computed without a forward pass",
    short_unit="MFLOPs /2^20", skips="what the card's convention leaves out, as paper"))
register_engine(Engine(
    "fvcore", lambda c: _library(fvcore_count(c.model, c.input_hw)),
    unit="M fvcore flops, decimal (1e6); 1 per MAC of conv/matmul + norm, upsample, adaptive-pool terms",
    short_unit="M flops /1e6", skips="ATen ops without a handle (elementwise ops, activations, max/avg pooling)",
    explain=lambda c, n: ex.explain_fvcore(n.detail, c.probe)))
register_engine(Engine(
    "ptflops", lambda c: _library(ptflops_count(c.model, c.input_hw, c.probe)), uses_probe=True,
    unit="MMac, decimal (1e6); MACs of hooked layers + bias, BN, activations, pooling, upsampling",
    short_unit="MMac /1e6", skips="module types without a hook, torch functions it does not patch",
    explain=lambda c, n: ex.explain_ptflops(c.model, n.detail, c.probe)))
register_engine(Engine(
    "macs", _macs, uses_probe=True, label="MACs",
    unit="M MACs, decimal (1e6); every convolution and matrix product, functional ones included",
    short_unit="M MACs /1e6", skips="bias, normalisation, activations, pooling, every elementwise op"))
