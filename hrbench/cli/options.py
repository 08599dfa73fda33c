"""What the sub-commands share: the options every command spells the same way (``--input``,
``--keypoints``, ``--dataset``, ``--workers``, ``--batch``, ``--device``, ``--threads``, ``--json``,
``--out``: one definition each, so name, default and help agree everywhere), their parsers, and the
rich console a command builds when it runs."""

from __future__ import annotations

import errno
import json
import math
import os
import re
import sys
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from hrbench.datasets import DEFAULT_DATASET, get_dataset, list_datasets
from hrbench.device import DEVICE_HELP
from hrbench.errors import HrbenchError
from hrbench.validate import check_input_size, check_probability, check_seed

#: ``--workers``'s default everywhere: data-loader worker processes (as ``hrbench train``).
DEFAULT_WORKERS = 2
#: The dataset default inputs, as help text: "coco 256x192, mpii 256x256".
DATASET_INPUT_TEXT = ", ".join(f"{d.name} {d.input_hw[0]}x{d.input_hw[1]}" for d in map(get_dataset, list_datasets()))
#: The files under a dataset root, per registered dataset (help of ``--data`` and dataset-root arguments).
DATA_LAYOUT_TEXT = "; ".join(f"{d.name}: {d.layout}" for d in map(get_dataset, list_datasets()) if d.layout)
THREADS_HELP = "intra-op CPU threads: N, or auto (OMP_NUM_THREADS, else the free CPUs)"
WORKERS_HELP = "data-loader worker processes (0: load in the main process; under torchrun: per process)"


# --------------------------------------------------------------------------------------- shared options
def input_option(default: str = f"the dataset's: {DATASET_INPUT_TEXT}") -> Any:
    """``--input HxW`` (parse it with :func:`parse_input`); ``default`` says what None means."""
    return typer.Option(None, "--input", help=f"network input HxW (default: {default})")


def keypoints_option() -> Any:
    """``--keypoints K``, resolved with ``--dataset`` by :func:`resolve_keypoints`."""
    return typer.Option(None, "--keypoints", help="number of keypoints (heatmaps) K (default: the dataset's: "
                        + ", ".join(f"{n} {get_dataset(n).num_keypoints}" for n in list_datasets()) + ")")


def dataset_option(default: str | None = None, shown: str = DEFAULT_DATASET) -> Any:
    """``--dataset NAME`` (the registered datasets), checked when parsed; ``shown`` says what a None
    default means."""
    note = f" (default: {shown})" if default is None else ""
    return typer.Option(default, "--dataset", callback=_check_dataset,
                        help=" | ".join(list_datasets()) + note)


def workers_option(scope: str = "") -> Any:
    """``--workers N``: data-loader worker processes, default :data:`DEFAULT_WORKERS` everywhere."""
    return typer.Option(DEFAULT_WORKERS, "--workers", callback=_check_workers, help=scope + WORKERS_HELP)


def batch_option(default: int | str | None, note: str = "") -> Any:
    """``--batch``: samples per batch; ``note`` adds what is particular to the command."""
    return typer.Option(default, "--batch", help="samples per batch" + (f", {note}" if note else ""))


def device_option(scope: str = "") -> Any:
    """``--device`` (default ``auto``), resolved by :func:`hrbench.device.resolve_device`."""
    return typer.Option("auto", "--device", help=scope + DEVICE_HELP)


def threads_option(scope: str = "") -> Any:
    """``--threads N|auto`` (default ``auto``), applied by :func:`hrbench.threads.configure_threads`."""
    return typer.Option("auto", "--threads", help=scope + THREADS_HELP)


def seed_option(default: int | None, help_text: str) -> Any:
    """``--seed N``: an integer in [0, 2^64 - 1] (:func:`hrbench.validate.check_seed`), checked when parsed."""
    return typer.Option(default, "--seed", callback=lambda v: v if v is None else check_seed(v), help=help_text)


def probability_option(default: float | None, option: str, help_text: str) -> Any:
    """A score threshold in [0, 1] (``--det-thr``, ``--thr``), NaN refused, checked when parsed."""
    return typer.Option(default, option, callback=lambda v: v if v is None else check_probability(v, option),
                        help=help_text)


def json_option(what: str = "the result") -> Any:
    """``--json``: print ``what`` as JSON (:func:`print_json`) instead of tables."""
    return typer.Option(False, "--json", help=f"print {what} as JSON")


def out_option(default: Any, what: str) -> Any:
    """``--out``: where the command writes (``what``: "folder ...", "file ...")."""
    return typer.Option(default, "--out", help=f"output {what}")


def data_option(default: Any, help_text: str) -> Any:
    """``--data DIR``: a dataset root; a path that cannot even be looked at (a symlink loop) is refused
    when parsed (a missing one is named later, where the command needs it)."""
    return typer.Option(default, "--data", callback=_check_data, help=help_text)


def _check_data(path: Any) -> Any:
    if path is not None:
        try:
            os.stat(path)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENAMETOOLONG, errno.EACCES):
                raise HrbenchError(f"--data {path}: cannot be opened ({e.strerror})") from None
    return path


def _check_dataset(dataset: str | None) -> str | None:
    """``--dataset`` as given, or a one-line error for an unregistered name (None: not given)."""
    if dataset is not None:
        get_dataset(dataset, option="--dataset")
    return dataset


def _check_workers(workers: int) -> int:
    if workers < 0:
        raise HrbenchError(f"invalid --workers {workers}: must be >= 0")
    return workers


def given(ctx: typer.Context, name: str) -> bool:
    """Whether the option whose parameter is ``name`` was given on the command line (not its default)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


# --------------------------------------------------------------------------------------- parsers
def parse_input(text: str) -> tuple[int, int]:
    """``"256x192"`` -> (256, 192); one-line error for anything else or a size
    :func:`hrbench.validate.check_input_size` refuses (every command's ``--input`` goes through here)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text or "")
    if not m:
        raise HrbenchError(f"malformed --input {text!r}: expected HxW, e.g. 256x192")
    return check_input_size(int(m.group(1)), int(m.group(2)))


def resolve_input(input_size: str | None, dataset: str | None = None) -> tuple[int, int]:
    """``--input`` parsed, else the default input of ``--dataset`` (coco when None)."""
    return parse_input(input_size) if input_size is not None else get_dataset(dataset or DEFAULT_DATASET).input_hw


def parse_value(text: str) -> Any:
    """A ``--set`` value: int, float, bool, None, a comma-separated tuple of those, or a string."""
    t = text.strip()
    if "," in t:
        return tuple(parse_value(p) for p in t.split(",") if p.strip() != "")
    low = t.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for conv in (int, float):
        try:
            return conv(t)
        except ValueError:
            pass
    return t


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["groups=4,4,4,4", "kernels=1,1,1,1"]`` -> {"groups": (4, 4, 4, 4), ...}."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise HrbenchError(f"malformed --set {item!r}: expected KEY=VALUE, e.g. groups=4,4,4,4")
        out[key.strip()] = parse_value(value)
    return out


def resolve_keypoints(keypoints: int | None, dataset: str | None) -> int:
    """K from ``--keypoints`` or ``--dataset`` (COCO 17, MPII 16); COCO by default."""
    _check_dataset(dataset)
    if keypoints is not None:
        if keypoints < 1:
            raise HrbenchError(f"invalid --keypoints {keypoints}: must be a positive integer")
        return keypoints
    return get_dataset(dataset or DEFAULT_DATASET).num_keypoints


def parse_choices(text: str, allowed: tuple[str, ...], option: str) -> tuple[str, ...]:
    """A comma list of choices (``"eager,amp"``); one-line error naming ``option`` otherwise."""
    chosen = tuple(c.strip() for c in text.split(",") if c.strip())
    bad = [c for c in chosen if c not in allowed]
    if bad or not chosen:
        shown = ", ".join(repr(b) for b in bad) or repr(text)
        raise HrbenchError(f"unknown {option} {shown}: choose from {', '.join(allowed)}")
    return chosen


def parse_int_list(text: str, option: str) -> tuple[int, ...]:
    """``"0,1,2"`` or a range ``"0-4"`` -> (0, 1, 2[, 3, 4]); integers >= 0."""
    try:
        if "-" in text and "," not in text:
            lo, hi = (int(p) for p in text.split("-", 1))
            values = tuple(range(lo, hi + 1))
        else:
            values = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise HrbenchError(f"malformed {option} {text!r}: expected a comma list or range of integers, "
                           "e.g. 0,1,2") from None
    if not values or any(v < 0 for v in values):
        raise HrbenchError(f"invalid {option} {text!r}: expected integers >= 0")
    return values


# --------------------------------------------------------------------------------------- output
def fmt_number(v: float | None, digits: int = 2) -> str:
    """``1,234.57``-style, ``-`` for a missing value."""
    return "-" if v is None else f"{v:,.{digits}f}"


#: The narrowest console: a smaller (or malformed) ``COLUMNS`` gets this width (``COLUMNS=10`` would
#: cut every table cell to "…", ``COLUMNS=0`` prints nothing).
MIN_CONSOLE_WIDTH = 80


def console_width(stream: Any) -> int | None:
    """The width of a new console: ``COLUMNS`` when it is an integer >= :data:`MIN_CONSOLE_WIDTH` (else
    that minimum); unset: the terminal's (None, rich finds it), or 160 when the stream is not a terminal
    (a pipe, a log file), so wide tables are not cut."""
    env = os.environ.get("COLUMNS", "").strip()
    if env:
        return max(MIN_CONSOLE_WIDTH, int(env)) if env.isdigit() else MIN_CONSOLE_WIDTH
    return None if stream.isatty() else 160


def readable_columns() -> None:
    """A ``COLUMNS`` below :data:`MIN_CONSOLE_WIDTH` or malformed is set to it for this process, so that
    every rich console (the engine's progress and log lines too) gets a readable width."""
    env = os.environ.get("COLUMNS", "").strip()
    if env and (not env.isdigit() or int(env) < MIN_CONSOLE_WIDTH):
        os.environ["COLUMNS"] = str(MIN_CONSOLE_WIDTH)


def make_console(stderr: bool = False) -> Console:
    """A rich console on stdout (``stderr``: on stderr), built when a command runs, :func:`console_width`
    columns wide."""
    width = console_width(sys.stderr if stderr else sys.stdout)
    return Console(stderr=stderr) if width is None else Console(stderr=stderr, width=width)


def _strict(obj: Any) -> Any:
    """``obj`` with every NaN / infinity as None (JSON has neither; null is "no number")."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict(v) for v in obj]
    return obj


def print_json(obj: Any) -> None:
    """``--json`` output: ``obj`` as indented, strict JSON on stdout (non-JSON values as strings, NaN and
    infinity as null)."""
    print(json.dumps(_strict(obj), indent=1, default=str, allow_nan=False))


def show(result: Any, as_json: bool, render: Callable[[Console, Any], None]) -> None:
    """A command's result: JSON with ``--json``, else ``render(console, result)`` on a new stdout console."""
    if as_json:
        return print_json(result)
    render(make_console(), result)


def progress_bar(console: Console, label: str = "{task.description}", disable: bool = False) -> Progress:
    """A transient progress bar on ``console``: ``label``, bar, done/total, elapsed (``disable``: shows nothing)."""
    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                    transient=True, disable=disable)
