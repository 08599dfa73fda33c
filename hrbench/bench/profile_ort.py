"""ONNX Runtime's own node profile of the exported model, mapped back to module names (``hrbench
profile --mode ort``; issue 23).

The export (:func:`hrbench.speed.onnx.onnx_bytes`: BNs folded, static dynamic kernels) names every
node after the module scope it was traced in (``/backbone/stage2/stage2.0/layers/layers.0/.../Conv``);
ONNX Runtime keeps those names through its graph optimisations (a fused node keeps one of its
nodes' names) and, with ``SessionOptions.enable_profiling``, records each node's kernel time per run.
:func:`module_of` walks a node name's scope parts down the PyTorch module tree to the innermost
module, so the rows group exactly like the eager ones (:mod:`hrbench.bench.profile`). Nodes ONNX
Runtime adds itself (layout reorders) carry no scope and are charged to the module of the node they
feed, found in the optimised graph; anything left is the ``(unmapped)`` row, printed, never dropped.

Overhead: a plain session and a profiling session of the same model alternate run by run; the plain
runs give the end-to-end median, the profiled ones the per-node medians. ONNX Runtime's profiler adds
a fixed cost to every node's kernel time (it formats the node's event inside the timed span):
:func:`profiler_bias_us` measures it on a chain of trivial nodes (a node's profiled time minus its
share of the plain run's time) and it is taken off every node (never below 0). The report states the
rows' sum against the plain median.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hrbench.bench.profile import census, check_clock, group_keys, median_times, summarize, timed
from hrbench.errors import HrbenchError
from hrbench.speed.onnx import INPUT_NAME, onnx_bytes, require_onnx

#: Row name of the node time no module could be found for.
UNMAPPED = "(unmapped)"
KERNEL_SUFFIX = "_kernel_time"


def module_of(node_name: str, modules: dict[str, nn.Module]) -> str | None:
    """The innermost module of ``modules`` (``named_modules()``) a node's scope names, or None.

    The exporter writes one scope part per module level: a child's attribute name (``stage2``), or,
    inside a container, the container's part plus the child's key (``stage2.0`` after ``stage2``,
    ``transition0.1.0`` after ``transition0.1``). The last part is the node's own name (``Conv_3``)."""
    parts = [p for p in node_name.split("/") if p][:-1]
    current, prev = "", None
    for part in parts:
        step = part[len(prev) + 1:] if prev is not None and part.startswith(prev + ".") else part
        full = f"{current}.{step}" if current else step
        if full not in modules:
            break
        current, prev = full, part
    return current or None


def _consumers(model_bytes: bytes) -> dict[str, list[str]]:
    """Node name -> names of the nodes consuming its outputs, in an (optimised) ONNX model."""
    import onnx

    graph = onnx.load_from_string(model_bytes).graph
    by_input: dict[str, list[str]] = defaultdict(list)
    for node in graph.node:
        for i in node.input:
            by_input[i].append(node.name)
    producers: dict[str, list[str]] = {}
    for node in graph.node:
        producers[node.name] = [c for o in node.output for c in by_input.get(o, [])]
    return producers


def node_owners(names: set[str], modules: dict[str, nn.Module], consumers: dict[str, list[str]]) -> dict[str, str]:
    """Node name -> module name (:func:`module_of`; a scope-less node: the module of the first node it
    feeds that has one, followed through chains of such nodes), else :data:`UNMAPPED`."""
    direct = {n: module_of(n, modules) for n in set(names) | set(consumers)}
    owners: dict[str, str] = {}
    for n in names:
        seen, todo = set(), [n]
        owner = None
        while todo and owner is None:
            cur = todo.pop(0)
            if cur in seen:
                continue
            seen.add(cur)
            owner = direct.get(cur)
            if owner is None:
                todo.extend(consumers.get(cur, []))
        owners[n] = owner if owner is not None else UNMAPPED
    return owners


def parse_profile(path: str | Path) -> list[dict[str, float]]:
    """Per run of the profiled session (``model_run`` events), node name -> kernel time in ms."""
    events = json.loads(Path(path).read_text())
    runs = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("cat") == "Session"
                  and e.get("name") == "model_run")
    per_run: list[dict[str, float]] = [defaultdict(float) for _ in runs]
    for e in events:
        if e.get("cat") != "Node" or not e.get("name", "").endswith(KERNEL_SUFFIX):
            continue
        i = next((k for k, (a, b) in enumerate(runs) if a <= e["ts"] <= b), None)
        if i is not None:
            per_run[i][e["name"][: -len(KERNEL_SUFFIX)]] += e["dur"] / 1000.0
    return [dict(r) for r in per_run]


def op_types(path: str | Path) -> dict[str, str]:
    """Node name -> its ONNX op type, from a profile's node events."""
    events = json.loads(Path(path).read_text())
    return {e["name"][: -len(KERNEL_SUFFIX)]: e.get("args", {}).get("op_name", "?") for e in events
            if e.get("cat") == "Node" and e.get("name", "").endswith(KERNEL_SUFFIX)}


def _relu_chain(n: int) -> bytes:
    """An ONNX model of ``n`` chained ``Relu`` nodes on a 1-element tensor (the calibration graph)."""
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Relu", ["x" if i == 0 else f"t{i - 1}"], ["y" if i == n - 1 else f"t{i}"],
                              name=f"/calibration/Relu_{i}") for i in range(n)]
    io = [helper.make_tensor_value_info(v, TensorProto.FLOAT, [1, 1, 1, 1]) for v in ("x", "y")]
    graph = helper.make_graph(nodes, "calibration", [io[0]], [io[1]])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def profiler_bias_us(threads: int = 1, nodes: int = 200, runs: int = 30, clock: str = "cpu") -> float:
    """What ONNX Runtime's profiler adds to each node's kernel time, in µs: a trivial node's median
    profiled time minus the plain session's time per node on the same chain (``clock`` time)."""
    import numpy as np

    data = _relu_chain(nodes)
    feed = {"x": np.ones((1, 1, 1, 1), dtype=np.float32)}
    cpu = torch.device("cpu")
    with tempfile.TemporaryDirectory(prefix="hrbench-ort-") as tmp:
        prof = _session(data, threads, profile_prefix=str(Path(tmp) / "calibration"))
        plain = _session(data, threads)
        plain_ms = []
        for _ in range(runs):
            prof.run(None, feed)
            plain_ms.append(timed(lambda: plain.run(None, feed), cpu)[0 if clock == "wall" else 1])
        per_run = parse_profile(prof.end_profiling())[runs // 5:]
    profiled_us = statistics.median(median_times(per_run).values()) * 1000.0
    return max(0.0, profiled_us - statistics.median(plain_ms) * 1000.0 / nodes)


def _session(data: bytes, threads: int, profile_prefix: str | None = None, optimized: str | None = None):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    if profile_prefix is not None:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    if optimized is not None:
        so.optimized_model_filepath = optimized
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])


def profile_ort(model: nn.Module, input_hw: tuple[int, int], batch: int = 1, threads: int = 1, iters: int = 10,
                warmup: int = 3, clock: str = "cpu") -> dict[str, Any]:
    """ORT profile of ``model``'s export (module docstring): ``warmup`` runs of each session, then
    ``iters`` rounds of one plain and one profiled run, alternating; the end-to-end latency in
    ``clock`` (the node times are ONNX Runtime's own, wall time, per-node medians)."""
    require_onnx()
    check_clock(clock, torch.device("cpu"))
    if iters < 1 or warmup < 0:
        raise HrbenchError(f"invalid --iters {iters} / --warmup {warmup}: need iters >= 1, warmup >= 0")
    model = model.eval()
    counts = census(model, input_hw)
    x = torch.randn(batch, 3, *input_hw, generator=torch.Generator().manual_seed(0))
    data, _ = onnx_bytes(model, x.clone())
    feed = {INPUT_NAME: x.numpy()}
    cpu = torch.device("cpu")
    with tempfile.TemporaryDirectory(prefix="hrbench-ort-") as tmp:
        optimized = str(Path(tmp) / "optimized.onnx")
        plain = _session(data, threads, optimized=optimized)
        prof = _session(data, threads, profile_prefix=str(Path(tmp) / "ort"))
        for _ in range(warmup):
            plain.run(None, feed)
            prof.run(None, feed)
        e2e, profiled = [], []
        for _ in range(iters):
            for sess, acc in ((plain, e2e), (prof, profiled)):
                acc.append(timed(lambda s=sess: s.run(None, feed), cpu))
        trace = prof.end_profiling()
        runs = parse_profile(trace)[warmup:]
        kinds = op_types(trace)
        consumers = _consumers(Path(optimized).read_bytes())
    bias_us = profiler_bias_us(threads, clock=clock)
    node_ms = {n: max(0.0, ms - bias_us / 1000.0) for n, ms in median_times(runs).items()}
    owners = node_owners(set(node_ms), dict(model.named_modules()), consumers)
    module_ms: dict[str, float] = defaultdict(float)
    op_ms: dict[str, float] = defaultdict(float)
    for node, ms in node_ms.items():
        module_ms[owners[node]] += ms
        op_ms[kinds.get(node, "?")] += ms
    keys = group_keys(model)
    out = summarize(dict(module_ms), counts, {g: _keep_unmapped(k) for g, k in keys.items()}, batch, e2e, profiled,
                    clock)
    total = sum(op_ms.values()) or 1.0
    out["by_op_type"] = [{"name": op, "time_ms": round(ms, 4), "time_share": round(ms / total, 4),
                          "nodes": sum(1 for n in node_ms if kinds.get(n) == op)}
                         for op, ms in sorted(op_ms.items(), key=lambda kv: -kv[1])]
    out["nodes"] = len(node_ms)
    out["profiler_bias_us"] = round(bias_us, 3)
    out["profiler_bias_ms"] = round(sum(min(ms, bias_us / 1000.0) for ms in median_times(runs).values()), 4)
    out["unmapped_nodes"] = sorted(n for n, o in owners.items() if o == UNMAPPED)
    out["unmapped_ms"] = round(module_ms.get(UNMAPPED, 0.0), 4)
    out["timer"] = "ONNX Runtime node profiling (kernel time per node, SessionOptions.enable_profiling)"
    out["threads"] = int(threads)
    out["median_runs"] = statistics.median([len(r) for r in runs]) if runs else 0
    return out


def _keep_unmapped(key):
    """A grouping key that leaves :data:`UNMAPPED` as its own row."""
    return lambda name: UNMAPPED if name == UNMAPPED else key(name)
