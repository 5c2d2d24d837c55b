"""The Beam shuffle takes any runner and its pipeline options (issue 3, scale-out).

Distributed runners (Dataflow, Spark, Flink) need a cluster; here we check that options
reach the pipeline (a multi-process FnApiRunner gives the same bytes as the default),
that every documented runner name resolves in Beam, and the CLI passthrough.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from dvtrain.cli import main
from dvtrain.config import ShuffleConfig
from dvtrain.errors import DvtrainError
from dvtrain.example_proto import encode_example
from dvtrain.fileio import TFRecordWriter
from dvtrain.shuffle import LOCAL_RUNNERS, _runner, pipeline_options, shuffle, unknown_pipeline_options


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Two labelled example shards (synthetic, 150 records)."""
    out = tmp_path_factory.mktemp("runner-examples")
    for shard in range(2):
        with TFRecordWriter(out / f"ex.tfrecord-{shard:05d}-of-00002.gz") as w:
            for i in range(75):
                n = shard * 75 + i
                w.write(encode_example({
                    "image/encoded": [bytes([n % 251]) * 12], "image/shape": [2, 2, 3],
                    "label": [n % 3], "locus": [f"chr1:{n + 1}-{n + 1}".encode()],
                }))
    return str(out / "ex.tfrecord@2.gz")


def run(shards: str, prefix, **kw) -> dict:
    return shuffle(ShuffleConfig(input_pattern_list=[shards], output_pattern_prefix=str(prefix),
                                 output_dataset_name="train", num_shards=3, seed=5, **kw))


def contents(result: dict) -> list[bytes]:
    return [open(p, "rb").read() for p in result["paths"]]


def test_pipeline_options_reach_the_pipeline_and_do_not_change_the_output(shards, tmp_path, monkeypatch):
    import apache_beam as beam

    seen = []

    class Spy(beam.Pipeline):
        def __init__(self, runner=None, options=None, **kw):
            seen.append((runner, options.get_all_options()))
            super().__init__(runner=runner, options=options, **kw)

    default = run(shards, tmp_path / "default")
    monkeypatch.setattr(beam, "Pipeline", Spy)
    opts = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
    multi = run(shards, tmp_path / "multi", pipeline_options=opts)
    assert len(seen) == 1
    runner, options = seen[0]
    assert type(runner).__name__ == "FnApiRunner"
    assert (options["direct_num_workers"], options["direct_running_mode"]) == (2, "multi_processing")
    assert multi["num_examples"] == default["num_examples"] == 150
    assert contents(multi) == contents(default)  # two worker processes, same bytes


def test_local_default_is_one_in_process_worker(shards):
    cfg = ShuffleConfig(input_pattern_list=[shards], output_pattern_prefix="p", output_dataset_name="t")
    assert cfg.runner == "FnApiRunner" and cfg.pipeline_options == []
    assert pipeline_options(cfg).get_all_options()["direct_num_workers"] == 1


@pytest.mark.parametrize("name", ["DataflowRunner", "SparkRunner", "FlinkRunner", "PortableRunner"])
def test_distributed_runner_names_are_handed_to_beam(name):
    from apache_beam.runners.runner import create_runner

    assert _runner(name) == name  # Beam builds it from the name, with the pipeline options
    assert type(create_runner(name)).__name__ == name


def test_documented_options_are_beam_options():
    documented = [
        "--project=p", "--region=europe-west1", "--temp_location=gs://b/tmp", "--staging_location=gs://b/staging",
        "--num_workers=4", "--max_num_workers=16", "--sdk_container_image=img", "--setup_file=./setup.py",
        "--extra_package=dist/dvtrain-0.1.0.tar.gz", "--spark_master_url=spark://host:7077",
        "--spark_rest_url=http://host:6066", "--spark_submit_uber_jar", "--flink_master=host:8081",
        "--flink_version=1.19", "--parallelism=8", "--environment_type=LOOPBACK", "--environment_config=img",
        "--job_endpoint=localhost:8099", "--direct_num_workers=2", "--direct_running_mode=multi_processing",
    ]
    assert unknown_pipeline_options(documented) == []
    doc = (Path(__file__).resolve().parents[1] / "docs" / "shuffle-runners.md").read_text()
    for line in documented:  # and they are all spelled as in docs/shuffle-runners.md
        assert line.split("=")[0] in doc, line
    assert set(LOCAL_RUNNERS) == {"FnApiRunner", "BundleBasedDirectRunner"}


def test_typos_and_bad_values_fail_before_any_work(shards, tmp_path):
    with pytest.raises(DvtrainError, match=r"--direct_num_worker=2 \(did you mean --direct_num_workers\?\)"):
        run(shards, tmp_path / "typo", pipeline_options=["--direct_num_worker=2"])
    with pytest.raises(DvtrainError, match="invalid choice: 'sideways'"):
        run(shards, tmp_path / "bad", pipeline_options=["--direct_running_mode=sideways"])
    assert not list(tmp_path.glob("*"))


@pytest.mark.parametrize("runner", ["DirectRunner", "direct"])
def test_direct_runner_is_refused_with_a_reason(runner):
    with pytest.raises(ValidationError, match="Prism"):
        ShuffleConfig(input_pattern_list=["x"], output_pattern_prefix="p", output_dataset_name="t", runner=runner)


def test_options_must_be_flags_and_not_the_runner():
    with pytest.raises(ValidationError, match="--flag=value"):
        ShuffleConfig(input_pattern_list=["x"], output_pattern_prefix="p", output_dataset_name="t",
                      pipeline_options=["project=p"])
    with pytest.raises(ValidationError, match="runner"):
        ShuffleConfig(input_pattern_list=["x"], output_pattern_prefix="p", output_dataset_name="t",
                      pipeline_options=["--runner=SparkRunner"])


def test_cli_passes_unknown_flags_to_beam(shards, tmp_path, capsys):
    default = run(shards, tmp_path / "api")
    argv = ["shuffle", "--input_pattern_list", shards, "--output_pattern_prefix", str(tmp_path / "cli"),
            "--output_dataset_name", "train", "--num_shards", "3", "--seed", "5", "--runner", "FnApiRunner",
            "--direct_num_workers", "2", "--direct_running_mode=multi_threading"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert [open(p, "rb").read() for p in out["paths"]] == contents(default)

    assert main(argv[:-3] + ["--direct_num_worker=2"]) == 2
    assert "did you mean --direct_num_workers" in capsys.readouterr().err
    assert main(argv[:-5] + ["--runner", "DirectRunner"]) == 2
    err = capsys.readouterr().err
    assert "Prism" in err and len(err.strip().splitlines()) == 1



# ------------------------------------------------------------------ mixed shapes are refused, for good
def _shard(path: Path, shape: list[int], n: int = 3) -> None:
    with TFRecordWriter(path) as w:
        for i in range(n):
            w.write(encode_example({"image/encoded": [bytes(shape[0] * shape[1] * shape[2])], "image/shape": shape,
                                    "label": [i % 3]}))


def test_mixed_example_shapes_raise_shape_mismatch(tmp_path):
    from dvtrain.errors import ShapeMismatchError, is_permanent
    from dvtrain.train import load_examples

    _shard(tmp_path / "a.tfrecord-00000-of-00002.gz", [2, 2, 7])
    _shard(tmp_path / "a.tfrecord-00001-of-00002.gz", [2, 2, 6])
    with pytest.raises(ShapeMismatchError, match=r"image shape \[2, 2, 6\] differs from \[2, 2, 7\]") as err:
        load_examples(str(tmp_path / "a.tfrecord@2.gz"))
    assert is_permanent(err.value)  # a retry would read the same files

    for i, channels in enumerate((7, 6)):
        (tmp_path / f"a.tfrecord-0000{i}-of-00002.gz.example_info.json").write_text(
            json.dumps({"version": 1, "shape": [2, 2, channels], "channels": list(range(channels))}))
    with pytest.raises(ShapeMismatchError, match="mixed image shapes"):
        shuffle(ShuffleConfig(input_pattern_list=[str(tmp_path / "a.tfrecord@2.gz")],
                              output_pattern_prefix=str(tmp_path / "out"), output_dataset_name="x"))
