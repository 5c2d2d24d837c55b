"""Atomic outputs, content keys, and TFRecord framing (no TensorFlow needed).

TFRecord framing: uint64 length, masked crc32c(length), payload, masked crc32c(payload).
Files ending in ``.gz`` are gzip streams (what TensorFlow calls GZIP compression).
Gzip headers carry mtime=0 so the same records give byte-identical files. Deflate is
ISA-L's (``isal``, level 1) when installed, else zlib's: both are plain gzip, but their bytes
differ, so byte-identity holds within one (locked) install.
"""

from __future__ import annotations

import contextlib
import errno
import glob as _glob
import gzip
import hashlib
import os
import re
import struct
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

import zlib

import google_crc32c

try:  # ISA-L deflate: about 5x zlib's speed at level 1 on pileup images (benchmarks/make_examples.py)
    from isal import igzip as _gzip
    from isal.isal_zlib import error as _DeflateError
except ImportError:  # the locked install has isal; without it the stdlib writes valid gzip, more slowly
    _gzip = gzip  # type: ignore[misc]
    _DeflateError = zlib.error  # type: ignore[misc,assignment]

from .errors import InputError, OutputError

#: errno values of a write that ran out of room: disk full, file-size limit, quota
_FULL = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}

#: index files that travel with an input (BAM, CRAM, VCF, FASTA), looked up as PATH + suffix
#: (or, for x.bam, x.bai: see :func:`index_companions`)
INDEX_SUFFIXES = (".bai", ".csi", ".tbi", ".fai", ".crai", ".gzi")


def index_companions(path: str | Path, suffixes: Iterable[str] = INDEX_SUFFIXES) -> list[tuple[str, Path]]:
    """The index files beside ``path`` that exist, as (suffix, file) in ``suffixes`` order:
    ``PATH+SUFFIX`` (a.bam.bai), then ``PATH`` with its last suffix replaced (a.bai)."""
    p = Path(path)
    found: list[tuple[str, Path]] = []
    for sfx in suffixes:
        for side in (Path(str(p) + sfx), p.with_suffix(sfx)):
            if side != p and side.is_file() and all(side != f for _, f in found):
                found.append((sfx, side))
    return found
_MASK_DELTA = 0xA282EAD8
_UMASK = os.umask(0)
os.umask(_UMASK)


def _masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def _cannot_write(path: Path, e: OSError) -> OutputError:
    return OutputError(path, f"cannot write: {e.strerror or (os.strerror(e.errno) if e.errno else e)}")


@contextlib.contextmanager
def _out_of_room_names(path: Path) -> Iterator[None]:
    """A write that runs out of room (disk full, file-size limit, quota) inside the block
    becomes an OutputError naming ``path``: not the temp file, or no file at all."""
    try:
        yield
    except OSError as e:
        if e.errno in _FULL:
            raise _cannot_write(path, e) from None
        raise


@contextlib.contextmanager
def atomic_output(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    The temp name keeps the final suffix (``.vcf.gz`` stays recognisable to htslib). A
    writer killed outright (SIGKILL, the OOM killer) cannot clean up: its temp file stays
    until the next successful write of the same ``path`` removes it.
    """
    path = Path(path)
    sfx = suffix if suffix is not None else "".join(path.suffixes[-2:]) or ".tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + sfx, dir=path.parent)
    except OSError as e:  # read-only, unwritable or full folder: name the output, not the temp name
        raise _cannot_write(path, e) from None
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual permissions
    tmp_path = Path(tmp)
    try:
        with _out_of_room_names(path):
            yield tmp_path
        os.replace(tmp_path, path)
        sweep_stale(path.parent, path.name)  # temporaries of this output left by a killed writer
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


#: every temporary file or folder dvtrain makes beside an output is ``.NAME.XXXXXXXX.part...``
TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.part")


def sweep_stale(directory: str | Path, name: str) -> None:
    """Remove temporaries of output ``name`` in ``directory`` that a killed writer left."""
    import shutil

    for stale in Path(directory).glob(f".{_glob.escape(name)}.????????.part*"):
        if not TEMP_NAME.match(stale.name):
            continue
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


@contextlib.contextmanager
def temp_dir(parent: str | Path, name: str) -> Iterator[Path]:
    """A scratch folder ``PARENT/.NAME.XXXXXXXX.part`` for work towards output ``name``,
    removed on exit; on success, scratch folders of ``name`` that a killed run left are
    removed too (a SIGKILL runs no cleanup)."""
    import shutil

    output = Path(parent) / name
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        td = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".part", dir=parent))
    except OSError as e:
        raise _cannot_write(output, e) from None
    try:
        with _out_of_room_names(output):
            yield td
        sweep_stale(parent, name)
    finally:
        shutil.rmtree(td, ignore_errors=True)


class TFRecordWriter:
    """Write TFRecords atomically: the file appears under its name only after close()."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._ctx = atomic_output(self.path)
        self._tmp = self._ctx.__enter__()
        self._raw = open(self._tmp, "wb")
        self._fh: BinaryIO = (
            _gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, compresslevel=1, mtime=0)  # type: ignore[assignment]
            if self.path.name.endswith(".gz")
            else self._raw
        )
        self.count = 0

    def write(self, record: bytes) -> None:
        header = struct.pack("<Q", len(record))
        try:
            self._fh.write(header + struct.pack("<I", _masked_crc(header)))
            self._fh.write(record)
            self._fh.write(struct.pack("<I", _masked_crc(record)))
        except OSError as e:
            self._failed(e)
        self.count += 1

    def close(self) -> None:
        try:
            if self._fh is not self._raw:
                self._fh.close()
            self._raw.close()
        except OSError as e:
            self._failed(e)
        self._ctx.__exit__(None, None, None)

    def _failed(self, e: OSError) -> None:
        """A write that ran out of room: atomic_output drops the temp file and raises the
        OutputError that names the output. Other errors propagate as they are."""
        if e.errno in _FULL:
            with contextlib.suppress(OSError):
                self._raw.close()
            self._ctx.__exit__(type(e), e, e.__traceback__)
        raise e

    def abort(self) -> None:
        self._raw.close()
        self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> "TFRecordWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def read_tfrecords(path: str | Path, verify: bool = True, position: list[int] | None = None) -> Iterator[bytes]:
    """Yield the payloads of one TFRecord file (gzip if it ends in .gz). ``position``, when
    given, has its item 0 set to the bytes of the file consumed so far after each record."""
    path = Path(path)
    try:
        with open(path, "rb") as raw, (
                _gzip.GzipFile(fileobj=raw, mode="rb") if path.name.endswith(".gz") else raw) as fh:
            while True:
                if position is not None:
                    position[0] = raw.tell()
                header = fh.read(12)
                if not header:
                    return
                if len(header) < 12:
                    raise InputError(path, "truncated TFRecord header")
                (length,) = struct.unpack("<Q", header[:8])
                if verify and struct.unpack("<I", header[8:])[0] != _masked_crc(header[:8]):
                    raise InputError(path, "corrupt TFRecord (length checksum mismatch)")
                data = fh.read(length)
                footer = fh.read(4)
                if len(data) < length or len(footer) < 4:
                    raise InputError(path, "truncated TFRecord payload")
                if verify and struct.unpack("<I", footer)[0] != _masked_crc(data):
                    raise InputError(path, "corrupt TFRecord (payload checksum mismatch)")
                yield data
    except (OSError, EOFError, zlib.error, _DeflateError) as e:  # BadGzipFile is an OSError
        raise InputError(path, f"cannot read TFRecords: {e}") from None


_SHARD_SPEC = re.compile(r"^(?P<base>.*)@(?P<n>\d+)(?P<ext>(\.[^./@]+)*)$")


def sharded_paths(spec: str) -> list[str]:
    """Expand DeepVariant's ``NAME.tfrecord@N.gz`` into N shard paths.

    ``x.tfrecord@3.gz`` -> ``x.tfrecord-00000-of-00003.gz`` ... Specs without ``@`` are
    treated as a glob (sorted), or a single path.
    """
    m = _SHARD_SPEC.match(spec)
    if m:
        n = int(m.group("n"))
        return [f"{m.group('base')}-{i:05d}-of-{n:05d}{m.group('ext')}" for i in range(n)]
    if any(ch in spec for ch in "*?["):
        return sorted(_glob.glob(spec))
    return [spec]


def shard_path(spec: str, task: int) -> str:
    paths = sharded_paths(spec)
    if not 0 <= task < len(paths):
        raise ValueError(f"task {task} outside 0..{len(paths) - 1} for {spec}")
    return paths[task]


def existing_inputs(spec: str | Iterable[str]) -> list[Path]:
    """Resolve a shard spec / glob / list to existing files, or raise InputError."""
    specs = [spec] if isinstance(spec, str) else list(spec)
    out: list[Path] = []
    for s in specs:
        paths = sharded_paths(s)
        if not paths:
            raise InputError(s, "no files match")
        for p in paths:
            if not Path(p).is_file():
                raise InputError(p, "does not exist")
            out.append(Path(p))
    return out


def content_key(path: str | Path, chunk: int = 1 << 20) -> str:
    """A content digest of a file that streams (bounded memory).

    Keyed on size plus a BLAKE2b digest of the bytes (companion indexes are keyed by the
    caller, see tasks/cache.py). The digest is memoised per (path, inode, size, mtime_ns,
    ctime_ns) so repeated keys of big BAMs cost one stat; ctime also catches a rewrite
    that restored the old size and mtime (``cp -p``, ``rsync -t``).
    """
    p = Path(path)
    st = p.stat()
    memo_key = (str(p.resolve()), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if memo_key in _KEY_MEMO:
        return _KEY_MEMO[memo_key]
    h = hashlib.blake2b(digest_size=16)
    h.update(str(st.st_size).encode())
    with open(p, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    digest = h.hexdigest()
    _KEY_MEMO[memo_key] = digest
    return digest


_KEY_MEMO: dict[tuple[str, int, int, int, int], str] = {}
