"""Where the time of one forward goes: measured time per stage, block and block type beside the same
rows' MACs, bytes moved and kernel launches (``hrbench profile``; issue 23).

Eager (:func:`profile_eager`): a *module timeline*. Forward pre/post hooks on every module read the
clock at each module boundary; the interval up to the next boundary belongs to the innermost module
then executing, so the intervals partition the forward exactly (no op is lost, and the Python time
between kernels, a large share of an eager Lite-HRNet, is charged to the module whose code spends it).
The hook's own bookkeeping lies between two clock readings and is charged to nobody; the part of
the hooked ``__call__`` path that falls inside the timed spans is measured on a chain of empty
modules (:func:`hook_leak_us`) and taken off every module call. On CPU every
kernel is synchronous and the clock is, by default, this process's CPU time (``--clock cpu``:
``time.process_time``; on a machine shared with other jobs, wall time counts their time slices too,
and a median per row then drops them while the end-to-end median keeps them) or wall time
(``--clock wall``); on CUDA a CUDA event is recorded at every boundary and the device time between
consecutive events is charged (read after one synchronisation).
A profiler's op self-times would miss that Python time, so their sum falls short of the end-to-end
latency; the timeline's does not. ONNX Runtime: :mod:`hrbench.bench.profile_ort`.

Overhead: profiled and plain forwards alternate in the same run; the report gives the plain
end-to-end median (wall and CPU), the profiled one, their difference (the measurement's cost) and
the sum of the rows' medians, which must be near the plain median in the same clock (``sum_vs_e2e``).

Counts (MACs, launches, elements read + written) come from one instrumented batch-1 forward of the
same model (:func:`hrbench.complexity.macs.run_probe`), per innermost module, grouped with the same
keys as the times; at batch N they are the batch-1 census times N (exact for MACs and activations,
an upper bound for weight reads, which a batch shares).
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn

from hrbench.bench.timing import sync
from hrbench.complexity.probe import run_probe
from hrbench.complexity.traffic import is_user_module, stage_of
from hrbench.errors import HrbenchError

#: Row groupings of every profile, in print order.
GROUPINGS = ("stage", "block", "block_type")
#: ``torch.nn`` layers that are a block type of their own (not folded into the enclosing model block).
OWN_TYPE = (nn.Upsample,)
#: The clocks a profile can read: this process's CPU time (not inflated by other processes on a shared
#: machine; with N intra-op threads it sums their time) or wall time.
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
CLOCK_TEXT = {"cpu": "process CPU time (time.process_time)", "wall": "wall time (time.perf_counter)"}
#: Generic conv units (conv + BN + activation, separable conv): charged to the block using them.
UNIT_TYPES = frozenset({"ConvBNAct", "DepthwiseSeparableConv", "ConvNorm"})
#: Dotted parts of a module name that name its block (``backbone.stage2.0.layers.1``: a CCW block).
BLOCK_DEPTH = 5


@dataclasses.dataclass
class Counts:
    """Per innermost module name: MACs, kernel launches and elements moved (read + written), batch 1."""

    macs: dict[str, int]
    launches: dict[str, int]
    moved: dict[str, int]

    @property
    def names(self) -> set[str]:
        return set(self.macs) | set(self.launches) | set(self.moved)


def census(model: nn.Module, input_hw: tuple[int, int]) -> Counts:
    """:class:`Counts` of one batch-1 forward of ``model`` (eval mode)."""
    probe = run_probe(model, input_hw)
    t = probe.traffic
    moved = {n: t.written.get(n, 0) + t.read.get(n, 0) for n in set(t.written) | set(t.read)}
    return Counts(dict(probe.macs.by_module), dict(t.launches), moved)


def block_of(name: str, depth: int = BLOCK_DEPTH) -> str:
    """The block a module name belongs to: its first ``depth`` dotted parts."""
    return ".".join(name.split(".")[:depth]) if name else "(top level)"


def type_key(model: nn.Module) -> Callable[[str], str]:
    """Module name -> its block type: an :data:`OWN_TYPE` layer's class, else the innermost
    model-defined class enclosing it that is not a generic conv unit (:data:`UNIT_TYPES`: a conv unit's
    time belongs to the block that uses it, as in the papers' component lists)."""
    mods = dict(model.named_modules())

    def key(name: str) -> str:
        m = mods.get(name)
        if m is not None and isinstance(m, OWN_TYPE):
            return type(m).__name__
        parts = name.split(".") if name else []
        for i in range(len(parts), 0, -1):
            m = mods.get(".".join(parts[:i]))
            if m is not None and is_user_module(m) and type(m).__name__ not in UNIT_TYPES:
                return type(m).__name__
        return type(model).__name__

    return key


def group_keys(model: nn.Module) -> dict[str, Callable[[str], str]]:
    """The key function of each grouping in :data:`GROUPINGS`."""
    return {"stage": stage_of, "block": block_of, "block_type": type_key(model)}


class ModuleTimeline:
    """Forward hooks on every module of ``model`` charging each interval between module boundaries
    to the innermost executing module (module docstring). Use as a context manager around forwards;
    :meth:`take` returns the times (ms) of the forwards since the last call, per module name."""

    def __init__(self, model: nn.Module, device: torch.device, clock: Callable[[], float] = time.perf_counter) -> None:
        self.names = {m: n for n, m in model.named_modules()}
        self.cuda = device.type == "cuda"
        self.clock = clock
        self.stack: list[tuple[str, nn.Module]] = []
        self.acc: defaultdict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self.events: list[tuple[Any, str]] = []
        self.last = 0.0
        self._handles: list = []

    def __enter__(self) -> ModuleTimeline:
        for module, name in self.names.items():
            self._handles.append(module.register_forward_pre_hook(self._pre(name)))
            self._handles.append(module.register_forward_hook(self._post))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    @property
    def current(self) -> str:
        return self.stack[-1][0] if self.stack else ""

    def _boundary(self) -> None:
        """Close the running interval (charged to the current module)."""
        if self.cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            self.events.append((ev, self.current))
            return
        t = self.clock()
        if self.stack:
            self.acc[self.current] += t - self.last

    def _pre(self, name: str):
        def hook(module, args):
            self._boundary()
            self.stack.append((name, module))
            self.calls[name] += 1
            self.last = self.clock()

        return hook

    def _post(self, module, args, out) -> None:
        self._boundary()
        if self.stack and self.stack[-1][1] is module:
            self.stack.pop()
        self.last = self.clock()

    def take(self) -> dict[str, float]:
        """Milliseconds per module name since the last call (CUDA: synchronises first)."""
        if self.cuda:
            torch.cuda.synchronize()
            out: defaultdict[str, float] = defaultdict(float)
            for (ev, _), (nxt, owner) in zip(self.events, self.events[1:], strict=False):
                out[owner] += ev.elapsed_time(nxt)  # ``owner``: the module current during (ev, nxt]
            self.events.clear()
            return dict(out)
        out_cpu = {n: v * 1000.0 for n, v in self.acc.items()}
        self.acc.clear()
        return out_cpu


def measure_peaks(device: torch.device, clock: str = "wall") -> dict[str, Any]:
    """This machine's achieved peaks in the current thread setting: GMAC/s of a large fp32 matmul and
    GB/s (read + write) of a large copy (median of 5 after 2 warm-ups, ``clock`` time), the
    roofline's two lines."""
    n = 1024 if device.type == "cpu" else 8192
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    src = torch.randn(16 * 2**20, device=device)  # 64 MiB
    dst = torch.empty_like(src)

    def timed(fn: Callable[[], Any]) -> float:
        for _ in range(2):
            fn()
        read = CLOCKS["wall" if device.type == "cuda" else clock]
        ts = []
        for _ in range(5):
            sync(device)
            t = read()
            fn()
            sync(device)
            ts.append(read() - t)
        return statistics.median(ts)

    with torch.inference_mode():
        t_mm = timed(lambda: torch.mm(a, b))
        t_copy = timed(lambda: dst.copy_(src))
    return {"gmacs": n**3 / t_mm / 1e9, "gbs": 2 * src.numel() * 4 / t_copy / 1e9,
            "matmul": f"{n}x{n} @ {n}x{n} fp32", "copy": "64 MiB fp32 copy, read + write", "clock": clock}


def rows(times: Mapping[str, float], counts: Counts, key: Callable[[str], str], batch: int,
         total_ms: float) -> list[dict[str, Any]]:
    """One row per group of module names (``key``): time (ms) and its share of ``total_ms``, MACs /
    launches / bytes at fp32 (batch-1 census x ``batch``; launches per forward) and their shares,
    achieved GMAC/s and GB/s, MACs per byte. Largest time first."""
    acc: dict[str, list[float]] = {}
    for name in set(times) | counts.names:
        a = acc.setdefault(key(name), [0.0, 0, 0, 0])
        a[0] += times.get(name, 0.0)
        a[1] += counts.macs.get(name, 0) * batch
        a[2] += counts.launches.get(name, 0)
        a[3] += counts.moved.get(name, 0) * 4 * batch
    tot_macs = sum(v[1] for v in acc.values()) or 1
    tot_bytes = sum(v[3] for v in acc.values()) or 1
    tot_launch = sum(v[2] for v in acc.values()) or 1
    out = []
    for group, (ms, macs, launches, nbytes) in acc.items():
        s = ms / 1000.0
        out.append({"name": group, "time_ms": round(ms, 4), "time_share": round(ms / total_ms, 4) if total_ms else 0.0,
                    "macs": int(macs), "mac_share": round(macs / tot_macs, 4), "launches": int(launches),
                    "launch_share": round(launches / tot_launch, 4), "bytes": int(nbytes),
                    "byte_share": round(nbytes / tot_bytes, 4),
                    "gmacs_per_s": _sig(macs / s / 1e9) if s > 0 else None,
                    "gb_per_s": _sig(nbytes / s / 1e9) if s > 0 else None,
                    "macs_per_byte": round(macs / nbytes, 4) if nbytes else None})
    return sorted(out, key=lambda r: (-r["time_ms"], -r["macs"], r["name"]))


def _sig(v: float) -> float:
    """``v`` to 6 significant digits."""
    return float(f"{v:.6g}")


def median_times(samples: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Per module name, the median of its time over the profiled forwards (0 where a forward lacks it)."""
    samples = list(samples)
    names = set().union(*samples) if samples else set()
    return {n: statistics.median(s.get(n, 0.0) for s in samples) for n in names}


def summarize(times: Mapping[str, float], counts: Counts, keys: Mapping[str, Callable[[str], str]], batch: int,
              e2e: list[tuple[float, float]], profiled: list[tuple[float, float]], clock: str) -> dict[str, Any]:
    """The figures every profile reports from (wall, CPU) ms pairs of the plain and profiled forwards:
    both end-to-end medians; in ``clock`` (:data:`CLOCKS`) the latency ``e2e_ms``, the profiled median,
    the overhead, the rows' sum and its ratio to ``e2e_ms``; the rows of each grouping."""
    pick = 0 if clock == "wall" else 1
    e2e_ms = statistics.median(t[pick] for t in e2e)
    prof_ms = statistics.median(t[pick] for t in profiled)
    row_sum = sum(times.values())
    return {"clock": clock, "e2e_ms": round(e2e_ms, 4),
            "e2e_wall_ms": round(statistics.median(t[0] for t in e2e), 4),
            "e2e_cpu_ms": round(statistics.median(t[1] for t in e2e), 4),
            "profiled_ms": round(prof_ms, 4), "overhead_ms": round(prof_ms - e2e_ms, 4),
            "row_sum_ms": round(row_sum, 4), "sum_vs_e2e": round(row_sum / e2e_ms, 4) if e2e_ms else None,
            "groups": {g: rows(times, counts, k, batch, row_sum) for g, k in keys.items()}}


def profile_eager(model: nn.Module, input_hw: tuple[int, int], batch: int = 1, device: str | torch.device = "cpu",
                  iters: int = 10, warmup: int = 3, clock: str = "cpu") -> dict[str, Any]:
    """Eager profile of ``model`` (module docstring): ``warmup`` forwards, then ``iters`` rounds of one
    plain and one profiled forward, alternating. ``clock`` (CPU only): ``cpu`` (this process's CPU
    time: what a shared machine's other processes do not inflate) or ``wall``."""
    if iters < 1 or warmup < 0:
        raise HrbenchError(f"invalid --iters {iters} / --warmup {warmup}: need iters >= 1, warmup >= 0")
    dev = torch.device(device)
    clock = check_clock(clock, dev)
    model = model.to(dev).eval()
    counts = census(model.cpu(), input_hw)
    model.to(dev)
    x = torch.randn(batch, 3, *input_hw, generator=torch.Generator().manual_seed(0)).to(dev)
    timeline = ModuleTimeline(model, dev, CLOCKS[clock])
    e2e, profiled, samples = [], [], []
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        for _ in range(iters):
            e2e.append(timed(lambda: model(x), dev))
            with timeline:
                profiled.append(timed(lambda: model(x), dev))
            samples.append(timeline.take())
    leak_us = 0.0 if dev.type == "cuda" else hook_leak_us(clock)
    per_call = {n: c / iters for n, c in timeline.calls.items()}
    times = {n: max(0.0, ms - leak_us * per_call.get(n, 0) / 1000.0) for n, ms in median_times(samples).items()}
    out = summarize(times, counts, group_keys(model), batch, e2e, profiled, clock)
    out["hook_leak_us"] = round(leak_us, 3)
    out["hook_leak_ms"] = round(leak_us * sum(per_call.values()) / 1000.0, 4)
    out["timer"] = "CUDA events at module boundaries (device time)" if dev.type == "cuda" else \
        f"module timeline, {CLOCK_TEXT[clock]} read at every module boundary"
    out["module_calls"] = sum(timeline.calls.values()) // max(iters, 1)
    return out


class _IdentityChain(nn.Module):
    """``n`` ``nn.Identity`` modules called in a row (the hook calibration)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.items = nn.ModuleList(nn.Identity() for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for m in self.items:
            x = m(x)
        return x


def hook_leak_us(clock: str = "cpu", n: int = 200, runs: int = 30) -> float:
    """What the timeline charges per module call beyond the call itself, in µs: on a chain of ``n``
    empty modules, (median charged total - median plain forward) / calls. The hooked ``__call__`` path
    runs partly between the clock readings; this is taken off every call of every module."""
    chain = _IdentityChain(n)
    x = torch.zeros(1)
    cpu = torch.device("cpu")
    timeline = ModuleTimeline(chain, cpu, CLOCKS[clock])
    pick = 0 if clock == "wall" else 1
    plain, charged = [], []
    with torch.inference_mode():
        for _ in range(runs):
            plain.append(timed(lambda: chain(x), cpu)[pick])
            with timeline:
                chain(x)
            charged.append(sum(timeline.take().values()))
    return max(0.0, (statistics.median(charged) - statistics.median(plain)) * 1000.0 / (n + 1))


def check_clock(clock: str, dev: torch.device) -> str:
    """``--clock`` checked: one of :data:`CLOCKS`; CUDA times are device time (``wall``)."""
    if clock not in CLOCKS:
        raise HrbenchError(f"unknown --clock {clock!r}: choose from {', '.join(CLOCKS)}")
    if dev.type == "cuda" and clock != "wall":
        raise HrbenchError("--device cuda measures device time with CUDA events: use --clock wall")
    return clock


def timed(fn: Callable[[], Any], dev: torch.device) -> tuple[float, float]:
    """(wall, CPU) milliseconds of one synchronised call of ``fn``."""
    sync(dev)
    t, c = time.perf_counter(), time.process_time()
    fn()
    sync(dev)
    return (time.perf_counter() - t) * 1000.0, (time.process_time() - c) * 1000.0
