"""Global shuffle of labelled examples with Apache Beam, in bounded memory: a local runner
chosen explicitly, or any Beam runner (Dataflow, Spark, Flink) with its pipeline options
(docs/shuffle-runners.md).

Each record gets a key = BLAKE2b(seed, record), 16 bytes; its first 8 (big-endian) are a
point in [0, 2^64). Output shard s holds the keys of [s, s+1) * 2^64 / S, written in key
order: a seeded pseudo-random permutation that depends only on the records and the seed,
not on input order, sharding, bundles, runner or memory budget, so the same examples and
seed give byte-identical shards.

Two levels, so that memory stays bounded whatever the input size (DeepVariant's
SHA-1 + GroupByKey holds every example in memory at once):
  1. Spill: each input file is one element. Its records are keyed and appended to
     B = S * m buckets (equal key ranges, m per shard) held in memory up to the budget;
     the fullest bucket is then written out as one chunk file (``b<bucket>/f<file>-<n>``,
     gzip of ``key(16) label(1) length(4) record`` frames). Only the chunk names, sizes
     and counts travel through Beam's GroupByKey (keyed by shard).
  2. Write: per shard, its buckets in key order: a bucket is read into one buffer, its
     frames are sorted by key with numpy and the records written out. A bucket larger
     than the budget is first split again into m' sub-ranges (spilled the same way).
Peak memory per worker is about the budget (``memory_mb``) plus the interpreter.

Outputs, DeepVariant style:
  PREFIX-0000i-of-0000N.tfrecord.gz   shuffled examples
  PREFIX.dataset_config.pbtxt         name, tfrecord_path, num_examples, # classN: count
  PREFIX.example_info.json            copied from the inputs (they must all agree); also
                                      written as example_info.json in the output folder,
                                      where DeepVariant's train looks for it
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import struct
import tempfile
import threading
import uuid
import zlib
from array import array
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np

from .config import ShuffleConfig
from .errors import DvtrainError, InputError, OutputError, ShapeMismatchError
from .example_proto import decode_example
from .fileio import TFRecordWriter, atomic_output, existing_inputs, read_tfrecords, sweep_stale
from .fileio import _FULL, _DeflateError as DeflateError, _gzip  # ISA-L deflate when installed

_FRAME = struct.Struct("<16sBI")  # key, label, record length
_KEY = struct.Struct(">QQ")  # the key as two big-endian halves (their order is the key order)
_KEYSPACE = 1 << 64
_PER_RECORD = 64  # bytes of bookkeeping per record held in memory (numpy index, Python frame)
_PROGRESS_EVERY = 5000  # records between progress-file updates


def record_key(record: bytes, seed: int) -> bytes:
    return hashlib.blake2b(record, digest_size=16, key=seed.to_bytes(8, "little", signed=True)).digest()


def _bounds(index: int, parts: int, lo: int, hi: int) -> int:
    """Lower edge of part ``index`` of ``parts`` equal parts of [lo, hi)."""
    return lo + -(-(index * (hi - lo)) // parts)


def _label(rec: bytes, path: str) -> int:
    label = decode_example(rec, keys={"label"}).get("label")
    if not label or not 0 <= int(label[0]) <= 2:
        raise InputError(path, "an example has no label 0/1/2 (shuffle needs training-mode examples)")
    return int(label[0])


class _Spiller:
    """Frames routed to ``parts`` equal key ranges of [lo, hi), buffered in memory up to
    ``budget`` bytes; the fullest range is then written out as one chunk file. ``chunks``
    collects (range index, path, bytes, records) of every file written."""

    def __init__(self, directory: str, tag: str, parts: int, lo: int, hi: int, budget: int):
        self.directory, self.tag, self.parts, self.lo, self.hi = directory, tag, parts, lo, hi
        self.budget = max(budget, 1 << 20)
        self.bufs = [bytearray() for _ in range(parts)]
        self.counts = [0] * parts
        self.held = 0
        self.serial = 0
        self.chunks: list[tuple[int, str, int, int]] = []

    def add(self, frame: bytes, point: int) -> None:
        i = ((point - self.lo) * self.parts) // (self.hi - self.lo)
        self.bufs[i] += frame
        self.counts[i] += 1
        self.held += len(frame) + _PER_RECORD
        if self.held > self.budget:
            self.flush(max(range(self.parts), key=lambda j: len(self.bufs[j])))

    def flush(self, i: int) -> None:
        from apache_beam.io.filesystems import FileSystems

        if not self.bufs[i]:
            return
        path = FileSystems.join(self.directory, f"b{i:05d}", f"{self.tag}-{self.serial:06d}.gz")
        self.serial += 1
        _write_chunk(path, self.bufs[i])
        self.chunks.append((i, path, len(self.bufs[i]), self.counts[i]))
        self.held -= len(self.bufs[i]) + _PER_RECORD * self.counts[i]
        self.bufs[i], self.counts[i] = bytearray(), 0

    def close(self) -> list[tuple[int, str, int, int]]:
        for i in range(self.parts):
            self.flush(i)
        return self.chunks


def _write_chunk(path: str, data: bytearray) -> None:
    from apache_beam.io.filesystems import CompressionTypes, FileSystems

    payload = _gzip.compress(bytes(data), compresslevel=1)
    try:
        with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            fh.write(payload)
    except OSError as e:
        if e.errno in _FULL:  # name the folder the user chose (or can choose) for the spill
            spill_root = str(Path(path).parents[2])
            raise OutputError(spill_root, f"cannot write the shuffle's spill files: {os.strerror(e.errno)} "
                                          f"(--spill_dir puts them on another disk)") from None
        raise


def _read_chunk(path: str) -> bytes:
    from apache_beam.io.filesystems import CompressionTypes, FileSystems

    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        return _gzip.decompress(fh.read())


def _frames(buf: bytes | bytearray) -> Iterator[tuple[int, int, int]]:
    """(offset of the frame, label, record length) for every frame of ``buf``."""
    i, n, size = 0, len(buf), _FRAME.size
    while i < n:
        _, label, length = _FRAME.unpack_from(buf, i)
        yield i, label, length
        i += size + length


def _index(buf: bytearray) -> tuple[np.ndarray, ...]:
    """Frame offsets, labels, record lengths and the two key halves of every frame of
    ``buf``, as numpy arrays (about 40 bytes per record)."""
    offs, labels, lens, his, los = array("q"), array("B"), array("q"), array("Q"), array("Q")
    for off, label, length in _frames(buf):
        hi, lo = _KEY.unpack_from(buf, off)
        offs.append(off)
        labels.append(label)
        lens.append(length)
        his.append(hi)
        los.append(lo)
    return tuple(np.frombuffer(a, dtype=a.typecode) if len(a) else np.zeros(0, a.typecode)
                 for a in (offs, labels, lens, his, los))


def _write_progress(directory: Optional[str], name: str, value: int) -> None:
    if directory:  # a local folder the driver polls; best effort
        try:
            tmp = os.path.join(directory, f".{name}.tmp")
            with open(tmp, "w") as fh:
                fh.write(str(value))
            os.replace(tmp, os.path.join(directory, name))
        except OSError:
            pass


def _spill_file(item: tuple[int, str], seed: int, shards: int, per_shard: int, spill_dir: str, budget: int,
                progress_dir: Optional[str]) -> Iterator[tuple[int, tuple[int, str, int, int]]]:
    """Pass 1 for one input file -> (shard, (bucket, chunk path, bytes, records, worker pid)) per chunk."""
    index, path = item
    parts = shards * per_shard
    spiller = _Spiller(spill_dir, f"f{index:05d}", parts, 0, _KEYSPACE, budget)
    fh_pos = [0]
    n = 0
    for rec in read_tfrecords(path, position=fh_pos):
        key = record_key(rec, seed)
        spiller.add(_FRAME.pack(key, _label(rec, path), len(rec)) + rec, int.from_bytes(key[:8], "big"))
        n += 1
        if n % _PROGRESS_EVERY == 0:
            _write_progress(progress_dir, f"read-{index}", fh_pos[0])
    _write_progress(progress_dir, f"read-{index}", os.path.getsize(path))
    _write_progress(progress_dir, f"records-{index}", n)  # this file's count: the total once all are in
    for bucket, chunk, size, count in spiller.close():
        yield bucket // per_shard, (bucket, chunk, size, count, os.getpid())


def _sorted_bucket(chunks: list[tuple[str, int, int]], lo: int, hi: int, spill_dir: str, budget: int,
                   depth: int = 0) -> Iterator[tuple[bytes, int]]:
    """(record, label) of the chunks of key range [lo, hi), in key order, holding at most
    about ``budget`` bytes: a larger range is split into sub-ranges first."""
    size = sum(c[1] + _PER_RECORD * c[2] for c in chunks)
    if size > budget and hi - lo > 1:
        parts = min(256, -(-2 * size // budget))
        spiller = _Spiller(spill_dir, f"split{depth}-{lo:016x}", parts, lo, hi, budget // 2)
        for path, _, _ in chunks:
            buf = _read_chunk(path)
            for off, _, length in _frames(buf):
                spiller.add(buf[off:off + _FRAME.size + length], _KEY.unpack_from(buf, off)[0])
            del buf
        sub: dict[int, list] = {}
        for i, path, nbytes, count in spiller.close():
            sub.setdefault(i, []).append((path, nbytes, count))
        for i in sorted(sub):
            yield from _sorted_bucket(sub[i], _bounds(i, parts, lo, hi), _bounds(i + 1, parts, lo, hi),
                                      spill_dir, budget, depth + 1)
        return
    buf = bytearray()
    for path, _, _ in sorted(chunks):
        buf += _read_chunk(path)
    offs, labels, lens, his, los = _index(buf)
    view = memoryview(buf)
    for j in np.lexsort((los, his)):
        start = int(offs[j]) + _FRAME.size
        yield bytes(view[start:start + int(lens[j])]), int(labels[j])


def _write_shard(item: tuple[int, list], prefix: str, shards: int, per_shard: int, spill_dir: str, budget: int,
                 progress_dir: Optional[str]) -> dict:
    """Pass 2 for one shard: its buckets in key order, each sorted in memory."""
    shard, chunks = item
    parts = shards * per_shard
    by_bucket: dict[int, list] = {}
    pids = {os.getpid()}
    for bucket, path, size, count, pid in chunks:
        by_bucket.setdefault(bucket, []).append((path, size, count))
        pids.add(pid)
    path = f"{prefix}-{shard:05d}-of-{shards:05d}.tfrecord.gz"
    counts = [0, 0, 0]
    with TFRecordWriter(path) as w:
        for bucket in sorted(by_bucket):
            lo, hi = _bounds(bucket, parts, 0, _KEYSPACE), _bounds(bucket + 1, parts, 0, _KEYSPACE)
            for rec, label in _sorted_bucket(by_bucket[bucket], lo, hi, spill_dir, budget):
                w.write(rec)
                counts[label] += 1
                if w.count % _PROGRESS_EVERY == 0:
                    _write_progress(progress_dir, f"written-{shard}", w.count)
    _write_progress(progress_dir, f"written-{shard}", w.count)
    return {"shard": shard, "path": path, "num_examples": w.count, "class_counts": counts, "pids": sorted(pids)}


def _expansion(path: Path) -> float:
    """Uncompressed / stored size of a TFRecord file, from its first 4 MiB."""
    if not path.name.endswith(".gz"):
        return 1.0
    try:
        with open(path, "rb") as raw, _gzip.GzipFile(fileobj=raw, mode="rb") as fh:
            got = len(fh.read(4 << 20))
            used = raw.tell()
    except (OSError, EOFError, zlib.error, DeflateError) as e:  # BadGzipFile is an OSError
        raise InputError(path, f"cannot read TFRecords: {e}") from None
    return max(1.0, got / max(used, 1))


def buckets_per_shard(inputs: list[Path], shards: int, budget: int) -> int:
    """m: buckets per output shard so that one bucket is about half the budget (estimated
    from the inputs' sizes and compression; a bucket that turns out larger is split in pass 2)."""
    total = sum(p.stat().st_size for p in inputs) * (_expansion(inputs[0]) if inputs else 1.0)
    return max(1, min(4096, int(-(-total // max(1, shards * budget // 2)))))


#: in-process runners, built here so that Beam never goes through DirectRunner (which would
#: try to download Prism); every other name is handed to Beam (docs/shuffle-runners.md)
LOCAL_RUNNERS = ("FnApiRunner", "BundleBasedDirectRunner")


def _runner(name: str):
    if name == "FnApiRunner":
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        return FnApiRunner()
    if name == "BundleBasedDirectRunner":
        from apache_beam.runners.direct.direct_runner import BundleBasedDirectRunner

        return BundleBasedDirectRunner()
    return name  # DataflowRunner, SparkRunner, FlinkRunner, PortableRunner, ... or a dotted class path


def unknown_pipeline_options(flags: list[str]) -> list[str]:
    """The flags no Beam ``PipelineOptions`` class defines (Beam itself only logs and drops them)."""
    import difflib

    from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

    parser = _BeamArgumentParser(allow_abbrev=False)
    for cls in {str(c): c for c in PipelineOptions.__subclasses__()}.values():
        cls._add_argparse_args(parser)

    def reject(message: str):  # argparse would print its usage and exit
        raise ValueError(message)

    parser.error = reject  # type: ignore[method-assign]
    try:
        _, unknown = parser.parse_known_args(flags)
    except ValueError as e:  # a known option with a bad value, e.g. an invalid choice
        return [str(e)]
    known = [o for a in parser._actions for o in a.option_strings]
    out = []
    for arg in unknown:
        name = arg.split("=", 1)[0]
        close = difflib.get_close_matches(name, known, n=1) if name.startswith("--") else []
        out.append(f"{arg} (did you mean {close[0]}?)" if close else arg)
    return out


def pipeline_options(config: ShuffleConfig):
    """Beam ``PipelineOptions`` for ``config``: one local worker unless the options say otherwise."""
    from apache_beam.options.pipeline_options import PipelineOptions

    unknown = unknown_pipeline_options(config.pipeline_options)
    if unknown:
        raise DvtrainError(f"shuffle: unknown Beam pipeline option(s): {', '.join(unknown)}")
    return PipelineOptions(["--direct_num_workers=1", *config.pipeline_options])


def read_example_info(paths: list[Path]) -> dict:
    """The inputs' example_info.json (they must agree: shape and channels), or {}."""
    infos: dict[str, dict] = {}
    for p in paths:
        ip = Path(str(p) + ".example_info.json")
        if ip.exists():
            try:
                infos[str(ip)] = json.loads(ip.read_text())
            except json.JSONDecodeError:
                raise InputError(ip, "not valid JSON") from None
    first = next(iter(infos.items()), None)
    for path, info in infos.items():
        if [info.get("shape"), info.get("channels")] != [first[1].get("shape"), first[1].get("channels")]:
            raise ShapeMismatchError(path, f"example_info.json differs from {first[0]} (mixed image shapes/"
                                           f"channels: {info.get('shape')} {info.get('channels')} vs "
                                           f"{first[1].get('shape')} {first[1].get('channels')})")
    return first[1] if first else {}


class _Progress(threading.Thread):
    """Polls the workers' progress files and calls ``report`` with records written and the
    fraction done (half for reading the inputs, half for writing the shards; the record
    total is known once every input file has been spilled)."""

    def __init__(self, directory: str, input_bytes: int, inputs: int, report: Callable[[dict], None]):
        super().__init__(daemon=True)
        self.directory, self.input_bytes, self.inputs, self.report = directory, max(input_bytes, 1), inputs, report
        self.done = threading.Event()
        self.total: Optional[int] = None

    def _sum(self, prefix: str) -> int:
        total = 0
        for name in os.listdir(self.directory):
            if name.startswith(prefix):
                try:
                    total += int(Path(self.directory, name).read_text() or 0)
                except (OSError, ValueError):
                    pass
        return total

    def poll(self) -> None:
        if self.total is None and sum(n.startswith("records-") for n in os.listdir(self.directory)) == self.inputs:
            self.total = self._sum("records-")  # every input file is spilled: the record count is known
        read = min(self._sum("read-"), self.input_bytes)
        written = self._sum("written-")
        frac = 0.5 * read / self.input_bytes + (0.5 * written / self.total if self.total else 0.0)
        self.report({"written": written, "total": self.total, "fraction": min(frac, 1.0)})

    def run(self) -> None:
        while not self.done.wait(1.0):
            self.poll()


#: one of our one-line errors as Beam reports it from a worker ("...InputError: MESSAGE [while running 'X']")
_OWN_ERROR = re.compile(r"\b(?:InputError|OutputError|ShapeMismatchError): (.*?)(?: \[while running|$)", re.S)


class _Drop(logging.Filter):
    """Drops log records whose message matches ``pattern``."""

    def __init__(self, pattern: re.Pattern):
        super().__init__()
        self.pattern = pattern

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.pattern.search(str(record.msg))


def _import_beam():
    """Import Beam without its 'apitools not found ...' line on the root logger (GCP client
    libraries are not installed, and not needed by local runners)."""
    root = logging.getLogger()
    quiet = _Drop(re.compile(r"^apitools not found"))
    root.addFilter(quiet)
    try:
        import apache_beam
    finally:
        root.removeFilter(quiet)
    return apache_beam


def shuffle(config: ShuffleConfig, progress: Optional[Callable[[dict], None]] = None) -> dict:
    """Shuffle the input examples globally into ``num_shards`` shards; write dataset_config.

    ``progress``, when given, is called about once a second (from another thread) with
    ``{"written": records written, "total": records (None until known), "fraction": 0..1}``.
    """
    beam = _import_beam()

    opts = pipeline_options(config)  # a typo in an option fails here, before any work
    inputs = existing_inputs(config.input_pattern_list)
    info = read_example_info(inputs)
    prefix = str(config.output_pattern_prefix)
    out_dir = Path(prefix).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    n = config.num_shards
    budget = config.memory_mb << 20
    per_shard = buckets_per_shard(inputs, n, budget)
    local_spill = config.spill_dir is None or "://" not in config.spill_dir
    spill_root = Path(config.spill_dir) if config.spill_dir and local_spill else out_dir
    if local_spill:
        spill_root.mkdir(parents=True, exist_ok=True)
        spill = tempfile.mkdtemp(prefix=f".{Path(prefix).name}.spill.", suffix=".part", dir=spill_root)
    else:
        spill = f"{config.spill_dir.rstrip('/')}/{Path(prefix).name}.spill-{uuid.uuid4().hex}"
    progress_dir = os.path.join(spill, "progress") if local_spill and progress else None
    if progress_dir:
        os.makedirs(progress_dir)

    def remove_shards() -> None:
        for stale in out_dir.glob(Path(prefix).name + "-*-of-*.tfrecord.gz"):
            stale.unlink()

    remove_shards()
    fd, summary_path = tempfile.mkstemp(prefix=f".{Path(prefix).name}.summary.", suffix=".part.json", dir=out_dir)
    os.close(fd)
    # Beam logs a worker's exception with its traceback before re-raising it: noise for our
    # one-line errors, which are re-raised as such below
    beam_log, quiet = logging.getLogger("apache_beam.runners.common"), _Drop(_OWN_ERROR)
    poller = _Progress(progress_dir, sum(p.stat().st_size for p in inputs), len(inputs), progress) \
        if progress_dir else None
    try:
        if poller:
            poller.start()
        beam_log.addFilter(quiet)
        with beam.Pipeline(runner=_runner(config.runner), options=opts) as p:
            _ = (
                p
                | "Inputs" >> beam.Create(list(enumerate(str(x) for x in inputs)))
                | "Distribute" >> beam.Reshuffle()
                | "Spill" >> beam.FlatMap(_spill_file, config.seed, n, per_shard, spill, budget, progress_dir)
                | "ChunksByShard" >> beam.GroupByKey()
                | "WriteShards" >> beam.Map(_write_shard, prefix, n, per_shard, spill, budget, progress_dir)
                | "Gather" >> beam.combiners.ToList()
                | "Summary" >> beam.Map(lambda rows: Path(summary_path).write_text(json.dumps(rows)))
            )
        shards = {r["shard"]: r for r in json.loads(Path(summary_path).read_text() or "[]")}
        sweep_stale(spill_root, f"{Path(prefix).name}.spill")  # what a killed shuffle into this prefix left
        sweep_stale(out_dir, f"{Path(prefix).name}.summary")
    except Exception as e:
        remove_shards()
        # Beam wraps worker exceptions; surface our one-line input errors as such.
        m = _OWN_ERROR.search(str(e))
        if m:
            raise DvtrainError(m.group(1).strip()) from None
        raise
    finally:
        beam_log.removeFilter(quiet)
        if poller:  # stop it and wait, so a late poll cannot overwrite the final report below
            poller.done.set()
            poller.join()
        Path(summary_path).unlink(missing_ok=True)
        _remove_spill(spill)
    # Shards that received no records still exist, empty, so the pattern is complete.
    for i in range(n):
        if i not in shards:
            path = f"{prefix}-{i:05d}-of-{n:05d}.tfrecord.gz"
            with TFRecordWriter(path):
                pass
            shards[i] = {"shard": i, "path": path, "num_examples": 0, "class_counts": [0, 0, 0]}
    counts = [sum(s["class_counts"][c] for s in shards.values()) for c in range(3)]
    total = sum(counts)
    if progress:
        progress({"written": total, "total": total, "fraction": 1.0})
    pattern = f"{prefix}-?????-of-{n:05d}.tfrecord.gz"
    pbtxt = Path(config.output_dataset_config_pbtxt or f"{prefix}.dataset_config.pbtxt")
    text = (
        f'# Generated by dvtrain shuffle (seed {config.seed}, {len(inputs)} input file(s)).\n'
        f'name: "{config.output_dataset_name}"\n'
        f'tfrecord_path: "{Path(pattern).resolve()}"\n'
        f"num_examples: {total}\n"
        + "".join(f"# class{c}: {counts[c]}\n" for c in range(3))
    )
    with atomic_output(pbtxt) as tmp:
        tmp.write_text(text)
    info_path = Path(f"{prefix}.example_info.json")
    if info:
        text = json.dumps(info, sort_keys=True) + "\n"
        with atomic_output(info_path) as tmp:
            tmp.write_text(text)
        # DeepVariant's train reads example_info.json from the shards' folder; datasets that
        # share the folder (train, tune) have the same shape, so the first one written stays
        shared = out_dir / "example_info.json"
        if not shared.exists() or _same_shape(shared, info):
            with atomic_output(shared) as tmp:
                tmp.write_text(text)
    return {
        "dataset_config": str(pbtxt),
        "tfrecord_path": pattern,
        "num_examples": total,
        "class_counts": counts,
        "paths": [shards[i]["path"] for i in range(n)],
        "example_info": str(info_path) if info else None,
        "buckets": n * per_shard,
        "worker_processes": len({pid for s in shards.values() for pid in s.get("pids", ())}),
    }


def _same_shape(path: Path, info: dict) -> bool:
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return True  # unreadable: replace it
    return [old.get("shape"), old.get("channels")] == [info.get("shape"), info.get("channels")]


def _remove_spill(spill: str) -> None:
    if "://" in spill:
        from apache_beam.io.filesystems import FileSystems

        try:
            FileSystems.delete([spill])
        except Exception:  # nothing was spilled, or the store is gone: nothing to keep
            pass
    else:
        shutil.rmtree(spill, ignore_errors=True)


def read_dataset_config(path: str | Path) -> dict:
    """Parse a dataset_config.pbtxt (ours or DeepVariant's) into name/tfrecord_path/num_examples/class_counts."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise InputError(p, f"cannot read dataset config ({e.strerror})") from None
    fields = dict(re.findall(r'^\s*(\w+)\s*:\s*"?([^"\n]*)"?\s*$', text, flags=re.M))
    if "tfrecord_path" not in fields:
        raise InputError(p, "no tfrecord_path in dataset config")
    counts = {int(k): int(v) for k, v in re.findall(r"^#\s*class(\d+)\s*:\s*(\d+)", text, flags=re.M)}
    tf_path = fields["tfrecord_path"]
    if not Path(tf_path).is_absolute():
        tf_path = str(p.parent / tf_path)
    return {
        "name": fields.get("name", ""),
        "tfrecord_path": tf_path,
        "num_examples": int(fields.get("num_examples", 0)),
        "class_counts": [counts.get(c, 0) for c in range(3)],
    }
