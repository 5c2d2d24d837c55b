"""evaluate: hand-built cases with known answers, and cross-checks on real truth sets."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
import subprocess
from pathlib import Path

import pysam
import pytest

from dvtrain.config import EvaluateConfig
from dvtrain.errors import InputError
from dvtrain.evaluate import COLUMNS, evaluate, read_summary, summary_path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PLATINUM = DATA / "platinum-na12878-chr21"
TINY = DATA / "na12878-chr22-tiny"

# ---------------------------------------------------------------- a tiny world
# c1 is ACGT repeated (no homopolymers) except a run of five A at 0-based 59..63.
SEQ = list("ACGT" * 50)
SEQ[59:64] = "AAAAA"
SEQ[64] = "C"
SEQ = "".join(SEQ)
assert SEQ[58] == "G" and SEQ[65] != "A"


def base(pos1: int, n: int = 1) -> str:
    return SEQ[pos1 - 1 : pos1 - 1 + n]


HEADER = (
    "##fileformat=VCFv4.2\n"
    "##contig=<ID=c1,length=200>\n"
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS\n"
)


def rec(pos: int, ref: str, alt: str, gt: str, flt: str = "PASS", chrom: str = "c1") -> str:
    return f"{chrom}\t{pos}\t.\t{ref}\t{alt}\t50\t{flt}\t.\tGT\t{gt}\n"


def write_vcf(path: Path, records: list[str], header: str = HEADER) -> Path:
    path.write_text(header + "".join(records))
    return path


@pytest.fixture
def world(tmp_path: Path) -> dict:
    fa = tmp_path / "ref.fa"
    fa.write_text(">c1\n" + "\n".join(SEQ[i : i + 60] for i in range(0, len(SEQ), 60)) + "\n")
    pysam.faidx(str(fa))
    bed = tmp_path / "conf.bed"
    bed.write_text("c1\t0\t140\n")
    truth = write_vcf(tmp_path / "truth.vcf", [
        rec(10, base(10), "T", "0/1"),            # TP            C>T  Ti het
        rec(20, base(20), "C", "1/1"),            # FN            T>C  Ti hom
        rec(40, base(40), "G", "0/1"),            # FN (gt)       T>G  Tv het
        rec(50, base(50), "T", "0/1"),            # FN (al)       C>T  Ti het
        rec(59, base(59, 2), base(59), "0/1"),    # TP indel, left-aligned GA>G
        rec(80, base(80), "A,C", "1/2"),          # two TP SNPs   T>A Tv, T>C Ti
        rec(90, base(90), "T", "0|1"),            # TP in ALL only C>T Ti het
        rec(100, base(100), "C", "0/1", "Uncertain"),  # not PASS: not truth
        rec(140, base(140, 2), base(140), "0/1"),  # REF span crosses the BED end: counted by overlap only
        rec(160, base(160), "G", "0/1"),          # outside the BED: not counted
    ])
    query = write_vcf(tmp_path / "query.vcf", [
        rec(10, base(10), "T", "0/1"),
        rec(20, base(20), "C", "0/0", "RefCall"),  # RefCall: not a call
        rec(30, base(30), "A", "0/1"),            # FP
        rec(40, base(40), "G", "1/1"),            # FP.gt
        rec(50, base(50), "G", "0/1"),            # FP.al
        rec(63, base(63, 2), base(63), "0/1"),    # same deletion, written right-shifted
        rec(70, base(70), "A", "0/0", "RefCall"),  # RefCall: not a call
        rec(80, base(80), "C,A", "2/1"),          # same alleles, other order
        rec(90, base(90), "T", "0/1", "LowQual"),  # matches, but not PASS
        rec(100, base(100), "C", "0/1"),          # FP (the truth record there is filtered)
        rec(140, base(140, 2), base(140), "0/1"),  # TP by overlap, UNK by containment
        rec(150, base(150), "A", "1/1"),          # UNK
    ])
    return {"ref": fa, "bed": bed, "truth": truth, "query": query, "tmp": tmp_path}


def run(world: dict, **kw) -> dict[tuple[str, str], dict]:
    args = dict(truth_vcf=world["truth"], query_vcf=world["query"], confident_bed=world["bed"],
                reference=world["ref"], output_prefix=world["tmp"] / "out" / "eval")
    args.update(kw)
    rows = evaluate(EvaluateConfig(**args))
    assert [(r["Type"], r["Filter"]) for r in rows] == [("INDEL", "ALL"), ("INDEL", "PASS"), ("SNP", "ALL"), ("SNP", "PASS")]
    return {(r["Type"], r["Filter"]): r for r in rows}


def counts(row: dict) -> dict:
    return {k: row[k] for k in ("TRUTH.TOTAL", "TRUTH.TP", "TRUTH.FN", "QUERY.TOTAL", "QUERY.FP", "QUERY.UNK", "FP.gt", "FP.al")}


def test_hand_built_counts(world):
    rows = run(world)
    assert counts(rows["SNP", "PASS"]) == {
        "TRUTH.TOTAL": 7, "TRUTH.TP": 3, "TRUTH.FN": 4,
        "QUERY.TOTAL": 8, "QUERY.FP": 4, "QUERY.UNK": 1, "FP.gt": 1, "FP.al": 1,
    }
    assert counts(rows["SNP", "ALL"]) == {
        "TRUTH.TOTAL": 7, "TRUTH.TP": 4, "TRUTH.FN": 3,
        "QUERY.TOTAL": 9, "QUERY.FP": 4, "QUERY.UNK": 1, "FP.gt": 1, "FP.al": 1,
    }
    # hap.py's rule: the deletion at 140 shares its first REF base with the BED, so it counts
    indel = {"TRUTH.TOTAL": 2, "TRUTH.TP": 2, "TRUTH.FN": 0, "QUERY.TOTAL": 2, "QUERY.FP": 0,
             "QUERY.UNK": 0, "FP.gt": 0, "FP.al": 0}
    assert counts(rows["INDEL", "PASS"]) == indel
    assert counts(rows["INDEL", "ALL"]) == indel
    # DeepVariant's containment rule leaves it out on both sides; SNPs are the same either way
    contained = run(world, region_rule="contain")
    indel = {"TRUTH.TOTAL": 1, "TRUTH.TP": 1, "TRUTH.FN": 0, "QUERY.TOTAL": 2, "QUERY.FP": 0,
             "QUERY.UNK": 1, "FP.gt": 0, "FP.al": 0}
    assert counts(contained["INDEL", "PASS"]) == indel
    assert counts(contained["INDEL", "ALL"]) == indel
    assert counts(contained["SNP", "PASS"]) == counts(rows["SNP", "PASS"])
    metrics = json.loads((world["tmp"] / "out" / "eval.metrics.json").read_text())
    assert metrics["options"]["region_rule"] == "contain"

    snp = rows["SNP", "PASS"]
    assert snp["METRIC.Recall"] == pytest.approx(3 / 7)
    assert snp["METRIC.Precision"] == pytest.approx(3 / 7)
    assert snp["METRIC.F1_Score"] == pytest.approx(3 / 7)
    assert snp["METRIC.Frac_NA"] == pytest.approx(1 / 8)
    # truth SNPs: Ti at 10, 20, 50, 80(C), 90; Tv at 40, 80(A); hom only at 20
    assert snp["TRUTH.TOTAL.TiTv_ratio"] == pytest.approx(5 / 2)
    assert snp["TRUTH.TOTAL.het_hom_ratio"] == pytest.approx(6 / 1)
    # query PASS SNPs: 10 C>T, 30 C>A, 40 T>G(hom), 50 C>G, 80 T>C, 80 T>A, 100 T>C, 150 C>A(hom)
    assert snp["QUERY.TOTAL.TiTv_ratio"] == pytest.approx(3 / 5)
    assert snp["QUERY.TOTAL.het_hom_ratio"] == pytest.approx(6 / 2)
    ind = rows["INDEL", "PASS"]
    assert ind["METRIC.Recall"] == ind["METRIC.Precision"] == ind["METRIC.F1_Score"] == 1.0
    assert ind["TRUTH.TOTAL.TiTv_ratio"] is None and ind["QUERY.TOTAL.TiTv_ratio"] is None
    assert ind["TRUTH.TOTAL.het_hom_ratio"] is None  # no hom indels: undefined, not inf


def test_summary_csv_format_and_determinism(world):
    rows = run(world)
    out = summary_path(world["tmp"] / "out" / "eval")
    text = out.read_text()
    lines = text.splitlines()
    assert lines[0] == ",".join(COLUMNS)
    assert lines[0].startswith("Type,Filter,TRUTH.TOTAL,TRUTH.TP,TRUTH.FN,QUERY.TOTAL,QUERY.FP,QUERY.UNK,FP.gt,FP.al,")
    assert [line.split(",")[:2] for line in lines[1:]] == [["INDEL", "ALL"], ["INDEL", "PASS"], ["SNP", "ALL"], ["SNP", "PASS"]]
    assert lines[4].startswith("SNP,PASS,7,3,4,8,4,1,1,1,0.428571,0.428571,0.125000,0.428571,2.500000,0.600000,6.000000,3.000000")
    indel = lines[2].split(",")
    assert indel[COLUMNS.index("TRUTH.TOTAL.TiTv_ratio")] == "" and indel[COLUMNS.index("TRUTH.TOTAL.het_hom_ratio")] == ""
    assert "nan" not in text.lower() and "inf" not in text.lower()
    back = read_summary(out)
    assert [(r["Type"], r["Filter"]) for r in back] == list(rows)
    for r in back:
        orig = rows[r["Type"], r["Filter"]]
        assert set(r) == set(COLUMNS)
        for k in COLUMNS:
            if isinstance(orig[k], float):
                assert r[k] == pytest.approx(orig[k], abs=5e-7)
            else:
                assert r[k] == orig[k]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp files left
    run(world)
    assert out.read_text() == text


def test_without_reference_indels_are_only_trimmed(world):
    rows = run(world, reference=None)
    # the right-shifted deletion cannot be left-aligned without the reference
    assert counts(rows["INDEL", "PASS"])["TRUTH.FN"] == 1
    assert counts(rows["INDEL", "PASS"])["QUERY.FP"] == 1
    assert counts(rows["SNP", "PASS"]) == counts(run(world)["SNP", "PASS"])


def test_no_bed_scores_everywhere(world):
    rows = run(world, confident_bed=None)
    snp = rows["SNP", "PASS"]
    assert snp["TRUTH.TOTAL"] == 8 and snp["QUERY.UNK"] == 0  # + 160
    assert snp["QUERY.FP"] == 5 and snp["TRUTH.FN"] == 5  # + 150 FP, + 160 FN
    assert rows["INDEL", "PASS"]["TRUTH.TOTAL"] == 2 and rows["INDEL", "PASS"]["TRUTH.TP"] == 2


def test_regions_restrict_contigs(world):
    rows = run(world, regions=["c1"])
    assert rows["SNP", "PASS"]["TRUTH.TOTAL"] == 7
    with pytest.raises(InputError, match="not contigs"):
        run(world, regions=["c9"])


def test_multiallelic_het_alt_partial_match(world):
    tmp = world["tmp"]
    write_vcf(world["truth"], [rec(80, base(80), "A,C", "1/2")])
    write_vcf(world["query"], [rec(80, base(80), "C", "1/1"), rec(80, base(80), "A", "0/1")])
    rows = run(world)
    assert counts(rows["SNP", "PASS"]) == {
        "TRUTH.TOTAL": 2, "TRUTH.TP": 1, "TRUTH.FN": 1,
        "QUERY.TOTAL": 2, "QUERY.FP": 1, "QUERY.UNK": 0, "FP.gt": 1, "FP.al": 0,
    }
    assert (tmp / "out" / "eval.summary.csv").exists()


def test_empty_query_gives_undefined_precision(world):
    write_vcf(world["query"], [])
    row = run(world)["SNP", "PASS"]
    assert row["QUERY.TOTAL"] == 0 and row["METRIC.Recall"] == 0.0
    assert row["METRIC.Precision"] is None and row["METRIC.F1_Score"] is None and row["METRIC.Frac_NA"] is None


# ---------------------------------------------------------------- bad input
def test_missing_file(world):
    with pytest.raises(InputError) as e:
        run(world, query_vcf=world["tmp"] / "nope.vcf")
    assert "nope.vcf" in str(e.value)


def test_malformed_line(world):
    write_vcf(world["query"], [rec(10, base(10), "T", "0/1"), "c1\tten\t.\tC\tT\t50\tPASS\t.\tGT\t0/1\n"])
    with pytest.raises(InputError) as e:
        run(world)
    assert e.value.path == str(world["query"]) and "line" in e.value.problem


def test_query_contig_not_in_reference(world):
    write_vcf(world["query"], [rec(10, "C", "T", "0/1", chrom="chr1")])
    with pytest.raises(InputError) as e:
        run(world)
    assert e.value.path == str(world["query"]) and "not in the reference" in e.value.problem


def test_ref_mismatch_is_reported(world):
    wrong = {"A": "C", "C": "G", "G": "T", "T": "A"}[base(10)]
    write_vcf(world["query"], [rec(10, wrong, "T" if wrong != "T" else "A", "0/1")])
    with pytest.raises(InputError) as e:
        run(world)
    assert e.value.path == str(world["query"]) and "disagrees with the reference" in e.value.problem


def test_sites_only_vcf_rejected(world):
    world["query"].write_text(HEADER.replace("\tFORMAT\tS", "") + "c1\t10\t.\tC\tT\t50\tPASS\t.\n")
    with pytest.raises(InputError, match="no sample column"):
        run(world)


def test_bad_bed(world):
    world["bed"].write_text("c1\t100\t50\n")
    with pytest.raises(InputError) as e:
        run(world)
    assert e.value.path == str(world["bed"])
    world["bed"].unlink()
    with pytest.raises(InputError, match="does not exist"):
        run(world)


def test_failed_run_leaves_no_summary(world):
    write_vcf(world["query"], ["c1\t10\t.\tC\tT\n"])
    with pytest.raises(InputError):
        run(world)
    assert not summary_path(world["tmp"] / "out" / "eval").exists()


# ---------------------------------------------------------------- real data
needs_platinum = pytest.mark.skipif(
    not (PLATINUM / "PG_NA12878_chr21.vcf.gz").exists(),
    reason=f"Platinum chr21 data not found at {PLATINUM} (shared/data is absent)",
)
needs_tiny = pytest.mark.skipif(
    not (TINY / "NA12878.chr22.tiny.giab.vcf").exists(),
    reason=f"tiny NA12878 chr22 data not found at {TINY} (shared/data is absent)",
)


def _records(vcf: Path) -> list[list[str]]:
    with gzip.open(vcf, "rt") as fh:
        return [line.rstrip("\n").split("\t") for line in fh if not line.startswith("#")]


def _merged_bed(bed: Path) -> dict[str, list[tuple[int, int]]]:
    by: dict[str, list[tuple[int, int]]] = {}
    with gzip.open(bed, "rt") as fh:
        for line in fh:
            c, s, e = line.split("\t")[:3]
            by.setdefault(c, []).append((int(s), int(e)))
    merged: dict[str, list[tuple[int, int]]] = {}
    for c, ivs in by.items():
        ivs.sort()
        out = [list(ivs[0])]
        for s, e in ivs[1:]:
            if s <= out[-1][1]:
                out[-1][1] = max(out[-1][1], e)
            else:
                out.append([s, e])
        merged[c] = [tuple(x) for x in out]
    return merged


def _inside_keys(vcf: Path, bed: Path, tmp: Path) -> set[tuple[str, str]]:
    """(CHROM, POS) of PASS records whose whole REF span lies in the BED, computed
    independently: with bcftools + bedtools when installed, else by a plain scan.
    Records with symbolic alleles (Platinum has a dozen ``<DEL>``) are left out: a
    small-variant benchmark skips them."""
    if shutil.which("bcftools") and shutil.which("bedtools"):
        merged = tmp / "merged.bed"
        merged.write_text(subprocess.run(["bedtools", "merge", "-i", str(bed)], check=True, capture_output=True, text=True).stdout)
        passed = tmp / "pass.vcf"
        passed.write_text(subprocess.run(["bcftools", "view", "-f", "PASS,.", "-e", 'ALT~"<"', str(vcf)], check=True, capture_output=True, text=True).stdout)
        out = subprocess.run(["bedtools", "intersect", "-a", str(passed), "-b", str(merged), "-f", "1.0", "-u"],
                             check=True, capture_output=True, text=True).stdout
        return {(f[0], f[1]) for f in (line.split("\t") for line in out.splitlines() if line and not line.startswith("#"))}
    keys = set()
    merged_ivs = _merged_bed(bed)
    for f in _records(vcf):
        if f[6] not in ("PASS", ".") or "<" in f[4]:
            continue
        s = int(f[1]) - 1
        e = s + len(f[3])
        if any(a <= s and e <= b for a, b in merged_ivs.get(f[0], [])):
            keys.add((f[0], f[1]))
    return keys


def _alleles(gt_field: str) -> list[int]:
    gt = gt_field.split(":")[0].replace("|", "/").split("/")
    return sorted({int(a) for a in gt if a not in (".", "0")})


def _allele_type(ref: str, alt: str) -> str:
    # the Platinum records are already trimmed per allele except shared-prefix multi-allelics
    while len(ref) > 1 and len(alt) > 1 and ref[-1] == alt[-1]:
        ref, alt = ref[:-1], alt[:-1]
    while len(ref) > 1 and len(alt) > 1 and ref[0] == alt[0]:
        ref, alt = ref[1:], alt[1:]
    return "SNP" if len(ref) == 1 and len(alt) == 1 else "INDEL"


@pytest.fixture(scope="module")
def platinum_self(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("platinum")
    vcf, bed = PLATINUM / "PG_NA12878_chr21.vcf.gz", PLATINUM / "PG_Conf_chr21.bed.gz"
    rows = evaluate(EvaluateConfig(truth_vcf=vcf, query_vcf=vcf, confident_bed=bed, output_prefix=tmp / "self"))
    records = _records(vcf)
    inside = _inside_keys(vcf, bed, tmp)
    return {"rows": {(r["Type"], r["Filter"]): r for r in rows}, "records": records, "inside": inside, "tmp": tmp}


@needs_platinum
def test_platinum_self_comparison(platinum_self):
    rows, records, inside = platinum_self["rows"], platinum_self["records"], platinum_self["inside"]
    assert len(records) == 65402
    expected = {"SNP": 0, "INDEL": 0}
    n_records = 0
    for f in records:
        if f[6] in ("PASS", ".") and (f[0], f[1]) in inside:
            n_records += 1
            alts = f[4].split(",")
            for a in _alleles(f[9]):
                assert not alts[a - 1].startswith("<")
                expected[_allele_type(f[3], alts[a - 1])] += 1
    assert n_records == len(inside) > 60000
    for vtype in ("SNP", "INDEL"):
        r = rows[vtype, "PASS"]
        assert r["TRUTH.TOTAL"] == expected[vtype]
        assert r["TRUTH.TP"] == r["TRUTH.TOTAL"] and r["TRUTH.FN"] == 0
        assert r["QUERY.FP"] == 0 and r["QUERY.UNK"] == 0
        assert r["METRIC.Recall"] == r["METRIC.Precision"] == r["METRIC.F1_Score"] == 1.0
        # ALL adds the query's non-PASS records: recall stays 1, they are FP or UNK
        a = rows[vtype, "ALL"]
        assert a["TRUTH.TP"] == r["TRUTH.TOTAL"] and a["METRIC.Recall"] == 1.0
        assert a["QUERY.TOTAL"] > r["QUERY.TOTAL"]
    # one PASS record per allele except the 1/2-style records, which carry two
    het_alt = sum(1 for f in records if f[6] == "PASS" and (f[0], f[1]) in inside and len(_alleles(f[9])) == 2)
    assert rows["SNP", "PASS"]["TRUTH.TOTAL"] + rows["INDEL", "PASS"]["TRUTH.TOTAL"] == n_records + het_alt
    assert rows["SNP", "PASS"]["TRUTH.TOTAL.TiTv_ratio"] == pytest.approx(2.08, abs=0.01)


@needs_platinum
def test_platinum_perturbed(platinum_self):
    records, inside, tmp = platinum_self["records"], platinum_self["inside"], platinum_self["tmp"]
    vcf, bed = PLATINUM / "PG_NA12878_chr21.vcf.gz", PLATINUM / "PG_Conf_chr21.bed.gz"
    flips = {"0|1": "1|1", "1|0": "1|1", "1|1": "0|1"}
    fn = {"SNP": 0, "INDEL": 0}
    fp_gt = {"SNP": 0, "INDEL": 0}
    total = {"SNP": 0, "INDEL": 0}
    lines = []
    for i, f in enumerate(records):
        counted = f[6] == "PASS" and (f[0], f[1]) in inside
        alts = f[4].split(",")
        types = [_allele_type(f[3], alts[a - 1]) for a in _alleles(f[9]) if not alts[a - 1].startswith("<")]
        if i % 10 == 9:  # dropped
            if counted:
                for t in types:
                    fn[t] += 1
            continue
        g = f[9].split(":")[0]
        if i % 7 == 0 and g in flips:  # genotype flipped: truth FN, query FP.gt
            f = f[:9] + [flips[g] + f[9][len(g):]]
            if counted:
                fn[types[0]] += 1
                fp_gt[types[0]] += 1
        if f[6] == "PASS":
            for t in types:
                total[t] += 1
        lines.append("\t".join(f) + "\n")
    with gzip.open(vcf, "rt") as fh:
        header = "".join(line for line in fh if line.startswith("#"))
    query = tmp / "perturbed.vcf"
    query.write_text(header + "".join(lines))
    rows = {(r["Type"], r["Filter"]): r for r in evaluate(EvaluateConfig(
        truth_vcf=vcf, query_vcf=query, confident_bed=bed, output_prefix=tmp / "perturbed"))}
    for vtype in ("SNP", "INDEL"):
        r, self_r = rows[vtype, "PASS"], platinum_self["rows"][vtype, "PASS"]
        assert fn[vtype] > 100 and fp_gt[vtype] > 10
        assert r["TRUTH.TOTAL"] == self_r["TRUTH.TOTAL"]
        assert r["TRUTH.FN"] == fn[vtype]
        assert r["TRUTH.TP"] == self_r["TRUTH.TOTAL"] - fn[vtype]
        assert r["QUERY.TOTAL"] == total[vtype]
        assert r["QUERY.FP"] == r["FP.gt"] == fp_gt[vtype]
        assert r["FP.al"] == 0 and r["QUERY.UNK"] == 0
        tp = self_r["TRUTH.TOTAL"] - fn[vtype]
        assert r["METRIC.Recall"] == pytest.approx(tp / self_r["TRUTH.TOTAL"])
        assert r["METRIC.Precision"] == pytest.approx(tp / (tp + fp_gt[vtype]))


@needs_tiny
def test_tiny_giab_without_contig_line(tmp_path, capsys):
    vcf = TINY / "NA12878.chr22.tiny.giab.vcf"
    rows = {(r["Type"], r["Filter"]): r for r in evaluate(EvaluateConfig(
        truth_vcf=vcf, query_vcf=vcf, reference=TINY / "q.fa", output_prefix=tmp_path / "tiny"))}
    snp = rows["SNP", "PASS"]
    assert snp["TRUTH.TOTAL"] == snp["TRUTH.TP"] == snp["QUERY.TOTAL"] == 14
    assert snp["QUERY.FP"] == 0 and snp["METRIC.F1_Score"] == 1.0
    assert snp["TRUTH.TOTAL.het_hom_ratio"] is None  # all 14 are het
    assert rows["INDEL", "PASS"]["TRUTH.TOTAL"] == 0
    assert "no ##contig line for 'q'" in capsys.readouterr().err


# ---------------------------------------------------------------- the other outputs
def _decisions(path: Path) -> dict[tuple[str, int], tuple[str, str, str]]:
    out = {}
    with pysam.VariantFile(str(path)) as vf:
        assert list(vf.header.samples) == ["TRUTH", "QUERY"]
        for r in vf:
            for s in ("TRUTH", "QUERY"):
                bd, bk = r.samples[s]["BD"], r.samples[s]["BK"]
                if bd not in (None, "."):
                    out[s, r.pos] = (bd, None if bk == "." else bk, r.samples[s]["BVT"])
    return out


def test_annotated_vcf_decisions(world):
    run(world)
    vcf = world["tmp"] / "out" / "eval.vcf.gz"
    assert Path(str(vcf) + ".tbi").exists()
    got = _decisions(vcf)
    assert got == {
        ("TRUTH", 10): ("TP", "gm", "SNP"), ("QUERY", 10): ("TP", "gm", "SNP"),
        ("TRUTH", 20): ("FN", None, "SNP"),                      # the query has RefCall there
        ("QUERY", 30): ("FP", None, "SNP"),
        ("TRUTH", 40): ("FN", "am", "SNP"), ("QUERY", 40): ("FP", "am", "SNP"),  # genotype differs
        ("TRUTH", 50): ("FN", "lm", "SNP"), ("QUERY", 50): ("FP", "lm", "SNP"),  # other allele
        ("TRUTH", 59): ("TP", "gm", "INDEL"), ("QUERY", 63): ("TP", "gm", "INDEL"),
        ("TRUTH", 80): ("TP", "gm", "SNP"), ("QUERY", 80): ("TP", "gm", "SNP"),
        ("TRUTH", 90): ("TP", "gm", "SNP"), ("QUERY", 90): ("TP", "gm", "SNP"),  # ALL: LowQual counts
        ("QUERY", 100): ("FP", None, "SNP"),
        ("TRUTH", 140): ("TP", "gm", "INDEL"), ("QUERY", 140): ("TP", "gm", "INDEL"),  # overlaps the BED
        ("TRUTH", 160): ("UNK", None, "SNP"), ("QUERY", 150): ("UNK", None, "SNP"),
    }


def test_threads_give_identical_outputs(world):
    run(world, output_prefix=world["tmp"] / "one" / "eval")
    run(world, output_prefix=world["tmp"] / "two" / "eval", threads=2)
    for suffix in (".summary.csv", ".extended.csv"):
        a = (world["tmp"] / "one" / ("eval" + suffix)).read_text()
        assert a == (world["tmp"] / "two" / ("eval" + suffix)).read_text()
    a, b = (gzip.open(world["tmp"] / d / "eval.vcf.gz", "rt").read() for d in ("one", "two"))
    assert a == b


def test_pass_only_drops_filtered_query_records(world):
    rows = run(world, pass_only=True)
    assert counts(rows["SNP", "ALL"]) == counts(rows["SNP", "PASS"]) == counts(run(world)["SNP", "PASS"])


def test_no_reference_is_a_warning(world, capsys):
    run(world, reference=None)
    assert "no reference (-r)" in capsys.readouterr().err


def test_stratification_subsets(world):
    tmp = world["tmp"]
    (tmp / "strata").mkdir()
    (tmp / "strata" / "first50.bed").write_text("c1\t0\t50\n")
    tsv = tmp / "strata.tsv"
    tsv.write_text("# name\tbed\nfirst50\tstrata/first50.bed\n")
    rows = run(world, stratification=tsv)
    from dvtrain.stratify import extended_path

    ext = list(csv.DictReader(extended_path(tmp / "out" / "eval").open()))
    star = [r for r in ext if r["Subset"] == "*" and r["Subtype"] == "*" and r["Genotype"] == "*"]
    for r in star:  # the whole-set rows repeat the summary
        s = rows[r["Type"], r["Filter"]]
        assert int(r["TRUTH.TP"]) == s["TRUTH.TP"] and int(r["QUERY.FP"]) == s["QUERY.FP"]
    sub = {(r["Type"], r["Filter"], r["Subtype"], r["Genotype"]): r for r in ext if r["Subset"] == "first50"}
    snp = sub["SNP", "PASS", "*", "*"]
    # truth SNPs at 10, 20, 40, 50 (1-based) lie in [0, 50); 10 is the only TP
    assert (int(snp["TRUTH.TOTAL"]), int(snp["TRUTH.TP"])) == (4, 1)
    assert int(snp["Subset.Size"]) == 50
    assert int(sub["SNP", "PASS", "ti", "*"]["TRUTH.TOTAL"]) == 3  # 10 C>T, 20 T>C, 50 C>T


def test_cli_hap_py_flags(world):
    from click.testing import CliRunner

    from dvtrain.cli import cli

    tsv = world["tmp"] / "s.tsv"
    (world["tmp"] / "all.bed").write_text("c1\t0\t200\n")
    tsv.write_text("all\tall.bed\n")
    prefix = world["tmp"] / "cli" / "hap"
    res = CliRunner().invoke(cli, [
        "evaluate", str(world["truth"]), str(world["query"]), "-f", str(world["bed"]), "-r", str(world["ref"]),
        "-o", str(prefix), "-l", "c1", "--pass-only", "--stratification", str(tsv), "--threads", "2"])
    assert res.exit_code == 0, res.output
    for suffix in (".summary.csv", ".extended.csv", ".vcf.gz", ".vcf.gz.tbi", ".metrics.json"):
        assert Path(str(prefix) + suffix).exists(), suffix
    metrics = json.loads(Path(str(prefix) + ".metrics.json").read_text())
    assert metrics["options"]["pass_only"] is True and metrics["options"]["threads"] == 2
    assert metrics["inputs"]["regions"] == ["c1"]
    res = CliRunner().invoke(cli, [
        "evaluate", str(world["truth"]), str(world["query"]), "-o", str(prefix), "-l", "c1,c9", "-r", str(world["ref"])])
    assert res.exit_code != 0 and "c9" in str(res.exception)  # main() prints it as one line


def test_output_prefix_must_not_overwrite_an_input(world):
    gz = world["tmp"] / "calls.vcf.gz"
    pysam.tabix_compress(str(world["query"]), str(gz))
    before = gz.read_bytes()
    with pytest.raises(InputError, match="also an output"):
        run(world, query_vcf=gz, output_prefix=world["tmp"] / "calls")
    assert gz.read_bytes() == before
