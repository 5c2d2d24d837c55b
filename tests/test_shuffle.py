"""Global shuffle with Apache Beam on an explicit local runner."""

from __future__ import annotations

import collections

import pytest

from dvtrain.config import MakeExamplesConfig, ShuffleConfig
from dvtrain.errors import DvtrainError, InputError
from dvtrain.example_proto import decode_example
from dvtrain.fileio import read_tfrecords
from dvtrain.make_examples import make_examples
from dvtrain.shuffle import read_dataset_config, shuffle


@pytest.fixture(scope="module")
def examples(tiny_stage, tmp_path_factory):
    out = tmp_path_factory.mktemp("shuf")
    common = tiny_stage["training"]
    for task in range(3):
        make_examples(MakeExamplesConfig(examples=str(out / "three.tfrecord@3.gz"), task=task, **common))
    make_examples(MakeExamplesConfig(examples=str(out / "one.tfrecord@1.gz"), **common))
    calling = make_examples(MakeExamplesConfig(examples=str(out / "calling.tfrecord@1.gz"), **tiny_stage["calling"]))
    return out, calling["path"]


def _records(paths):
    return [r for p in paths for r in read_tfrecords(p)]


def test_shuffle_keeps_every_record_and_counts_classes(examples, tmp_path):
    src, _ = examples
    res = shuffle(ShuffleConfig(input_pattern_list=[str(src / "three.tfrecord@3.gz")],
                                output_pattern_prefix=str(tmp_path / "train"), output_dataset_name="train", num_shards=2))
    inputs = _records(sorted(src.glob("three.tfrecord-*.gz")))
    outputs = _records(res["paths"])
    assert collections.Counter(inputs) == collections.Counter(outputs)
    assert outputs != inputs  # order changed
    labels = collections.Counter(decode_example(r)["label"][0] for r in outputs)
    assert res["class_counts"] == [labels[0], labels[1], labels[2]] and res["num_examples"] == len(inputs)
    cfg = read_dataset_config(res["dataset_config"])
    assert cfg["name"] == "train" and cfg["num_examples"] == len(inputs) and cfg["class_counts"] == res["class_counts"]
    text = open(res["dataset_config"]).read()
    assert 'tfrecord_path: "' in text and "# class1: 14" in text
    assert (tmp_path / "train.example_info.json").exists()


def test_output_depends_on_records_and_seed_only(examples, tmp_path):
    src, _ = examples
    def run(pattern, prefix, seed=7, runner="FnApiRunner"):
        return shuffle(ShuffleConfig(input_pattern_list=[pattern], output_pattern_prefix=str(tmp_path / prefix),
                                     output_dataset_name="x", num_shards=2, seed=seed, runner=runner))
    a = run(str(src / "three.tfrecord@3.gz"), "a")
    b = run(str(src / "one.tfrecord@1.gz"), "b", runner="BundleBasedDirectRunner")
    c = run(str(src / "one.tfrecord@1.gz"), "c", seed=8)
    for pa, pb in zip(a["paths"], b["paths"]):
        assert open(pa, "rb").read() == open(pb, "rb").read()  # input sharding and runner do not matter
    assert _records(a["paths"]) != _records(c["paths"])  # the seed does


def test_unlabelled_examples_are_rejected(examples, tmp_path):
    _, calling = examples
    with pytest.raises(DvtrainError, match="calling.tfrecord-00000-of-00001.gz: an example has no label"):
        shuffle(ShuffleConfig(input_pattern_list=[calling], output_pattern_prefix=str(tmp_path / "u"),
                              output_dataset_name="u", num_shards=1))
    assert not list(tmp_path.glob("u*"))  # no partial shards or config left behind


def test_missing_input_is_reported(tmp_path):
    with pytest.raises(InputError, match="nothing.tfrecord-00000-of-00002.gz: does not exist"):
        shuffle(ShuffleConfig(input_pattern_list=[str(tmp_path / "nothing.tfrecord@2.gz")],
                              output_pattern_prefix=str(tmp_path / "o"), output_dataset_name="o"))
