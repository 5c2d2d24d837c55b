"""Interchange with DeepVariant r1.6.1's files (the container engine's side of each hand-off).

* DeepVariant-spec training examples, built here byte by byte (protobuf wire format and
  gzip + TFRecord framing written in this file, not with ``dvtrain.example_proto`` or
  ``dvtrain.fileio``), go through our ``shuffle`` and ``train``;
* our shuffle's ``dataset_config.pbtxt`` must be a ``DeepVariantDatasetConfig`` text proto
  and its example_info.json must be where DeepVariant's ``train`` looks for it;
* our ``train`` must accept what DeepVariant's ``shuffle_tfrecords_beam.py`` writes;
* our ``evaluate`` must read DeepVariant's (postprocess_variants) VCFs.

Where TensorFlow / protobuf are installed, the hand-built bytes and our outputs are also
checked with the real parsers (``tf.train.Example``, ``tf.data.TFRecordDataset`` with GZIP,
``google.protobuf.text_format``), the way DeepVariant reads them.
"""

from __future__ import annotations

import collections
import glob
import gzip
import json
import os
import re
import struct
from pathlib import Path

import numpy as np
import pytest

# --------------------------------------------------------------------------------------
# Protobuf wire format, by hand (deliberately independent of dvtrain.example_proto).
# tf.train.Example: Example{features=1: Features{feature=1: map<string, Feature>}};
# map entry {key=1, value=2}; Feature{bytes_list=1, float_list=2, int64_list=3};
# BytesList{value=1 repeated bytes}; Int64List{value=1 repeated int64 [packed]}.


def _varint(n: int) -> bytes:
    if n < 0:  # int32/int64 negatives: ten-byte two's complement
        n += 1 << 64
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _tag(field: int, wire: int) -> bytes:
    return _varint((field << 3) | wire)


def _ld(field: int, payload: bytes) -> bytes:
    return _tag(field, 2) + _varint(len(payload)) + payload


def _packed(field: int, values) -> bytes:
    return _ld(field, b"".join(_varint(int(v)) for v in values))


def bytes_feature(*values: bytes) -> bytes:
    return _ld(1, b"".join(_ld(1, v) for v in values))


def int64_feature(*values: int) -> bytes:
    return _ld(3, _packed(1, values))


def tf_example(items: list[tuple[str, bytes]]) -> bytes:
    """A serialised tf.train.Example; map entries in the order given (protobuf does not sort them)."""
    entries = b"".join(_ld(1, _ld(1, key.encode()) + _ld(2, feature)) for key, feature in items)
    return _ld(1, entries)


# nucleus.genomics.v1.Variant (third_party/nucleus/protos/variants.proto): reference_name=14,
# start=16, end=13, reference_bases=6, alternate_bases=7, quality=8 (double), filter=9,
# calls=11 -> VariantCall{call_set_name=9, genotype=7 (repeated int32, packed)}.
def nucleus_variant(chrom: str, start: int, ref: str, alts: list[str], sample: str = "HG002",
                    genotype: tuple[int, ...] = (-1, -1), quality: float = 12.5) -> bytes:
    call = _ld(9, sample.encode()) + _packed(7, genotype)
    return (_ld(14, chrom.encode()) + _tag(16, 0) + _varint(start) + _tag(13, 0) + _varint(start + len(ref))
            + _ld(6, ref.encode()) + b"".join(_ld(7, a.encode()) for a in alts)
            + _tag(8, 1) + struct.pack("<d", quality) + _ld(9, b"PASS") + _ld(11, call))


def alt_allele_indices(indices: list[int]) -> bytes:
    """deepvariant.CallVariantsOutput.AltAlleleIndices{indices=1 repeated int32 (packed)}."""
    return _packed(1, indices)


# --------------------------------------------------------------------------------------
# TFRecord framing in a gzip stream (TensorFlow's GZIP compression), by hand.
def _masked_crc(data: bytes) -> int:
    import google_crc32c

    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def write_tfrecord_gz(path: Path, records: list[bytes]) -> None:
    with gzip.open(path, "wb") as fh:
        for rec in records:
            length = struct.pack("<Q", len(rec))
            fh.write(length + struct.pack("<I", _masked_crc(length)) + rec + struct.pack("<I", _masked_crc(rec)))


def read_tfrecord_gz(path: str | Path) -> list[bytes]:
    """Every record of a gzip TFRecord file, both CRCs of each checked."""
    data = gzip.decompress(Path(path).read_bytes())
    out, i = [], 0
    while i < len(data):
        length_bytes = data[i:i + 8]
        (length,) = struct.unpack("<Q", length_bytes)
        assert struct.unpack("<I", data[i + 8:i + 12])[0] == _masked_crc(length_bytes), f"{path}: length CRC"
        rec = data[i + 12:i + 12 + length]
        assert len(rec) == length, f"{path}: truncated record"
        assert struct.unpack("<I", data[i + 12 + length:i + 16 + length])[0] == _masked_crc(rec), f"{path}: data CRC"
        out.append(rec)
        i += 16 + length
    return out


# --------------------------------------------------------------------------------------
# A DeepVariant make_examples (training mode) output, to its documented spec.
SHAPE = [100, 221, 7]
CHANNELS = [1, 2, 3, 4, 5, 6, 19]
DV_INFO = {"version": "1.6.1", "shape": SHAPE, "channels": CHANNELS}
PER_SHARD = 15  # two shards: 30 examples, 10 per label
SEQUENCING_TYPE_WGS = 1


def dv_example(i: int, label: int, rng: np.random.Generator) -> bytes:
    start = 10_000 + 37 * i
    ref = "ACGT"[i % 4]
    alts = ["ACGT"[(i + 1) % 4]] if i % 5 else ["ACGT"[(i + 1) % 4], "ACGT"[(i + 2) % 4]]
    image = rng.integers(0, 256, SHAPE, dtype=np.uint8)
    image[:5] = 250  # the reference rows
    image[5:, :, 0] = np.uint8(60 + 80 * label)  # a label-dependent base channel
    indices = [0] if len(alts) == 1 else [0, 1]
    # DeepVariant's feature order is not sorted: a reader must not depend on it
    return tf_example([
        ("locus", bytes_feature(f"chr20:{start + 1}-{start + 1}".encode())),
        ("variant/encoded", bytes_feature(nucleus_variant("chr20", start, ref, alts))),
        ("variant_type", int64_feature(1)),
        ("alt_allele_indices/encoded", bytes_feature(alt_allele_indices(indices))),
        ("image/encoded", bytes_feature(image.tobytes())),
        ("image/shape", int64_feature(*SHAPE)),
        ("sequencing_type", int64_feature(SEQUENCING_TYPE_WGS)),
        ("label", int64_feature(label)),
    ])


@pytest.fixture(scope="module")
def dv_examples(tmp_path_factory) -> dict:
    """``training.tfrecord@2.gz`` as DeepVariant's make_examples names it, each shard with its
    ``.example_info.json``; records and labels in input order."""
    folder = tmp_path_factory.mktemp("dv-make-examples")
    rng = np.random.default_rng(20)
    labels = rng.permutation(np.repeat([0, 1, 2], 2 * PER_SHARD // 3)).tolist()
    records = [dv_example(i, label, rng) for i, label in enumerate(labels)]
    paths = []
    for task in range(2):
        path = folder / f"training.tfrecord-{task:05d}-of-00002.gz"
        write_tfrecord_gz(path, records[task * PER_SHARD:(task + 1) * PER_SHARD])
        Path(str(path) + ".example_info.json").write_text(json.dumps(DV_INFO, indent=2))
        paths.append(path)
    return {"folder": folder, "spec": str(folder / "training.tfrecord@2.gz"), "paths": paths,
            "records": records, "labels": labels}


@pytest.fixture(scope="module")
def shuffled(dv_examples, tmp_path_factory) -> dict:
    from dvtrain.config import ShuffleConfig
    from dvtrain.shuffle import shuffle

    out = tmp_path_factory.mktemp("dvtrain-shuffle")
    res = shuffle(ShuffleConfig(input_pattern_list=[dv_examples["spec"]], output_pattern_prefix=str(out / "train"),
                                output_dataset_name="HG002", num_shards=2))
    return {"folder": out, "result": res, "pbtxt": Path(res["dataset_config"])}


# --------------------------------------------------------------------------------------
# DeepVariantDatasetConfig (deepvariant/protos/deepvariant.proto): name=1 string,
# tfrecord_path=2 string, num_examples=3 uint32. A strict reader of its text format as
# our shuffle writes it: `#` comments, blank lines, and each field at most once.
_PBTXT_FIELD = re.compile(r'^(name|tfrecord_path): "((?:[^"\\\n]|\\.)*)"$|^(num_examples): (\d+)$')


def parse_dataset_config_strict(text: str) -> tuple[dict, dict[int, int]]:
    fields: dict = {}
    classes: dict[int, int] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            m = re.match(r"^#\s*class(\d+):\s*(\d+)\s*$", line)
            if m:
                classes[int(m.group(1))] = int(m.group(2))
            continue
        m = _PBTXT_FIELD.match(line)
        if not m:
            raise ValueError(f"line {n}: not a DeepVariantDatasetConfig field: {raw!r}")
        key, value = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), int(m.group(4)))
        if key in fields:
            raise ValueError(f"line {n}: {key} given twice")
        fields[key] = value
    return fields, classes


def test_strict_pbtxt_parser_rejects_what_text_format_would():
    ok = '# c\n# class0: 3\nname: "x"\ntfrecord_path: "/a/b-?????-of-00002.tfrecord.gz"\nnum_examples: 3\n'
    assert parse_dataset_config_strict(ok) == (
        {"name": "x", "tfrecord_path": "/a/b-?????-of-00002.tfrecord.gz", "num_examples": 3}, {0: 3})
    for bad in ('name: x\n', 'name: "x"\nname: "y"\n', 'num_examples: "3"\n', 'class0: 3\n', 'shape: [1]\n',
                'num_examples: -1\n'):
        with pytest.raises(ValueError):
            parse_dataset_config_strict(bad)


def _proto_classes() -> dict:
    """Message classes for the DeepVariant / nucleus protos these files carry (the fields used
    here, with their real numbers and types), built at run time: no DeepVariant install needed."""
    pytest.importorskip("google.protobuf")
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="dvtrain_interchange_test.proto", package="interchange",
                                             syntax="proto3")

    def message(name: str, fields: list[tuple]) -> None:
        m = fdp.message_type.add(name=name)
        for fname, number, ftype, *rest in fields:
            f = m.field.add(name=fname, number=number, type=ftype,
                            label=F.LABEL_REPEATED if "repeated" in rest else F.LABEL_OPTIONAL)
            if ftype == F.TYPE_MESSAGE:
                f.type_name = ".interchange." + rest[-1]

    message("DeepVariantDatasetConfig", [("name", 1, F.TYPE_STRING), ("tfrecord_path", 2, F.TYPE_STRING),
                                         ("num_examples", 3, F.TYPE_UINT32)])
    message("VariantCall", [("call_set_name", 9, F.TYPE_STRING), ("genotype", 7, F.TYPE_INT32, "repeated")])
    message("Variant", [("reference_name", 14, F.TYPE_STRING), ("start", 16, F.TYPE_INT64), ("end", 13, F.TYPE_INT64),
                        ("reference_bases", 6, F.TYPE_STRING), ("alternate_bases", 7, F.TYPE_STRING, "repeated"),
                        ("quality", 8, F.TYPE_DOUBLE), ("filter", 9, F.TYPE_STRING, "repeated"),
                        ("calls", 11, F.TYPE_MESSAGE, "repeated", "VariantCall")])
    message("AltAlleleIndices", [("indices", 1, F.TYPE_INT32, "repeated")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {m.name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"interchange.{m.name}"))
            for m in fdp.message_type}


# ---------------------------------------------------------------------- the examples
def test_hand_built_examples_parse_with_tensorflow_and_protobuf(dv_examples):
    """The fixture really is DeepVariant's spec: TensorFlow's own tf.train.Example parser and
    the nucleus / DeepVariant message layouts read it back."""
    tf = pytest.importorskip("tensorflow")
    protos = _proto_classes()
    records = read_tfrecord_gz(dv_examples["paths"][0])
    assert len(records) == PER_SHARD
    ex = tf.train.Example.FromString(records[4])
    f = ex.features.feature
    assert set(f) == {"locus", "variant/encoded", "variant_type", "alt_allele_indices/encoded", "image/encoded",
                      "image/shape", "sequencing_type", "label"}
    assert list(f["image/shape"].int64_list.value) == SHAPE
    assert len(f["image/encoded"].bytes_list.value[0]) == 100 * 221 * 7
    assert f["label"].int64_list.value[:] == [dv_examples["labels"][4]]
    assert f["sequencing_type"].int64_list.value[:] == [SEQUENCING_TYPE_WGS]
    v = protos["Variant"].FromString(f["variant/encoded"].bytes_list.value[0])
    assert (v.reference_name, v.start, v.end, v.reference_bases) == ("chr20", 10_000 + 37 * 4, 10_000 + 37 * 4 + 1, "A")
    assert list(v.alternate_bases) == ["C"] and list(v.filter) == ["PASS"] and v.quality == 12.5
    assert v.calls[0].call_set_name == "HG002" and list(v.calls[0].genotype) == [-1, -1]
    multi = tf.train.Example.FromString(records[5]).features.feature
    aai = protos["AltAlleleIndices"].FromString(multi["alt_allele_indices/encoded"].bytes_list.value[0])
    assert list(aai.indices) == [0, 1]
    # TensorFlow's TFRecord reader accepts the hand-made framing and gzip stream
    assert [r.numpy() for r in tf.data.TFRecordDataset([str(dv_examples["paths"][0])], compression_type="GZIP")] \
        == records


def test_our_codec_reads_deepvariant_examples(dv_examples):
    from dvtrain.example_proto import decode_alt_allele_indices, decode_example, decode_variant
    from dvtrain.fileio import read_tfrecords

    ours = [r for p in dv_examples["paths"] for r in read_tfrecords(p)]
    assert ours == dv_examples["records"]
    for i, rec in enumerate(ours):
        ex = decode_example(rec)
        assert ex["label"] == [dv_examples["labels"][i]]
        assert ex["image/shape"] == SHAPE and len(ex["image/encoded"][0]) == 100 * 221 * 7
        assert ex["sequencing_type"] == [SEQUENCING_TYPE_WGS] and ex["variant_type"] == [1]
        assert ex["locus"] == [f"chr20:{10_001 + 37 * i}-{10_001 + 37 * i}".encode()]
        v = decode_variant(ex["variant/encoded"][0])
        assert (v["reference_name"], v["start"], v["end"]) == ("chr20", 10_000 + 37 * i, 10_001 + 37 * i)
        assert v["reference_bases"] == "ACGT"[i % 4] and len(v["alternate_bases"]) == (1 if i % 5 else 2)
        assert decode_alt_allele_indices(ex["alt_allele_indices/encoded"][0]) == ([0] if i % 5 else [0, 1])


# ---------------------------------------------------------------------- our shuffle
def test_shuffle_keeps_deepvariant_records_byte_identical(dv_examples, shuffled):
    res, folder = shuffled["result"], shuffled["folder"]
    expected = [str(folder / f"train-{i:05d}-of-00002.tfrecord.gz") for i in range(2)]
    assert res["paths"] == expected
    outputs = [rec for p in expected for rec in read_tfrecord_gz(p)]
    assert collections.Counter(outputs) == collections.Counter(dv_examples["records"])
    assert outputs != dv_examples["records"]  # shuffled, not copied
    counts = collections.Counter(dv_examples["labels"])
    assert res["num_examples"] == 2 * PER_SHARD and res["class_counts"] == [counts[0], counts[1], counts[2]]


def test_shuffle_dataset_config_is_a_deepvariant_dataset_config(dv_examples, shuffled):
    fields, classes = parse_dataset_config_strict(shuffled["pbtxt"].read_text())
    assert set(fields) == {"name", "tfrecord_path", "num_examples"}
    assert fields["name"] == "HG002" and fields["num_examples"] == 2 * PER_SHARD
    counts = collections.Counter(dv_examples["labels"])
    assert classes == {0: counts[0], 1: counts[1], 2: counts[2]}
    # tf.io.gfile.glob / Beam's ReadFromTFRecord: the pattern names exactly the shards written
    written = sorted(str(p) for p in shuffled["folder"].glob("train-*.tfrecord.gz"))
    assert len(written) == 2
    assert sorted(glob.glob(fields["tfrecord_path"])) == written == sorted(shuffled["result"]["paths"])


def test_shuffle_dataset_config_parses_with_protobuf_text_format(shuffled):
    config_class = _proto_classes()["DeepVariantDatasetConfig"]  # skips without protobuf
    from google.protobuf import text_format

    cfg = text_format.Parse(shuffled["pbtxt"].read_text(), config_class())
    assert cfg.name == "HG002" and cfg.num_examples == 2 * PER_SHARD
    assert sorted(glob.glob(cfg.tfrecord_path)) == sorted(shuffled["result"]["paths"])


def test_shuffle_example_info_matches_inputs(shuffled):
    info = json.loads((shuffled["folder"] / "train.example_info.json").read_text())
    assert info["shape"] == SHAPE and info["channels"] == CHANNELS
    assert shuffled["result"]["example_info"] == str(shuffled["folder"] / "train.example_info.json")


def dv_train_example_info_path(pbtxt: Path) -> Path | None:
    """Where DeepVariant's ``train`` (r1.6) finds the dataset's example_info.json: in the folder
    of the dataset config's ``tfrecord_path`` (``example_info.json``, where
    ``shuffle_tfrecords_beam.py`` copies it); later versions also try
    ``tfrecord_path + '.example_info.json'``. Otherwise train raises FileNotFoundError."""
    fields, _ = parse_dataset_config_strict(pbtxt.read_text())
    for candidate in (os.path.join(os.path.dirname(fields["tfrecord_path"]), "example_info.json"),
                      fields["tfrecord_path"] + ".example_info.json"):
        if os.path.exists(candidate):  # tf.io.gfile.exists: no globbing
            return Path(candidate)
    return None


def test_shuffle_example_info_is_where_deepvariant_train_looks(shuffled):
    found = dv_train_example_info_path(shuffled["pbtxt"])
    assert found is not None, "DeepVariant's train would raise FileNotFoundError"
    info = json.loads(found.read_text())
    assert info["shape"] == SHAPE and info["channels"] == CHANNELS


# DeepVariant r1.6 data_providers._PROTO_FEATURES (train/tune mode parses these)
def test_tensorflow_reads_our_shuffled_shards_as_deepvariant_train_does(dv_examples, shuffled):
    tf = pytest.importorskip("tensorflow")
    fields, _ = parse_dataset_config_strict(shuffled["pbtxt"].read_text())
    files = tf.io.gfile.glob(fields["tfrecord_path"])
    records = [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]
    assert collections.Counter(records) == collections.Counter(dv_examples["records"])
    spec = {
        "locus": tf.io.FixedLenFeature((), tf.string),
        "variant/encoded": tf.io.FixedLenFeature((), tf.string),
        "variant_type": tf.io.FixedLenFeature((), tf.int64),
        "alt_allele_indices/encoded": tf.io.FixedLenFeature((), tf.string),
        "image/encoded": tf.io.FixedLenFeature((), tf.string),
        "sequencing_type": tf.io.FixedLenFeature((), tf.int64, default_value=0),
        "label": tf.io.FixedLenFeature((1), tf.int64),
    }
    info = json.loads((shuffled["folder"] / "train.example_info.json").read_text())
    labels = []
    for rec in records[:6]:
        parsed = tf.io.parse_single_example(rec, spec)
        image = tf.reshape(tf.io.decode_raw(parsed["image/encoded"], tf.uint8), info["shape"])
        assert tuple(image.shape) == tuple(SHAPE)
        labels.append(int(parsed["label"][0]))
    assert set(labels) <= {0, 1, 2}


# ---------------------------------------------------------------------- our train
def test_train_on_shuffled_deepvariant_examples(dv_examples, shuffled, tmp_path):
    from dvtrain.config import TrainConfig
    from dvtrain.model import load_model
    from dvtrain.train import train

    exp = tmp_path / "exp"
    out = train(TrainConfig(train_dataset_config=shuffled["pbtxt"], tune_dataset_config=shuffled["pbtxt"],
                            experiment_dir=exp, architecture="small_cnn", epochs=1, batch_size=10, seed=3))
    assert Path(out["best_model"]) == exp / "best_model.keras" and (exp / "best_model.keras").is_file()
    info = json.loads((exp / "example_info.json").read_text())
    assert info["shape"] == SHAPE and info["channels"] == CHANNELS and info["version"] == "1.6.1"
    counts = collections.Counter(dv_examples["labels"])
    assert out["train_examples"] == 2 * PER_SHARD and out["train_class_counts"] == [counts[0], counts[1], counts[2]]
    assert out["steps"] == 3
    assert tuple(load_model(exp / "best_model.keras").input_shape[1:]) == tuple(SHAPE)


# What DeepVariant's shuffle_tfrecords_beam.py (r1.6) leaves: shards from Beam's WriteToTFRecord,
# the config text below, and the first input's example_info.json copied to the output folder.
DV_PBTXT = """# Generated by shuffle_tfrecords_beam.py
# class0: {c0}
# class1: {c1}
# class2: {c2}
#
# --input_pattern_list={inputs}
# --output_pattern_prefix={prefix}
#

name: "HG002"
tfrecord_path: "{prefix}-?????-of-?????.tfrecord.gz"
num_examples: {n}
"""


@pytest.fixture(scope="module")
def dv_shuffled(dv_examples, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("dv-shuffle")
    prefix = out / "training_set.with_label.shuffled"
    rng = np.random.default_rng(5)
    order = rng.permutation(len(dv_examples["records"]))
    records = [dv_examples["records"][i] for i in order]
    for s in range(2):
        write_tfrecord_gz(Path(f"{prefix}-{s:05d}-of-00002.tfrecord.gz"), records[s::2])
    counts = collections.Counter(dv_examples["labels"])
    pbtxt = out / "training_set.dataset_config.pbtxt"
    pbtxt.write_text(DV_PBTXT.format(c0=counts[0], c1=counts[1], c2=counts[2], n=len(records), prefix=prefix,
                                     inputs=dv_examples["folder"] / "training.tfrecord-?????-of-00002.gz"))
    (out / "example_info.json").write_text(json.dumps(DV_INFO, indent=2))
    return {"pbtxt": pbtxt, "records": records}


def test_our_train_inputs_accept_deepvariant_shuffle_output(dv_examples, dv_shuffled):
    from dvtrain.shuffle import read_dataset_config
    from dvtrain.train import load_examples

    cfg = read_dataset_config(dv_shuffled["pbtxt"])
    counts = collections.Counter(dv_examples["labels"])
    assert cfg["name"] == "HG002" and cfg["num_examples"] == 2 * PER_SHARD
    assert cfg["class_counts"] == [counts[0], counts[1], counts[2]]
    x, y = load_examples(cfg["tfrecord_path"])
    assert x.shape == (2 * PER_SHARD, *SHAPE) and x.dtype == np.uint8
    assert collections.Counter(y.tolist()) == counts
    # the images are the examples' bytes (shard 0's first record comes first)
    assert x[0].tobytes() in dv_shuffled["records"][0]


def test_our_train_finds_deepvariant_shuffle_example_info(dv_shuffled):
    from dvtrain.shuffle import read_dataset_config
    from dvtrain.train import dataset_example_info

    cfg = read_dataset_config(dv_shuffled["pbtxt"])
    info = dataset_example_info(dv_shuffled["pbtxt"], cfg["tfrecord_path"], tuple(SHAPE))
    assert info["channels"] == CHANNELS and info["version"] == "1.6.1"


# ---------------------------------------------------------------------- our evaluate
SEQ = "ACGT" * 100  # chr20 of 400 bases; no homopolymers, so a 1-base deletion cannot shift
DV_HEADER = """##fileformat=VCFv4.2
##FILTER=<ID=PASS,Description="All filters passed">
##FILTER=<ID=RefCall,Description="Genotyping model thinks this site is reference.">
##FILTER=<ID=LowQual,Description="Confidence in this variant being real is below calling threshold.">
##FILTER=<ID=NoCall,Description="Site has depth=0 resulting in no call.">
##INFO=<ID=END,Number=1,Type=Integer,Description="End position (for use with symbolic alleles)">
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
##FORMAT=<ID=GQ,Number=1,Type=Integer,Description="Conditional genotype quality">
##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Read depth">
##FORMAT=<ID=MIN_DP,Number=1,Type=Integer,Description="Minimum DP observed within the GVCF block.">
##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Read depth for each allele">
##FORMAT=<ID=VAF,Number=A,Type=Float,Description="Variant allele fractions.">
##FORMAT=<ID=PL,Number=G,Type=Integer,Description="Phred-scaled genotype likelihoods rounded to the closest integer">
##FORMAT=<ID=MED_DP,Number=1,Type=Integer,Description="Median DP observed within the GVCF block rounded to the nearest integer.">
##DeepVariant_version=1.6.1
##contig=<ID=chr20,length=400>
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tHG002
"""


def base(pos1: int, n: int = 1) -> str:
    return SEQ[pos1 - 1:pos1 - 1 + n]


def other(pos1: int, k: int = 1) -> str:
    b = base(pos1)
    return "ACGT"[("ACGT".index(b) + k) % 4]


def dv_record(pos: int, ref: str, alt: str, qual: str, flt: str, sample: str) -> str:
    return f"chr20\t{pos}\t.\t{ref}\t{alt}\t{qual}\t{flt}\t.\tGT:GQ:DP:AD:VAF:PL\t{sample}\n"


@pytest.fixture
def dv_calls(tmp_path) -> dict:
    fa = tmp_path / "ref.fa"
    fa.write_text(">chr20\n" + "\n".join(SEQ[i:i + 60] for i in range(0, len(SEQ), 60)) + "\n")
    import pysam

    pysam.faidx(str(fa))
    bed = tmp_path / "confident.bed"
    bed.write_text("chr20\t0\t360\n")
    truth = [  # (pos, ref, alt, gt)
        (50, base(50), other(50), "0/1"),
        (100, base(100), other(100), "1/1"),
        (120, base(120), f"{other(120)},{other(120, 2)}", "1/2"),
        (150, base(150, 2), base(150), "0/1"),  # 1-base deletion
        (200, base(200), other(200), "0/1"),  # DeepVariant: RefCall ./.
        (220, base(220), other(220), "0/1"),  # DeepVariant: RefCall 0/0
        (240, base(240), other(240), "0/1"),  # DeepVariant: LowQual 0/1
        (260, base(260), other(260), "0/1"),  # DeepVariant: nothing
    ]
    tv = tmp_path / "truth.vcf"
    tv.write_text("##fileformat=VCFv4.2\n##contig=<ID=chr20,length=400>\n"
                  '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
                  "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tHG002\n"
                  + "".join(f"chr20\t{p}\t.\t{r}\t{a}\t50\tPASS\t.\tGT\t{g}\n" for p, r, a, g in truth))
    query = "".join([
        dv_record(50, base(50), other(50), "35.2", "PASS", "0/1:35:12:6,6:0.5:35,0,40"),
        dv_record(100, base(100), other(100), "48.1", "PASS", "1/1:44:15:0,15:1:48,45,0"),
        dv_record(120, base(120), f"{other(120)},{other(120, 2)}", "30.4", "PASS",
                  "1/2:28:20:1,9,10:0.45,0.5:30,25,60,27,0,58"),
        dv_record(150, base(150, 2), base(150), "29.9", "PASS", "0/1:29:11:5,6:0.545455:29,0,33"),
        dv_record(200, base(200), other(200), "0", "RefCall", "./.:8:3:3,0:0:0,8,25"),
        dv_record(220, base(220), other(220), "0", "RefCall", "0/0:14:9:8,1:0.111111:0,15,40"),
        dv_record(240, base(240), other(240), "0.6", "LowQual", "0/1:2:4:2,2:0.5:0,0,12"),
        dv_record(300, base(300), other(300), "22.7", "PASS", "0/1:22:9:4,5:0.555556:22,0,30"),  # FP
        dv_record(320, base(320), other(320), "0.4", "LowQual", "0/1:3:5:3,2:0.4:0,2,18"),  # FP (ALL only)
        dv_record(340, base(340), other(340), "0", "RefCall", "./.:10:6:6,0:0:0,10,30"),
        dv_record(380, base(380), other(380), "31.5", "PASS", "0/1:31:10:5,5:0.5:31,0,36"),  # outside the BED: UNK
    ])
    plain = tmp_path / "dv.vcf"
    plain.write_text(DV_HEADER + query)
    gz = tmp_path / "dv.vcf.gz"  # as postprocess_variants writes it: bgzip + .tbi
    pysam.tabix_compress(str(plain), str(gz), force=True)
    pysam.tabix_index(str(gz), preset="vcf", force=True)
    return {"ref": fa, "bed": bed, "truth": tv, "plain": plain, "gz": gz, "tmp": tmp_path}


def _evaluate(dv_calls: dict, query: Path, pass_only: bool) -> dict:
    from dvtrain.config import EvaluateConfig
    from dvtrain.evaluate import evaluate

    rows = evaluate(EvaluateConfig(truth_vcf=dv_calls["truth"], query_vcf=query, confident_bed=dv_calls["bed"],
                                   reference=dv_calls["ref"], pass_only=pass_only,
                                   output_prefix=dv_calls["tmp"] / "out" / f"{query.name}.{pass_only}"))
    keys = ("TRUTH.TOTAL", "TRUTH.TP", "TRUTH.FN", "QUERY.TOTAL", "QUERY.FP", "QUERY.UNK", "FP.gt", "FP.al")
    return {(r["Type"], r["Filter"]): tuple(r[k] for k in keys) for r in rows}


# TRUTH.TOTAL, TRUTH.TP, TRUTH.FN, QUERY.TOTAL, QUERY.FP, QUERY.UNK, FP.gt, FP.al
_SNP_PASS = (8, 4, 4, 6, 1, 1, 0, 0)  # TP 50, 100, 120 x2; FN 200 (./.), 220 (0/0), 240 (LowQual), 260
_INDEL = (1, 1, 0, 1, 0, 0, 0, 0)


@pytest.mark.parametrize("form", ["gz", "plain"])
def test_evaluate_reads_deepvariant_vcf_pass_only(dv_calls, form):
    rows = _evaluate(dv_calls, dv_calls[form], pass_only=True)
    assert rows == {("INDEL", "ALL"): _INDEL, ("INDEL", "PASS"): _INDEL,
                    ("SNP", "ALL"): _SNP_PASS, ("SNP", "PASS"): _SNP_PASS}


def test_evaluate_deepvariant_vcf_all_vs_pass(dv_calls):
    rows = _evaluate(dv_calls, dv_calls["gz"], pass_only=False)
    # ALL: the LowQual call at 240 is a TP and the one at 320 an FP; RefCall (./. and 0/0) never calls
    assert rows[("SNP", "ALL")] == (8, 5, 3, 8, 2, 1, 0, 0)
    assert rows[("SNP", "PASS")] == _SNP_PASS
    assert rows[("INDEL", "ALL")] == rows[("INDEL", "PASS")] == _INDEL
