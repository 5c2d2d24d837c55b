"""margin: paired block bootstrap of an F1 difference from two decision VCFs of `evaluate`."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pysam
import pytest

from dvtrain.cli import main
from dvtrain.config import EvaluateConfig, MarginConfig
from dvtrain.errors import InputError
from dvtrain.evaluate import evaluate
from dvtrain.margin import margin, paired_bootstrap

SEQ = "ACGTTGCAAC" * 300  # c1, 3 kb, no homopolymer longer than 2
HEADER = ("##fileformat=VCFv4.2\n##contig=<ID=c1,length=3000>\n"
          '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
          "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS\n")
OTHER = {"A": "C", "C": "G", "G": "T", "T": "A"}


def _rec(pos: int, alt: str, gt: str, ref: str | None = None) -> str:
    return f"c1\t{pos}\t.\t{ref or SEQ[pos - 1]}\t{alt}\t50\tPASS\t.\tGT\t{gt}\n"


def _snp(pos: int, gt: str = "0/1") -> str:
    return _rec(pos, OTHER[SEQ[pos - 1]], gt)


def _ins(pos: int, gt: str = "0/1") -> str:
    return _rec(pos, SEQ[pos - 1] + "GG", gt)


@pytest.fixture
def evaluations(tmp_path: Path) -> dict:
    """One truth (12 SNPs, 6 insertions over 3 kb), two call sets, both evaluated."""
    fa = tmp_path / "ref.fa"
    fa.write_text(">c1\n" + "\n".join(SEQ[i:i + 60] for i in range(0, len(SEQ), 60)) + "\n")
    pysam.faidx(str(fa))
    snps, ins = list(range(105, 3000, 250)), list(range(230, 3000, 500))
    truth = tmp_path / "truth.vcf"
    truth.write_text(HEADER + "".join(sorted((_snp(p) for p in snps), key=lambda r: int(r.split()[1]))
                                      + [_ins(p) for p in ins]))
    lines = {"good": [_snp(p) for p in snps[:10]] + [_ins(p) for p in ins[:5]] + [_snp(1999)],
             # the weaker one: fewer true calls, more false ones, and one multi-allelic record with a
             # SNP and an insertion allele (a MIXED record: each allele typed on its own)
             "weak": [_snp(p) for p in snps[:7]] + [_ins(p) for p in ins[:3]] + [_snp(1999), _snp(2501)]
             + [_rec(2777, f"{OTHER[SEQ[2776]]},{SEQ[2776]}TT", "1/2")]}
    out = {}
    for name, recs in lines.items():
        q = tmp_path / f"{name}.vcf"
        q.write_text(HEADER + "".join(sorted(recs, key=lambda r: int(r.split()[1]))))
        rows = evaluate(EvaluateConfig(truth_vcf=truth, query_vcf=q, reference=fa, output_prefix=tmp_path / name))
        out[name] = {"vcf": tmp_path / f"{name}.vcf.gz",
                     "f1": {r["Type"]: r["METRIC.F1_Score"] for r in rows if r["Filter"] == "PASS"}}
    return out


def test_point_estimates_are_the_evaluations_f1(evaluations, tmp_path):
    good, weak = evaluations["good"], evaluations["weak"]
    cfg = MarginConfig(eval_vcf=good["vcf"], baseline_eval_vcf=weak["vcf"], output_json=tmp_path / "m.json",
                       block_size=100, resamples=500, seed=3)
    out = margin(cfg)
    for vtype in ("SNP", "INDEL"):
        m = out[vtype]
        assert m["f1"] == pytest.approx(good["f1"][vtype], abs=1e-6)
        assert m["baseline_f1"] == pytest.approx(weak["f1"][vtype], abs=1e-6)
        assert m["difference"] == pytest.approx(good["f1"][vtype] - weak["f1"][vtype], abs=2e-6)
        assert m["low"] <= m["difference"] <= m["high"] and m["sd"] > 0
    assert out["SNP"]["truth_total"] == 12 and out["INDEL"]["truth_total"] == 6
    # the MIXED record's insertion allele is an INDEL FP, its SNP allele a SNP FP
    assert weak["f1"]["INDEL"] == pytest.approx(2 * 0.5 * 0.75 / 1.25, abs=1e-6)  # recall 3/6, precision 3/4
    # seeded: the same config writes the same bytes; another seed draws other resamples
    first = (tmp_path / "m.json").read_bytes()
    margin(cfg)
    assert (tmp_path / "m.json").read_bytes() == first
    assert margin(cfg.model_copy(update={"seed": 4}))["SNP"]["sd"] != out["SNP"]["sd"]


def test_a_call_set_against_itself_has_no_spread(evaluations, tmp_path):
    vcf = evaluations["good"]["vcf"]
    out = margin(MarginConfig(eval_vcf=vcf, baseline_eval_vcf=vcf, output_json=tmp_path / "m.json"))
    assert all(out[t]["difference"] == out[t]["sd"] == out[t]["low"] == out[t]["high"] == 0 for t in ("SNP", "INDEL"))


def test_spread_matches_the_delta_method():
    """400 one-variant blocks: model a finds 300 (no FP), model b all 400. The bootstrap SD of
    F1(a) - F1(b) = F1(a) must match the delta-method SD 2/(1+r)^2 * sqrt(r(1-r)/n), r = 0.75."""
    a = {("c", i): np.array([1, 0, 1, 0]) if i < 300 else np.array([0, 1, 0, 0]) for i in range(400)}
    b = {("c", i): np.array([1, 0, 1, 0]) for i in range(400)}
    out = paired_bootstrap(a, b, resamples=4000, seed=0, confidence=0.95)
    r = 0.75
    assert out["difference"] == pytest.approx(2 * r / (1 + r) - 1, abs=1e-6)
    expected = 2 / (1 + r) ** 2 * math.sqrt(r * (1 - r) / 400)
    assert out["sd"] == pytest.approx(expected, rel=0.1)
    assert out["high"] - out["low"] == pytest.approx(2 * 1.96 * expected, rel=0.15)
    assert paired_bootstrap({}, {}, resamples=100, seed=0, confidence=0.9) is None
    # a call set without calls has no F1 (as in evaluate's rows): no difference, no interval
    silent = {k: np.array([0, 1, 0, 0]) for k in b}
    out = paired_bootstrap(a, silent, resamples=100, seed=0, confidence=0.95)
    assert out["baseline_f1"] is None and out["f1"] == pytest.approx(2 * r / (1 + r), abs=1e-6)
    assert out["difference"] is out["sd"] is out["low"] is out["high"] is None


def test_bad_inputs_name_the_file_and_leave_no_output(evaluations, tmp_path):
    out = tmp_path / "m.json"
    plain = tmp_path / "weak.vcf"  # a call set, not a decision VCF
    with pytest.raises(InputError, match=f"{plain}: not a dvtrain evaluate"):
        margin(MarginConfig(eval_vcf=plain, baseline_eval_vcf=evaluations["weak"]["vcf"], output_json=out))
    fewer = tmp_path / "fewer.vcf.gz"  # scored against a smaller truth
    with pysam.VariantFile(str(evaluations["weak"]["vcf"])) as src, \
            pysam.VariantFile(str(fewer), "wz", header=src.header) as dst:
        for i, rec in enumerate(src):
            if i:
                dst.write(rec)
    with pytest.raises(InputError, match="truth .*s scored, but"):
        margin(MarginConfig(eval_vcf=evaluations["good"]["vcf"], baseline_eval_vcf=fewer, output_json=out))
    assert not out.exists() and [p.name for p in tmp_path.glob("m.json*")] == []


def test_cli(evaluations, tmp_path, capsys):
    good, weak = evaluations["good"]["vcf"], evaluations["weak"]["vcf"]
    assert main(["margin", str(good), str(weak), "-o", str(tmp_path / "m.json"), "--resamples", "200"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in lines] == ["INDEL", "SNP"] and "95% interval" in lines[0]
    assert main(["margin", str(tmp_path / "missing.vcf.gz"), str(weak), "-o", str(tmp_path / "n.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.vcf.gz: decision VCF does not exist" in err[0]
