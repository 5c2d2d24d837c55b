"""Global shuffle of labelled examples with Apache Beam: a local runner chosen explicitly,
or any Beam runner (Dataflow, Spark, Flink) with its pipeline options (docs/shuffle-runners.md).

Each record gets a key = BLAKE2b(seed, record). The key picks the output shard and, inside
a shard, records are written in key order. So the order is a seeded pseudo-random
permutation that does not depend on input order, sharding, bundle boundaries or the
runner: the same examples and seed give byte-identical shards.

Outputs, DeepVariant style:
  PREFIX-0000i-of-0000N.tfrecord.gz   shuffled examples
  PREFIX.dataset_config.pbtxt         name, tfrecord_path, num_examples, # classN: count
  PREFIX.example_info.json            copied from the inputs (they must all agree)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator

from .config import ShuffleConfig
from .errors import DvtrainError, InputError, ShapeMismatchError
from .example_proto import decode_example
from .fileio import TFRecordWriter, atomic_output, existing_inputs, read_tfrecords


def record_key(record: bytes, seed: int) -> bytes:
    return hashlib.blake2b(record, digest_size=16, key=seed.to_bytes(8, "little", signed=True)).digest()


def _keyed(path: str, seed: int, num_shards: int) -> Iterator[tuple[int, tuple[bytes, int, bytes]]]:
    for rec in read_tfrecords(path):
        label = decode_example(rec, keys={"label"}).get("label")
        if not label or not 0 <= int(label[0]) <= 2:
            raise InputError(path, "an example has no label 0/1/2 (shuffle needs training-mode examples)")
        k = record_key(rec, seed)
        yield int.from_bytes(k[:8], "little") % num_shards, (k, int(label[0]), rec)


def _write_shard(item, prefix: str, num_shards: int) -> dict:
    shard, keyed = item
    records = sorted(keyed)
    path = f"{prefix}-{shard:05d}-of-{num_shards:05d}.tfrecord.gz"
    counts = [0, 0, 0]
    with TFRecordWriter(path) as w:
        for _, label, rec in records:
            counts[label] += 1
            w.write(rec)
    return {"shard": shard, "path": path, "num_examples": len(records), "class_counts": counts}


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
    infos = {}
    for p in paths:
        ip = Path(str(p) + ".example_info.json")
        if ip.exists():
            try:
                infos[str(ip)] = json.loads(ip.read_text())
            except json.JSONDecodeError:
                raise InputError(ip, "not valid JSON") from None
    distinct = {json.dumps(v, sort_keys=True) for v in infos.values()}
    if len(distinct) > 1:
        raise ShapeMismatchError(sorted(infos)[-1], "example_info.json differs between input shards (mixed image shapes/channels)")
    return next(iter(infos.values())) if infos else {}


def shuffle(config: ShuffleConfig) -> dict:
    """Shuffle the input examples globally into ``num_shards`` shards; write dataset_config."""
    import apache_beam as beam

    opts = pipeline_options(config)  # a typo in an option fails here, before any work
    inputs = existing_inputs(config.input_pattern_list)
    info = read_example_info(inputs)
    prefix = str(config.output_pattern_prefix)
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    n = config.num_shards
    def remove_shards() -> None:
        for stale in Path(prefix).parent.glob(Path(prefix).name + "-*-of-*.tfrecord.gz"):
            stale.unlink()

    remove_shards()
    fd, summary_path = tempfile.mkstemp(prefix=".shuffle-summary.", suffix=".json", dir=Path(prefix).parent)
    os.close(fd)
    try:
        with beam.Pipeline(runner=_runner(config.runner), options=opts) as p:
            _ = (
                p
                | "Inputs" >> beam.Create([str(x) for x in inputs])
                | "ReadAndKey" >> beam.FlatMap(_keyed, config.seed, n)
                | "ToShards" >> beam.GroupByKey()
                | "WriteShards" >> beam.Map(_write_shard, prefix, n)
                | "Gather" >> beam.combiners.ToList()
                | "Summary" >> beam.Map(lambda rows: Path(summary_path).write_text(json.dumps(rows)))
            )
        shards = {r["shard"]: r for r in json.loads(Path(summary_path).read_text() or "[]")}
    except Exception as e:
        remove_shards()
        # Beam wraps worker exceptions; surface our one-line input errors as such.
        m = re.search(r"InputError: (.*?)(?: \[while running|$)", str(e), flags=re.S)
        if m:
            raise DvtrainError(m.group(1).strip()) from None
        raise
    finally:
        Path(summary_path).unlink(missing_ok=True)
    # Shards that received no records still exist, empty, so the pattern is complete.
    for i in range(n):
        if i not in shards:
            path = f"{prefix}-{i:05d}-of-{n:05d}.tfrecord.gz"
            with TFRecordWriter(path):
                pass
            shards[i] = {"shard": i, "path": path, "num_examples": 0, "class_counts": [0, 0, 0]}
    counts = [sum(s["class_counts"][c] for s in shards.values()) for c in range(3)]
    total = sum(counts)
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
        with atomic_output(info_path) as tmp:
            tmp.write_text(json.dumps(info, sort_keys=True) + "\n")
    return {
        "dataset_config": str(pbtxt),
        "tfrecord_path": pattern,
        "num_examples": total,
        "class_counts": counts,
        "paths": [shards[i]["path"] for i in range(n)],
        "example_info": str(info_path) if info else None,
    }


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
