"""evaluate against the simulated truth with its indels rewritten in equivalent representations.

``reshift`` (benchmarks/perturb.py) moves every indel of the truth to its right-most
equivalent position (homopolymer/STR indels slide along the repeat) and pads a seeded subset
with extra reference bases, keeping genotypes and every SNP. Only normalisation against the
reference can tell that the copy is the truth, so the test runs on the embedded (simulated)
genome: with the reference everything must be TP; without it, some shifted indels are missed
(which shows the test can fail). Its expected counts come from a plain scan of the files.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dvtrain.config import EvaluateConfig
from dvtrain.evaluate import evaluate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from perturb import _read_vcf, perturb, reshift  # noqa: E402

CHECKED = ("TRUTH.TOTAL", "TRUTH.TP", "TRUTH.FN", "QUERY.TOTAL", "QUERY.FP", "QUERY.UNK", "FP.gt", "FP.al")


def _rows(truth, query, bed, reference, prefix) -> dict:
    return {(r["Type"], r["Filter"]): r for r in evaluate(EvaluateConfig(
        truth_vcf=truth, query_vcf=query, confident_bed=bed, reference=reference, output_prefix=prefix))}


def _got(rows, vtype) -> dict:
    return {c: rows[vtype, "PASS"][c] for c in CHECKED}


@pytest.fixture(scope="module")
def shifted(sim_dataset, tmp_path_factory):
    d = sim_dataset
    out = tmp_path_factory.mktemp("shifted") / "shifted.vcf.gz"
    info = reshift(d["truth_vcf"], d["ref"], out, seed=11, bed=d["truth_bed"])
    return d, out, info


def test_reshift_really_rewrites_the_indels(shifted):
    d, out, info = shifted
    _, truth = _read_vcf(Path(d["truth_vcf"]))
    _, query = _read_vcf(out)
    assert len(query) == len(truth) == info["records_out"]
    changed = sum(1 for t, q in zip(truth, query) if (t[1], t[3], t[4]) != (q[1], q[3], q[4]))
    moved = sum(1 for t, q in zip(truth, query) if t[1] != q[1])
    assert changed == info["changed"]
    # measured with seed 11 on the session dataset (55 indels): 39 shifted, 30 padded, 48 changed,
    # 35 that trimming cannot undo (23 of them inside the BED)
    assert info["eligible"] >= 40
    assert info["shifted"] >= 25 and info["padded"] >= 15 and info["changed"] >= 40 and moved >= 25
    assert info["trim_differs"] >= 20  # rewritten so that trimming alone cannot undo it
    for t, q in zip(truth, query):
        assert t[0] == q[0] and t[5:] == q[5:]  # CHROM, QUAL, FILTER, INFO, genotypes kept
        if len(t[3]) == len(t[4]) == 1:
            assert (t[1], t[3], t[4]) == (q[1], q[3], q[4])  # SNPs untouched
    positions = [(q[0], int(q[1])) for q in query]
    assert len(set(positions)) == len(positions)
    order = {c: n for n, c in enumerate(dict.fromkeys(q[0] for q in query))}
    assert positions == sorted(positions, key=lambda p: (order[p[0]], p[1]))
    again = reshift(d["truth_vcf"], d["ref"], out.with_name("again.vcf"), seed=11, bed=d["truth_bed"])
    assert again == info
    _, query2 = _read_vcf(out.with_name("again.vcf"))
    assert query2 == query
    none = reshift(d["truth_vcf"], d["ref"], out.with_name("none.vcf"), seed=11, fraction=0.0)
    assert none["changed"] == 0 and _read_vcf(out.with_name("none.vcf"))[1] == truth


def test_shifted_truth_is_all_tp_with_the_reference(shifted, tmp_path):
    d, out, info = shifted
    rows = _rows(d["truth_vcf"], out, d["truth_bed"], d["ref"], tmp_path / "ref")
    for vtype in ("SNP", "INDEL"):
        assert _got(rows, vtype) == info["expected"][vtype], vtype
        assert rows[vtype, "PASS"]["METRIC.Recall"] == 1.0
        assert rows[vtype, "PASS"]["METRIC.Precision"] == 1.0
    assert info["expected"]["INDEL"]["TRUTH.TOTAL"] >= 30 and info["expected"]["SNP"]["TRUTH.TOTAL"] >= 100


def test_shifted_indels_need_the_reference(shifted, tmp_path):
    """Trimming alone does not undo a shift; the scan's trim-only counts are an upper bound
    on what is missed (a haplotype replay can recover a shift from the bases the records' REFs
    spell out, but not all of them)."""
    d, out, info = shifted
    rows = _rows(d["truth_vcf"], out, d["truth_bed"], None, tmp_path / "noref")
    trim = info["expected_trim_only"]
    assert _got(rows, "SNP") == trim["SNP"] == info["expected"]["SNP"]
    got = _got(rows, "INDEL")
    assert got["TRUTH.TOTAL"] == trim["INDEL"]["TRUTH.TOTAL"] and got["QUERY.TOTAL"] == trim["INDEL"]["QUERY.TOTAL"]
    assert trim["INDEL"]["TRUTH.FN"] >= 20
    assert 0 < got["TRUTH.FN"] <= trim["INDEL"]["TRUTH.FN"]
    assert 0 < got["QUERY.FP"] <= trim["INDEL"]["QUERY.FP"]
    assert rows["INDEL", "PASS"]["METRIC.Recall"] < 1.0


def test_reshift_then_perturb(shifted, tmp_path):
    """Drop/flip on the reshifted copy: perturb's counts hold because reshift kept every REF
    span on its side of the BED. No added FP SNPs here: perturb places them off the records'
    REF spans, which in the reshifted copy include a moved indel's old anchor base, where an
    SNP would be a different allele at a truth site (FP.al), not the plain FP it expects."""
    d, out, _ = shifted
    info = perturb(out, d["truth_bed"], tmp_path / "q.vcf", drop=15, flip=20, add_fp=0, seed=5)
    exp = info["expected"]
    assert sum(e["TRUTH.FN"] for e in exp.values()) == 35 and sum(e["FP.gt"] for e in exp.values()) == 20
    assert exp["INDEL"]["TRUTH.FN"] > 0
    rows = _rows(d["truth_vcf"], tmp_path / "q.vcf", d["truth_bed"], d["ref"], tmp_path / "out")
    for vtype in ("SNP", "INDEL"):
        assert _got(rows, vtype) == exp[vtype], vtype


def test_perturb_then_reshift(sim_dataset, tmp_path):
    """Drop/flip/add FP SNPs (with reference REF bases, as the reference check needs), then
    rewrite the indels of the result: the counts are perturb's."""
    d = sim_dataset
    info = perturb(d["truth_vcf"], d["truth_bed"], tmp_path / "p.vcf", drop=15, flip=20, add_fp=25, seed=5,
                   reference=d["ref"])
    sh = reshift(tmp_path / "p.vcf", d["ref"], tmp_path / "q.vcf.gz", seed=3, bed=d["truth_bed"])
    assert sh["shifted"] >= 20
    rows = _rows(d["truth_vcf"], tmp_path / "q.vcf.gz", d["truth_bed"], d["ref"], tmp_path / "out")
    exp = info["expected"]
    assert exp["SNP"]["QUERY.FP"] - exp["SNP"]["FP.gt"] == 25
    for vtype in ("SNP", "INDEL"):
        assert _got(rows, vtype) == exp[vtype], vtype
