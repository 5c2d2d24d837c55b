"""Stage 1: the coverage-filtered confident BED.

``coverage_bed`` reproduces, interval for interval and line for line, the shell pipeline::

    samtools merge -f -c -p merged.bam A.bam B.bam ... && samtools index merged.bam
    bedtools genomecov -ibam merged.bam -bg | awk '$4 > MIN' | bedtools intersect -a truth.bed -b -

without bedtools, in numpy, one contig at a time.

What ``bedtools genomecov -ibam -bg`` (v2.30, no ``-split``) counts -- established from its
source (``genomeCoverageBed.cpp``, ``GetBamBlocks``) and checked against the binary in
``tests/test_coverage.py``:

* every record whose FLAG lacks 0x4 (unmapped) counts: secondary (0x100), QC-fail (0x200),
  duplicate (0x400) and supplementary (0x800) records are all counted, MAPQ is ignored;
* a record covers its CIGAR "blocks": M/=/X extend a block, I/S/H/P do nothing, N (ref skip)
  is *covered* (only ``-split`` breaks on N), and D *breaks* the block -- bases under a
  deletion are **not** covered (``GetBamBlocks(..., breakOnDeletionOps=true, ...)`` is called
  with or without ``-split``);
* blocks are clipped at the contig end; a block starting at or past the end adds nothing;
* quirk kept for exactness: a zero-length block at position 0 (a mapped record at POS 1
  whose CIGAR is empty, all-clip/insertion, or starts with D) makes genomecov do
  ``ends[-1]`` -> ``ends[len-1]``, i.e. it adds 1 to the depth of the *whole contig*;
* bedGraph lines are maximal runs of equal, non-zero depth; contigs are independent.

What ``bedtools intersect -a truth.bed -b -`` (default, unsorted mode) emits: for each truth
line in file order, one line per overlapping bedGraph run, clipped to the truth interval, with
the truth line's extra columns; the runs come in the order of bedtools' UCSC-style bin tree
(finest bin level first, then position), not plain position order. A zero-length truth
interval ``[p, p)`` is widened to ``[p-1, p+1)`` for the overlap test and printed as ``[p, p)``.
"""

from __future__ import annotations

import logging
from array import array
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import pysam

from .bed import read_bed, require_intervals_on
from .config import CoverageConfig
from .errors import DvtrainError, InputError, require_file
from .fileio import atomic_output
from .genome import check_bam

log = logging.getLogger(__name__)


# CIGAR op codes (SAM spec)
_M, _I, _D, _N, _S, _H, _P, _EQ, _X = range(9)

# bedtools' BinTree: 7 levels, finest bins 2**14, each level 2**3 coarser.
_BIN_FIRST_SHIFT = 14
_BIN_NEXT_SHIFT = 3
_NUM_BIN_LEVELS = 7

_WINDOW = 1 << 20  # bases per difference-array window (bounds memory whatever the contig size)


# --------------------------------------------------------------------------- input checks
def _check_inputs(reads: list[Path]) -> list[tuple[str, int]]:
    first: Optional[list[tuple[str, int]]] = None
    for path in reads:
        sq = check_bam(Path(path))
        if first is None:
            first = sq
        elif sq != first:
            a, b = dict(first), dict(sq)
            diff = sorted(set(a.items()) ^ set(b.items()))
            what = ", ".join(f"{n}:{ln}" for n, ln in diff[:5]) or "contig order differs"
            raise InputError(path, f"@SQ contigs differ from {reads[0]} ({what})")
    return first or []


def _find_unsorted(reads: list[Path]) -> Optional[Path]:
    """Error path only: the first input whose records are not in coordinate order."""
    for path in reads:
        with pysam.AlignmentFile(str(path), "rb", check_sq=False) as bam:
            last = (-1, -1)
            for r in bam.fetch(until_eof=True):
                tid = r.reference_id
                key = (tid if tid >= 0 else 1 << 40, r.reference_start)
                if key < last:
                    return Path(path)
                last = key
    return None


# --------------------------------------------------------------------------- merge
def merge_bams(reads: list[Path], merged_bam: Path) -> Path:
    """Merge coordinate-sorted BAMs into ``merged_bam`` (+ .bai), both written atomically.

    The BAM is renamed into place before its index, so a crash in between leaves an index
    older than its BAM (htslib warns) rather than a fresh index beside a stale BAM.
    """
    merged_bam = Path(merged_bam)
    bai = Path(str(merged_bam) + ".bai")
    with atomic_output(bai, suffix=".bai") as tmp_bai, atomic_output(merged_bam, suffix=".bam") as tmp_bam:
        try:
            pysam.merge("-f", "-c", "-p", "--no-PG", str(tmp_bam), *[str(r) for r in reads])
        except pysam.SamtoolsError as e:
            raise DvtrainError(f"samtools merge into {merged_bam} failed: {e}") from None
        try:
            pysam.index("-o", str(tmp_bai), str(tmp_bam))
        except pysam.SamtoolsError as e:
            culprit = _find_unsorted(reads)
            if culprit is not None:
                raise InputError(culprit, "records are not in coordinate order; run samtools sort") from None
            raise DvtrainError(f"samtools index of {merged_bam} failed: {e}") from None
    return merged_bam


# --------------------------------------------------------------------------- depth
def _read_blocks(pos: int, cigar: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """bedtools ``GetBamBlocks(breakOnDeletionOps=true, breakOnSkipOps=false)``."""
    blocks = []
    cur = pos
    blen = 0
    for op, n in cigar:
        if op == _M or op == _EQ or op == _X or op == _N:
            blen += n
            cur += n
        elif op == _D:
            blocks.append((cur - blen, cur))
            blen = 0
            cur += n
    blocks.append((cur - blen, cur))
    return blocks


class _ContigDepth:
    """Run-length depth of one contig, computed window by window from a sorted read stream.

    Start events (+1 at s) and end events (-1 at e) of every block are bucketed into
    fixed windows; each window is a numpy difference array + cumsum. Memory is bounded by
    the window and the blocks that span it, whatever the contig length.
    """

    def __init__(self, length: int):
        self.length = length
        self.total = 0  # sum of depth over the contig
        self._w0 = 0
        self._carry = 0
        self._st = array("q")  # start events not yet applied
        self._en = array("q")  # end events not yet applied
        self._pend_st = np.empty(0, np.int64)  # events beyond the last flushed window
        self._pend_en = np.empty(0, np.int64)
        # the run being extended across windows
        self._run_s = 0
        self._run_d = 0

    def add(self, s: int, e: int) -> None:
        """bedtools AddCoverage(s, e - 1), translated to difference-array events."""
        L = self.length
        if s < L:
            self._st.append(s)
            if e <= 0:  # ends[-1] -> bedtools falls back to ends[len-1]: whole contig +1
                return
            if e < L:
                self._en.append(e)
        # s >= L: its end lands on ends[len-1] or later, never visible

    def advance(self, upto: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Flush every window that ends at or before ``upto`` (no future event lies before it)."""
        while self._w0 + _WINDOW <= min(upto, self.length):
            yield from self._flush(self._w0 + _WINDOW)

    def finish(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        while self._w0 < self.length:
            yield from self._flush(min(self._w0 + _WINDOW, self.length))
        if self._run_d > 0 and self._run_s < self.length:
            one = np.array([self._run_s], np.int64)
            yield one, np.array([self.length], np.int64), np.array([self._run_d], np.int64)
        self._run_d = 0

    def _flush(self, w1: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        w0 = self._w0
        n = w1 - w0
        st = np.concatenate([self._pend_st, np.array(self._st, np.int64)]) if len(self._st) else self._pend_st
        en = np.concatenate([self._pend_en, np.array(self._en, np.int64)]) if len(self._en) else self._pend_en
        del self._st[:]  # emptied in place: the read loop holds their bound append methods
        del self._en[:]
        in_st = st < w1
        in_en = en < w1
        self._pend_st = st[~in_st]
        self._pend_en = en[~in_en]
        self._w0 = w1
        if not in_st.any() and not in_en.any():
            self.total += self._carry * n
            return  # constant window: the current run just grows
        diff = np.bincount(st[in_st] - w0, minlength=n)
        diff -= np.bincount(en[in_en] - w0, minlength=n)
        depth = np.cumsum(diff)
        depth += self._carry
        self.total += int(depth.sum())
        self._carry = int(depth[-1])
        # positions (absolute) where depth differs from the base before
        prev = np.empty(n, np.int64)
        prev[0] = self._run_d
        prev[1:] = depth[:-1]
        change = np.flatnonzero(depth != prev)
        if change.size == 0:
            return
        # runs: [run_s, change0) at run_d, then [change_i, change_i+1) at depth[change_i]
        starts = np.empty(change.size, np.int64)
        starts[0] = self._run_s
        starts[1:] = change[:-1] + w0
        ends = change + w0
        depths = np.empty(change.size, np.int64)
        depths[0] = self._run_d
        depths[1:] = depth[change[:-1]]
        self._run_s = int(change[-1] + w0)
        self._run_d = int(depth[change[-1]])
        keep = depths > 0
        if keep.any():
            yield starts[keep], ends[keep], depths[keep]


def _contig_runs(bam: pysam.AlignmentFile, contig: str, length: int, acc: Optional[dict] = None
                 ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield chunks (starts, ends, depths) of the contig's genomecov -bg runs (depth > 0)."""
    cd = _ContigDepth(length)
    if bam.has_index():
        it = bam.fetch(contig)
        tid = None
    else:
        it = bam.fetch(until_eof=True)
        tid = bam.get_tid(contig)
    next_flush = _WINDOW
    add = cd.add
    st_append = cd._st.append
    en_append = cd._en.append
    for r in it:
        if tid is not None and r.reference_id != tid:
            continue
        if r.flag & 4:
            continue
        pos = r.reference_start
        if pos >= next_flush:
            yield from cd.advance(pos)
            next_flush = cd._w0 + _WINDOW
        cs = r.cigarstring
        if cs is not None and "D" not in cs:
            end = r.reference_end
            if end > pos + 1 and pos < length:  # the common case, inlined: one block [pos, end)
                st_append(pos)
                if end < length:
                    en_append(end)
                continue
            # else: htslib reports pos+1 for clip/insertion-only CIGARs too; take the slow path
        if pos < 0:
            continue
        if cs is None:
            add(pos, pos)  # no CIGAR: one zero-length block
        else:
            for s, e in _read_blocks(pos, r.cigartuples):
                add(s, e)
    yield from cd.finish()
    if acc is not None:
        acc["total"] = cd.total


def depth_runs(bam_path: str | Path, contig: str) -> Iterator[tuple[int, int, int]]:
    """Yield ``(start, end, depth)`` for ``contig``: exactly the lines of
    ``bedtools genomecov -ibam BAM -bg`` for that contig (0-based, half-open, depth > 0).

    Uses the BAM index when there is one (else scans the whole file)."""
    p = require_file(bam_path, "BAM file")
    with pysam.AlignmentFile(str(p), "rb", check_sq=False) as bam:
        if contig not in bam.references:
            raise InputError(p, f"contig {contig!r} is not in the BAM header")
        length = bam.get_reference_length(contig)
        for s, e, d in _contig_runs(bam, contig, length):
            yield from zip(s.tolist(), e.tolist(), d.tolist())


# --------------------------------------------------------------------------- intersect
def _bin_levels(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """bedtools BinTree::getBin level of each run (0 = finest 16 kb bins)."""
    s = starts >> _BIN_FIRST_SHIFT
    e = (ends - 1) >> _BIN_FIRST_SHIFT
    level = np.zeros(starts.shape, np.int8)
    for i in range(_NUM_BIN_LEVELS - 1):
        level += ((s >> (i * _BIN_NEXT_SHIFT)) != (e >> (i * _BIN_NEXT_SHIFT))).astype(np.int8)
    return level


class _KeptRuns:
    """The runs of one contig with depth > min_coverage, ready for interval queries."""

    def __init__(self, bam: pysam.AlignmentFile, contig: str, length: int, min_cov: int):
        acc: dict = {}
        parts_s, parts_e = [], []
        for s, e, d in _contig_runs(bam, contig, length, acc):
            keep = d > min_cov
            parts_s.append(s[keep])
            parts_e.append(e[keep])
        self.starts = np.concatenate(parts_s) if parts_s else np.empty(0, np.int64)
        self.ends = np.concatenate(parts_e) if parts_e else np.empty(0, np.int64)
        self.levels = _bin_levels(self.starts, self.ends)
        # prefix count of coarse-bin runs: slices without any need no reordering
        self.coarse_prefix = np.concatenate([[0], np.cumsum(self.levels > 0)])
        self.mean_depth = acc.get("total", 0) / length if length else 0.0


def _write_block(fh, chrom: str, block: list, runs: Optional[_KeptRuns]) -> tuple[int, int]:
    """Write the intersect output of consecutive truth lines on one contig.

    Returns (bases kept, lines written)."""
    if runs is None or runs.starts.size == 0:
        return 0, 0
    ks, ke, kl, cp = runs.starts, runs.ends, runs.levels, runs.coarse_prefix
    ts = np.fromiter((iv[1] for iv in block), np.int64, len(block))
    te = np.fromiter((iv[2] for iv in block), np.int64, len(block))
    zero = ts == te
    # overlap: run.start < te and run.end > ts; zero-length [p,p) is widened to [p-1,p+1)
    q_lo = np.where(zero, ts - 1, ts)
    q_hi = np.where(zero, te + 1, te)
    i0 = np.searchsorted(ke, q_lo, side="right")
    i1 = np.searchsorted(ks, q_hi, side="left")
    kept = lines = 0
    for j in np.flatnonzero(i1 > i0).tolist():
        a, b = int(i0[j]), int(i1[j])
        iv = block[j]
        extra = iv[3] if len(iv) > 3 else None
        prefix = chrom + "\t"
        suffix = ("\t" + "\t".join(extra) + "\n") if extra else "\n"
        lines += b - a
        idx = np.arange(a, b)
        if b - a > 1 and cp[b] - cp[a] > 0:
            idx = idx[np.argsort(kl[a:b], kind="stable")]  # bin level first, then position
        if zero[j]:
            p = str(iv[1])
            fh.write(f"{prefix}{p}\t{p}{suffix}" * (b - a))
            continue
        s = np.maximum(ks[idx], iv[1])
        e = np.minimum(ke[idx], iv[2])
        kept += int((e - s).sum())
        sep = suffix + prefix
        fh.write(prefix + sep.join([f"{x}\t{y}" for x, y in zip(s.tolist(), e.tolist())]) + suffix)
    return kept, lines


# --------------------------------------------------------------------------- the stage
def filter_truth_by_depth(bam_path: str | Path, truth_bed: str | Path, output_bed: str | Path,
                          min_coverage: int, truth: Optional[list] = None) -> dict:
    """Write the truth-BED pieces whose depth in ``bam_path`` (sorted, indexed) is > min_coverage.

    Equals ``bedtools genomecov -ibam BAM -bg | awk '$4 > MIN' | bedtools intersect -a TRUTH -b -``
    byte for byte. ``truth`` may pass the already-parsed BED. Returns a summary dict.
    """
    bam_path = Path(bam_path)
    output_bed = Path(output_bed)
    min_cov = int(min_coverage)
    if truth is None:
        truth = read_bed(truth_bed, keep_extra=True)  # InputError on a bad line

    # consecutive truth lines on one contig form a block; one contig's runs are held at a time
    blocks: list[tuple[str, list]] = []
    for iv in truth:
        if blocks and blocks[-1][0] == iv[0]:
            blocks[-1][1].append(iv)
        else:
            blocks.append((iv[0], [iv]))
    if len({c for c, _ in blocks}) < len(blocks):
        log.warning("%s: contigs are interleaved; depth is recomputed for contigs seen again", truth_bed)

    mean_depth: dict[str, float] = {}
    bases_kept = n_lines = 0
    with pysam.AlignmentFile(str(bam_path), "rb") as bam, atomic_output(output_bed) as tmp:
        lengths = dict(zip(bam.references, bam.lengths))
        cached: tuple[Optional[str], Optional[_KeptRuns]] = (None, None)
        with open(tmp, "w") as fh:
            for chrom, block in blocks:
                if chrom not in lengths:
                    continue  # genomecov reports nothing there
                if cached[0] != chrom:
                    cached = (chrom, _KeptRuns(bam, chrom, lengths[chrom], min_cov))
                    mean_depth[chrom] = cached[1].mean_depth
                kept, lines = _write_block(fh, chrom, block, cached[1])
                bases_kept += kept
                n_lines += lines
    bases_in_truth = sum(iv[2] - iv[1] for iv in truth)
    summary = {
        "output_bed": str(output_bed),
        "merged_bam": str(bam_path),
        "min_coverage": min_cov,
        "truth_intervals": len(truth),
        "intervals": n_lines,
        "bases_in_truth": bases_in_truth,
        "bases_kept": bases_kept,
        "fraction_kept": bases_kept / bases_in_truth if bases_in_truth else 0.0,
        "mean_depth": mean_depth,
    }
    log.info("coverage: kept %d of %d truth bases (%.1f%%) at depth > %d in %d intervals",
             bases_kept, bases_in_truth, 100 * summary["fraction_kept"], min_cov, n_lines)
    return summary


def coverage_bed(config: CoverageConfig) -> dict:
    """Merge the reads, keep truth-BED bases with depth > min_coverage, write ``output_bed``.

    Inputs are checked first (each BAM exists, is a complete BAM, is coordinate sorted, all
    share one @SQ list; the truth BED parses), so a bad input leaves no output behind.
    Output equals ``bedtools genomecov -ibam merged.bam -bg | awk '$4 > MIN' |
    bedtools intersect -a truth.bed -b -`` byte for byte.

    Returns {output_bed, merged_bam, min_coverage, truth_intervals, intervals,
    bases_in_truth, bases_kept, fraction_kept, mean_depth: {contig: mean depth}} where the
    base counts sum interval lengths line by line (overlapping truth lines count twice, as
    in the BED files) and mean_depth covers the contigs the truth BED names.
    """
    reads = [Path(r) for r in config.reads]
    output_bed = Path(config.output_bed)
    merged = Path(config.merged_bam) if config.merged_bam else output_bed.parent / "merged.bam"
    sq = dict(_check_inputs(reads))
    truth = read_bed(config.truth_bed, keep_extra=True)  # InputError on a bad line
    require_intervals_on(config.truth_bed, truth, sq, "a BAM contig")
    merge_bams(reads, merged)
    return filter_truth_by_depth(merged, config.truth_bed, output_bed, config.min_coverage, truth=truth)
