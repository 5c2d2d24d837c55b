"""Simulate a small, realistic-ish training dataset: reference, diploid truth, reads.

``simulate(config)`` writes into ``config.outdir``::

    ref.fa, ref.fa.fai          the genome (contigs in config order, 60 bases a line)
    truth.vcf.gz, .tbi          phased diploid truth (SNPs + indels), left-normalised
    truth.bed                   confident regions: contigs minus ends and segdups (+pad)
    segdups.bed                 both copies of every segmental duplication
    <profile>.bam, .bai         paired reads per profile, aligned with minimap2 (mappy)
    dataset.json                parameters, seed, output names and realised counts

Everything is seeded from ``config.seed``; every stage draws from its own generator
keyed by (seed, stage, contig[, profile, haplotype]), so the output does not depend on
thread scheduling, and the same config gives byte-identical files.

Reads carry their true origin in the name: ``r<index>:<hap><strand>:<start>-<end>:<contig>``
where start/end are the 0-based, half-open *reference* coordinates of the fragment and
strand ``+`` means read 1 starts at ``start`` (forward) and read 2 ends at ``end``
(reverse); ``-`` swaps the two. Unmapped reads are kept (flag 4): a read whose mate
mapped is placed at its mate's position; pairs with neither read mapped come last.
Only each read's primary alignment is written (no secondary/supplementary records).
"""

from __future__ import annotations

import json
import os
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bed import IntervalIndex, write_bed
from .config import ProfileConfig, SimulateConfig
from .errors import DvtrainError
from .fileio import atomic_output
from .variants import normalize, vcf_header, write_bgzip_vcf

# base codes: A=0 C=1 G=2 T=3; complement is 3 - code
_LUT = np.frombuffer(b"ACGT", dtype=np.uint8)
_ENC = np.full(256, 255, dtype=np.uint8)
for _i, _b in enumerate(b"ACGT"):
    _ENC[_b] = _i
_TRANSITION = {"A": "G", "G": "A", "C": "T", "T": "C"}
_TRANSVERSIONS = {"A": ("C", "T"), "G": ("C", "T"), "C": ("A", "G"), "T": ("A", "G")}
_RC = str.maketrans("ACGTN", "TGCAN")

EDGE = 1000  # bases excluded from truth.bed at each contig end
SEGDUP_PAD = 100  # bases excluded around each segdup copy
VARIANT_GAP = 10  # minimum distance between variant footprints
MAX_INDEL = 20
_CHUNK = 1000  # read pairs per mapping task
QUAL_SD = 4.0  # spread of base qualities (Phred) around a cycle's mean
QUAL_DROPOUT = 0.015  # bases whose quality drops to 2-15 (and whose error rate rises with it)


def _rng(seed: int, *keys) -> np.random.Generator:
    """A generator for one (stage, contig, ...) key; independent of call order."""
    ints = [seed % (1 << 63)]
    for k in keys:
        ints.append(k if isinstance(k, int) else zlib.crc32(str(k).encode()))
    return np.random.default_rng(ints)


def _decode(arr: np.ndarray) -> str:
    return _LUT[arr].tobytes().decode("ascii")


def _encode(s: str) -> np.ndarray:
    return _ENC[np.frombuffer(s.encode("ascii"), dtype=np.uint8)]


def _revcomp(s: str) -> str:
    return s.translate(_RC)[::-1]


def _true_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


# ------------------------------------------------------------------ genome
def _random_bases(rng: np.random.Generator, n: int, gc) -> np.ndarray:
    u = rng.random(n)
    gc = np.broadcast_to(gc, (n,))
    return np.where(u < gc / 2, 1, np.where(u < gc, 2, np.where(u < gc + (1 - gc) / 2, 0, 3))).astype(np.uint8)


def _mutate(rng: np.random.Generator, arr: np.ndarray, sub_rate: float, indel_rate: float = 0.0) -> np.ndarray:
    out = arr.copy()
    hit = np.flatnonzero(rng.random(len(out)) < sub_rate)
    out[hit] = (out[hit] + rng.integers(1, 4, len(hit))) % 4
    if indel_rate > 0:
        pos = np.flatnonzero(rng.random(len(out)) < indel_rate)
        if len(pos):
            lst = list(out)
            for p in pos[::-1].tolist():
                n = int(rng.integers(1, 4))
                if rng.random() < 0.5:
                    del lst[p : p + n]
                else:
                    lst[p:p] = rng.integers(0, 4, n).tolist()
            out = np.asarray(lst, dtype=np.uint8)
    return out


def _repeat_families(seed: int) -> list[np.ndarray]:
    """A few interspersed-repeat consensus sequences (~300 bp; two with a poly-A tail)."""
    rng = _rng(seed, "repeat-families")
    fams = []
    for i in range(5):
        body = _random_bases(rng, int(rng.integers(260, 330)), 0.52)
        if i < 2:
            body = np.concatenate([body, np.zeros(int(rng.integers(10, 20)), dtype=np.uint8)])
        fams.append(body)
    return fams


def _put(seq: np.ndarray, start: int, block: np.ndarray) -> None:
    end = min(len(seq), start + len(block))
    seq[start:end] = block[: end - start]


@dataclass
class Contig:
    name: str
    seq: np.ndarray  # uint8 codes
    segdups: list[tuple[int, int, str]]  # (start, end, name), both copies


def _make_contig(name: str, length: int, seed: int, families: list[np.ndarray], segdup_count: int) -> Contig:
    rng = _rng(seed, "genome", name)
    # background: GC varies between ~20 kb "isochores" around 41%; CpG depleted
    block = 20_000
    gc_blk = np.clip(rng.normal(0.43, 0.035, length // block + 1), 0.33, 0.52)
    seq = _random_bases(rng, length, np.repeat(gc_blk, block)[:length])
    cg = np.flatnonzero((seq[:-1] == 1) & (seq[1:] == 2))
    cg = cg[rng.random(len(cg)) < 0.75]
    to_t = rng.random(len(cg)) < 0.5
    seq[cg[to_t]] = 3  # CG -> TG
    seq[cg[~to_t] + 1] = 0  # CG -> CA

    # interspersed repeats: ~1 copy per 4 kb, 10-15% diverged, some 5'-truncated
    for _ in range(length // 4000):
        fam = families[int(rng.integers(len(families)))]
        copy = fam if rng.random() < 0.7 else fam[int(rng.integers(0, len(fam) - 100)) :]
        div = rng.uniform(0.10, 0.15)
        copy = _mutate(rng, copy, div * 0.9, div * 0.1 / 2)
        if rng.random() < 0.5:
            copy = (3 - copy)[::-1]
        _put(seq, int(rng.integers(0, max(1, length - len(copy)))), copy)

    # short tandem repeats: unit 2-6, 3+ copies, some with an impurity
    for _ in range(length // 2500):
        p = int(rng.integers(2, 7))
        unit = rng.integers(0, 4, p).astype(np.uint8)
        while len(set(unit.tolist())) == 1:
            unit = rng.integers(0, 4, p).astype(np.uint8)
        copies = min(3 + int(rng.geometric(0.15)) - 1, max(3, 60 // p))
        run = np.tile(unit, copies)
        if rng.random() < 0.2:
            run = _mutate(rng, run, 1.0 / len(run))
        _put(seq, int(rng.integers(0, length - len(run))), run)

    # homopolymers up to 15, mostly A/T
    for _ in range(length // 1500):
        n = min(15, 5 + int(rng.geometric(0.22)) - 1)
        base = int(rng.choice([0, 3])) if rng.random() < 0.8 else int(rng.choice([1, 2]))
        _put(seq, int(rng.integers(0, length - n)), np.full(n, base, dtype=np.uint8))

    # segmental duplications: a 2-5 kb block copied elsewhere with <2% divergence
    segdups: list[tuple[int, int, str]] = []
    lo, hi = min(EDGE, length // 10), length - min(EDGE, length // 10)
    cap = (hi - lo) // (10 * max(1, segdup_count))  # small contigs get smaller segdups
    taken: list[tuple[int, int]] = []

    def free(s: int, e: int) -> bool:
        return all(e + 300 <= a or s >= b + 300 for a, b in taken)

    for k in range(segdup_count):
        size = min(int(rng.integers(2000, 5001)), cap)
        if size < 300:
            break
        for _attempt in range(200):
            src = int(rng.integers(lo, hi - size))
            dst = int(rng.integers(lo, hi - size))
            if abs(src - dst) >= size + 300 and free(src, src + size) and free(dst, dst + size):
                break
        else:
            continue
        copy = _mutate(rng, seq[src : src + size], rng.uniform(0.003, 0.015))
        if rng.random() < 0.3:
            copy = (3 - copy)[::-1]
        seq[dst : dst + size] = copy
        taken += [(src, src + size), (dst, dst + size)]
        segdups += [(src, src + size, f"{name}_sd{k + 1}_a"), (dst, dst + size, f"{name}_sd{k + 1}_b")]
    segdups.sort()
    return Contig(name, seq, segdups)


def _repeat_runs(seq: np.ndarray) -> list[tuple[int, int, int]]:
    """Homopolymers >= 4 and STRs (unit 2-6, >= 3 copies) as (start, end, unit length)."""
    runs: list[tuple[int, int, int]] = []
    covered = np.zeros(len(seq), dtype=bool)
    s, e = _true_runs(seq[:-1] == seq[1:])
    for a, b in zip(s.tolist(), e.tolist()):
        if b + 1 - a >= 4:
            runs.append((a, b + 1, 1))
            covered[a : b + 1] = True
    for p in range(2, 7):
        s, e = _true_runs(seq[:-p] == seq[p:])
        for a, b in zip(s.tolist(), e.tolist()):
            if b - a < 2 * p or covered[a : b + p].mean() > 0.5:
                continue
            runs.append((a, a + ((b + p - a) // p) * p, p))
            covered[a : b + p] = True
    runs.sort()
    return runs


# ------------------------------------------------------------------ truth variants
@dataclass(frozen=True)
class TruthVariant:
    pos: int  # 0-based
    ref: str
    alt: str
    gt: tuple[int, int]  # phased (hap0, hap1)
    in_repeat: bool = False

    @property
    def kind(self) -> str:
        if len(self.ref) == len(self.alt) == 1:
            return "SNP"
        return "INS" if len(self.alt) > len(self.ref) else "DEL"


def _right_end(ref: str, pos: int, r: str, a: str) -> int:
    """End of the region an indel can slide over (pos is its left-normalised anchor)."""
    n = len(ref)
    if len(r) > len(a):  # deletion of ref[s:e]
        s, e = pos + 1, pos + len(r)
        while e < n and ref[s] == ref[e]:
            s, e = s + 1, e + 1
        return e
    ins, at = a[1:], pos + 1
    while at < n and ins[0] == ref[at]:
        ins, at = ins[1:] + ref[at], at + 1
    return at


def _make_variants(contig: Contig, ref: str, config: SimulateConfig) -> list[TruthVariant]:
    rng = _rng(config.seed, "variants", contig.name)
    n = len(ref)
    occupied = np.zeros(n + 1, dtype=bool)
    p_het = config.het_hom_ratio / (1 + config.het_hom_ratio)
    p_ti = config.titv / (1 + config.titv)
    out: list[TruthVariant] = []
    fetch = lambda a, b: ref[a:b]  # noqa: E731

    def genotype() -> tuple[int, int]:
        if rng.random() < p_het:
            return (0, 1) if rng.random() < 0.5 else (1, 0)
        return (1, 1)

    def claim(start: int, end: int) -> bool:
        a, b = max(0, start - VARIANT_GAP), min(n, end + VARIANT_GAP)
        if start < 20 or end > n - 20 or occupied[a:b].any():
            return False
        occupied[a:b] = True
        return True

    def indel_length() -> int:
        while True:
            k = int(rng.geometric(0.45))
            if k <= 15:
                return k

    runs = [r for r in _repeat_runs(contig.seq) if r[0] >= 20 and r[1] <= n - 20]
    n_indel = int(rng.poisson(config.indel_rate * n))
    placed, attempts = 0, 0
    while placed < n_indel and attempts < 20 * n_indel + 100:
        attempts += 1
        is_del = rng.random() < 0.55
        if runs and rng.random() < 0.5:  # expand/contract a homopolymer or STR
            s, e, p = runs[int(rng.integers(len(runs)))]
            copies = (e - s) // p
            k = int(rng.geometric(0.6))
            if k * p > MAX_INDEL or (is_del and k >= copies):
                continue
            anchor = ref[s - 1]
            if is_del:
                r, a = ref[s - 1 : s + k * p], anchor
            else:
                r, a = anchor, anchor + ref[s : s + p] * k
            pos, in_repeat = s - 1, True
        else:
            pos = int(rng.integers(20, n - 40))
            k = indel_length()
            if is_del:
                r, a = ref[pos : pos + k + 1], ref[pos]
            else:
                if rng.random() < 0.3:  # tandem duplication of the following bases
                    ins = ref[pos + 1 : pos + 1 + k]
                else:
                    ins = _decode(_random_bases(rng, k, 0.4))
                r, a = ref[pos], ref[pos] + ins
            in_repeat = False
        pos, r, a = normalize(pos, r, a, fetch)
        if len(r) == len(a):
            continue
        if not claim(pos, _right_end(ref, pos, r, a)):
            continue
        out.append(TruthVariant(pos, r, a, genotype(), in_repeat))
        placed += 1

    n_snp = int(rng.poisson(config.snp_rate * n))
    placed, attempts = 0, 0
    while placed < n_snp and attempts < 20 * n_snp + 100:
        attempts += 1
        pos = int(rng.integers(20, n - 20))
        b = ref[pos]
        alt = _TRANSITION[b] if rng.random() < p_ti else _TRANSVERSIONS[b][int(rng.integers(2))]
        if not claim(pos, pos + 1):
            continue
        out.append(TruthVariant(pos, b, alt, genotype()))
        placed += 1
    out.sort(key=lambda v: v.pos)
    return out


@dataclass
class Haplotype:
    seq: np.ndarray
    hap_bp: np.ndarray  # hap positions where the hap->ref shift changes
    shift: np.ndarray  # hap - ref after each breakpoint

    def to_ref(self, x: np.ndarray, ref_len: int) -> np.ndarray:
        i = np.searchsorted(self.hap_bp, x, side="right") - 1
        return np.clip(x - self.shift[i], 0, ref_len)


def _haplotype(ref: str, variants: list[TruthVariant], h: int) -> Haplotype:
    parts, bp, shift = [], [0], [0]
    cur = hap_len = 0
    for v in variants:
        if v.gt[h] == 0:
            continue
        parts.append(ref[cur : v.pos])
        parts.append(v.alt)
        hap_len += v.pos - cur + len(v.alt)
        cur = v.pos + len(v.ref)
        bp.append(hap_len)
        shift.append(hap_len - cur)
    parts.append(ref[cur:])
    return Haplotype(_encode("".join(parts)), np.asarray(bp), np.asarray(shift))


# ------------------------------------------------------------------ reads
def _homopolymer_mask(seq: np.ndarray, min_len: int = 4) -> np.ndarray:
    mask = np.zeros(len(seq), dtype=bool)
    s, e = _true_runs(seq[:-1] == seq[1:])
    for a, b in zip(s.tolist(), e.tolist()):
        if b + 1 - a >= min_len:
            mask[a : b + 1] = True
    return mask


def _sequence_reads(
    rng: np.random.Generator, templ: np.ndarray, hp: np.ndarray, prof: ProfileConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the error model to (m, L+extra) templates; returns reads and qualities (m, L)."""
    m, L = len(templ), prof.read_length
    reads = templ[:, :L].copy()
    # homopolymer slippage: an extra or a missing base inside runs >= 4
    if prof.homopolymer_indel_rate > 0:
        ev = (rng.random((m, L)) < prof.homopolymer_indel_rate) & hp[:, :L]
        for row in np.flatnonzero(ev.any(axis=1)).tolist():
            lst = templ[row].tolist()
            for p in np.flatnonzero(ev[row])[::-1].tolist():
                if rng.random() < 0.5:
                    lst.insert(p, lst[p])
                else:
                    del lst[p]
            reads[row] = lst[:L]
    # platform-specific context error: G>T after GG (read direction)
    if prof.context_error_rate > 0:
        ctx = np.zeros((m, L), dtype=bool)
        ctx[:, 2:] = (reads[:, :-2] == 2) & (reads[:, 1:-1] == 2) & (reads[:, 2:] == 2)
        ctx &= rng.random((m, L)) < prof.context_error_rate
        reads[ctx] = 3
    # qualities first, then substitutions drawn from them, as a calibrated sequencer (or one
    # after base-quality recalibration) reports them: P(error | Q) = 10^(-Q/10). Per cycle the
    # mean rate follows the profile's sub_rate_start..end; a few bases drop to Q2-15. Nothing
    # else marks an error: the context errors above keep the quality drawn here, as a real
    # platform's systematic errors do. (Until 2026-12-07 three in four errors were given a low
    # quality whatever their cause, which no sequencer does: a model trained on it found 20-27%
    # fewer indels than bcftools on reads whose qualities are low throughout, and the
    # demo's 1-read SNP settings only paid on it; docs/accuracy.md, "Calibrated qualities".)
    qmax = prof.max_base_quality
    rate = np.linspace(prof.sub_rate_start, prof.sub_rate_end, L)
    mu = -10 * np.log10(rate) + QUAL_SD ** 2 * np.log(10) / 20  # so that E[10^(-q/10)] = rate
    q = np.rint(rng.normal(mu, QUAL_SD, (m, L)))
    dropout = rng.random((m, L)) < QUAL_DROPOUT
    q = np.clip(np.where(dropout, rng.integers(2, 16, (m, L)), q), 2, qmax)
    sub = rng.random((m, L)) < 10.0 ** (-q / 10)
    reads[sub] = (reads[sub] + rng.integers(1, 4, int(sub.sum()))) % 4
    return reads, q.astype(np.uint8)


def _simulate_pairs(
    config: SimulateConfig, prof: ProfileConfig, contigs: list[Contig], haps: dict[str, list[Haplotype]]
) -> list[tuple[str, str, str, str, str]]:
    """(name, read1, qual1, read2, qual2) for every pair of one profile, in a fixed order."""
    L = prof.read_length
    extra = 16
    pairs: list[tuple[str, str, str, str, str]] = []
    for c in contigs:
        for h, hap in enumerate(haps[c.name]):
            rng = _rng(config.seed, "reads", prof.name, c.name, h)
            hl = len(hap.seq)
            n = int(round(prof.coverage * hl / (4 * L)))
            if n == 0 or hl < L + 4 * extra:
                continue
            frag = np.rint(rng.normal(prof.insert_mean, prof.insert_sd, n)).astype(np.int64)
            frag = np.clip(frag, L, hl - 2 * extra)
            start = extra + (rng.random(n) * (hl - 2 * extra - frag + 1)).astype(np.int64)
            end = start + frag
            fwd_read1 = rng.random(n) < 0.5
            hp = _homopolymer_mask(hap.seq)
            cols = np.arange(L + extra)
            ia = start[:, None] + cols
            ib = (end - L - extra)[:, None] + cols
            templ = np.concatenate([hap.seq[ia], (3 - hap.seq[ib])[:, ::-1]])
            hpm = np.concatenate([hp[ia], hp[ib][:, ::-1]])
            reads, quals = _sequence_reads(rng, templ, hpm, prof)
            seqs = _decode(reads)
            qstr = (quals + 33).tobytes().decode("ascii")
            rs = hap.to_ref(start, len(c.seq)).tolist()
            re_ = (hap.to_ref(end - 1, len(c.seq)) + 1).tolist()
            for i in range(n):
                a, b = i, n + i  # forward template, reverse template
                if not fwd_read1[i]:
                    a, b = b, a
                name = f"r{len(pairs):07d}:{h}{'+' if fwd_read1[i] else '-'}:{rs[i]}-{re_[i]}:{c.name}"
                pairs.append(
                    (name, seqs[a * L : (a + 1) * L], qstr[a * L : (a + 1) * L], seqs[b * L : (b + 1) * L], qstr[b * L : (b + 1) * L])
                )
    return pairs


# ------------------------------------------------------------------ alignment
class _Mapper:
    def __init__(self, aligner, tids: dict[str, int], rg: str, max_insert: float):
        self.aligner = aligner
        self.tids = tids
        self.rg = rg
        self.max_insert = max_insert
        self._tls = threading.local()

    def map_chunk(self, chunk: list[tuple[str, str, str, str, str]]) -> list[tuple[tuple, str]]:
        import mappy

        buf = getattr(self._tls, "buf", None)
        if buf is None:
            buf = self._tls.buf = mappy.ThreadBuffer()
        out: list[tuple[tuple, str]] = []
        for name, s1, q1, s2, q2 in chunk:
            h1 = h2 = None
            for hit in self.aligner.map(s1, s2, buf=buf):
                if not hit.is_primary:
                    continue
                if hit.read_num == 1 and h1 is None:
                    h1 = hit
                elif hit.read_num == 2 and h2 is None:
                    h2 = hit
            out.extend(self._pair(name, (s1, q1, h1), (s2, q2, h2)))
        return out

    def _pair(self, name: str, r1, r2) -> list[tuple[tuple, str]]:
        h1, h2 = r1[2], r2[2]
        cig = [self._cigar(h, len(r[0])) if h is not None else "*" for r, h in ((r1, h1), (r2, h2))]
        tlen = [0, 0]
        proper = False
        if h1 is not None and h2 is not None and h1.ctg == h2.ctg:
            left, right = min(h1.r_st, h2.r_st), max(h1.r_en, h2.r_en)
            span = right - left
            first = 0 if (h1.r_st, 0) <= (h2.r_st, 1) else 1
            tlen[first], tlen[1 - first] = span, -span
            if h1.strand != h2.strand:
                fwd, rev = (h1, h2) if h1.strand > 0 else (h2, h1)
                proper = fwd.r_st <= rev.r_st + 1 and fwd.r_en <= rev.r_en + 1 and span <= self.max_insert
        out = []
        for i, (seq, qual, h) in enumerate((r1, r2)):
            m = (h2, h1)[i]
            flag = 0x1 | (0x40 if i == 0 else 0x80)
            if proper:
                flag |= 0x2
            if h is None:
                flag |= 0x4
            if m is None:
                flag |= 0x8
            elif m.strand < 0:
                flag |= 0x20
            if h is not None:
                if h.strand < 0:
                    flag |= 0x10
                    seq, qual = _revcomp(seq), qual[::-1]
                rname, pos, mapq, cigar = h.ctg, h.r_st, h.mapq, cig[i]
            elif m is not None:
                rname, pos, mapq, cigar = m.ctg, m.r_st, 0, "*"
            else:
                rname, pos, mapq, cigar = "*", -1, 0, "*"
            if m is not None:
                rnext, pnext = ("=" if m.ctg == rname else m.ctg), m.r_st
            elif h is not None:
                rnext, pnext = "=", pos
            else:
                rnext, pnext = "*", -1
            tags = []
            if h is not None:
                tags.append(f"NM:i:{h.NM}")
            if m is not None:
                tags.append(f"MC:Z:{cig[1 - i]}")
            tags.append(f"RG:Z:{self.rg}")
            line = "\t".join(
                [name, str(flag), rname, str(pos + 1), str(mapq), cigar, rnext, str(pnext + 1), str(tlen[i]), seq, qual, *tags]
            )
            tid = self.tids[rname] if rname != "*" else len(self.tids)
            out.append(((tid, pos, name, i), line))
        return out

    @staticmethod
    def _cigar(h, qlen: int) -> str:
        if h.strand > 0:
            lc, rc = h.q_st, qlen - h.q_en
        else:
            lc, rc = qlen - h.q_en, h.q_st
        return (f"{lc}S" if lc else "") + h.cigar_str + (f"{rc}S" if rc else "")


def _write_bam(path: Path, config: SimulateConfig, prof: ProfileConfig, pairs, aligner) -> dict:
    """Align pairs with minimap2 (thread pool, deterministic order), sort, write and index."""
    import pysam

    tids = {c: i for i, c in enumerate(config.contigs)}
    mapper = _Mapper(aligner, tids, prof.name, prof.insert_mean + 6 * prof.insert_sd + prof.read_length)
    chunks = [pairs[i : i + _CHUNK] for i in range(0, len(pairs), _CHUNK)]
    records: list[tuple[tuple, str]] = []
    if config.threads > 1 and len(chunks) > 1:
        with ThreadPoolExecutor(max_workers=config.threads) as pool:
            for part in pool.map(mapper.map_chunk, chunks):
                records.extend(part)
    else:
        for ch in chunks:
            records.extend(mapper.map_chunk(ch))
    records.sort(key=lambda kv: kv[0])

    header = pysam.AlignmentHeader.from_dict(
        {
            "HD": {"VN": "1.6", "SO": "coordinate"},
            "SQ": [{"SN": c, "LN": n} for c, n in config.contigs.items()],
            "RG": [{"ID": prof.name, "SM": config.sample, "PL": prof.platform, "LB": f"{prof.name}-lib1"}],
        }
    )
    mapped = proper = mapq0 = aligned_bases = 0
    with atomic_output(path, suffix=".bam") as tmp:
        with pysam.AlignmentFile(str(tmp), "wb", header=header) as bam:
            for _, line in records:
                seg = pysam.AlignedSegment.fromstring(line, header)
                if not seg.is_unmapped:
                    mapped += 1
                    proper += seg.is_proper_pair
                    mapq0 += seg.mapping_quality == 0
                    aligned_bases += seg.query_alignment_length
                bam.write(seg)
        bai = Path(str(tmp) + ".bai")
        try:
            pysam.index(str(tmp), str(bai))
            os.replace(bai, str(path) + ".bai")
        finally:
            bai.unlink(missing_ok=True)
    n = len(records)
    return {
        "pairs": len(pairs),
        "reads": n,
        "mapped": mapped,
        "mapped_fraction": round(mapped / n, 6) if n else 0.0,
        "properly_paired": proper,
        "mapq0": mapq0,
        "aligned_bases": aligned_bases,
        "mean_depth": round(aligned_bases / sum(config.contigs.values()), 4),
        "platform": prof.platform,
    }


# ------------------------------------------------------------------ outputs
def _write_fasta(path: Path, contigs: list[Contig]) -> None:
    import pysam

    with atomic_output(path, suffix=".fa") as tmp:
        with open(tmp, "w") as fh:
            for c in contigs:
                s = _decode(c.seq)
                fh.write(f">{c.name}\n")
                fh.write("".join(s[i : i + 60] + "\n" for i in range(0, len(s), 60)))
        fai = Path(str(tmp) + ".fai")
        try:
            pysam.faidx(str(tmp))
            os.replace(fai, str(path) + ".fai")
        finally:
            fai.unlink(missing_ok=True)


def _subtract(start: int, end: int, holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out, cur = [], start
    for a, b in sorted(holes):
        if b <= cur or a >= end:
            continue
        if a > cur:
            out.append((cur, a))
        cur = max(cur, b)
    if cur < end:
        out.append((cur, end))
    return out


def _check(config: SimulateConfig) -> None:
    names = [p.name for p in config.profiles]
    if len(set(names)) != len(names):
        raise DvtrainError(f"simulate: duplicate profile names {names}")
    for nm in names:
        if not nm or any(ch in nm for ch in "/\\ \t") or nm in ("ref", "truth", "segdups"):
            raise DvtrainError(f"simulate: profile name {nm!r} cannot be used as a file name")
    if not config.contigs:
        raise DvtrainError("simulate: no contigs")
    for c, n in config.contigs.items():
        if n < 2000:
            raise DvtrainError(f"simulate: contig {c} is {n} bp; at least 2000 bp are needed")
        if not c or any(ch.isspace() for ch in c):
            raise DvtrainError(f"simulate: contig name {c!r} is not valid")


def simulate(config: SimulateConfig) -> dict:
    """Write a simulated dataset into ``config.outdir``; returns paths and summary counts."""
    import mappy

    _check(config)
    outdir = Path(config.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    files = {
        "ref": "ref.fa",
        "ref_fai": "ref.fa.fai",
        "truth_vcf": "truth.vcf.gz",
        "truth_vcf_tbi": "truth.vcf.gz.tbi",
        "truth_bed": "truth.bed",
        "segdups_bed": "segdups.bed",
        "bams": {p.name: f"{p.name}.bam" for p in config.profiles},
        "dataset_json": "dataset.json",
    }

    # genome
    families = _repeat_families(config.seed)
    contigs = [_make_contig(c, n, config.seed, families, config.segdup_count) for c, n in config.contigs.items()]
    ref_path = outdir / "ref.fa"
    _write_fasta(ref_path, contigs)
    ref_str = {c.name: _decode(c.seq) for c in contigs}

    # truth
    variants = {c.name: _make_variants(c, ref_str[c.name], config) for c in contigs}
    lines = []
    for c in contigs:
        for v in variants[c.name]:
            lines.append(f"{c.name}\t{v.pos + 1}\t.\t{v.ref}\t{v.alt}\t.\tPASS\t.\tGT\t{v.gt[0]}|{v.gt[1]}")
    write_bgzip_vcf(outdir / "truth.vcf.gz", lines, vcf_header(dict(config.contigs), config.sample, source="dvtrain.simulate"))

    segdup_ivs = [(c.name, s, e, [nm]) for c in contigs for s, e, nm in c.segdups]
    write_bed(outdir / "segdups.bed", segdup_ivs)
    confident = []
    for c in contigs:
        n = len(c.seq)
        edge = min(EDGE, n // 10)
        holes = [(max(0, s - SEGDUP_PAD), min(n, e + SEGDUP_PAD)) for s, e, _ in c.segdups]
        confident += [(c.name, a, b) for a, b in _subtract(edge, n - edge, holes)]
    write_bed(outdir / "truth.bed", confident)

    # reads
    haps = {c.name: [_haplotype(ref_str[c.name], variants[c.name], h) for h in (0, 1)] for c in contigs}
    read_counts = {}
    if config.profiles:
        aligner = mappy.Aligner(str(ref_path), preset="sr", n_threads=config.threads)
        if not aligner:
            raise DvtrainError(f"{ref_path}: minimap2 could not index the reference")
        for prof in config.profiles:
            pairs = _simulate_pairs(config, prof, contigs, haps)
            read_counts[prof.name] = _write_bam(outdir / f"{prof.name}.bam", config, prof, pairs, aligner)
            del pairs

    # summary
    allv = [v for c in contigs for v in variants[c.name]]
    snps = [v for v in allv if v.kind == "SNP"]
    ti = sum(1 for v in snps if _TRANSITION[v.ref] == v.alt)
    tv = len(snps) - ti
    het = sum(1 for v in allv if v.gt[0] != v.gt[1])
    hom = len(allv) - het
    indels = [v for v in allv if v.kind != "SNP"]
    lengths: dict[str, int] = {}
    for v in indels:
        k = str(abs(len(v.alt) - len(v.ref)))
        lengths[k] = lengths.get(k, 0) + 1
    counts = {
        "variants": len(allv),
        "snps": len(snps),
        "insertions": sum(1 for v in indels if v.kind == "INS"),
        "deletions": sum(1 for v in indels if v.kind == "DEL"),
        "indels_in_repeats": sum(1 for v in indels if v.in_repeat),
        "indel_lengths": dict(sorted(lengths.items(), key=lambda kv: int(kv[0]))),
        "het": het,
        "hom_alt": hom,
        "het_hom_ratio": round(het / hom, 4) if hom else None,
        "transitions": ti,
        "transversions": tv,
        "titv": round(ti / tv, 4) if tv else None,
        "genome_bases": sum(config.contigs.values()),
        "gc_fraction": round(float(sum(int(((c.seq == 1) | (c.seq == 2)).sum()) for c in contigs)) / sum(config.contigs.values()), 4),
        "segdups": sum(len(c.segdups) for c in contigs) // 2,
        "truth_bed_bases": sum(e - s for _, s, e in confident),
        "truth_bed_variants": _count_inside(variants, confident),
        "reads": read_counts,
    }
    dataset = {
        "generator": "dvtrain.simulate",
        "seed": config.seed,
        "parameters": config.model_dump(mode="json"),
        "files": files,
        "counts": counts,
    }
    with atomic_output(outdir / "dataset.json", suffix=".json") as tmp:
        tmp.write_text(json.dumps(dataset, sort_keys=True, indent=2) + "\n")

    def absolute(v):
        return {k: absolute(x) for k, x in v.items()} if isinstance(v, dict) else str(outdir / v)

    result = {k: absolute(v) for k, v in files.items()}
    result["counts"] = counts
    return result


def _count_inside(variants: dict[str, list[TruthVariant]], confident: list[tuple[str, int, int]]) -> int:
    idx = IntervalIndex(confident)
    return sum(1 for c, vs in variants.items() for v in vs if idx.contains_span(c, v.pos, v.pos + len(v.ref)))
