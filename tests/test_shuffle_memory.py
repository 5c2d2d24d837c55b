"""The two-level shuffle: bounded memory, uniform order, progress, both local cores (issue 7)."""

from __future__ import annotations

import json
import random

import pytest

from dvtrain import shuffle as shuffle_mod
from dvtrain.config import ShuffleConfig
from dvtrain.errors import ShapeMismatchError
from dvtrain.example_proto import decode_example, encode_example
from dvtrain.fileio import TFRecordWriter, read_tfrecords
from dvtrain.shuffle import shuffle


def _write(path, records):
    with TFRecordWriter(path) as w:
        for r in records:
            w.write(r)


def _example(source: int, i: int, label: int, payload: bytes = b"") -> bytes:
    return encode_example({"image/encoded": [payload or bytes([i % 251]) * 8], "image/shape": [2, 2, 2],
                           "label": [label], "locus": [f"src{source}:{i}".encode()]})


@pytest.fixture(scope="module")
def three_sources(tmp_path_factory):
    """3 input files x 1000 records; file k holds only label k, in input order."""
    out = tmp_path_factory.mktemp("uniform")
    for k in range(3):
        _write(out / f"in.tfrecord-{k:05d}-of-00003.gz", [_example(k, i, k) for i in range(1000)])
    return str(out / "in.tfrecord@3.gz")


def _run(pattern, prefix, **kw):
    return shuffle(ShuffleConfig(input_pattern_list=[pattern], output_pattern_prefix=str(prefix),
                                 output_dataset_name="t", **{"num_shards": 4, "seed": 3, **kw}))


def _chi2(table: list[list[int]]) -> float:
    rows, cols = [sum(r) for r in table], [sum(c) for c in zip(*table)]
    total = sum(rows)
    return sum((table[i][j] - rows[i] * cols[j] / total) ** 2 / (rows[i] * cols[j] / total)
               for i in range(len(rows)) for j in range(len(cols)))


def test_source_label_and_input_position_are_independent_of_output_position(three_sources, tmp_path):
    res = _run(three_sources, tmp_path / "u")
    out = [decode_example(r) for p in res["paths"] for r in read_tfrecords(p)]
    assert len(out) == 3000
    source = [int(e["locus"][0].split(b":")[0][3:]) for e in out]
    index = [int(e["locus"][0].split(b":")[1]) for e in out]
    assert [e["label"][0] for e in out] == source  # labels follow their source
    # 10 output-position bins x 3 sources: chi-square, df 18; 42.3 is the 0.999 quantile
    table = [[0] * 3 for _ in range(10)]
    for pos, s in enumerate(source):
        table[pos * 10 // 3000][s] += 1
    assert _chi2(table) < 42.3
    # input position (first/second half of its file) against output position (10 bins): df 9, 27.9
    halves = [[0, 0] for _ in range(10)]
    for pos, i in enumerate(index):
        halves[pos * 10 // 3000][i // 500] += 1
    assert _chi2(halves) < 27.9
    # and no long runs from one source: the longest run of a 1/3-probability event in 3000 is ~7
    longest = run = 1
    for a, b in zip(source, source[1:]):
        run = run + 1 if a == b else 1
        longest = max(longest, run)
    assert longest < 15


def test_memory_budget_and_bucket_count_do_not_change_the_bytes(tmp_path, monkeypatch):
    """40 MB of examples into one shard with a 16 MiB budget: the bucket is split on disk
    (pass 2) and the output is byte-identical to an in-memory run."""
    rng = random.Random(1)
    for k in range(2):
        _write(tmp_path / f"big.tfrecord-{k:05d}-of-00002.gz",
               [_example(k, i, i % 3, rng.randbytes(8000)) for i in range(2500)])
    pattern = str(tmp_path / "big.tfrecord@2.gz")
    roomy = _run(pattern, tmp_path / "roomy" / "t", num_shards=1, memory_mb=4096)
    assert roomy["buckets"] == 1
    splits = []
    real = shuffle_mod._Spiller.__init__

    def spy(self, directory, tag, *args, **kw):
        splits.append(tag)
        real(self, directory, tag, *args, **kw)

    monkeypatch.setattr(shuffle_mod._Spiller, "__init__", spy)
    monkeypatch.setattr(shuffle_mod, "buckets_per_shard", lambda *a: 1)  # force one bucket > budget
    tight = _run(pattern, tmp_path / "tight" / "t", num_shards=1, memory_mb=16)
    assert any(t.startswith("split") for t in splits)  # pass 2 had to split the bucket
    assert open(tight["paths"][0], "rb").read() == open(roomy["paths"][0], "rb").read()
    monkeypatch.undo()
    many = _run(pattern, tmp_path / "many" / "t", num_shards=1, memory_mb=16)
    assert many["buckets"] > 1
    assert open(many["paths"][0], "rb").read() == open(roomy["paths"][0], "rb").read()
    for d in ("roomy", "tight", "many"):  # spill folders are gone
        assert sorted(p.name for p in (tmp_path / d).iterdir()) == \
            ["t-00000-of-00001.tfrecord.gz", "t.dataset_config.pbtxt", "t.example_info.json"][:2]


def test_two_local_worker_processes_share_the_work(three_sources, tmp_path):
    single = _run(three_sources, tmp_path / "one")
    multi = _run(three_sources, tmp_path / "two",
                 pipeline_options=["--direct_num_workers=2", "--direct_running_mode=multi_processing"])
    assert single["worker_processes"] == 1
    assert multi["worker_processes"] == 2
    assert [open(p, "rb").read() for p in multi["paths"]] == [open(p, "rb").read() for p in single["paths"]]


def test_progress_reports_records_written(three_sources, tmp_path):
    seen = []
    res = shuffle(ShuffleConfig(input_pattern_list=[three_sources], output_pattern_prefix=str(tmp_path / "q"),
                                output_dataset_name="q"), progress=seen.append)
    assert seen[-1] == {"written": 3000, "total": 3000, "fraction": 1.0}
    assert res["num_examples"] == 3000
    assert all(0 <= p["fraction"] <= 1 for p in seen)


def test_inputs_that_disagree_on_example_info_name_both_files(three_sources, tmp_path):
    from pathlib import Path

    base = Path(three_sources).parent
    for k, shape in enumerate(([2, 2, 2], [2, 2, 2], [2, 2, 3])):
        Path(f"{base}/in.tfrecord-{k:05d}-of-00003.gz.example_info.json").write_text(
            json.dumps({"version": "x", "shape": shape, "channels": list(range(shape[2]))}))
    try:
        with pytest.raises(ShapeMismatchError) as err:
            _run(three_sources, tmp_path / "m")
        msg = str(err.value)
        assert "in.tfrecord-00002-of-00003.gz.example_info.json" in msg
        assert "in.tfrecord-00000-of-00003.gz.example_info.json" in msg
        assert not list(tmp_path.iterdir())  # refused before any work
    finally:
        for k in range(3):
            Path(f"{base}/in.tfrecord-{k:05d}-of-00003.gz.example_info.json").unlink()


def test_plain_and_gzip_tfrecords_mix(tmp_path):
    """Uncompressed TFRecords (TensorFlow's default) and gzip ones go into one shuffle."""
    plain = [_example(0, i, 0) for i in range(50)]
    gz = [_example(1, i, 2) for i in range(30)]
    _write(tmp_path / "a.tfrecord", plain)
    _write(tmp_path / "b.tfrecord.gz", gz)
    assert open(tmp_path / "a.tfrecord", "rb").read(2) != b"\x1f\x8b"
    res = shuffle(ShuffleConfig(input_pattern_list=[str(tmp_path / "a.tfrecord"), str(tmp_path / "b.tfrecord.gz")],
                                output_pattern_prefix=str(tmp_path / "out" / "m"), output_dataset_name="m",
                                num_shards=2))
    assert res["class_counts"] == [50, 0, 30]
    assert sorted(r for p in res["paths"] for r in read_tfrecords(p)) == sorted(plain + gz)
