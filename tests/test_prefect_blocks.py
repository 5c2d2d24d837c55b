"""blocks/: the storage block registers, saves, loads and publishes (fsspec memory:// and local)."""

from __future__ import annotations

from pathlib import Path

import fsspec

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


def test_block_registers_saves_and_loads_with_a_remote_url(prefect_server, tmp_path):
    register()  # needs the API: done here, never at import
    DvtrainStorage(basepath="memory://bucket/dvtrain", settings={"skip_instance_cache": False}).save("test-results", overwrite=True)
    storage = DvtrainStorage.load("test-results")
    assert storage.is_remote and storage.settings.get_secret_value() == {"skip_instance_cache": False}
    storage.publish(workdir(tmp_path), "run1")
    assert fsspec.filesystem("memory").cat("/bucket/dvtrain/run1/report.json") == b"report.json"
    assert storage.url("run1") == "memory://bucket/dvtrain/run1"
