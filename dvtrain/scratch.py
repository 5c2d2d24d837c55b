"""The scratch folder where remote inputs are cached and remote outputs are written before
upload (``tasks.staging``), kept under a size limit.

``$DVTRAIN_SCRATCH`` (default: ``dvtrain-scratch-<uid>`` in the system temp folder) holds

* ``objects/<scheme>/<bucket>/<key>``: downloaded inputs, reused while unchanged;
* ``meta/<scheme>/<bucket>/<key>.json``: each download's version; its modification time is
  the object's last use. Beside it, ``.json.pin``: a stage that uses the object holds a
  shared lock on it for as long as it runs; ``.json.lock``: held while it downloads;
* ``out/<id>/``: one stage's outputs before upload, removed when it ends; ``out/<id>.lock``
  is held meanwhile.

After each download the cache is pruned to ``$DVTRAIN_SCRATCH_LIMIT`` (bytes, or with a K,
M, G or T suffix; default 20G; 0 = no limit): least recently used objects first, never one a
running stage holds. ``dvtrain clean`` (:func:`clean`) empties it of everything not in use.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, NamedTuple, Optional

from .errors import DvtrainError

ROOT_ENV, LIMIT_ENV = "DVTRAIN_SCRATCH", "DVTRAIN_SCRATCH_LIMIT"
DEFAULT_LIMIT = "20G"
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def root() -> Path:
    path = os.environ.get(ROOT_ENV) or os.path.join(tempfile.gettempdir(), f"dvtrain-scratch-{os.getuid()}")
    return Path(path).resolve()  # resolved: stages write resolved paths into pbtxt files


def parse_size(text: str) -> int:
    """Bytes of ``"20G"``, ``"500M"``, ``"1.5T"``, ``"1048576"`` (binary units)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", str(text), re.I)
    if not m:
        raise ValueError(f"not a size: {text!r} (bytes, or a number with K, M, G or T)")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def limit() -> int:
    """The cache's size limit in bytes (0: none)."""
    text = os.environ.get(LIMIT_ENV) or DEFAULT_LIMIT
    try:
        return parse_size(text)
    except ValueError as e:
        raise DvtrainError(f"{LIMIT_ENV}={text}: {e}") from None


class Removed(NamedTuple):
    files: int
    bytes: int
    kept_in_use: int


def _try_exclusive(lock_path: Path) -> Optional[int]:
    """An fd holding an exclusive lock on ``lock_path``, or None when someone holds it."""
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fd
    except OSError:
        os.close(fd)
        return None


def _entries(base: Path) -> list[tuple[float, Path, Path, int]]:
    """(last use, meta file, object file, size) of every cached object, oldest use first."""
    objects, meta = base / "objects", base / "meta"
    out = []
    if not meta.is_dir():
        return out
    for m in meta.rglob("*.json"):
        obj = objects / m.relative_to(meta).with_suffix("")
        try:
            size = obj.stat().st_size if obj.is_file() else 0
            out.append((m.stat().st_mtime, m, obj, size))
        except OSError:
            continue
    return sorted(out, key=lambda e: (e[0], str(e[1])))


def usage(base: Optional[Path] = None) -> int:
    """Bytes of cached objects."""
    return sum(e[3] for e in _entries(base or root()))


def prune(max_bytes: int, base: Optional[Path] = None) -> Removed:
    """Remove least recently used cached objects not in use until the cache holds at most
    ``max_bytes`` (a limit of 0 removes every object not in use)."""
    base = base or root()
    entries = _entries(base)
    total = sum(e[3] for e in entries)
    files = freed = kept = 0
    for _, meta, obj, size in entries:
        if total <= max_bytes and max_bytes > 0:
            break
        pin = _try_exclusive(meta.with_name(meta.name + ".pin"))  # no stage uses it
        busy = None if pin is None else _try_exclusive(meta.with_name(meta.name + ".lock"))  # nor downloads it
        if busy is None:
            kept += 1
            if pin is not None:
                os.close(pin)
            continue
        try:
            for p in (obj, meta):
                try:
                    p.unlink()
                except FileNotFoundError:
                    pass
            files += 1
            freed += size
            total -= size
        finally:
            os.close(busy)
            os.close(pin)
    return Removed(files, freed, kept)


def prune_to_limit(base: Optional[Path] = None) -> Removed:
    """:func:`prune` to ``$DVTRAIN_SCRATCH_LIMIT`` (nothing when it is 0)."""
    n = limit()
    return prune(n, base) if n > 0 else Removed(0, 0, 0)


def _out_folders(base: Path) -> Iterable[Path]:
    out = base / "out"
    return sorted(p for p in out.iterdir() if p.is_dir()) if out.is_dir() else []


def clean(base: Optional[Path] = None) -> Removed:
    """Empty the scratch folder of everything no running stage uses: cached downloads and
    the output folders stages left behind (a killed run's)."""
    base = base or root()
    removed = prune(0, base)
    files, freed, kept = removed
    for folder in _out_folders(base):
        lock = folder.with_name(folder.name + ".lock")
        fd = _try_exclusive(lock)
        if fd is None:
            kept += 1
            continue
        try:
            for p in folder.rglob("*"):
                if p.is_file():
                    files += 1
                    freed += p.stat().st_size
            shutil.rmtree(folder, ignore_errors=True)
            lock.unlink(missing_ok=True)
        finally:
            os.close(fd)
    return Removed(files, freed, kept)
