"""The deepvariant engine as DeepVariant 1.6.1's users run it (issue 28): its train config
(dv_config.py) provided from outside the image, training options DeepVariant reads
differently converted or refused, gVCF flags, and dry runs (--print-command) that print the
exact container commands with no container engine.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from test_containers import _touch  # tests/ is on sys.path, as for prefect_live

from dvtrain.config import CallConfig, CaseStudyConfig, DeepVariantEngineConfig, MakeExamplesConfig, TrainConfig
from dvtrain.containers import (DockerRuntime, call_variants_specs, dv_steps, make_examples_spec, planning,
                                train_spec)
from dvtrain.errors import DvtrainError

REPO = Path(__file__).resolve().parents[1]




def _datasets(tmp_path):
    out = {}
    for name in ("train", "tune"):
        shard = _touch(tmp_path / "shuffled" / f"{name}-00000-of-00001.tfrecord.gz")
        out[name] = _touch(tmp_path / f"{name}.pbtxt", f'name: "{name}"\ntfrecord_path: "{shard}"\nnum_examples: 10\n')
    return out


def _train_cfg(tmp_path, **kw):
    d = _datasets(tmp_path)
    return TrainConfig(train_dataset_config=d["train"], tune_dataset_config=d["tune"],
                       experiment_dir=tmp_path / "runs" / "exp", **kw)


def _flags(cmd) -> dict:
    return dict(a.split("=", 1) for a in cmd if a.startswith("--") and "=" in a)


def test_dv_config_missing_and_unreachable_fails_in_one_line_before_any_container(tmp_path):
    cfg = _train_cfg(tmp_path)
    engine = DeepVariantEngineConfig(train_config_url="http://127.0.0.1:9/r{version}/dv_config.py")
    with pytest.raises(DvtrainError) as e:
        train_spec(cfg, engine)
    msg = str(e.value)
    assert "\n" not in msg and "dv_config.py" in msg and "http://127.0.0.1:9/r1.6.1/dv_config.py" in msg
    assert "deepvariant.train_config" in msg and "--config PATH" in msg
    assert not (tmp_path / "runs").exists()  # nothing made: no experiment folder, no partial download
    with pytest.raises(DvtrainError, match=r"no such file \(deepvariant.train_config"):
        train_spec(cfg, DeepVariantEngineConfig(train_config=str(tmp_path / "nope.py")))


def test_dv_config_is_downloaded_beside_the_experiment_folder_as_the_case_study_does(tmp_path):
    served = _touch(tmp_path / "www" / "r1.6.1" / "dv_config.py", "def get_config(name): ...\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "www"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/r{{version}}/dv_config.py"
        spec = train_spec(_train_cfg(tmp_path), DeepVariantEngineConfig(train_config_url=url))
    finally:
        server.shutdown()
    got = tmp_path / "runs" / "dv_config.py"
    assert got.read_text() == served.read_text()
    assert spec.command[1] == f"--config={got}:base"
    assert any(m.source == str(got) and m.read_only for m in spec.mounts)


def test_a_given_dv_config_and_config_name_are_used(tmp_path):
    mine = _touch(tmp_path / "mine" / "dv_config.py")
    spec = train_spec(_train_cfg(tmp_path), DeepVariantEngineConfig(train_config=f"{mine}:wgs"))
    assert spec.command[1] == f"--config={mine}:wgs"


def test_training_options_reach_deepvariant_with_its_meaning(tmp_path):
    _touch(tmp_path / "runs" / "dv_config.py")
    cfg = _train_cfg(tmp_path, batch_size=512, num_validation_examples=10_000, limit=0, epsilon=1.0, rho=0.8,
                     momentum=0.7, use_ema=False, ema_momentum=0.9, class_weights=[1, 2, 10], log_every_steps=50)
    f = _flags(train_spec(cfg, DeepVariantEngineConfig()).command)
    # DeepVariant counts tune batches: 10,000 examples at 512 a batch = 20 steps (0 stays "all")
    assert f["--config.num_validation_examples"] == "20" and f["--config.limit"] == "0"
    assert (dv_steps(10_000, 512), dv_steps(0, 512), dv_steps(1, 512)) == (20, 0, 1)
    assert (f["--config.epsilon"], f["--config.rho"], f["--config.momentum"]) == ("1.0", "0.8", "0.7")
    assert (f["--config.use_ema"], f["--config.ema_momentum"]) == ("False", "0.9")
    assert f["--config.class_weights"] == "1,2,10" and f["--config.log_every_steps"] == "50"
    for bad, match in (({"architecture": "read_sums"}, r"^architecture read_sums: DeepVariant's train trains "
                                                       r"inception_v3 only"),
                       ({"mixed_precision": True}, r"^mixed_precision True: a dvtrain option"),
                       ({"class_weights": "balanced"}, r"^class_weights balanced: "),
                       ({"optimizer": "sgd"}, r"^optimizer sgd: DeepVariant's train knows only nadam and rmsprop")):
        with pytest.raises(DvtrainError, match=match):
            train_spec(cfg.model_copy(update=bad), DeepVariantEngineConfig())


def test_gvcf_flags_go_to_make_examples_and_postprocess(tmp_path):
    data = {n: _touch(tmp_path / "data" / n) for n in ("ref.fa", "ref.fa.fai", "low.bam", "low.bam.bai")}
    examples = str(tmp_path / "ex" / "test.tfrecord@2.gz")
    me = make_examples_spec(MakeExamplesConfig(mode="calling", ref=data["ref.fa"], reads=[data["low.bam"]],
                                               examples=examples, gvcf=True, gvcf_gq_binsize=3), DeepVariantEngineConfig())
    cmd = list(me.command)
    assert cmd[cmd.index("--gvcf") + 1] == str(tmp_path / "ex" / "test.gvcf.tfrecord@2.gz")
    assert cmd[cmd.index("--gvcf_gq_binsize") + 1] == "3"
    for i in range(2):
        _touch(tmp_path / "ex" / f"test.tfrecord-0000{i}-of-00002.gz")
        _touch(tmp_path / "ex" / f"test.gvcf.tfrecord-0000{i}-of-00002.gz")
    ckpt = tmp_path / "m" / "ckpt-5"
    _touch(ckpt.parent / "ckpt-5.index")
    call, post = call_variants_specs(CallConfig(examples=examples, checkpoint=ckpt, ref=data["ref.fa"],
                                                outfile=tmp_path / "out" / "calls.vcf.gz",
                                                gvcf_outfile=tmp_path / "out" / "calls.g.vcf.gz"),
                                     DeepVariantEngineConfig())
    f = _flags(post.command)
    assert f["--nonvariant_site_tfrecord_path"] == str(tmp_path / "ex" / "test.gvcf.tfrecord@2.gz")
    assert f["--gvcf_outfile"] == str(tmp_path / "out" / "calls.g.vcf.gz")
    assert {str(tmp_path / "ex" / f"test.gvcf.tfrecord-0000{i}-of-00002.gz") for i in range(2)} <= \
        {m.source for m in post.mounts if m.read_only}


def test_docker_argv_matches_what_the_sdk_is_asked(tmp_path):
    _touch(tmp_path / "runs" / "dv_config.py")
    spec = train_spec(_train_cfg(tmp_path), DeepVariantEngineConfig(gpus=2))
    rt = DockerRuntime(client=object())
    argv, kw = rt.argv(spec), rt.run_kwargs(spec)
    assert argv[:3] == ["docker", "run", "--rm"] and argv[-len(spec.command):] == list(spec.command)
    assert argv[argv.index("--user") + 1] == kw["user"] and argv[argv.index("--network") + 1] == kw["network_mode"]
    assert argv[argv.index("--gpus") + 1] == "2" and argv[argv.index("--workdir") + 1] == kw["working_dir"]
    mounts = {argv[i + 1] for i, a in enumerate(argv) if a == "--mount"}
    assert mounts == {f"type=bind,source={m['Source']},target={m['Target']}" + (",readonly" if m["ReadOnly"] else "")
                      for m in kw["mounts"]}


def test_specs_create_nothing_and_plans_accept_inputs_not_made_yet(tmp_path):
    ref = _touch(tmp_path / "ref.fa")
    cfg = MakeExamplesConfig(mode="calling", ref=ref, reads=[tmp_path / "later.bam"],
                             examples=str(tmp_path / "out" / "e.tfrecord@1.gz"))
    with pytest.raises(Exception, match="later.bam"):
        make_examples_spec(cfg, DeepVariantEngineConfig())
    with planning():
        spec = make_examples_spec(cfg, DeepVariantEngineConfig())
    assert str(tmp_path / "later.bam") in {m.source for m in spec.mounts}
    assert not (tmp_path / "out").exists()  # the runtime makes output folders, just before it starts


def _dvtrain(*args, env=None):
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock", **(env or {})}  # no engine reachable
    return subprocess.run([sys.executable, "-m", "dvtrain.cli", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_print_command_on_a_stage_prints_the_exact_command_with_no_docker(tmp_path):
    ref = _touch(tmp_path / "ref.fa")
    _touch(tmp_path / "ref.fa.fai")
    bam = _touch(tmp_path / "low.bam")
    out = tmp_path / "out"
    r = _dvtrain("make-examples", "--mode", "calling", "--ref", ref, "--reads", bam, "--examples",
                 out / "t.tfrecord@2.gz", "--task", "1", "--deepvariant", "--print-command")
    assert r.returncode == 0, r.stderr
    (run,) = json.loads(r.stdout)["runs"]
    assert run["image"] == "google/deepvariant:1.6.1" and run["argv"][:3] == ["docker", "run", "--rm"]
    cmd = run["argv"][run["argv"].index("google/deepvariant:1.6.1") + 1:]
    assert cmd[:3] == ["/opt/deepvariant/bin/make_examples", "--mode", "calling"]
    assert cmd[cmd.index("--task") + 1] == "1" and f"{bam}:{bam}:ro" in run["mounts"]
    assert not out.exists()  # ran nothing, made nothing
    r = _dvtrain("train", "--train_dataset_pbtxt", tmp_path / "a.pbtxt", "--tune_dataset_pbtxt", tmp_path / "b.pbtxt",
                 "--experiment_dir", tmp_path / "exp", "--config.architecture=inception_v3", "--deepvariant",
                 "--container_runtime", "apptainer", "--print-command")
    assert r.returncode == 0, r.stderr
    (run,) = json.loads(r.stdout)["runs"]
    assert run["argv"][:2] == ["apptainer", "exec"] and "docker://google/deepvariant:1.6.1-gpu" in run["argv"]
    assert str(tmp_path / "a.pbtxt") in run["missing"] and str(tmp_path / "dv_config.py") in run["missing"]
    r = _dvtrain("make-examples", "--mode", "calling", "--ref", ref, "--reads", bam, "--examples",
                 out / "t.tfrecord@2.gz", "--print-command")
    assert r.returncode == 2 and r.stderr.strip() == \
        "dvtrain: error: --print-command prints the commands of the deepvariant engine: add --deepvariant"
    r = _dvtrain("train", "--train_dataset_pbtxt", tmp_path / "a.pbtxt", "--tune_dataset_pbtxt", tmp_path / "b.pbtxt",
                 "--experiment_dir", tmp_path / "exp", "--config", "dv_config.py:base")
    assert r.returncode == 2 and "--config names DeepVariant's dv_config.py, for --deepvariant" in r.stderr


def test_call_bam_deepvariant_is_run_deepvariant(tmp_path):
    ref = _touch(tmp_path / "ref.fa")
    bam = _touch(tmp_path / "low.bam")
    ckpt = _touch(tmp_path / "wgs" / "model.ckpt.index").parent / "model.ckpt"
    r = _dvtrain("call-bam", "--model", ckpt, "--ref", ref, "--reads", bam, "--output_vcf", tmp_path / "o" / "s.vcf.gz",
                 "--output_gvcf", tmp_path / "o" / "s.g.vcf.gz", "--regions", "chr20", "--num_shards", "3",
                 "--deepvariant", "--print-command")
    assert r.returncode == 0, r.stderr
    (run,) = json.loads(r.stdout)["runs"]
    cmd = run["argv"][run["argv"].index("google/deepvariant:1.6.1-gpu") + 1:]
    assert cmd == ["/opt/deepvariant/bin/run_deepvariant", "--model_type=WGS", f"--customized_model={ckpt}",
                   f"--ref={ref}", f"--reads={bam}", f"--output_vcf={tmp_path / 'o' / 's.vcf.gz'}", "--num_shards=3",
                   f"--intermediate_results_dir={tmp_path / 'o' / 's.intermediate'}", "--regions=chr20",
                   f"--output_gvcf={tmp_path / 'o' / 's.g.vcf.gz'}"]
    assert not (tmp_path / "o").exists()
    r = _dvtrain("call-bam", "--model", ckpt, "--ref", ref, "--reads", bam, "--output_vcf", tmp_path / "o" / "s.vcf.gz",
                 "--pileup_image_height", "100", "--deepvariant", "--print-command")
    assert r.returncode == 2 and "pileup_image_height: call-bam checks it against a dvtrain model" in r.stderr


def test_run_print_command_prints_every_container_of_the_case_study(tmp_path):
    r = _dvtrain("run", "--config", REPO / "examples" / "demo.yaml", "--set", "engine=deepvariant",
                 "--set", "baseline_best_checkpoint_metric=tune/f1_weighted", "--set", f"workdir={tmp_path / 'wd'}",
                 "--print-command")
    assert r.returncode == 0, r.stderr
    runs = json.loads(r.stdout)["runs"]
    stages = [run["stage"] for run in runs]
    # demo: 2 shards; baseline train/tune + 2 downsampled passes, custom train/tune + 1 augment pass, test
    assert stages.count("train baseline") == stages.count("train custom") == 1
    assert sum(s.startswith("make_examples baseline") for s in stages) == 8
    assert sum(s.startswith("make_examples custom") for s in stages) == 6
    assert sum(s.startswith("make_examples test") for s in stages) == 2
    assert stages[-4:] == ["call_variants baseline", "postprocess_variants baseline", "call_variants custom",
                           "postprocess_variants custom"]
    assert stages.index("train baseline") < stages.index("make_examples custom train shard 0") < \
        stages.index("train custom") < stages.index("make_examples test test shard 0")
    custom = runs[stages.index("train custom")]["argv"]
    best = f"{tmp_path / 'wd' / 'baseline' / 'train' / 'checkpoints' / 'BEST'}"
    assert f"--config.init_checkpoint={best}" in custom  # warm start from the baseline DeepVariant trained
    assert not (tmp_path / "wd").exists()
    # the engine's limits are in the config's own check: explicit tune/loss is refused in one line
    r = _dvtrain("run", "--config", REPO / "examples" / "demo.yaml", "--set", "engine=deepvariant", "--print-command")
    assert r.returncode == 2 and "baseline_best_checkpoint_metric tune/loss" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_engine_deepvariant_defaults_to_what_deepvariant_trains():
    base = dict(reference="r.fa", truth_vcf="t.vcf.gz", truth_bed="t.bed", reads=["a.bam"],
                baseline={"reads": ["g.bam"]}, workdir="wd")
    cfg = CaseStudyConfig.model_validate({**base, "engine": "deepvariant"})
    assert (cfg.architecture, cfg.baseline_best_checkpoint_metric) == ("inception_v3", "tune/f1_weighted")
    native = CaseStudyConfig.model_validate(base)
    assert (native.architecture, native.baseline_best_checkpoint_metric) == ("read_sums", "tune/loss")
    with pytest.raises(ValueError, match="architecture read_sums: DeepVariant's train trains inception_v3 only"):
        CaseStudyConfig.model_validate({**base, "engine": "deepvariant", "architecture": "read_sums"})
