"""dvtrain.realigner, DeepVariant's local realigner: its Smith-Waterman against libssw's
own output (libssw v1.2.3, the library DeepVariant links, run on these inputs), its De
Bruijn graph and window selection on small cases, and the whole realigner on DeepVariant's
test BAM (tests/test_golden_fidelity.py compares the resulting examples with DeepVariant's)."""

from __future__ import annotations

from pathlib import Path

import pysam
import pytest

from dvtrain.realigner import (I, M, S, _compose, _normalized, _shift_map, candidate_windows, haplotypes,
                               realign_partition, smith_waterman)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "deepvariant-testdata"


def _cigar(ops) -> str:
    return "".join(f"{n}{'MIDNS'[op]}" for op, n in ops)


@pytest.mark.parametrize("query,target,score,begin,cigar", [
    # libssw 1.2.3 with DeepVariant's scores (match 4, mismatch 6, gap open 8, extend 2)
    ("ACGTACGTAAAACGTACGTTT", "ACGTACGTAAAAAACGTACGTTT", 74, 0, "8M2D13M"),  # deletion left-most in the run
    ("ACGTACGTAAAAAACGTACGTTT", "ACGTACGTAAAACGTACGTTT", 74, 0, "8M2I13M"),
    ("GATCGAGAGAGATC", "GATCGAGAGAGAGATC", 48, 0, "12M2S"),  # a clip beats the gapped alignment (46)
    ("ACGTACGTAGTAGCATCG", "ACGTACGTAGTAGTAGCATCG", 60, 4, "5M1I12M"),  # tie: the rightmost begin
])
def test_smith_waterman_matches_libssw(query, target, score, begin, cigar):
    got = smith_waterman(query, target)
    assert (got[0], got[1], _cigar(got[2])) == (score, begin, cigar)


def test_shift_map_and_composition():
    assert _shift_map([(M, 3), (I, 4), (M, 2)]) == [0, 0, 0, 0, -1, -2, -3, -4, -4]  # DeepVariant's test vector
    # a read placed at haplotype offset 2 of a haplotype with a 2-base insertion after base 5
    assert _compose(8, 2, [(M, 8)], [(M, 5), (I, 2), (M, 5)]) == [(M, 3), (I, 2), (M, 3)]
    assert _compose(6, 0, [(S, 2), (M, 4)], [(M, 10)]) == [(S, 2), (M, 4)]
    # an insertion whose last base equals the reference base before it could move left
    assert not _normalized([(M, 2), (I, 1), (M, 2)], 0, "ACCGT", "ACGT")
    assert _normalized([(M, 2), (I, 1), (M, 2)], 0, "ACTGT", "ACGT")


def _aln(header, name, start, seq, cigar, mapq=60, qual=30):
    a = pysam.AlignedSegment(header)
    a.query_name, a.reference_id, a.reference_start, a.mapping_quality = name, 0, start, mapq
    a.query_sequence, a.cigarstring = seq, cigar
    a.query_qualities = pysam.qualitystring_to_array(chr(33 + qual) * len(seq))
    return a


def test_a_snp_seen_by_enough_reads_makes_a_window_and_two_haplotypes():
    import random

    rng = random.Random(3)
    ref = "".join(rng.choice("ACGT") for _ in range(600))
    header = pysam.AlignmentHeader.from_dict({"SQ": [{"SN": "c", "LN": len(ref)}]})
    alt = ref[:300] + ("A" if ref[300] != "A" else "C") + ref[301:]
    reads = [_aln(header, f"r{i}", 250 + i, alt[250 + i:310 + i], "60M") for i in range(6)]
    reads += [_aln(header, f"f{i}", 255 + i, ref[255 + i:315 + i], "60M") for i in range(6)]
    (win,) = candidate_windows(reads, ref, 0, 600)
    assert win == (300 - 80, 300 + 80)
    haps = haplotypes(ref[win[0]:win[1]], reads)
    assert sorted(haps) == haps and ref[win[0]:win[1]] in haps and len(haps) == 2
    assert {h[300 - win[0]] for h in haps} == {ref[300], alt[300]}
    out, moved = realign_partition(reads, ref, 0, 600)
    assert len(out) == len(reads) and moved == 0  # ungapped reads already aligned as the realigner would


@pytest.mark.skipif(not DATA.is_dir(), reason=f"DeepVariant's test data not present: {DATA}")
def test_a_soft_clipped_read_is_realigned_through_the_window():
    """chr20:10,001,620 95M6S: DeepVariant draws its clipped tail as aligned bases (golden
    examples); realigned here it has a CIGAR with no clip."""
    bam = pysam.AlignmentFile(str(DATA / "NA12878_S1.chr20.10_10p1mb.bam"))
    ref = pysam.FastaFile(str(DATA / "ucsc.hg19.chr20.unittest.fasta.gz")).fetch("chr20").upper()
    start, end = 10000999, 10001999  # DeepVariant's partition of the region
    alns = [a for a in bam.fetch("chr20", start, end) if not a.flag & 0xF04 and a.mapping_quality >= 5]
    out, moved = realign_partition(alns, ref, start, end)
    assert moved > 0 and sorted(a.query_name for a in out) == sorted(a.query_name for a in alns)
    read = next(a for a in out if a.query_name == "HSQ1004:134:C0D8DACXX:1:2103:14349:138056" and not a.is_reverse
                and a.reference_start > 10001600)
    assert S not in [op for op, _ in read.cigartuples]
