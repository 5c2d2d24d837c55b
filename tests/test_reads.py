"""dvtrain.reads: BAM records -> one columnar ReadBatch per partition."""

from __future__ import annotations

import random

import numpy as np
import pysam

from dvtrain.reads import KEY_STRIDE, Read, ReadBatch, RefCache, batch_from_alignments, fetch_reads

from bam_helpers import write_bam, write_ref


def _aln(header, name, start, seq, cigar, quals=None, flag=0, mapq=60, tlen=0):
    a = pysam.AlignedSegment(header)
    a.query_name, a.reference_id, a.reference_start, a.mapping_quality = name, 0, start, mapq
    a.query_sequence, a.cigarstring, a.flag, a.template_length = seq, cigar, flag, tlen
    if quals is not None:
        a.query_qualities = pysam.qualitystring_to_array("".join(chr(q + 33) for q in quals))
    return a


def _setup(tmp_path):
    fa, seq = write_ref(tmp_path, 600, 5)
    header = pysam.AlignmentHeader.from_dict({"HD": {"VN": "1.6"}, "SQ": [{"SN": "c", "LN": len(seq)}]})
    return RefCache(pysam.FastaFile(str(fa)), "c"), seq, header


def test_cigar_walk_places_every_aligned_base(tmp_path):
    """3S4M2I3M2D4M1N2M: clips, inserted bases and the skip are dropped; the deletion and
    insertion are recorded with their anchor, the insertion's quality is its first base's."""
    ref, seq, header = _setup(tmp_path)
    s = 100
    rseq = "TTT" + seq[s:s + 4] + "GG" + seq[s + 4:s + 7] + seq[s + 9:s + 13] + seq[s + 14:s + 16]
    quals = list(range(10, 10 + len(rseq)))
    a = _aln(header, "x", s, rseq, "3S4M2I3M2D4M1N2M", quals, tlen=-321, mapq=33, flag=16)
    b = batch_from_alignments([a], ref, {})
    want = list(range(s, s + 7)) + list(range(s + 9, s + 13)) + [s + 14, s + 15]
    assert b.rpos.tolist() == want and b.off.tolist() == [0, len(want)]
    qidx = [3, 4, 5, 6, 9, 10, 11, 12, 13, 14, 15, 16, 17]
    assert b.bases.tobytes().decode() == "".join(rseq[i] for i in qidx)
    assert b.quals.tolist() == [quals[i] for i in qidx]
    assert b.ins_row.tolist() == [0] and b.ins_pos.tolist() == [s + 3] and b.ins_qual.tolist() == [quals[7]]
    assert b.del_row.tolist() == [0] and b.del_start.tolist() == [s + 7]
    assert len(b.events[0]) == 2
    assert (b.start[0], b.end[0], b.mapq[0], b.reverse[0], b.tlen[0]) == (s, s + 16, 33, True, 321)


def test_reads_without_aligned_bases_leave_nothing_behind(tmp_path):
    """A read of only clips and insertions is dropped with its indels; a read without
    qualities gets quality 30 everywhere."""
    ref, seq, header = _setup(tmp_path)
    only_ins = _aln(header, "a", 50, "ACGTAC", "2S4I", [20] * 6)
    noqual = _aln(header, "b", 60, seq[60:70], "10M")
    b = batch_from_alignments([only_ins, noqual], ref, {})
    assert b.names == ["b"] and b.ins_row.size == 0 and b.del_row.size == 0 and not b.events
    assert b.quals.tolist() == [30] * 10 and b.rpos.tolist() == list(range(60, 70))


def test_batch_rows_sorted_by_start_name_strand_with_data_following(tmp_path):
    """Records arriving out of (start, name, strand) order are reordered; each read's
    bases, indels and events move with it, and key is ascending."""
    ref, seq, header = _setup(tmp_path)
    alns = [
        _aln(header, "z", 10, seq[10:20], "10M", [31] * 10),
        _aln(header, "y", 10, seq[10:13] + seq[15:22], "3M2D7M", [32] * 10),
        _aln(header, "y", 10, seq[10:20], "10M", [33] * 10, flag=16),
        _aln(header, "a", 5, seq[5:9] + "T" + seq[9:14], "4M1I5M", [34] * 10),
    ]
    b = batch_from_alignments(alns, ref, {})
    assert list(zip(b.names, b.reverse.tolist())) == [("a", False), ("y", False), ("y", True), ("z", False)]
    assert [int(b.quals[b.off[i]]) for i in range(4)] == [34, 32, 33, 31]
    assert b.ins_row.tolist() == [0] and b.del_row.tolist() == [1]
    assert sorted(b.events) == [0, 1]
    assert (np.diff(b.key) > 0).all()


def _random_reads(n, seed):
    rng = random.Random(seed)
    reads = []
    for k in range(n):
        start = rng.randrange(0, 400)
        pos, rpos = start, []
        for _ in range(rng.randrange(1, 4)):
            blk = rng.randrange(1, 30)
            rpos += list(range(pos, pos + blk))
            pos += blk + rng.randrange(0, 4)
        bases = "".join(rng.choice("ACGT") for _ in rpos)
        reads.append(Read(start=start, end=rpos[-1] + 1, name=f"r{k % 7}", rpos=np.array(rpos), bases=np.frombuffer(
            bases.encode(), np.uint8), quals=np.array([rng.randrange(0, 60) for _ in rpos]), mapq=rng.randrange(0, 61),
            reverse=rng.random() < 0.5, tlen=rng.randrange(-900, 900), ins_anchors=np.array([rpos[0]]),
            del_spans=[(rpos[-1] - 1, rpos[-1])], events={("c", k)} if k % 3 == 0 else set()))
    return reads


def test_lookups_and_subsets_agree_with_a_per_read_scan():
    reads = _random_reads(300, 1)
    b = ReadBatch.from_reads(reads)
    order = sorted(reads, key=lambda r: (r.start, r.name))  # stable: ties keep input order
    assert [r.name for r in order] == b.names and b.start.tolist() == [r.start for r in order]
    rng = random.Random(2)
    for _ in range(50):
        lo = rng.randrange(-20, 450)
        hi = lo + rng.randrange(1, 60)
        over = b.overlapping(lo, hi)
        assert over.tolist() == [i for i, r in enumerate(order) if r.start < hi and r.end > lo]
        flat, rows = b.window(over, lo, hi)
        got = sorted(zip(over[rows].tolist(), b.rpos[flat].tolist(), b.quals[flat].tolist()))
        want = sorted((i, int(p), int(q)) for i in over.tolist() for p, q in zip(order[i].rpos, order[i].quals)
                      if lo <= p < hi)
        assert got == want
        pos = rng.randrange(0, 450)
        hit, at = b.base_at(over, pos)
        for i, h, j in zip(over.tolist(), hit.tolist(), at.tolist()):
            assert h == (pos in order[i].rpos.tolist())
            if h:
                assert b.key[j] == i * KEY_STRIDE + pos
    keep = np.array(sorted(rng.sample(range(len(b)), 120)))
    sub = b.subset(keep)
    assert sub.names == [b.names[i] for i in keep]
    for new, old in enumerate(keep.tolist()):
        assert sub.rpos[sub.off[new]:sub.off[new + 1]].tolist() == b.rpos[b.off[old]:b.off[old + 1]].tolist()
        assert sub.events.get(new) == b.events.get(old)
        assert sub.ins_pos[sub.ins_row == new].tolist() == b.ins_pos[b.ins_row == old].tolist()
        assert sub.del_start[sub.del_row == new].tolist() == b.del_start[b.del_row == old].tolist()
    assert (np.diff(sub.key) > 0).all()


def test_fetch_filters_flags_and_mapq_and_merges_bams(tmp_path):
    fa, seq = write_ref(tmp_path, 400, 9)
    one = write_bam(tmp_path, seq, [("p", 10, seq[10:60], "50M", 0), ("dup", 12, seq[12:62], "50M", 0x400),
                                    ("sec", 14, seq[14:64], "50M", 0x100), ("low", 16, seq[16:66], "50M", 0, 3)],
                    name="one.bam")
    two = write_bam(tmp_path, seq, [("a", 10, seq[10:60], "50M", 0), ("qc", 20, seq[20:70], "50M", 0x200)],
                    name="two.bam")
    bams = [pysam.AlignmentFile(str(p)) for p in (one, two)]
    b = fetch_reads(bams, "c", 0, 400, 5, RefCache(pysam.FastaFile(str(fa)), "c"), {})
    assert b.names == ["a", "p"] and b.start.tolist() == [10, 10]


def test_homopolymer_runs_count_the_whole_read_sequence(tmp_path):
    """DeepVariant's homopolymer_weighted counts runs in the read's own sequence: soft-clipped
    and inserted bases lengthen the run of the aligned bases next to them, and an insertion's
    anchor carries the run of its first inserted base."""
    ref = RefCache.__new__(RefCache)
    ref.chrom, ref.seq = "c", "ACGTACGTAAAACCGTACGTACGT"
    ref.arr = np.frombuffer(ref.seq.encode(), dtype=np.uint8)
    header = pysam.AlignmentHeader.from_dict({"HD": {"VN": "1.6"}, "SQ": [{"SN": "c", "LN": len(ref.seq)}]})
    # read: AA (soft clip) + AA at 8..9 + AA inserted + AACC at 10..13 -> one run of 8 A's, then CC
    a = _aln(header, "x", 8, "AA" + "AA" + "AA" + "AACC", "2S2M2I4M", [30] * 10)
    b = batch_from_alignments([a], ref, {})
    assert b.rpos.tolist() == [8, 9, 10, 11, 12, 13]
    assert b.runs.tolist() == [8, 8, 8, 8, 2, 2]
    assert b.ins_pos.tolist() == [9] and b.ins_run.tolist() == [8]
    # subsets and re-sorted batches keep each base's run
    c = _aln(header, "w", 0, "ACGTACGT", "8M", [30] * 8)
    both = batch_from_alignments([a, c], ref, {})
    assert both.names == ["w", "x"] and both.runs.tolist() == [1] * 8 + [8, 8, 8, 8, 2, 2]
    assert both.subset(np.array([1])).runs.tolist() == [8, 8, 8, 8, 2, 2]


def test_window_runs_match_the_runs_of_each_window_cut_at_its_edges(monkeypatch):
    """RefCache.window_runs keeps run bounds for a span of the contig; every window, inside
    a kept span or past it, gets run_lengths of its own bases (runs cut at its edges)."""
    import dvtrain.reads as reads_mod

    monkeypatch.setattr(reads_mod, "RUN_SPAN", 50)  # small spans: many reloads and span edges
    rng = random.Random(3)
    seq = "".join(rng.choice("AAAAC" if i % 200 < 100 else "ACGT") for i in range(2000)) + "G" * 300
    ref = RefCache.__new__(RefCache)
    ref.chrom, ref.seq = "c", seq
    ref.arr = np.frombuffer(seq.encode(), dtype=np.uint8)
    windows = [(lo, lo + w) for lo in sorted(rng.sample(range(2200), 300)) for w in (1, 21, 221)]
    windows += [(0, 2300), (1990, 2300), (5, 6)]
    for lo, hi in windows:
        hi = min(hi, len(seq))
        assert ref.window_runs(lo, hi).tolist() == reads_mod.run_lengths(ref.arr[lo:hi]).tolist(), (lo, hi)


def test_anchors_before_the_first_aligned_base_as_deepvariant_draws_them(tmp_path):
    """DeepVariant's pileup (pileup_channel_lib CalculateBaseLevelData) anchors an insertion
    at the base before it even when it opens the alignment, and a deletion right after a
    clip at the base before the deletion with the last clipped base's quality; realigned
    reads have both. Both are alleles of the read, as DeepVariant's allele counter has them
    (it takes an opening insertion's anchor base from the reference)."""
    from dvtrain.config import MakeExamplesConfig
    from dvtrain.make_examples import Candidate
    from dvtrain.pileup import build_image

    ref, seq, header = _setup(tmp_path)
    s = 40
    ins = _aln(header, "i", s, "GG" + seq[s:s + 8], "2I8M", [25, 26] + [30] * 8)
    dele = _aln(header, "d", s, "T" + seq[s + 1:s + 9], "1S1D8M", [27] + [30] * 8)
    b = batch_from_alignments([ins, dele], ref, {}, ties="input")
    assert sorted(zip(b.ins_pos.tolist(), b.ins_qual.tolist())) == [(s - 1, 25), (s - 1, 27)]
    assert b.events[1] == {(s - 1, seq[s - 1:s + 1], seq[s - 1])}
    assert [len(alt) - len(r) for _, r, alt in b.events[0]] == [2]  # the GG insertion (left-aligned)
    cand = Candidate("c", s + 3, seq[s + 3], "A" if seq[s + 3] != "A" else "C", 2, 0, 2)
    img = build_image(cand, b, ref, MakeExamplesConfig(mode="calling", ref="r.fa", reads=["a.bam"], examples="e.gz",
                                                       preset="deepvariant"), rng_seed=1)
    col = s - 1 - (cand.pos - img.shape[1] // 2)
    # read_base '*' (0), base quality 25 / 27 of 40, MQ 60, forward strand, differs from ref
    assert img[5, col].tolist() == [0, int(254 * 25 / 40), 254, 70, 152, 254]
    assert img[6, col].tolist() == [0, int(254 * 27 / 40), 254, 70, 152, 254]
    assert not img[5:7, col - 1].any() and not img[6, col + 1].any()  # nothing before; the deleted base empty
