"""Which events the confident BED keeps, checked against what we did not write.

* hap.py's own decisions as its authors documented them: Illumina/hap.py#34 (a deletion that
  starts before a confident region and ends inside it is counted, ``Regions=CONF``) and #91
  (an insertion's region takes the bases before and after the inserted sequence).
* Debian's bcftools: ``bcftools view -R BED --regions-overlap 1`` keeps the records that
  overlap a BED, which is RTG vcfeval ``--bed-regions``' rule. On real truth sets and BEDs
  full of holes (Platinum chr21 with its 145,870 confident intervals; GIAB chr20 with the
  coverage BED of DeepVariant's test BAM downsampled to 4x) the records ``dvtrain
  evaluate`` scores must be bcftools' records plus, at most, insertions whose anchor is the
  base just before an interval (hap.py's padding), and nothing else.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pysam
import pytest

from dvtrain.bed import read_bed
from dvtrain.config import CoverageConfig, EvaluateConfig
from dvtrain.coverage import coverage_bed
from dvtrain.evaluate import evaluate

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DV = DATA / "deepvariant-testdata"
PLATINUM = DATA / "platinum-na12878-chr21"

HEADER = ("##fileformat=VCFv4.2\n##contig=<ID=20,length=64444167>\n"
          '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
          "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS\n")


def _rows(tmp: Path, truth: list[str], bed: str, rule: str, query: list[str] = ()) -> dict:
    (tmp / "t.vcf").write_text(HEADER + "".join(truth))
    (tmp / "q.vcf").write_text(HEADER + "".join(query))
    (tmp / "c.bed").write_text(bed)
    rows = evaluate(EvaluateConfig(truth_vcf=tmp / "t.vcf", query_vcf=tmp / "q.vcf", confident_bed=tmp / "c.bed",
                                   output_prefix=tmp / rule / "e", region_rule=rule))
    return {(r["Type"], r["Filter"]): r for r in rows}


def test_happy_34_deletion_ending_inside_a_region_is_counted(tmp_path):
    # the record and BED line of Illumina/hap.py#34: hap.py reported it FN with Regions=CONF
    truth = ["20\t16755600\t.\tAAGAAAAAAG\tA\t50\tPASS\t.\tGT\t0/1\n"]
    bed = "20\t16755608\t16790996\n"
    happy = _rows(tmp_path, truth, bed, "overlap")["INDEL", "PASS"]
    assert (happy["TRUTH.TOTAL"], happy["TRUTH.FN"]) == (1, 1)
    deepvariant = _rows(tmp_path, truth, bed, "contain")["INDEL", "PASS"]
    assert deepvariant["TRUTH.TOTAL"] == 0  # DeepVariant's rule: not wholly inside


def test_happy_91_insertion_takes_the_base_after_it(tmp_path):
    # region [1000, 2000) 0-based: the first confident base is POS 1001
    truth = [
        "20\t999\t.\tC\tCA\t50\tPASS\t.\tGT\t0/1\n",    # anchor two bases before: outside
        "20\t1000\t.\tG\tGT\t50\tPASS\t.\tGT\t0/1\n",   # anchor just before, inserted before 1001: inside
        "20\t1000\t.\tG\tA\t50\tPASS\t.\tGT\t0/1\n",    # a SNP on that anchor: outside
        "20\t2000\t.\tT\tTGG\t50\tPASS\t.\tGT\t1/1\n",  # anchor on the last confident base: inside
    ]
    query = [truth[1], "20\t2001\t.\tA\tAC\t50\tPASS\t.\tGT\t0/1\n"]  # the second: anchor past the end, UNK
    rows = _rows(tmp_path, truth, "20\t1000\t2000\n", "overlap", query)
    ind, snp = rows["INDEL", "PASS"], rows["SNP", "PASS"]
    assert (ind["TRUTH.TOTAL"], ind["TRUTH.TP"], ind["QUERY.UNK"], ind["QUERY.FP"]) == (2, 1, 1, 0)
    assert snp["TRUTH.TOTAL"] == 0


def _scored_truth_records(prefix: Path) -> set[tuple[str, int, str]]:
    with pysam.VariantFile(f"{prefix}.vcf.gz") as vcf:
        return {(r.contig, r.pos, r.ref) for r in vcf if r.samples["TRUTH"]["BD"] in ("TP", "FN")}


def _bcftools_records(vcf: Path, bed: Path) -> set[tuple[str, int, str]]:
    out = subprocess.run(["bcftools", "view", "-H", "-f", "PASS,.", "-R", str(bed), "--regions-overlap", "1",
                          str(vcf)], check=True, capture_output=True).stdout
    keep = set()
    for line in out.splitlines():
        f = line.split(b"\t")
        if b"<" in f[4]:  # symbolic alleles (<DEL>) are out of a small-variant benchmark's scope
            continue
        keep.add((f[0].decode(), int(f[1]), f[3].decode()))
    return keep


def _dv_coverage_bed(tmp: Path) -> Path:
    """The 4x coverage BED of DeepVariant's real test reads over the truth VCF's 100 kb."""
    sub, bam = tmp / "4x.unsorted.bam", tmp / "4x.bam"
    pysam.view("-b", "-s", "42.08", "-o", str(sub), str(DV / "NA12878_S1.chr20.10_10p1mb.bam"), catch_stdout=False)
    pysam.sort("-o", str(bam), str(sub), catch_stdout=False)  # the test BAM's header has no @HD SO (issue 29)
    pysam.index(str(bam))
    window = tmp / "window.bed"
    window.write_text("chr20\t10000000\t10100000\n")
    out = tmp / "coverage.bed"
    coverage_bed(CoverageConfig(reads=[bam], truth_bed=window, output_bed=out, min_coverage=2))
    return out


@pytest.mark.parametrize("dataset", ["platinum-chr21", "giab-chr20-4x-coverage"])
def test_overlap_rule_scores_the_records_bcftools_selects(dataset, tmp_path):
    if shutil.which("bcftools") is None:
        pytest.skip("bcftools is not installed (Debian: apt-get install bcftools)")
    if dataset == "platinum-chr21":
        if not PLATINUM.is_dir():
            pytest.skip(f"{PLATINUM} is absent")
        truth, bed = PLATINUM / "PG_NA12878_chr21.vcf.gz", tmp_path / "conf.bed"
        with gzip.open(PLATINUM / "PG_Conf_chr21.bed.gz", "rb") as src:
            bed.write_bytes(src.read())
    else:
        if not DV.is_dir():
            pytest.skip(f"{DV} is absent")
        truth, bed = DV / "test_nist.b37_chr20_100kbp_at_10mb.vcf.gz", _dv_coverage_bed(tmp_path)
    intervals = read_bed(bed)
    assert len(intervals) > 50  # a BED full of holes, which is where the rules differ
    prefix = tmp_path / "eval"
    evaluate(EvaluateConfig(truth_vcf=truth, query_vcf=truth, confident_bed=bed, output_prefix=prefix, threads=2))
    ours, theirs = _scored_truth_records(prefix), _bcftools_records(truth, bed)
    assert theirs and theirs <= ours
    starts = {(c, s) for c, s, _ in intervals}
    extra = ours - theirs
    # hap.py's padding: an insertion anchored on the base just before an interval also counts
    assert all(len(ref) == 1 and (c, pos) in starts for c, pos, ref in extra), sorted(extra)[:5]
    contained = tmp_path / "contained"
    evaluate(EvaluateConfig(truth_vcf=truth, query_vcf=truth, confident_bed=bed, output_prefix=contained,
                            threads=2, region_rule="contain"))
    inside = _scored_truth_records(contained)
    assert inside <= ours
    if dataset != "platinum-chr21":  # Platinum's BED is drawn around its records; a coverage BED is not
        assert ours - inside  # records that cross a hole's edge: where the two rules differ
