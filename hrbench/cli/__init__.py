"""The ``hrbench`` command line (typer). Each sub-command lives in its own module here.

User errors (:class:`hrbench.errors.HrbenchError`, bad options) print one ``error:`` line and
exit with code 2; there is never a traceback for them.
"""

from __future__ import annotations

import os
import sys

import typer

from hrbench import signals
from hrbench.errors import HrbenchError, one_line
from hrbench.fsutil import is_disk_full

try:  # typer >= 0.16 vendors click as typer._click; older typer uses click itself
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover
    from click import exceptions as click_exc

# Sub-command modules register themselves on ``app`` when imported.
from hrbench.cli import ablate as _ablate  # noqa: E402,F401
from hrbench.cli import bench as _bench  # noqa: E402,F401
from hrbench.cli import bench_data as _bench_data  # noqa: E402,F401
from hrbench.cli import bench_dka as _bench_dka  # noqa: E402,F401
from hrbench.cli import bench_threads as _bench_threads  # noqa: E402,F401
from hrbench.cli import data as _data  # noqa: E402,F401
from hrbench.cli import doctor as _doctor  # noqa: E402,F401
from hrbench.cli import export as _export  # noqa: E402,F401
from hrbench.cli import flops as _flops  # noqa: E402,F401
from hrbench.cli import models as _models  # noqa: E402,F401
from hrbench.cli import predict as _predict  # noqa: E402,F401
from hrbench.cli import profile as _profile  # noqa: E402,F401
from hrbench.cli import runs as _runs  # noqa: E402,F401
from hrbench.cli import tables as _tables  # noqa: E402,F401
from hrbench.cli import train as _train  # noqa: E402,F401
from hrbench.cli.root import app  # noqa: E402


def _rank() -> int:
    return int(os.environ.get("RANK", "0") or 0)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turning user errors into one line on stderr and exit code 2 (a
    diverged run: 3; Ctrl-C: 130). Under torchrun an error every rank raised together is printed
    by rank 0 only."""
    from hrbench.cli.options import readable_columns
    from hrbench.threads import check_omp_env

    readable_columns()
    try:
        check_omp_env()  # a malformed OMP_NUM_THREADS: refused before any command (hrbench/__init__.py)
        result = app(args=argv, prog_name="hrbench", standalone_mode=False)
    except HrbenchError as e:
        if _rank() == 0 or not getattr(e, "all_ranks", False):
            prefix = f"[rank {_rank()}] " if _rank() else ""
            print(f"hrbench: error: {prefix}{one_line(e)}", file=sys.stderr)
        return e.exit_code
    except click_exc.NoArgsIsHelpError:
        return 0
    except click_exc.ClickException as e:
        print(f"hrbench: error: {e.format_message()}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, typer.Abort):
        result = 130
    except BrokenPipeError:  # output piped into e.g. `head`
        return 0
    except OSError as e:  # a full disk where no hrbench writer named the file
        if not is_disk_full(e):
            raise
        print(f"hrbench: error: no space left on device writing {e.filename or 'a file'}", file=sys.stderr)
        return 2
    if result == 130 and signals.received():  # SIGTERM (hrbench.signals): exit as the signal would, 128 + 15
        print(f"hrbench: interrupted by SIGTERM (exit {128 + signals.received()})", file=sys.stderr)
        return 128 + signals.received()
    if result == 130:  # typer turns Ctrl-C into a silent exit code 130
        print("hrbench: interrupted", file=sys.stderr)
    return result if isinstance(result, int) else 0


def run() -> None:  # pragma: no cover - console script shim
    sys.exit(main())
