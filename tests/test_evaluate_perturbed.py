"""evaluate against a seeded perturbation of the Platinum chr21 truth with exact expected counts.

The perturbation (benchmarks/perturb.py, shared with benchmarks/evaluate.py) drops records
(truth FN), flips genotypes het <-> hom-alt (truth FN *and* query FP counted in FP.gt: the
allele matches but the copies do not) and adds false-positive SNPs inside the confident BED
on positions no record covers (plain FP, not FP.al). Its expected counts come from a plain
scan of the files, not from the evaluator.
"""

from __future__ import annotations

import sys
from pathlib import Path

from dvtrain.config import EvaluateConfig
from dvtrain.evaluate import evaluate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from perturb import perturb  # noqa: E402

CHECKED = ("TRUTH.TOTAL", "TRUTH.TP", "TRUTH.FN", "QUERY.TOTAL", "QUERY.FP", "QUERY.UNK", "FP.gt", "FP.al")


def test_platinum_seeded_perturbation(platinum, tmp_path):
    truth, bed = platinum / "PG_NA12878_chr21.vcf.gz", platinum / "PG_Conf_chr21.bed.gz"
    info = perturb(truth, bed, tmp_path / "q.vcf", drop=300, flip=400, add_fp=250, seed=7)
    exp = info["expected"]
    assert info["records_out"] == 65402 - 300 + 250
    # the perturbation is what it says: totals split across types
    assert sum(e["FP.gt"] for e in exp.values()) == 400
    assert sum(e["TRUTH.FN"] for e in exp.values()) == 700
    assert exp["SNP"]["QUERY.FP"] - exp["SNP"]["FP.gt"] == 250 and exp["INDEL"]["QUERY.FP"] == exp["INDEL"]["FP.gt"]
    assert exp["SNP"]["FP.gt"] > 0 and exp["INDEL"]["FP.gt"] > 0
    rows = {(r["Type"], r["Filter"]): r for r in evaluate(EvaluateConfig(
        truth_vcf=truth, query_vcf=tmp_path / "q.vcf", confident_bed=bed, output_prefix=tmp_path / "out"))}
    for vtype in ("SNP", "INDEL"):
        got = {c: rows[vtype, "PASS"][c] for c in CHECKED}
        assert got == exp[vtype], vtype
        r = rows[vtype, "PASS"]
        assert r["METRIC.Recall"] == exp[vtype]["TRUTH.TP"] / exp[vtype]["TRUTH.TOTAL"]
        q_tp = exp[vtype]["QUERY.TOTAL"] - exp[vtype]["QUERY.FP"] - exp[vtype]["QUERY.UNK"]
        assert q_tp == exp[vtype]["TRUTH.TP"]
        assert r["METRIC.Precision"] == q_tp / (q_tp + exp[vtype]["QUERY.FP"])


def test_perturbation_is_seeded(platinum, tmp_path):
    truth, bed = platinum / "PG_NA12878_chr21.vcf.gz", platinum / "PG_Conf_chr21.bed.gz"
    a = perturb(truth, bed, tmp_path / "a.vcf", drop=5, flip=5, add_fp=5, seed=3)
    b = perturb(truth, bed, tmp_path / "b.vcf", drop=5, flip=5, add_fp=5, seed=3)
    assert a == b and (tmp_path / "a.vcf").read_bytes() == (tmp_path / "b.vcf").read_bytes()
