"""The ``hrbench`` command line (typer). Each sub-command lives in its own module here.

User errors (:class:`hrbench.errors.HrbenchError`, bad options) print one ``error:`` line and
exit with code 2; there is never a traceback for them.
"""

from __future__ import annotations

import sys

import click
import typer

from hrbench.errors import HrbenchError

app = typer.Typer(
    name="hrbench",
    help="Lightweight pose HRNets: registry, exact complexity, COCO/MPII train/eval, paper tables.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Sub-command modules register themselves on ``app`` when imported.
from hrbench.cli import data as _data  # noqa: E402,F401
from hrbench.cli import flops as _flops  # noqa: E402,F401
from hrbench.cli import models as _models  # noqa: E402,F401
from hrbench.cli import tables as _tables  # noqa: E402,F401
from hrbench.cli import train as _train  # noqa: E402,F401


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turning user errors into one line on stderr and exit code 2."""
    try:
        app(args=argv, prog_name="hrbench", standalone_mode=False)
    except HrbenchError as e:
        print(f"hrbench: error: {e}", file=sys.stderr)
        return e.exit_code
    except click.exceptions.NoArgsIsHelpError:
        return 0
    except click.ClickException as e:
        print(f"hrbench: error: {e.format_message()}", file=sys.stderr)
        return 2
    except click.exceptions.Abort:
        print("hrbench: aborted", file=sys.stderr)
        return 130
    except click.exceptions.Exit as e:
        return e.exit_code
    except KeyboardInterrupt:
        print("hrbench: interrupted", file=sys.stderr)
        return 130
    return 0


def run() -> None:  # pragma: no cover - console script shim
    sys.exit(main())
