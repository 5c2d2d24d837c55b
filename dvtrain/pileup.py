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
MQ_PIXEL = np.array([scale(q, MAPPING_QUALITY_CAP) for q in range(256)], dtype=np.uint8)
INSERT_PIXEL = np.array([scale(n, MAX_FRAGMENT_LENGTH) for n in range(MAX_FRAGMENT_LENGTH + 1)], dtype=np.uint8)


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


class ReadIndex:
    """Start/end arrays of a start-sorted read list, to find the reads overlapping a span
    without scanning them all."""

    def __init__(self, reads: list[Read]) -> None:
        self.starts = np.fromiter((r.start for r in reads), np.int64, len(reads))
        self.ends = np.fromiter((r.end for r in reads), np.int64, len(reads))
        self.max_len = int((self.ends - self.starts).max()) if reads else 0
        if reads and (np.diff(self.starts) < 0).any():
            raise ValueError("ReadIndex needs reads sorted by start")

    def overlapping(self, lo: int, hi: int) -> list[int]:
        """Indices (ascending) of reads with start < hi and end > lo."""
        a = int(np.searchsorted(self.starts, lo - self.max_len, side="left"))
        b = int(np.searchsorted(self.starts, hi, side="left"))
        return (a + np.nonzero(self.ends[a:b] > lo)[0]).tolist()


def _eligible(idx: list[int], reads: list[Read], pos: int, min_bq: int) -> list[int]:
    """``_quality_ok_at`` for many reads at once (numpy over their concatenated bases)."""
    if not idx:
        return idx
    rds = [reads[i] for i in idx]
    lens = np.fromiter((r.rpos.size for r in rds), np.int64, len(rds))
    rp = np.concatenate([r.rpos for r in rds])
    hit = np.nonzero(rp == pos)[0]
    low = np.zeros(len(rds), dtype=bool)
    if hit.size:
        row = np.searchsorted(np.cumsum(lens), hit, side="right")
        low[row] = np.concatenate([r.quals for r in rds])[hit] < min_bq
    for k, rd in enumerate(rds):  # insertion anchors are rare: check those reads one by one
        if not low[k] and rd.ins_anchors.size and not _quality_ok_at(rd, pos, min_bq):
            low[k] = True
    return [i for i, bad in zip(idx, low) if not bad]


def select_reads(cand, reads: list[Read], cfg: MakeExamplesConfig, rng_seed: int,
                 index: Optional[ReadIndex] = None) -> list[Read]:
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
    if index is not None:
        overlapping = index.overlapping(lo, hi)
    else:
        overlapping = [i for i, rd in enumerate(reads) if rd.start < hi and rd.end > lo]
    eligible = _eligible([i for i in overlapping if reads[i].mapq >= cfg.min_mapping_quality], reads, pos,
                         cfg.min_base_quality)
    if len(eligible) > max_reads:
        order = np.random.default_rng(rng_seed).permutation(len(eligible))[:max_reads]
        eligible = [eligible[j] for j in np.sort(order)]
    eligible.sort(key=lambda i: (reads[i].start, reads[i].name, i))
    return [reads[i] for i in eligible]


def build_image(cand, reads: list[Read], ref: RefCache, cfg: MakeExamplesConfig,
                rng_seed: int, index: Optional[ReadIndex] = None) -> np.ndarray:
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

    sel = select_reads(cand, reads, cfg, rng_seed, index)
    if sel:
        _draw_reads(img, sel, alleles, w0, refcol, has_insert)
    return img


def _draw_reads(img: np.ndarray, sel: list[Read], alleles: list, w0: int, refcol: np.ndarray,
                has_insert: bool) -> None:
    """Draw the selected reads into rows 5.. of ``img``, all reads at once (numpy over the
    concatenated per-base arrays; see docs/pileup.md for the rules)."""
    R, W = len(sel), img.shape[1]
    w1 = w0 + W
    body = img[REF_ROWS:REF_ROWS + R]
    lens = np.fromiter((rd.rpos.size for rd in sel), np.int64, R)
    rp = np.concatenate([rd.rpos for rd in sel])
    row = np.repeat(np.arange(R), lens)
    # aligned bases inside the window
    m = (rp >= w0) & (rp < w1)
    rows, cols = row[m], rp[m] - w0
    b = np.concatenate([rd.bases for rd in sel])[m]
    body[rows, cols, 0] = BASE_VALUE[b]
    body[rows, cols, 1] = _bq_pixels(np.concatenate([rd.quals for rd in sel])[m])
    body[rows, cols, 5] = np.where((b | 32) == (refcol[cols] | 32), MATCHES_REF, DIFFERS_FROM_REF)
    drawn = np.zeros((R, W), dtype=bool)
    drawn[rows, cols] = True
    # (row, position) keys of every aligned base, ascending: membership by searchsorted
    span_w = int(max(rd.end for rd in sel)) + 2
    keys = row * span_w + rp

    def aligned(krow: np.ndarray, kpos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k = krow * span_w + kpos
        i = np.minimum(np.searchsorted(keys, k), keys.size - 1)
        return keys[i] == k, i

    # deletions: the deleted columns stay empty; the aligned base before the gap becomes
    # an anchor ('*': no base colour, differs from the reference)
    dl = [(r, s - 1) for r, rd in enumerate(sel) for s, _ in rd.del_spans]
    if dl:
        drow, dpos = np.array(dl, dtype=np.int64).T
        ok, _ = aligned(drow, dpos)
        ok &= (dpos >= w0) & (dpos < w1)
        body[drow[ok], dpos[ok] - w0, 0] = ANCHOR_BASE_VALUE
        body[drow[ok], dpos[ok] - w0, 5] = DIFFERS_FROM_REF
    # insertions: the base before the inserted bases becomes an anchor carrying the
    # quality of the first inserted base (the anchor's own quality without ins_quals)
    il = [(r, int(a), int(q)) for r, rd in enumerate(sel) if rd.ins_anchors.size
          for a, q in zip(rd.ins_anchors, _anchor_quals(rd, rd.ins_anchors))]
    if il:
        irow, ipos, iq = np.array(il, dtype=np.int64).T
        keep = (ipos >= w0) & (ipos < w1)
        irow, icol, iq = irow[keep], ipos[keep] - w0, iq[keep]
        body[irow, icol, 0] = ANCHOR_BASE_VALUE
        body[irow, icol, 1] = _bq_pixels(iq)
        body[irow, icol, 5] = DIFFERS_FROM_REF
        drawn[irow, icol] = True
    # read-level channels on every drawn column of the read's span inside the window;
    # columns of the span the read does not draw (deletions, skips) are cleared
    s0 = np.clip(np.fromiter((rd.start for rd in sel), np.int64, R), w0, w1) - w0
    s1 = np.clip(np.fromiter((rd.end for rd in sel), np.int64, R), w0, w1) - w0
    grid = np.arange(W)
    span = (grid >= s0[:, None]) & (grid < s1[:, None])
    mq = MQ_PIXEL.take(np.fromiter((rd.mapq for rd in sel), np.int64, R), mode="clip")
    strand = np.array([STRAND_REVERSE if rd.reverse else STRAND_FORWARD for rd in sel], dtype=np.uint8)
    supports = np.zeros(R, dtype=bool)
    snp_alts = {ord(a.alt) & 0xDF for a in alleles if a.is_snp}
    if snp_alts:
        at = np.nonzero(rp == alleles[0].pos)[0]
        base = np.concatenate([rd.bases for rd in sel])[at] & 0xDF
        supports[row[at][np.isin(base, list(snp_alts))]] = True
    keys = [(a.pos, a.ref, a.alt) for a in alleles if not a.is_snp]
    if keys:
        supports |= np.fromiter((any(k in rd.events for k in keys) for rd in sel), bool, R)
    sup = np.where(supports, SUPPORTS_ALT, SUPPORTS_OTHER).astype(np.uint8)
    body[..., 2] = np.where(span, mq[:, None], body[..., 2])
    body[..., 3] = np.where(span, strand[:, None], body[..., 3])
    body[..., 4] = np.where(span, sup[:, None], body[..., 4])
    if has_insert:
        ins = INSERT_PIXEL.take(np.fromiter((abs(rd.tlen) for rd in sel), np.int64, R), mode="clip")
        body[..., 6] = np.where(span, ins[:, None], body[..., 6])
    body[span & ~drawn] = 0
