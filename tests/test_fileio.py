"""TFRecord framing and the tf.train.Example codec, checked against real TensorFlow."""

from __future__ import annotations

import os

import pytest

from dvtrain.errors import InputError
from dvtrain.example_proto import decode_example, encode_example
from dvtrain.fileio import TFRecordWriter, atomic_output, content_key, read_tfrecords, sharded_paths

tf = pytest.importorskip("tensorflow")


def test_tfrecords_round_trip_with_tensorflow(tmp_path):
    records = [b"", b"a", b"hello" * 1000, bytes(range(256))]
    ours = tmp_path / "ours.tfrecord.gz"
    with TFRecordWriter(ours) as w:
        for r in records:
            w.write(r)
    got = [bytes(x.numpy()) for x in tf.data.TFRecordDataset(str(ours), compression_type="GZIP")]
    assert got == records
    theirs = tmp_path / "theirs.tfrecord"
    with tf.io.TFRecordWriter(str(theirs)) as w:
        for r in records:
            w.write(r)
    assert list(read_tfrecords(theirs)) == records


def test_same_records_give_identical_bytes(tmp_path):
    for name in ("a.tfrecord.gz", "b.tfrecord.gz"):
        with TFRecordWriter(tmp_path / name) as w:
            w.write(b"x" * 100)
    assert (tmp_path / "a.tfrecord.gz").read_bytes() == (tmp_path / "b.tfrecord.gz").read_bytes()


def test_corruption_and_truncation_are_reported(tmp_path):
    path = tmp_path / "x.tfrecord"
    with TFRecordWriter(path) as w:
        w.write(b"payload-bytes")
    data = bytearray(path.read_bytes())
    data[14] ^= 0xFF
    bad = tmp_path / "bad.tfrecord"
    bad.write_bytes(bytes(data))
    with pytest.raises(InputError, match="checksum"):
        list(read_tfrecords(bad))
    short = tmp_path / "short.tfrecord"
    short.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(InputError, match="truncated"):
        list(read_tfrecords(short))
    notgz = tmp_path / "plain.tfrecord.gz"
    notgz.write_bytes(b"not gzip at all")
    with pytest.raises(InputError, match="plain.tfrecord.gz"):
        list(read_tfrecords(notgz))


def test_writer_leaves_nothing_when_it_fails(tmp_path):
    path = tmp_path / "out.tfrecord.gz"
    with pytest.raises(RuntimeError):
        with TFRecordWriter(path) as w:
            w.write(b"partial")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError):
        with atomic_output(tmp_path / "x.txt") as tmp:
            tmp.write_text("half")
            raise ValueError
    assert list(tmp_path.iterdir()) == []


def test_example_codec_matches_tensorflow():
    feats = {
        "image/encoded": [bytes(range(200))],
        "image/shape": [100, 221, 7],
        "label": [2],
        "locus": [b"chr20:10-11"],
        "neg": [-5, 3],
        "f": [1.5, -0.25],
    }
    buf = encode_example(feats)
    ex = tf.train.Example.FromString(buf)
    assert list(ex.features.feature["image/shape"].int64_list.value) == [100, 221, 7]
    assert list(ex.features.feature["neg"].int64_list.value) == [-5, 3]
    assert list(ex.features.feature["f"].float_list.value) == [1.5, -0.25]
    assert ex.features.feature["image/encoded"].bytes_list.value[0] == bytes(range(200))
    # and we parse what TensorFlow serialises
    assert decode_example(ex.SerializeToString()) == {k: list(v) for k, v in feats.items()}
    assert decode_example(buf, keys={"label"}) == {"label": [2]}


def test_sharded_paths_follow_deepvariant():
    assert sharded_paths("out/x.tfrecord@3.gz") == [
        "out/x.tfrecord-00000-of-00003.gz",
        "out/x.tfrecord-00001-of-00003.gz",
        "out/x.tfrecord-00002-of-00003.gz",
    ]
    assert sharded_paths("plain.tfrecord.gz") == ["plain.tfrecord.gz"]


def test_content_key_follows_content_not_path(tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"same")
    b.write_bytes(b"same")
    assert content_key(a) == content_key(b)
    b.write_bytes(b"diff")
    os.utime(b, ns=(1, 1))
    assert content_key(a) != content_key(b)


def test_temp_file_of_a_killed_writer_goes_with_the_next_write(tmp_path):
    out = tmp_path / "x.tfrecord-00000-of-00001.gz"
    # as left by a writer killed mid-write (mkstemp: 8 random characters; the temp name keeps the last two suffixes)
    orphan = tmp_path / ".x.tfrecord-00000-of-00001.gz.abc12345.part.tfrecord-00000-of-00001.gz"
    orphan.write_bytes(b"half a shard")
    other = tmp_path / ".y.tfrecord-00000-of-00001.gz.abc12345.part.tfrecord-00000-of-00001.gz"  # another output's: kept
    other.write_bytes(b"y")
    with TFRecordWriter(out) as w:
        w.write(b"record")
    assert out.exists() and not orphan.exists() and other.exists()


def test_stale_temporaries_are_swept_by_exact_output_name(tmp_path):
    """A killed writer's temp files/folders go at the next success of the same output, and
    only of that output: merged.bam's sweep leaves merged.bam.bai's temporaries alone."""
    from dvtrain.fileio import TEMP_NAME, atomic_output, temp_dir

    (tmp_path / ".merged.bam.abcd1234.part.bam").write_bytes(b"half")  # killed writer of merged.bam
    (tmp_path / ".merged.bam.bai.efgh5678.part.bai").write_bytes(b"x")  # a live writer of the index
    (tmp_path / ".peers.vcf.gz.qrst9012.part").mkdir()  # a killed scratch folder
    with atomic_output(tmp_path / "merged.bam") as tmp:
        assert TEMP_NAME.match(tmp.name)
        tmp.write_bytes(b"whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".merged.bam.bai.efgh5678.part.bai", ".peers.vcf.gz.qrst9012.part",
                                                          "merged.bam"]
    with temp_dir(tmp_path, "peers.vcf.gz") as td:
        assert TEMP_NAME.match(td.name) and td.is_dir()
    assert not any(p.name.startswith(".peers") for p in tmp_path.iterdir())


def test_a_full_disk_names_the_output_and_leaves_nothing(tmp_path, monkeypatch):
    import errno

    from dvtrain.errors import OutputError
    from dvtrain.fileio import TFRecordWriter, atomic_output

    with pytest.raises(OutputError, match=r"out\.bed: cannot write: No space left on device"):
        with atomic_output(tmp_path / "out.bed"):
            raise OSError(errno.ENOSPC, "No space left on device")
    w = TFRecordWriter(tmp_path / "x.tfrecord.gz")

    def full(*a):
        raise OSError(errno.EFBIG, "File too large")

    monkeypatch.setattr(w._fh, "write", full)
    with pytest.raises(OutputError, match=r"x\.tfrecord\.gz: cannot write: File too large"):
        w.write(b"record")
    assert list(tmp_path.iterdir()) == []
