"""What goes into a stage's cache key, one point each (issue 3, "Caching and resume").

The key is: file inputs by content (size + streamed digest, never the path string), the
stage config's other fields, the task's source, and the source of the dvtrain modules the
stage runs. The content/path/index cases live in test_prefect_cache.py; this file adds
mtime, config, code version and concurrent keying.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from dvtrain.config import CoverageConfig, MakeExamplesConfig
from tasks import cache
from tasks.cache import FileContentInputs, dvtrain_modules, module_digest


def write(path: Path, data: str | bytes, mtime_ns: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


@pytest.fixture
def files(tmp_path) -> dict:
    return {
        "bam": write(tmp_path / "in" / "reads.bam", b"BAM\x01" + bytes(range(256)) * 64, mtime_ns=10**18),
        "bai": write(tmp_path / "in" / "reads.bam.bai", b"BAI\x01index", mtime_ns=10**18),
        "bed": write(tmp_path / "in" / "truth.bed", "chr1\t0\t1000\n", mtime_ns=10**18),
        "out": tmp_path / "out" / "confident.bed",
    }


POLICY = FileContentInputs(outputs=("output_bed", "merged_bam"), stage="dvtrain.coverage")


def key(config, policy=POLICY, task_ctx=None) -> str:
    return policy.base_key(task_ctx, {"config": config}, {})


def coverage(files: dict, **changes) -> CoverageConfig:
    fields = dict(reads=[files["bam"]], truth_bed=files["bed"], output_bed=files["out"], min_coverage=2)
    return CoverageConfig(**{**fields, **changes})


def test_touch_keeps_the_key_and_a_content_edit_changes_it(files):
    before = key(coverage(files))
    os.utime(files["bam"], ns=(2 * 10**18, 2 * 10**18))  # touched: same bytes, new mtime
    assert key(coverage(files)) == before
    data = bytearray(files["bam"].read_bytes())
    data[-1] ^= 1  # same size, same path, one bit
    write(files["bam"], bytes(data), mtime_ns=3 * 10**18)
    assert key(coverage(files)) != before


def test_size_is_part_of_the_digest(files):
    before = key(coverage(files))
    write(files["bed"], "chr1\t0\t1000\n\n", mtime_ns=10**18)  # one byte longer, mtime restored
    assert key(coverage(files)) != before


def test_renamed_or_copied_inputs_keep_the_key(files, tmp_path):
    before = key(coverage(files))
    moved = tmp_path / "elsewhere" / "renamed.bam"
    moved.parent.mkdir()
    shutil.copy2(files["bam"], moved)
    shutil.copy2(files["bai"], str(moved) + ".bai")  # its index travels with it
    files["bam"].rename(tmp_path / "in" / "gone.bam")
    assert key(coverage(files, reads=[moved])) == before
    # a path that names no file is not silently keyed as the old content
    assert key(coverage(files)) != before


def test_the_path_string_alone_is_never_the_key(files, tmp_path):
    """Same path, different bytes: different key (Prefect's INPUTS would hit here)."""
    before = key(coverage(files))
    # same size, same path, and the old mtime put back (as cp -p / rsync -t do)
    write(files["bed"], "chr1\t0\t1001\n", mtime_ns=10**18)
    assert key(coverage(files)) != before


@pytest.mark.parametrize("change", [{"min_coverage": 3}, {"merged_bam": "other/merged.bam"}])
def test_stage_config_is_part_of_the_key(files, tmp_path, change):
    if "merged_bam" in change:
        change = {"merged_bam": tmp_path / change["merged_bam"]}
    assert key(coverage(files, **change)) != key(coverage(files))


def test_every_make_examples_field_is_keyed(files, tmp_path):
    base = dict(mode="calling", ref=files["bed"], reads=[files["bam"]], examples=str(tmp_path / "x.tfrecord@2.gz"))
    policy = FileContentInputs(outputs=("examples",), stage="dvtrain.make_examples")
    keys = {key(MakeExamplesConfig(**{**base, **c}), policy) for c in (
        {}, {"task": 1}, {"regions": ["chr1"]}, {"seed": 1}, {"channels": []}, {"vsc_min_fraction_snps": 0.2},
        {"pileup_image_height": 50}, {"examples": str(tmp_path / "y.tfrecord@2.gz")}, {"vsc_min_snp_lod": 2.5},
    )}
    assert len(keys) == 9


def _fake_dvtrain(tmp_path: Path, monkeypatch) -> Path:
    """A copy of dvtrain's sources that tasks.cache reads instead of the installed ones."""
    src = Path(cache._source("dvtrain.coverage")).parent
    copy = tmp_path / "dvtrain"
    shutil.copytree(src, copy, ignore=shutil.ignore_patterns("__pycache__"))
    real = cache._source

    def source(name: str):
        if name == "dvtrain" or name.startswith("dvtrain."):
            p = copy.joinpath(*name.split(".")[1:])
            return p / "__init__.py" if p.is_dir() else p.with_suffix(".py") if p.with_suffix(".py").exists() else None
        return real(name)

    monkeypatch.setattr(cache, "_source", source)
    monkeypatch.setattr(cache, "_MODULE_DIGESTS", {})
    return copy


def test_code_version_is_part_of_the_key(files, tmp_path, monkeypatch):
    copy = _fake_dvtrain(tmp_path, monkeypatch)
    used = dvtrain_modules("dvtrain.coverage")
    assert {"dvtrain.coverage", "dvtrain.fileio", "dvtrain.errors"} <= set(used)
    before = key(coverage(files))

    def edited(module: str) -> str:
        path = copy / (module.split(".", 1)[1].replace(".", "/") + ".py")
        original = path.read_text()
        path.write_text(original + "\n# a code change\n")
        monkeypatch.setattr(cache, "_MODULE_DIGESTS", {})  # the next process recomputes
        try:
            return key(coverage(files))
        finally:
            path.write_text(original)
            monkeypatch.setattr(cache, "_MODULE_DIGESTS", {})

    assert edited("dvtrain.coverage") != before  # the stage itself
    assert edited("dvtrain.fileio") != before  # a module it imports
    unused = next(m for m in ("dvtrain.train", "dvtrain.call", "dvtrain.simulate") if m not in used)
    assert edited(unused) == before  # code the stage never runs does not invalidate it
    assert key(coverage(files)) == before


def test_task_source_is_part_of_the_key(files):
    def task_v1(config):
        return config

    def task_v2(config):
        return {"config": config}

    k1 = key(coverage(files), task_ctx=SimpleNamespace(task=SimpleNamespace(source_code="def a(): pass")))
    k2 = key(coverage(files), task_ctx=SimpleNamespace(task=SimpleNamespace(source_code="def a(): return 1")))
    assert k1 != k2
    assert key(coverage(files), task_ctx=SimpleNamespace(task=task_v1)) != key(
        coverage(files), task_ctx=SimpleNamespace(task=task_v2))


def test_concurrent_shards_compute_the_same_key(files, monkeypatch):
    """Shards key in parallel threads; the module digest must not race (CPython 3.11's
    ast.parse is not thread-safe)."""
    monkeypatch.setattr(cache, "_MODULE_DIGESTS", {})
    results, errors = [], []

    def one():
        try:
            results.append(module_digest("dvtrain.train"))
        except Exception as e:  # pragma: no cover - the failure being tested
            errors.append(e)

    for _ in range(3):
        cache._MODULE_DIGESTS.clear()
        threads = [threading.Thread(target=one) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors and len(set(results)) == 1


def test_a_web_url_in_a_config_is_keyed_as_text():
    """Only s3:// and gs:// are object stores: the https:// URL dv_config.py is downloaded
    from (DeepVariantEngineConfig.train_config_url) must key as itself, not fail the key
    (a failed key meant no caching: the case study's provenance.json was rewritten)."""
    from dvtrain.config import CaseStudyConfig, DeepVariantEngineConfig

    url = DeepVariantEngineConfig().train_config_url
    assert cache.fingerprint(url) == url
    cfg = CaseStudyConfig(reference="r.fa", truth_vcf="t.vcf.gz", truth_bed="t.bed", reads=["a.bam"],
                          baseline={"reads": ["g.bam"]}, workdir="wd")
    assert cache.fingerprint(cfg)["deepvariant"]["train_config_url"] == url
