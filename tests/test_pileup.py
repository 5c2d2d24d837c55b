"""Pileup images against golden arrays written out by hand (rules: docs/pileup.md)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from dvtrain.config import MakeExamplesConfig
from dvtrain.pileup import (ANCHOR_BASE_VALUE, DIFFERS_FROM_REF, MATCHES_REF, build_image,
                             example_info)
from dvtrain.reads import Read, RefCache


def _cfg(height=9, width=11, channels=("insert_size",), **kw):
    return MakeExamplesConfig(mode="calling", ref="ref.fa", reads=["reads.bam"], examples="out.tfrecord@1.gz",
                              pileup_image_height=height, pileup_image_width=width, channels=list(channels), **kw)


class _Ref(RefCache):
    """A RefCache over a given sequence instead of a FASTA contig."""

    def __init__(self, seq: str):
        self.chrom = "c"
        self.seq = seq
        self.arr = np.frombuffer(seq.encode(), dtype=np.uint8)


def _read(name, start, rpos, bases, quals, *, mapq=60, reverse=False, tlen=0, ins=(), ins_quals=None,
          dels=(), events=()):
    rpos = np.asarray(rpos, dtype=np.int64)
    assert len(rpos) == len(bases) == len(quals)
    rd = Read(start=start, end=int(max(rpos.max() + 1, max((e for _, e in dels), default=0))), name=name,
              rpos=rpos, bases=np.frombuffer(bases.encode(), dtype=np.uint8), quals=np.asarray(quals, np.int16),
              mapq=mapq, reverse=reverse, tlen=tlen, ins_anchors=np.asarray(ins, dtype=np.int64),
              del_spans=list(dels), events=set(events))
    if ins_quals is not None:
        rd.ins_quals = np.asarray(ins_quals, dtype=np.int16)
    return rd


#          0123456789
REF = _Ref("GATCCAGTNCATGCATGGAC")  # window for pos 10, width 11: reference 5..15 = A G T N C A T G C A T
SNP = SimpleNamespace(chrom="c", pos=10, ref="A", alt="G", is_snp=True)

# D: reverse, 12M at 0..11, starts left of the window; N at 9, alt G at 10 (BQ 10 = min_base_quality, kept).
READ_D = _read("d", 0, range(0, 12), "GATCCAGTANGT", [30] * 5 + [40, 35, 13, 50, 2, 10, 20],
               reverse=True, tlen=0)
# A: forward, 4M2D6M at 3: deletion of 7..8 anchored at 6, ref allele at 10, mismatch T at 13.
READ_A = _read("a", 3, [3, 4, 5, 6, 9, 10, 11, 12, 13, 14], "CCAGCATGTA", [30, 30, 30, 25, 38, 30, 39, 41, 30, 15],
               mapq=30, tlen=400, dels=[(7, 9)], events=[(6, "GTN", "G")])
# B: forward, 2S5M2I4M at 7: soft clip (would be 5..6) not drawn, A over ref N at 8, alt G at 10,
# 2-base insertion after 11 whose first base has quality 12, C over ref T at 15 (right window edge).
READ_B = _read("b", 7, range(7, 16), "TACGTGCAC", [20, 30, 30, 35, 40, 5, 30, 30, 60], mapq=45, tlen=250,
               ins=[11], ins_quals=[12], events=[(11, "T", "TGG")])
# C: reverse, 8M at 12..19: runs off the right edge, does not cover 10 but is within 5 bp of it.
READ_C = _read("c", 12, range(12, 20), "GCGTGGAC", [45, 20, 41, 0, 30, 30, 30, 30], mapq=70, reverse=True,
               tlen=1500)
# E: quality 9 < min_base_quality at the candidate: left out of the image.
READ_E = _read("e", 6, range(6, 12), "GTACGT", [30, 30, 30, 30, 9, 30])
# F: ends at 5, not within 5 bp of the candidate: left out.
READ_F = _read("f", 0, range(0, 5), "GATCC", [30] * 5)

# GOLDEN[channel] = 9 rows x 11 columns. Rows 0-4 reference band, then D, A, B, C (sorted by start).
_REF_BASES = [250, 180, 100, 0, 30, 250, 100, 180, 30, 250, 100]
GOLDEN = {
    "read_base": [_REF_BASES] * 5 + [
        [250, 180, 100, 250, 0, 180, 100, 0, 0, 0, 0],       # D: N -> 0
        [250, 0, 0, 0, 30, 250, 100, 180, 100, 250, 0],      # A: anchor at 6 -> 0, 7..8 deleted
        [0, 0, 100, 250, 30, 180, 0, 180, 30, 250, 30],      # B: clip not drawn, insertion anchor 11 -> 0
        [0, 0, 0, 0, 0, 0, 0, 180, 30, 180, 100],            # C
    ],
    "base_quality": [[254] * 11] * 5 + [
        [254, 222, 82, 254, 12, 63, 127, 0, 0, 0, 0],        # 40 35 13 50(cap) 2 10 20
        [190, 158, 0, 0, 241, 190, 247, 254, 190, 95, 0],    # 30 25 - - 38 30 39 41 30 15
        [0, 0, 127, 190, 190, 222, 76, 31, 190, 190, 254],   # 20 30 30 35 [ins 12] 5 30 30 60
        [0, 0, 0, 0, 0, 0, 0, 254, 127, 254, 0],             # 45 20 41 0
    ],
    "mapping_quality": [[254] * 11] * 5 + [
        [254] * 7 + [0] * 4,                                 # 60
        [127, 127, 0, 0, 127, 127, 127, 127, 127, 127, 0],   # 30
        [0, 0] + [190] * 9,                                  # 45
        [0] * 7 + [254] * 4,                                 # 70 -> cap 60
    ],
    "strand": [[70] * 11] * 5 + [
        [240] * 7 + [0] * 4,
        [70, 70, 0, 0, 70, 70, 70, 70, 70, 70, 0],
        [0, 0] + [70] * 9,
        [0] * 7 + [240] * 4,
    ],
    "read_supports_variant": [[152] * 11] * 5 + [
        [254] * 7 + [0] * 4,                                 # G at 10
        [152, 152, 0, 0, 152, 152, 152, 152, 152, 152, 0],   # A at 10
        [0, 0] + [254] * 9,                                  # G at 10
        [0] * 7 + [152] * 4,                                 # no base at 10
    ],
    "base_differs_from_ref": [[50] * 11] * 5 + [
        [50, 50, 50, 254, 254, 254, 50, 0, 0, 0, 0],         # A/N, N/C, G/A
        [50, 254, 0, 0, 50, 50, 50, 50, 254, 50, 0],         # anchor, T/C
        [0, 0, 50, 254, 50, 254, 254, 50, 50, 50, 254],      # A/N, G/A, anchor, C/T
        [0, 0, 0, 0, 0, 0, 0, 50, 50, 254, 50],              # G/A
    ],
    "insert_size": [[254] * 11] * 5 + [
        [0] * 11,                                            # TLEN 0
        [101, 101, 0, 0, 101, 101, 101, 101, 101, 101, 0],   # 400
        [0, 0] + [63] * 9,                                   # 250
        [0] * 7 + [254] * 4,                                 # 1500 -> cap 1000
    ],
}
CHANNEL_ORDER = ["read_base", "base_quality", "mapping_quality", "strand", "read_supports_variant",
                 "base_differs_from_ref", "insert_size"]


def test_every_pixel_matches_the_hand_written_golden_image():
    reads = [READ_C, READ_E, READ_A, READ_F, READ_B, READ_D]  # any input order; rows come out by start
    img = build_image(SNP, reads, REF, _cfg(), rng_seed=7)
    assert img.shape == (9, 11, 7) and img.dtype == np.uint8
    for c, name in enumerate(CHANNEL_ORDER):
        expected = np.array(GOLDEN[name], dtype=np.uint8)
        assert expected.shape == (9, 11)
        np.testing.assert_array_equal(img[:, :, c], expected, err_msg=name)
    assert img.max() <= 254


def test_without_the_insert_size_channel_the_other_channels_are_unchanged():
    img = build_image(SNP, [READ_A, READ_B, READ_C, READ_D], REF, _cfg(channels=()), rng_seed=7)
    assert img.shape == (9, 11, 6)
    for c, name in enumerate(CHANNEL_ORDER[:6]):
        np.testing.assert_array_equal(img[:, :, c], np.array(GOLDEN[name], np.uint8), err_msg=name)


def test_indel_candidate_support_comes_from_the_read_carrying_the_indel():
    dele = SimpleNamespace(chrom="c", pos=6, ref="GTN", alt="G", is_snp=False)
    dv = _cfg(indel_informative_reads=False)  # DeepVariant's rule: every overlapping read
    img = build_image(dele, [READ_A, READ_B, READ_D], REF, dv, rng_seed=1)
    # window 1..11; rows D, A, B; column of the anchor (6) is 5
    assert [int(v) for v in img[5:8, 5, 4]] == [152, 254, 0]  # B starts right of the anchor
    assert [int(v) for v in img[6, :, 4]] == [0, 0, 254, 254, 254, 254, 0, 0, 254, 254, 254]
    assert int(img[8, 0, 0]) == 0  # empty row: only 3 reads
    assert not img[8].any()
    ins = SimpleNamespace(chrom="c", pos=11, ref="T", alt="TGG", is_snp=False)
    img = build_image(ins, [READ_A, READ_B, READ_C, READ_D], REF, dv, rng_seed=1)
    # window 6..16: rows D, A, B, C; B carries the insertion
    assert [int(v) for v in img[5:9, 5, 4]] == [152, 152, 254, 0]  # C starts at 12


def test_indel_images_leave_out_reads_that_cannot_tell_the_indel_from_the_reference():
    ins = SimpleNamespace(chrom="c", pos=11, ref="T", alt="TGG", is_snp=False)
    img = build_image(ins, [READ_A, READ_B, READ_C, READ_D], REF, _cfg(), rng_seed=1)
    # the inserted GG could sit after 11 or 12 (reference G at 12): a reference read must
    # align through 13. D ends at 11 and C starts after the anchor: both left out.
    assert [int(v) for v in img[5:7, 5, 4]] == [152, 254]  # A (reference), B (carries it)
    assert not img[7:].any()
    dele = SimpleNamespace(chrom="c", pos=6, ref="GTN", alt="G", is_snp=False)
    img = build_image(dele, [READ_A, READ_B, READ_D], REF, _cfg(), rng_seed=1)
    # D spans 6..9 (reference), A carries it; B starts at 7 and shows the deleted T there, so
    # its right-aligned alt placement fits worse than the reference: a reference read
    assert [int(v) for v in img[5:7, 5, 4]] == [152, 254]
    assert [int(v) for v in img[7, 5:8, 4]] == [0, 152, 152]  # B, from column 6 (position 7)
    assert not img[8:].any()
    # SNP images are unchanged: D ends at 11 and still shows its G at 10
    assert build_image(SNP, [READ_D], REF, _cfg(), 0)[5, 5, 4] == 254


#              0         1         2
#              012345678901234567890123456
HP_REF = _Ref("GACTGCAGTTTTCCAGTCAGGCTAGCA")  # an insertion of TT at anchor 7 (G) slides through TTTT 8..11


def _ref_read(name, start, end, seq=None, events=()):
    seq = seq if seq is not None else HP_REF.seq[start:end]
    return _read(name, start, range(start, end), seq, [30] * (end - start), events=events)


def test_reads_are_judged_against_the_reference_and_the_alt_haplotype():
    """A stand-in for DeepVariant's realigner at indel candidates: a read supports the
    insertion if it carries it, carries the same insertion placed elsewhere in the repeat
    (a sequencing error changed its bases), or shows the alt haplotype's bases where its
    alignment stops; a read showing both haplotypes equally is left out."""
    ins = SimpleNamespace(chrom="c", pos=7, ref="G", alt="GTT", is_snp=False)
    alt_hap = HP_REF.seq[:8] + "TT" + HP_REF.seq[8:]  # ...G TTTTTT CCAG...
    reads = [
        _ref_read("r1", 0, 20),                                   # reference through the flank
        _ref_read("r2", 0, 10),                                   # stops inside TTTT: cannot tell
        _read("r3", 0, range(0, 14), alt_hap[:14], [30] * 14),    # TTTTTT CC aligned without the gaps
        _ref_read("r4", 0, 20, events=[(7, "G", "GTT")]),         # carries it
        _ref_read("r5", 0, 20, events=[(9, "T", "TCT")]),         # 2-base insertion displaced in the repeat
        _ref_read("r6", 0, 20, events=[(16, "T", "TCC")]),        # an insertion past the repeat: not it
    ]
    img = build_image(ins, reads, HP_REF, _cfg(height=12, width=15), rng_seed=1)
    assert [int(v) for v in img[5:11, 7, 4]] == [152, 254, 254, 254, 152, 0]  # r1, r3, r4, r5, r6; r2 out
    # r3 is drawn realigned, like r4: the anchor marked, its inserted TT left out, the rest
    # moved two columns left (matching the reference), and the read ending two columns earlier
    assert img[6, 7, 0] == ANCHOR_BASE_VALUE and img[6, 7, 5] == DIFFERS_FROM_REF
    assert [int(v) for v in img[6, :, 5]] == [MATCHES_REF] * 7 + [DIFFERS_FROM_REF] + [MATCHES_REF] * 4 + [0] * 3
    assert (img[6, 12:] == 0).all() and (img[6, :12, 4] == 254).all()
    plain = build_image(ins, reads, HP_REF, _cfg(height=12, width=15, indel_haplotype_support=False), rng_seed=1)
    # without it: r2 stops inside the repeat and is left out; r3 spans it and counts as reference
    assert [int(v) for v in plain[5:10, 7, 4]] == [152, 152, 254, 152, 152]
    # a deletion of TT: a read aligned without the gap whose bases past the repeat are the
    # alt haplotype's (C where the reference has T) supports it
    dele = SimpleNamespace(chrom="c", pos=7, ref="GTT", alt="G", is_snp=False)
    del_hap = HP_REF.seq[:8] + HP_REF.seq[10:]
    img = build_image(dele, [_ref_read("r1", 0, 20), _read("r3", 0, range(0, 13), del_hap[:13], [30] * 13)],
                      HP_REF, _cfg(height=12, width=15), rng_seed=1)
    assert [int(v) for v in img[5:7, 7, 4]] == [152, 254]
    # drawn realigned: the deleted TT columns empty, the bases past them moved right, all matching
    assert img[6, 7, 0] == ANCHOR_BASE_VALUE and (img[6, 8:10] == 0).all()
    assert [int(v) for v in img[6, 10:, 5]] == [MATCHES_REF] * 5 and (img[6, :7, 5] == MATCHES_REF).all()


@pytest.mark.parametrize("pos,ref,alt,end", [
    (1, "A", "ACA", 6),       # ins CA into A|CACA|T: slides to after 5; base 6 must be aligned
    (1, "ACA", "A", 6),       # del CA from the same repeat
    (0, "G", "GT", 1),        # ins T before A: no repeat, the next base must be aligned
    (5, "A", "AT", 8),        # ins T into TT: slides twice
])
def test_repeat_end_is_the_first_base_past_every_placement_of_the_indel(pos, ref, alt, end):
    from dvtrain.pileup import repeat_end
    assert repeat_end(pos, ref, alt, "GACACATTG") == end


def test_a_list_of_alleles_supports_reads_carrying_any_of_them():
    snp_t = SimpleNamespace(chrom="c", pos=10, ref="A", alt="T", is_snp=True)
    t_read = _read("t", 8, range(8, 13), "ACTTG", [30] * 5)
    reads = [READ_A, READ_B, READ_D, t_read]  # D, B carry G; t carries T; A carries the reference
    one = build_image(SNP, reads, REF, _cfg(), rng_seed=0)
    both = build_image([SNP, snp_t], reads, REF, _cfg(), rng_seed=0)
    only_t = build_image([snp_t], reads, REF, _cfg(), rng_seed=0)
    # rows: D(0), A(3), B(7), t(8); column 5 is position 10
    assert [int(v) for v in one[5:9, 5, 4]] == [254, 152, 254, 152]
    assert [int(v) for v in both[5:9, 5, 4]] == [254, 152, 254, 254]
    assert [int(v) for v in only_t[5:9, 5, 4]] == [152, 152, 152, 254]
    for c in (0, 1, 2, 3, 5, 6):
        np.testing.assert_array_equal(one[:, :, c], both[:, :, c])
    with pytest.raises(ValueError):
        build_image([SNP, SimpleNamespace(chrom="c", pos=11, ref="T", alt="C", is_snp=True)], reads, REF, _cfg(), 0)


def test_insertion_anchor_falls_back_to_the_anchor_base_quality_without_ins_quals():
    b = _read("b", 7, range(7, 16), "TACGTGCAC", [20, 30, 30, 35, 40, 5, 30, 30, 60], mapq=45, tlen=250, ins=[11])
    img = build_image(SNP, [b], REF, _cfg(), rng_seed=0)
    assert int(img[5, 6, 1]) == 254 and int(img[5, 6, 0]) == 0 and int(img[5, 6, 5]) == 254


def test_low_base_quality_at_an_insertion_anchor_drops_the_read():
    ins = SimpleNamespace(chrom="c", pos=11, ref="T", alt="TGG", is_snp=False)
    low = _read("b", 7, range(7, 16), "TACGTGCAC", [30] * 9, ins=[11], ins_quals=[3])
    img = build_image(ins, [low], REF, _cfg(), rng_seed=0)
    assert not img[5:].any()


def test_insert_size_channel_scales_tlen_like_deepvariant():
    tlens = [0, 250, 999, 1000, 5000, -400, 4]
    reads = [_read(f"r{i}", 8, range(8, 13), "ACATG", [30] * 5, tlen=t) for i, t in enumerate(tlens)]
    img = build_image(SNP, reads, REF, _cfg(height=12), rng_seed=0)
    assert [int(v) for v in img[5:12, 5, 6]] == [0, 63, 253, 254, 254, 101, 1]
    assert (img[:5, :, 6] == 254).all()
    for r in range(5, 12):  # constant on drawn columns (8..12 -> 3..7), 0 elsewhere
        assert [int(v) for v in img[r, :, 6]] == [0, 0, 0] + [int(img[r, 5, 6])] * 5 + [0, 0, 0]


def _deep_reads(n=60):
    rng = np.random.default_rng(3)
    reads = []
    for i in range(n):
        s = int(rng.integers(0, 10))
        rpos = np.arange(s, s + 10)
        bases = "".join(REF.seq[p] if p != 10 or i % 3 else "G" for p in rpos)
        reads.append(_read(f"r{i:03d}", s, rpos, bases, [30] * 10, reverse=bool(i % 2), tlen=100 + 10 * i))
    reads.sort(key=lambda r: (r.start, r.name))
    return reads


def test_height_32_downsamples_with_a_seeded_rng():
    reads = _deep_reads()
    cfg = _cfg(height=32, width=11)
    a = build_image(SNP, reads, REF, cfg, rng_seed=11)
    b = build_image(SNP, reads, REF, cfg, rng_seed=11)
    c = build_image(SNP, reads, REF, cfg, rng_seed=12)
    assert a.shape == (32, 11, 7)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    for img in (a, c):
        drawn = img[5:, :, 3].any(axis=1)
        assert drawn.sum() == 27  # at most H - 5 reads, all rows used
        # every read row is one of the input reads, none twice (insert size identifies them)
        sizes = [int(v) for v in img[5:, :, 6].max(axis=1)]
        assert len(set(sizes)) == 27


def test_fewer_reads_than_rows_keeps_all_and_pads_with_zero_rows():
    reads = _deep_reads(10)
    img = build_image(SNP, reads, REF, _cfg(height=32), rng_seed=0)
    assert int(img[5:, :, 3].any(axis=1).sum()) == 10
    assert not img[15:].any()
    starts = [int(np.nonzero(img[r, :, 3])[0][0]) for r in range(5, 15)]
    assert starts == sorted(starts)


def test_example_info_for_height_32():
    info = example_info(_cfg(height=32, width=221))
    assert info["shape"] == [32, 221, 7]
    assert info["channels"] == [1, 2, 3, 4, 5, 6, 19]
    assert example_info(_cfg(height=32, width=221, channels=()))["shape"] == [32, 221, 6]


@pytest.mark.parametrize("height", [32, 100])
def test_image_shape_follows_the_config(height):
    img = build_image(SNP, _deep_reads(), REF, _cfg(height=height, width=221), rng_seed=5)
    assert img.shape == (height, 221, 7)
    # off-contig columns: reference band constant channels only, read_base 0
    assert (img[:5, :100, 0] == 0).all() and (img[:5, :, 3] == 70).all()


def test_homopolymer_channels_match_deepvariant_run_lengths():
    """homopolymer_weighted (DeepVariant channel 17) draws int(254 * min(run, 30) / 30) for
    the run each base sits in (reference band: runs of the window's reference, cut at its
    edges); is_homopolymer (16) draws 254 inside runs of 3 or more. An insertion anchor
    takes its first inserted base's run."""
    ref = _Ref("CATTTTGCAAAGGGGGGC")
    snp = SimpleNamespace(chrom="c", pos=8, ref="A", alt="G", is_snp=True)  # window 3..13
    r1 = _read("r1", 3, range(3, 14), "TTTGCAAAGGG", [30] * 11)
    r2 = _read("r2", 6, range(6, 12), "GCGAAG", [30] * 6, ins=[8], events=[(8, "G", "GAA")])
    r2.runs = np.array([1, 1, 1, 2, 2, 1], dtype=np.uint8)  # as a BAM read's whole sequence gives them
    r2.ins_runs = np.array([5])
    cfg = _cfg(height=7, channels=("homopolymer_weighted", "is_homopolymer"))
    assert example_info(cfg)["channels"] == [1, 2, 3, 4, 5, 6, 17, 16]
    img = build_image(snp, [r1, r2], ref, cfg, rng_seed=1)
    assert img.shape == (7, 11, 8)
    px = lambda n: 254 * min(n, 30) // 30  # noqa: E731
    # reference 3..13 = TTT G C AAA GGG: the T-run 2..5 and the G-run 11..16 are cut to 3
    ref_runs = [3, 3, 3, 1, 1, 3, 3, 3, 3, 3, 3]
    assert img[0, :, 6].tolist() == [px(n) for n in ref_runs]
    assert img[0, :, 7].tolist() == [254 if n >= 3 else 0 for n in ref_runs]
    assert (img[:5] == img[0]).all()
    # r1 spells the same runs; r2 at 6..11 has its own, and the anchor at 8 shows the insert's
    assert img[5, :, 6].tolist() == [px(n) for n in ref_runs]
    assert img[6, :, 6].tolist() == [0, 0, 0, px(1), px(1), px(5), px(2), px(2), px(1), 0, 0]
    assert img[6, :, 7].tolist() == [0, 0, 0, 0, 0, 254, 0, 0, 0, 0, 0]
    # the other channels do not move
    base = build_image(snp, [r1, r2], ref, _cfg(height=7, channels=()), rng_seed=1)
    assert (img[..., :6] == base).all()


def test_optional_channels_are_checked():
    with pytest.raises(ValueError, match="unsupported optional channels"):
        _cfg(channels=("gc_content",))
    with pytest.raises(ValueError, match="listed twice"):
        _cfg(channels=("insert_size", "insert_size"))


def test_optional_channels_read_back_from_example_info(tmp_path):
    from dvtrain.pileup import model_channels, optional_channels

    cfg = _cfg(channels=("insert_size", "homopolymer_weighted"))
    assert optional_channels(example_info(cfg)) == ["insert_size", "homopolymer_weighted"]
    assert optional_channels(example_info(_cfg(channels=()))) == []
    with pytest.raises(ValueError, match="not DeepVariant's six base channels"):
        optional_channels({"channels": [1, 2, 3, 4, 5, 6, 7]})  # haplotype: not drawn here
    # the call-variants flow takes a model's channels from the example_info.json beside it
    model = tmp_path / "best_model.keras"
    assert model_channels(model) == ["insert_size"]  # none there: make_examples' default
    (tmp_path / "example_info.json").write_text('{"channels": [1, 2, 3, 4, 5, 6, 17]}')
    assert model_channels(model) == ["homopolymer_weighted"]
    (tmp_path / "example_info.json").write_text('{"channels": [2, 1]}')
    from dvtrain.errors import InputError
    with pytest.raises(InputError, match="example_info.json: not a usable example_info.json"):
        model_channels(model)


def test_model_image_size_read_back_from_example_info(tmp_path):
    """The call-variants flow draws images of the model's own height and width."""
    from dvtrain.errors import InputError
    from dvtrain.pileup import model_image_size

    model = tmp_path / "best_model.keras"
    assert model_image_size(model) == (100, 221)  # none there: make_examples' defaults
    (tmp_path / "example_info.json").write_text(json.dumps(example_info(_cfg(height=32, width=221))))
    assert model_image_size(model) == (32, 221)
    for bad in ('{"channels": [1, 2, 3, 4, 5, 6]}', '{"shape": [32, 221]}', '{"shape": [0, 221, 6]}', '[]'):
        (tmp_path / "example_info.json").write_text(bad)
        with pytest.raises(InputError, match="example_info.json: not a usable example_info.json"):
            model_image_size(model)


def test_case_study_channels_and_height_reach_every_example_set():
    """The case study's channels go to the custom, test and trained-baseline examples, its image
    height only to the custom and test ones; a given baseline model's own channels
    (baseline.channels) go to the baseline's test examples."""
    from dvtrain.config import BaselineConfig, CaseStudyConfig
    from dvtrain.layout import example_options as _example_options

    base = dict(reference="r.fa", truth_vcf="t.vcf.gz", truth_bed="t.bed", reads=["x.bam"],
                channels=["insert_size", "homopolymer_weighted"], vsc_min_count_snps=1, vsc_min_snp_lod=2.0)
    trained = CaseStudyConfig(baseline=BaselineConfig(reads=["g.bam"]), **base)
    for model in ("custom", "test", "baseline"):
        assert _example_options(trained, model)["channels"] == ["insert_size", "homopolymer_weighted"]
    assert _example_options(trained, "baseline")["vsc_min_count_snps"] == 2  # DeepVariant's, for the generic model
    # the likelihood-ratio filter goes to the low-coverage test examples only (the model trains on every candidate)
    assert [_example_options(trained, m)["vsc_min_snp_lod"] for m in ("custom", "test", "baseline")] == [None, 2.0, None]
    # without it the test examples are the baseline's when the other options agree (one set, not two)
    plain = CaseStudyConfig(baseline=BaselineConfig(reads=["g.bam"]), reference="r.fa", truth_vcf="t.vcf.gz",
                            truth_bed="t.bed", reads=["x.bam"])
    assert _example_options(plain, "test") == _example_options(plain, "baseline")
    short = CaseStudyConfig(baseline=BaselineConfig(reads=["g.bam"]), pileup_image_height=32, **base)
    assert [_example_options(short, m)["pileup_image_height"] for m in ("custom", "test", "baseline")] == [32, 32, 100]
    given = CaseStudyConfig(baseline=BaselineConfig(model="m.keras", channels=["insert_size"]), **base)
    assert _example_options(given, "baseline")["channels"] == ["insert_size"]
    assert _example_options(given, "test")["channels"] == ["insert_size", "homopolymer_weighted"]
    bare = CaseStudyConfig(baseline=BaselineConfig(model="m.keras", channels=[]), **base)  # no optional channel
    assert _example_options(bare, "baseline")["channels"] == []
    with pytest.raises(ValueError, match="unsupported optional channels"):
        CaseStudyConfig(baseline=BaselineConfig(reads=["g.bam"]), **{**base, "channels": ["haplotype"]})


def test_a_read_starting_inside_an_insertion_supports_it():
    """An aligner places a read that starts inside an insertion without a gap: its first
    base becomes a mismatch at the anchor (a 1-read SNP allele) and the rest matches the
    reference. The right-aligned alt haplotype explains it; a reference read starting at
    the anchor is still reference evidence."""
    ins = SimpleNamespace(chrom="c", pos=14, ref="A", alt="ACC", is_snp=False)  # ...CCA|CC|GTCAG...
    reads = [
        _ref_read("r1", 0, 27),                                   # reference
        _read("r7", 14, range(14, 27), "C" + HP_REF.seq[15:27], [30] * 13),  # starts at the 2nd inserted C
        _ref_read("r8", 14, 27),                                  # a reference read starting at the anchor
    ]
    img = build_image(ins, reads, HP_REF, _cfg(height=12, width=15), rng_seed=1)
    # r7 is drawn realigned: its first base is inserted, so it starts after the anchor
    assert [int(v) for v in img[5:9, 7, 4]] == [152, 0, 152, 0] and (img[6, :8] == 0).all()
    assert (img[6, 8:, 4] == 254).all() and (img[6, 8:, 5] == MATCHES_REF).all()
    plain = build_image(ins, reads, HP_REF, _cfg(height=12, width=15, indel_haplotype_support=False), rng_seed=1)
    assert [int(v) for v in plain[5:9, 7, 4]] == [152, 152, 152, 0]  # spans the anchor: "reference"


def test_displaced_copies_support_and_other_indels_in_the_repeat_are_left_out():
    ins = SimpleNamespace(chrom="c", pos=7, ref="G", alt="GTT", is_snp=False)  # TT into TTTT 8..11
    reads = [
        _ref_read("r1", 0, 20),                                   # reference
        _ref_read("r2", 0, 20, events=[(4, "G", "GCA")]),         # same length, 3 bases left: the same event
        _ref_read("r3", 0, 20, events=[(7, "G", "GT")]),          # one T more: slippage, neither haplotype
        _ref_read("r4", 0, 20, events=[(1, "A", "ACC")]),         # same length, 6 bases left: another event
    ]
    img = build_image(ins, reads, HP_REF, _cfg(height=12, width=15), rng_seed=1)
    assert [int(v) for v in img[5:9, 7, 4]] == [152, 254, 152, 0]  # r1, r2, r4; r3 left out


def test_an_image_mixing_an_insertion_and_a_snp_leaves_out_reads_that_cannot_tell():
    """A read starting inside an insertion adds a 1-read SNP allele at the anchor; the image
    of both alleles keeps only reads that can tell the insertion from the reference, plus the
    SNP's reads, as the insertion's own image does."""
    ins = SimpleNamespace(chrom="c", pos=14, ref="A", alt="ACC", is_snp=False)
    snp = SimpleNamespace(chrom="c", pos=14, ref="A", alt="C", is_snp=True)
    reads = [
        _ref_read("r1", 0, 27),                                             # reference
        _ref_read("r2", 0, 27, events=[(14, "A", "ACC")]),                  # carries the insertion
        _ref_read("r9", 0, 15),                                             # ends at the anchor: cannot tell
        _read("r7", 14, range(14, 27), "C" + HP_REF.seq[15:27], [30] * 13),  # the SNP's read
    ]
    img = build_image([ins, snp], reads, HP_REF, _cfg(height=12, width=15), rng_seed=1)
    assert [int(v) for v in img[5:9, 7, 4]] == [152, 254, 254, 0]
    plain = build_image([ins, snp], reads, HP_REF, _cfg(height=12, width=15, indel_haplotype_support=False),
                        rng_seed=1)
    assert [int(v) for v in plain[5:10, 7, 4]] == [152, 254, 152, 254, 0]  # every read, as DeepVariant


def test_every_image_of_a_site_starts_from_the_reads_over_the_whole_site():
    """DeepVariant takes an image's reads over the variant's whole REF span (+-5 bp), so the
    image of a one-base deletion allele of a long multi-allelic site (REF CACACA) has the
    reads that start past its own short span too."""
    from dvtrain.pileup import select_reads

    site_ref = "CATGCA"  # REF at 10..15; READ_C starts at 12
    one_base = SimpleNamespace(chrom="c", pos=10, ref="CA", alt="C", is_snp=False)
    far = _read("g", 17, range(17, 20), "GAC", [30] * 3)  # starts 7 past pos: within 5 of the site's end
    reads = [READ_D, READ_A, READ_C, far]
    own = select_reads(one_base, reads, _cfg(), rng_seed=1)
    whole = select_reads(one_base, reads, _cfg(), rng_seed=1, ref_len=len(site_ref))
    assert len(whole) == len(own) + 1  # the read at 17 joins
