"""Reads for make_examples: a filtered fetch from BAMs into one columnar ``ReadBatch``.

A read is kept when it is mapped, primary, not supplementary, not a duplicate, passes QC
(any of flags 0x4, 0x100, 0x200, 0x400, 0x800 drops it) and has MAPQ >=
``min_mapping_quality``. Its aligned (M/=/X) bases become reference positions, bases and
qualities, with the length of the homopolymer run each base sits in within the read's
own sequence (soft clips and inserted bases included, as DeepVariant's
``homopolymer_weighted`` channel counts it); insertions are kept as anchor positions (with
the first inserted base's quality and run length) and deletions as reference spans, and
both as normalised indel keys ``(pos, ref, alt)``.

A batch holds every read of a partition column-wise: per-read arrays (start, end, MAPQ,
strand, |TLEN|) and the aligned bases of all reads in three flat arrays, read ``i``
owning ``off[i]:off[i+1]``. Reads are sorted by (start, name, strand) and each read's
bases by position, so ``key = row * KEY_STRIDE + rpos`` is ascending over the whole batch
and one ``searchsorted`` finds any (read, position) pair. Per-read Python work is only
the pysam iteration and, for reads with indels or clips, the CIGAR walk; everything
else is numpy over the whole partition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Optional

import numpy as np
import pysam

from .variants import normalize

BASE_CODE = np.full(256, 4, dtype=np.int64)  # A C G T -> 0..3, others 4
for _i, _b in enumerate("ACGT"):
    BASE_CODE[ord(_b)] = _i
    BASE_CODE[ord(_b.lower())] = _i
SKIP_FLAGS = 0x4 | 0x100 | 0x200 | 0x400 | 0x800
KEY_STRIDE = 1 << 32  # > any reference position: row * KEY_STRIDE + rpos is unique and ordered
DEFAULT_QUAL = 30  # quality given to bases of a read stored without qualities ('*')

_ALIGNED_OPS = (0, 7, 8)  # M, =, X
_I64 = np.zeros(0, dtype=np.int64)
_U8 = np.zeros(0, dtype=np.uint8)


@dataclass
class Read:
    """One read written out by hand (tests, small tools); ``ReadBatch.from_reads`` turns a
    list of them into a batch. ``ins_quals``, when given, is the first inserted base's
    quality per anchor; without it an anchor takes its own base's quality."""

    start: int
    end: int
    name: str
    rpos: np.ndarray  # reference positions of aligned (M/=/X) bases, ascending
    bases: np.ndarray  # uint8 ASCII codes of those bases
    quals: np.ndarray  # base qualities of those bases
    mapq: int
    reverse: bool
    tlen: int
    ins_anchors: np.ndarray  # reference positions after which the read has an insertion
    del_spans: list[tuple[int, int]]  # deleted reference intervals
    events: set = field(default_factory=set)  # normalised indel keys (pos, ref, alt)
    ins_quals: Optional[np.ndarray] = None
    runs: Optional[np.ndarray] = None  # homopolymer run length per aligned base (default: over ``bases``)
    ins_runs: Optional[np.ndarray] = None  # first inserted base's run per anchor (default: the anchor's)


RUN_SPAN = 1 << 16  # bases of reference whose homopolymer runs RefCache.window_runs keeps at a time


class RefCache:
    """Reference sequence of one contig, upper-cased, fetched once."""

    _runs: Optional[tuple[int, np.ndarray, np.ndarray]] = None  # window_runs' span: start, run bounds

    def __init__(self, fasta: pysam.FastaFile, chrom: str):
        self.chrom = chrom
        self.seq = fasta.fetch(chrom).upper()
        self.arr = np.frombuffer(self.seq.encode(), dtype=np.uint8)

    def fetch(self, start: int, end: int) -> str:
        return self.seq[start:end]

    def window_runs(self, lo: int, hi: int) -> np.ndarray:
        """``run_lengths(self.arr[lo:hi])``: each base's homopolymer run, cut at the window's
        edges. Run bounds are kept for a span of the contig (at least RUN_SPAN bases from the
        first window that needs them): images come in position order, so one span serves
        many windows. Bounds cut at the span's edges and then at the window's, which lies
        inside it, are the window's own."""
        span = self._runs
        if span is None or lo < span[0] or hi > span[0] + span[1].size:
            starts, lens = _runs(self.arr[lo:max(hi, lo + RUN_SPAN)])
            first = np.repeat(starts, lens) + lo
            span = self._runs = (lo, first, first + np.repeat(lens, lens))
        s, first, last = span
        runs = np.minimum(last[lo - s:hi - s], hi) - np.maximum(first[lo - s:hi - s], lo)
        return np.minimum(runs, 255).astype(np.uint8)


@dataclass
class ReadBatch:
    start: np.ndarray  # int64 per read
    end: np.ndarray  # int64 per read (reference end, exclusive)
    names: list[str]
    mapq: np.ndarray  # int64 per read
    reverse: np.ndarray  # bool per read
    tlen: np.ndarray  # int64 per read, |TLEN|
    off: np.ndarray  # int64, n + 1: read i's aligned bases are flat[off[i]:off[i+1]]
    rpos: np.ndarray  # int64 flat reference positions
    bases: np.ndarray  # uint8 flat ASCII bases
    quals: np.ndarray  # uint8 flat base qualities
    ins_row: np.ndarray = field(default_factory=lambda: _I64)  # insertions: read index,
    ins_pos: np.ndarray = field(default_factory=lambda: _I64)  # anchor position,
    ins_qual: np.ndarray = field(default_factory=lambda: _U8)  # quality drawn at the anchor,
    ins_run: np.ndarray = field(default_factory=lambda: _U8)  # run length drawn at the anchor
    del_row: np.ndarray = field(default_factory=lambda: _I64)  # deletions: read index,
    del_start: np.ndarray = field(default_factory=lambda: _I64)  # first deleted position
    events: dict[int, set] = field(default_factory=dict)  # read index -> normalised indel keys
    runs: Optional[np.ndarray] = None  # uint8 flat: homopolymer run length in the read (capped at 255)

    def __post_init__(self) -> None:
        n = len(self.names)
        if self.runs is None:
            self.runs = run_lengths(self.bases, self.off)
        if self.ins_run.size != self.ins_row.size:
            self.ins_run = np.ones(self.ins_row.size, dtype=np.uint8)
        row = np.repeat(np.arange(n, dtype=np.int64), np.diff(self.off))
        self.key = row * KEY_STRIDE + self.rpos
        self.max_len = int((self.end - self.start).max()) if n else 0
        self.sorted = not (n and (np.diff(self.start) < 0).any())

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def from_reads(cls, reads: list[Read]) -> "ReadBatch":
        """A batch of hand-built reads, stably sorted by (start, name)."""
        reads = sorted(reads, key=lambda r: (r.start, r.name))
        runs = [np.asarray(r.runs, np.uint8) if r.runs is not None else run_lengths(np.asarray(r.bases, np.uint8))
                for r in reads]
        ins = [(i, int(a), int(q), int(h)) for i, r in enumerate(reads) if len(r.ins_anchors)
               for a, q, h in zip(r.ins_anchors, _anchor_quals(r), _anchor_values(r, runs[i], r.ins_runs))]
        dels = [(i, s) for i, r in enumerate(reads) for s, _ in r.del_spans]
        return cls(
            start=np.array([r.start for r in reads], dtype=np.int64),
            end=np.array([r.end for r in reads], dtype=np.int64),
            names=[r.name for r in reads],
            mapq=np.array([r.mapq for r in reads], dtype=np.int64),
            reverse=np.array([r.reverse for r in reads], dtype=bool),
            tlen=np.array([abs(r.tlen) for r in reads], dtype=np.int64),
            off=np.concatenate([[0], np.cumsum([len(r.rpos) for r in reads])]).astype(np.int64),
            rpos=np.concatenate([_I64] + [np.asarray(r.rpos, np.int64) for r in reads]),
            bases=np.concatenate([_U8] + [np.asarray(r.bases, np.uint8) for r in reads]),
            quals=np.concatenate([_U8] + [np.asarray(r.quals).astype(np.uint8) for r in reads]),
            ins_row=np.array([x[0] for x in ins], dtype=np.int64),
            ins_pos=np.array([x[1] for x in ins], dtype=np.int64),
            ins_qual=np.array([x[2] for x in ins], dtype=np.uint8),
            ins_run=np.array([x[3] for x in ins], dtype=np.uint8),
            del_row=np.array([d[0] for d in dels], dtype=np.int64),
            del_start=np.array([d[1] for d in dels], dtype=np.int64),
            events={i: set(r.events) for i, r in enumerate(reads) if r.events},
            runs=np.concatenate([_U8] + runs),
        )

    def subset(self, rows: np.ndarray) -> "ReadBatch":
        """The reads at ``rows``, in that order, as a new batch."""
        rows = np.asarray(rows, dtype=np.int64)
        lens = np.diff(self.off)[rows]
        flat = _ranges(self.off[rows], lens)
        new_row = np.full(len(self), -1, dtype=np.int64)
        new_row[rows] = np.arange(rows.size)
        ik = new_row[self.ins_row] >= 0
        dk = new_row[self.del_row] >= 0
        return ReadBatch(
            start=self.start[rows], end=self.end[rows], names=[self.names[i] for i in rows],
            mapq=self.mapq[rows], reverse=self.reverse[rows], tlen=self.tlen[rows],
            off=np.concatenate([[0], np.cumsum(lens)]).astype(np.int64),
            rpos=self.rpos[flat], bases=self.bases[flat], quals=self.quals[flat], runs=self.runs[flat],
            ins_row=new_row[self.ins_row[ik]], ins_pos=self.ins_pos[ik], ins_qual=self.ins_qual[ik],
            ins_run=self.ins_run[ik],
            del_row=new_row[self.del_row[dk]], del_start=self.del_start[dk],
            events={int(new_row[i]): ev for i, ev in self.events.items() if new_row[i] >= 0},
        )

    def overlapping(self, lo: int, hi: int) -> np.ndarray:
        """Indices (ascending) of reads with start < hi and end > lo."""
        if not self.sorted:
            raise ValueError("ReadBatch.overlapping needs reads sorted by start")
        a = int(np.searchsorted(self.start, lo - self.max_len, side="left"))
        b = int(np.searchsorted(self.start, hi, side="left"))
        return a + np.nonzero(self.end[a:b] > lo)[0]

    def base_at(self, rows: np.ndarray, pos: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """For each read in ``rows``: whether it has an aligned base at ``pos`` (scalar or
        per row), and that base's flat index (meaningful only where it does)."""
        if not self.key.size:
            return np.zeros(len(rows), dtype=bool), np.zeros(len(rows), dtype=np.int64)
        k = np.asarray(rows, dtype=np.int64) * KEY_STRIDE + pos
        i = np.minimum(np.searchsorted(self.key, k), self.key.size - 1)
        return self.key[i] == k, i

    def window(self, rows: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """Flat indices of the aligned bases of ``rows`` at positions in [lo, hi), and the
        position in ``rows`` each one belongs to."""
        rows = np.asarray(rows, dtype=np.int64)
        a = np.searchsorted(self.key, rows * KEY_STRIDE + lo)
        b = np.searchsorted(self.key, rows * KEY_STRIDE + hi)
        lens = b - a
        return _ranges(a, lens), np.repeat(np.arange(rows.size), lens)


def _ranges(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(s, s + n)`` for each (s, n), in one go."""
    total = int(lens.sum())
    if not total:
        return _I64
    return np.arange(total, dtype=np.int64) + np.repeat(starts - (np.cumsum(lens) - lens), lens)


def run_lengths(bases: np.ndarray, off: Optional[np.ndarray] = None) -> np.ndarray:
    """For each base, the length (capped at 255) of the run of identical bases it belongs
    to, runs never crossing a read boundary ``off`` (default: one read): ``ATCGGGAA`` ->
    ``1 1 1 3 3 3 2 2``."""
    if not bases.size:
        return _U8
    _, lens = _runs(bases, off)
    return np.repeat(np.minimum(lens, 255), lens).astype(np.uint8)


def _runs(bases: np.ndarray, off: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """Start and length of each run of identical bases (runs broken at ``off``, as in
    run_lengths)."""
    n = bases.size
    new = np.ones(n, dtype=bool)
    new[1:] = bases[1:] != bases[:-1]
    if off is not None:
        new[off[:-1][off[:-1] < n]] = True
    starts = np.flatnonzero(new)
    return starts, np.diff(np.append(starts, n))


def _anchor_values(rd: Read, per_base: np.ndarray, given: Optional[np.ndarray] = None) -> np.ndarray:
    """A value per insertion anchor of a hand-built read: ``given`` when it has one per
    anchor, else the anchor base's own value in ``per_base`` (0 if it is not aligned)."""
    anchors = np.asarray(rd.ins_anchors, dtype=np.int64)
    if given is not None and len(given) == len(anchors):
        return np.asarray(given)
    rpos = np.asarray(rd.rpos)
    if not rpos.size:
        return np.zeros(anchors.size, dtype=np.int64)
    idx = np.minimum(np.searchsorted(rpos, anchors), rpos.size - 1)
    return np.where(rpos[idx] == anchors, np.asarray(per_base)[idx], 0)


def _anchor_quals(rd: Read) -> np.ndarray:
    """Quality drawn at each insertion anchor of a hand-built read: ``ins_quals`` when
    given, else the anchor base's own quality (0 if it is not aligned)."""
    return _anchor_values(rd, np.asarray(rd.quals), rd.ins_quals)


def _norm(key: tuple[int, str, str], ref: RefCache, cache: Optional[dict]) -> tuple[int, str, str]:
    """The indel ``key`` left-aligned (cached); as it is when there is no cache."""
    if cache is None:
        return key
    hit = cache.get(key)
    if hit is None:
        hit = normalize(key[0], key[1], key[2], ref.fetch)
        cache[key] = hit
    return hit


def batch_from_alignments(alns: Iterable[pysam.AlignedSegment], ref: RefCache, norm_cache: dict,
                          ties: str = "name", min_insertion_quality: int = 0, left_align: bool = True) -> ReadBatch:
    """A batch of ``alns`` (already filtered); reads without a sequence, a CIGAR or any
    aligned base are dropped. Rows by alignment start, ties by (name, strand), or with
    ``ties="input"`` in input order. An insertion with a base below
    ``min_insertion_quality`` is drawn but is no allele of its read (``events``), as in
    DeepVariant's allele counter; ``left_align=False`` keys each indel where the read's CIGAR
    puts it (DeepVariant's counter does not left-align them)."""
    starts: list[int] = []
    ends: list[int] = []
    names: list[str] = []
    mapqs: list[int] = []
    revs: list[bool] = []
    tlens: list[int] = []
    seqs: list[str] = []
    quals: list = []
    complex_: list[tuple[int, list[tuple[int, int, int]]]] = []  # (read, aligned blocks (ref, query, n))
    ins: list[tuple[int, int, int, int]] = []  # (read, anchor, quality, query offset of the first inserted base)
    dels: list[tuple[int, int]] = []  # (read, first deleted position)
    events: dict[int, set] = {}
    for aln in alns:
        seq = aln.query_sequence
        cigar = aln.cigartuples
        if not seq or cigar is None:
            continue
        qual = aln.query_qualities
        if qual is None or len(qual) != len(seq):
            qual = bytes([DEFAULT_QUAL]) * len(seq)
        r = aln.reference_start
        i = len(names)
        if not (len(cigar) == 1 and cigar[0][0] in _ALIGNED_OPS and cigar[0][1] == len(seq)):
            blocks = _walk_cigar(cigar, r, seq, qual, i, ref, norm_cache if left_align else None, ins, dels, events,
                                 min_insertion_quality)
            if blocks is None:
                continue
            complex_.append((i, blocks))
        starts.append(r)
        ends.append(aln.reference_end or r + len(seq))
        names.append(aln.query_name or "")
        mapqs.append(aln.mapping_quality)
        revs.append(aln.is_reverse)
        tlens.append(abs(aln.template_length))
        seqs.append(seq)
        quals.append(qual)
    n = len(names)
    qlen = np.fromiter((len(s) for s in seqs), np.int64, n)
    qoff = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(qlen, out=qoff[1:])
    bases = np.frombuffer("".join(seqs).encode(), dtype=np.uint8)
    qual_flat = np.frombuffer(b"".join(quals), dtype=np.uint8)
    runs = run_lengths(bases, qoff)  # over whole query sequences, before clips and insertions go
    ins_run = runs[np.array([qoff[x[0]] + x[3] for x in ins], dtype=np.int64)] if ins else _U8
    start_arr = np.array(starts, dtype=np.int64)
    # every query base at start + its offset in the read; reads with indels or clips are
    # then rewritten block by block, their unaligned bases marked -1 and dropped
    rpos = np.arange(int(qoff[-1]), dtype=np.int64) + np.repeat(start_arr - qoff[:-1], qlen)
    off = qoff
    if complex_:
        for i, blocks in complex_:
            seg = rpos[qoff[i]:qoff[i + 1]]
            seg[:] = -1
            for r0, q0, k in blocks:
                seg[q0:q0 + k] = np.arange(r0, r0 + k)
        keep = rpos >= 0
        rpos, bases, qual_flat, runs = rpos[keep], bases[keep], qual_flat[keep], runs[keep]
        kept = np.add.reduceat(keep.astype(np.int64), qoff[:-1]) if n else _I64
        off = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(kept, out=off[1:])
    batch = ReadBatch(
        start=start_arr, end=np.array(ends, dtype=np.int64), names=names,
        mapq=np.array(mapqs, dtype=np.int64), reverse=np.array(revs, dtype=bool),
        tlen=np.array(tlens, dtype=np.int64), off=off, rpos=rpos, bases=bases, quals=qual_flat, runs=runs,
        ins_row=np.array([x[0] for x in ins], dtype=np.int64), ins_pos=np.array([x[1] for x in ins], dtype=np.int64),
        ins_qual=np.array([x[2] for x in ins], dtype=np.uint8), ins_run=ins_run,
        del_row=np.array([d[0] for d in dels], dtype=np.int64), del_start=np.array([d[1] for d in dels], dtype=np.int64),
        events=events,
    )
    # rows in (start, name, strand) order; a BAM gives start order, ties in any order
    keys = list(zip(starts, names, revs)) if ties == "name" else starts
    order = sorted(range(n), key=keys.__getitem__)  # stable: equal keys keep input order
    return batch if order == list(range(n)) else batch.subset(np.array(order, dtype=np.int64))


def _walk_cigar(cigar: list[tuple[int, int]], r: int, seq: str, qual, i: int, ref: RefCache, norm_cache: Optional[dict],
                ins: list, dels: list, events: dict, min_ins_qual: int = 0) -> Optional[list[tuple[int, int, int]]]:
    """The aligned blocks (ref start, query start, length) of read ``i`` starting at ``r``;
    its insertions and deletions are appended to ``ins`` / ``dels`` and its normalised
    indel keys to ``events[i]``. None when no base is aligned (the read is dropped, and
    nothing was recorded for it)."""
    q = 0
    blocks: list[tuple[int, int, int]] = []
    my_ins: list[tuple[int, int, int]] = []
    my_dels: list[tuple[int, int]] = []
    evs: set = set()
    for op, n in cigar:
        if op in _ALIGNED_OPS:
            blocks.append((r, q, n))
            r += n
            q += n
        elif op == 1:  # I: anchored at the base before, drawn with the first inserted base's quality;
            if r > 0:  # as DeepVariant, also when it opens the alignment (anchor: the reference base)
                my_ins.append((i, r - 1, int(qual[q]) if q < len(qual) else 0, min(q, len(seq) - 1)))
                if not min_ins_qual or min(qual[q:q + n], default=0) >= min_ins_qual:
                    evs.add(_norm((r - 1, ref.seq[r - 1], ref.seq[r - 1] + seq[q:q + n].upper()), ref, norm_cache))
            q += n
        elif op == 2:  # D
            if r > 0:
                my_dels.append((i, r))
                evs.add(_norm((r - 1, ref.seq[r - 1:r + n], ref.seq[r - 1]), ref, norm_cache))
                if not blocks and q > 0:  # after a clip (a realigned read): DeepVariant draws its anchor
                    my_ins.append((i, r - 1, int(qual[q - 1]), q - 1))  # with the clipped base's quality
            r += n
        elif op == 3:  # N
            r += n
        elif op == 4:  # S
            q += n
    if not blocks:
        return None
    ins += my_ins
    dels += my_dels
    if evs:
        events[i] = evs
    return blocks


def _kept(bams: list[pysam.AlignmentFile], chrom: str, start: int, end: int, min_mapq: int):
    for bam in bams:
        for aln in bam.fetch(chrom, max(0, start), end):
            if not (aln.flag & SKIP_FLAGS or aln.mapping_quality < min_mapq or _misplaced(aln)):
                yield aln


def _misplaced(aln: pysam.AlignedSegment) -> bool:
    """A paired read not properly paired whose mate is on another contig: DeepVariant leaves
    it out (nucleus' ReadRequirements keep_improperly_placed, false by default; the golden
    examples lack such reads)."""
    return aln.flag & 0x3 == 0x1 and aln.next_reference_id >= 0 and aln.next_reference_id != aln.reference_id


def fetch_reads(bams: list[pysam.AlignmentFile], chrom: str, start: int, end: int, min_mapq: int,
                ref: RefCache, norm_cache: dict) -> ReadBatch:
    """The reads of ``bams`` overlapping [start, end) that pass the filters, as one batch."""
    return batch_from_alignments(_kept(bams, chrom, start, end, min_mapq), ref, norm_cache)


def fetch_realigned(bams: list[pysam.AlignmentFile], chrom: str, start: int, end: int, pad: int, min_mapq: int,
                    min_base_quality: int, ref: RefCache, norm_cache: dict) -> tuple[ReadBatch, int]:
    """As ``fetch_reads`` over [start - pad, end + pad), the reads overlapping the partition
    [start, end) realigned by DeepVariant's realigner (dvtrain.realigner); rows in its
    order: by alignment start, ties in the realigner's output order (DeepVariant's pileup
    rule); insertions count as alleles only when their bases reach ``min_base_quality``
    (DeepVariant's allele counter). Returns (batch, reads realigned)."""
    from .realigner import realign_partition

    alns = list(_kept(bams, chrom, start - pad, end + pad, min_mapq))
    inside = [a for a in alns if a.reference_start < end and (a.reference_end or a.reference_start) > start]
    ids = {id(a) for a in inside}
    realigned, moved = realign_partition(inside, ref.seq, start, end)
    return batch_from_alignments([a for a in alns if id(a) not in ids] + realigned, ref, norm_cache,
                                 ties="input", min_insertion_quality=min_base_quality, left_align=False), moved
