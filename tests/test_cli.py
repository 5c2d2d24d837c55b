"""The dvtrain CLI: one subcommand per stage, one-line errors, fail-fast case-study checks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def dvtrain(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dvtrain.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=300)


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.strip() and not l.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("dvtrain: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


def test_help_lists_every_stage():
    out = dvtrain("--help").stdout
    for cmd in ("simulate", "coverage", "make-examples", "shuffle", "train", "call", "evaluate", "run"):
        assert cmd in out


def test_stages_chain_on_real_reads(tiny, tmp_path):
    me = dvtrain("make-examples", "--mode", "calling", "--ref", tiny / "q.fa", "--reads", tiny / "NA12878.chr22.tiny.bam",
                 "--examples", tmp_path / "q.tfrecord@2.gz", "--task", "1", "--regions", "q:1-12356")
    assert me.returncode == 0, me.stderr
    res = json.loads(me.stdout)
    assert res["path"].endswith("q.tfrecord-00001-of-00002.gz") and res["num_examples"] > 0
    ev = dvtrain("evaluate", tiny / "NA12878.chr22.tiny.giab.vcf", tiny / "NA12878.chr22.tiny.giab.vcf",
                 "-r", tiny / "q.fa", "-o", tmp_path / "self")
    assert ev.returncode == 0, ev.stderr
    assert "| SNP | 1.0000 | 1.0000 | 1.0000 | 14 | 0 | 0 |" in ev.stdout
    assert "no ##contig line for 'q'" in ev.stderr  # handled, with one warning


@pytest.fixture
def demo_yaml(tiny, tmp_path):
    bed = tmp_path / "truth.bed"
    bed.write_text("q\t0\t12356\n")

    def write(**over) -> Path:
        cfg = {"reference": str(tiny / "q.fa"), "truth_vcf": str(tiny / "NA12878.chr22.tiny.giab.vcf"),
               "truth_bed": str(bed), "reads": [str(tiny / "NA12878.chr22.tiny.bam")],
               "splits": {"train": ["q"], "tune": ["q"], "test": ["q"]},
               "baseline": {"reads": [str(tiny / "NA12878.chr22.tiny.bam")]}, "workdir": str(tmp_path / "wd")}
        cfg.update(over)
        path = tmp_path / "cs.yaml"
        path.write_text(json.dumps(cfg))
        return path

    return write


def test_run_checks_inputs_before_starting(demo_yaml, tmp_path):
    assert_one_line_error(dvtrain("run", "--config", demo_yaml()), "contig 'q' is in both splits.train and splits.tune")
    ok_splits = {"splits": {"train": ["q"], "tune": [], "test": []}}
    assert_one_line_error(dvtrain("run", "--config", demo_yaml(**ok_splits)), "splits.tune")  # empty split
    bad = dvtrain("run", "--config", demo_yaml(reads=[str(tmp_path / "missing.bam")]), "--set", "splits.tune=[]")
    assert_one_line_error(bad, "splits.tune")
    assert_one_line_error(dvtrain("run", "--config", tmp_path / "nope.yaml"), "nope.yaml: config file does not exist")
    assert_one_line_error(dvtrain("run", "--config", demo_yaml(), "--set", "min_coverage=-1"), "min_coverage")
    assert_one_line_error(dvtrain("run", "--config", demo_yaml(), "--set", "baseline.downsample_fractions=[0.5,1.5]"),
                          "downsample_fractions")
    assert not (tmp_path / "wd").exists()


def test_stage_errors_are_one_line(tiny, tmp_path):
    junk = tmp_path / "junk.bam"
    junk.write_text("not a bam")
    assert_one_line_error(dvtrain("coverage", "--reads", junk, "--truth_bed", tmp_path / "x.bed",
                                  "--output_bed", tmp_path / "out.bed"), "junk.bam")
    assert_one_line_error(dvtrain("call", "--examples", tmp_path / "none.tfrecord@1.gz", "--checkpoint", tmp_path / "m.keras",
                                  "--ref", tiny / "q.fa", "--outfile", tmp_path / "o.vcf.gz"), "none.tfrecord-00000-of-00001.gz")
    assert_one_line_error(dvtrain("make-examples", "--mode", "training", "--ref", tiny / "q.fa", "--reads",
                                  tiny / "NA12878.chr22.tiny.bam", "--examples", tmp_path / "t.tfrecord@1.gz"),
                          "--truth_variants")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.bam"]



def test_channels_flag_takes_deepvariant_names(tiny, tmp_path):
    me = dvtrain("make-examples", "--mode", "calling", "--ref", tiny / "q.fa", "--reads", tiny / "NA12878.chr22.tiny.bam",
                 "--examples", tmp_path / "h.tfrecord@1.gz", "--regions", "q:1-3000",
                 "--channels", "insert_size,homopolymer_weighted,is_homopolymer")
    assert me.returncode == 0, me.stderr
    info = json.loads(Path(json.loads(me.stdout)["example_info"]).read_text())
    assert info["channels"] == [1, 2, 3, 4, 5, 6, 19, 17, 16] and info["shape"][2] == 9
    bad = dvtrain("make-examples", "--mode", "calling", "--ref", tiny / "q.fa", "--reads", tiny / "NA12878.chr22.tiny.bam",
                  "--examples", tmp_path / "g.tfrecord@1.gz", "--channels", "gc_content")
    assert_one_line_error(bad, "unsupported optional channels: ['gc_content']")
    assert not list(tmp_path.glob("g.*"))


@pytest.mark.slow
def test_flow_runs_from_python_with_no_server_configured(tmp_path):
    """Ephemeral mode: no PREFECT_API_URL, a fresh PREFECT_HOME; Prefect starts its own server."""
    import os

    import yaml

    from dvtrain.config import SimulateConfig
    from dvtrain.simulate import simulate

    ds = simulate(SimulateConfig(outdir=tmp_path / "data", seed=3,
                                 contigs={"chr1": 30_000, "chr21": 15_000, "chr20": 20_000}))
    cfg = {"reference": ds["ref"], "truth_vcf": ds["truth_vcf"], "truth_bed": ds["truth_bed"],
           "reads": [ds["bams"]["lowcov"]], "baseline": {"reads": [ds["bams"]["generic"]]},
           "workdir": str(tmp_path / "wd"), "baseline_epochs": 1, "custom_epochs": 1, "shards": 1,
           "architecture": "small_cnn",  # not the default: it must reach both trainings
           "peers": []}  # peers are covered by test_peers / the e2e case-study test
    (tmp_path / "cs.yaml").write_text(yaml.safe_dump(cfg))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="240")
    code = "import sys; from flows import run_case_study; r = run_case_study(sys.argv[1]); print(len(r['rows']))"
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "cs.yaml")], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "4"  # baseline/custom x SNP/INDEL
    assert (tmp_path / "wd" / "report.json").exists() and (tmp_path / "prefect-home" / "prefect.db").exists()
    for model in ("baseline", "custom"):
        summary = json.loads((tmp_path / "wd" / model / "train" / "train_summary.json").read_text())
        assert summary["architecture"] == "small_cnn"


def test_vsc_min_snp_lod_flag_drops_weak_snp_candidates_on_real_reads(tiny, tmp_path):
    """On the real 39x slice the likelihood-ratio filter drops SNP candidates whose few alt
    reads show low-quality bases against the depth, and keeps all 14 GIAB SNPs."""
    def sites(name, *extra):
        proc = dvtrain("make-examples", "--mode", "calling", "--ref", tiny / "q.fa", "--reads",
                       tiny / "NA12878.chr22.tiny.bam", "--examples", tmp_path / f"{name}.tfrecord@1.gz",
                       "--vsc_min_count_snps", "1", *extra)
        assert proc.returncode == 0, proc.stderr
        from dvtrain.example_proto import decode_example, decode_variant
        from dvtrain.fileio import read_tfrecords

        out = set()
        for rec in read_tfrecords(json.loads(proc.stdout)["path"]):
            v = decode_variant(decode_example(rec)["variant/encoded"][0])
            out.add((v["start"], v["reference_bases"], tuple(v["alternate_bases"])))
        return out

    everything, filtered = sites("all"), sites("lod", "--vsc_min_snp_lod", "2")
    assert filtered < everything
    giab = {(int(line.split("\t")[1]) - 1, line.split("\t")[3], (line.split("\t")[4],))
            for line in (tiny / "NA12878.chr22.tiny.giab.vcf").read_text().splitlines() if not line.startswith("#")}
    assert len(giab) == 14 and giab <= filtered
