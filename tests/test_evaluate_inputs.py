"""evaluate input handling: sample selection, genotype forms, filters, contig naming."""

from __future__ import annotations

from pathlib import Path

import pysam
import pytest
from click.testing import CliRunner

from dvtrain.config import EvaluateConfig
from dvtrain.errors import InputError
from dvtrain.evaluate import evaluate, read_summary, summary_path


def vcf(path: Path, records: list[tuple], samples=("S",), chrom="chr1") -> Path:
    """bgzipped + tabix-indexed VCF; a record is (pos, ref, alt, gt..., [filter via dict])."""
    head = ["##fileformat=VCFv4.2", f"##contig=<ID={chrom},length=1000>",
            '##FILTER=<ID=LowQual,Description="low">',
            '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
            "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *samples])]
    lines = []
    for r in records:
        pos, ref, alt, *gts = r
        flt = "PASS"
        if gts and isinstance(gts[-1], dict):
            flt = gts.pop()["filter"]
        lines.append("\t".join([chrom, str(pos), ".", ref, alt, "50", flt, ".", "GT", *gts]))
    plain = path.with_suffix("")
    plain.write_text("\n".join(head + lines) + "\n")
    pysam.tabix_compress(str(plain), str(path), force=True)
    pysam.tabix_index(str(path), preset="vcf", force=True)
    return path


def run(tmp_path: Path, truth: Path, query: Path, **kw) -> dict:
    rows = evaluate(EvaluateConfig(truth_vcf=truth, query_vcf=query, output_prefix=tmp_path / "out", **kw))
    return {(r["Type"], r["Filter"]): r for r in rows}


TRUTH = [(10, "A", "C", "0/1"), (20, "G", "T", "1/1"), (30, "C", "G", "0/1")]


def test_multisample_query_first_sample_by_default_or_named(tmp_path):
    truth = vcf(tmp_path / "t.vcf.gz", TRUTH)
    query = vcf(tmp_path / "q.vcf.gz", [(10, "A", "C", "0/1", "1/1"), (20, "G", "T", "1/1", "0/0"),
                                        (30, "C", "G", "0/1", "0/1")], samples=("A", "B"))
    snp = run(tmp_path, truth, query)["SNP", "PASS"]
    assert (snp["TRUTH.TP"], snp["TRUTH.FN"], snp["QUERY.FP"]) == (3, 0, 0)
    snp = run(tmp_path, truth, query, query_sample="B")["SNP", "PASS"]
    # B: pos 10 hom (FP.gt, truth FN), pos 20 0/0 (not a call, truth FN), pos 30 TP
    assert (snp["TRUTH.TP"], snp["TRUTH.FN"], snp["QUERY.TOTAL"], snp["QUERY.FP"], snp["FP.gt"]) == (1, 2, 2, 1, 1)


def test_multisample_truth_named(tmp_path):
    truth = vcf(tmp_path / "t.vcf.gz", [(10, "A", "C", "1/1", "0/1"), (20, "G", "T", "0/0", "1/1")], samples=("X", "NA12878"))
    query = vcf(tmp_path / "q.vcf.gz", [(10, "A", "C", "0/1"), (20, "G", "T", "1/1")])
    assert run(tmp_path, truth, query)["SNP", "PASS"]["TRUTH.TP"] == 0
    snp = run(tmp_path, truth, query, truth_sample="NA12878")["SNP", "PASS"]
    assert (snp["TRUTH.TOTAL"], snp["TRUTH.TP"], snp["QUERY.FP"]) == (2, 2, 0)


@pytest.mark.parametrize("which", ["truth_sample", "query_sample"])
def test_unknown_sample_is_one_line_error(tmp_path, which):
    truth = vcf(tmp_path / "t.vcf.gz", TRUTH, samples=("T1",))
    query = vcf(tmp_path / "q.vcf.gz", TRUTH, samples=("Q1",))
    with pytest.raises(InputError) as e:
        run(tmp_path, truth, query, **{which: "nobody"})
    msg = str(e.value)
    assert "\n" not in msg and "nobody" in msg
    assert ("t.vcf.gz" in msg and "T1" in msg) if which == "truth_sample" else ("q.vcf.gz" in msg and "Q1" in msg)
    assert not summary_path(tmp_path / "out").exists()


def test_haploid_genotypes_are_homozygous(tmp_path):
    truth = vcf(tmp_path / "t.vcf.gz", [(10, "A", "C", "1"), (20, "G", "T", "1"), (30, "C", "G", "1/1"), (40, "T", "A", "0")])
    query = vcf(tmp_path / "q.vcf.gz", [(10, "A", "C", "1"), (20, "G", "T", "0/1"), (30, "C", "G", "1"), (40, "T", "A", "1")])
    snp = run(tmp_path, truth, query)["SNP", "PASS"]
    # 10: 1 vs 1 TP; 20: 1 vs 0/1 FP.gt; 30: 1/1 vs 1 TP; 40: truth 0 is no variant -> query FP
    assert (snp["TRUTH.TOTAL"], snp["TRUTH.TP"], snp["TRUTH.FN"]) == (3, 2, 1)
    assert (snp["QUERY.TOTAL"], snp["QUERY.FP"], snp["FP.gt"]) == (4, 2, 1)
    assert snp["TRUTH.TOTAL.het_hom_ratio"] == 0.0  # 0 het / 3 hom


def test_missing_genotypes_are_not_calls(tmp_path):
    truth = vcf(tmp_path / "t.vcf.gz", [(10, "A", "C", "0/1"), (20, "G", "T", "./."), (30, "C", "G", "0/1")])
    query = vcf(tmp_path / "q.vcf.gz", [(10, "A", "C", "./."), (20, "G", "T", "."), (30, "C", "G", "./1"),
                                        (40, "T", "A", ".|.")])
    snp = run(tmp_path, truth, query)["SNP", "PASS"]
    # truth ./. is no variant; query ./. . .|. are skipped; ./1 is one copy (het) -> TP
    assert (snp["TRUTH.TOTAL"], snp["TRUTH.TP"], snp["TRUTH.FN"]) == (2, 1, 1)
    assert (snp["QUERY.TOTAL"], snp["QUERY.FP"]) == (1, 0)


def test_phased_genotypes_match_unphased(tmp_path):
    truth = vcf(tmp_path / "t.vcf.gz", [(10, "A", "C", "0|1"), (20, "G", "T", "1|0"), (30, "C", "G", "1|1"),
                                        (40, "T", "A,G", "1|2")])
    query = vcf(tmp_path / "q.vcf.gz", [(10, "A", "C", "0/1"), (20, "G", "T", "0|1"), (30, "C", "G", "1/1"),
                                        (40, "T", "A,G", "2/1")])
    snp = run(tmp_path, truth, query)["SNP", "PASS"]
    assert (snp["TRUTH.TOTAL"], snp["TRUTH.TP"], snp["QUERY.FP"]) == (5, 5, 0)


def test_filtered_records_all_vs_pass(tmp_path):
    truth = vcf(tmp_path / "t.vcf.gz", [(10, "A", "C", "0/1"), (20, "G", "T", "1/1", {"filter": "LowQual"}),
                                        (30, "C", "G", "0/1")])
    query = vcf(tmp_path / "q.vcf.gz", [(10, "A", "C", "0/1", {"filter": "LowQual"}), (20, "G", "T", "1/1"),
                                        (30, "C", "G", "0/1", {"filter": "."})])
    rows = run(tmp_path, truth, query)
    a, p = rows["SNP", "ALL"], rows["SNP", "PASS"]
    # truth: only PASS/'.' records (10, 30); query ALL has 10, 20, 30, PASS has 20, 30
    assert (a["TRUTH.TOTAL"], a["TRUTH.TP"], a["QUERY.TOTAL"], a["QUERY.FP"]) == (2, 2, 3, 1)
    assert (p["TRUTH.TOTAL"], p["TRUTH.TP"], p["TRUTH.FN"], p["QUERY.TOTAL"], p["QUERY.FP"]) == (2, 1, 1, 2, 1)


def test_chr_prefix_mismatch_is_matched_with_warning(tmp_path, capsys):
    truth = vcf(tmp_path / "t.vcf.gz", TRUTH, chrom="chr1")
    query = vcf(tmp_path / "q.vcf.gz", TRUTH, chrom="1")
    bed = tmp_path / "conf.bed"
    bed.write_text("1\t0\t25\n")  # covers 10 and 20, not 30
    rows = run(tmp_path, truth, query, confident_bed=bed)
    snp = rows["SNP", "PASS"]
    assert (snp["TRUTH.TOTAL"], snp["TRUTH.TP"], snp["QUERY.TOTAL"], snp["QUERY.FP"], snp["QUERY.UNK"]) == (2, 2, 3, 0, 1)
    err = capsys.readouterr().err
    assert "q.vcf.gz" in err and "conf.bed" in err and "'chr' prefix" in err
    # and the other way round: truth without, query with
    t2 = vcf(tmp_path / "t2.vcf.gz", TRUTH, chrom="1")
    q2 = vcf(tmp_path / "q2.vcf.gz", TRUTH, chrom="chr1")
    snp = run(tmp_path, t2, q2)["SNP", "PASS"]
    assert (snp["TRUTH.TP"], snp["QUERY.FP"]) == (3, 0)


def test_cli_sample_flags(tmp_path):
    from dvtrain.cli import cli

    truth = vcf(tmp_path / "t.vcf.gz", TRUTH)
    query = vcf(tmp_path / "q.vcf.gz", [(10, "A", "C", "0/0", "0/1"), (20, "G", "T", "0/0", "1/1"),
                                        (30, "C", "G", "0/0", "0/1")], samples=("A", "B"))
    res = CliRunner().invoke(cli, ["evaluate", str(truth), str(query), "-o", str(tmp_path / "cli"),
                                   "--query-sample", "B", "--truth-sample", "S"])
    assert res.exit_code == 0, res.output
    snp = {(r["Type"], r["Filter"]): r for r in read_summary(summary_path(tmp_path / "cli"))}["SNP", "PASS"]
    assert snp["TRUTH.TP"] == 3


def test_metrics_json_beside_summary(tmp_path):
    import json

    from dvtrain.evaluate import metrics_path

    truth = vcf(tmp_path / "t.vcf.gz", TRUTH, chrom="chr1")
    query = vcf(tmp_path / "q.vcf.gz", TRUTH[:2] + [(30, "C", "G", "./.")], chrom="1")
    bed = tmp_path / "conf.bed"
    bed.write_text("chr1\t0\t100\n")
    rows = evaluate(EvaluateConfig(truth_vcf=truth, query_vcf=query, confident_bed=bed, output_prefix=tmp_path / "m"))
    m = json.loads(metrics_path(tmp_path / "m").read_text())
    assert m["rows"] == rows and len(m["rows"]) == 4
    assert m["inputs"]["truth_vcf"] == str(truth) and m["inputs"]["query_sample"] is None
    assert m["counts"] == {"truth_records": 3, "query_records": 3, "query_calls": 2, "truth_events": 3,
                           "query_events": 2, "confident_intervals": 1}
    assert m["contig_renames"] == {str(query): {"1": "chr1"}}
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]
    snp = {(r["Type"], r["Filter"]): r for r in m["rows"]}["SNP", "PASS"]
    assert (snp["TRUTH.TP"], snp["TRUTH.FN"]) == (2, 1)
