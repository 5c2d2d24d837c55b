"""blocks/: the publish block registers, saves, loads and publishes (local folder and S3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from blocks import DvtrainStorage, register


def workdir(tmp: Path) -> Path:
    wd = tmp / "wd"
    for rel in ("report.json", "custom/calls.vcf.gz", "custom/examples/test.tfrecord-00000-of-00001.gz",
                "custom/shuffled/train-00000-of-00001.tfrecord.gz", "coverage/merged.bam", "custom/train/best_model.keras"):
        (wd / rel).parent.mkdir(parents=True, exist_ok=True)
        (wd / rel).write_text(rel)
    return wd


def test_publish_skips_bulky_intermediates_and_fetches_back(tmp_path):
    storage = DvtrainStorage(basepath=str(tmp_path / "store"))
    copied = storage.publish(workdir(tmp_path), "2024-01-01-run")
    assert copied == ["custom/calls.vcf.gz", "custom/train/best_model.keras", "report.json"]
    storage.fetch("2024-01-01-run", tmp_path / "back")
    assert (tmp_path / "back" / "custom" / "train" / "best_model.keras").read_text() == "custom/train/best_model.keras"


def test_publish_folder_cannot_climb_out_of_basepath(tmp_path):
    from blocks import StorageError

    storage = DvtrainStorage(basepath=str(tmp_path / "store"))
    for sub in ("../../etc", "runs/../../x", "./x", "a\\..\\b"):
        with pytest.raises(StorageError, match="may not contain"):
            storage.publish(workdir(tmp_path), sub)
    assert not (tmp_path / "etc").exists() and not (tmp_path / "store").exists()


def test_block_registers_saves_loads_and_publishes_to_a_bucket(storage, tmp_path):
    """basepath s3://...: files go through the saved S3Bucket block of that bucket (moto server)."""
    from blocks import resolve

    register()  # needs the API: done here, never at import
    DvtrainStorage(basepath=storage.s3("dvtrain")).save("test-results", overwrite=True)
    published = DvtrainStorage.load("test-results")
    assert published.is_remote and published.url("run1") == storage.s3("dvtrain/run1")
    published.publish(workdir(tmp_path), "run1")
    store, _ = resolve(storage.s3())
    assert store.read_bytes("dvtrain/run1/report.json") == b"report.json"
    assert [store.key_of(i) for i in store.list("dvtrain/run1/")] == [
        "dvtrain/run1/custom/calls.vcf.gz", "dvtrain/run1/custom/train/best_model.keras", "dvtrain/run1/report.json"]
    # a remote workdir publishes too (bucket to bucket)
    DvtrainStorage(basepath=storage.gs("published")).publish(storage.s3("dvtrain/run1"), "copy")
    assert DvtrainStorage(basepath=storage.gs("published")).fetch("copy", tmp_path / "back") is None
    assert (tmp_path / "back" / "report.json").read_text() == "report.json"
