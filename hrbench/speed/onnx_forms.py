"""Export-time forms: rewrites of the exported ONNX graph that compute exactly the same values with
less memory traffic in ONNX Runtime (issue 23; found with ``hrbench profile --mode ort``).

* :func:`interleave_shuffle` — concatenation followed by ShuffleNet's channel shuffle
  (``Concat(axis=1)`` → ``Reshape(n, g, c/g, h, w)`` → ``Transpose(0, 2, 1, 3, 4)`` → ``Reshape``),
  the tail of every Lite-HRNet / Dite-HRNet block (Lite-HRNet Sec. 3.1), becomes one interleaving
  concatenation: ``Unsqueeze(axis=2)`` of each part → ``Concat(axis=2)`` → the same final ``Reshape``.
  Element ``[k, j]`` of the shuffled tensor is channel ``k`` of part ``j`` either way, so the output is
  bit-identical (pure data movement), but one copy pass (the transpose) is gone.

The eager model is untouched; every rewrite is checked by the export's parity test.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

#: The rewrites in the order they are applied (name -> function of an ``onnx.ModelProto``).
FORMS: dict[str, Any] = {}


def _constant(graph, name: str) -> np.ndarray | None:
    """The value of tensor ``name`` when it is an initializer or a ``Constant`` node's output."""
    from onnx import numpy_helper

    for init in graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            for a in node.attribute:
                if a.name == "value":
                    return numpy_helper.to_array(a.t)
    return None


def interleave_shuffle(model) -> int:
    """Rewrite every concat + channel shuffle of ``model`` (module docstring) in place; returns the count."""
    from onnx import helper, numpy_helper

    graph = model.graph
    producer = {o: n for n in graph.node for o in n.output}
    uses = Counter(i for n in graph.node for i in n.input)
    uses.update(o.name for o in graph.output)
    rewritten = 0
    new_nodes: dict[int, list] = {}
    dead: set[int] = set()
    for t in graph.node:
        if t.op_type != "Transpose" or [a.ints for a in t.attribute if a.name == "perm"] != [[0, 2, 1, 3, 4]]:
            continue
        r1 = producer.get(t.input[0])
        if r1 is None or r1.op_type != "Reshape" or uses[r1.output[0]] != 1:
            continue
        cat = producer.get(r1.input[0])
        if cat is None or cat.op_type != "Concat" or uses[cat.output[0]] != 1:
            continue
        axis = next((a.i for a in cat.attribute if a.name == "axis"), None)
        shape = _constant(graph, r1.input[1])
        if axis != 1 or shape is None or shape.shape != (5,) or int(shape[1]) != len(cat.input):
            continue
        tag = t.name or t.output[0]
        axes_name = f"{tag}/interleave_axes"
        graph.initializer.append(numpy_helper.from_array(np.array([2], dtype=np.int64), axes_name))
        parts = []
        for k, src in enumerate(cat.input):
            out = f"{tag}/interleave_part{k}"
            parts.append(helper.make_node("Unsqueeze", [src, axes_name], [out], name=f"{tag}/Unsqueeze_{k}"))
        joined = helper.make_node("Concat", [p.output[0] for p in parts], [t.output[0]], axis=2,
                                  name=f"{tag}/InterleaveConcat")
        index = {id(n): i for i, n in enumerate(graph.node)}
        new_nodes[index[id(t)]] = [*parts, joined]
        dead.update({index[id(cat)], index[id(r1)]})
        rewritten += 1
    if rewritten:
        nodes = []
        for i, n in enumerate(graph.node):
            if i in new_nodes:
                nodes.extend(new_nodes[i])
            elif i not in dead:
                nodes.append(n)
        del graph.node[:]
        graph.node.extend(_without_unused_constants(nodes, {o.name for o in graph.output}))
    return rewritten


def _without_unused_constants(nodes: list, outputs: set[str]) -> list:
    """``nodes`` less the ``Constant`` nodes nothing reads any more (the shuffles' shape constants)."""
    read = {i for n in nodes for i in n.input} | outputs
    return [n for n in nodes if n.op_type != "Constant" or any(o in read for o in n.output)]


FORMS["interleave_shuffle"] = interleave_shuffle


def apply_forms(data: bytes, names: tuple[str, ...] | None = None) -> tuple[bytes, dict[str, int]]:
    """``data`` (a serialized ONNX model) with the rewrites ``names`` (default: all of :data:`FORMS`)
    applied; returns the new bytes and how many places each rewrite changed."""
    import onnx

    model = onnx.load_from_string(data)
    counts = {name: FORMS[name](model) for name in (names if names is not None else tuple(FORMS))}
    return (model.SerializeToString() if any(counts.values()) else data), counts
