"""Reads for make_examples: a filtered fetch from BAMs and per-read numpy arrays.

A read is kept when it is mapped, primary, not supplementary, not a duplicate, passes QC
(any of flags 0x4, 0x100, 0x200, 0x400, 0x800 drops it) and has MAPQ >=
``min_mapping_quality``. Its aligned (M/=/X) bases become parallel arrays of reference
positions, bases and qualities; insertions are kept as anchor positions and deletions as
reference spans, and both as normalised indel keys ``(pos, ref, alt)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import attrgetter
from typing import Optional

import numpy as np
import pysam

from .variants import normalize

BASE_CODE = np.full(256, 4, dtype=np.int64)  # A C G T -> 0..3, others 4
for _i, _b in enumerate("ACGT"):
    BASE_CODE[ord(_b)] = _i
    BASE_CODE[ord(_b.lower())] = _i
SKIP_FLAGS = 0x4 | 0x100 | 0x200 | 0x400 | 0x800


@dataclass
class Read:
    start: int
    end: int
    name: str
    rpos: np.ndarray  # reference positions of aligned (M/=/X) bases
    bases: np.ndarray  # uint8 ASCII codes of those bases
    quals: np.ndarray  # base qualities of those bases
    mapq: int
    reverse: bool
    tlen: int
    ins_anchors: np.ndarray  # reference positions after which the read has an insertion
    del_spans: list[tuple[int, int]]  # deleted reference intervals
    events: set = field(default_factory=set)  # normalised indel keys (pos, ref, alt)
    ins_quals: np.ndarray = field(default_factory=lambda: _EMPTY_QUALS)  # first inserted base's quality, per anchor


class RefCache:
    """Reference sequence of one contig, upper-cased, fetched once."""

    def __init__(self, fasta: pysam.FastaFile, chrom: str):
        self.chrom = chrom
        self.seq = fasta.fetch(chrom).upper()
        self.arr = np.frombuffer(self.seq.encode(), dtype=np.uint8)

    def fetch(self, start: int, end: int) -> str:
        return self.seq[start:end]


_ALIGNED_OPS = (0, 7, 8)  # M, =, X
_EMPTY_ANCHORS = np.zeros(0, dtype=np.int64)
_EMPTY_QUALS = np.zeros(0, dtype=np.uint8)


def parse_read(aln: pysam.AlignedSegment, ref: RefCache, norm_cache: dict) -> Optional[Read]:
    seq = aln.query_sequence
    cigar = aln.cigartuples
    if not seq or cigar is None:
        return None
    quals = aln.query_qualities
    qarr = np.frombuffer(seq.encode(), dtype=np.uint8)
    # zero-copy views: bases and qualities are only read, never written
    qual = np.frombuffer(quals, dtype=np.uint8) if quals is not None else np.full(len(seq), 30, np.uint8)
    r = aln.reference_start
    if len(cigar) == 1 and cigar[0][0] in _ALIGNED_OPS and cigar[0][1] == len(qarr) == len(qual):
        # fast path (most reads): one aligned block covering the whole read, no indels
        n = cigar[0][1]
        return Read(
            start=r, end=aln.reference_end or r + n, name=aln.query_name or "",
            rpos=np.arange(r, r + n), bases=qarr, quals=qual, mapq=aln.mapping_quality,
            reverse=aln.is_reverse, tlen=abs(aln.template_length),
            ins_anchors=_EMPTY_ANCHORS.copy(), del_spans=[], events=set(),
        )
    start = r
    q = 0
    blocks: list[tuple[int, int, int]] = []  # (ref start, query start, length) of aligned blocks
    ins_anchors: list[int] = []
    ins_quals: list[int] = []
    dels: list[tuple[int, int]] = []
    events: set = set()
    for op, n in cigar:
        if op in _ALIGNED_OPS:
            blocks.append((r, q, n))
            r += n
            q += n
        elif op == 1:  # I
            if r > start:
                ins_anchors.append(r - 1)
                ins_quals.append(int(qual[q]) if q < len(qual) else 0)
                key = (r - 1, ref.seq[r - 1], ref.seq[r - 1] + seq[q : q + n].upper())
                events.add(_norm(key, ref, norm_cache))
            q += n
        elif op == 2:  # D
            if r > 0:
                dels.append((r, r + n))
                key = (r - 1, ref.seq[r - 1 : r + n], ref.seq[r - 1])
                events.add(_norm(key, ref, norm_cache))
            r += n
        elif op == 3:  # N
            r += n
        elif op == 4:  # S
            q += n
    if not blocks:
        return None
    if len(blocks) == 1:
        r0, q0, n = blocks[0]
        rpos = np.arange(r0, r0 + n)
        qpos = np.arange(q0, q0 + n)
    else:
        # concatenated aranges in one go: per-base offset (ref - query) of its block, plus query positions
        lens = np.array([b[2] for b in blocks])
        qpos = np.concatenate([np.arange(b[1], b[1] + b[2]) for b in blocks])
        rpos = qpos + np.repeat(np.array([b[0] - b[1] for b in blocks]), lens)
    return Read(
        start=start, end=aln.reference_end or r, name=aln.query_name or "",
        rpos=rpos, bases=qarr[qpos], quals=qual[qpos], mapq=aln.mapping_quality,
        reverse=aln.is_reverse, tlen=abs(aln.template_length),
        ins_anchors=np.asarray(ins_anchors, dtype=np.int64), del_spans=dels, events=events,
        ins_quals=np.asarray(ins_quals, dtype=np.uint8),
    )


def _norm(key: tuple[int, str, str], ref: RefCache, cache: dict) -> tuple[int, str, str]:
    hit = cache.get(key)
    if hit is None:
        hit = normalize(key[0], key[1], key[2], ref.fetch)
        cache[key] = hit
    return hit


_SORT_KEY = attrgetter("start", "name", "reverse")


def fetch_reads(bams: list[pysam.AlignmentFile], chrom: str, start: int, end: int, min_mapq: int,
                 ref: RefCache, norm_cache: dict) -> list[Read]:
    reads: list[Read] = []
    for bam in bams:
        for aln in bam.fetch(chrom, max(0, start), end):
            if aln.flag & SKIP_FLAGS or aln.mapping_quality < min_mapq:
                continue
            rd = parse_read(aln, ref, norm_cache)
            if rd is not None:
                reads.append(rd)
    reads.sort(key=_SORT_KEY)
    return reads
