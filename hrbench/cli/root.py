"""The ``hrbench`` typer application every command module registers itself on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="hrbench",
    help="Lightweight pose HRNets: registry, exact complexity, COCO/MPII train/eval, paper tables.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        import torch

        from hrbench import __version__

        print(f"hrbench {__version__} (torch {torch.__version__})")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="print the version and exit")) -> None:
    """Lightweight pose HRNets: registry, exact complexity, COCO/MPII train/eval, paper tables."""
