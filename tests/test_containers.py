"""The deepvariant engine's container specs, both runtimes, and a real Docker engine running
a stand-in DeepVariant image (issue 8)."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from dvtrain.config import (CallBamConfig, CallConfig, DeepVariantEngineConfig, EvaluateConfig,
                            MakeExamplesConfig, TrainConfig)
from dvtrain.errors import DvtrainError
from dvtrain.containers import (ApptainerRuntime, ContainerError, DockerRuntime, Mount, call_spec,
                                call_variants_specs, happy_spec, make_examples_spec, train_spec)

ENGINE = DeepVariantEngineConfig()
ME = f"{os.getuid()}:{os.getgid()}"


def _touch(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def inputs(tmp_path):
    d = tmp_path / "data"
    files = {name: _touch(d / name) for name in (
        "ref.fa", "ref.fa.fai", "low.bam", "low.bam.bai", "truth.vcf.gz", "truth.vcf.gz.tbi", "conf.bed")}
    return d, files


def _by_target(spec):
    return {m.target: m for m in spec.mounts}


def _flag(cmd, name):
    return cmd[cmd.index(name) + 1]


def test_make_examples_spec_is_an_argument_list_with_minimal_read_only_mounts(inputs, tmp_path):
    d, _ = inputs
    cfg = MakeExamplesConfig(mode="training", ref=d / "ref.fa", reads=[d / "low.bam"],
                             examples=str(tmp_path / "out" / "train.tfrecord@4.gz"), task=3, regions=["chr1"],
                             truth_variants=d / "truth.vcf.gz", confident_regions=d / "conf.bed",
                             downsample_fraction=0.5, seed=9)
    spec = make_examples_spec(cfg, ENGINE)
    cmd = list(spec.command)
    assert spec.image == "google/deepvariant:1.6.1" and spec.gpus == 0 and spec.user == ME
    assert cmd[0] == "/opt/deepvariant/bin/make_examples"
    assert (_flag(cmd, "--mode"), _flag(cmd, "--task"), _flag(cmd, "--regions")) == ("training", "3", "chr1")
    assert _flag(cmd, "--channels") == "insert_size" and _flag(cmd, "--downsample_fraction") == "0.5"
    assert _flag(cmd, "--examples") == str(tmp_path / "out" / "train.tfrecord@4.gz")
    assert _flag(cmd, "--truth_variants") == str(d / "truth.vcf.gz")
    assert _flag(cmd, "--confident_regions") == str(d / "conf.bed")
    assert _flag(cmd, "--vsc_min_count_snps") == "2"
    assert not any(a.startswith("--random_seed") for a in cmd)  # DeepVariant defines no such flag
    assert not any(a in ("sh", "bash", "-c") for a in cmd)  # no shell anywhere
    mounts = _by_target(spec)
    inputs_ro = {str(d / n) for n in ("ref.fa", "ref.fa.fai", "low.bam", "low.bam.bai", "truth.vcf.gz",
                                      "truth.vcf.gz.tbi", "conf.bed")}
    assert set(mounts) == inputs_ro | {str(tmp_path / "out")}
    assert all(m.read_only and m.source == m.target for t, m in mounts.items() if t in inputs_ro)
    assert not mounts[str(tmp_path / "out")].read_only  # the one writable mount
    assert str(Path.home()) not in mounts


def test_calling_mode_leaves_out_truth_and_mounts_a_bed_of_regions(inputs, tmp_path):
    d, _ = inputs
    bed = _touch(tmp_path / "regions.bed")
    cfg = MakeExamplesConfig(mode="calling", ref=d / "ref.fa", reads=[d / "low.bam"],
                             examples=str(tmp_path / "out" / "test.tfrecord@1.gz"), regions=["chr20", str(bed)])
    spec = make_examples_spec(cfg, ENGINE)
    assert "--truth_variants" not in spec.command and "--downsample_fraction" not in spec.command
    assert _flag(list(spec.command), "--regions") == f"chr20 {bed}"
    assert _by_target(spec)[str(bed)].read_only


def test_dvtrain_only_options_are_refused_when_set_and_named_when_default(inputs, tmp_path):
    from dvtrain.containers import dvtrain_only_notes

    d, _ = inputs
    base = dict(mode="calling", ref=d / "ref.fa", reads=[d / "low.bam"],
                examples=str(tmp_path / "out" / "test.tfrecord@1.gz"), regions=["chr20"])
    for option, value in (("vsc_min_snp_lod", 2.5), ("indel_informative_reads", True),
                          ("merge_insertion_alleles", True)):
        with pytest.raises(DvtrainError, match=rf"^{option} {value!r}: a dvtrain option that DeepVariant's "
                                               r"make_examples does not have"):
            make_examples_spec(MakeExamplesConfig(**base, **{option: value}), ENGINE)
    # set to what DeepVariant does: accepted, and no such flag reaches DeepVariant
    as_dv = MakeExamplesConfig(**base, vsc_min_snp_lod=None, indel_informative_reads=False,
                               indel_haplotype_support=False, merge_insertion_alleles=False)
    assert not any("lod" in a or "indel_" in a for a in make_examples_spec(as_dv, ENGINE).command)
    assert dvtrain_only_notes(as_dv) == []
    # left at dvtrain's defaults: one note, which run_make_examples logs
    (note,) = dvtrain_only_notes(MakeExamplesConfig(**base))
    assert "indel_informative_reads, indel_haplotype_support, merge_insertion_alleles" in note


def _dataset(tmp_path, name):
    shards = tmp_path / "shuffled"
    _touch(shards / f"{name}-00000-of-00001.tfrecord.gz")
    return _touch(tmp_path / f"{name}.pbtxt", f'name: "{name}"\ntfrecord_path: "{shards}/{name}-?????-of-00001.tfrecord.gz"\n'
                                              f"num_examples: 10\n")


def test_train_spec_asks_for_a_gpu_and_mounts_datasets_where_their_pbtxt_says(tmp_path):
    train, tune = _dataset(tmp_path, "train"), _dataset(tmp_path, "tune")
    ckpt = tmp_path / "model" / "model.ckpt"
    for part in ("model.ckpt.index", "model.ckpt.data-00000-of-00001", "example_info.json"):
        _touch(ckpt.parent / part)
    dv_config = _touch(tmp_path / "dv_config.py")
    engine = DeepVariantEngineConfig(train_config=f"{dv_config}:base", train_overrides={"num_validation_examples": "0"})
    cfg = TrainConfig(train_dataset_config=train, tune_dataset_config=tune, experiment_dir=tmp_path / "exp",
                      init_checkpoint=str(ckpt), epochs=10, learning_rate=1e-4, batch_size=512)
    spec = train_spec(cfg, engine)
    cmd = list(spec.command)
    assert spec.image == "google/deepvariant:1.6.1-gpu" and spec.gpus == 1
    assert cmd[:2] == ["/opt/deepvariant/bin/train", f"--config={dv_config}:base"]
    for arg in (f"--config.train_dataset_pbtxt={train}", f"--config.tune_dataset_pbtxt={tune}",
                f"--config.init_checkpoint={ckpt}", "--config.num_epochs=10", "--config.learning_rate=0.0001",
                "--config.batch_size=512", f"--experiment_dir={tmp_path / 'exp'}", "--strategy=mirrored",
                "--config.num_validation_examples=0"):
        assert arg in cmd, arg
    mounts = _by_target(spec)
    for ro in (train, tune, tmp_path / "shuffled", dv_config, ckpt.parent / "model.ckpt.index",
               ckpt.parent / "example_info.json"):
        assert mounts[str(ro)].read_only, ro
    assert not mounts[str(tmp_path / "exp")].read_only
    kw = DockerRuntime(client=object()).run_kwargs(spec)
    (req,) = kw["device_requests"]
    assert (req["Count"], req["Capabilities"]) == (1, [["gpu"]])
    assert kw["privileged"] is False and kw["user"] == ME and kw["command"] == cmd
    assert kw["network_mode"] == "none"
    assert {(m["Source"], m["Target"], m["ReadOnly"]) for m in kw["mounts"]} == \
        {(m.source, m.target, m.read_only) for m in spec.mounts}
    # what DeepVariant's train would misread is refused in one line, before any container
    with pytest.raises(DvtrainError, match=r"^optimizer adam: DeepVariant's train knows only nadam and rmsprop"):
        train_spec(cfg.model_copy(update={"optimizer": "adam"}), engine)
    with pytest.raises(DvtrainError, match=r"^best_checkpoint_metric tune/loss: .* keeps the checkpoints whose "
                                           r"metric is higher"):
        train_spec(cfg.model_copy(update={"best_checkpoint_metric": "tune/loss"}), engine)


def test_a_gs_checkpoint_keeps_the_network(tmp_path):
    train, tune = _dataset(tmp_path, "train"), _dataset(tmp_path, "tune")
    cfg = TrainConfig(train_dataset_config=train, tune_dataset_config=tune, experiment_dir=tmp_path / "exp",
                      init_checkpoint="gs://deepvariant/models/DeepVariant/1.6.1/checkpoints/wgs/deepvariant.wgs.ckpt")
    dv_config = _touch(tmp_path / "dv_config.py")  # beside the experiment folder: used as it is
    kw = DockerRuntime(client=object()).run_kwargs(train_spec(cfg, DeepVariantEngineConfig(gpus=0)))
    assert "network_mode" not in kw and "device_requests" not in kw
    assert f"--config={dv_config}:base" in kw["command"]


def test_call_specs_run_deepvariant_or_call_variants_then_postprocess(inputs, tmp_path):
    d, _ = inputs
    ckpt = tmp_path / "train" / "model.ckpt-50000"
    for part in ("model.ckpt-50000.index", "model.ckpt-50000.data-00000-of-00001", "example_info.json"):
        _touch(ckpt.parent / part)
    for i in range(2):
        _touch(tmp_path / "ex" / f"test.tfrecord-0000{i}-of-00002.gz")
    cfg = CallConfig(examples=str(tmp_path / "ex" / "test.tfrecord@2.gz"), checkpoint=str(ckpt), ref=d / "ref.fa",
                     outfile=tmp_path / "vcf" / "custom.vcf.gz", sample_name="HG001")
    bam = CallBamConfig(model=str(ckpt), ref=d / "ref.fa", reads=[d / "low.bam"], regions=["chr20"], num_shards=4,
                        output_vcf=tmp_path / "vcf" / "custom.vcf.gz", sample_name="HG001")
    spec = call_spec(bam, DeepVariantEngineConfig(gpus=0))
    cmd = list(spec.command)
    assert cmd[0] == "/opt/deepvariant/bin/run_deepvariant" and spec.image == "google/deepvariant:1.6.1"
    for arg in ("--model_type=WGS", f"--customized_model={ckpt}", f"--reads={d / 'low.bam'}", "--regions=chr20",
                f"--output_vcf={tmp_path / 'vcf' / 'custom.vcf.gz'}", "--num_shards=4", "--sample_name=HG001",
                f"--intermediate_results_dir={tmp_path / 'vcf' / 'custom.intermediate'}"):
        assert arg in cmd, arg
    assert not any("extra_args" in a for a in cmd)  # batch_size and qual_filter left at their defaults
    assert _by_target(spec)[str(d / "low.bam.bai")].read_only
    with pytest.raises(DvtrainError, match=r"^vsc_min_count_snps: call-bam checks it against a dvtrain model"):
        call_spec(bam.model_copy(update={"vsc_min_count_snps": 2}), ENGINE)
    extra = call_spec(bam.model_copy(update={"batch_size": 64, "qual_filter": 3.0}), ENGINE).command
    assert "--call_variants_extra_args=batch_size=64" in extra
    assert "--postprocess_variants_extra_args=qual_filter=3.0" in extra
    call, post = call_variants_specs(cfg, ENGINE)
    assert call.command[0].endswith("/call_variants") and call.gpus == 1 and call.image.endswith("-gpu")
    assert f"--examples={tmp_path / 'ex' / 'test.tfrecord@2.gz'}" in call.command
    cvo = next(a.split("=", 1)[1] for a in call.command if a.startswith("--outfile="))
    assert post.command[0].endswith("/postprocess_variants") and f"--infile={cvo}" in post.command
    assert str(tmp_path / "ex" / "test.tfrecord-00001-of-00002.gz") in _by_target(call)


def test_happy_spec_uses_vcfeval_and_pass_only(inputs, tmp_path):
    d, _ = inputs
    query = _touch(tmp_path / "calls.vcf.gz")
    cfg = EvaluateConfig(truth_vcf=d / "truth.vcf.gz", query_vcf=query, confident_bed=d / "conf.bed",
                         reference=d / "ref.fa", output_prefix=tmp_path / "happy" / "chr20", regions=["chr20"],
                         pass_only=True)
    spec = happy_spec(cfg, ENGINE)
    assert spec.image == "jmcdani20/hap.py:v0.3.12"
    assert list(spec.command) == ["/opt/hap.py/bin/hap.py", str(d / "truth.vcf.gz"), str(query), "-r",
                                  str(d / "ref.fa"), "-o", str(tmp_path / "happy" / "chr20"), "--engine=vcfeval",
                                  "-f", str(d / "conf.bed"), "--pass-only", "-l", "chr20"]


def test_apptainer_builds_the_same_spec():
    from dvtrain.containers import ContainerSpec

    s = ContainerSpec("google/deepvariant:1.6.1-gpu", ("/opt/deepvariant/bin/train", "--strategy=mirrored"),
                      (Mount("/d/a.pbtxt", "/d/a.pbtxt"), Mount("/out", "/out", False)), "1000:1000",
                      {"TF_CPP_MIN_LOG_LEVEL": "2"}, 1, "/out")
    assert ApptainerRuntime("singularity").argv(s) == [
        "singularity", "exec", "--containall", "--cleanenv", "--no-home",
        "--bind", "/d/a.pbtxt:/d/a.pbtxt:ro", "--bind", "/out:/out:rw", "--env", "TF_CPP_MIN_LOG_LEVEL=2",
        "--pwd", "/out", "--nv", "docker://google/deepvariant:1.6.1-gpu", "/opt/deepvariant/bin/train",
        "--strategy=mirrored"]


def test_apptainer_failure_keeps_the_last_log_lines(tmp_path):
    """A fake `apptainer` (a script echoing its argv) stands in for the binary."""
    fake = _touch(tmp_path / "apptainer", "#!/bin/sh\nfor i in $(seq 1 60); do echo line $i; done\nexit 4\n")
    fake.chmod(0o755)
    from dvtrain.containers import ContainerSpec

    s = ContainerSpec("img:1", ("/bin/tool", "--x"), (), ME)
    with pytest.raises(ContainerError, match=r"img:1 tool exited with code 4; last 50 log lines:\nline 11\n") as err:
        ApptainerRuntime(str(fake)).run(s, log=lambda line: None)
    assert str(err.value).endswith("line 60") and "line 10\n" not in str(err.value)


# ---------------------------------------------------------------- a real Docker engine
STANDIN = "dvtrain-standin:test"
# Every DeepVariant/hap.py entry point in the stand-in image records what it saw.
RECORDER = """#!/bin/sh
out="$PWD"
for a in "$0" "$@"; do echo "$a"; done > "$out/argv.txt"
cat /proc/self/mountinfo > "$out/mountinfo.txt"
id -u > "$out/uid.txt"
echo "stand-in $(basename "$0") running"
i=0; while [ $i -lt 60 ]; do i=$((i+1)); echo "log $i"; done
exit ${STANDIN_EXIT:-0}
"""


@pytest.fixture(scope="module")
def docker_client():
    """A Docker engine: DVTRAIN_TEST_DOCKER_HOST, or a private dockerd started here (root)
    and stopped afterwards, whatever happens in between."""
    import docker

    host = os.environ.get("DVTRAIN_TEST_DOCKER_HOST")
    proc = root = None
    try:
        if not host:
            if os.getuid() != 0 or not shutil.which("dockerd") or not Path("/bin/busybox").exists():
                pytest.skip("no Docker engine: needs root, dockerd (Debian docker.io) and /bin/busybox "
                            "(busybox-static), or DVTRAIN_TEST_DOCKER_HOST")
            root = Path("/tmp") / f"dvtrain-dockerd-{os.getpid()}"  # short: the socket path has a length limit
            root.mkdir(exist_ok=True)
            host = f"unix://{root}/docker.sock"
            with open(root / "dockerd.log", "w") as log:
                proc = subprocess.Popen(["dockerd", "--storage-driver=vfs", "--iptables=false", "--bridge=none",
                                         f"--data-root={root}/data", f"--exec-root={root}/exec",
                                         f"--pidfile={root}/pid", "-H", host], stdout=log, stderr=subprocess.STDOUT)
        client = None
        for _ in range(60):
            try:
                client = docker.DockerClient(base_url=host)
                client.ping()
                break
            except Exception:
                client = None
                if proc is not None and proc.poll() is not None:
                    pytest.skip(f"dockerd exited with {proc.returncode}: "
                                f"{(root / 'dockerd.log').read_text()[-300:]}")  # type: ignore[operator]
                time.sleep(0.5)
        if client is None:
            pytest.skip(f"Docker engine at {host} did not answer in 30 s")
        # the stand-in image: a static busybox and the recorder at every entry point (docker import, no registry)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add("/bin/busybox", arcname="bin/busybox")
            for tool in ("sh", "cat", "id", "echo", "basename"):
                link = tarfile.TarInfo(f"bin/{tool}")
                link.type, link.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(link)
            for path in ("opt/deepvariant/bin/make_examples", "opt/deepvariant/bin/train",
                         "opt/deepvariant/bin/run_deepvariant", "opt/hap.py/bin/hap.py"):
                info = tarfile.TarInfo(path)
                info.size, info.mode = len(RECORDER), 0o755
                tar.addfile(info, io.BytesIO(RECORDER.encode()))
        client.api.import_image_from_data(buf.getvalue(), repository=STANDIN.split(":")[0],
                                          tag=STANDIN.split(":")[1])
        client.images.get(STANDIN).tag("google/deepvariant", "dvtrain-standin")  # for --deepvariant_version
        client.dvtrain_host = host
        yield client
        client.close()
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)


def _mountinfo(out: Path) -> dict[str, str]:
    """container mount point -> 'ro'/'rw' from /proc/self/mountinfo"""
    found = {}
    for line in (out / "mountinfo.txt").read_text().splitlines():
        f = line.split()
        found[f[4]] = "ro" if "ro" in f[5].split(",") else "rw"
    return found


def test_a_real_engine_runs_the_spec_as_the_invoking_user_with_read_only_inputs(docker_client, inputs, tmp_path):
    d, _ = inputs
    engine = DeepVariantEngineConfig(image=STANDIN.split(":")[0], version=STANDIN.split(":")[1])
    cfg = MakeExamplesConfig(mode="training", ref=d / "ref.fa", reads=[d / "low.bam"],
                             examples=str(tmp_path / "out" / "train.tfrecord@2.gz"), task=1, regions=["chr1 chr2"],
                             truth_variants=d / "truth.vcf.gz", confident_regions=d / "conf.bed")
    spec = make_examples_spec(cfg, engine)
    lines: list[str] = []
    DockerRuntime(client=docker_client).run(spec, log=lines.append)
    out = tmp_path / "out"
    assert (out / "argv.txt").read_text().splitlines() == list(spec.command)  # argv arrives word for word
    assert lines[0] == "stand-in make_examples running" and lines[-1] == "log 60"  # logs streamed
    assert (out / "uid.txt").read_text().strip() == str(os.getuid())
    assert (out / "argv.txt").stat().st_uid == os.getuid()
    seen = _mountinfo(out)
    for m in spec.mounts:
        assert seen[m.target] == ("ro" if m.read_only else "rw"), m
    assert str(Path.home()) not in seen
    assert not docker_client.containers.list(all=True, filters={"ancestor": STANDIN})  # removed


def test_a_failing_container_is_a_clear_error_with_its_last_50_lines(docker_client, tmp_path):
    from dvtrain.containers import ContainerSpec

    out = tmp_path / "out"
    out.mkdir()
    spec = ContainerSpec(STANDIN, ("/opt/deepvariant/bin/train", "--strategy=mirrored"),
                         (Mount(str(out), str(out), False),), ME, {"STANDIN_EXIT": "3"}, 0, str(out))
    with pytest.raises(ContainerError, match=r"dvtrain-standin:test train exited with code 3; last 50 log lines:\nlog 11\n"):
        DockerRuntime(client=docker_client).run(spec, log=lambda line: None)
    assert not docker_client.containers.list(all=True, filters={"ancestor": STANDIN})


def test_cli_runs_a_stage_in_the_container(docker_client, inputs, tmp_path, monkeypatch, capsys):
    import json

    from dvtrain.cli import main

    d, _ = inputs
    monkeypatch.setenv("DOCKER_HOST", docker_client.dvtrain_host)
    args = ["make-examples", "--mode", "calling", "--ref", str(d / "ref.fa"), "--reads", str(d / "low.bam"),
            "--examples", str(tmp_path / "out" / "t.tfrecord@1.gz"), "--regions", "chr20",
            "--deepvariant", "--deepvariant_version", "dvtrain-standin"]
    assert main(args) == 0
    out = capsys.readouterr()
    (run,) = json.loads(out.out)["runs"]
    assert run["image"] == "google/deepvariant:dvtrain-standin"
    assert (tmp_path / "out" / "argv.txt").read_text().splitlines() == run["command"]
    assert "stand-in make_examples running" in out.err


def test_cli_without_an_engine_says_so_in_one_line(inputs, tmp_path, monkeypatch, capsys):
    from dvtrain.cli import main

    d, _ = inputs
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such.sock")
    code = main(["make-examples", "--mode", "calling", "--ref", str(d / "ref.fa"), "--reads", str(d / "low.bam"),
                 "--examples", str(tmp_path / "out" / "t.tfrecord@1.gz"), "--deepvariant"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("dvtrain: error: docker: no engine reachable")


# ---------------------------------------------------------------- stages and the flow through the engine
def test_a_container_stage_summarises_its_shard_or_says_it_wrote_none(docker_client, inputs, tmp_path, monkeypatch):
    from dvtrain.containers import run_make_examples
    from dvtrain.example_proto import encode_example
    from dvtrain.fileio import TFRecordWriter

    d, _ = inputs
    monkeypatch.setenv("DOCKER_HOST", docker_client.dvtrain_host)
    engine = DeepVariantEngineConfig(version="dvtrain-standin")
    cfg = MakeExamplesConfig(mode="training", ref=d / "ref.fa", reads=[d / "low.bam"],
                             examples=str(tmp_path / "out" / "train.tfrecord@2.gz"), task=1, regions=["chr1"],
                             truth_variants=d / "truth.vcf.gz", confident_regions=d / "conf.bed")
    with pytest.raises(ContainerError, match=r"train.tfrecord-00001-of-00002.gz: DeepVariant make_examples exited 0 "
                                             r"but wrote no examples there"):
        run_make_examples(cfg, engine, log=lambda line: None)
    # the shard DeepVariant would have written (the stand-in records its argv only)
    with TFRecordWriter(tmp_path / "out" / "train.tfrecord-00001-of-00002.gz") as w:
        for label in (0, 0, 1, 2, 2, 2):
            w.write(encode_example({"label": [label], "image/shape": [1, 1, 1], "image/encoded": [b"\x00"]}))
    out = run_make_examples(cfg, engine, log=lambda line: None)
    assert out == {"path": str(tmp_path / "out" / "train.tfrecord-00001-of-00002.gz"), "num_examples": 6,
                   "engine": "deepvariant", "class_counts": [2, 1, 3]}


def test_the_case_study_flow_runs_its_stages_in_the_container(docker_client, prefect_server, sim_dataset, tmp_path,
                                                             monkeypatch):
    """engine: deepvariant sends make_examples to the container: the stand-in records the
    training-mode command the flow built, then the flow stops with the stage's one-line error."""
    from dvtrain.config import BaselineConfig, CaseStudyConfig
    from flows import custom_model_training

    monkeypatch.setenv("DOCKER_HOST", docker_client.dvtrain_host)
    ckpt = tmp_path / "wgs" / "model.ckpt"
    for part in ("model.ckpt.index", "model.ckpt.data-00000-of-00001", "example_info.json"):
        _touch(ckpt.parent / part)
    sim = sim_dataset
    config = CaseStudyConfig(
        reference=sim["ref"], truth_vcf=sim["truth_vcf"], truth_bed=sim["truth_bed"], reads=[sim["bams"]["lowcov"]],
        baseline=BaselineConfig(model=ckpt), workdir=tmp_path / "wd", shards=1, max_concurrency=1, peers=[],
        engine="deepvariant", deepvariant=DeepVariantEngineConfig(version="dvtrain-standin"))
    with pytest.raises(ContainerError, match="DeepVariant make_examples exited 0 but wrote no examples"):
        custom_model_training(config)
    argv = (tmp_path / "wd" / "custom" / "examples" / "argv.txt").read_text().splitlines()
    assert argv[:3] == ["/opt/deepvariant/bin/make_examples", "--mode", "training"]
    assert _flag(argv, "--confident_regions") == str(tmp_path / "wd" / "coverage" / "confident.bed")
    assert (tmp_path / "wd" / "coverage" / "confident.bed").is_file()  # coverage stayed native
