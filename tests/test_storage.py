"""Storage: URIs, block resolution, atomic uploads, staging and remote cache keys, against
real servers on loopback (moto S3, GCS emulator; see conftest_storage.py)."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest
import yaml

from dvtrain import uri as U
from dvtrain.config import CaseStudyConfig, CoverageConfig, EvaluateConfig, MakeExamplesConfig, load_case_study
from dvtrain.errors import DvtrainError, InputError


# ------------------------------------------------------------------ no servers
def test_uri_helpers():
    assert U.is_remote("s3://b/k") and U.is_remote("gs://b/k")
    assert not U.is_remote("/a/b") and not U.is_remote("file:///a/b") and not U.is_remote(Path("/a"))
    assert U.split("gs://bucket/a/b.bam") == ("gs", "bucket", "a/b.bam")
    assert U.join("s3://b/run1", "custom", "calls.vcf.gz") == "s3://b/run1/custom/calls.vcf.gz"
    assert U.join("s3://b", "x") == "s3://b/x"
    assert U.join("/w", "custom", "x") == Path("/w/custom/x")
    assert U.join("file:///w", "x") == Path("/w/x")
    assert U.to_path("file:///data/x%20y.bam") == Path("/data/x y.bam")
    assert U.name("s3://b/a/x.bam") == "x.bam"
    with pytest.raises(ValueError, match="unsupported URI scheme"):
        U.location("http://host/x")
    with pytest.raises(ValueError, match="no bucket"):
        U.split("s3:///x")


def test_configs_keep_uris_unmangled(tmp_path):
    """pydantic's Path would turn s3://b/k into s3:/b/k; Location keeps URIs as str."""
    cfg = CaseStudyConfig(
        reference="s3://b/ref.fa", truth_vcf="gs://g/truth.vcf.gz", truth_bed="file:///d/truth.bed",
        reads=["s3://b/a.bam", "/d/b.bam"], baseline={"model": "gs://g/m.keras"}, workdir="gs://g/run1",
        storage_blocks={"s3://b": "my-s3"},
    )
    assert cfg.reference == "s3://b/ref.fa" and cfg.truth_bed == Path("/d/truth.bed")
    assert cfg.reads == ["s3://b/a.bam", Path("/d/b.bam")] and cfg.workdir == "gs://g/run1"
    assert CaseStudyConfig.model_validate_json(cfg.model_dump_json()) == cfg
    assert CaseStudyConfig.model_json_schema()["properties"]["reference"]["type"] == "string"
    cov = CoverageConfig(reads=["s3://b/a.bam"], truth_bed="/d/t.bed", output_bed="gs://g/run1/coverage/confident.bed")
    assert cov.output_bed == "gs://g/run1/coverage/confident.bed" and cov.truth_bed == Path("/d/t.bed")
    # YAML: relative paths resolve against the YAML's folder, URIs are left alone
    (tmp_path / "cs.yaml").write_text(yaml.safe_dump({
        "reference": "ref.fa", "truth_vcf": "s3://b/t.vcf.gz", "truth_bed": "t.bed", "reads": ["gs://g/r.bam"],
        "baseline": {"model": "s3://b/m.keras"}, "workdir": "s3://b/run2",
        "augment": [{"reads": ["extra/g.bam", "s3://b/h.bam"], "downsample_fraction": 0.1}]}))
    loaded = load_case_study(tmp_path / "cs.yaml")
    assert loaded.augment[0].reads == [tmp_path / "extra" / "g.bam", "s3://b/h.bam"]
    assert loaded.reference == tmp_path / "ref.fa" and loaded.truth_vcf == "s3://b/t.vcf.gz"
    assert loaded.reads == ["gs://g/r.bam"] and loaded.workdir == "s3://b/run2" and loaded.baseline.model == "s3://b/m.keras"


def test_local_paths_pass_through_staging_untouched(tmp_path):
    from tasks.staging import staged

    cfg = EvaluateConfig(truth_vcf=tmp_path / "t.vcf.gz", query_vcf=tmp_path / "q.vcf.gz", output_prefix=tmp_path / "e")
    seen = []
    assert staged(lambda c: seen.append(c) or {"p": str(c.output_prefix)}, cfg, outputs=("output_prefix",)) == {"p": str(tmp_path / "e")}
    assert seen == [cfg] and seen[0] is cfg


# ------------------------------------------------------------------ resolver
def test_resolve_by_bucket_explicit_map_and_missing_block(storage, tmp_path):
    from prefect.filesystems import LocalFileSystem
    from prefect_aws import AwsCredentials, S3Bucket

    from blocks import StorageError, clear_cache, resolve
    from blocks.storage import GcsStore, LocalStore, S3Store

    store, key = resolve(storage.s3("runs/a.bam"))
    assert isinstance(store, S3Store) and store.block_name == storage.s3_block and key == "runs/a.bam"
    store, key = resolve(storage.gs("x/y"))
    assert isinstance(store, GcsStore) and store.block_name == storage.gcs_block and key == "x/y"

    # an explicit mapping wins (longest prefix), e.g. a prefix served from a local folder
    LocalFileSystem(basepath=str(tmp_path / "mirror")).save("dvtrain-test-mirror", overwrite=True)
    mapping = {storage.s3(): storage.s3_block, storage.s3("mirrored"): "local-file-system/dvtrain-test-mirror"}
    store, key = resolve(storage.s3("mirrored/sub/f.txt"), mapping)
    assert isinstance(store, LocalStore)
    (tmp_path / "f.txt").write_text("hello")
    store.upload(tmp_path / "f.txt", key)
    assert (tmp_path / "mirror" / "sub" / "f.txt").read_text() == "hello"
    assert isinstance(resolve(storage.s3("other"), mapping)[0], S3Store)

    # two blocks for one bucket: ambiguous unless storage_blocks names one
    S3Bucket(bucket_name=storage.s3_bucket, credentials=AwsCredentials.load("dvtrain-test-aws")).save("dvtrain-test-s3-twin", overwrite=True)
    clear_cache()
    try:
        with pytest.raises(StorageError, match="several S3Bucket blocks"):
            resolve(storage.s3("k"))
        assert resolve(storage.s3("k"), {storage.s3(): "dvtrain-test-s3-twin"})[0].block_name == "dvtrain-test-s3-twin"
    finally:
        S3Bucket.delete("dvtrain-test-s3-twin")
        clear_cache()

    for uri, hint in (("s3://no-such-bucket/k", "S3Bucket(bucket_name='no-such-bucket'"),
                      ("gs://no-such-bucket/k", "GcsBucket(bucket='no-such-bucket'")):
        with pytest.raises(StorageError) as err:
            resolve(uri)
        msg = str(err.value)
        assert "\n" not in msg and uri.rsplit("/", 1)[0] in msg and hint in msg and "storage_blocks" in msg
    with pytest.raises(StorageError, match="cannot be loaded"):
        resolve(storage.s3("k"), {storage.s3(): "no-such-block"})


# ------------------------------------------------------------------ stores
@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_round_trip_stat_list_and_no_temp_keys(storage, tmp_path, scheme):
    from blocks import resolve
    from blocks.storage import TEMP_MARK

    base = getattr(storage, scheme)("roundtrip")
    store, _ = resolve(base)
    src = tmp_path / "data.bin"
    src.write_bytes(os.urandom(100_000))
    info = store.upload(src, "roundtrip/a/data.bin")
    assert info.size == 100_000 and info.uri == f"{base}/a/data.bin"
    assert info.etag and (info.md5 or scheme == "s3")
    assert store.stat("roundtrip/a/data.bin") == info
    assert store.stat("roundtrip/a/missing") is None and not store.exists("roundtrip/a/missing")
    store.download("roundtrip/a/data.bin", tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()
    with pytest.raises(InputError, match="does not exist"):
        store.download("roundtrip/a/missing", tmp_path / "x")
    src.write_bytes(b"second version")
    assert store.upload(src, "roundtrip/a/data.bin").size == len(b"second version")
    assert store.read_bytes("roundtrip/a/data.bin") == b"second version"
    keys = [store.key_of(i) for i in store.list("roundtrip/")]
    assert keys == ["roundtrip/a/data.bin"] and not any(TEMP_MARK in k for k in keys)


@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_upload_is_atomic_for_a_concurrent_reader(storage, tmp_path, scheme):
    """A reader polling the final key during a big (multipart/resumable) upload sees the old
    object, the new one, or nothing: never a partial object. The bytes go to a temporary key."""
    from blocks import resolve

    store, key = resolve(getattr(storage, scheme)("atomic/big.bin"))
    old, new = tmp_path / "old.bin", tmp_path / "new.bin"
    old.write_bytes(os.urandom(1 << 20))
    new.write_bytes(os.urandom(12 << 20))  # above the 8 MB multipart / resumable thresholds
    digests = {hashlib.md5(p.read_bytes()).hexdigest() for p in (old, new)}
    put_keys = []
    real_put = store._put
    store._put = lambda path, k: (put_keys.append(k), real_put(path, k))[1]  # instance-level spy
    try:
        store.upload(old, key)
        seen, done = [], threading.Event()

        def reader():
            while not done.is_set():
                info = store.stat(key)
                if info is not None:
                    try:
                        seen.append(hashlib.md5(store.read_bytes(key)).hexdigest())
                    except InputError:
                        pass

        t = threading.Thread(target=reader)
        t.start()
        try:
            store.upload(new, key)
            store.download(key, tmp_path / "final.bin")  # and one more read after the swap
        finally:
            done.set()
            t.join()
    finally:
        del store._put
    assert seen and set(seen) <= digests
    assert hashlib.md5((tmp_path / "final.bin").read_bytes()).hexdigest() == hashlib.md5(new.read_bytes()).hexdigest()
    assert all(k != key and ".tmp-" in k for k in put_keys) and len(put_keys) == 2
    assert [store.key_of(i) for i in store.list("atomic/")] == ["atomic/big.bin"]


# ------------------------------------------------------------------ cache keys and staging
@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_remote_cache_key_follows_object_content(storage, tmp_path, scheme):
    from blocks import resolve
    from tasks.cache import fingerprint, missing_paths

    loc = getattr(storage, scheme)
    store, _ = resolve(loc("keys/x"))
    bam, bai = tmp_path / "r.bam", tmp_path / "r.bam.bai"
    bam.write_bytes(b"bam v1")
    bai.write_bytes(b"index v1")
    for k, p in (("keys/r.bam", bam), ("keys/r.bam.bai", bai), ("keys/copy/r.bam", bam), ("keys/copy/r.bam.bai", bai)):
        store.upload(p, k)

    def key(uri: str) -> dict:
        return fingerprint(CoverageConfig(reads=[uri], truth_bed="/t.bed", output_bed=loc("keys/out.bed")),
                           frozenset({"output_bed", "merged_bam"}))

    first = key(loc("keys/r.bam"))
    assert first["reads"][0]["remote"]["files"][0]["object"]["size"] == len(b"bam v1")
    assert first["output_bed"] == {"output": loc("keys/out.bed")}
    assert key(loc("keys/r.bam")) == first                       # same object: same key
    assert key(loc("keys/copy/r.bam")) == first                  # identical copy elsewhere: same key
    bam.write_bytes(b"bam v2")
    store.upload(bam, "keys/r.bam")
    assert key(loc("keys/r.bam")) != first                       # rewritten object: new key
    bai.write_bytes(b"index v2")
    store.upload(bai, "keys/copy/r.bam.bai")
    assert key(loc("keys/copy/r.bam")) != first                  # a changed index counts too

    assert missing_paths({"bed": loc("keys/r.bam"), "n": 3}) == []
    assert missing_paths({"bed": loc("keys/gone.bed")}) == [loc("keys/gone.bed")]


def test_staged_stage_downloads_inputs_uploads_outputs_and_maps_back(storage, tmp_path, monkeypatch):
    """Inputs on S3 (a shard spec with info files, an indexed file, a pbtxt listing shards),
    outputs on GCS; the stage itself sees local paths only."""
    from blocks import resolve
    from blocks.storage import TEMP_MARK
    from tasks.staging import staged

    monkeypatch.setenv("DVTRAIN_SCRATCH", str(tmp_path / "scratch"))
    s3, _ = resolve(storage.s3())
    gs, _ = resolve(storage.gs())
    src = tmp_path / "src"
    src.mkdir()
    files = {
        "stage/ref.fa": b">q\nACGT\n", "stage/ref.fa.fai": b"q\t4\t3\t4\t5\n",
        "stage/ex.tfrecord-00000-of-00002.gz": b"shard0", "stage/ex.tfrecord-00001-of-00002.gz": b"shard1",
        "stage/ex.tfrecord-00000-of-00002.gz.example_info.json": b"{}", "stage/ex.tfrecord-00001-of-00002.gz.example_info.json": b"{}",
        "stage/ds/train-00000-of-00001.tfrecord.gz": b"shuffled",
        "stage/ds/train.dataset_config.pbtxt": f'name: "train"\ntfrecord_path: "{storage.s3("stage/ds/train-?????-of-00001.tfrecord.gz")}"\n'.encode(),
    }
    for k, data in files.items():
        (src / "f").write_bytes(data)
        s3.upload(src / "f", k)

    calls = []

    def stage(cfg: MakeExamplesConfig) -> dict:
        """Reads its inputs, writes an output shard + info + an index, as a real stage would."""
        assert all(not U.is_remote(v) for v in (cfg.ref, *cfg.reads, cfg.examples, *cfg.regions))
        assert Path(str(cfg.ref) + ".fai").read_bytes() == files["stage/ref.fa.fai"]
        from dvtrain.fileio import sharded_paths

        shards = sharded_paths(cfg.regions[0])
        assert [Path(p).read_bytes() for p in shards] == [b"shard0", b"shard1"]
        assert all(Path(p + ".example_info.json").exists() for p in shards)
        pbtxt = Path(cfg.regions[1]).read_text()
        pattern = pbtxt.split('tfrecord_path: "')[1].split('"')[0]
        assert not U.is_remote(pattern) and Path(pattern.replace("?????", "00000")).read_bytes() == b"shuffled"
        out = sharded_paths(cfg.examples)[cfg.task]
        Path(out).write_bytes(b"examples")
        Path(out + ".example_info.json").write_text("{}")
        Path(out).with_name("config.pbtxt").write_text(f'tfrecord_path: "{Path(out).parent}/x-?????-of-00001.gz"\n')
        calls.append(cfg)
        return {"path": out, "example_info": out + ".example_info.json", "n": 1}

    cfg = MakeExamplesConfig(
        mode="calling", ref=storage.s3("stage/ref.fa"), reads=[storage.s3("stage/ref.fa")],
        examples=storage.gs("out/ex.tfrecord@2.gz"), task=1,
        regions=[storage.s3("stage/ex.tfrecord@2.gz"), storage.s3("stage/ds/train.dataset_config.pbtxt")],
    )
    out = staged(stage, cfg, outputs=("examples",))
    assert out == {"path": storage.gs("out/ex.tfrecord-00001-of-00002.gz"),
                   "example_info": storage.gs("out/ex.tfrecord-00001-of-00002.gz.example_info.json"), "n": 1}
    keys = [gs.key_of(i) for i in gs.list("out/")]
    assert keys == ["out/config.pbtxt", "out/ex.tfrecord-00001-of-00002.gz", "out/ex.tfrecord-00001-of-00002.gz.example_info.json"]
    assert gs.read_bytes("out/config.pbtxt").decode() == f'tfrecord_path: "{storage.gs("out")}/x-?????-of-00001.gz"\n'
    assert not list((tmp_path / "scratch" / "out").iterdir())  # private output folder removed

    # a second run reuses the downloads (same versions); a changed object is fetched again
    cached = tmp_path / "scratch" / "objects" / "s3" / storage.s3_bucket / "stage" / "ref.fa"
    stamp = cached.stat().st_mtime_ns
    staged(stage, cfg, outputs=("examples",))
    assert cached.stat().st_mtime_ns == stamp
    (src / "f").write_bytes(b">q\nACGA\n")
    s3.upload(src / "f", "stage/ref.fa")
    staged(stage, cfg, outputs=("examples",))
    assert cached.read_bytes() == b">q\nACGA\n"
    assert not any(TEMP_MARK in gs.key_of(i) for i in gs.list(""))

    with pytest.raises(InputError, match="does not exist"):
        staged(stage, cfg.model_copy(update={"ref": storage.s3("stage/nope.fa")}), outputs=("examples",))


def test_scratch_cache_stays_under_its_limit_and_dvtrain_clean_empties_it(storage, tmp_path, monkeypatch):
    """Downloads are pruned to DVTRAIN_SCRATCH_LIMIT, least recently used first, never while
    a running stage uses them; `dvtrain clean` removes what no stage uses."""
    from blocks import resolve
    from dvtrain import scratch
    from dvtrain.cli import main
    from tasks.staging import staged

    base = tmp_path / "scratch"
    monkeypatch.setenv("DVTRAIN_SCRATCH", str(base))
    monkeypatch.setenv("DVTRAIN_SCRATCH_LIMIT", "2500")  # bytes: room for two of the three inputs
    s3, _ = resolve(storage.s3())
    for name in "abc":
        (tmp_path / "f").write_bytes(name.encode() * 1000)
        s3.upload(tmp_path / "f", f"lim/{name}.bam")
    cached = {n: base / "objects" / "s3" / storage.s3_bucket / "lim" / f"{n}.bam" for n in "abc"}

    def uses(*names):
        return MakeExamplesConfig(mode="calling", ref=storage.s3(f"lim/{names[0]}.bam"),
                                  reads=[storage.s3(f"lim/{n}.bam") for n in names], examples=str(tmp_path / "e@1.gz"))

    def stage(cfg):
        seen = {Path(p).name[0]: Path(p).read_bytes()[:1] for p in [cfg.ref, *cfg.reads]}
        return {"seen": sorted(seen)}

    assert staged(stage, uses("a"))["seen"] == ["a"]
    assert staged(stage, uses("b"))["seen"] == ["b"]
    assert staged(stage, uses("c"))["seen"] == ["c"]  # 3,000 bytes > 2,500: a, the least recently used, goes
    assert [n for n in "abc" if cached[n].exists()] == ["b", "c"]
    # all three in use by one stage: over the limit, but nothing it uses is removed under it
    assert staged(stage, uses("a", "b", "c"))["seen"] == ["a", "b", "c"]
    assert all(cached[n].exists() for n in "abc")
    assert scratch.usage(base) == 3000
    assert main(["clean"]) == 0
    assert not any(cached[n].exists() for n in "abc") and scratch.usage(base) == 0
    monkeypatch.setenv("DVTRAIN_SCRATCH_LIMIT", "lots")
    with pytest.raises(DvtrainError, match="DVTRAIN_SCRATCH_LIMIT=lots: not a size"):
        staged(stage, uses("a"))


def test_scratch_prune_skips_objects_a_stage_holds(tmp_path):
    """The pin is a shared flock on the object's .pin file: prune and clean leave it alone."""
    import fcntl
    import time

    from dvtrain import scratch

    for i, name in enumerate(("old", "new")):
        obj = tmp_path / "objects" / "s3" / "b" / name
        meta = tmp_path / "meta" / "s3" / "b" / f"{name}.json"
        obj.parent.mkdir(parents=True, exist_ok=True)
        meta.parent.mkdir(parents=True, exist_ok=True)
        obj.write_bytes(b"x" * 100)
        meta.write_text("{}")
        os.utime(meta, (time.time() - 100 + i, time.time() - 100 + i))
    with open(tmp_path / "meta" / "s3" / "b" / "old.json.pin", "a") as pin:
        fcntl.flock(pin, fcntl.LOCK_SH)
        assert scratch.prune(150, tmp_path) == (1, 100, 1)  # "old" is older but held: "new" goes
        assert (tmp_path / "objects" / "s3" / "b" / "old").exists()
    assert scratch.clean(tmp_path) == (1, 100, 0)
    assert scratch.parse_size("20G") == 20 << 30 and scratch.parse_size("1.5k") == 1536
