"""``hrbench list`` and ``hrbench info``: the registry and its model cards."""

from __future__ import annotations

import typer
from rich.table import Table

from hrbench.cards import model_card
from hrbench.cli import options
from hrbench.cli.options import make_console, parse_overrides, print_json
from hrbench.cli.root import app
from hrbench.registry import get_entry, list_models


@app.command("list")
def list_cmd(
    pattern: str = typer.Argument("*", help="shell-style pattern, e.g. 'dite*'"),
    as_json: bool = options.json_option("the list"),
) -> None:
    """List registered architectures (canonical names, aliases, paper, FLOPs convention)."""
    names = list_models(pattern)
    if as_json:
        return print_json([{"name": n, "aliases": list(get_entry(n).aliases), "paper": get_entry(n).paper,
                            "convention": get_entry(n).convention} for n in names])
    table = Table(title=f"{len(names)} architectures")
    for col in ("name", "aliases", "paper", "convention"):
        table.add_column(col)
    for n in names:
        e = get_entry(n)
        table.add_row(n, ", ".join(e.aliases), e.paper, e.convention)
    make_console().print(table)


@app.command("info")
def info_cmd(
    arch: str = typer.Argument(..., help="architecture name or alias"),
    overrides: list[str] = typer.Option(None, "--set", help="KEY=VALUE hyper-parameter override"),
    as_json: bool = options.json_option("the model card"),
) -> None:
    """Show a model card: configuration, counting convention, notes and published numbers."""
    over = parse_overrides(overrides)
    card = model_card(arch, **over)
    if as_json:
        return print_json(card)
    console = make_console()
    console.print(f"[bold]{card['name']}[/bold]  aliases: {', '.join(card['aliases']) or '-'}  "
                  f"paper: {card['paper']}  FLOPs convention: {card['convention']}")
    console.print(f"config: {card['config']}")
    describe = getattr(get_entry(arch).config(**over), "describe", None)
    if callable(describe):
        for label, text in describe():
            console.print(f"  {label}: {text}", markup=False, highlight=False)
    if card["notes"]:
        console.print(card["notes"])
    if card["reported"]:
        t = Table(title="published")
        cols = ["source", "table", "dataset", "input", "params_M", "gflops", "mflops", "AP", "PCKh"]
        for c in cols:
            t.add_column(c)
        for r in card["reported"]:
            t.add_row(*["" if r[c] is None else str(r[c]) for c in cols])
        console.print(t)
