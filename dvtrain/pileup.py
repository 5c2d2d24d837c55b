"""DeepVariant-style pileup images: H x W x C uint8 tensors centred on a candidate.

The drawing rules follow DeepVariant r1.6.1 (pileup_image_native.cc and
pileup_channel_lib.h/.cc); docs/pileup.md states them exactly.
"""

from __future__ import annotations

from typing import Iterable, Optional

import numpy as np

from . import __version__
from .config import MakeExamplesConfig
from .reads import Read, RefCache

REF_ROWS = 5
# Reads are taken for the image when they overlap the candidate's REF span widened by
# this many bases on each side (DeepVariant's read_overlap_buffer_bp).
READ_OVERLAP_BUFFER = 5
# DeepVariant channel enum ids (read_base=1 ... base_differs_from_ref=6, insert_size=19).
BASE_CHANNELS = ["read_base", "base_quality", "mapping_quality", "strand", "read_supports_variant", "base_differs_from_ref"]
CHANNEL_IDS = {"read_base": 1, "base_quality": 2, "mapping_quality": 3, "strand": 4,
               "read_supports_variant": 5, "base_differs_from_ref": 6, "insert_size": 19}

# Pixel values (DeepVariant default PileupImageOptions).
MAX_PIXEL = 254
BASE_QUALITY_CAP = 40
MAPPING_QUALITY_CAP = 60
REFERENCE_BASE_QUALITY = 60  # drawn as a base/mapping quality in the reference band
MAX_FRAGMENT_LENGTH = 1000
STRAND_FORWARD, STRAND_REVERSE = 70, 240
SUPPORTS_ALT, SUPPORTS_OTHER = 254, 152  # int(254 * 1.0), int(254 * 0.6): ref and other alleles alike
MATCHES_REF, DIFFERS_FROM_REF = 50, 254  # int(254 * 0.2), int(254 * 1.0)
ANCHOR_BASE_VALUE = 0  # the '*' drawn at an indel anchor has no base colour

BASE_VALUE = np.zeros(256, dtype=np.uint8)
for _b, _v in {"A": 250, "G": 180, "T": 100, "C": 30}.items():
    BASE_VALUE[ord(_b)] = _v
    BASE_VALUE[ord(_b.lower())] = _v


def channel_names(extra: Iterable[str]) -> list[str]:
    return BASE_CHANNELS + [c for c in extra]


def example_info(cfg: MakeExamplesConfig) -> dict:
    chans = channel_names(cfg.channels)
    return {
        "version": f"dvtrain-{__version__}",
        "shape": [cfg.pileup_image_height, cfg.pileup_image_width, len(chans)],
        "channels": [CHANNEL_IDS[c] for c in chans],
    }


def scale(value: int, cap: int) -> int:
    """DeepVariant's ScaleColor: int(254 * min(value, cap) / cap), truncated.

    Integer floor division gives the same pixel as DeepVariant's float32 arithmetic for
    every integer value (the exact quotient is either an integer or at least 1/cap away
    from one)."""
    return MAX_PIXEL * min(max(int(value), 0), cap) // cap


# base_quality pixel for every quality 0..255
BQ_PIXEL = np.array([scale(q, BASE_QUALITY_CAP) for q in range(256)], dtype=np.uint8)


def _bq_pixels(quals: np.ndarray) -> np.ndarray:
    return BQ_PIXEL.take(quals, mode="clip")


def _ins_quals(rd: Read) -> Optional[np.ndarray]:
    """Quality of the first inserted base of each insertion, parallel to ins_anchors
    (``Read.ins_quals`` when the read carries it)."""
    q = getattr(rd, "ins_quals", None)
    if q is None:
        return None
    q = np.asarray(q)
    return q if q.shape == rd.ins_anchors.shape else None


def _anchor_quals(rd: Read, anchors: np.ndarray) -> np.ndarray:
    """Base quality drawn at insertion anchors: the first inserted base's quality;
    without ``ins_quals`` the anchor base's own quality (0 if it is not aligned)."""
    q = _ins_quals(rd)
    if q is not None:
        return q
    idx = np.minimum(np.searchsorted(rd.rpos, anchors), rd.rpos.size - 1)
    return np.where(rd.rpos[idx] == anchors, rd.quals[idx], 0)


def _quality_ok_at(rd: Read, pos: int, min_bq: int) -> bool:
    """DeepVariant leaves out a read whose quality drawn at the candidate's position is
    below min_base_quality (aligned base there, or an insertion anchored there)."""
    i = int(np.searchsorted(rd.rpos, pos))
    if i < rd.rpos.size and rd.rpos[i] == pos and rd.quals[i] < min_bq:
        return False
    if rd.ins_anchors.size:
        at = rd.ins_anchors == pos
        if at.any() and (_anchor_quals(rd, rd.ins_anchors)[at] < min_bq).any():
            return False
    return True


def _alleles(cand) -> list:
    """``cand`` is one candidate or a list of candidates at one position (the alt alleles
    of a multi-allelic image); each has chrom, pos, ref, alt and is_snp."""
    alleles = [cand] if hasattr(cand, "pos") else list(cand)
    if not alleles or len({a.pos for a in alleles}) != 1:
        raise ValueError("build_image needs one or more candidates at a single position")
    return alleles


def _supports(rd: Read, alleles: list) -> bool:
    """Whether the read carries one of ``alleles`` (SNP: the base at pos is the alt;
    indel: the read has that normalised indel)."""
    for a in alleles:
        if a.is_snp:
            i = int(np.searchsorted(rd.rpos, a.pos))
            if (i < rd.rpos.size and rd.rpos[i] == a.pos
                    and (int(rd.bases[i]) & ~32) == (ord(a.alt) & ~32)):
                return True
        elif (a.pos, a.ref, a.alt) in rd.events:
            return True
    return False


def select_reads(cand, reads: list[Read], cfg: MakeExamplesConfig, rng_seed: int) -> list[Read]:
    """The reads drawn for ``cand`` (one candidate or a list at one position), in row order.

    Reads overlapping [pos - 5, pos + len(ref) + 5) with MAPQ >= min_mapping_quality and
    no low-quality base at the candidate are eligible. When there are more than H - 5,
    the eligible reads are visited in an order shuffled by ``rng_seed`` and the first
    H - 5 are kept. Rows are sorted by (alignment start, read name), ties in input order.
    """
    max_reads = cfg.pileup_image_height - REF_ROWS
    if max_reads <= 0:
        return []
    alleles = _alleles(cand)
    pos = alleles[0].pos
    lo = pos - READ_OVERLAP_BUFFER
    hi = pos + max(max(len(a.ref) for a in alleles), 1) + READ_OVERLAP_BUFFER
    overlapping = [i for i, rd in enumerate(reads) if rd.start < hi and rd.end > lo]
    eligible = [i for i in overlapping
                if reads[i].mapq >= cfg.min_mapping_quality
                and _quality_ok_at(reads[i], pos, cfg.min_base_quality)]
    if len(eligible) > max_reads:
        order = np.random.default_rng(rng_seed).permutation(len(eligible))[:max_reads]
        eligible = [eligible[j] for j in np.sort(order)]
    eligible.sort(key=lambda i: (reads[i].start, reads[i].name, i))
    return [reads[i] for i in eligible]


def build_image(cand, reads: list[Read], ref: RefCache, cfg: MakeExamplesConfig,
                rng_seed: int) -> np.ndarray:
    """The H x W x C uint8 pileup tensor for one candidate, or for a list of candidates at
    one position (reads carrying any of them support the variant). Rules: docs/pileup.md."""
    alleles = _alleles(cand)
    H, W = cfg.pileup_image_height, cfg.pileup_image_width
    chans = channel_names(cfg.channels)
    C = len(chans)
    has_insert = "insert_size" in chans
    img = np.zeros((H, W, C), dtype=np.uint8)
    w0 = alleles[0].pos - W // 2
    w1 = w0 + W
    # reference band: constant channels across the whole width, base colour per column
    nref = min(REF_ROWS, H)
    img[:nref, :, 1] = scale(REFERENCE_BASE_QUALITY, BASE_QUALITY_CAP)
    img[:nref, :, 2] = scale(REFERENCE_BASE_QUALITY, BASE_QUALITY_CAP)
    img[:nref, :, 3] = STRAND_FORWARD
    img[:nref, :, 4] = SUPPORTS_OTHER
    img[:nref, :, 5] = MATCHES_REF
    if has_insert:
        img[:nref, :, 6] = MAX_PIXEL
    lo, hi = max(0, w0), min(len(ref.seq), w1)
    if lo < hi:
        img[:nref, lo - w0:hi - w0, 0] = BASE_VALUE[ref.arr[lo:hi]]
    refcol = np.zeros(W, dtype=np.uint8)  # reference byte per column, 0 off the contig
    if lo < hi:
        refcol[lo - w0:hi - w0] = ref.arr[lo:hi]

    for r, rd in enumerate(select_reads(cand, reads, cfg, rng_seed), start=REF_ROWS):
        row = img[r]
        # aligned bases inside the window
        m = (rd.rpos >= w0) & (rd.rpos < w1)
        cols = rd.rpos[m] - w0
        b = rd.bases[m]
        row[cols, 0] = BASE_VALUE[b]
        row[cols, 1] = _bq_pixels(rd.quals[m])
        row[cols, 5] = np.where((b | 32) == (refcol[cols] | 32), MATCHES_REF, DIFFERS_FROM_REF)
        # deletions: the deleted columns stay empty; the aligned base before the gap
        # becomes an anchor ('*': no base colour, differs from the reference)
        if rd.del_spans:
            anchors = np.fromiter((s - 1 for s, _ in rd.del_spans), np.int64, len(rd.del_spans))
            idx = np.minimum(np.searchsorted(rd.rpos, anchors), rd.rpos.size - 1)
            anchors = anchors[(rd.rpos[idx] == anchors) & (anchors >= w0) & (anchors < w1)]
            row[anchors - w0, 0] = ANCHOR_BASE_VALUE
            row[anchors - w0, 5] = DIFFERS_FROM_REF
        # insertions: the reference base before the inserted bases becomes an anchor
        # carrying the quality of the first inserted base
        icols = np.zeros(0, dtype=np.int64)
        if rd.ins_anchors.size:
            a = rd.ins_anchors
            keep = (a >= w0) & (a < w1)
            icols = a[keep] - w0
            row[icols, 0] = ANCHOR_BASE_VALUE
            row[icols, 1] = _bq_pixels(_anchor_quals(rd, a)[keep])
            row[icols, 5] = DIFFERS_FROM_REF
        # read-level channels on every drawn column: fill the read's span inside the
        # window, then clear the columns it does not draw (deletions, skips)
        s0, s1 = max(rd.start, w0) - w0, min(rd.end, w1) - w0
        if s0 >= s1:
            continue
        row[s0:s1, 2:5] = (scale(rd.mapq, MAPPING_QUALITY_CAP),
                           STRAND_REVERSE if rd.reverse else STRAND_FORWARD,
                           SUPPORTS_ALT if _supports(rd, alleles) else SUPPORTS_OTHER)
        if has_insert:
            row[s0:s1, 6] = scale(abs(rd.tlen), MAX_FRAGMENT_LENGTH)
        if cols.size != s1 - s0:
            gap = np.ones(s1 - s0, dtype=bool)
            gap[cols - s0] = False
            gap[icols[(icols >= s0) & (icols < s1)] - s0] = False
            row[s0 + np.nonzero(gap)[0]] = 0
    return img
