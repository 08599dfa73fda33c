"""File-system helpers every writer shares: atomic writes with ordinary permissions (the one writer every
file hrbench writes goes through), output locations checked before any work starts, and one exclusive
lock per run folder.

:func:`atomic_write` never replaces what is not a regular file (a FIFO, a device such as ``/dev/full``, a
folder): the rename would swap the node for a file. A full disk is one :class:`DiskFullError` line
naming the file, and the old file is left as it was."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from hrbench.errors import ConfigError, DiskFullError, HrbenchError

#: Suffix of the temporary files :func:`atomic_write` renames into place (a killed writer leaves one).
TMP_SUFFIX = ".tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: errno values that mean the file system is full (no space, quota exceeded).
FULL = (errno.ENOSPC, errno.EDQUOT)


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it: torch wraps a failed ``write`` in a RuntimeError) is a full disk."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, OSError) and exc.errno in FULL:
            return True
        if "No space left on device" in str(exc) or "Disk quota exceeded" in str(exc):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def check_replaceable(path: str | Path, option: str = "--out") -> Path:
    """Refuse (one line naming ``option``) a destination that exists and is not a regular file: a folder,
    a FIFO, a socket or a device would be replaced by the rename of :func:`atomic_write` (a link to a
    regular file is replaced as a link)."""
    p = Path(path)
    try:
        mode = os.lstat(p).st_mode
    except FileNotFoundError:
        return p
    except OSError as exc:
        raise ConfigError(f"cannot write {option} {p}: {exc.strerror or exc}") from None
    if stat.S_ISLNK(mode):
        with contextlib.suppress(OSError):
            mode = os.stat(p).st_mode
    if not stat.S_ISREG(mode) and not stat.S_ISLNK(mode):
        kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else
                "a character device" if stat.S_ISCHR(mode) else "a block device" if stat.S_ISBLK(mode) else
                "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
        raise ConfigError(f"cannot write {option} {p}: it is {kind}, not a regular file; give a file name")
    return p


@contextlib.contextmanager
def atomic_write(path: str | Path, binary: bool = False, option: str = "--out") -> Iterator[IO]:
    """Write ``path`` through a temporary file in the same folder (``.<name>.XXXX.tmp``), flushed,
    fsync'ed and renamed over ``path`` on success, removed on failure. The file gets the mode a
    plain ``open`` would give (0666 & ~umask), not ``mkstemp``'s 0600. A destination that is not a
    regular file is refused (:func:`check_replaceable`); a full disk is a :class:`DiskFullError`."""
    p = Path(path)
    check_replaceable(p, option)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=TMP_SUFFIX, dir=p.parent)
    except OSError as exc:
        if exc.errno in FULL:
            raise DiskFullError(f"no space left on device writing {p}") from None
        raise
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        check_replaceable(p, option)  # nothing turned it into a FIFO or device meanwhile
        os.replace(tmp, p)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if not isinstance(exc, DiskFullError) and isinstance(exc, Exception) and is_disk_full(exc):
            raise DiskFullError(f"no space left on device writing {p}") from None
        raise
    with contextlib.suppress(OSError):  # make the rename durable where the file system allows it
        dfd = os.open(p.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def write_json_atomic(path: str | Path, obj: Any, indent: int | None = 1, compact: bool = False,
                      option: str = "--out") -> Path:
    """``obj`` as strict JSON (NaN / infinity refused: they are not JSON) through :func:`atomic_write`;
    ``compact``: no spaces (large annotation and results files). Every JSON file hrbench writes."""
    try:
        text = json.dumps(obj, indent=None if compact else indent, default=str, allow_nan=False,
                          separators=(",", ":") if compact else None)
    except ValueError as exc:  # NaN / infinity: not JSON, and a sign of a broken result
        raise HrbenchError(f"refusing to write {path}: {exc} (NaN or infinity; JSON has none)") from None
    with atomic_write(path, option=option) as f:
        f.write(text + "\n")
    return Path(path)


def write_text_atomic(path: str | Path, text: str, option: str = "--out") -> Path:
    """``text`` (UTF-8, ``\\n`` line ends) through :func:`atomic_write`."""
    with atomic_write(path, binary=True, option=option) as f:
        f.write(text.encode("utf-8"))
    return Path(path)


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the ``.*.tmp`` files a killed :func:`atomic_write` left in ``folder`` (call it only
    while holding the folder's lock); returns what was removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = sorted(p for p in folder.glob(f".*{TMP_SUFFIX}") if p.is_file())
    for p in stale:
        p.unlink()
    return stale


def check_output_file(path: str | Path, option: str = "--out") -> Path:
    """Refuse, before any work, an output file that cannot be written: a destination that is not a
    regular file (:func:`check_replaceable`) or a folder that cannot be created or written
    (:func:`check_output_dir` of its parent: read-only mounts and ``/proc`` included)."""
    p = check_replaceable(path, option)
    check_output_dir(p.parent, option, shown=p)
    return p


def check_output_dir(path: str | Path, option: str = "--out", shown: str | Path | None = None) -> Path:
    """Refuse, before any work, an output folder that cannot be created or written: one line naming
    ``option`` and the reason. Nothing is created: the nearest existing ancestor must be a writable
    folder (probed by creating and deleting a file, which also catches read-only mounts). ``shown``: the
    path the message names (default ``path``)."""
    p = Path(path)
    probe = p
    name = Path(shown) if shown is not None else p
    while not probe.exists():
        if probe.is_symlink():
            raise ConfigError(f"cannot write {option} {name}: {probe} is a dangling link")
        probe = probe.parent
    if not probe.is_dir():
        what = "is a file" if probe == p else f"{probe} is a file, not a folder"
        raise ConfigError(f"cannot write {option} {name}: {what}")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".hrbench-write-probe.", dir=probe)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise ConfigError(f"cannot write {option} {name}: {exc.strerror or exc} ({probe})") from None
    return p


class FolderLock:
    """An exclusive, non-blocking ``flock`` on ``<folder>/.lock`` held while a run uses the folder;
    the kernel releases it when the process dies (kill -9 included), so a stale lock never blocks."""

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / ".lock"
        self._fh: IO | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            owner = fh.read().strip() or "another process"
            fh.close()
            raise ConfigError(f"run folder {self.path.parent} is in use by {owner}; wait for it to finish "
                              "or choose another --name") from None
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(f"hrbench pid {os.getpid()}\n")
            fh.flush()
        except OSError:  # a full disk: the lock is not taken, nothing stays open
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            fh.close()
            raise
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def locked_by_other(self) -> bool:
        """True when another live process holds the lock (probing takes and drops it)."""
        if not self.path.exists():
            return False
        with open(self.path, "a+") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        return False


def write_bytes_atomic(path: str | Path, data: bytes, option: str = "--out") -> Path:
    """``data`` to ``path`` through :func:`atomic_write`, its folder checked first (one-line
    :class:`ConfigError` naming ``option`` when it cannot be written)."""
    path = check_output_file(path, option)
    with atomic_write(path, binary=True, option=option) as fh:
        fh.write(data)
    return path
