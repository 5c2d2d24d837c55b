"""dvtrain call-bam (issue 26): reference + BAM + trained model -> VCF, with the image shape,
channels and thresholds the model was trained with, read from the example_info.json that
make_examples, shuffle and train carry to it."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from dvtrain.call import call_variants
from dvtrain.call_bam import call_bam, model_settings, plan
from dvtrain.config import CallBamConfig, CallConfig, MakeExamplesConfig, ShuffleConfig, TrainConfig
from dvtrain.errors import DvtrainError, InputError
from dvtrain.make_examples import make_examples
from dvtrain.shuffle import shuffle
from dvtrain.train import train

REPO = Path(__file__).resolve().parents[1]
# low-coverage settings unlike make_examples' defaults, so that a default slipping in shows
LOWCOV = dict(vsc_min_count_snps=1, pileup_image_height=32, channels=["insert_size", "homopolymer_weighted"],
              indel_haplotype_support=False)


@pytest.fixture(scope="module")
def model(tiny_stage, tmp_path_factory) -> Path:
    """A model trained on the real reads' examples made with LOWCOV, to be called with a SNP LOD filter."""
    out = tmp_path_factory.mktemp("call-bam-model")
    make_examples(MakeExamplesConfig(examples=str(out / "ex.tfrecord@1.gz"), **tiny_stage["training"], **LOWCOV))
    sh = shuffle(ShuffleConfig(input_pattern_list=[str(out / "ex.tfrecord@1.gz")],
                               output_pattern_prefix=str(out / "train"), output_dataset_name="train", num_shards=1))
    trained = train(TrainConfig(train_dataset_config=sh["dataset_config"], tune_dataset_config=sh["dataset_config"],
                                experiment_dir=out / "exp", epochs=1, batch_size=8, calling_vsc_min_snp_lod=1.5))
    return Path(trained["best_model"])


def test_the_model_records_how_its_examples_were_made(model):
    info = json.loads((model.parent / "example_info.json").read_text())
    assert info["shape"] == [32, 221, 8] and info["channels"] == [1, 2, 3, 4, 5, 6, 19, 17]
    assert info["make_examples"]["vsc_min_count_snps"] == 1 and info["make_examples"]["vsc_min_snp_lod"] is None
    assert info["make_examples"]["indel_haplotype_support"] is False
    assert info["calling"] == {"vsc_min_snp_lod": 1.5}  # what calling adds to the training options
    settings = model_settings(model)
    assert settings.options["vsc_min_snp_lod"] == 1.5 and settings.options["pileup_image_height"] == 32
    assert settings.options["channels"] == LOWCOV["channels"]


def test_call_bam_calls_as_the_model_was_trained_and_as_the_stages_do_by_hand(model, tiny, tmp_path):
    """call-bam's VCF holds the very calls of make_examples + call run by hand with the
    model's options; its shards ran in parallel processes."""
    reads = [tiny / "NA12878.chr22.tiny.bam"]
    got = call_bam(CallBamConfig(model=model, ref=tiny / "q.fa", reads=reads, output_vcf=tmp_path / "a.vcf.gz",
                                 output_gvcf=tmp_path / "a.g.vcf.gz", num_shards=2))
    assert got["options"]["vsc_min_snp_lod"] == 1.5 and got["options"]["vsc_min_count_snps"] == 1
    assert got["notes"] == [] and (tmp_path / "a.vcf.gz.tbi").exists() and (tmp_path / "a.g.vcf.gz.tbi").exists()
    assert got["sample_name"] == "1"  # the SM of the BAM's read group (freebayes' test BAM says 1)
    shards = sorted((tmp_path / "a.intermediate").glob("examples.tfrecord-*-of-00002.gz"))
    assert len(shards) == 2

    spec = str(tmp_path / "hand" / "ex.tfrecord@1.gz")
    make_examples(MakeExamplesConfig(mode="calling", ref=tiny / "q.fa", reads=reads, examples=spec,
                                     vsc_min_snp_lod=1.5, **LOWCOV))
    call_variants(CallConfig(examples=spec, checkpoint=model, ref=tiny / "q.fa", outfile=tmp_path / "b.vcf.gz",
                             reads=reads))

    def body(path: Path) -> list[str]:
        return [line for line in gzip.open(path, "rt") if not line.startswith("#")]

    assert body(tmp_path / "a.vcf.gz") == body(tmp_path / "b.vcf.gz") and body(tmp_path / "a.vcf.gz")
    header = "".join(line for line in gzip.open(tmp_path / "a.vcf.gz", "rt") if line.startswith("##dvtrain"))
    assert "--vsc_min_snp_lod 1.5" in header and "--noindel_haplotype_support" in header
    # the same call again: the same bytes
    again = call_bam(CallBamConfig(model=model, ref=tiny / "q.fa", reads=reads, output_vcf=tmp_path / "c.vcf.gz",
                                   num_shards=1))
    assert gzip.open(again["vcf"]).read() == gzip.open(tmp_path / "a.vcf.gz").read()


@pytest.mark.parametrize("flag, value, shown", [
    ("vsc_min_count_snps", 2, "takes 1"),
    ("pileup_image_height", 100, "takes 32"),
    ("channels", ["insert_size"], "takes insert_size,homopolymer_weighted"),
    ("vsc_min_snp_lod", 2.5, "takes 1.5"),
    ("indel_haplotype_support", True, "takes false"),
])
def test_an_option_that_disagrees_with_the_model_is_refused_before_any_work(model, tiny, tmp_path, flag, value, shown):
    cfg = CallBamConfig(model=model, ref=tiny / "q.fa", reads=[tiny / "NA12878.chr22.tiny.bam"],
                        output_vcf=tmp_path / "x.vcf.gz", **{flag: value})
    with pytest.raises(DvtrainError, match=rf"^--{flag} .+: the model .+ {shown} \(.+example_info.json\)"):
        call_bam(cfg)
    assert list(tmp_path.iterdir()) == []


def test_options_that_agree_with_the_model_are_accepted(model, tiny, tmp_path):
    cfg = CallBamConfig(model=model, ref=tiny / "q.fa", reads=[tiny / "NA12878.chr22.tiny.bam"],
                        output_vcf=tmp_path / "x.vcf.gz", vsc_min_count_snps=1, pileup_image_height=32,
                        vsc_min_snp_lod=1.5, channels=["insert_size", "homopolymer_weighted"])
    assert plan(cfg).shards[0].vsc_min_count_snps == 1


def test_the_cli_refuses_a_disagreeing_flag_in_one_line(model, tiny, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "dvtrain.cli", "call-bam", "--model", str(model), "--ref",
                           str(tiny / "q.fa"), "--reads", str(tiny / "NA12878.chr22.tiny.bam"), "--output_vcf",
                           str(tmp_path / "x.vcf.gz"), "--pileup_image_height", "100"],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"dvtrain: error: --pileup_image_height 100: the model {model} takes 32 ({model.parent / 'example_info.json'}); "
        "leave the flag out to call as it was trained"]
    assert list(tmp_path.iterdir()) == []


def test_a_model_that_records_only_its_shape_is_called_with_defaults_and_a_note(model, tiny, tmp_path):
    """Models trained before options were recorded (or DeepVariant's example_info.json): shape
    and channels from the file, the rest make_examples' defaults or the flags, said in a note."""
    old = tmp_path / "old"
    old.mkdir()
    (old / "best_model.keras").write_bytes(model.read_bytes())
    (old / "example_info.json").write_text(json.dumps({"version": "1.6.1", "shape": [32, 221, 8],
                                                       "channels": [1, 2, 3, 4, 5, 6, 19, 17]}))
    p = plan(CallBamConfig(model=old / "best_model.keras", ref=tiny / "q.fa", reads=[tiny / "NA12878.chr22.tiny.bam"],
                           output_vcf=tmp_path / "o.vcf.gz", vsc_min_count_snps=1))
    assert p.shards[0].pileup_image_height == 32 and p.shards[0].channels == ["insert_size", "homopolymer_weighted"]
    assert p.shards[0].vsc_min_count_snps == 1  # not recorded: the flag decides
    assert p.shards[0].vsc_min_snp_lod is None and len(p.notes) == 1 and "vsc_min_count_indels" in p.notes[0]
    assert "vsc_min_count_snps" not in p.notes[0]


def test_an_unusable_example_info_is_one_line_naming_it(model, tiny, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "best_model.keras").write_bytes(model.read_bytes())
    (bad / "example_info.json").write_text(json.dumps({"shape": [32, 221, 8], "make_examples": {"vsc_min_cnt": 1}}))
    with pytest.raises(InputError, match=r"example_info.json: not a usable example_info.json \(unknown make_examples "
                                         r"option\(s\) vsc_min_cnt"):
        plan(CallBamConfig(model=bad / "best_model.keras", ref=tiny / "q.fa", reads=[tiny / "NA12878.chr22.tiny.bam"],
                           output_vcf=tmp_path / "o.vcf.gz"))


def test_the_call_variants_flow_calls_exactly_as_call_bam(model, tiny, tmp_path, prefect_server):
    """The on-demand deployment's flow runs the same plan through Prefect tasks: the same VCF."""
    from dvtrain.config import CallVariantsConfig
    from flows.call_variants import call_variants as flow

    reads = [tiny / "NA12878.chr22.tiny.bam"]
    direct = call_bam(CallBamConfig(model=model, ref=tiny / "q.fa", reads=reads, output_vcf=tmp_path / "a.vcf.gz",
                                    regions=["q:1-6000"], num_shards=1))
    out = flow(CallVariantsConfig(model=model, ref=tiny / "q.fa", reads=reads, output_vcf=tmp_path / "f.vcf.gz",
                                  regions=["q:1-6000"], num_shards=1, truth_vcf=tiny / "NA12878.chr22.tiny.giab.vcf"))
    assert gzip.open(out["vcf"]).read() == gzip.open(direct["vcf"]).read()
    assert out["evaluation"] and (tmp_path / "f.intermediate" / "eval.summary.csv").exists()
    with pytest.raises(DvtrainError, match="--vsc_min_count_snps 3: the model"):
        flow(CallVariantsConfig(model=model, ref=tiny / "q.fa", reads=reads, output_vcf=tmp_path / "g.vcf.gz",
                                vsc_min_count_snps=3))
