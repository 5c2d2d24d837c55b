"""report: JSON schema, Markdown table and the custom-vs-baseline verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dvtrain.evaluate import COLUMNS, evaluate, read_summary
from dvtrain.config import EvaluateConfig
from dvtrain.report import REPORT_KEYS, format_table, write_report


def summary_rows(model: str, snp: tuple[int, int, int], indel: tuple[int, int, int]) -> list[dict]:
    """Summary rows (all four Type/Filter pairs) from (TP, FN, FP) per type."""
    out = []
    for vtype, (tp, fn, fp) in (("INDEL", indel), ("SNP", snp)):
        for flt in ("ALL", "PASS"):
            extra = 5 if flt == "ALL" else 0  # ALL rows differ, so PASS-only selection shows
            recall = tp / (tp + fn) if tp + fn else None
            precision = tp / (tp + fp + extra) if tp + fp + extra else None
            f1 = None if recall is None or precision is None else (
                2 * recall * precision / (recall + precision) if recall + precision else 0.0)
            row = {c: None for c in COLUMNS}
            row.update({
                "model": model, "Type": vtype, "Filter": flt, "TRUTH.TOTAL": tp + fn, "TRUTH.TP": tp,
                "TRUTH.FN": fn, "QUERY.TOTAL": tp + fp + extra, "QUERY.FP": fp + extra, "QUERY.UNK": 0,
                "FP.gt": 0, "FP.al": 0, "METRIC.Recall": recall, "METRIC.Precision": precision,
                "METRIC.F1_Score": f1,
            })
            out.append(row)
    return out


DATASET = {"name": "toy", "truth": Path("/data/truth.vcf.gz"), "coverage": 4.0}
CONFIG = {"epochs": 3, "learning_rate": 0.001}


def test_schema_and_round_trip(tmp_path):
    rows = summary_rows("custom", (90, 10, 5), (8, 2, 1)) + summary_rows("baseline", (80, 20, 10), (9, 1, 0)) \
        + summary_rows("bcftools", (70, 30, 3), (0, 10, 0))
    rep = write_report(rows, DATASET, CONFIG, tmp_path / "rep")
    on_disk = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert on_disk == rep
    assert set(rep) == {"rows", "dataset", "config", "margins"} and rep["margins"] == {}
    assert rep["dataset"] == {"name": "toy", "truth": "/data/truth.vcf.gz", "coverage": 4.0}
    assert rep["config"] == CONFIG
    # PASS rows only, baseline then custom then peers, INDEL before SNP
    assert [(r["model"], r["Type"]) for r in rep["rows"]] == [
        ("baseline", "INDEL"), ("baseline", "SNP"), ("custom", "INDEL"), ("custom", "SNP"),
        ("bcftools", "INDEL"), ("bcftools", "SNP"),
    ]
    for r in rep["rows"]:
        assert sorted(r) == sorted(REPORT_KEYS)
        for k in ("TRUTH.TOTAL", "TRUTH.TP", "TRUTH.FN", "QUERY.FP"):
            assert type(r[k]) is int
    custom_snp = rep["rows"][3]
    assert custom_snp["QUERY.FP"] == 5  # the PASS row, not the ALL row (10)
    assert custom_snp["METRIC.Recall"] == pytest.approx(0.9)
    assert custom_snp["METRIC.Precision"] == pytest.approx(90 / 95)
    bcf_indel = rep["rows"][4]
    assert bcf_indel["METRIC.Recall"] == 0.0 and bcf_indel["METRIC.Precision"] is None
    assert bcf_indel["METRIC.F1_Score"] is None
    text = (tmp_path / "rep" / "report.json").read_text()
    assert text == json.dumps(on_disk, sort_keys=True, indent=2) + "\n"
    assert "NaN" not in text and '"METRIC.Precision": null' in text
    assert not [p for p in (tmp_path / "rep").iterdir() if p.name.startswith(".")]


def test_markdown_table_and_verdicts(tmp_path):
    rows = summary_rows("custom", (90, 10, 5), (8, 2, 1)) + summary_rows("baseline", (80, 20, 10), (9, 1, 0))
    rep = write_report(rows, DATASET, CONFIG, tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert md.startswith("# ")
    assert "| Model | Type | Recall | Precision | F1 | TP | FN | FP |" in md
    assert "| custom | SNP | 0.9000 | 0.9474 | 0.9231 | 90 | 10 | 5 |" in md
    assert "| baseline | SNP | 0.8000 | 0.8889 | 0.8421 | 80 | 20 | 10 |" in md
    assert "| baseline | INDEL | 0.9000 | 1.0000 | 0.9474 | 9 | 1 | 0 |" in md
    assert "| custom | INDEL | 0.8000 | 0.8889 | 0.8421 | 8 | 2 | 1 |" in md
    assert "ALL" not in md  # PASS rows only, no Filter column
    # SNP: custom wins by 0.9231 - 0.8421; INDEL: custom loses
    snp_line = [line for line in md.splitlines() if line.startswith("- SNP")]
    indel_line = [line for line in md.splitlines() if line.startswith("- INDEL")]
    assert snp_line == ["- SNP: custom beats baseline in F1 by +0.0810 (0.9231 vs 0.8421)."]
    assert len(indel_line) == 1 and "custom beats baseline" not in indel_line[0]
    assert "does not beat" in indel_line[0]
    assert md.count("custom beats baseline") == 1
    assert format_table(rep["rows"]) in md
    # with dvtrain.margin's output, each custom-vs-baseline line states the bootstrap interval
    margins = {"SNP": {"f1": 0.9231, "baseline_f1": 0.8421, "difference": 0.081, "sd": 0.02, "low": 0.041,
                       "high": 0.12, "confidence": 0.95, "truth_total": 100, "blocks": 87}}
    rep = write_report(rows, DATASET, CONFIG, tmp_path, margins)
    assert rep["margins"] == margins
    md = (tmp_path / "report.md").read_text()
    assert ("- SNP: custom beats baseline in F1 by +0.0810 (0.9231 vs 0.8421; 95% paired bootstrap interval "
            "+0.0410 to +0.1200 over 87 blocks).") in md.splitlines()
    assert "bootstrap" not in [line for line in md.splitlines() if line.startswith("- INDEL")][0]


def test_no_verdict_without_both_models(tmp_path):
    rows = summary_rows("custom", (90, 10, 5), (8, 2, 1)) + summary_rows("freebayes", (10, 90, 5), (1, 9, 1))
    write_report(rows, {}, {}, tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "beat" not in md and "| freebayes | SNP |" in md


def test_tie_is_not_a_win(tmp_path):
    rows = summary_rows("custom", (90, 10, 5), (8, 2, 1)) + summary_rows("baseline", (90, 10, 5), (8, 2, 1))
    write_report(rows, {}, {}, tmp_path)
    assert "custom beats baseline" not in (tmp_path / "report.md").read_text()


def test_format_table_for_terminal_shows_filter_when_mixed():
    rows = summary_rows("custom", (90, 10, 5), (8, 2, 1))
    table = format_table(rows)
    assert table.splitlines()[0] == "| Model | Type | Filter | Recall | Precision | F1 | TP | FN | FP |"
    assert len(table.splitlines()) == 2 + 4
    assert "| custom | INDEL | PASS | 0.8000 | 0.8889 | 0.8421 | 8 | 2 | 1 |" in table


def test_rejects_bad_rows(tmp_path):
    rows = summary_rows("custom", (90, 10, 5), (8, 2, 1))
    with pytest.raises(ValueError, match="two PASS rows"):
        write_report(rows + rows, {}, {}, tmp_path)
    del rows[1]["model"]
    with pytest.raises(ValueError, match="lacks"):
        write_report(rows, {}, {}, tmp_path)
    assert not (tmp_path / "report.json").exists()


def test_report_from_real_evaluate_output(tmp_path):
    """evaluate -> summary.csv -> read back -> report: strings and empty cells survive."""
    fa = tmp_path / "r.fa"
    fa.write_text(">c\n" + "ACGT" * 25 + "\n")
    header = ("##fileformat=VCFv4.2\n##contig=<ID=c,length=100>\n"
              "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS\n")
    (tmp_path / "t.vcf").write_text(header + "c\t2\t.\tC\tT\t.\tPASS\t.\tGT\t0/1\nc\t6\t.\tC\tA\t.\tPASS\t.\tGT\t1/1\n")
    (tmp_path / "q.vcf").write_text(header + "c\t2\t.\tC\tT\t.\tPASS\t.\tGT\t0/1\n")
    rows = evaluate(EvaluateConfig(truth_vcf=tmp_path / "t.vcf", query_vcf=tmp_path / "q.vcf",
                                   reference=fa, output_prefix=tmp_path / "e"))
    as_read = read_summary(tmp_path / "e.summary.csv")
    for r in as_read:
        r["model"] = "custom"
    rep = write_report([dict(r, model="baseline") for r in rows] + as_read, {}, {}, tmp_path / "rep")
    snp = [r for r in rep["rows"] if r["Type"] == "SNP"]
    assert [r["model"] for r in snp] == ["baseline", "custom"]
    for k in REPORT_KEYS[1:]:
        assert snp[0][k] == pytest.approx(snp[1][k], abs=5e-7)
    assert snp[1]["METRIC.Recall"] == 0.5 and snp[1]["METRIC.Precision"] == 1.0
    indel = [r for r in rep["rows"] if r["Type"] == "INDEL"]
    assert indel[0]["METRIC.Recall"] is None and indel[0]["TRUTH.TOTAL"] == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| custom | INDEL | n/a | n/a | n/a | 0 | 0 | 0 |" in md
    assert "INDEL: F1 is undefined" in md and "- SNP: custom ties baseline" in md


def test_small_f1_gain_is_reported_precisely(tmp_path):
    rows = summary_rows("custom", (90, 10, 5), (8, 2, 1)) + summary_rows("baseline", (90, 10, 5), (8, 2, 1))
    for r in rows:
        if r["model"] == "baseline" and r["Type"] == "SNP":
            r["METRIC.F1_Score"] -= 1e-5
    write_report(rows, {}, {}, tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "- SNP: custom beats baseline in F1 by +0.000010" in md
    assert "- INDEL: custom ties baseline in F1" in md


def test_custom_is_placed_against_each_peer(tmp_path):
    rows = (summary_rows("baseline", (80, 20, 10), (40, 10, 5)) + summary_rows("custom", (90, 10, 5), (42, 8, 2))
            + summary_rows("bcftools", (92, 8, 3), (42, 8, 2)) + summary_rows("freebayes", (85, 15, 9), (30, 20, 1)))
    write_report(rows, DATASET, CONFIG, tmp_path)
    text = (tmp_path / "report.md").read_text()
    lines = [ln for ln in text.splitlines() if " custom is " in ln]
    assert lines[0].startswith("- INDEL: custom is level with bcftools in F1")
    assert lines[1].startswith("- INDEL: custom is above freebayes in F1")
    assert lines[2].startswith("- SNP: custom is below bcftools in F1") and "-0.0" in lines[2]
    assert lines[3].startswith("- SNP: custom is above freebayes in F1")
    assert len(lines) == 4
    # with the flow's custom-vs-peer margins, each peer line states its interval too
    margin = {"difference": -0.01, "low": -0.03, "high": 0.005, "confidence": 0.95, "blocks": 40}
    write_report(rows, DATASET, CONFIG, tmp_path, {"peers": {"bcftools": {"SNP": margin}}})
    lines = [ln for ln in (tmp_path / "report.md").read_text().splitlines() if " custom is " in ln]
    assert lines[2].endswith("; 95% paired bootstrap interval -0.0300 to +0.0050 over 40 blocks).")
    assert "bootstrap" not in lines[3]


def test_context_names_the_confident_region_rule(tmp_path):
    rows = summary_rows("custom", (90, 10, 5), (8, 2, 1))
    for rule, words in (("overlap", "overlaps it (hap.py"), ("contain", "wholly inside it")):
        write_report(rows, DATASET, {**CONFIG, "min_coverage": 2, "region_rule": rule}, tmp_path)
        assert words in (tmp_path / "report.md").read_text()
