"""labeler: haplotype-aware candidate labels when truth and reads write a variant differently."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pysam
import pytest

from dvtrain.bed import IntervalIndex
from dvtrain.evaluate import Normalizer, split_events
from dvtrain.labeler import (
    Labeler,
    LabelingMetrics,
    label_candidates,
    labeling_metrics_path,
    read_metrics,
    write_metrics,
)
from dvtrain.variants import Variant, normalize

# ---------------------------------------------------------------- a tiny reference
PARTS = [
    "GCTAGCATTGCGCATGTC",          # filler
    "C", "AAAAAA", "G",            # homopolymer: A x6 at 19..24
    "TTGCGATCGCATGCTAGT",
    "G", "ACACACACAC", "T",        # dinucleotide STR: (AC) x5 at 45..54
    "CGATGCTTAGCATCGGAT",
    "T", "CAGCAGCAGCAG", "T",      # trinucleotide repeat: (CAG) x4 at 75..86
    "GCATCGATGCTAGCTTGACGTAGC",
    "GATCCTGAGCTACGTAGCTTAGCATG",  # plain sequence for SNPs, MNPs, complex records
    "CTGACTGATCGTAGCATGCATCGATCGTACGATGCA",
]
SEQ = "".join(PARTS)
H = SEQ.index("CAAAAAAG") + 1  # first A of the homopolymer
R = SEQ.index("GACACACACACT") + 1  # first A of the AC repeat
T3 = SEQ.index("TCAGCAGCAGCAGT") + 1  # first C of the CAG repeat
P = SEQ.index("GATCCTGAGC")  # plain region
assert SEQ[H : H + 6] == "AAAAAA" and SEQ[H - 1] == "C" and SEQ[H + 6] == "G"
assert SEQ[R : R + 10] == "AC" * 5 and SEQ[T3 : T3 + 12] == "CAG" * 4


@pytest.fixture(scope="module")
def norm(tmp_path_factory) -> Normalizer:
    d = tmp_path_factory.mktemp("ref")
    fa = d / "ref.fa"
    fa.write_text(">c1\n" + "\n".join(SEQ[i : i + 60] for i in range(0, len(SEQ), 60)) + "\n")
    pysam.faidx(str(fa))
    with Normalizer(fa) as n:
        yield n


def truth(norm, *records, normalise: bool = True):
    """Truth events from (pos0, ref, 'alt1,alt2', gt) records."""
    vs = [Variant("c1", pos, ref, tuple(alts.split(",")), gt) for pos, ref, alts, gt in records]
    for v in vs:
        assert SEQ[v.pos : v.end] == v.ref, v
    return split_events(vs, norm if normalise else None)


def cand(pos: int, ref: str, alt: str) -> tuple[str, int, str, str]:
    assert SEQ[pos : pos + len(ref)] == ref, (pos, ref)
    return ("c1", pos, ref, alt)


def canonical(c) -> bool:
    """Whether a candidate is already left-aligned and trimmed."""
    _, pos, ref, alt = c
    return normalize(pos, ref, alt, lambda s, e: SEQ[s:e]) == (pos, ref, alt)


def run(norm, t, cands, **kw):
    return label_candidates(t, cands, norm.fetch, **kw)


# ---------------------------------------------------------------- representation cases
def test_het_deletion_homopolymer_right_shifted_candidate(norm):
    t = truth(norm, (H + 4, "AA", "A", (0, 1)))  # normalised to the left end
    assert t[0].key == ("c1", H - 1, "CA", "C")
    labels, m = run(norm, t, [cand(H + 4, "AA", "A")])
    assert labels == [1]
    assert (m.truth_variants, m.truth_matched, m.truth_unmatched) == (1, 1, 0)
    assert m.candidates_per_class == [0, 1, 0]
    assert m.clusters["replayed"] == 1 and m.clusters["replayed_full"] == 1
    assert m.candidates_matched_by_replay == 1 and m.labels_differing_from_key == 1


def test_hom_deletion_homopolymer_right_shifted_candidate(norm):
    t = truth(norm, (H - 1, "CAA", "C", (1, 1)))
    labels, m = run(norm, t, [cand(H + 3, "AAA", "A")])
    assert labels == [2]
    assert m.truth_matched == 1 and m.candidates_per_class == [0, 0, 1]


def test_truth_right_shifted_candidate_left(norm):
    # a truth set that was not left-aligned (trimmed only) against a normalised candidate
    t = truth(norm, (H + 4, "AA", "A", (0, 1)), normalise=False)
    assert t[0].pos == H + 4
    c = cand(H - 1, "CA", "C")
    assert canonical(c)
    labels, m = run(norm, t, [c])
    assert labels == [1] and m.truth_matched == 1


def test_insertion_homopolymer_shifted(norm):
    t = truth(norm, (H - 1, "C", "CA", (1, 1)))
    labels, _ = run(norm, t, [cand(H + 5, "A", "AA")])
    assert labels == [2]


def test_insertion_dinucleotide_str_shifted(norm):
    t = truth(norm, (R + 9, "C", "CAC", (0, 1)))  # inserted at the right end of (AC)x5
    assert t[0].key == ("c1", R - 1, "G", "GAC")
    # the same insertion written as CA after the first A, and at the right end
    for c in (cand(R, "A", "ACA"), cand(R + 9, "C", "CAC")):
        labels, m = run(norm, t, [c])
        assert labels == [1], c
        assert m.truth_matched == 1


def test_deletion_dinucleotide_str_hom_shifted(norm):
    t = truth(norm, (R - 1, "GAC", "G", (1, 1)))
    labels, _ = run(norm, t, [cand(R + 4, "ACA", "A")])  # deletes the CA at R+5..R+6
    assert labels == [2]


def test_deletion_trinucleotide_repeat_shifted(norm):
    t = truth(norm, (T3 + 8, "GCAG", "G", (0, 1)))  # the last CAG unit
    assert t[0].key == ("c1", T3 - 1, "TCAG", "T")
    labels, m = run(norm, t, [cand(T3 + 2, "GCAG", "G")])  # the second unit
    assert labels == [1] and m.truth_matched == 1


def test_truth_complex_candidates_split(norm):
    # truth: one record = SNP A>T at P+7 plus deletion of GC at P+8..P+9
    rec = (P + 6, SEQ[P + 6 : P + 10], SEQ[P + 6] + "T")
    snp, dele = cand(P + 7, SEQ[P + 7], "T"), cand(P + 7, SEQ[P + 7 : P + 10], SEQ[P + 7])
    assert canonical(snp) and canonical(dele)
    for gt, want in (((0, 1), 1), ((1, 1), 2)):
        t = truth(norm, rec + (gt,))
        assert len(t) == 1 and t[0].ref == SEQ[P + 7 : P + 10] and t[0].alt == "T"
        labels, m = run(norm, t, [snp, dele, cand(P + 3, "C", "G")])  # and an unrelated FP
        assert labels == [want, want, 0], gt
        assert m.truth_matched == 1 and m.truth_unmatched == 0


def test_truth_split_candidate_complex(norm):
    snp = (P + 7, SEQ[P + 7], "T")
    dele = (P + 7, SEQ[P + 7 : P + 10], SEQ[P + 7])
    complex_ = cand(P + 7, SEQ[P + 7 : P + 10], "T")
    for gt, want in (((0, 1), 1), ((1, 1), 2)):
        t = truth(norm, snp + (gt,), dele + (gt,))
        labels, m = run(norm, t, [complex_])
        assert labels == [want]
        assert (m.truth_variants, m.truth_matched) == (2, 2)


def test_mnp_truth_two_snp_candidates(norm):
    m0 = P + 12
    mnp = (m0, SEQ[m0 : m0 + 2], "AT" if SEQ[m0 : m0 + 2] != "AT" else "CC")
    assert all(a != b for a, b in zip(mnp[1], mnp[2]))
    t = truth(norm, mnp + ((0, 1),))
    c1, c2 = cand(m0, mnp[1][0], mnp[2][0]), cand(m0 + 1, mnp[1][1], mnp[2][1])
    labels, m = run(norm, t, [c1, c2])
    assert labels == [1, 1] and m.truth_matched == 1
    # and the other way round: two truth SNPs, one MNP candidate
    t2 = truth(norm, (c1[1], c1[2], c1[3], (0, 1)), (c2[1], c2[2], c2[3], (0, 1)))
    labels, m = run(norm, t2, [cand(*mnp)])
    assert labels == [1] and m.truth_matched == 2


def test_hetalt_truth_two_shifted_candidates(norm):
    t = truth(norm, (H - 1, "CAA", "CA,C", (1, 2)))  # del A / del AA
    assert [e.copies for e in t] == [1, 1] and all(e.gtc == "hetalt" for e in t)
    labels, m = run(norm, t, [cand(H + 4, "AA", "A"), cand(H + 3, "AAA", "A")])
    assert labels == [1, 1]
    assert m.truth_matched == 2


def test_hetalt_insertion_and_deletion(norm):
    t = truth(norm, (H - 1, "CA", "CAA,C", (1, 2)))  # ins A / del A
    labels, m = run(norm, t, [cand(H + 5, "A", "AA"), cand(H + 4, "AA", "A")])
    assert labels == [1, 1] and m.truth_matched == 2


def test_false_positive_next_to_true_shifted(norm):
    t = truth(norm, (H - 1, "CA", "C", (0, 1)))
    # the true deletion (shifted) and a 2-base deletion in the same run, which is wrong
    labels, m = run(norm, t, [cand(H + 3, "AAA", "A"), cand(H + 4, "AA", "A")])
    assert labels == [0, 1]
    assert m.candidates_per_class == [1, 1, 0] and m.truth_matched == 1


def test_false_positive_snp_next_to_true_snp(norm):
    s = P + 20
    alt = "A" if SEQ[s] != "A" else "C"
    t = truth(norm, (s, SEQ[s], alt, (1, 1)))
    fp = cand(s + 3, SEQ[s + 3], "A" if SEQ[s + 3] != "A" else "C")
    labels, m = run(norm, t, [fp, cand(s, SEQ[s], alt)])
    assert labels == [0, 2]
    assert m.clusters["by_key"] == 1 and m.clusters["replayed"] == 0


def test_right_position_wrong_allele(norm):
    s = P + 20
    ref = SEQ[s]
    alts = [b for b in "ACGT" if b != ref]
    t = truth(norm, (s, ref, alts[0], (0, 1)))
    labels, m = run(norm, t, [cand(s, ref, alts[1])])
    assert labels == [0]
    assert (m.truth_variants, m.truth_matched, m.truth_unmatched) == (1, 0, 1)
    assert m.candidates_per_class == [1, 0, 0]
    assert m.unmatched_examples == [f"c1:{s + 1} {ref}>{alts[0]}"]


def test_two_truth_one_candidate_missing(norm):
    s = H + 9
    alt = "A" if SEQ[s] != "A" else "C"
    t = truth(norm, (H - 1, "CA", "C", (0, 1)), (s, SEQ[s], alt, (0, 1)))
    labels, m = run(norm, t, [cand(H + 4, "AA", "A")])  # the SNP has no candidate
    assert labels == [1]
    assert (m.truth_variants, m.truth_matched, m.truth_unmatched) == (2, 1, 1)
    assert m.clusters["replayed_partial"] == 1
    assert m.unmatched_examples == [f"c1:{s + 1} {SEQ[s]}>{alt}"]


def test_fewest_nonzero_labels_win(norm):
    # del AA + ins A on one haplotype is also "delete one A": the single deletion wins
    t = truth(norm, (H - 1, "CA", "C", (0, 1)))
    cands = [cand(H + 3, "AAA", "A"), cand(H + 4, "AA", "A"), cand(H + 5, "A", "AA")]
    labels, _ = run(norm, t, cands)
    assert labels == [0, 1, 0]
    # without the single deletion, the pair reproduces it
    labels, m = run(norm, t, [cands[0], cands[2]])
    assert labels == [1, 1] and m.truth_matched == 1


def test_hom_truth_needs_both_copies(norm):
    # a hom deletion cannot be reproduced by a het candidate plus nothing: label 2
    t = truth(norm, (H - 1, "CA", "C", (1, 1)))
    labels, m = run(norm, t, [cand(H + 4, "AA", "A"), cand(H + 3, "AAA", "A")])
    assert labels == [2, 0] and m.truth_matched == 1


def test_compound_het_deletions_two_runs(norm):
    # two het deletions in the STR and the CAG repeat are far apart; shifted candidates
    t = truth(norm, (R - 1, "GAC", "G", (0, 1)), (T3 - 1, "TCAG", "T", (0, 1)))
    labels, m = run(norm, t, [cand(R + 4, "ACA", "A"), cand(T3 + 5, "GCAG", "G")])
    assert labels == [1, 1] and m.truth_matched == 2


# ---------------------------------------------------------------- other behaviour
def test_by_key_and_candidates_outside_truth(norm):
    s = P + 20
    alt = "A" if SEQ[s] != "A" else "C"
    t = truth(norm, (s, SEQ[s], alt, (0, 1)))
    far = cand(5, SEQ[5], "A" if SEQ[5] != "A" else "C")
    labels, m = run(norm, t, [far, cand(s, SEQ[s], alt), cand(s, SEQ[s], alt)])  # a duplicate too
    assert labels == [0, 1, 1]
    assert m.clusters["candidates_only"] == 1 and m.clusters["by_key"] == 1
    assert m.candidates_per_class == [1, 2, 0] and m.labels_differing_from_key == 0


def test_truth_without_candidates_unmatched(norm):
    t = truth(norm, (H - 1, "CA", "C", (0, 1)), (R - 1, "GAC", "G", (1, 1)))
    labels, m = run(norm, t, [])
    assert labels == [] and m.truth_unmatched == 2 and m.clusters["truth_only"] == 2


def test_too_large_falls_back_to_key(norm):
    t = truth(norm, (H - 1, "CAA", "C", (0, 1)))
    cands = [cand(H - 1, "CAA", "C"), cand(H + 3, "AAA", "A"), cand(H - 1, "CA", "C")]
    labels, m = run(norm, t, cands)
    assert labels == [1, 0, 0]  # by key (fast path)
    cands = [cand(H + 3, "AAA", "A"), cand(H + 2, "AAAA", "A")]
    labels, m = run(norm, t, cands, max_nodes=1)
    assert labels == [0, 0]
    assert m.clusters["too_large"] == 1 and m.truth_unmatched == 1
    labels, m = run(norm, t, cands)
    assert labels == [1, 0] and m.clusters["too_large"] == 0


def test_without_reference(norm):
    # fetch=None: bases come from the REF alleles only; a full-width REF still proves it
    t = truth(norm, (H - 1, "CAAAAAA", "CAAAAA", (0, 1)), normalise=False)
    labels, _ = label_candidates(t, [cand(H + 4, "AA", "A")], None)
    assert labels == [1]


def test_metrics_json_roundtrip(norm, tmp_path: Path):
    t = truth(norm, (H - 1, "CA", "C", (0, 1)), (P + 20, SEQ[P + 20], "A" if SEQ[P + 20] != "A" else "C", (1, 1)))
    labels, m = run(norm, t, [cand(H + 4, "AA", "A"), cand(3, SEQ[3], "T" if SEQ[3] != "T" else "G")])
    assert labels == [1, 0]
    path = labeling_metrics_path(tmp_path / "ex.tfrecord.gz")
    assert path.name == "ex.tfrecord.gz.labeling_metrics.json"
    write_metrics(path, m)
    d = json.loads(path.read_text())
    assert d["truth_variants"] == 2 and d["truth_matched"] == 1 and d["truth_unmatched"] == 1
    assert d["candidates_per_class"] == [1, 1, 0] and d["candidates"] == 2
    assert d["truth_matched_fraction"] == 0.5
    assert set(d["clusters"]) >= {"by_key", "replayed", "too_large"}
    back = read_metrics(path)
    assert back.to_dict() == d
    total = LabelingMetrics().merge(back).merge(back)
    assert total.truth_variants == 4 and total.candidates_per_class == [2, 2, 0]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left


def test_labeler_partitions_boundary_and_confident(norm):
    t = truth(norm, (H + 4, "AA", "A", (0, 1)), (P + 20, SEQ[P + 20], "A" if SEQ[P + 20] != "A" else "C", (0, 1)))
    conf = IntervalIndex([("c1", 0, P + 10)])  # the SNP is outside
    lab = Labeler(t, norm.fetch, confident=conf)
    b = H + 2  # a partition boundary inside the homopolymer: the truth is left of it
    assert lab.label("c1", 0, b, []) == []
    out = lab.label("c1", b, 2 * b, [cand(H + 4, "AA", "A")])
    assert out == [1]
    out = lab.label("c1", 2 * b, len(SEQ), [cand(P + 20, SEQ[P + 20], "A" if SEQ[P + 20] != "A" else "C")])
    assert out == [None]  # outside the confident regions: not scored
    m = lab.metrics()
    assert (m.truth_variants, m.truth_matched, m.truth_unmatched) == (1, 1, 0)
    assert m.candidates_per_class == [0, 1, 0]


def test_labeler_does_not_label_twice_across_partitions(norm):
    t = truth(norm, (H - 1, "CA", "C", (0, 1)))
    lab = Labeler(t, norm.fetch)
    b = H + 2
    assert lab.label("c1", 0, b, [cand(H - 1, "CA", "C")]) == [1]
    assert lab.label("c1", b, 2 * b, [cand(H + 4, "AA", "A")]) == [0]  # the same deletion again
    m = lab.metrics()
    assert (m.truth_variants, m.truth_matched) == (1, 1) and m.candidates_per_class == [1, 1, 0]


def test_labeler_counts_truth_once(norm):
    t = truth(norm, (H - 1, "CA", "C", (0, 1)), (R - 1, "GAC", "G", (0, 1)))
    lab = Labeler(t, norm.fetch)
    lab.label("c1", 0, 40, [])
    lab.label("c1", 40, 80, [cand(R - 1, "GAC", "G")])
    lab.label("c1", 80, len(SEQ), [])
    m = lab.metrics()
    assert (m.truth_variants, m.truth_matched, m.truth_unmatched) == (2, 1, 1)
    assert m.unmatched_examples == [f"c1:{H} CA>C"]


def test_random_shifts_agree_with_truth(norm):
    # every representation of a homopolymer / STR indel gets the truth's copies
    rng = random.Random(7)
    cases = []
    for n in range(1, 4):  # delete n A's from the homopolymer at every offset
        for off in range(0, 6 - n + 1):
            cases.append(((H - 1, "C" + "A" * n, "C"), (H - 1 + off, SEQ[H - 1 + off : H + off + n], SEQ[H - 1 + off])))
    for off in range(0, 9, 2):  # delete one AC unit from the STR at every phase
        cases.append(((R - 1, "GAC", "G"), (R - 1 + off, SEQ[R - 1 + off : R + off + 2], SEQ[R - 1 + off])))
    for (tp, tr, ta), (cp, cr, ca) in cases:
        gt = rng.choice([(0, 1), (1, 1)])
        t = truth(norm, (tp, tr, ta, gt))
        labels, m = run(norm, t, [cand(cp, cr, ca)])
        assert labels == [sum(1 for a in gt if a)], (tp, tr, ta, cp, cr, ca)
        assert m.truth_matched == 1


def test_search_agrees_with_brute_force():
    """The pruned candidate walk picks what exhaustive enumeration picks: the largest truth
    subset reproduced, then the fewest non-zero labels, then the first (0, A, B, hom)."""
    from itertools import product

    from dvtrain.evaluate import Event, _edit, _haplotype_sets, _replay
    from dvtrain.labeler import _search

    rng = random.Random(11)
    seq = "GCTTCAAAAGTCACACAGTTTCGA" + "GATCGGCATTAGC"
    fetch1 = lambda s, e: seq[s:e]  # noqa: E731
    nrm = lambda chrom, pos, ref, alt: normalize(pos, ref, alt, fetch1)  # noqa: E731

    def random_allele(lo, hi):
        pos = rng.randrange(lo, hi)
        kind = rng.random()
        if kind < 0.35:
            ref = seq[pos]
            return pos, ref, rng.choice([b for b in "ACGT" if b != ref])
        if kind < 0.7:
            n = rng.randint(1, 3)
            return pos, seq[pos : pos + n + 1], seq[pos]
        if kind < 0.85:
            return pos, seq[pos], seq[pos] + "".join(rng.choice("AC") for _ in range(rng.randint(1, 2)))
        return pos, seq[pos : pos + 2], "".join(rng.choice("ACGT") for _ in range(rng.randint(1, 3)))

    checked = found_full = 0
    for _ in range(300):
        recs = []
        for _ in range(rng.randint(1, 3)):
            pos, ref, alt = random_allele(3, 22)
            if alt == ref:
                continue
            gt = rng.choice([(0, 1), (1, 1)])
            recs.append(Variant("c", pos, ref, (alt,), gt))
        t_ev = split_events(recs, nrm)
        if not t_ev:
            continue
        cands = set()
        for e in t_ev:  # truth alleles, shifted right by a few bases where they can be
            if rng.random() < 0.7:
                cands.add((e.pos, e.ref, e.alt))
            for k in range(1, 5):
                p2 = e.pos + k
                if len(e.ref) == len(e.alt) or p2 + len(e.ref) > len(seq):
                    continue
                shifted = (p2, seq[p2 : p2 + len(e.ref)], seq[p2] + e.alt[1:])
                if normalize(*shifted, fetch1) == (e.pos, e.ref, e.alt):  # an equal representation
                    cands.add(shifted)
        for _ in range(rng.randint(0, 2)):
            pos, ref, alt = random_allele(3, 22)
            if alt != ref:
                cands.add(nrm("c", pos, ref, alt))
        cands = sorted(cands)[:5]
        c_ev = [Event("c", p_, r_, a_, 0, "", True) for p_, r_, a_ in cands]
        evs = t_ev + c_ev
        ws, we = min(e.pos for e in evs), max(e.end for e in evs)
        ref = seq[ws:we]
        got = _search(ref, ws, t_ev, c_ev, 10**7)
        assert got is not None
        # brute force
        t_ed = [_edit(e) for e in t_ev]
        order = sorted(range(len(t_ev)), key=lambda i: t_ed[i][:2])
        sets = _haplotype_sets(ref, ws, [t_ed[i] for i in order], [t_ev[i].copies for i in order], True,
                               [t_ev[i].rec if t_ev[i].gtc == "hetalt" else -1 for i in order])
        size = {k: len(v) for k, v in sets.items()}
        c_ed = [_edit(e) for e in c_ev]
        c_order = sorted(range(len(c_ev)), key=lambda j: c_ed[j][:2])
        best = None
        for opts in product(range(4), repeat=len(c_ev)):
            a = [c_ed[j] for j, o in zip(c_order, opts) if o in (1, 3)]
            b = [c_ed[j] for j, o in zip(c_order, opts) if o in (2, 3)]
            ok = all(x[1] <= y[0] and not (x[0] == x[1] == y[0] == y[1]) for h in (a, b) for x, y in zip(h, h[1:]))
            if not ok:
                continue
            sa, sb = _replay(ref, ws, a), _replay(ref, ws, b)
            key = (sa, sb) if sa <= sb else (sb, sa)
            if key not in size:
                continue
            nz = sum(1 for o in opts if o)
            score = (size[key], -nz)
            if best is None or score > best[0]:
                labels = [0] * len(c_ev)
                for j, o in zip(c_order, opts):
                    labels[j] = (0, 1, 1, 2)[o]
                best = (score, labels)
        assert best is not None
        assert (len(got[0]), got[1]) == (best[0][0], best[1]), (recs, cands)
        checked += 1
        found_full += best[0][0] == len(t_ev)
    assert checked > 200 and found_full > 50
