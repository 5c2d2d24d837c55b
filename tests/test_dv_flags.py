"""Conformance: every command line dvtrain.containers builds for Google's DeepVariant
containers (and hap.py) uses only flags those binaries define, with values of the right type
and allowed enum values. The flag facts come from tests/data/deepvariant_flags.json, written
by scripts/dv_flags.py from DeepVariant's and hap.py's source (see its provenance block)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_containers import _touch  # tests/ is on sys.path, as for prefect_live

from dvtrain.config import (CallBamConfig, CallConfig, DeepVariantEngineConfig, EvaluateConfig,
                            MakeExamplesConfig, TrainConfig)
from dvtrain.containers import call_spec, call_variants_specs, happy_spec, make_examples_spec, train_spec

DATA = json.loads((Path(__file__).parent / "data" / "deepvariant_flags.json").read_text())
BINARIES = DATA["binaries"]
TRUE, FALSE = ("true", "t", "1"), ("false", "f", "0")


def _typed(kind: str, value: str, spec: dict) -> str | None:
    """Why ``value`` is wrong for a flag of ``kind`` (None: fine)."""
    try:
        if kind == "int":
            int(value)
        elif kind == "float":
            float(value)
    except ValueError:
        return f"{value!r} is not {kind}"
    if kind == "bool" and value.lower() not in TRUE + FALSE:
        return f"{value!r} is not a boolean"
    if kind == "enum" and value not in spec.get("enum", ()):
        return f"{value!r} not one of {spec.get('enum')}"
    for bound, ok in (("lower_bound", lambda v, b: v >= b), ("upper_bound", lambda v, b: v <= b)):
        if spec.get(bound) is not None and kind in ("int", "float") and not ok(float(value), spec[bound]):
            return f"{value} outside {bound} {spec[bound]}"
    return None


def check_absl(binary: str, args: list[str]) -> list[str]:
    """Problems of an absl command line (``--f=v``, ``--f v``, ``--f``/``--nof`` for booleans,
    ``--config.FIELD=v`` for train)."""
    flags, problems, i = BINARIES[binary], [], 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("-"):
            problems.append(f"{binary}: positional argument {arg!r} (absl binaries take none)")
            continue
        name, eq, value = arg.lstrip("-").partition("=")
        if binary == "train" and name.startswith("config."):
            field = name[len("config."):]
            spec = BINARIES["train_config"].get(field)
            if spec is None:
                problems.append(f"train: --config.{field}: no such field in dv_config.py's base config")
            elif spec["type"] in ("int", "float", "bool") and (why := _typed(spec["type"], value, spec)):
                problems.append(f"train: --config.{field}: {why}")
            continue
        spec = flags.get(name)
        if spec is None and name.startswith("no") and flags.get(name[2:], {}).get("type") == "bool" and not eq:
            continue
        if spec is None:
            problems.append(f"{binary}: --{name}: not defined")
            continue
        if spec["type"] == "bool":
            if eq and (why := _typed("bool", value, spec)):
                problems.append(f"{binary}: --{name}: {why}")
            continue
        if not eq:
            if i >= len(args):
                problems.append(f"{binary}: --{name}: no value")
                continue
            value = args[i]
            i += 1
        if spec["type"] in ("int", "float", "enum") and (why := _typed(spec["type"], value, spec)):
            problems.append(f"{binary}: --{name}: {why}")
    return problems


def check_argparse(binary: str, args: list[str]) -> list[str]:
    """Problems of an argparse command line (hap.py): options by any spelling, positionals counted."""
    flags, problems, positionals, i = BINARIES[binary], [], [], 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("-"):
            positionals.append(arg)
            continue
        name, eq, value = arg.partition("=")
        spec = flags.get(name)
        if spec is None:
            problems.append(f"{binary}: {name}: not defined")
            continue
        if spec["type"] == "bool":
            if eq:
                problems.append(f"{binary}: {name}: takes no value")
            continue
        if not eq:
            value = args[i] if i < len(args) else None
            i += 1
        if value is None:
            problems.append(f"{binary}: {name}: no value")
        elif spec["type"] in ("int", "float", "enum") and (why := _typed(spec["type"], value, spec)):
            problems.append(f"{binary}: {name}: {why}")
    if binary == "hap.py" and len(positionals) != 2:
        problems.append(f"hap.py: {len(positionals)} positional VCFs (needs exactly 2)")
    return problems


def check(command) -> list[str]:
    binary = Path(command[0]).name
    assert binary in BINARIES, f"no flag data for {binary}"
    return (check_argparse if binary == "hap.py" else check_absl)(binary, list(command[1:]))


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def files(tmp_path):
    d = tmp_path / "data"
    for n in ("ref.fa", "ref.fa.fai", "low.bam", "low.bam.bai", "truth.vcf.gz", "truth.vcf.gz.tbi", "conf.bed"):
        _touch(d / n)
    _touch(tmp_path / "regions.bed")
    ckpt = tmp_path / "train" / "model.ckpt-50000"
    for part in ("model.ckpt-50000.index", "model.ckpt-50000.data-00000-of-00001", "example_info.json"):
        _touch(ckpt.parent / part)
    for i in range(2):
        _touch(tmp_path / "ex" / f"test.tfrecord-0000{i}-of-00002.gz")
        _touch(tmp_path / "ex" / f"test.gvcf.tfrecord-0000{i}-of-00002.gz")  # make_examples --gvcf shards
    for name in ("train", "tune"):
        _touch(tmp_path / "shuffled" / f"{name}-00000-of-00001.tfrecord.gz")
        _touch(tmp_path / f"{name}.pbtxt", f'name: "{name}"\ntfrecord_path: "{tmp_path}/shuffled/{name}-?????-of-00001'
                                           f'.tfrecord.gz"\nnum_examples: 10\n')
    return d, ckpt


ME_CASES = {
    "training-defaults": dict(mode="training"),
    "training-all-options": dict(mode="training", channels=["insert_size", "homopolymer_weighted"],
                                 regions=["chr20:1-100000", "REGIONS_BED"], exclude_regions=["chr20:5-10"],
                                 downsample_fraction=0.5, training_random_emit_ref_sites=0.1),
    "training-no-channels": dict(mode="training", channels=[]),
    "calling": dict(mode="calling", regions=["chr20"]),
    "calling-gvcf": dict(mode="calling", gvcf=True),
    "calling-bed-regions": dict(mode="calling", regions=["REGIONS_BED"], channels=["is_homopolymer"]),
}


@pytest.mark.parametrize("case", sorted(ME_CASES))
def test_make_examples_commands_use_only_defined_flags(files, tmp_path, case):
    d, _ = files
    kw = dict(ME_CASES[case])
    for key in ("regions", "exclude_regions"):
        if key in kw:
            kw[key] = [str(tmp_path / "regions.bed") if r == "REGIONS_BED" else r for r in kw[key]]
    if kw["mode"] == "training":
        kw.update(truth_variants=d / "truth.vcf.gz", confident_regions=d / "conf.bed")
    cfg = MakeExamplesConfig(ref=d / "ref.fa", reads=[d / "low.bam"], examples=str(tmp_path / "out" / "e.tfrecord@4.gz"),
                             task=1, **kw)
    assert check(make_examples_spec(cfg, DeepVariantEngineConfig()).command) == []


TRAIN_CASES = {
    "defaults": ({}, {}),
    "init-checkpoint": ({"init_checkpoint": "CKPT"}, {}),
    "gs-checkpoint": ({"init_checkpoint": "gs://deepvariant/models/DeepVariant/1.6.1/checkpoints/wgs/deepvariant.wgs.ckpt"}, {}),
    "overrides": ({"optimizer": "rmsprop"}, {"num_validation_examples": "0", "use_ema": "false", "epsilon": "1.0"}),
}


@pytest.mark.parametrize("case", sorted(TRAIN_CASES))
def test_train_command_uses_only_defined_flags_and_config_fields(files, tmp_path, case):
    _, ckpt = files
    cfg_kw, overrides = TRAIN_CASES[case]
    cfg_kw = {k: (str(ckpt) if v == "CKPT" else v) for k, v in cfg_kw.items()}
    dv_config = _touch(tmp_path / "dv_config.py", "# the user's copy of DeepVariant's dv_config.py\n")
    engine = DeepVariantEngineConfig(train_config=f"{dv_config}:base", train_overrides=overrides)
    cfg = TrainConfig(train_dataset_config=tmp_path / "train.pbtxt", tune_dataset_config=tmp_path / "tune.pbtxt",
                      experiment_dir=tmp_path / "exp", **cfg_kw)
    assert check(train_spec(cfg, engine).command) == []


CALL_CASES = {
    "plain": dict(),
    "gvcf-and-sample": dict(gvcf_outfile="GVCF", sample_name="HG001"),
}


BAM_CASES = {
    "plain": dict(),
    "gvcf-sample-extra-args": dict(output_gvcf="GVCF", sample_name="HG001", batch_size=512, qual_filter=2.0),
}


@pytest.mark.parametrize("regions", [[], ["chr20"], ["REGIONS_BED", "chr21"]], ids=["no-regions", "contig", "bed"])
@pytest.mark.parametrize("case", sorted(BAM_CASES))
def test_run_deepvariant_command_uses_only_defined_flags(files, tmp_path, case, regions):
    d, ckpt = files
    kw = {k: (tmp_path / "vcf" / "custom.g.vcf.gz" if v == "GVCF" else v) for k, v in BAM_CASES[case].items()}
    regions = [str(tmp_path / "regions.bed") if r == "REGIONS_BED" else r for r in regions]
    cfg = CallBamConfig(model=str(ckpt), ref=d / "ref.fa", reads=[d / "low.bam"], regions=regions, num_shards=4,
                        output_vcf=tmp_path / "vcf" / "custom.vcf.gz", **kw)
    for gpus in (0, 1):
        spec = call_spec(cfg, DeepVariantEngineConfig(gpus=gpus))
        assert check(spec.command) == []


@pytest.mark.parametrize("case", sorted(CALL_CASES))
def test_call_variants_and_postprocess_commands_use_only_defined_flags(files, tmp_path, case):
    d, ckpt = files
    kw = {k: (tmp_path / "vcf" / "custom.g.vcf.gz" if v == "GVCF" else v) for k, v in CALL_CASES[case].items()}
    cfg = CallConfig(examples=str(tmp_path / "ex" / "test.tfrecord@2.gz"), checkpoint=str(ckpt), ref=d / "ref.fa",
                     outfile=tmp_path / "vcf" / "custom.vcf.gz", **kw)
    call, post = call_variants_specs(cfg, DeepVariantEngineConfig())
    assert Path(call.command[0]).name == "call_variants" and Path(post.command[0]).name == "postprocess_variants"
    assert check(call.command) + check(post.command) == []


@pytest.mark.parametrize("confident,pass_only,regions", [(True, True, ["chr20"]), (False, False, [])],
                         ids=["all-options", "bare"])
def test_happy_command_uses_only_defined_options(files, tmp_path, confident, pass_only, regions):
    d, _ = files
    query = _touch(tmp_path / "calls.vcf.gz")
    cfg = EvaluateConfig(truth_vcf=d / "truth.vcf.gz", query_vcf=query, confident_bed=d / "conf.bed" if confident else None,
                         reference=d / "ref.fa", output_prefix=tmp_path / "happy" / "chr20", regions=regions,
                         pass_only=pass_only)
    assert check(happy_spec(cfg, DeepVariantEngineConfig()).command) == []


# ---------------------------------------------------------------- the checker itself
def test_checker_reports_a_made_up_flag_a_bad_type_and_a_bad_enum(files, tmp_path):
    d, ckpt = files
    cfg = CallBamConfig(model=str(ckpt), ref=d / "ref.fa", reads=[d / "low.bam"], num_shards=4,
                        output_vcf=tmp_path / "vcf" / "custom.vcf.gz")
    cmd = list(call_spec(cfg, DeepVariantEngineConfig()).command)
    assert any("--made_up_flag" in p for p in check(cmd + ["--made_up_flag=1"]))
    assert any("--num_shards" in p and "not int" in p for p in check(cmd + ["--num_shards=four"]))
    assert any("--model_type" in p and "not one of" in p for p in check(cmd + ["--model_type=WGZ"]))
    assert any("--dry_run" in p for p in check(cmd + ["--dry_run=maybe"]))
    assert check(cmd + ["--nodry_run", "--dry_run", "--num_shards", "8"]) == []
    assert any("config.no_such_field" in p for p in check(["/opt/deepvariant/bin/train", "--config.no_such_field=1"]))
    assert any("config.batch_size" in p for p in check(["/opt/deepvariant/bin/train", "--config.batch_size=big"]))
    assert any("--strategy" in p for p in check(["/opt/deepvariant/bin/train", "--strategy=parallel"]))
    happy = ["/opt/hap.py/bin/hap.py", "t.vcf", "q.vcf", "-r", "ref.fa", "-o", "out"]
    assert check(happy + ["--engine=vcfeval", "-f", "c.bed", "-l", "chr20", "--pass-only"]) == []
    assert any("--engine" in p for p in check(happy + ["--engine=rtg"]))
    assert any("--made-up" in p for p in check(happy + ["--made-up"]))
    assert any("positional" in p for p in check(happy[:2] + happy[3:]))


def test_flag_data_names_its_sources():
    assert set(DATA["provenance"]) >= {"make_examples_options", "train", "dv_config", "call_variants",
                                       "postprocess_variants", "run_deepvariant", "shuffle_tfrecords_beam", "hap.py"}
    assert all(p["repository"] and p["path"] for p in DATA["provenance"].values())
    assert {"--input_pattern_list", "--output_pattern_prefix"} <= set(BINARIES["shuffle_tfrecords_beam"])
