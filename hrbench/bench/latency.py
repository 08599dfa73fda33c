"""Forward latency of a pose model under several execution modes, measured the careful way.

Modes (each on its own copy of the model, eval mode, ``torch.inference_mode``):

* ``eager``          — fp32, contiguous NCHW;
* ``channels_last``  — fp32, NHWC weights (rank-4 tensors only) and input;
* ``amp``            — bf16 autocast (CPU or CUDA), output compared in fp32;
* ``compile``        — ``torch.compile`` of the eager model (first call timed as compile time);
* ``fused``          — BatchNorms folded into the convolutions + channels-last
  (:func:`hrbench.speed.prepare_for_inference`);
* ``traced``         — ``fused``, then ``torch.jit.trace`` + ``torch.jit.freeze`` (no Python overhead per layer);
* ``cudagraph``      — ``fused``, then the whole forward replayed as one CUDA graph (CUDA only);
* ``ort``            — the ONNX export of :func:`hrbench.speed.onnx.export_onnx` (BNs folded, static
  dynamic kernels, the exact export forms of :mod:`hrbench.speed.onnx_modules` and
  :mod:`hrbench.speed.onnx_forms`) run by ONNX Runtime's CPU
  execution provider with as many intra-op threads as torch uses (``threads`` in the row; export
  time in ``compile_s``; CPU only);
* ``ort_stock``      — the same without the forms (the exporter's own graph), for before / after.

Timing: ``warmup`` untimed calls, then ``iters`` timed calls. On CUDA each call is bracketed by
CUDA events and the device is synchronized before reading them (and before/after the loop); on
CPU ``time.perf_counter`` around each call, or with ``clock="cpu"`` this process's CPU time
(``time.process_time``: on a busy machine the other processes' time slices stay out of it).
Reported: median and spread (IQR, p10, p90) in ms,
throughput (images/s = batch / median), CUDA peak memory (``max_memory_allocated`` over the
timed loop; n/a on CPU), each mode's median relative to the first mode's, and the largest
deviation of its output from eager's on the same input.

Every result is stamped with what else was running (:func:`load_stamp`): the CPUs other processes
kept busy just before and just after the timed loops (``/proc/stat``, :func:`hrbench.threads.busy_cpus`),
as a share of the CPUs this process may use; a share of :data:`BUSY_SHARE` or more flags the figures
as taken on a busy machine (compare such figures only as ratios within one run).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from hrbench.bench.timing import CPU_CLOCKS, summarize, sync, time_calls
from hrbench.device import resolve_device
from hrbench.errors import HrbenchError, brief
from hrbench.speed import to_channels_last
from hrbench.stack import software_stack
from hrbench.threads import busy_cpus, usable_cpus

MODES = ("eager", "channels_last", "amp", "compile", "fused", "traced", "cudagraph", "ort", "ort_stock")

#: Output agreement with eager, as max |out - eager| / max |eager|.
TOLERANCE = {"eager": 0.0, "channels_last": 1e-4, "compile": 1e-4, "amp": 5e-2, "fused": 1e-4, "traced": 1e-4,
             "cudagraph": 1e-4, "ort": 1e-4, "ort_stock": 1e-4}
#: Other processes' CPU share (of this process's usable CPUs) from which a machine counts as busy.
BUSY_SHARE = 0.25

TOLERANCE_NOTE = ("fp32 modes (channels_last, compile, fused, traced, cudagraph, ort) must match eager within 1e-4 "
                  "(max |out - eager| / max |eager|); "
                  "bf16 autocast (amp) within 5e-2: bf16 keeps 8 significant bits, ~0.4% per rounding")


@dataclasses.dataclass
class ModeResult:
    """One row of the benchmark (times in milliseconds)."""

    mode: str
    median_ms: float | None = None
    iqr_ms: float | None = None
    p10_ms: float | None = None
    p90_ms: float | None = None
    throughput: float | None = None  # images per second
    peak_mem_mb: float | None = None  # CUDA only
    compile_s: float | None = None
    ratio: float | None = None  # median / first mode's median
    max_rel_diff: float | None = None
    tolerance: float | None = None
    ok: bool | None = None
    error: str | None = None
    threads: int | None = None  # ort: ONNX Runtime intra-op threads


@dataclasses.dataclass
class BenchResult:
    arch: str
    device: str
    batch: int
    input_hw: tuple[int, int]
    iters: int
    warmup: int
    threads: int
    rows: list[ModeResult]
    torch_version: str = torch.__version__
    load: dict[str, Any] = dataclasses.field(default_factory=dict)  # :func:`load_stamp`
    clock: str = "wall"
    alternate: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "device": self.device,
            "batch": self.batch,
            "input": f"{self.input_hw[0]}x{self.input_hw[1]}",
            "iters": self.iters,
            "warmup": self.warmup,
            "threads": self.threads,
            "torch": self.torch_version,
            "peak_memory": "CUDA max_memory_allocated over the timed loop" if self.device == "cuda"
            else "n/a on CPU",
            "tolerance": TOLERANCE_NOTE,
            "clock": self.clock,
            "alternate": self.alternate,
            "load": dict(self.load),
            "rows": [dataclasses.asdict(r) for r in self.rows],
            "stack": software_stack(self.device, "fp32 (amp mode: bf16 autocast)", self.threads),
        }


def load_stamp(before: float, after: float, cpus: int | None = None) -> dict[str, Any]:
    """What else was running: other processes' busy CPUs ``before`` and ``after`` the timing (their
    mean as a share of ``cpus``, the CPUs this process may use) and whether that makes it a busy machine."""
    cpus = cpus or usable_cpus()
    share = (before + after) / 2 / cpus
    return {"cpus": cpus, "busy_cpus_before": round(before, 3), "busy_cpus_after": round(after, 3),
            "other_share": round(share, 3), "busy": share >= BUSY_SHARE,
            "note": f"other processes' CPU share of {cpus} usable CPU(s), /proc/stat over 0.25 s before and after "
                    f"timing; busy from {BUSY_SHARE:.0%}: compare figures within one run, as ratios"}


def load_line(load: dict[str, Any]) -> str:
    """One line for a table's foot: the busy share and, on a busy machine, a warning."""
    if not load:
        return ""
    text = (f"other processes kept {load['busy_cpus_before']:.2f} / {load['busy_cpus_after']:.2f} of "
            f"{load['cpus']} CPU(s) busy before / after timing ({load['other_share']:.0%})")
    return ("BUSY MACHINE: " + text + "; absolute times are inflated, compare ratios") if load["busy"] else text


def _to_float(out: Any) -> torch.Tensor:
    t = out[0] if isinstance(out, (tuple, list)) else out
    return t.detach().float()


def prepare(mode: str, model: nn.Module, x: torch.Tensor, device: torch.device,
            compile_kwargs: dict[str, Any] | None = None) -> tuple[Callable[[], Any], float | None]:
    """A zero-argument callable running one forward in ``mode``, and the compile time (s) of
    the ``compile`` mode (its first call, synchronized), else None."""
    m = copy.deepcopy(model).to(device).eval()
    inp = x.to(device)
    if mode == "eager":
        return (lambda: m(inp)), None
    if mode == "channels_last":
        m = to_channels_last(m)
        inp_cl = inp.contiguous(memory_format=torch.channels_last)
        return (lambda: m(inp_cl)), None
    if mode == "amp":
        def run_amp():
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
                return m(inp)

        return run_amp, None
    if mode == "compile":
        compiled = torch.compile(m, **(compile_kwargs or {}))
        sync(device)
        t = time.perf_counter()
        compiled(inp)
        sync(device)
        return (lambda: compiled(inp)), time.perf_counter() - t
    if mode in ("fused", "traced", "cudagraph"):
        from hrbench.speed import CudaGraphForward, prepare_for_inference

        inp_cl = inp.contiguous(memory_format=torch.channels_last)
        if mode == "cudagraph" and device.type != "cuda":
            raise ValueError("the cudagraph mode needs --device cuda")
        f = prepare_for_inference(m, inplace=True, trace_input=inp_cl if mode == "traced" else None)
        if mode == "cudagraph":
            f = CudaGraphForward(f, inp_cl)
        return (lambda: f(inp_cl)), None
    if mode in ("ort", "ort_stock"):
        return _prepare_ort(m, inp, device, forms=mode == "ort")
    raise HrbenchError(f"unknown mode {mode!r}: choose from {', '.join(MODES)}")


def _prepare_ort(m: nn.Module, inp: torch.Tensor, device: torch.device,
                 forms: bool = True) -> tuple[Callable[[], Any], float]:
    """ONNX Runtime (CPU execution provider, torch's thread count) on the exported model; export + session
    creation time as the compile time."""
    if device.type != "cpu":
        raise ValueError("the ort mode runs ONNX Runtime's CPU execution provider: use --device cpu")
    from hrbench.speed.onnx import INPUT_NAME, onnx_bytes, ort_session

    t = time.perf_counter()
    with torch.inference_mode(False):
        data, _ = onnx_bytes(m, inp.clone(), forms=forms)
    session = ort_session(data, threads=torch.get_num_threads())
    feed = {INPUT_NAME: inp.numpy()}
    return (lambda: torch.from_numpy(session.run(None, feed)[0])), time.perf_counter() - t


def benchmark_model(
    model: nn.Module,
    input_hw: tuple[int, int] = (256, 192),
    batch: int = 1,
    device: str = "cpu",
    modes: Sequence[str] = ("eager",),
    iters: int = 20,
    warmup: int = 5,
    arch: str = "",
    compile_kwargs: dict[str, Any] | None = None,
    clock: str = "wall",
    alternate: bool = False,
) -> BenchResult:
    """Time ``model`` in each of ``modes`` (see the module docstring); a mode that fails gets
    an ``error`` in its row instead of stopping the others. ``clock``: ``wall`` or ``cpu`` (CPU only).
    ``alternate``: prepare every mode first, then time one call of each in turn, ``iters`` rounds (a
    changing load then touches every mode alike; no peak memory per mode)."""
    _check_args(batch, iters, warmup, modes)
    dev = resolve_device(device)
    if clock not in CPU_CLOCKS or (clock == "cpu" and dev.type != "cpu"):
        raise HrbenchError(f"invalid --clock {clock!r}: wall, or cpu (CPU device only)")
    x = torch.randn(batch, 3, *input_hw, generator=torch.Generator().manual_seed(0))
    rows: list[ModeResult] = []
    before = busy_cpus()
    with torch.inference_mode():
        reference = None if modes[0] == "eager" else _to_float(prepare("eager", model, x, dev)[0]())
        ready = []
        for mode in modes:
            if alternate:
                row, fn, out = _prepare_row(mode, model, x, dev, reference, compile_kwargs)
                ready.append(fn)
            else:
                row, out = _run_mode(mode, model, x, dev, reference, iters, warmup, compile_kwargs, clock)
            if reference is None:
                reference = out
            rows.append(row)
        if alternate:
            _time_alternating(rows, ready, iters, warmup, dev, clock, batch)
    load = load_stamp(before, busy_cpus())
    first = next((r.median_ms for r in rows if r.median_ms), None)
    for r in rows:
        if r.median_ms is not None and first:
            r.ratio = r.median_ms / first
    return BenchResult(arch or getattr(model, "arch", "") or type(model).__name__, dev.type, batch,
                       (int(input_hw[0]), int(input_hw[1])), iters, warmup, torch.get_num_threads(), rows,
                       load=load, clock=clock, alternate=alternate)


def _check_args(batch: int, iters: int, warmup: int, modes: Sequence[str]) -> None:
    """One-line errors for the options of :func:`benchmark_model`."""
    if batch < 1:
        raise HrbenchError(f"invalid --batch {batch}: must be a positive integer")
    if iters < 1:
        raise HrbenchError(f"invalid --iters {iters}: must be a positive integer")
    if warmup < 0:
        raise HrbenchError(f"invalid --warmup {warmup}: must be zero or more")
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise HrbenchError(f"unknown mode(s) {', '.join(bad) or '(none)'}: choose from {', '.join(MODES)}")


def _prepare_row(mode: str, model: nn.Module, x: torch.Tensor, dev: torch.device, reference: torch.Tensor | None,
                 compile_kwargs: dict[str, Any] | None) -> tuple[ModeResult, Callable[[], Any] | None,
                                                               torch.Tensor | None]:
    """A row with ``mode`` prepared and its output checked against ``reference`` (None: this output is
    the reference); the callable and output are None when the mode failed (``row.error``)."""
    row = ModeResult(mode, tolerance=TOLERANCE[mode],
                     threads=torch.get_num_threads() if mode in ("ort", "ort_stock") else None)
    try:
        fn, row.compile_s = prepare(mode, model, x, dev, compile_kwargs)
        out = _to_float(fn())
    except HrbenchError:
        raise
    except Exception as e:
        row.error = brief(e)
        return row, None, None
    ref = out if reference is None else reference
    row.max_rel_diff = float((out - ref).abs().max()) / (float(ref.abs().max()) or 1.0)
    row.ok = row.max_rel_diff <= row.tolerance
    return row, fn, out


def _time_alternating(rows: list[ModeResult], fns: list[Callable[[], Any] | None], iters: int, warmup: int,
                      dev: torch.device, clock: str, batch: int) -> None:
    """``warmup`` calls of each prepared mode, then ``iters`` rounds of one timed call of each in turn."""
    live = [(r, f) for r, f in zip(rows, fns, strict=True) if f is not None]
    times: dict[int, list[float]] = {id(r): [] for r, _ in live}
    for _, f in live:
        time_calls(f, 0, warmup, dev, clock)
    for _ in range(iters):
        for r, f in live:
            if r.error is None:
                try:
                    times[id(r)] += time_calls(f, 1, 0, dev, clock)
                except Exception as e:  # noqa: BLE001 - a mode failing midway is its row's error
                    r.error = brief(e)
    for r, _ in live:
        if r.error is None:
            for k, v in summarize(times[id(r)], batch).items():
                setattr(r, k, v)


def _run_mode(mode: str, model: nn.Module, x: torch.Tensor, dev: torch.device, reference: torch.Tensor | None,
              iters: int, warmup: int, compile_kwargs: dict[str, Any] | None,
              clock: str = "wall") -> tuple[ModeResult, torch.Tensor | None]:
    """One row: prepare ``mode``, compare its output with ``reference`` (None: this output is the
    reference), time it. A failure of the mode (not a user error) is the row's ``error``. Returns the
    row and the mode's output (None when it failed)."""
    row = ModeResult(mode, tolerance=TOLERANCE[mode],
                     threads=torch.get_num_threads() if mode in ("ort", "ort_stock") else None)
    try:
        fn, row.compile_s = prepare(mode, model, x, dev, compile_kwargs)
        out = _to_float(fn())
        ref = out if reference is None else reference
        row.max_rel_diff = float((out - ref).abs().max()) / (float(ref.abs().max()) or 1.0)
        row.ok = row.max_rel_diff <= row.tolerance
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        times = time_calls(fn, iters, warmup, dev, clock)
        if dev.type == "cuda":
            row.peak_mem_mb = torch.cuda.max_memory_allocated(dev) / 2**20
    except HrbenchError:
        raise
    except Exception as e:
        row.error = brief(e)
        return row, None
    for k, v in summarize(times, x.shape[0]).items():
        setattr(row, k, v)
    return row, out


def benchmark(arch: str, input_hw: tuple[int, int] = (256, 192), num_keypoints: int = 17,
              overrides: dict[str, Any] | None = None, **kwargs: Any) -> BenchResult:
    """:func:`benchmark_model` on a freshly built registered model ``arch``."""
    from hrbench.factory import create_model
    from hrbench.registry import resolve

    name = resolve(arch)
    model = create_model(name, num_keypoints=num_keypoints, **(overrides or {}))
    return benchmark_model(model, input_hw, arch=name, **kwargs)
