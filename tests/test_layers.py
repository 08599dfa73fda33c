"""The layer order stated in README.md ("Layout") holds for every import in the tree.

The README block is the single statement of the order: each line a layer (top first), modules and
packages separated by ``,``, sibling groups by ``|``. Every ``import`` statement of ``hrbench/`` and
``architectures/`` (installed as ``hrbench.architectures``) is read with :mod:`ast`, those inside
functions included, and must point to its own layer or below, never across ``|``, never round.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPECS = "hrbench.architectures"


def read_layers(readme: str) -> list[tuple[int, str, list[list[str]]]]:
    """(rank, name, sibling groups of module prefixes) for each line of the README's layer block."""
    block = re.search(r"<!-- layers: top first -->\n```text\n(.*?)```\n<!-- /layers -->", readme, re.S)
    assert block, "README.md has no layer block"
    layers = []
    for line in block.group(1).strip().splitlines():
        head, names = line.split(":", 1)
        rank, name = head.split(None, 1)
        groups = [[m.strip() for m in group.split(",") if m.strip()] for group in names.split("|")]
        layers.append((int(rank), name.strip(), groups))
    return layers


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for hrbench/ and the spec folder."""
    out = {}
    for base, prefix in ((ROOT / "hrbench", ("hrbench",)), (ROOT / "architectures", tuple(SPECS.split(".")))):
        for path in sorted(base.rglob("*.py")):
            parts = prefix + path.relative_to(base).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def import_edges(files: dict[str, Path]) -> set[tuple[str, str]]:
    """(importer, imported module) for every import of an hrbench module."""
    edges = set()
    for mod, path in files.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in files:  # `import a.b.c` of a name inside a module
                    target = target.rpartition(".")[0]
                if target and target.startswith("hrbench") and target != mod:
                    edges.add((mod, target))
    return edges


def layer_of(module: str, layers) -> tuple[int, int] | None:
    """(rank, sibling group) of ``module``: the longest listed prefix (``hrbench`` itself only exactly)."""
    best = None
    for rank, _, groups in layers:
        for g, group in enumerate(groups):
            for name in group:
                hit = module == name or (name != "hrbench" and module.startswith(name + "."))
                if hit and (best is None or len(name) > best[0]):
                    best = (len(name), rank, g)
    return None if best is None else best[1:]


def cycles(edges: set[tuple[str, str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    graph: dict[str, list[str]] = {}
    for a, b in sorted(edges):
        graph.setdefault(a, []).append(b)
        graph.setdefault(b, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def problems(modules: list[str], edges: set[tuple[str, str]], layers) -> list[str]:
    out = [f"{m}: no layer in README.md names it" for m in modules if layer_of(m, layers) is None]
    for a, b in sorted(edges):
        la, lb = layer_of(a, layers), layer_of(b, layers)
        if la is None or lb is None:
            continue
        if lb[0] > la[0]:
            out.append(f"{a} (layer {la[0]}) imports {b} (layer {lb[0]}): upward")
        elif lb[0] == la[0] and lb[1] != la[1]:
            out.append(f"{a} imports {b}: across '|' in layer {la[0]}")
    out += [f"import cycle: {' <-> '.join(c)}" for c in cycles(edges)]
    return out


def test_every_import_points_down_the_readme_layers():
    layers = read_layers((ROOT / "README.md").read_text())
    files = module_files()
    edges = import_edges(files)
    assert len(files) > 80 and len(edges) > 250  # the reader really read the tree
    assert ("hrbench.engine.api", "hrbench.evaluation") in edges  # a from-import of a package
    assert ("hrbench.architectures.litehrnet", "hrbench.registry") in edges
    assert problems(sorted(files), edges, layers) == []


def test_the_checker_catches_each_kind_of_violation():
    """The same checker on a made-up graph: upward, across siblings, a cycle, an unlisted module."""
    layers = read_layers((ROOT / "README.md").read_text())
    edges = {("hrbench.models.dynamic", "hrbench.complexity.walker"),
             ("hrbench.data.coco", "hrbench.complexity.walker"),
             ("hrbench.registry", "hrbench.cards"), ("hrbench.cards", "hrbench.registry")}
    found = problems(["hrbench.models.dynamic", "hrbench.newthing"], edges, layers)
    assert found == [
        "hrbench.newthing: no layer in README.md names it",
        "hrbench.data.coco imports hrbench.complexity.walker: across '|' in layer 4",
        "hrbench.models.dynamic (layer 1) imports hrbench.complexity.walker (layer 4): upward",
        "import cycle: hrbench.cards <-> hrbench.registry",
    ]


def test_installed_packages_are_the_tree():
    """pyproject lists every package (the spec folder as hrbench.architectures), none twice or stale."""
    text = (ROOT / "pyproject.toml").read_text()  # (tomllib is 3.11+; the project supports 3.10)
    listed = re.findall(r'"([\w.]+)"', re.search(r"\npackages = \[(.*?)\]", text, re.S).group(1))
    packages = {m for m, p in module_files().items() if p.name == "__init__.py"}
    assert sorted(listed) == sorted(packages)
    assert re.search(r'\npackage-dir = \{ "hrbench.architectures" = "architectures" \}\n', text)
    assert not (ROOT / "hrbench" / "architectures").exists()
