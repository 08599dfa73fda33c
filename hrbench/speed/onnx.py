"""ONNX export with an ONNX Runtime parity check, and ONNX Runtime sessions for benchmarking.

:func:`export_onnx` exports the eval model (BatchNorms folded where that is exact, see
:mod:`hrbench.speed.fuse`) with the TorchScript-based exporter (seconds, for every registered
family) or, on request, the dynamo exporter (minutes). Before tracing, each Dite-HRNet dynamic
kernel aggregation (DKA) is swapped for :class:`StaticKernelAggregation`: the same batch-folded
grouped convolution and the same parameters, but with every shape a Python constant for the fixed
export batch, so the exporter sees a ``Conv`` whose computed weight has a known shape (the stock
module's ``reshape(-1, ...)`` leaves it unknown: "convolution for kernel of unknown shape").
With ``forms`` (the default; issue 23) the export copy also gets the exact module-level forms (each DKA's
BatchNorm folded into its kernels and the plain convolution at batch 1, here; the pooled FC stacks as
``Gemm`` and the fusion's doubled path folded, :mod:`hrbench.speed.onnx_modules`), and after export the
exact graph rewrites of :mod:`hrbench.speed.onnx_forms` (concat + channel shuffle as one interleaving
concat, shape-only nodes folded); ``forms=False`` is the exporter's own graph (``ort_stock``).
The file is written only when ONNX Runtime's
output on a seeded input matches the unmodified PyTorch model's within :data:`PARITY_TOL` of the outputs'
scale (max absolute difference / max absolute PyTorch output, fp32, as ``bench``'s rel. diff): an untrained
model's heatmaps are ~1e-12, where an absolute bar could not fail.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hrbench.errors import HrbenchError
from hrbench.fsutil import write_bytes_atomic
from hrbench.models.dynamic import ConvNorm, DynamicKernelAggregation, KernelAggregation
from hrbench.speed.onnx_modules import MODULE_FORMS

EXPORTERS = ("torchscript", "dynamo")
FORMATS = ("onnx",)
PARITY_TOL = 1e-4
OPSET = 17
INPUT_NAME, OUTPUT_NAME = "input", "heatmaps"


class ExportError(HrbenchError):
    """An export that cannot be done or that fails its parity check (nothing is written)."""


def require_onnx() -> None:
    """One-line error when the optional ``onnx`` extra is not installed."""
    import importlib.util

    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        raise ExportError(f"{' and '.join(missing)} not installed: pip install 'hrbench[onnx]'")


class StaticKernelAggregation(nn.Module):
    """Export form of :class:`KernelAggregation` for a fixed batch ``batch``: one grouped convolution
    over the batch-folded channels (``batch * groups`` groups), weight shape known in advance; at batch 1
    the plain grouped convolution (``plain_at_batch1``: the batch fold is the identity there, so its two
reshapes are left out).

    ``bn``: the eval-mode BatchNorm that follows the aggregation, folded in exactly: the aggregation is
    linear in the kernels, so ``BN(conv(x, sum_i a_i w_i) + sum_i a_i b_i) = conv(x, sum_i a_i (s w_i)) +
    sum_i a_i (s b_i) + (beta - s mu)`` with ``s = gamma / sqrt(var + eps)`` per output channel: the scale
    goes into the N candidate kernels (and biases), the shift is a constant bias added after the
    aggregation (computed in float64). Without ``bn`` the original parameters are shared."""

    def __init__(self, agg: KernelAggregation, batch: int, bn: nn.BatchNorm2d | None = None,
                 plain_at_batch1: bool = True) -> None:
        super().__init__()
        self.batch = int(batch)
        self.plain = plain_at_batch1 and self.batch == 1
        self.cin, self.cout, self.groups = agg.in_channels, agg.out_channels, agg.groups
        self.k, self.n = agg.kernel_size, agg.num_kernels
        self.stride, self.padding, self.dilation = agg.stride, agg.padding, agg.dilation
        self.weight, self.bias = agg.weight, agg.bias
        self.register_buffer("shift", None)
        if bn is not None:
            scale, shift = bn_scale_shift(bn)
            with torch.no_grad():
                self.weight = nn.Parameter((agg.weight.double() * scale.reshape(1, -1, 1, 1, 1)).float(),
                                           requires_grad=False)
                if agg.bias is not None:
                    self.bias = nn.Parameter((agg.bias.double() * scale).float(), requires_grad=False)
            self.register_buffer("shift", shift.float())

    def forward(self, x: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        b = self.batch
        att = attention.reshape(b, self.n)
        mixed = torch.matmul(att, self.weight.reshape(self.n, -1))
        weight = mixed.reshape(b * self.cout, self.cin // self.groups, self.k, self.k)
        bias = torch.matmul(att, self.bias) if self.bias is not None else None
        if self.shift is not None:
            bias = self.shift.expand(b, self.cout) if bias is None else bias + self.shift
        if bias is not None:
            bias = bias.reshape(b * self.cout)
        if self.plain:
            return F.conv2d(x, weight, bias, stride=self.stride, padding=self.padding, dilation=self.dilation,
                            groups=self.groups)
        y = F.conv2d(x.reshape(1, b * self.cin, x.shape[2], x.shape[3]), weight, bias, stride=self.stride,
                     padding=self.padding, dilation=self.dilation, groups=self.groups * b)
        return y.reshape(b, self.cout, y.shape[2], y.shape[3])


def bn_scale_shift(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BatchNorm as ``y = s x + t`` per channel: ``(s, t)`` in float64."""
    if bn.running_mean is None or bn.running_var is None:
        raise ExportError("cannot fold a BatchNorm2d without running statistics (track_running_stats=False)")
    var, mean = bn.running_var.double(), bn.running_mean.double()
    gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(var)
    beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(var)
    scale = gamma / torch.sqrt(var + bn.eps)
    return scale, beta - mean * scale


def substitute_dynamic_kernels(model: nn.Module, batch: int, forms: bool = False) -> tuple[int, int]:
    """Swap every DKA's aggregation for :class:`StaticKernelAggregation` (in place); with ``forms`` (the
    export forms of issue 23) the BatchNorm of each ``ConvNorm`` whose convolution is a DKA is folded into
    it (replaced by ``nn.Identity``) and a batch-1 export is the plain convolution. Returns (DKAs swapped,
    BatchNorms folded)."""
    count = folded = 0
    owners = {id(p.conv): p for p in model.modules() if isinstance(p, ConvNorm)}
    for m in list(model.modules()):
        if not (isinstance(m, DynamicKernelAggregation) and isinstance(m.aggregation, KernelAggregation)):
            continue
        owner = owners.get(id(m))
        bn = owner.bn if forms and owner is not None and isinstance(owner.bn, nn.BatchNorm2d) else None
        m.aggregation = StaticKernelAggregation(m.aggregation, batch, bn, plain_at_batch1=forms)
        if bn is not None:
            owner.bn = nn.Identity()
            folded += 1
        count += 1
    return count, folded


@dataclasses.dataclass
class ExportReport:
    """What :func:`export_onnx` did (times in seconds, sizes in bytes)."""

    path: str
    arch: str
    input_hw: tuple[int, int]
    batch: int | str
    exporter: str
    opset: int
    folded_bn: int
    kept_bn: int
    static_dka: int
    export_s: float
    check_s: float
    max_abs_diff: float
    output_max: float  # max |PyTorch output| on the check inputs: the scale the difference is measured at
    tolerance: float  # on max_abs_diff / output_max
    checked_batches: list[int]
    size_bytes: int
    forms: dict[str, int] = dataclasses.field(default_factory=dict)  # rewrite -> places changed

    @property
    def max_rel_diff(self) -> float:
        """The parity figure: ``max_abs_diff / output_max`` (0 when both are 0)."""
        return self.max_abs_diff / self.output_max if self.output_max > 0 else (0.0 if self.max_abs_diff == 0
                                                                                 else float("inf"))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["max_rel_diff"] = self.max_rel_diff
        d["input"] = f"{self.input_hw[0]}x{self.input_hw[1]}"
        del d["input_hw"]
        return d


def _export_bytes(model: nn.Module, example: torch.Tensor, exporter: str, dynamic: bool) -> bytes:
    if exporter not in EXPORTERS:
        raise ExportError(f"unknown exporter {exporter!r}: choose from {', '.join(EXPORTERS)}")
    names = output_names(model, example)
    kwargs: dict[str, Any] = {"input_names": [INPUT_NAME], "output_names": names, "opset_version": OPSET}
    if exporter == "torchscript":
        if dynamic:
            kwargs["dynamic_axes"] = {INPUT_NAME: {0: "batch"}, **{n: {0: "batch"} for n in names}}
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings and the exporter's deprecation notice
            torch.onnx.export(model, (example,), buf, dynamo=False, do_constant_folding=True, **kwargs)
        return buf.getvalue()
    if dynamic:
        kwargs["dynamic_shapes"] = ({0: torch.export.Dim("batch", min=1, max=1024)},)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, (example,), dynamo=True, verbose=False, **kwargs)
    return program.model_proto.SerializeToString()


def ort_session(model: bytes | str | Path, threads: int = 1):
    """An ONNX Runtime CPU-execution-provider session with ``threads`` intra-op threads (1 inter-op)."""
    require_onnx()
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    src = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


def output_names(model: nn.Module, example: torch.Tensor) -> list[str]:
    """The graph's output names: ``OUTPUT_NAME`` for a model returning one tensor; ``OUTPUT_NAME``,
    ``OUTPUT_NAME_1``, ... for a tuple (RTMPose's x and y vectors)."""
    with torch.inference_mode():
        out = model(example)
    n = len(out) if isinstance(out, (tuple, list)) else 1
    return [OUTPUT_NAME] + [f"{OUTPUT_NAME}_{i}" for i in range(1, n)]


def parity(session, model: nn.Module, x: torch.Tensor) -> tuple[float, float]:
    """(max |ORT(x) - model(x)|, max |model(x)|), fp32, over every output."""
    with torch.inference_mode():
        ref = model(x)
    refs = [r.float().numpy() for r in (ref if isinstance(ref, (tuple, list)) else (ref,))]
    outs = session.run(None, {INPUT_NAME: x.numpy()})
    if len(outs) != len(refs):
        raise ExportError(f"ONNX graph has {len(outs)} outputs, PyTorch's model {len(refs)}")
    for out, r in zip(outs, refs, strict=True):
        if out.shape != r.shape:
            raise ExportError(f"ONNX output shape {tuple(out.shape)} differs from PyTorch's {tuple(r.shape)}")
    return (max(float(np.abs(o - r).max()) for o, r in zip(outs, refs, strict=True)),
            max(float(np.abs(r).max()) for r in refs))


def prepare_export_model(model: nn.Module, batch: int, fold_bn: bool = True,
                         forms: bool = True) -> tuple[nn.Module, dict[str, int]]:
    """A deep copy of ``model`` in eval mode, BNs folded (``fold_bn``), DKAs made static for ``batch``
    (with ``forms`` and ``fold_bn``: their BatchNorms folded in, the plain convolution at batch 1)."""
    from hrbench.speed.fuse import count_batchnorms, fold_batchnorm

    m = copy.deepcopy(model).eval()
    before = count_batchnorms(m)
    if fold_bn:
        m = fold_batchnorm(m, inplace=True)
    static, dka_bn = substitute_dynamic_kernels(m, batch, forms=forms and fold_bn)
    applied = {name: substitute(m) if forms and fold_bn else 0 for name, substitute in MODULE_FORMS.items()}
    kept = count_batchnorms(m)
    return m, {"folded_bn": before - kept, "kept_bn": kept, "static_dka": static, "dka_bn": dka_bn, **applied}


def onnx_bytes(model: nn.Module, example: torch.Tensor, *, exporter: str = "torchscript", dynamic: bool = False,
               fold_bn: bool = True, forms: bool = True) -> tuple[bytes, dict[str, Any]]:
    """The serialized ONNX model of :func:`prepare_export_model` (batch of ``example``), with the exact
    rewrites of :mod:`hrbench.speed.onnx_forms` (``forms``), and its counts (``forms``: per rewrite)."""
    from hrbench.speed.onnx_forms import apply_forms

    export_model, counts = prepare_export_model(model, example.shape[0], fold_bn, forms)
    try:
        with torch.no_grad():
            data = _export_bytes(export_model, example, exporter, dynamic)
        data, changed = apply_forms(data) if forms else (data, {})
        if forms and fold_bn:
            modules = {**{name: counts[name] for name in MODULE_FORMS}, "dka_batchnorm": counts["dka_bn"],
                       "dka_plain_batch1": counts["static_dka"] if example.shape[0] == 1 else 0}
            changed = {**{k: v for k, v in modules.items() if v}, **changed}
        return data, {**counts, "forms": changed}
    except HrbenchError:
        raise
    except Exception as e:  # noqa: BLE001 - exporters raise many types; report the first line
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise ExportError(f"{exporter} exporter failed: {type(e).__name__}: {first}") from None


def export_onnx(model: nn.Module, out: str | Path, input_hw: tuple[int, int], batch: int | str = 1, *,
                exporter: str = "torchscript", fold_bn: bool = True, tol: float = PARITY_TOL,
                threads: int = 1, arch: str = "", forms: bool = True) -> ExportReport:
    """Export ``model`` to ``out`` (see the module docstring). ``batch``: an int, or ``"dynamic"``
    (not possible with DKA, whose per-sample kernels fix the batch in the conv's group count).
    The file is written atomically and only after the parity check passed; otherwise
    :class:`ExportError` and nothing is left behind."""
    require_onnx()
    dynamic = batch == "dynamic"
    if not dynamic and (not isinstance(batch, int) or batch < 1):
        raise ExportError(f"invalid --batch {batch!r}: a positive integer or 'dynamic'")
    has_dka = any(isinstance(m, DynamicKernelAggregation) for m in model.modules())
    if dynamic and has_dka:
        raise ExportError("--batch dynamic is not possible for dynamic-kernel (DKA) models: each sample's kernel "
                          "is folded into the convolution's groups, which ONNX fixes at export; give --batch N")
    trace_batch = 2 if dynamic else int(batch)
    gen = torch.Generator().manual_seed(0)
    example = torch.randn(trace_batch, 3, *input_hw, generator=gen)
    ref_model = copy.deepcopy(model).eval()
    try:
        with torch.inference_mode():
            ref_model(example)
    except RuntimeError as e:
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise ExportError(f"the model does not run at input {input_hw[0]}x{input_hw[1]} ({first})") from None
    t0 = time.perf_counter()
    data, counts = onnx_bytes(model, example, exporter=exporter, dynamic=dynamic, fold_bn=fold_bn, forms=forms)
    export_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    session = ort_session(data, threads)
    checked = [trace_batch, 1, 3] if dynamic else [trace_batch]
    pairs = [parity(session, ref_model, torch.randn(b, 3, *input_hw, generator=gen)) for b in checked]
    diff, scale = max(p[0] for p in pairs), max(p[1] for p in pairs)
    check_s = time.perf_counter() - t1
    if not diff <= tol * scale:
        raise ExportError(f"ONNX Runtime output differs from PyTorch's by {diff:.3g} (max abs, fp32), more than "
                          f"{tol:g} of the outputs' {scale:.3g}; no file written")
    path = write_bytes_atomic(Path(out), data)
    return ExportReport(str(path), arch or getattr(model, "arch", ""), tuple(input_hw), batch, exporter, OPSET,
                        counts["folded_bn"], counts["kept_bn"], counts["static_dka"], export_s, check_s, diff,
                        scale, tol, checked, len(data), counts["forms"])


