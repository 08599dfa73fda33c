"""What hrbench wrote into a folder it shares with the user, so that it replaces and removes only that.

A folder that ``hrbench tables``, ``hrbench data synth`` or ``hrbench predict`` writes into holds
``.hrbench-manifest.json``: the path (relative, ``/``-separated) and SHA-256 of every file hrbench
wrote there, sorted, without time stamps (so a committed ``reports/`` regenerates byte-identically).
A command builds its output aside (a staging folder inside the destination) and :func:`commit` moves
it in:

- a file that does not exist yet, or exists with the same bytes, or exists exactly as the manifest
  says hrbench wrote it, is written (renamed into place);
- any other existing file at an output path (the user's, or one changed since hrbench wrote it) is
  refused before anything is moved: one line naming the files;
- a file of the previous output that this one no longer has is removed only when it is still what
  hrbench wrote; every other file in the managed sub-folders is kept, and the notes say which.

While files are moved the manifest lists both the old and the new SHA-256 of each path, so a run
killed half way leaves a folder the next run still recognises.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from hrbench.errors import ConfigError, DataError, DiskFullError
from hrbench.fsutil import FULL, check_replaceable, write_json_atomic

MANIFEST = ".hrbench-manifest.json"
FORMAT = "hrbench-manifest-v1"
#: How many names a one-line message lists before "...".
SHOWN = 5


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _names(rels: list[str]) -> str:
    return ", ".join(rels[:SHOWN]) + (f", ... ({len(rels)} in all)" if len(rels) > SHOWN else "")


def read_manifest(root: Path) -> dict[str, set[str]]:
    """``{relative path: SHA-256s hrbench wrote there}`` of ``root`` (empty without a manifest)."""
    path = root / MANIFEST
    if not path.exists():
        return {}
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
        files = obj["files"] if obj.get("format") == FORMAT else None
    except (OSError, ValueError, AttributeError, KeyError) as exc:
        raise DataError(f"{path} is damaged ({exc}); move it away (the files it listed are then kept as "
                        "the user's)") from None
    if not isinstance(files, dict):
        raise DataError(f"{path} is not an hrbench manifest (format {FORMAT!r} expected); move it away")
    return {rel: set([v] if isinstance(v, str) else v) for rel, v in files.items()}


def _write_manifest(root: Path, files: dict[str, set[str]]) -> None:
    entries = {rel: (sorted(v)[0] if len(v) == 1 else sorted(v)) for rel, v in sorted(files.items())}
    write_json_atomic(root / MANIFEST, {"format": FORMAT, "files": entries})


def _files(folder: Path) -> list[str]:
    """Relative paths of every regular file (or link) under ``folder``, sorted."""
    if not folder.is_dir():
        return []
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() or p.is_symlink())


def _same_bytes(a: Path, b: Path) -> bool:
    return a.stat().st_size == b.stat().st_size and sha256(a) == sha256(b)


def foreign(root: Path, rels: Iterable[str], owned: dict[str, set[str]] | None = None) -> list[str]:
    """Those of ``rels`` that exist under ``root`` and are not what hrbench wrote (manifest), sorted."""
    owned = read_manifest(root) if owned is None else owned
    out = []
    for rel in rels:
        path = root / rel
        if not (path.exists() or path.is_symlink()):
            continue
        if path.is_symlink() or not path.is_file() or sha256(path) not in owned.get(rel, set()):
            out.append(rel)
    return sorted(out)


def refuse_foreign(root: Path, rels: Iterable[str], option: str = "--out") -> None:
    """Before any work: a one-line refusal when an output path already holds a file hrbench did not write."""
    bad = foreign(root, rels)
    if bad:
        raise ConfigError(f"{option} {root} holds {len(bad)} file(s) hrbench did not write at its output paths "
                          f"({_names(bad)}); move them away or choose another folder - hrbench replaces only "
                          f"the files it wrote (listed in {MANIFEST})")


def write_owned(root: Path, rel: str, obj: object) -> Path:
    """Write one JSON file ``root/rel`` that only hrbench may replace (``eval --out``'s results): refused
    when a file hrbench did not write is there, recorded in the manifest once written."""
    refuse_foreign(root, [rel])
    path = write_json_atomic(root / rel, obj, compact=True)
    owned = read_manifest(root)
    owned[rel] = {sha256(path)}
    _write_manifest(root, owned)
    return path


@contextlib.contextmanager
def staging(root: Path) -> Iterator[Path]:
    """A fresh folder inside ``root`` to build the output in (removed afterwards, whatever happened)."""
    created = [d for d in (root, *root.parents) if not d.exists()]
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".hrbench-staging-", dir=root))
    except OSError as exc:
        if exc.errno in FULL:
            raise DiskFullError(f"no space left on device writing {root}") from None
        raise ConfigError(f"cannot write {root}: {exc.strerror or exc}") from None
    try:
        yield tmp
    except OSError as exc:
        if exc.errno in FULL:
            raise DiskFullError(f"no space left on device writing {exc.filename or root}") from None
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        for d in created:  # folders made for an output that did not come about (innermost first)
            with contextlib.suppress(OSError):
                d.rmdir()  # only if empty


def commit(stage: Path, root: Path, managed: Iterable[str] = (), option: str = "--out") -> list[str]:
    """Move every file built under ``stage`` to the same place under ``root`` (rules in the module
    docstring); ``managed``: the sub-folders of ``root`` whose old hrbench files this output replaces
    as a whole (a file of the previous output not produced again is removed if still hrbench's).
    Returns notes (what was kept, what was removed)."""
    owned = read_manifest(root)
    new = _files(stage)
    bad = [rel for rel in foreign(root, new, owned) if not _identical(root / rel, stage / rel)]
    if bad:
        raise ConfigError(f"refusing to replace {len(bad)} file(s) under {root} that hrbench did not write "
                          f"or that changed since ({_names(bad)}); move them away and run again - nothing "
                          "was written")
    for rel in new:
        check_replaceable(root / rel, option)
    new_set = set(new)
    kept, stale = [], []
    for sub in managed:
        for rel in _files(root / sub):
            rel = f"{sub}/{rel}"
            if rel in new_set or rel.split("/")[-1].startswith(".hrbench-staging-"):
                continue
            if rel in owned and sha256(root / rel) in owned[rel]:
                stale.append(rel)
            else:
                kept.append(rel)
    sums = {rel: sha256(stage / rel) for rel in new}
    during = {rel: set(shas) for rel, shas in owned.items()}
    for rel in new:
        during.setdefault(rel, set()).add(sums[rel])
    _write_manifest(root, during)  # a run killed from here on leaves paths the next one recognises
    try:
        for rel in new:
            dst = root / rel
            if dst.is_file() and not dst.is_symlink() and sha256(dst) == sums[rel]:
                continue  # the same bytes: left untouched (its time stamp too)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(stage / rel, dst)
        for rel in stale:
            (root / rel).unlink()
    except OSError as exc:
        if exc.errno in FULL:
            raise DiskFullError(f"no space left on device writing under {root}") from None
        raise
    final = {rel: {sums[rel]} for rel in new}
    for rel, shas in owned.items():  # older output of hrbench left in place (outside ``managed``)
        path = root / rel
        if rel not in final and rel not in stale and path.is_file() and not path.is_symlink():
            left = shas & {sha256(path)}
            if left:
                final[rel] = left
    _write_manifest(root, final)
    notes = []
    if stale:
        notes.append(f"removed {len(stale)} file(s) of hrbench's previous output no longer produced "
                     f"({_names(stale)})")
    if kept:
        notes.append(f"kept {len(kept)} file(s) hrbench did not write under {root} ({_names(kept)})")
    return notes


def _identical(a: Path, b: Path) -> bool:
    return a.is_file() and not a.is_symlink() and _same_bytes(a, b)
