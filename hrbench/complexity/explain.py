"""``--explain``: from true MACs to every other count, term by term, rows summing exactly.

Each reconciliation starts at the true MACs (FlopCounterMode FLOPs / 2) and adds signed rows,
each one rule in words, until it reaches the engine's raw count; an ``unexplained`` row appears
only if the terms do not add up (never, for the registered models: tested). The rules are data:
:data:`PAPER_TERMS` (per convention rule), :data:`FVCORE_OPS` (per fvcore handle),
:data:`PTFLOPS_MODULES` (per ptflops module hook).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from hrbench.complexity import conventions as cv
from hrbench.complexity.libs import LibCount
from hrbench.complexity.macs import Probe

#: Convention rules that count products: the rule's value minus its bias term is its product count.
PRODUCT_RULES = (cv.conv2d, cv.conv_transpose2d, cv.linear, cv.conv2d_macs, cv.linear_macs)


def _conv_bias(m: nn.Module, i: cv.Shape, o: cv.Shape) -> int:
    return o[0] * o[1] * o[2] * o[3] if getattr(m, "bias", None) is not None else 0


def _deconv_output_excess(m: nn.Module, i: cv.Shape, o: cv.Shape) -> int:
    """hrnet-summary's deconvolution count minus its true MACs (products at output, not input, positions)."""
    return m.weight.numel() * o[0] * (o[2] * o[3] - i[2] * i[3])


#: rule -> (term, words) for everything a convention adds beside products (bias as its own term).
PAPER_TERMS: dict[Any, tuple[str, str]] = {
    cv.conv2d: ("bias", "+ bias: C_out*H_out*W_out per call of a convolution that has one"),
    cv.conv_transpose2d: ("bias", "+ bias: C_out*H_out*W_out per call of a convolution that has one"),
    cv.batchnorm2d: ("batchnorm", "+ BatchNorm2d: 2 per element (1 without affine)"),
    cv.elementwise: ("activation", "+ ReLU / ReLU6 / PReLU / ELU / LeakyReLU modules: 1 per element"),
    cv.pool2d: ("pooling", "+ Max/AvgPool2d: k*k per output element"),
    cv.adaptive_pool2d: ("pooling", "+ adaptive pooling: (bin_h+1)*(bin_w+1) per output element"),
    cv.upsample_torchstat: ("upsample", "+ nn.Upsample: N*H_out*W_out (torchstat's indexing slip drops C)"),
    cv.conv_transpose2d_at_output: ("deconv at output", "+ ConvTranspose2d counted at output positions: weight x "
                                    "(H_out*W_out - H_in*W_in) = (stride^2 - 1) x its MACs (get_model_summary)"),
}
#: rule -> the part of its value that is not the module's true products.
BIAS_OF = {cv.conv2d: _conv_bias, cv.conv_transpose2d: _conv_bias, cv.conv_transpose2d_at_output: _deconv_output_excess}

#: fvcore handle (by_operator key) -> words; conv / matmul handles are its product count.
FVCORE_PRODUCTS = ("conv", "addmm", "bmm", "einsum", "matmul", "mm", "linear")
FVCORE_OPS = {
    "batch_norm": "+ aten::batch_norm (eval): 2 per input element with affine, 1 without",
    "group_norm": "+ aten::group_norm: 5 per element with affine, 4 without",
    "layer_norm": "+ aten::layer_norm: 5 per element with affine, 4 without",
    "instance_norm": "+ aten::instance_norm: 5 per element with affine, 4 without",
    "upsample_nearest2d": "+ aten::upsample_nearest2d (nn.Upsample, F.interpolate): 1 per output element",
    "upsample_bilinear2d": "+ aten::upsample_bilinear2d: 4 per output element",
    "adaptive_avg_pool2d": "+ aten::adaptive_avg_pool2d: 1 per input element",
    "grid_sampler": "+ aten::grid_sampler: 4 per output element",
}

#: ptflops module type -> words for its hook's count beyond the ATen MACs inside the module.
PTFLOPS_MODULES = {
    "Conv2d": "+ nn.Conv2d bias: C_out per output position of a conv with bias (products equal ATen's)",
    "ConvTranspose2d": "+ nn.ConvTranspose2d bias: C_out per output position",
    "Linear": "+ nn.Linear bias: out_features per row",
    "BatchNorm2d": "+ nn.BatchNorm2d: 2 per input element (affine), every call",
    "ReLU": "+ nn.ReLU: 1 per output element, every call",
    "ReLU6": "+ nn.ReLU6: 1 per output element, every call",
    "Upsample": "+ nn.Upsample: 1 per output element, every call",
    "AdaptiveAvgPool2d": "+ nn.AdaptiveAvgPool2d: 1 per input element",
    "AvgPool2d": "+ nn.AvgPool2d: 1 per input element",
    "MaxPool2d": "+ nn.MaxPool2d: 1 per input element",
}


#: ptflops patched function (last name part) -> its rule.
PTFLOPS_FUNCTIONS = {
    **dict.fromkeys(("relu", "prelu", "elu", "relu6", "gelu", "softmax"), "1 per element"),
    **dict.fromkeys(("avg_pool1d", "avg_pool2d", "avg_pool3d", "max_pool1d", "max_pool2d", "max_pool3d",
                     "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool1d",
                     "adaptive_max_pool2d", "adaptive_max_pool3d"), "1 per input element"),
    **dict.fromkeys(("interpolate", "upsample"), "1 per output element"),
    **dict.fromkeys(("matmul", "mm", "bmm"), "its MACs"),
    **dict.fromkeys(("addmm", "baddbmm"), "its MACs + 1 per output element"),
    **dict.fromkeys(("add", "mul"), "1 per output element"),
    "linear": "its MACs + bias",
}


@dataclasses.dataclass
class Row:
    term: str
    value: int  # raw, signed
    rule: str


@dataclasses.dataclass
class Reconciliation:
    """Rows from true MACs to ``target``'s raw ``figure``; ``divisor`` is the target's unit."""

    target: str
    figure: int
    divisor: int
    rows: list[Row]

    def close(self) -> Reconciliation:
        """Drop zero rows (not the start and the counted-0 note); add ``unexplained`` if they fall short."""
        self.rows = [r for r in self.rows if r.value or r.term in ("macs", "zero")]
        rest = self.figure - sum(r.value for r in self.rows)
        if rest:
            self.rows.append(Row("unexplained", rest, "! the terms above do not reach the figure"))
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "figure": self.figure, "unit_divisor": self.divisor,
                "sum_of_rows": sum(r.value for r in self.rows),
                "rows": [{"term": r.term, "raw": r.value, "value": r.value / self.divisor, "rule": r.rule}
                         for r in self.rows]}


def _start(probe: Probe) -> Row:
    return Row("macs", probe.macs.total, "true MACs: FlopCounterMode FLOPs / 2, every conv and matrix product")


def _top(names: dict[str, int], n: int = 3) -> str:
    short = [k.replace("torch.nn.functional.", "F.").replace("torch.Tensor.", "Tensor.") for k in names]
    return ", ".join(short[:n]) + (" ..." if len(short) > n else "")


def _products(names) -> dict[str, int]:
    """Calls per name of the ``torch`` functions among ``names`` that do matrix products."""
    out: dict[str, int] = {}
    for f in names:
        if any(k in f.rsplit(".", 1)[-1] for k in ("conv", "mm", "matmul", "einsum", "linear", "mv", "dot")):
            out[f] = out.get(f, 0) + 1
    return out


def explain_paper(model: nn.Module, conv: cv.Convention, probe: Probe, figure: int) -> Reconciliation:
    """True MACs -> the convention's count (per-call shapes from the probe's hooks)."""
    mods = dict(model.named_modules())
    shapes = probe.hooks.shapes if probe.hooks is not None else {}
    inside = sum(probe.macs.by_module.get(name, 0) for name in shapes)
    repeated = 0
    terms: dict[str, Row] = {}
    for name, calls in shapes.items():
        m = mods[name]
        rule = conv.rule_for(m)
        values = [int(rule(m, i, o)) for i, o in calls]
        repeated += (sum(values) - values[-1]) if conv.last_call_only else 0
        products = -probe.macs.by_module.get(name, 0)
        for (i, o), v in zip(calls, values, strict=True):
            extra = BIAS_OF[rule](m, i, o) if rule in BIAS_OF else (0 if rule in PRODUCT_RULES else v)
            products += v - extra
            if extra:
                term, words = PAPER_TERMS[rule]
                terms.setdefault(term, Row(term, 0, words)).value += extra
        if products:
            kind = type(m).__name__
            terms.setdefault(f"formula {kind}", Row(f"formula {kind}", 0, f"+/- {kind}: the {rule.__name__} rule's "
                             "products minus the ATen MACs run inside the module (e.g. a dynamic kernel's "
                             "mixing matmul, a Linear without its batch factor)")).value += products
    funcs = _products(f for f, owner in probe.census.calls if owner not in shapes)
    rows = [_start(probe),
            Row("outside", -(probe.macs.total - inside), "- products outside any module the convention counts "
                f"(functional / custom: {_top(funcs) or 'none'})"),
            *terms.values(),
            Row("repeated", -repeated, "- repeated calls of one module: only its last call counts (torchstat)")]
    return Reconciliation("paper", figure, conv.divisor, rows).close()


def explain_fvcore(lib: LibCount, probe: Probe) -> Reconciliation:
    """True MACs -> fvcore's total (its per-operator counts)."""
    ops = lib.by_operator
    products = sum(v for k, v in ops.items() if k in FVCORE_PRODUCTS)
    rows = [_start(probe),
            Row("formula", products - probe.macs.total, "+ fvcore's conv / matmul / einsum handles minus ATen MACs")]
    rows += [Row(k, v, FVCORE_OPS.get(k, f"+ aten::{k}: fvcore's handle")) for k, v in ops.items()
             if k not in FVCORE_PRODUCTS]
    zero = {**lib.skipped.get("unsupported_ops", {}), **lib.skipped.get("ignored_ops", {})}
    if zero:
        rows.append(Row("zero", 0, f"  (counted 0: {_top(zero, 6)})"))
    return Reconciliation("fvcore", lib.total or 0, 10**6, rows).close()


def explain_ptflops(model: nn.Module, lib: LibCount, probe: Probe) -> Reconciliation:
    """True MACs -> ptflops' total (its module hooks and patched functions)."""
    mods = dict(model.named_modules())
    hooked = {n: v for n, v in lib.by_module.items() if n in mods}
    inside = sum(probe.macs.by_module.get(n, 0) for n in hooked)
    per_type: dict[str, int] = {}
    for n, v in hooked.items():
        t = type(mods[n]).__name__
        per_type[t] = per_type.get(t, 0) + v - probe.macs.by_module.get(n, 0)
    missed = lib.skipped.get("uncounted_functions", {})
    rows = [_start(probe),
            Row("outside", -(probe.macs.total - inside), "- products outside ptflops' hooked nn modules "
                f"(functional / custom: {_top(_products(missed)) or 'none'}; "
                "patched matmuls come back below)")]
    rows += [Row(t, v, PTFLOPS_MODULES.get(t, f"+ nn.{t}: ptflops' hook")) for t, v in sorted(per_type.items())]
    for f, v in lib.by_function.items():
        fn, _, inside = f.partition(" in ")
        short = fn.replace("torch.nn.functional.", "F.").replace("torch.Tensor.", "Tensor.")
        rule = PTFLOPS_FUNCTIONS.get(fn.rsplit(".", 1)[-1], "ptflops' handler")
        where = f"inside nn.{inside}, which ptflops already hooks: counted twice" if inside else "outside modules"
        rows.append(Row(short + (f" in {inside}" if inside else ""), v, f"+ patched {short}: {rule}, {where}"))
    return Reconciliation("ptflops", lib.total or 0, 10**6, rows).close()
