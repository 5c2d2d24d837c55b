"""stratify: hap.py extended rows (subtypes, genotypes, strata) on hand-built events."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest

from dvtrain.errors import InputError
from dvtrain.evaluate import COLUMNS, Event, format_value, label_filters, metrics_row
from dvtrain.stratify import (
    EXTENDED_COLUMNS,
    Stratum,
    extended_rows,
    load_strata,
    read_stratification,
    subtype,
    write_extended,
)


def ev(pos: int, ref: str, alt: str, gtc: str = "het", is_pass: bool = True, chrom: str = "c1",
       copies: int | None = None) -> Event:
    if copies is None:
        copies = 2 if gtc == "homalt" else 1
    vtype = "SNP" if len(ref) == 1 and len(alt) == 1 else "INDEL"
    return Event(chrom, pos, ref, alt, copies, vtype, is_pass, pos, gtc)


def labelled(truth, t_labels, query, q_labels, pass_t_labels=None):
    """A Labelled dict built by hand: PASS keeps the PASS query events (and their labels)."""
    keep = [j for j, e in enumerate(query) if e.is_pass]
    return {
        "ALL": (list(t_labels), list(query), list(q_labels)),
        "PASS": (list(pass_t_labels or t_labels), [query[j] for j in keep], [q_labels[j] for j in keep]),
    }


def pick(rows, **kw):
    out = [r for r in rows if all(r[k] == v for k, v in kw.items())]
    assert len(out) == 1, (kw, out)
    return out[0]


# ---------------------------------------------------------------- subtypes
@pytest.mark.parametrize("ref,alt,code", [
    ("A", "G", "ti"), ("G", "A", "ti"), ("C", "T", "ti"), ("T", "C", "ti"),
    ("A", "C", "tv"), ("A", "T", "tv"), ("G", "C", "tv"), ("G", "T", "tv"),
    ("A", "AC", "I1_5"), ("A", "ACGTAC", "I1_5"), ("A", "ACGTACG", "I6_15"), ("A", "A" + "C" * 15, "I6_15"),
    ("A", "A" + "C" * 16, "I16_PLUS"),
    ("AC", "A", "D1_5"), ("AT" + "C" * 4, "A", "D1_5"), ("A" + "C" * 6, "A", "D6_15"),
    ("A" + "C" * 15, "A", "D6_15"), ("A" + "C" * 16, "A", "D16_PLUS"),
    ("AC", "GT", "C1_5"), ("AC", "G", "C1_5"), ("A", "GT", "C1_5"),  # MNP, unanchored del/ins
    ("ACGTACG", "T", "C6_15"), ("A" * 17, "CG", "C16_PLUS"), ("AC", "T" * 20, "C16_PLUS"),
])
def test_subtype(ref, alt, code):
    assert subtype(ev(10, ref, alt)) == code


# ---------------------------------------------------------------- rows
def _world():
    """Truth and query with known per-subtype / per-genotype counts (all on c1)."""
    truth = [
        ev(10, "C", "T", "het"),            # TP   ti  het
        ev(20, "T", "C", "homalt"),         # FN   ti  homalt
        ev(30, "A", "C", "het"),            # TP   tv  het
        ev(40, "A", "ACG", "hetalt"),       # TP   I1_5 hetalt
        ev(40, "A", "AT", "hetalt"),        # FN   I1_5 hetalt
        ev(50, "A" + "C" * 8, "A", "homalt"),  # TP D6_15 homalt
        ev(60, "AC", "GT", "het"),          # OUT  C1_5 (outside: counts for nothing)
        ev(70, "G", "A", "het"),            # TP   ti  het (query copy is FILTERed)
    ]
    t_lab = ["TP", "FN", "TP", "TP", "FN", "TP", "OUT", "TP"]
    t_lab_pass = ["TP", "FN", "TP", "TP", "FN", "TP", "OUT", "FN"]
    query = [
        ev(10, "C", "T", "het"),            # TP
        ev(20, "T", "C", "het"),            # FP.gt ti het
        ev(30, "A", "C", "het"),            # TP
        ev(40, "A", "ACG", "hetalt"),       # TP
        ev(40, "A", "ACGT", "hetalt"),      # FP.al I1_5 hetalt
        ev(50, "A" + "C" * 8, "A", "homalt"),  # TP
        ev(70, "G", "A", "het", is_pass=False),  # TP (ALL only)
        ev(80, "A", "A" + "G" * 20, "homalt"),   # FP I16_PLUS homalt
        ev(90, "C", "G", "homalt"),         # UNK tv homalt
    ]
    q_lab = ["TP", "FP.gt", "TP", "TP", "FP.al", "TP", "TP", "FP", "UNK"]
    return truth, query, labelled(truth, t_lab, query, q_lab, t_lab_pass)


def test_star_rows_equal_metrics_row():
    truth, query, lab = _world()
    rows = extended_rows(truth, lab, [])
    for vtype in ("INDEL", "SNP"):
        for flt in ("ALL", "PASS"):
            t_lab, q, q_lab = lab[flt]
            want = metrics_row(vtype, flt, truth, t_lab, q, q_lab)
            got = pick(rows, Type=vtype, Filter=flt, Subtype="*", Genotype="*", Subset="*")
            assert {c: got[c] for c in COLUMNS} == want
            assert got["Subset.Size"] is None
    assert list(rows[0]) == EXTENDED_COLUMNS


def test_subtype_and_genotype_counts():
    truth, query, lab = _world()
    rows = extended_rows(truth, lab, [])

    def counts(r):
        return (r["TRUTH.TOTAL"], r["TRUTH.TP"], r["TRUTH.FN"], r["QUERY.TOTAL"], r["QUERY.FP"],
                r["QUERY.UNK"], r["FP.gt"], r["FP.al"])

    snp = dict(Type="SNP", Subset="*", Filter="ALL")
    assert counts(pick(rows, **snp, Subtype="ti", Genotype="*")) == (3, 2, 1, 3, 1, 0, 1, 0)
    assert counts(pick(rows, **snp, Subtype="tv", Genotype="*")) == (1, 1, 0, 2, 0, 1, 0, 0)
    assert counts(pick(rows, **snp, Subtype="*", Genotype="het")) == (3, 3, 0, 4, 1, 0, 1, 0)
    assert counts(pick(rows, **snp, Subtype="*", Genotype="homalt")) == (1, 0, 1, 1, 0, 1, 0, 0)
    snp_pass = dict(snp, Filter="PASS")
    assert counts(pick(rows, **snp_pass, Subtype="ti", Genotype="*")) == (3, 1, 2, 2, 1, 0, 1, 0)
    indel = dict(Type="INDEL", Subset="*", Filter="ALL")
    assert counts(pick(rows, **indel, Subtype="I1_5", Genotype="*")) == (2, 1, 1, 2, 1, 0, 0, 1)
    assert counts(pick(rows, **indel, Subtype="I16_PLUS", Genotype="*")) == (0, 0, 0, 1, 1, 0, 0, 0)
    assert counts(pick(rows, **indel, Subtype="D6_15", Genotype="*")) == (1, 1, 0, 1, 0, 0, 0, 0)
    assert counts(pick(rows, **indel, Subtype="*", Genotype="hetalt")) == (2, 1, 1, 2, 1, 0, 0, 1)
    assert counts(pick(rows, **indel, Subtype="*", Genotype="homalt")) == (1, 1, 0, 2, 1, 0, 0, 0)
    # C1_5 has only an OUT truth event and no query: both totals 0, so no row; no het INDELs either
    assert not [r for r in rows if r["Subtype"] in ("C1_5", "D1_5", "tv") and r["Type"] == "INDEL"]
    assert not [r for r in rows if r["Type"] == "INDEL" and r["Genotype"] == "het"]
    # emission order: per Type, Subset, Filter: */*, subtypes, genotypes
    keys = [(r["Type"], r["Filter"], r["Subtype"], r["Genotype"]) for r in rows]
    assert keys[:7] == [("INDEL", "ALL", "*", "*"), ("INDEL", "ALL", "I1_5", "*"),
                        ("INDEL", "ALL", "I16_PLUS", "*"), ("INDEL", "ALL", "D6_15", "*"),
                        ("INDEL", "ALL", "*", "homalt"), ("INDEL", "ALL", "*", "hetalt"),
                        ("INDEL", "PASS", "*", "*")]
    assert extended_rows(truth, lab, []) == rows  # deterministic


def test_star_rows_kept_when_empty():
    rows = extended_rows([], {"ALL": ([], [], []), "PASS": ([], [], [])}, [Stratum("s", [("c1", 0, 5)])])
    assert [(r["Type"], r["Subset"], r["Filter"]) for r in rows] == [
        (t, s, f) for t in ("INDEL", "SNP") for s in ("*", "s") for f in ("ALL", "PASS")]
    assert all(r["TRUTH.TOTAL"] == 0 and r["METRIC.Recall"] is None for r in rows)
    assert [r["Subset.Size"] for r in rows[:4]] == [None, None, 5, 5]


def test_with_label_filters():
    """Rows from real label_filters output: a stratum covering everything equals ``*``."""
    truth = [ev(10, "C", "T"), ev(20, "A", "ACG", "homalt"), ev(30, "G", "A")]
    query = [ev(10, "C", "T"), ev(20, "A", "ACG", "het", is_pass=False), ev(45, "T", "G")]
    lab = label_filters(truth, query, None)
    rows = extended_rows(truth, lab, [Stratum("all", [("c1", 0, 100)])])
    for r in rows:
        if r["Subset"] == "all":
            twin = pick(rows, Type=r["Type"], Subset="*", Filter=r["Filter"], Subtype=r["Subtype"],
                        Genotype=r["Genotype"])
            assert {c: r[c] for c in COLUMNS} == {c: twin[c] for c in COLUMNS}
            assert r["Subset.Size"] == 100
    assert pick(rows, Type="INDEL", Subset="*", Filter="ALL", Subtype="*", Genotype="*")["FP.gt"] == 1
    assert pick(rows, Type="INDEL", Subset="*", Filter="PASS", Subtype="*", Genotype="*")["TRUTH.FN"] == 1


# ---------------------------------------------------------------- overlap semantics
def test_overlap_semantics():
    s = Stratum("s", [("c1", 100, 110), ("c1", 110, 120), ("c1", 200, 201), ("c2", 5, 5)])
    assert s.size == 21
    # an insertion's span is its anchor base
    assert s.overlaps("c1", 100, 101) and s.overlaps("c1", 119, 120)
    assert not s.overlaps("c1", 99, 100) and not s.overlaps("c1", 120, 121)
    # a deletion counts when its REF span overlaps partially (either side)
    assert s.overlaps("c1", 95, 101) and s.overlaps("c1", 119, 125) and s.overlaps("c1", 150, 250)
    assert not s.overlaps("c1", 90, 100) and not s.overlaps("c1", 121, 200)
    assert not s.overlaps("c2", 0, 10) and not s.overlaps("c3", 0, 10)  # empty interval, other contig
    events = [
        ev(100, "A", "AT"),           # insertion anchored on the first base: in
        ev(99, "A", "AT"),            # insertion anchored just before: out
        ev(120, "A", "AGG"),          # anchored just after the end: out
        ev(95, "ACGTAC", "A"),        # deletion [95, 101) overlaps partially: in
        ev(90, "ACGTACGTAC", "A"),    # deletion [90, 100) ends at the start: out
        ev(119, "ACG", "A"),          # deletion starting on the last base: in
        ev(200, "C", "T"),            # SNP on a 1-base interval: in
        ev(201, "C", "T"),            # SNP just after: out
        ev(105, "C", "T", chrom="c2"),  # other contig: out
    ]
    want = [True, False, False, True, False, True, True, False, False]
    assert s.overlap_flags(events).tolist() == want
    assert [s.overlaps(e.chrom, e.pos, e.end) for e in events] == want
    labels = ["TP"] * len(events)
    lab = {"ALL": (labels, events, labels), "PASS": (labels, events, labels)}
    rows = extended_rows(events, lab, [s])
    r = pick(rows, Type="INDEL", Subset="s", Filter="ALL", Subtype="*", Genotype="*")
    assert (r["TRUTH.TOTAL"], r["QUERY.TOTAL"], r["Subset.Size"]) == (3, 3, 21)
    assert pick(rows, Type="SNP", Subset="s", Filter="ALL", Subtype="*", Genotype="*")["TRUTH.TOTAL"] == 1
    assert pick(rows, Type="INDEL", Subset="s", Filter="ALL", Subtype="D1_5", Genotype="*")["TRUTH.TOTAL"] == 2
    assert pick(rows, Type="INDEL", Subset="s", Filter="ALL", Subtype="I1_5", Genotype="*")["TRUTH.TOTAL"] == 1


# ---------------------------------------------------------------- stratification TSV
def _gz(path: Path, text: str) -> Path:
    with gzip.open(path, "wt") as fh:
        fh.write(text)
    return path


def test_read_stratification(tmp_path):
    (tmp_path / "beds").mkdir()
    (tmp_path / "beds" / "a.bed").write_text("chr1\t0\t10\nchr1\t5\t20\n")
    _gz(tmp_path / "beds" / "b.bed.gz", "#comment\n1\t100\t150\n2\t0\t5\n")
    elsewhere = tmp_path / "other" / "c.bed"
    elsewhere.parent.mkdir()
    elsewhere.write_text("chr2\t10\t12\n")
    (tmp_path / "strat").mkdir()
    tsv = tmp_path / "strat" / "strata.tsv"
    tsv.write_text(f"# hap.py stratification\n\nlow_mappability\t../beds/a.bed\n"
                   f"  # indented comment\nsegdups\t../beds/b.bed.gz\r\nabs\t{elsewhere}\n")
    got = read_stratification(tsv)
    assert [n for n, _ in got] == ["low_mappability", "segdups", "abs"]
    assert [p.resolve() for _, p in got] == [(tmp_path / "beds" / "a.bed").resolve(),
                                              (tmp_path / "beds" / "b.bed.gz").resolve(), elsewhere.resolve()]
    strata = load_strata(tsv, rename=lambda c: c if c.startswith("chr") else "chr" + c)
    assert [(s.name, s.size) for s in strata] == [("low_mappability", 20), ("segdups", 55), ("abs", 2)]
    assert strata[1].overlaps("chr1", 149, 150) and not strata[1].overlaps("1", 120, 121)
    assert strata[1].contigs == ["chr1", "chr2"]


@pytest.mark.parametrize("text,needle", [
    ("a\n", "line 1: expected NAME<TAB>BED_PATH"),
    ("# c\na\tx.bed\textra\n", "line 2: expected NAME<TAB>BED_PATH"),
    ("a x.bed\n", "line 1: expected NAME<TAB>BED_PATH"),
    ("a\t\n", "line 1: expected NAME<TAB>BED_PATH"),
    ("a\tx.bed\nb\tx.bed\na\tx.bed\n", "line 3: duplicate stratum name 'a' (first on line 1)"),
    ("a\tx.bed\nb\tmissing.bed\n", "line 2: BED for stratum 'b' does not exist"),
    ("# only comments\n\n", "lists no strata"),
])
def test_read_stratification_errors(tmp_path, text, needle):
    (tmp_path / "x.bed").write_text("c1\t0\t1\n")
    tsv = tmp_path / "s.tsv"
    tsv.write_text(text)
    with pytest.raises(InputError) as ei:
        read_stratification(tsv)
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith(f"{tsv}: ") and needle in msg
    assert ei.value.path == str(tsv)


def test_missing_stratification_file(tmp_path):
    with pytest.raises(InputError, match="stratification file does not exist") as ei:
        read_stratification(tmp_path / "nope.tsv")
    assert ei.value.path == str(tmp_path / "nope.tsv")
    with pytest.raises(InputError, match="not a regular file"):
        read_stratification(tmp_path)


def test_bad_bed_names_the_bed(tmp_path):
    (tmp_path / "bad.bed").write_text("c1\t10\n")
    (tmp_path / "s.tsv").write_text("bad\tbad.bed\n")
    with pytest.raises(InputError) as ei:
        load_strata(tmp_path / "s.tsv")
    assert ei.value.path == str(tmp_path / "bad.bed") and "line 1" in str(ei.value)


# ---------------------------------------------------------------- CSV
def test_write_extended(tmp_path):
    truth, query, lab = _world()
    rows = extended_rows(truth, lab, [Stratum("s", [("c1", 0, 45)])])
    out = tmp_path / "sub" / "x.extended.csv"
    write_extended(out, rows)
    assert not [p for p in out.parent.iterdir() if p.name != out.name]  # no temp left behind
    with open(out, newline="") as fh:
        got = list(csv.reader(fh))
    assert got[0] == EXTENDED_COLUMNS
    assert got[1:] == [[format_value(r[c]) for c in EXTENDED_COLUMNS] for r in rows]
    star = got[1]
    assert star[:5] == ["INDEL", "*", "*", "ALL", "*"] and star[-1] == ""
    s_row = next(r for r in got[1:] if r[2] == "s")
    assert s_row[-1] == "45"
    recall = got[0].index("METRIC.Recall")
    assert all(r[recall] == "" or len(r[recall].split(".")[1]) == 6 for r in got[1:])
