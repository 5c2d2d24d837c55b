"""evaluate: the same variants written in different representations (haplotype replay).

Each case is a tiny truth VCF and query VCF on one hand-built contig, with counts derived by
hand from the engine's documented semantics (vcfeval-style replay inside 10 bp clusters;
genotype-only mismatches in ``FP.gt``; other query events overlapping a truth event in
``FP.al``; truth MNPs / complex alleles are ``INDEL`` events, their split SNPs ``SNP`` events).

All REF alleles are sliced from ``SEQ`` (``R(pos, n)``), never typed by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pysam
import pytest

from dvtrain.config import EvaluateConfig
from dvtrain.evaluate import evaluate

# ---------------------------------------------------------------- the reference
# Random-looking fillers (no run of 3 equal bases) between the repeat motifs; the cases at
# non-repeat sites use offsets inside their own filler so that no two cases share a cluster
# (each test writes only its own records anyway).
_FILL = [
    "GTCGGACAATAAGCCTGCATGATTGTATTG",
    "ACCTATTGTAATCTACGCCTGCGAGTAGAA",
    "AAGGAGTGGCAACCGCTATGCATAGTAGGC",
    "TTACAGAAGCATAAGAACTGCCTCCTCACG",
    "ATTCCTCGGCGAATGGCAACTTCTTACCTG",
    "GAGCTCGATGAATGTTATTAATTGGCGACA",
    "GACTGGCCGGTAACCATAGCTTGGTTCGTG",
    "ACCGGCCATTCCGGTAGAATGGAGTTAACT",
    "GGCCAGGCTGAATCAGGCCGTACAGTCTTA",
    "ACCTTCATGCTTCCGTGCTGCAACTTAACC",
    "GATCGTAGGACTACGGCATCAATAAGAATA",
    "ACAACAGGCAGCATCTGTTGCAAGCATTGG",
    "GAGTGGCTCGTGCAGTAATTACTAGCGGCC",
    "GTATTAGAATCACTAGCTAAGGTACCGTGA",
    "TATCGTCAATCGTTGGACATAGAACCAGTA",
]
_SEGMENTS = [
    ("f0", _FILL[0]),
    ("hp", "G" + "A" * 7 + "C"),            # homopolymer A7 between G and C
    ("f1", _FILL[1]),
    ("str", "G" + "CA" * 5 + "T"),          # dinucleotide STR (CA)5 between G and T
    ("f2", _FILL[2]),
    ("tri", "T" + "CAG" * 4 + "T"),         # trinucleotide repeat (CAG)4 between T and T
    ("cplx", _FILL[3]),
    ("adj", _FILL[4]),
    ("mnp", _FILL[5]),
    ("hetalt", _FILL[6]),
    ("ovl", _FILL[7]),
    ("ins", _FILL[8]),
    ("snps", _FILL[9]),
    ("phase", _FILL[10]),
    ("far1", _FILL[11]),
    ("far2", _FILL[12]),
    ("far3", _FILL[13]),
    ("tail", _FILL[14]),
]
SEQ = "".join(s for _, s in _SEGMENTS)
POS: dict[str, int] = {}  # 1-based position of each segment's first base
_p = 1
for _name, _s in _SEGMENTS:
    POS[_name] = _p
    _p += len(_s)
CHROM = "c1"
LENGTH = len(SEQ)


def R(pos1: int, n: int = 1) -> str:
    """Reference bases at 1-based ``pos1`` (n of them)."""
    assert 1 <= pos1 and pos1 - 1 + n <= LENGTH
    return SEQ[pos1 - 1 : pos1 - 1 + n]


def other(b: str, k: int = 0) -> str:
    """The k-th base (in ACGT order) that differs from ``b``."""
    return [x for x in "ACGT" if x != b][k]


# named sites (1-based)
G_HP = POS["hp"]          # the G before A7; A at G_HP+1 .. G_HP+7, C at G_HP+8
G_STR = POS["str"]        # the G before (CA)5; C/A at G_STR+1 .. G_STR+10, T at G_STR+11
T_TRI = POS["tri"]        # the T before (CAG)4; CAG at T_TRI+1 .. T_TRI+12, T at T_TRI+13
C_CPLX = POS["cplx"] + 10
A_ADJ = POS["adj"] + 10
M_MNP = POS["mnp"] + 10
H_HETALT = POS["hetalt"] + 10
D_OVL = POS["ovl"] + 10
I_INS = POS["ins"] + 10
S_SNPS = POS["snps"] + 10
P_PHASE = POS["phase"] + 10
F_FAR1 = POS["far1"] + 10
F_FAR2 = POS["far2"] + 10
F_FAR3 = POS["far3"] + 10
F_TAIL = POS["tail"] + 10

# sanity of the layout (the hand-derived expectations rely on these)
assert R(G_HP, 9) == "GAAAAAAAC"
assert R(G_STR, 12) == "GCACACACACAT"
assert R(T_TRI, 14) == "TCAGCAGCAGCAGT"
assert SEQ.find("AAA") == G_HP + 1 - 1 and SEQ.rfind("AAA") == G_HP + 5 - 1  # one A run only
assert SEQ.find("CACA") == G_STR + 1 - 1 and SEQ.rfind("CACA") == G_STR + 7 - 1
assert SEQ.find("CAGCAG") == T_TRI + 1 - 1 and SEQ.rfind("CAGCAG") == T_TRI + 7 - 1
assert F_TAIL - S_SNPS > 100 and F_FAR2 - F_FAR1 > 20


def _cannot_left_shift_deletion(anchor: int, n: int) -> bool:
    """A deletion of R(anchor+1, n) (anchored at ``anchor``) is left-aligned when the anchor
    base differs from the last deleted base."""
    return R(anchor) != R(anchor + n)


# complex site: REF c..c+4, A>X at c, delete c+2..c+3, keep c+1 and c+4
assert _cannot_left_shift_deletion(C_CPLX + 1, 2) and R(C_CPLX + 3) != R(C_CPLX + 1)
# adjacent site: delete a+1..a+2 (anchor a), SNP at a+3
assert _cannot_left_shift_deletion(A_ADJ, 2)
# overlapping deletions: 3 bp anchored at d (deletes d+1..d+3), 5 bp anchored at d+1 (d+2..d+6)
assert _cannot_left_shift_deletion(D_OVL, 3) and _cannot_left_shift_deletion(D_OVL + 1, 5)
# insertions at I_INS: the inserted sequences end in a base that differs from the anchor
INS1 = other(R(I_INS), 0) + other(R(I_INS), 1)
INS2 = other(R(I_INS), 1) + other(R(I_INS), 2)
assert INS1 != INS2 and INS1[-1] != R(I_INS) and INS2[-1] != R(I_INS)

HEADER = (
    "##fileformat=VCFv4.2\n"
    f"##contig=<ID={CHROM},length={LENGTH}>\n"
    '##FILTER=<ID=PASS,Description="All filters passed">\n'
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS\n"
)


def rec(pos: int, ref: str, alt: str, gt: str, flt: str = "PASS") -> tuple:
    return (pos, ref, alt, gt, flt)


def snp(pos: int, gt: str, k: int = 0) -> tuple:
    """A SNP to the k-th other base at ``pos``."""
    return rec(pos, R(pos), other(R(pos), k), gt)


def dele(anchor: int, n: int, gt: str) -> tuple:
    """Delete the n bases after ``anchor`` (written anchored at ``anchor``)."""
    return rec(anchor, R(anchor, n + 1), R(anchor), gt)


def write_vcf(path: Path, records: list[tuple]) -> Path:
    lines = [f"{CHROM}\t{p}\t.\t{r}\t{a}\t50\t{f}\t.\tGT\t{g}\n" for p, r, a, g, f in sorted(records, key=lambda x: x[0])]
    path.write_text(HEADER + "".join(lines))
    return path


# ---------------------------------------------------------------- expectations
def exp(tp: int = 0, fn: int = 0, qt: int = 0, fp: int = 0, gt: int = 0, al: int = 0, unk: int = 0) -> dict:
    return {"TRUTH.TOTAL": tp + fn, "TRUTH.TP": tp, "TRUTH.FN": fn, "QUERY.TOTAL": qt,
            "QUERY.FP": fp, "QUERY.UNK": unk, "FP.gt": gt, "FP.al": al}


NONE = exp()


@dataclass
class Case:
    truth: list
    query: list
    snp: dict = field(default_factory=exp)
    indel: dict = field(default_factory=exp)
    reference: bool = True
    bed: Optional[tuple[int, int]] = None  # 0-based half-open interval; default: whole contig


CASES: dict[str, Case] = {}

# 1. Deletion of one A in the homopolymer: left-shifted (anchor G) in truth, right-shifted
#    (anchor = 6th A, deleting the 7th) in query. Same haplotype -> 1 INDEL TP each side.
CASES["01_homopolymer_del_left_vs_right"] = Case(
    truth=[dele(G_HP, 1, "0/1")],
    query=[dele(G_HP + 6, 1, "0/1")],
    indel=exp(tp=1, qt=1),
)

# 2. Insertion of one CA unit in the (CA)5 STR: after the G (left) vs after the last A (right,
#    inserting "CA" after ...CA gives the same (CA)6). Hom both -> TP.
CASES["02_str_ins_left_vs_right"] = Case(
    truth=[rec(G_STR, R(G_STR), R(G_STR) + "CA", "1/1")],
    query=[rec(G_STR + 10, R(G_STR + 10), R(G_STR + 10) + "CA", "1/1")],
    indel=exp(tp=1, qt=1),
)

# 3. The homopolymer deletion of case 1, query written with padding on both sides
#    (REF = 2 filler bases, G, A7, C, 1 filler base: G_HP-2 .. G_HP+9; ALT drops the 2nd A).
#    Trimming the common suffix/prefix leaves the same one-A deletion -> TP.
_pad_ref = R(G_HP - 2, 12)
_pad_alt = _pad_ref[:4] + _pad_ref[5:]  # drops the 2nd A (position G_HP+2)
assert len(_pad_alt) == 11 and _pad_ref[4] == "A"
CASES["03_homopolymer_del_padded"] = Case(
    truth=[dele(G_HP, 1, "0/1")],
    query=[rec(G_HP - 2, _pad_ref, _pad_alt, "0/1")],
    indel=exp(tp=1, qt=1),
)

# 3b. STR deletion of one CA unit: left-aligned (GCA -> G) vs padded and right-shifted
#     (REF CACAT starting at the 4th C -> CAT; trims to CAC -> C at G_STR+7, deleting AC).
CASES["03b_str_del_padded_right"] = Case(
    truth=[dele(G_STR, 2, "0/1")],
    query=[rec(G_STR + 7, R(G_STR + 7, 5), R(G_STR + 7, 1) + R(G_STR + 10, 2), "0/1")],
    indel=exp(tp=1, qt=1),
)
assert R(G_STR + 7, 5) == "CACAT"

# 4. Complex substitution+deletion: REF c..c+4 -> X R(c+1) R(c+4) (SNP at c, delete c+2..c+3),
#    one record (trims to a 4->2 complex INDEL event) vs the SNP and the deletion (anchored at
#    c+1, no overlap with the SNP) as two records. Hom: both haplotypes identical -> all TP.
_cx_alt = other(R(C_CPLX)) + R(C_CPLX + 1) + R(C_CPLX + 4)
_cx_merged = [rec(C_CPLX, R(C_CPLX, 5), _cx_alt, "1/1")]
_cx_split = [snp(C_CPLX, "1/1"), dele(C_CPLX + 1, 2, "1/1")]
CASES["04_complex_merged_vs_split"] = Case(
    truth=_cx_merged, query=_cx_split,
    indel=exp(tp=1, qt=1),   # truth complex TP; query deletion TP
    snp=exp(qt=1),           # query SNP TP (no SNP in truth)
)
# 4b. The reverse: truth split, query merged.
CASES["04b_complex_split_vs_merged"] = Case(
    truth=_cx_split, query=_cx_merged,
    indel=exp(tp=1, qt=1),
    snp=exp(tp=1),
)
# 4c. Het: the merged het record vs two het records (phase ignored: both on one haplotype).
CASES["04c_complex_het_merged_vs_split"] = Case(
    truth=[rec(C_CPLX, R(C_CPLX, 5), _cx_alt, "0/1")],
    query=[snp(C_CPLX, "0/1"), dele(C_CPLX + 1, 2, "0/1")],
    indel=exp(tp=1, qt=1),
    snp=exp(qt=1),
)

# 5. MNP R(m,2) -> XY vs the two SNPs.
_mnp_alt = other(R(M_MNP)) + other(R(M_MNP + 1))
# 5a. hom vs hom: truth MNP (INDEL) TP; query 2 SNPs TP.
CASES["05a_mnp_hom_vs_two_snps_hom"] = Case(
    truth=[rec(M_MNP, R(M_MNP, 2), _mnp_alt, "1/1")],
    query=[snp(M_MNP, "1/1"), snp(M_MNP + 1, "1/1")],
    indel=exp(tp=1),
    snp=exp(qt=2),
)
# 5b. het vs het: both SNPs can be placed on the MNP's haplotype -> TP.
CASES["05b_mnp_het_vs_two_snps_het"] = Case(
    truth=[rec(M_MNP, R(M_MNP, 2), _mnp_alt, "0/1")],
    query=[snp(M_MNP, "0/1"), snp(M_MNP + 1, "0|1")],
    indel=exp(tp=1),
    snp=exp(qt=2),
)
# 5c. reverse: truth 2 hom SNPs, query hom MNP.
CASES["05c_two_snps_vs_mnp"] = Case(
    truth=[snp(M_MNP, "1/1"), snp(M_MNP + 1, "1/1")],
    query=[rec(M_MNP, R(M_MNP, 2), _mnp_alt, "1/1")],
    snp=exp(tp=2),
    indel=exp(qt=1),
)
# 5d. truth het MNP vs query hom SNPs: no diploid match (query changes both haplotypes);
#     ignoring genotypes the two SNPs replay to the MNP's allele -> both FP.gt, MNP FN.
CASES["05d_mnp_het_vs_two_snps_hom"] = Case(
    truth=[rec(M_MNP, R(M_MNP, 2), _mnp_alt, "0/1")],
    query=[snp(M_MNP, "1/1"), snp(M_MNP + 1, "1/1")],
    indel=exp(fn=1),
    snp=exp(qt=2, fp=2, gt=2),
)

# 6. MNP vs only its first SNP: no haplotype (diploid or haploid) equality -> truth MNP FN;
#    the query SNP overlaps the MNP's span -> FP.al.
CASES["06_mnp_vs_one_snp"] = Case(
    truth=[rec(M_MNP, R(M_MNP, 2), _mnp_alt, "0/1")],
    query=[snp(M_MNP, "0/1")],
    indel=exp(fn=1),
    snp=exp(qt=1, fp=1, al=1),
)

# 7. het-alt 1/2 SNP vs two het records at the same position (one per haplotype) -> 2 TP.
_h = H_HETALT
_hetalt = [rec(_h, R(_h), other(R(_h), 0) + "," + other(R(_h), 1), "1/2")]
_two_hets = [snp(_h, "0/1", 0), snp(_h, "0/1", 1)]
CASES["07_hetalt_vs_two_hets"] = Case(truth=_hetalt, query=_two_hets, snp=exp(tp=2, qt=2))
# 7b. the reverse.
CASES["07b_two_hets_vs_hetalt"] = Case(truth=_two_hets, query=_hetalt, snp=exp(tp=2, qt=2))
# 7c. het-alt deletions in the homopolymer (del A / del AA, written left-aligned as one 1/2
#     record) vs two het records written right-shifted -> 2 INDEL TP.
CASES["07c_hetalt_dels_vs_two_shifted_hets"] = Case(
    truth=[rec(G_HP, R(G_HP, 3), R(G_HP, 2) + "," + R(G_HP), "1/2")],
    query=[dele(G_HP + 6, 1, "0/1"), dele(G_HP + 5, 2, "0/1")],
    indel=exp(tp=2, qt=2),
)

# 8. 1/2 truth vs the first allele only (het): {X} vs {X} matches -> 1 TP; Y FN.
CASES["08_hetalt_vs_one_allele"] = Case(
    truth=_hetalt, query=[snp(_h, "0/1", 0)],
    snp=exp(tp=1, fn=1, qt=1),
)
# 8b. 1/2 truth vs the first allele hom: no diploid match (X/X vs X/Y); X matches ignoring
#     genotype -> FP.gt 1, both truth events FN.
CASES["08b_hetalt_vs_one_allele_hom"] = Case(
    truth=_hetalt, query=[snp(_h, "1/1", 0)],
    snp=exp(fn=2, qt=1, fp=1, gt=1),
)

# 9. Overlapping het deletions (3 bp anchored at d, 5 bp anchored at d+1): they overlap so
#    they sit on different haplotypes.
_ovl = [dele(D_OVL, 3, "0/1"), dele(D_OVL + 1, 5, "0/1")]
# 9a. query identical -> 2 TP.
CASES["09a_overlapping_dels_same"] = Case(truth=_ovl, query=list(_ovl), indel=exp(tp=2, qt=2))
# 9b. query claims the 3 bp deletion hom: hap sets {del3,del3} vs {del3,del5} differ, no
#     subset matches either -> no TP; del3 matches a truth allele ignoring genotype -> FP.gt.
CASES["09b_overlapping_dels_vs_one_hom"] = Case(
    truth=_ovl, query=[dele(D_OVL, 3, "1/1")],
    indel=exp(fn=2, qt=1, fp=1, gt=1),
)
# 9c. query with the same two deletions but both phased on one haplotype (1|0, 1|0):
#     phase is ignored, so they are placed on different haplotypes -> 2 TP.
CASES["09c_overlapping_dels_phase_ignored"] = Case(
    truth=_ovl, query=[dele(D_OVL, 3, "1|0"), dele(D_OVL + 1, 5, "1|0")],
    indel=exp(tp=2, qt=2),
)

# 10. Genotype mismatch: truth het CAG deletion (left-aligned), query the same deletion
#     right-shifted and hom -> FP.gt 1, truth FN 1.
assert R(T_TRI + 9, 4) == "GCAG"
CASES["10_het_vs_hom_shifted"] = Case(
    truth=[dele(T_TRI, 3, "0/1")],
    query=[dele(T_TRI + 9, 3, "1/1")],
    indel=exp(fn=1, qt=1, fp=1, gt=1),
)

# 11. Without a reference. Truth deletes the 1st A (REF "GA" at G_HP).
# 11a. Query deletes the 3rd A written "AA"->"A" at G_HP+2: the REFs cover G_HP..G_HP+3
#      contiguously (G A | A A), all bases between the two representations are known -> TP.
CASES["11a_noref_shift_covered"] = Case(
    truth=[dele(G_HP, 1, "0/1")],
    query=[dele(G_HP + 2, 1, "0/1")],
    indel=exp(tp=1, qt=1),
    reference=False,
)
# 11b. Query deletes the 7th A ("AA"->"A" at G_HP+6): G_HP+2..G_HP+5 appear in no REF, so
#      equality cannot be proven -> truth FN, query FP; no overlap of spans -> plain FP.
CASES["11b_noref_shift_not_covered"] = Case(
    truth=[dele(G_HP, 1, "0/1")],
    query=[dele(G_HP + 6, 1, "0/1")],
    indel=exp(fn=1, qt=1, fp=1),
    reference=False,
)

# 12. Insertion at the same anchor with a different inserted sequence: no match, the query
#     insertion overlaps the truth insertion's anchor base -> FP.al.
CASES["12_insertion_other_sequence"] = Case(
    truth=[rec(I_INS, R(I_INS), R(I_INS) + INS1, "0/1")],
    query=[rec(I_INS, R(I_INS), R(I_INS) + INS2, "0/1")],
    indel=exp(fn=1, qt=1, fp=1, al=1),
)
# 12b. STR: truth inserts one CA unit (left), query two units (written right-shifted; it
#      left-aligns onto the same anchor G) -> different allele, overlapping -> FP.al.
CASES["12b_str_ins_other_length"] = Case(
    truth=[rec(G_STR, R(G_STR), R(G_STR) + "CA", "0/1")],
    query=[rec(G_STR + 10, R(G_STR + 10), R(G_STR + 10) + "CACA", "0/1")],
    indel=exp(fn=1, qt=1, fp=1, al=1),
)

# 13. Two SNPs 5 bp apart (one cluster); query gets the first right and the second with a
#     different ALT: 1 TP; truth 2nd FN; query 2nd overlaps it -> FP.al.
CASES["13_two_snps_one_wrong_allele"] = Case(
    truth=[snp(S_SNPS, "0/1", 0), snp(S_SNPS + 5, "0/1", 0)],
    query=[snp(S_SNPS, "0/1", 0), snp(S_SNPS + 5, "0/1", 1)],
    snp=exp(tp=1, fn=1, qt=2, fp=1, al=1),
)

# 14. A query SNP far (>100 bp) from any truth event: plain FP; the truth SNP is matched.
CASES["14_far_fp"] = Case(
    truth=[snp(S_SNPS, "0/1")],
    query=[snp(S_SNPS, "0/1"), snp(F_TAIL, "0/1")],
    snp=exp(tp=1, qt=2, fp=1),
)

# 15. Identical CAG deletion records in the repeat (trivial TP) with noise in the same
#     cluster: a truth-only SNP 6 bp before (FN) and a query-only SNP 2 bp before (plain FP,
#     it overlaps no truth span).
CASES["15_identical_in_repeat_with_noise"] = Case(
    truth=[dele(T_TRI, 3, "0/1"), snp(T_TRI - 6, "0/1")],
    query=[dele(T_TRI, 3, "0/1"), snp(T_TRI - 2, "0/1")],
    indel=exp(tp=1, qt=1),
    snp=exp(fn=1, qt=1, fp=1),
)

# 16. BED edge: BED = 1-based G_HP-5 .. G_HP+7 (ends at the last A). Truth left deletion and
#     query right-shifted deletion (REF G_HP+6..G_HP+7) both inside -> TP. A query SNP and a
#     truth SNP far outside the BED: query UNK, truth not counted.
CASES["16_bed_edge_and_outside"] = Case(
    truth=[dele(G_HP, 1, "0/1"), snp(F_FAR3, "0/1")],
    query=[dele(G_HP + 6, 1, "0/1"), snp(F_FAR3 + 5, "0/1")],
    indel=exp(tp=1, qt=1),
    snp=exp(qt=1, unk=1),
    bed=(G_HP - 6, G_HP + 7),
)

# 17. Hom deletion in truth vs the same deletion as two het records at the same position:
#     one per haplotype == hom -> 1 truth TP, 2 query TP.
CASES["17_hom_vs_two_het_records"] = Case(
    truth=[dele(G_HP, 1, "1/1")],
    query=[dele(G_HP, 1, "0/1"), dele(G_HP, 1, "0/1")],
    indel=exp(tp=1, qt=2),
)
# 17b. the same, one of the two het records written right-shifted.
CASES["17b_hom_vs_two_het_records_shifted"] = Case(
    truth=[dele(G_HP, 1, "1/1")],
    query=[dele(G_HP, 1, "0/1"), dele(G_HP + 6, 1, "0/1")],
    indel=exp(tp=1, qt=2),
)

# 18. SNP right after a deletion: REF a..a+3 -> R(a) X (delete a+1..a+2, a+3 -> X), as one
#     record (trims to a 3->1 complex INDEL at a+1) vs a deletion anchored at a (span a..a+2)
#     plus a SNP at a+3 (no overlap). Het; phase ignored -> same haplotype -> all TP.
_adj_x = other(R(A_ADJ + 3))
_adj_merged = [rec(A_ADJ, R(A_ADJ, 4), R(A_ADJ) + _adj_x, "0/1")]
_adj_split = [dele(A_ADJ, 2, "0/1"), rec(A_ADJ + 3, R(A_ADJ + 3), _adj_x, "0/1")]
CASES["18_adjacent_snp_del_merged_vs_split"] = Case(
    truth=_adj_merged, query=_adj_split,
    indel=exp(tp=1, qt=1),
    snp=exp(qt=1),
)
CASES["18b_adjacent_snp_del_split_vs_merged"] = Case(
    truth=_adj_split, query=_adj_merged,
    indel=exp(tp=1, qt=1),
    snp=exp(tp=1),
)

# 19. Phase ignored for SNPs: truth phases two nearby het SNPs on opposite haplotypes, the
#     query on the same one -> both TP.
CASES["19_phase_ignored_snps"] = Case(
    truth=[rec(P_PHASE, R(P_PHASE), other(R(P_PHASE)), "0|1"),
           rec(P_PHASE + 3, R(P_PHASE + 3), other(R(P_PHASE + 3)), "1|0")],
    query=[rec(P_PHASE, R(P_PHASE), other(R(P_PHASE)), "1|0"),
           rec(P_PHASE + 3, R(P_PHASE + 3), other(R(P_PHASE + 3)), "1|0")],
    snp=exp(tp=2, qt=2),
)

# 20. Query has a matched SNP and the truth a far, unmatched one (separate clusters): FN.
CASES["20_far_fn"] = Case(
    truth=[snp(F_FAR1, "0/1"), snp(F_FAR2, "1/1")],
    query=[snp(F_FAR1, "0/1")],
    snp=exp(tp=1, fn=1, qt=1),
)


# 21. Insertion followed by a SNP on the next base: REF R(b-1) R(b) -> R(b-1) INS X as one record
#     (trims to the complex R(b) -> INS X) vs the insertion anchored at b-1 plus the SNP at b
#     (the insertion occupies only its anchor b-1: no overlap). Het, same haplotype -> all TP.
B_INSSNP = POS["ins"] + 20
_is_ins = other(R(B_INSSNP - 1), 0) + other(R(B_INSSNP - 1), 1)
_is_x = other(R(B_INSSNP))
assert _is_ins[-1] != R(B_INSSNP - 1)
CASES["21_insertion_then_snp_merged_vs_split"] = Case(
    truth=[rec(B_INSSNP - 1, R(B_INSSNP - 1, 2), R(B_INSSNP - 1) + _is_ins + _is_x, "0/1")],
    query=[rec(B_INSSNP - 1, R(B_INSSNP - 1), R(B_INSSNP - 1) + _is_ins, "0/1"),
           rec(B_INSSNP, R(B_INSSNP), _is_x, "0/1")],
    indel=exp(tp=1, qt=1),
    snp=exp(qt=1),
)
# 21b. A SNP *at* the insertion's anchor: R(b) -> X INS as one record vs SNP b>X plus the
#      insertion anchored at b. The brief's wording ("an insertion occupies its anchor base")
#      would forbid the two query events on one haplotype (-> FN / 2 FP.al); the engine, like
#      vcfeval, keeps a pure indel's anchor base out of its edit, so SNP + insertion replay to
#      X INS on one haplotype -> all TP. This test pins the vcfeval behaviour.
_a_ins = other(R(B_INSSNP), 1) + other(R(B_INSSNP), 2)
assert _a_ins[-1] != R(B_INSSNP)
CASES["21b_snp_at_insertion_anchor_merged_vs_split"] = Case(
    truth=[rec(B_INSSNP, R(B_INSSNP), _is_x + _a_ins, "0/1")],
    query=[rec(B_INSSNP, R(B_INSSNP), _is_x, "0/1"),
           rec(B_INSSNP, R(B_INSSNP), R(B_INSSNP) + _a_ins, "0/1")],
    indel=exp(tp=1, qt=1),
    snp=exp(qt=1),
)

# 22. Without a reference, the merged records' REF alleles cover every base the split records
#     touch, so cases 4, 5b and 18 still match (no left-alignment is needed there).
CASES["22a_noref_complex_merged_vs_split"] = Case(
    truth=_cx_merged, query=_cx_split, indel=exp(tp=1, qt=1), snp=exp(qt=1), reference=False)
CASES["22b_noref_mnp_het_vs_two_snps"] = Case(
    truth=[rec(M_MNP, R(M_MNP, 2), _mnp_alt, "0/1")],
    query=[snp(M_MNP, "0/1"), snp(M_MNP + 1, "0/1")],
    indel=exp(tp=1), snp=exp(qt=2), reference=False)
CASES["22c_noref_adjacent_split_vs_merged"] = Case(
    truth=_adj_split, query=_adj_merged, indel=exp(tp=1, qt=1), snp=exp(tp=1), reference=False)

# 23. BED decided on the normalised span: BED ends at the last A (as in 16); the query writes
#     the deletion of the 7th A as "AC" -> "C" (written span reaches the C, outside the BED),
#     which left-aligns to the G anchor inside the BED -> TP, not UNK.
assert R(G_HP + 7, 2) == "AC"
CASES["23_written_span_crosses_bed_end"] = Case(
    truth=[dele(G_HP, 1, "1/1")],
    query=[rec(G_HP + 7, R(G_HP + 7, 2), R(G_HP + 8), "1/1")],
    indel=exp(tp=1, qt=1),
    bed=(G_HP - 6, G_HP + 7),
)

# 24. A chain of events wider than 10 bp (SNP, CAG deletion, SNP, each within 10 bp of the
#     next) with the deletion written right-shifted in the query and the last SNP hom in the
#     query (het in truth): 2 TP (SNP + deletion), last SNP FN / FP.gt.
CASES["24_chain_with_shifted_del_and_gt_error"] = Case(
    truth=[snp(T_TRI - 5, "0/1"), dele(T_TRI, 3, "0/1"), snp(T_TRI + 18, "0/1")],
    query=[snp(T_TRI - 5, "0/1"), dele(T_TRI + 9, 3, "0/1"), snp(T_TRI + 18, "1/1")],
    indel=exp(tp=1, qt=1),
    snp=exp(tp=1, fn=1, qt=2, fp=1, gt=1),
)

# 25. The reverse of 17: two het records of one deletion in truth (one written shifted), one
#     hom record in query -> 2 truth TP, 1 query TP.
CASES["25_two_het_records_vs_hom"] = Case(
    truth=[dele(G_HP, 1, "0/1"), dele(G_HP + 6, 1, "0/1")],
    query=[dele(G_HP, 1, "1/1")],
    indel=exp(tp=2, qt=1),
)

# 26. Without a reference, bases named only by a *record's* REF count as known. Truth: the
#     1-A deletion at G_HP ("GA"->"G") and the SNP C>X at G_HP+8. Query: the deletion written
#     right-shifted ("AA"->"A" at G_HP+6) and the same SNP written padded as one record with
#     REF = G_HP..G_HP+8 ("GAAAAAAAC" -> "GAAAAAAAX"). The query SNP record's REF names every
#     base of the homopolymer, so by "the replay only knows the reference bases that appear in
#     REF alleles of the cluster's records" the deletions are provably equal -> all TP.
_pad_snp_x = other(R(G_HP + 8))
CASES["26_noref_padded_record_ref_covers_shift"] = Case(
    truth=[dele(G_HP, 1, "0/1"), rec(G_HP + 8, R(G_HP + 8), _pad_snp_x, "0/1")],
    query=[rec(G_HP, R(G_HP, 9), R(G_HP, 8) + _pad_snp_x, "0/1"), dele(G_HP + 6, 1, "0/1")],
    indel=exp(tp=1, qt=1),
    snp=exp(tp=1, qt=1),
    reference=False,
)

# ---------------------------------------------------------------- running a case
def _run(tmp_path: Path, case: Case) -> dict:
    fa = None
    if case.reference:
        fa = tmp_path / "ref.fa"
        fa.write_text(f">{CHROM}\n" + "\n".join(SEQ[i : i + 60] for i in range(0, LENGTH, 60)) + "\n")
        pysam.faidx(str(fa))
    start, end = case.bed if case.bed is not None else (0, LENGTH)
    bed = tmp_path / "conf.bed"
    bed.write_text(f"{CHROM}\t{start}\t{end}\n")
    truth = write_vcf(tmp_path / "truth.vcf", case.truth)
    query = write_vcf(tmp_path / "query.vcf", case.query)
    rows = evaluate(EvaluateConfig(truth_vcf=truth, query_vcf=query, confident_bed=bed,
                                   reference=fa, output_prefix=tmp_path / "out" / "eval"))
    return {(r["Type"], r["Filter"]): r for r in rows}


def _counts(row: dict) -> dict:
    return {k: row[k] for k in NONE}


def test_reference_layout():
    # the BED of case 16 covers both written spans: G_HP-5..G_HP+1 and G_HP+6..G_HP+7 (1-based)
    s, e = CASES["16_bed_edge_and_outside"].bed  # type: ignore[misc]
    assert s + 1 <= G_HP and G_HP + 7 == e and R(G_HP + 8) == "C"
    assert not (s < F_FAR3 <= e) and not (s < F_FAR3 + 5 <= e)
    # every written REF agrees with the reference
    for case in CASES.values():
        for pos, ref, alt, gt, flt in case.truth + case.query:
            assert R(pos, len(ref)) == ref


@pytest.mark.parametrize("name", list(CASES), ids=list(CASES))
def test_representation(tmp_path: Path, name: str):
    case = CASES[name]
    rows = _run(tmp_path, case)
    got = {"SNP": _counts(rows["SNP", "PASS"]), "INDEL": _counts(rows["INDEL", "PASS"])}
    assert got == {"SNP": case.snp, "INDEL": case.indel}
    # every record is PASS: the ALL rows are the same
    assert _counts(rows["SNP", "ALL"]) == got["SNP"] and _counts(rows["INDEL", "ALL"]) == got["INDEL"]
