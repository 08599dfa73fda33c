"""File-system helpers every writer shares: atomic writes with ordinary permissions, output
locations checked before any work starts, and one exclusive lock per run folder."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from hrbench.errors import ConfigError

#: Suffix of the temporary files :func:`atomic_write` renames into place (a killed writer leaves one).
TMP_SUFFIX = ".tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: str | Path, binary: bool = False) -> Iterator[IO]:
    """Write ``path`` through a temporary file in the same folder (``.<name>.XXXX.tmp``), flushed,
    fsync'ed and renamed over ``path`` on success, removed on failure. The file gets the mode a
    plain ``open`` would give (0666 & ~umask), not ``mkstemp``'s 0600."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=TMP_SUFFIX, dir=p.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb" if binary else "w") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename durable where the file system allows it
        dfd = os.open(p.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


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


def check_output_dir(path: str | Path, option: str = "--out") -> Path:
    """Refuse, before any work, an output folder that cannot be created or written: one line naming
    ``option`` and the reason. Nothing is created: the nearest existing ancestor must be a writable
    folder (probed by creating and deleting a file, which also catches read-only mounts)."""
    p = Path(path)
    probe = p
    while not probe.exists():
        if probe.is_symlink():
            raise ConfigError(f"cannot write {option} {p}: {probe} is a dangling link")
        probe = probe.parent
    if not probe.is_dir():
        what = "is a file" if probe == p else f"{probe} is a file, not a folder"
        raise ConfigError(f"cannot write {option} {p}: {what}")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".hrbench-write-probe.", dir=probe)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise ConfigError(f"cannot write {option} {p}: {exc.strerror or exc} ({probe})") from None
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
        fh.seek(0)
        fh.truncate()
        fh.write(f"hrbench pid {os.getpid()}\n")
        fh.flush()
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
    path = Path(path)
    check_output_dir(path.parent, option)
    with atomic_write(path, binary=True) as fh:
        fh.write(data)
    return path
