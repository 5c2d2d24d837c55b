"""End to end on object storage: inputs on S3 (moto), workdir on GCS (emulator), the real
case-study flow; then again, all cached. Slow (trains two small models):
``pytest -m slow tests/test_storage_case_study.py``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dvtrain.config import BaselineConfig, CaseStudyConfig

pytestmark = pytest.mark.slow


def test_case_study_reads_s3_writes_gcs_then_cached(storage, sim_dataset, tmp_path, monkeypatch):
    from blocks import resolve
    from blocks.storage import TEMP_MARK
    from flows import custom_model_training

    monkeypatch.setenv("DVTRAIN_SCRATCH", str(tmp_path / "scratch"))
    data = Path(sim_dataset["ref"]).parent  # the simulated dataset's folder, uploaded as is
    s3, _ = resolve(storage.s3())
    for f in sorted(p for p in data.rglob("*") if p.is_file()):
        s3.upload(f, f"e2e/data/{f.relative_to(data).as_posix()}")
    inp = lambda name: storage.s3(f"e2e/data/{name}")  # noqa: E731

    config = CaseStudyConfig(
        reference=inp("ref.fa"), truth_vcf=inp("truth.vcf.gz"), truth_bed=inp("truth.bed"),
        reads=[inp("lowcov.bam")], baseline=BaselineConfig(reads=[inp("generic.bam")]),
        workdir=storage.gs("e2e/run1"), shards=2, max_concurrency=2, shuffle_shards=2,
        baseline_epochs=1, custom_epochs=1, sample_name="SIM001", seed=7, dataset_json=inp("dataset.json"),
        storage_blocks={storage.gs(): storage.gcs_block},  # explicit for GCS, by bucket name for S3
        peers=[],  # peer callers on a bucket workdir are not covered here yet
    )
    report = custom_model_training(config)
    assert {r["model"] for r in report["rows"]} == {"baseline", "custom"}
    assert report["dataset"]["generator"] == "dvtrain.simulate"

    gs, _ = resolve(storage.gs())
    keys = {gs.key_of(i): i for i in gs.list("e2e/run1/")}
    for rel in ("report.json", "report.md", "coverage/confident.bed", "baseline/calls.vcf.gz", "baseline/calls.vcf.gz.tbi",
                "custom/calls.vcf.gz", "custom/calls.vcf.gz.tbi", "custom/eval.summary.csv",
                "custom/train/best_model.keras", "custom/shuffled/train.dataset_config.pbtxt",
                "custom/examples/train.tfrecord-00001-of-00002.gz.example_info.json"):
        assert f"e2e/run1/{rel}" in keys, rel
    assert not [k for k in keys if TEMP_MARK in k]
    pbtxt = gs.read_bytes("e2e/run1/custom/shuffled/train.dataset_config.pbtxt").decode()
    assert f'tfrecord_path: "{storage.gs("e2e/run1/custom/shuffled/train-?????-of-00002.tfrecord.gz")}"' in pbtxt
    assert json.loads(gs.read_bytes("e2e/run1/report.json"))["rows"] == json.loads(json.dumps(report["rows"]))
    assert not list((tmp_path / "scratch" / "out").iterdir())

    # Same inputs again: every task is a cache hit (keys from object metadata), nothing is rewritten.
    assert custom_model_training(config) == report
    again = {gs.key_of(i): i for i in gs.list("e2e/run1/")}
    assert {k: i.generation for k, i in again.items()} == {k: i.generation for k, i in keys.items()}
