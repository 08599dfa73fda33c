"""``hrbench flops``: #Params and every FLOPs count of a model (or all of them), side by side."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from hrbench.cli import options
from hrbench.cli.options import (
    fmt_number,
    make_console,
    parse_choices,
    parse_overrides,
    print_json,
    resolve_input,
    resolve_keypoints,
)
from hrbench.cli.root import app
from hrbench.complexity.conventions import get_convention
from hrbench.complexity.engines import all_engines, engine_names
from hrbench.complexity.measure import measure
from hrbench.complexity.parallel import counting_threads, measure_many
from hrbench.complexity.result import Complexity
from hrbench.errors import HrbenchError
from hrbench.registry import get_entry, list_models


def _engines(text: str | None) -> tuple[str, ...]:
    return parse_choices(text, engine_names(), "--engines") if text else engine_names()


def skip_summary(skipped: dict[str, Any], limit: int = 3) -> str:
    """A short 'what was left out' string for one engine's skipped dict."""
    parts: list[str] = []
    for key, value in skipped.items():
        if isinstance(value, dict) and value:
            items = list(value.items())[:limit]
            more = f" +{len(value) - limit}" if len(value) > limit else ""
            parts.append(f"{key}: " + ", ".join(f"{k.replace('torch.nn.functional.', 'F.')}×{n}"
                                                for k, n in items) + more)
        elif isinstance(value, list) and value:
            parts.append(f"{key}: {len(value)} ({', '.join(value[:limit])}{' …' if len(value) > limit else ''})")
    return "; ".join(parts) or "nothing"


def _short(name: str) -> str:
    for prefix in ("torch.nn.functional.", "torch.Tensor.", "torch."):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def compact_skips(paper: dict[str, Any]) -> str:
    """One-cell summary of what the card's convention left out on a model."""
    parts = []
    mods = paper.get("zero_count_modules") or {}
    if mods:
        parts.append(", ".join(f"{k}×{n}" for k, n in mods.items()))
    funcs = paper.get("uncounted_functions") or {}
    if funcs:
        top = ", ".join(f"{_short(k)}×{n}" for k, n in list(funcs.items())[:2])
        parts.append(top + (f" +{len(funcs) - 2} fns" if len(funcs) > 2 else ""))
    reused = paper.get("repeated_calls_not_counted") or {}
    if reused:
        parts.append(f"{sum(reused.values())} repeat calls")
    return "; ".join(parts) or "-"


def print_one(console: Console, c: Complexity, show_modules: bool) -> None:
    d = c.to_dict()
    pub = d["published"]
    console.print(f"[bold]{d['arch']}[/bold]  input {d['input']}  K={d['keypoints']}  "
                  f"#params {d['params']:,}" + (f" (published {pub['params_M']}M)" if pub.get("params_M") else ""))
    t = Table(title=f"complexity (convention of the card: {d['convention']})")
    for col in ("engine", "value", "unit", "raw count", "left out"):
        t.add_column(col, overflow="fold")
    engines = all_engines()
    for e in engines:
        if e.name in d["errors"]:
            t.add_row(e.name, "error", "", "", d["errors"][e.name])
            continue
        if d["counts"].get(e.name) is None:
            continue
        sk = d["skipped"].get(e.name)  # what it left out on this model, else what it leaves out anywhere
        left = skip_summary(sk) if sk is not None else d["convention_skips"] if e.under_convention else e.skips
        t.add_row(e.name, fmt_number(d[e.figure_key]), e.short_unit, f"{d['counts'][e.name]:,}", left)
    console.print(t)
    for e in engines:
        if d["counts"].get(e.name) is not None:
            console.print(f"  {e.name}: {d['units'][e.figure_key]}" + (f"; never counts {e.skips}" if e.skips else ""))
    for e in engines:
        matches = d.get(f"{e.name}_matches") if e.must_equal else None
        if matches is not None:
            console.print(f"{e.name} == {e.must_equal}: " + ("[green]yes, exactly[/green]" if matches
                                                            else "[red]NO[/red]"))
    if pub:
        printed = (f"{pub['mflops']} MFLOPs" if pub.get("giga") is None else
                   f"{pub['gflops']} GFLOPs (= {pub['mflops']:.2f} MFLOPs /2^20, printed G = M / {pub['giga']:.6g})")
        console.print(f"published ({pub['source']} {pub['table']}): {printed}"
                      + (f", delta {pub['delta']:+.2f}" if "delta" in pub else "")
                      + (f"  [{pub['note']}]" if pub.get("note") else ""))
    else:
        console.print("published: nothing for this input")
    console.print(f"convention leaves out: {d['convention_skips']}")
    for e in engine_names():
        sk = d["skipped"].get(e)
        if sk:
            console.print(f"[bold]{e}[/bold] skipped on this model:")
            for key, value in sk.items():
                if value:
                    shown = value if not isinstance(value, dict) else ", ".join(f"{k}×{n}" for k, n in value.items())
                    console.print(f"  {key}: {shown}")
    if d.get("by_block_type") and (get_convention(d["convention"]).gap_by_block_type or show_modules):
        print_block_types(console, d)
    if show_modules and d.get("by_module"):
        t = Table(title="per module (each engine in its own unit; launches, M elements written, MB moved at fp32)")
        keys = [k for k in d["by_module"][0] if k not in ("module", "type")]
        for col in ("module", "type", *keys):
            t.add_column(col, overflow="fold")
        for row in d["by_module"]:
            t.add_row(row["module"], row["type"],
                      *[f"{row[e]:.0f}" if e == "launches" else fmt_number(row.get(e), 3) for e in keys])
        console.print(t)
    if show_modules and d.get("traffic"):
        print_traffic(console, d["traffic"])
    if d.get("train"):
        print_train(console, d["train"])
    if d.get("explain"):
        print_explain(console, d["explain"])
    print_stamp(console, d["stamp"])


def print_stamp(console: Console, stamp: dict[str, Any]) -> None:
    console.print("counted with " + ", ".join(f"{k} {v}" for k, v in stamp.items()))


def print_traffic(console: Console, traffic: dict[str, Any]) -> None:
    """Memory traffic beside MACs: totals, per stage and per block type (batch 1)."""
    tot = traffic["total"]
    console.print(f"traffic per forward: {tot['launches']:,} kernel launches, {tot['written'] / 1e6:.2f}M elements "
                  f"written ({tot['written'] * 4 / 2**20:.1f} MiB fp32, {tot['written'] * 2 / 2**20:.1f} MiB bf16), "
                  f"{tot['bytes_fp32'] / 2**20:.1f} MiB moved at fp32 ({tot['bytes_bf16'] / 2**20:.1f} at bf16), "
                  f"{tot['intensity_fp32']:.2f} MACs/byte at fp32")
    for key, title in (("by_stage", "stage"), ("by_block_type", "block type (innermost model-defined module)")):
        t = Table(title=f"memory traffic per {title}")
        for col in (title.split(" (")[0], "M MACs", "launches", "M elems written", "MiB moved fp32",
                    "MACs/byte fp32", "MACs/byte bf16"):
            t.add_column(col, overflow="fold")
        for name, r in traffic[key].items():
            t.add_row(name, fmt_number(r["macs"] / 1e6, 3), f"{r['launches']:,}", fmt_number(r["written"] / 1e6, 3),
                      fmt_number(r["bytes_fp32"] / 2**20, 2), f"{r['intensity_fp32']:.2f}",
                      f"{r['intensity_bf16']:.2f}")
        console.print(t)


def print_train(console: Console, train: dict[str, Any]) -> None:
    console.print(f"training step per image (batch {train['batch']}, measured): forward "
                  f"{train['forward_macs'] / 1e6:,.2f}M MACs + backward {train['backward_macs'] / 1e6:,.2f}M = "
                  f"{train['step_macs'] / 1e6:,.2f}M MACs, {train['ratio']:.3f}x the forward; backward by op: "
                  + ", ".join(f"{k} {v / 1e6:,.2f}M" for k, v in train["backward_by_op"].items()))


def explain_rows(rec: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(raw, value in the target's unit, term, rule) per row, then the '= figure' line."""
    rows = [(f"{r['raw']:+,}" if i else f"{r['raw']:,}", f"{r['value']:+.3f}" if i else f"{r['value']:.3f}",
             r["term"], r["rule"]) for i, r in enumerate(rec["rows"])]
    unit = "binary M" if rec["unit_divisor"] == 2**20 else "M"
    rows.append((f"= {rec['figure']:,}", f"= {rec['figure'] / rec['unit_divisor']:.3f}", rec["target"],
                 f"the {rec['target']} figure ({unit}); rows sum to {rec['sum_of_rows']:,}"))
    return rows


def print_explain(console: Console, explain: dict[str, Any]) -> None:
    for target, rec in explain.items():
        unit = "/2^20" if rec["unit_divisor"] == 2**20 else "/1e6"
        t = Table(title=f"true MACs -> {target}, term by term (raw counts; value {unit})")
        for col in ("raw", "value", "term", "rule"):
            t.add_column(col, overflow="fold")
        for row in explain_rows(rec):
            t.add_row(*row)
        console.print(t)


def print_block_types(console: Console, d: dict[str, Any]) -> None:
    """Per block type (innermost model-defined module class): the card's count vs true MACs."""
    t = Table(title="gap between the published convention and true MACs, per block type (decimal M; a row "
                "counts everything inside that module class, so rows nest)")
    for col in ("block type", "paper count", "paper /2^20", "true MACs", "MACs - paper", "fvcore", "ptflops"):
        t.add_column(col, overflow="fold")
    for cls, v in d["by_block_type"].items():
        p, m = v.get("paper"), v.get("macs")
        gap = None if p is None or m is None else m - p
        binary = None if p is None else p * 1e6 / 2**20
        t.add_row(cls, *[fmt_number(x, 3) for x in (p, binary, m, gap, v.get("fvcore"), v.get("ptflops"))])
    console.print(t)


def _all_columns() -> list[tuple[str, Callable[[dict[str, Any]], str]]]:
    """The ``--all`` table's engine columns, in registration order: each engine's figure, or for one that
    must reproduce another exactly (analytic) a mark."""
    marks = {True: "✓", False: "✗", None: "-"}
    return [(f"{e.name[:2]}.=", lambda d, n=e.name: marks[d[f"{n}_matches"]]) if e.must_equal
            else (e.column, lambda d, k=e.figure_key: fmt_number(d[k])) for e in all_engines()]


def print_all(console: Console, rows: list[Complexity | dict[str, str]]) -> None:
    t = Table(title=f"{len(rows)} architectures")
    cols = _all_columns()
    for col in ("arch", "input", "params", *(name for name, _ in cols), "published", "delta", "paper skips"):
        t.add_column(col, overflow="fold")
    for c in rows:
        if isinstance(c, dict):
            t.add_row(c["arch"], "", "", "error", *[""] * (len(cols) + 1), c["error"])
            continue
        d = c.to_dict()
        pub = d["published"]
        t.add_row(d["arch"], d["input"], f"{d['params']:,}", *(cell(d) for _, cell in cols),
                  fmt_number(pub.get("mflops"), 1), fmt_number(pub.get("delta")),
                  compact_skips(d["skipped"].get("paper", {})))
    console.print(t)
    console.print("units: " + "; ".join(f"{e.name} = {e.short_unit}" for e in all_engines()))


@app.command("flops")
def flops_cmd(
    arch: str = typer.Argument(None, help="architecture (with --all: a shell pattern, default '*')"),
    input_size: str = options.input_option(),
    keypoints: int = options.keypoints_option(),
    dataset: str = options.dataset_option(shown="coco; it also sets K and the default input"),
    overrides: list[str] = typer.Option(None, "--set", help="KEY=VALUE hyper-parameter override"),
    by_module: bool = typer.Option(False, "--by-module", help="per stage/block breakdown"),
    as_json: bool = options.json_option("the result (a list with --all)"),
    engines: str = typer.Option(None, "--engines", help=f"comma list of {','.join(engine_names())}"),
    all_models: bool = typer.Option(False, "--all", help="every registered model"),
    jobs: int = typer.Option(min(2, os.cpu_count() or 1), "--jobs", help="processes for --all"),
    train: bool = typer.Option(False, "--train", help="also forward + backward MACs per image of a training step"),
    explain: bool = typer.Option(False, "--explain", help="reconcile true MACs with paper, fvcore, ptflops"),
) -> None:
    """#Params and FLOPs under every convention: the paper's (hooks), analytic, fvcore, ptflops, true MACs."""
    k = resolve_keypoints(keypoints, dataset)
    hw = resolve_input(input_size, dataset)
    sets = parse_overrides(overrides)
    chosen = _engines(engines)
    if all_models:
        return _flops_all(arch, hw, k, sets, chosen, dataset, jobs, as_json,
                          {"--by-module": by_module, "--train": train, "--explain": explain})
    if not arch:
        raise HrbenchError("missing ARCH (or use --all); see `hrbench list`")
    entry = get_entry(arch)  # resolved once; the entry goes down to the count
    # A convention whose gap is shown per block type (Dite's) needs the per-module counts.
    detail = by_module or (not as_json and get_convention(entry.convention).gap_by_block_type)
    with counting_threads():
        result = measure(entry, hw, k, sets or None, chosen, detail, dataset=dataset, train=train, explain=explain)
    if as_json:
        print_json(result.to_dict())
    else:
        print_one(make_console(), result, by_module)


def _flops_all(pattern: str | None, hw: tuple[int, int], k: int, sets: dict[str, Any], chosen: tuple[str, ...],
               dataset: str | None, jobs: int, as_json: bool, extras: dict[str, bool]) -> None:
    """``--all``: every registered model matching ``pattern``; ``extras`` (--by-module, --train, --explain)
    only reach the output with ``--json`` (the table has one summary row per model), so they need it."""
    asked = [opt for opt, on in extras.items() if on]
    if asked and not as_json:
        raise HrbenchError(f"{', '.join(asked)} with --all {'needs' if len(asked) == 1 else 'need'} --json "
                           "(the --all table has one summary row per model), or name a single ARCH")
    names = list_models(pattern or "*")
    if not names:
        raise HrbenchError(f"no registered architecture matches {pattern!r}; see `hrbench list`")
    if jobs < 1:
        raise HrbenchError(f"invalid --jobs {jobs}: must be a positive integer")
    t0 = time.perf_counter()
    with counting_threads():
        rows = measure_many(names, jobs=jobs, input_hw=hw, num_keypoints=k, overrides=sets or None, engines=chosen,
                            by_module=extras["--by-module"], dataset=dataset, train=extras["--train"],
                            explain=extras["--explain"])
    took = f"{len(rows)} models in {time.perf_counter() - t0:.1f} s ({jobs} jobs)"
    if as_json:
        print_json([r if isinstance(r, dict) else r.to_dict() for r in rows])
        print(took, file=sys.stderr)
    else:
        console = make_console()
        print_all(console, rows)
        console.print(took)
