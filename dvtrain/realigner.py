"""DeepVariant's local realigner, as make_examples runs it before counting alleles and
drawing pileups (``realign_reads``; on in ``preset: deepvariant``).

Per make_examples partition:

1. **Windows** (DeepVariant's VARIANT_READS window selector): reads with MAPQ >= 20 add +1
   per allele they carry over the partition +-20 bp: a mismatch of quality >= 20 at its
   base; an insertion or soft clip of length L (mean quality >= 20) over the L positions
   before and after its anchor; a deletion over the deleted bases. Positions inside the
   partition with 2..300 are candidates (DeepVariant 1.5's rule); candidates closer than
   160 bp join; each group becomes [first - 80, last + 80). Windows longer than 1000 bp
   are left alone.
2. **Haplotypes** (a De Bruijn graph per window): the smallest k >= 10 at which the
   window's reference has no repeated k-mer and the graph of the reference plus the reads
   (MAPQ >= 14; k-mers of bases with quality >= 15) has no cycle; read edges seen fewer than
   2 times are pruned, then vertices off every source-to-sink path; the source-to-sink
   paths (at most 256, else none) are the haplotypes, sorted. A window whose only
   haplotype is the reference is left alone.
3. **Realignment** (DeepVariant's fast pass aligner): each read goes to the window it
   overlaps most. Per window, each haplotype padded with reference (20 bp beyond the reads)
   is aligned to the reference (Smith-Waterman, match 4, mismatch 6, gap 8 + 2 per extra
   base); reads are placed on each haplotype by shared 32-mers with at most 2 mismatches
   (a non-reference haplotype that leaves a window base uncovered once all are placed is
   dropped), else by Smith-Waterman; a read takes the best-scoring haplotype (ties to a
   non-reference one), and its alignment to the reference is composed through the
   haplotype's. A composed alignment whose indel could move left is discarded (the read
   keeps its own).

The rules, parameters and tie-breaks follow DeepVariant's realigner (window_selector,
debruijn_graph, fast_pass_aligner) and libssw's, reimplemented here; docs/pileup.md says
what the golden examples show of the result.
"""

from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pysam
from numba import njit

M, I, D, N_, S = 0, 1, 2, 3, 4  # pysam CIGAR codes (=, X read as M)
_ALIGNED = (0, 7, 8)
_CANON = frozenset("ACGT")
_NEG = -(1 << 28)


@dataclass(frozen=True)
class RealignerOptions:
    ws_min_mapq: int = 20
    ws_min_base_quality: int = 20
    ws_min_support: int = 2
    ws_max_support: int = 300
    ws_min_windows_distance: int = 80
    ws_max_window_size: int = 1000
    ws_region_expansion: int = 20
    dbg_min_k: int = 10
    dbg_max_k: int = 101
    dbg_min_mapq: int = 14
    dbg_min_base_quality: int = 15
    dbg_min_edge_weight: int = 2
    dbg_max_num_paths: int = 256
    match: int = 4
    mismatch: int = 6
    gap_open: int = 8
    gap_extend: int = 2
    kmer_size: int = 32
    max_num_mismatches: int = 2
    ref_padding: int = 20
    max_read_length: int = 500  # longer reads are never realigned


OPTIONS = RealignerOptions()


# ---------------------------------------------------------------- 1. windows
def candidate_windows(alns: list[pysam.AlignedSegment], ref: str, start: int, end: int,
                      opt: RealignerOptions = OPTIONS) -> list[tuple[int, int]]:
    """The realignment windows of the partition [start, end) of a contig whose sequence is ``ref``."""
    cs, ce = max(0, start - opt.ws_region_expansion), min(len(ref), end + opt.ws_region_expansion)
    counts = np.zeros(max(ce - cs, 0), dtype=np.int64)
    for a in alns:
        if a.mapping_quality < opt.ws_min_mapq:
            continue
        for lo, hi in _read_allele_spans(a, ref, cs, ce, opt.ws_min_base_quality):
            lo, hi = max(lo, cs), min(hi, ce)
            if lo < hi:
                counts[lo - cs:hi - cs] += 1
    cand = cs + np.nonzero((counts >= opt.ws_min_support) & (counts <= opt.ws_max_support))[0]
    # reads reaching past the partition count, but only positions inside it are candidates
    # (DeepVariant 1.5's window selector; later releases keep the expanded region's too)
    cand = cand[(cand >= start) & (cand < end)]
    windows: list[tuple[int, int]] = []
    d = opt.ws_min_windows_distance
    first = last = None
    for p in cand.tolist():
        if last is not None and p > last + 2 * d:
            windows.append((first - d, last + d))
            first = None
        if first is None:
            first = p
        last = p
    if first is not None:
        windows.append((first - d, last + d))
    return windows


def _read_allele_spans(a: pysam.AlignedSegment, ref: str, cs: int, ce: int, min_bq: int) -> list[tuple[int, int]]:
    """The position ranges one read's alleles add to in the window selector's count, one
    allele per anchor position (an indel or clip replaces a mismatch at its anchor)."""
    seq, qual, cigar = a.query_sequence, a.query_qualities, a.cigartuples
    if not seq or cigar is None:
        return []
    seq = seq.upper()
    alleles: dict[int, tuple[int, int]] = {}  # anchor -> span (the latest allele at an anchor wins)
    r, q = a.reference_start, 0

    def prev_base(q_at: int, r_at: int) -> str:
        return seq[q_at - 1] if q_at > 0 else (ref[r_at - 1] if r_at > 0 else "")

    for op, n in cigar:
        if op in _ALIGNED:
            for k in range(n):
                b = seq[q + k]
                if b in _CANON and b != ref[r + k] and qual[q + k] >= min_bq and cs <= r + k < ce:
                    alleles[r + k] = (r + k, r + k + 1)
            r += n
            q += n
        elif op in (I, S):
            anchor = r - 1
            bases = seq[q:q + n]
            if (cs <= anchor < ce and prev_base(q, r) in _CANON and set(bases) <= _CANON
                    and sum(qual[q:q + n]) >= min_bq * n):
                alleles[anchor] = (anchor + 1 - n, anchor + 1 + n)
            q += n
        elif op == D:
            anchor = r - 1
            if cs <= anchor < ce and prev_base(q, r) in _CANON and r + n <= len(ref) and set(ref[r:r + n]) <= _CANON:
                alleles[anchor] = (r, r + n)
            r += n
        elif op == N_:
            r += n
    return list(alleles.values())


# ---------------------------------------------------------------- 2. haplotypes
def haplotypes(ref: str, alns: list[pysam.AlignedSegment], opt: RealignerOptions = OPTIONS) -> list[str]:
    """The window's candidate haplotypes (sorted; the reference among them), [ref] when no
    graph can be built, [] when there are more than ``dbg_max_num_paths`` paths."""
    ref = ref.upper()
    max_k = min(opt.dbg_max_k, len(ref) - 1)
    k = opt.dbg_min_k
    while k <= max_k and len({ref[j:j + k] for j in range(len(ref) - k + 1)}) < len(ref) - k + 1:
        k += 1
    reads = [(a.query_sequence.upper(), a.query_qualities) for a in alns
             if a.mapping_quality >= opt.dbg_min_mapq and a.query_sequence and a.query_qualities is not None]
    while k <= max_k:
        graph = _graph(ref, reads, k, opt.dbg_min_base_quality)
        if not _has_cycle(graph):
            return _paths(graph, ref[:k], ref[-k:], opt)
        k += 1
    return [ref]


def _graph(ref: str, reads: list, k: int, min_bq: int) -> dict[str, dict[str, list]]:
    g: dict[str, dict[str, list]] = {}

    def edge(u: str, v: str, is_ref: bool) -> None:
        g.setdefault(v, {})
        e = g.setdefault(u, {}).get(v)
        if e is None:
            g[u][v] = [1, is_ref]
        else:
            e[0] += 1
            e[1] = e[1] or is_ref

    for j in range(len(ref) - k):
        edge(ref[j:j + k], ref[j + 1:j + 1 + k], True)
    for seq, qual in reads:
        good = [b in _CANON and qv >= min_bq for b, qv in zip(seq, qual)]
        s = 0
        while s < len(seq):
            if not good[s]:
                s += 1
                continue
            e = s
            while e < len(seq) and good[e]:
                e += 1
            for j in range(s, e - k):
                edge(seq[j:j + k], seq[j + 1:j + 1 + k], False)
            s = e
    return g


def _has_cycle(g: dict[str, dict[str, list]]) -> bool:
    color: dict[str, int] = {}
    for root in g:
        if root in color:
            continue
        color[root] = 1
        stack = [(root, iter(g[root]))]
        while stack:
            u, it = stack[-1]
            v = next(it, None)
            if v is None:
                color[u] = 2
                stack.pop()
            elif color.get(v) == 1:
                return True
            elif v not in color:
                color[v] = 1
                stack.append((v, iter(g[v])))
    return False


def _paths(g: dict[str, dict[str, list]], source: str, sink: str, opt: RealignerOptions) -> list[str]:
    succ = {u: [v for v, (w, is_ref) in vs.items() if is_ref or w >= opt.dbg_min_edge_weight] for u, vs in g.items()}
    fwd = _reach(source, succ)
    pred: dict[str, list[str]] = {}
    for u, vs in succ.items():
        for v in vs:
            pred.setdefault(v, []).append(u)
    keep = fwd & _reach(sink, pred)
    succ = {u: [v for v in succ[u] if v in keep] for u in keep}
    done: list[list[str]] = []
    queue: deque[list[str]] = deque([[source]])
    while queue:
        if len(done) + len(queue) > opt.dbg_max_num_paths:
            return []
        p = queue.popleft()
        for w in succ.get(p[-1], []):
            (done if w == sink or not succ.get(w) else queue).append(p + [w])
    return sorted("".join(v[0] for v in p) + p[-1][1:] for p in done)


def _reach(start: str, adj: dict[str, list[str]]) -> set[str]:
    seen, stack = {start}, [start]
    while stack:
        for v in adj.get(stack.pop(), []):
            if v not in seen:
                seen.add(v)
                stack.append(v)
    return seen


# ---------------------------------------------------------------- Smith-Waterman (libssw's conventions)
def smith_waterman(query: str, target: str, opt: RealignerOptions = OPTIONS) -> Optional[tuple[int, int, list]]:
    """Local alignment of ``query`` in ``target`` as libssw reports it: (score, target
    begin, CIGAR [(op, n)] with the unaligned query ends as S), or None when nothing scores.
    A gap of length L costs gap_open + (L - 1) * gap_extend; N scores 0 against anything.
    Ties: the end at the leftmost target column (then the smallest query index), the begin
    at the rightmost target column (then the largest query index), and in the traceback
    the diagonal before a gap, a deletion before an insertion, extending before opening."""
    q, t = _codes(query), _codes(target)
    score, qe, te = _best_end(q, t, opt)
    if score <= 0:
        return None
    _, rqb, rtb = _best_end(q[:qe + 1][::-1], t[:te + 1][::-1], opt, want=score)
    qb, tb = qe - rqb, te - rtb
    ops = _global_traceback(q[qb:qe + 1], t[tb:te + 1], opt)
    cigar = ([(S, qb)] if qb else []) + ops + ([(S, len(q) - qe - 1)] if qe < len(q) - 1 else [])
    return score, tb, cigar


def _codes(s: str) -> np.ndarray:
    a = np.frombuffer(s.upper().encode(), dtype=np.uint8).copy()
    a[~np.isin(a, np.frombuffer(b"ACGT", dtype=np.uint8))] = ord("N")
    return a


def _best_end(q: np.ndarray, t: np.ndarray, opt: RealignerOptions, want: Optional[int] = None) -> tuple[int, int, int]:
    """(best local score, its query end, target end): the leftmost target column reaching
    the best (or ``want``), then the smallest query index in it."""
    H = _local_matrix(q, t, opt.match, opt.mismatch, opt.gap_open, opt.gap_extend)
    best = int(H.max()) if want is None else want
    if best <= 0:
        return 0, -1, -1
    cols = np.nonzero((H[1:, 1:] >= best).any(axis=0))[0]
    j = int(cols[0])
    i = int(np.nonzero(H[1:, j + 1] >= best)[0][0])
    return best, i, j


def _global_traceback(q: np.ndarray, t: np.ndarray, opt: RealignerOptions) -> list[tuple[int, int]]:
    """Global Gotoh alignment of q against t (both aligned end to end), traced back from the
    end with libssw's preferences; returns CIGAR ops M / I / D."""
    o, x = opt.gap_open, opt.gap_extend
    H, E, F = _global_matrices(q, t, opt.match, opt.mismatch, o, x)
    m, n = len(q), len(t)
    ops: list[tuple[int, int]] = []
    i, j, state = m, n, "H"
    while i > 0 or j > 0:
        if state == "H":
            if i > 0 and j > 0 and H[i, j] == H[i - 1, j - 1] + _score(q[i - 1], t[j - 1], opt.match, opt.mismatch):
                _push(ops, M)
                i, j = i - 1, j - 1
                continue
            state = "E" if j > 0 and H[i, j] == E[i, j] else "F"
        if state == "E":
            _push(ops, D)
            state = "E" if j > 1 and E[i, j] == E[i, j - 1] - x else "H"
            j -= 1
        else:
            _push(ops, I)
            state = "F" if i > 1 and F[i, j] == F[i - 1, j] - x else "H"
            i -= 1
    ops.reverse()
    return ops


# The dynamic-programming fills, compiled with numba: the rules (libssw's scores and tie-breaks,
# which decide where DeepVariant puts a read) are not those of an alignment library's API,
# and in plain numpy these loops were 55 % of make_examples' time with the realigner on.
_N = ord("N")


@njit(cache=True)
def _score(a, b, match, mismatch):  # pragma: no cover - compiled
    if a == _N or b == _N:
        return 0
    return match if a == b else -mismatch


@njit(cache=True)
def _local_matrix(q, t, match, mismatch, o, x):  # pragma: no cover - compiled
    """Smith-Waterman scores H (m+1 x n+1), affine gaps: a gap of L costs o + (L-1) x."""
    m, n = len(q), len(t)
    H = np.zeros((m + 1, n + 1), dtype=np.int64)
    F = np.full(n + 1, _NEG, dtype=np.int64)
    hp = np.zeros(n + 1, dtype=np.int64)
    for i in range(1, m + 1):
        for j in range(n + 1):
            F[j] = max(H[i - 1, j] - o, F[j] - x)
        hp[0] = 0
        for j in range(1, n + 1):
            hp[j] = max(max(H[i - 1, j - 1] + _score(q[i - 1], t[j - 1], match, mismatch), F[j]), 0)
        # E[j] = max over k < j of hp[k] - o - (j - 1 - k) x (opening from a gap cell never
        # beats extending it, as o >= x)
        run = _NEG
        H[i, 0] = hp[0]
        for j in range(1, n + 1):
            run = max(run, hp[j - 1] + (j - 1) * x)
            H[i, j] = max(hp[j], run - o - (j - 1) * x)
    return H


@njit(cache=True)
def _global_matrices(q, t, match, mismatch, o, x):  # pragma: no cover - compiled
    """Global Gotoh matrices H, E (gap in the query: D), F (gap in the target: I)."""
    m, n = len(q), len(t)
    H = np.full((m + 1, n + 1), _NEG, dtype=np.int64)
    E = np.full((m + 1, n + 1), _NEG, dtype=np.int64)
    F = np.full((m + 1, n + 1), _NEG, dtype=np.int64)
    H[0, 0] = 0
    for j in range(1, n + 1):
        E[0, j] = -o - (j - 1) * x
        H[0, j] = E[0, j]
    hp = np.zeros(n + 1, dtype=np.int64)
    for i in range(1, m + 1):
        for j in range(n + 1):
            F[i, j] = max(H[i - 1, j] - o, F[i - 1, j] - x)
        F[i, 0] = -o - (i - 1) * x
        hp[0] = F[i, 0]
        for j in range(1, n + 1):
            hp[j] = max(H[i - 1, j - 1] + _score(q[i - 1], t[j - 1], match, mismatch), F[i, j])
        run = _NEG
        H[i, 0] = hp[0]
        for j in range(1, n + 1):
            run = max(run, hp[j - 1] + (j - 1) * x)
            E[i, j] = run - o - (j - 1) * x
            H[i, j] = max(hp[j], E[i, j])
    return H, E, F


def _push(ops: list, op: int, n: int = 1) -> None:
    if ops and ops[-1][0] == op:
        ops[-1] = (op, ops[-1][1] + n)
    else:
        ops.append((op, n))


# ---------------------------------------------------------------- 3. realignment
@dataclass
class _Hap:
    seq: str
    score: int = 0
    is_ref: bool = False
    ref_pos: int = 0
    shift: Optional[list[int]] = None  # haplotype offset -> shift to its reference offset
    ops: Optional[list[tuple[int, int]]] = None  # haplotype-to-reference CIGAR


def realign_partition(alns: list[pysam.AlignedSegment], ref: str, start: int, end: int,
                      opt: RealignerOptions = OPTIONS) -> tuple[list[pysam.AlignedSegment], int]:
    """The partition's reads with those in realignment windows realigned (new position and
    CIGAR; everything else kept), in DeepVariant's order: long reads, reads in no window,
    then each window's reads. Returns (reads, number realigned)."""
    long_reads = [a for a in alns if len(a.query_sequence or "") > opt.max_read_length]
    short = [a for a in alns if len(a.query_sequence or "") <= opt.max_read_length]
    kept: list[tuple[int, int, list[str]]] = []
    for ws, we in candidate_windows(short, ref, start, end, opt):
        if we - ws > opt.ws_max_window_size or ws < 0 or we > len(ref):
            continue
        in_window = [a for a in short if a.reference_start < we and (a.reference_end or a.reference_start) > ws]
        haps = haplotypes(ref[ws:we], in_window, opt)
        if haps and haps != [ref[ws:we].upper()]:
            kept.append((ws, we, haps))
    if not kept:
        return alns, 0
    groups: list[list[pysam.AlignedSegment]] = [[] for _ in kept]
    lone = []
    for a in short:
        a0, a1 = a.reference_start, a.reference_end or a.reference_start
        overlaps = [min(a1, we) - max(a0, ws) for ws, we, _ in kept]
        best = max(range(len(kept)), key=lambda i: (overlaps[i], -i))
        (groups[best] if overlaps[best] > 0 else lone).append(a)
    out, moved = long_reads + lone, 0
    for (ws, we, haps), reads in zip(kept, groups):
        done, n = _realign_window(reads, haps, ref, ws, we, opt)
        out += done
        moved += n
    return out, moved


def _realign_window(reads: list[pysam.AlignedSegment], haps: list[str], ref: str, ws: int, we: int,
                    opt: RealignerOptions) -> tuple[list[pysam.AlignedSegment], int]:
    if not reads:
        return reads, 0
    r0 = max(0, min(min(a.reference_start for a in reads), ws) - opt.ref_padding)
    r1 = min(len(ref), max(max(a.reference_end or a.reference_start for a in reads), we) + opt.ref_padding)
    if r1 <= we:
        return reads, 0
    prefix, suffix = ref[r0:ws].upper(), ref[we:r1].upper()
    reference = prefix + ref[ws:we].upper() + suffix
    targets = [_Hap(prefix + h + suffix) for h in haps]
    seqs = [(a.query_sequence or "").upper() for a in reads]
    k = opt.kmer_size
    index: dict[str, list[tuple[int, int]]] = {}
    for rid, sq in enumerate(seqs):
        if len(sq) > k:
            for o in range(len(sq) - k + 1):
                index.setdefault(sq[o:o + k], []).append((rid, o))
    # per haplotype, per read: (score, position on the haplotype, CIGAR)
    found: list[list[Optional[tuple[int, int, list]]]] = []
    for h in targets:
        h.is_ref = h.seq == reference
        best: list[Optional[tuple[int, int, list]]] = [None] * len(reads)
        cov = np.zeros(len(h.seq), dtype=np.int64)
        for i in range(len(h.seq) - k + 1):
            for rid, off in index.get(h.seq[i:i + k], ()):
                st, L = max(0, i - off), len(seqs[rid])
                if st + L > len(h.seq) or (best[rid] is not None and best[rid][1] == st):
                    continue
                sc = _fast_compare(h.seq[st:st + L], seqs[rid], opt)
                if sc is not None:
                    cov[st:st + L] += 1
                    if (best[rid][0] if best[rid] else 0) < sc:
                        h.score += sc - (best[rid][0] if best[rid] else 0)
                        best[rid] = (sc, st, [(M, L)])
        # a non-reference haplotype with a window base no placed read covers is dropped. Checked
        # once all 32-mers are placed: DeepVariant's current source checks each base as the
        # scan passes it (a read found by a later 32-mer then covers it too late), but 1.5's
        # golden examples agree with this (calling: 64 / 64 identical SNP images, against 58)
        if not h.is_ref and (cov[len(prefix):len(h.seq) - len(suffix)] == 0).any():
            h.score = 0
        found.append(best if h.score else [None] * len(reads))
        if h.is_ref:
            h.ref_pos, h.ops = 0, [(M, len(h.seq))]
        elif h.score:  # (a haplotype with no read on it is never chosen: no need to align it)
            sw = smith_waterman(h.seq, reference, opt)
            if sw is not None:
                _, h.ref_pos, h.ops = sw
        if h.ops is not None:
            h.shift = _shift_map(h.ops)
    for rid in range(len(reads)):  # reads no haplotype placed: Smith-Waterman on each scoring one
        if all(f[rid] is None for f in found):
            for hi, h in enumerate(targets):
                if h.score:
                    sw = smith_waterman(seqs[rid], h.seq, opt)
                    if sw is not None:
                        found[hi][rid] = (sw[0], sw[1], sw[2])
    order = sorted(range(len(targets)), key=lambda hi: targets[hi].score)  # stable: DeepVariant's for <= 16
    out, moved = [], 0
    for rid, a in enumerate(reads):
        pick, top = None, 0
        for hi in order:
            f = found[hi][rid]
            if f is None or targets[hi].ops is None:
                continue
            if f[0] > top or (top > 0 and f[0] == top and not targets[hi].is_ref):
                pick, top = hi, f[0]
        new = None
        if pick is not None:
            h = targets[pick]
            _, rpos, rops = found[pick][rid]
            ops = _compose(len(seqs[rid]), rpos, rops, h.ops)
            at = h.ref_pos + rpos + h.shift[rpos]
            if ops and _normalized(ops, at, seqs[rid], reference):
                new = copy.copy(a)
                new.cigartuples = ops
                new.reference_start = r0 + at
        if new is not None and (new.reference_start != a.reference_start or new.cigartuples != a.cigartuples):
            moved += 1
        out.append(new if new is not None else a)
    return out, moved


def _fast_compare(h: str, r: str, opt: RealignerOptions) -> Optional[int]:
    mm = 0
    for x, y in zip(h, r):
        if x != y and x != "N" and y != "N":
            mm += 1
            if mm > opt.max_num_mismatches:
                return None
    return opt.match * (len(r) - mm) - opt.mismatch * mm


def _shift_map(ops: list[tuple[int, int]]) -> list[int]:
    """Haplotype offset -> what to add to reach its reference offset (past ref_pos)."""
    out: list[int] = []
    shift = 0
    for op, n in ops:
        if op == M:
            out += [shift] * n
        elif op == S:
            shift -= n
            out += [shift] * n
        elif op == D:
            shift += n
        elif op == I:
            for _ in range(n):
                out.append(shift)
                shift -= 1
    return out


def _compose(read_len: int, rpos: int, read_ops: list, hap_ops: list) -> list[tuple[int, int]]:
    """The read's CIGAR against the reference: its CIGAR against the haplotype (from
    haplotype offset ``rpos``) through the haplotype's CIGAR against the reference."""
    R = deque(list(o) for o in read_ops)
    H = deque(list(o) for o in _left_trim(hap_ops, rpos))
    out: list[list[int]] = []

    def aligned() -> int:
        return sum(n for op, n in out if op != D)

    def merge(op: int, n: int) -> None:
        a = aligned()
        n = n if op == D else min(n, read_len - a)
        if n <= 0 or a == read_len:
            return
        last = out[-1][0] if out else None
        if (op == I and last == D) or (op == D and last == I):
            prev = out[-2] if len(out) >= 2 else out[-1]
            if prev[0] != M:
                out.insert(len(out) - 1, [M, 1])
            else:
                prev[1] += 1
            out[-1][1] -= 1
            if out[-1][1] == 0:
                out.pop()
        elif op == last:
            out[-1][1] += n
        else:
            out.append([op, n])

    if R and R[0][0] == S:
        merge(*R.popleft())
    cr, ch = [None, 0], [None, 0]
    while (R or H) and aligned() < read_len:
        if R and not H and ch[1] == 0:
            merge(*R.popleft())
            continue
        if not R and cr[1] == 0 and H:
            break
        if cr[1] == 0:
            cr = R.popleft()
        if ch[1] == 0:
            ch = H.popleft()
        while cr[1] > 0 and ch[1] > 0:
            if (cr[0] == D and ch[0] == I) or (cr[0] == I and ch[0] == D):
                cr[1] -= 1
                ch[1] -= 1
                if ch[0] == D:
                    H.appendleft([M, 1])
                    R.appendleft([M, 1])
                continue
            for t in (S, D, I, M):
                if cr[0] == t or ch[0] == t:
                    merge(t, 1)
                    break
            if cr[0] == I:
                cr[1] -= 1
            elif ch[0] == D:
                ch[1] -= 1
            else:
                cr[1] -= 1
                ch[1] -= 1
    return [(op, n) for op, n in out if n > 0]


def _left_trim(ops: list, pos: int) -> list[tuple[int, int]]:
    q = deque(ops)
    cur = 0
    while cur != pos and q:
        op, n = q.popleft()
        if op in (M, S, I, 5):
            if cur + n > pos:
                q.appendleft((op, n - (pos - cur)))
            cur = min(cur + n, pos)
    if q and q[0][0] == D:
        q.popleft()
    return list(q)


def _normalized(ops: list, ref_i: int, read: str, reference: str) -> bool:
    """False when an insertion or deletion of the composed alignment could move left."""
    read_i = 0
    for op, n in ops:
        if op == S:
            read_i += n
        elif op == M:
            read_i += n
            ref_i += n
        elif op == I:
            if ref_i > 0 and read[read_i + n - 1] == reference[ref_i - 1]:
                return False
            read_i += n
        elif op == D:
            if ref_i + n > len(reference) or (read_i > 0 and reference[ref_i + n - 1] == read[read_i - 1]):
                return False
            ref_i += n
    return True
