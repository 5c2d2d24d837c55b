"""TensorBoard scalar logs without TensorFlow (the GPU machine runs Keras on JAX).

An event file is a TFRecord file (framing from :mod:`dvtrain.fileio`) of serialised
``tensorflow.Event`` protos. Only the fields scalars need are written:

* ``Event``: ``wall_time`` (1, double), ``step`` (2, int64), ``file_version`` (3, string;
  the first event of a file says ``brain.Event:2``), ``summary`` (5, ``Summary``);
* ``Summary``: repeated ``value`` (1); ``Summary.Value``: ``tag`` (1, string),
  ``simple_value`` (2, float), which TensorBoard shows as a scalar.

:class:`ScalarLog` keeps the encoded events in memory (the training state stores them)
and appends them to one file per run.
"""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path
from typing import Mapping, Optional

from .errors import InputError
from .example_proto import _fields, _ld, _varint
from .fileio import TFRecordWriter, _masked_crc, read_tfrecords

FILE_VERSION = "brain.Event:2"


def encode_event(step: int, wall_time: float, scalars: Optional[Mapping[str, float]] = None,
                 file_version: Optional[str] = None) -> bytes:
    """One serialised ``Event``: a file-version marker or a summary of scalars (tags in sorted order)."""
    out = _varint(1 << 3 | 1) + struct.pack("<d", float(wall_time))
    out += _varint(2 << 3 | 0) + _varint(int(step))
    if file_version is not None:
        out += _ld(3, file_version.encode())
    if scalars:
        values = b"".join(
            _ld(1, _ld(1, tag.encode()) + _varint(2 << 3 | 5) + struct.pack("<f", float(scalars[tag])))
            for tag in sorted(scalars)
        )
        out += _ld(5, values)
    return out


def decode_event(record: bytes) -> dict:
    """``{"wall_time", "step", "file_version"?, "scalars": {tag: value}}`` of one serialised Event."""
    event: dict = {"wall_time": 0.0, "step": 0, "scalars": {}}
    for number, _, value in _fields(record):
        if number == 1:
            event["wall_time"] = struct.unpack("<d", value)[0]  # type: ignore[arg-type]
        elif number == 2:
            event["step"] = value
        elif number == 3:
            event["file_version"] = bytes(value).decode()  # type: ignore[arg-type]
        elif number == 5:
            for n2, _, entry in _fields(value):  # type: ignore[arg-type]
                if n2 != 1:
                    continue
                tag, simple = None, None
                for n3, _, v3 in _fields(entry):  # type: ignore[arg-type]
                    if n3 == 1:
                        tag = bytes(v3).decode()  # type: ignore[arg-type]
                    elif n3 == 2:
                        simple = struct.unpack("<f", v3)[0]  # type: ignore[arg-type]
                if tag is not None and simple is not None:
                    event["scalars"][tag] = simple
    return event


def read_scalars(path: str | Path) -> list[tuple[int, str, float]]:
    """(step, tag, value) of every scalar in an event file, in file order."""
    out = []
    for record in read_tfrecords(path):
        try:
            event = decode_event(record)
        except (ValueError, IndexError, struct.error):
            raise InputError(path, "not a TensorBoard event file") from None
        out.extend((event["step"], tag, value) for tag, value in event["scalars"].items())
    return out


def frame(record: bytes) -> bytes:
    """One TFRecord: length, masked CRC-32C of the length, payload, masked CRC-32C of the payload."""
    header = struct.pack("<Q", len(record))
    return header + struct.pack("<I", _masked_crc(header)) + record + struct.pack("<I", _masked_crc(record))


class ScalarLog:
    """Scalars for one TensorBoard run directory, in one ``events.out.tfevents.*`` file.

    The file is created atomically with the first :meth:`flush` and appended to by later
    ones (TensorBoard follows a growing file; a partial last record from a killed writer is
    what it expects of a file being written). :meth:`to_bytes` / :meth:`from_bytes` carry
    the records in the training state, and :meth:`resume` cuts the file back to them, so a
    resumed run continues the same file with no replayed steps. Keep ``name`` across a
    resumed run: TensorBoard reads every event file of a directory.
    """

    def __init__(self, logdir: str | Path, name: Optional[str] = None, records: Optional[list[bytes]] = None):
        self.logdir = Path(logdir)
        self.name = name or f"events.out.tfevents.{int(time.time()):010d}.dvtrain"
        self.records: list[bytes] = list(records) if records else [encode_event(0, time.time(), file_version=FILE_VERSION)]
        self._in_file = 0  # leading records known to be in the file

    @property
    def path(self) -> Path:
        return self.logdir / self.name

    def add(self, step: int, scalars: Mapping[str, float], wall_time: Optional[float] = None) -> None:
        if scalars:
            self.records.append(encode_event(step, time.time() if wall_time is None else wall_time, scalars))

    def flush(self) -> Path:
        """Put every record in the file: append the new ones, or write the file whole the first time."""
        if self._in_file and self.path.is_file():
            with open(self.path, "ab") as fh:
                fh.write(b"".join(frame(r) for r in self.records[self._in_file:]))
                fh.flush()
                os.fsync(fh.fileno())
        else:
            self._rewrite()
        self._in_file = len(self.records)
        return self.path

    def resume(self) -> Path:
        """Make the file hold exactly :attr:`records`: cut what a stopped run appended after its
        last saved state (same file, so a running TensorBoard keeps following it), or rewrite
        it when it is missing or differs."""
        expected = b"".join(frame(r) for r in self.records)
        try:
            with open(self.path, "rb") as fh:
                same = fh.read(len(expected)) == expected
        except OSError:
            same = False
        if same:
            os.truncate(self.path, len(expected))
        else:
            self._rewrite()
        self._in_file = len(self.records)
        return self.path

    def _rewrite(self) -> None:
        self.logdir.mkdir(parents=True, exist_ok=True)
        # written under a name without "tfevents" (TensorBoard would read a half-written temp file), then renamed
        pending = self.logdir / ".dvtrain-events.pending"
        with TFRecordWriter(pending) as writer:
            for record in self.records:
                writer.write(record)
        os.replace(pending, self.path)

    # the training state stores the log as length-prefixed records
    def to_bytes(self) -> bytes:
        return b"".join(struct.pack("<I", len(r)) + r for r in self.records)

    @classmethod
    def from_bytes(cls, logdir: str | Path, name: str, data: bytes) -> "ScalarLog":
        records, i = [], 0
        while i < len(data):
            (n,) = struct.unpack_from("<I", data, i)
            records.append(bytes(data[i + 4:i + 4 + n]))
            i += 4 + n
        return cls(logdir, name, records)
