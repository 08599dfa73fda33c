"""SIGTERM treated as Ctrl-C while hrbench trains.

Slurm (and ``kill``, ``docker stop``, ``torchrun`` tearing a job down) sends SIGTERM before it kills or
preempts a job. Python's default ends the process at once (exit 143, no message, ``summary.json``
left ``"running"``). :func:`sigterm_as_interrupt` installs a handler that raises :class:`Terminated` (a
:class:`KeyboardInterrupt`) instead, so a run stops exactly as on Ctrl-C: one line, ``summary.json``
``"interrupted"``, the last good checkpoint kept, the folder lock released; the command then exits
with 143 (128 + SIGTERM), as the process would have.
"""

from __future__ import annotations

import contextlib
import functools
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when SIGTERM arrives inside :func:`sigterm_as_interrupt`."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(f"terminated by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


_received: list[int] = []


def received() -> int | None:
    """The signal number of the last SIGTERM turned into :class:`Terminated` in this process, if any
    (the CLI reads it: typer turns every KeyboardInterrupt into exit code 130)."""
    return _received[-1] if _received else None


def _raise(signum: int, frame: Any) -> None:
    _received.append(signum)
    raise Terminated(signum)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM raises :class:`Terminated` in the main thread; the previous handler is
    restored on the way out. Outside the main thread (where Python cannot set handlers) a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def interruptible(fn: F) -> F:
    """Decorate an entry point (``hrbench.engine.train``) with :func:`sigterm_as_interrupt`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with sigterm_as_interrupt():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
