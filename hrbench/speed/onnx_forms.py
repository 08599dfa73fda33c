"""Export-time forms: rewrites of the exported ONNX graph that compute exactly the same values with
less memory traffic in ONNX Runtime (issue 23; found with ``hrbench profile --mode ort``).

* :func:`interleave_shuffle` — concatenation followed by ShuffleNet's channel shuffle
  (``Concat(axis=1)`` → ``Reshape(n, g, c/g, h, w)`` → ``Transpose(0, 2, 1, 3, 4)`` → ``Reshape``),
  the tail of every Lite-HRNet / Dite-HRNet block (Lite-HRNet Sec. 3.1), becomes one interleaving
  concatenation: ``Unsqueeze(axis=2)`` of each part → ``Concat(axis=2)`` → the same final ``Reshape``.
  Element ``[k, j]`` of the shuffled tensor is channel ``k`` of part ``j`` either way, so the output is
  bit-identical (pure data movement), but one copy pass (the transpose) is gone.
* :func:`fold_reshapes` — for a fixed-shape export (shapes read off one ONNX Runtime run): chains of
  reshapes as one ``Reshape``, transposes that only move size-1 axes (GCM's context permute) as reshapes,
  reshapes and nearest ``Resize`` to their input's own shape (the lowest branch of CRW / DCM) dropped.

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

#: Ops that only reinterpret the shape of a contiguous tensor (no data moves).
RESHAPES = ("Reshape", "Squeeze", "Unsqueeze", "Flatten")


def static_shapes(model) -> dict[str, tuple[int, ...]] | None:
    """Every value's shape in ``model`` (a fixed-shape export), read off one ONNX Runtime run on zeros with
    every node output made a graph output; None when an input has a symbolic dimension (dynamic batch)."""
    import onnx
    import onnxruntime as ort
    from onnx import helper

    dims = {i.name: [d.dim_value if d.HasField("dim_value") else 0 for d in i.type.tensor_type.shape.dim]
            for i in model.graph.input}
    if any(0 in d for d in dims.values()):
        return None
    typed = onnx.shape_inference.infer_shapes(model)
    elem = {v.name: v.type.tensor_type.elem_type for v in [*typed.graph.value_info, *typed.graph.output]}
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {o.name for o in probe.graph.output}
    for n in probe.graph.node:
        for o in n.output:
            if o and o not in known and elem.get(o):
                probe.graph.output.append(helper.make_tensor_value_info(o, elem[o], None))
                known.add(o)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads, so.log_severity_level = 1, 3
    sess = ort.InferenceSession(probe.SerializeToString(), so, providers=["CPUExecutionProvider"])
    feed = {i.name: np.zeros(dims[i.name], dtype=helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type))
            for i in model.graph.input}
    names = [o.name for o in sess.get_outputs()]
    shapes = {name: tuple(np.shape(v)) for name, v in zip(names, sess.run(names, feed), strict=True)}
    shapes.update({name: tuple(d) for name, d in dims.items()})
    return shapes


def _keeps_order(shape: tuple[int, ...], perm: list[int]) -> bool:
    """Whether transposing ``shape`` by ``perm`` only moves size-1 axes (the data order is unchanged)."""
    moved = [a for a in perm if shape[a] != 1]
    return moved == sorted(moved)


def _nearest_resize(n) -> bool:
    """A nearest-neighbour ``Resize`` (to its input's own size it is a copy: any coordinate mode maps
    output pixel i to input pixel i)."""
    attrs = {a.name: a.s for a in n.attribute}
    return n.op_type == "Resize" and attrs.get("mode", b"nearest") == b"nearest" \
        and attrs.get("coordinate_transformation_mode") != b"tf_crop_and_resize"


def fold_reshapes(model) -> int:
    """Shape-only nodes of a fixed-shape export made as few as possible (in place; returns the nodes removed):
    a ``Transpose`` that only moves size-1 axes is a reshape; a reshape of a reshape is one ``Reshape`` of
    the first one's input to the final (static) shape; a reshape, or a nearest ``Resize``, to its input's
    own shape is dropped (its readers read the input); nodes left unread go. No value changes: a
    contiguous tensor's data order is the same."""
    from onnx import helper, numpy_helper

    shapes = static_shapes(model)
    if shapes is None:
        return 0
    graph = model.graph
    before = len(graph.node)
    producer = {o: n for n in graph.node for o in n.output}
    outputs = {o.name for o in graph.output}

    def shape_only(n) -> bool:
        if n.op_type in RESHAPES:
            return True
        perm = [list(a.ints) for a in n.attribute if a.name == "perm"]
        return n.op_type == "Transpose" and bool(perm) and _keeps_order(shapes[n.input[0]], perm[0])

    alias: dict[str, str] = {}
    nodes = []
    for k, n in enumerate(graph.node):
        n.input[:] = [alias.get(i, i) for i in n.input]
        if _nearest_resize(n) and shapes[n.input[0]] == shapes[n.output[0]] and n.output[0] not in outputs:
            alias[n.output[0]] = n.input[0]
            continue
        if not shape_only(n):
            nodes.append(n)
            continue
        src = n.input[0]
        while src in producer and shape_only(producer[src]) and src not in outputs:
            src = producer[src].input[0]
        out = n.output[0]
        if shapes[src] == shapes[out] and out not in outputs:
            alias[out] = src
            continue
        if src == n.input[0] and n.op_type != "Transpose":
            nodes.append(n)
            continue
        const = f"{n.name or out}/static_shape_{k}"
        graph.initializer.append(numpy_helper.from_array(np.array(shapes[out], dtype=np.int64), const))
        nodes.append(helper.make_node("Reshape", [src, const], [out], name=n.name))
    for o in graph.output:
        if o.name in alias:
            raise AssertionError(f"graph output {o.name} aliased")  # excluded above
    del graph.node[:]
    graph.node.extend(_live(nodes, outputs))
    return before - len(graph.node)


def _live(nodes: list, outputs: set[str]) -> list:
    """``nodes`` less those whose outputs nothing reads (repeated until none is left)."""
    while True:
        read = {i for n in nodes for i in n.input} | outputs
        kept = [n for n in nodes if any(o in read for o in n.output)]
        if len(kept) == len(nodes):
            return kept
        nodes = kept


FORMS["fold_reshapes"] = fold_reshapes


def apply_forms(data: bytes, names: tuple[str, ...] | None = None) -> tuple[bytes, dict[str, int]]:
    """``data`` (a serialized ONNX model) with the rewrites ``names`` (default: all of :data:`FORMS`)
    applied; returns the new bytes and how many places each rewrite changed."""
    import onnx

    model = onnx.load_from_string(data)
    counts = {name: FORMS[name](model) for name in (names if names is not None else tuple(FORMS))}
    return (model.SerializeToString() if any(counts.values()) else data), counts
