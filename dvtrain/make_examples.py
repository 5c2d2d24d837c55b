"""make_examples (native engine): candidates from read counts -> DeepVariant-style pileup
tensors -> tf.train.Example TFRecords, one shard per ``task``.

Work is split into 1 kb partitions of the requested regions; shard ``task`` of N takes
partitions ``task, task+N, ...`` so shards are balanced and independent.

Candidates (per position, after left-normalising indels against the reference):
  * SNP: the most frequent non-reference base with count >= vsc_min_count_snps and
    count / depth >= vsc_min_fraction_snps,
  * indel: the most frequent insertion/deletion anchored there with count >=
    vsc_min_count_indels and fraction >= vsc_min_fraction_indels.
Only reads that are mapped, primary, not duplicate / QC-fail and with MAPQ >=
min_mapping_quality are used; bases with quality < min_base_quality are not counted.

Image: ``pileup_image_height`` rows (5 reference rows, then reads sorted by start,
down-sampled with a position-seeded RNG when there are too many) x ``pileup_image_width``
columns centred on the candidate, channels in DeepVariant order (see CHANNELS).
Deleted bases are drawn with read_base 0 and base_differs_from_ref 254; an insertion marks
its anchor column as differing from the reference.

Labels (training mode): the number of copies (0/1/2) of the candidate's normalised alt
allele in the truth genotype; candidates whose REF span is not inside the confident
regions are skipped. (Haplotype-aware matching of differently-represented alleles is a
later refinement.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
import pysam

from . import __version__
from .bed import IntervalIndex, read_bed
from .config import MakeExamplesConfig
from .errors import InputError
from .example_proto import encode_alt_allele_indices, encode_example, encode_variant
from .fileio import TFRecordWriter, atomic_output, shard_path, sharded_paths
from .genome import contig_lengths, open_bams, open_reference, parse_regions
from .evaluate import Normalizer, split_events
from .variants import normalize, read_vcf

PARTITION_SIZE = 1000
REF_ROWS = 5
# DeepVariant channel enum ids (read_base=1 ... base_differs_from_ref=6, insert_size=19).
BASE_CHANNELS = ["read_base", "base_quality", "mapping_quality", "strand", "read_supports_variant", "base_differs_from_ref"]
CHANNEL_IDS = {"read_base": 1, "base_quality": 2, "mapping_quality": 3, "strand": 4,
               "read_supports_variant": 5, "base_differs_from_ref": 6, "insert_size": 19}
BASE_VALUE = np.zeros(256, dtype=np.uint8)
for _b, _v in {"A": 250, "G": 180, "T": 100, "C": 30}.items():
    BASE_VALUE[ord(_b)] = _v
    BASE_VALUE[ord(_b.lower())] = _v
BASE_CODE = np.full(256, 4, dtype=np.int64)  # A C G T -> 0..3, others 4
for _i, _b in enumerate("ACGT"):
    BASE_CODE[ord(_b)] = _i
    BASE_CODE[ord(_b.lower())] = _i
_SKIP_FLAGS = 0x4 | 0x100 | 0x200 | 0x400 | 0x800


def channel_names(extra: Iterable[str]) -> list[str]:
    return BASE_CHANNELS + [c for c in extra]


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


@dataclass(frozen=True)
class Candidate:
    chrom: str
    pos: int
    ref: str
    alt: str
    depth: int
    alt_count: int
    ref_count: int

    @property
    def is_snp(self) -> bool:
        return len(self.ref) == 1 and len(self.alt) == 1


class _RefCache:
    """Reference sequence of one contig, upper-cased, fetched once."""

    def __init__(self, fasta: pysam.FastaFile, chrom: str):
        self.chrom = chrom
        self.seq = fasta.fetch(chrom).upper()
        self.arr = np.frombuffer(self.seq.encode(), dtype=np.uint8)

    def fetch(self, start: int, end: int) -> str:
        return self.seq[start:end]


def _parse_read(aln: pysam.AlignedSegment, ref: _RefCache, norm_cache: dict) -> Optional[Read]:
    seq = aln.query_sequence
    quals = aln.query_qualities
    if not seq or aln.cigartuples is None:
        return None
    qarr = np.frombuffer(seq.encode(), dtype=np.uint8)
    qual = np.asarray(quals, dtype=np.int16) if quals is not None else np.full(len(seq), 30, np.int16)
    r = aln.reference_start
    q = 0
    rpos_parts, qpos_parts = [], []
    ins_anchors: list[int] = []
    dels: list[tuple[int, int]] = []
    events: set = set()
    for op, n in aln.cigartuples:
        if op in (0, 7, 8):  # M, =, X
            rpos_parts.append(np.arange(r, r + n))
            qpos_parts.append(np.arange(q, q + n))
            r += n
            q += n
        elif op == 1:  # I
            if r > aln.reference_start:
                ins_anchors.append(r - 1)
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
    if not rpos_parts:
        return None
    rpos = np.concatenate(rpos_parts)
    qpos = np.concatenate(qpos_parts)
    return Read(
        start=aln.reference_start, end=aln.reference_end or r, name=aln.query_name or "",
        rpos=rpos, bases=qarr[qpos], quals=qual[qpos], mapq=aln.mapping_quality,
        reverse=aln.is_reverse, tlen=abs(aln.template_length),
        ins_anchors=np.asarray(ins_anchors, dtype=np.int64), del_spans=dels, events=events,
    )


def _norm(key: tuple[int, str, str], ref: _RefCache, cache: dict) -> tuple[int, str, str]:
    hit = cache.get(key)
    if hit is None:
        hit = normalize(key[0], key[1], key[2], ref.fetch)
        cache[key] = hit
    return hit


def _fetch_reads(bams: list[pysam.AlignmentFile], chrom: str, start: int, end: int, min_mapq: int,
                 ref: _RefCache, norm_cache: dict) -> list[Read]:
    reads: list[Read] = []
    for bam in bams:
        for aln in bam.fetch(chrom, max(0, start), end):
            if aln.flag & _SKIP_FLAGS or aln.mapping_quality < min_mapq:
                continue
            rd = _parse_read(aln, ref, norm_cache)
            if rd is not None:
                reads.append(rd)
    reads.sort(key=lambda x: (x.start, x.name, x.reverse))
    return reads


def find_candidates(reads: list[Read], ref: _RefCache, start: int, end: int, cfg: MakeExamplesConfig) -> list[Candidate]:
    """Allele counting over [start, end) -> candidates sorted by (pos, ref, alt)."""
    width = end - start
    if width <= 0:
        return []
    counts = np.zeros((width, 5), dtype=np.int64)
    depth_diff = np.zeros(width + 1, dtype=np.int64)
    indel_counts: dict[tuple[int, str, str], int] = {}
    for rd in reads:
        s, e = max(rd.start, start), min(rd.end, end)
        if s < e:
            depth_diff[s - start] += 1
            depth_diff[e - start] -= 1
        m = (rd.rpos >= start) & (rd.rpos < end) & (rd.quals >= cfg.min_base_quality)
        if m.any():
            np.add.at(counts, (rd.rpos[m] - start, BASE_CODE[rd.bases[m]]), 1)
        for ev in rd.events:
            if start <= ev[0] < end:
                indel_counts[ev] = indel_counts.get(ev, 0) + 1
    depth = np.cumsum(depth_diff)[:width]
    ref_codes = BASE_CODE[ref.arr[start:end]]
    cands: list[Candidate] = []
    alt_counts = counts[:, :4].copy()
    valid_ref = ref_codes < 4
    alt_counts[np.arange(width)[valid_ref], ref_codes[valid_ref]] = 0
    best = alt_counts.argmax(axis=1)
    best_n = alt_counts[np.arange(width), best]
    frac = np.divide(best_n, np.maximum(depth, 1))
    ok = valid_ref & (best_n >= cfg.vsc_min_count_snps) & (frac >= cfg.vsc_min_fraction_snps)
    for i in np.nonzero(ok)[0]:
        p = start + int(i)
        cands.append(Candidate(ref.chrom, p, ref.seq[p], "ACGT"[best[i]], int(depth[i]),
                               int(best_n[i]), int(counts[i, ref_codes[i]])))
    best_indel: dict[int, tuple[int, tuple[int, str, str]]] = {}
    for key, n in sorted(indel_counts.items()):
        cur = best_indel.get(key[0])
        if cur is None or n > cur[0]:
            best_indel[key[0]] = (n, key)
    for p, (n, key) in best_indel.items():
        d = int(depth[p - start])
        if n >= cfg.vsc_min_count_indels and n / max(d, 1) >= cfg.vsc_min_fraction_indels:
            ref_n = int(counts[p - start, BASE_CODE[ref.arr[p]]]) if BASE_CODE[ref.arr[p]] < 4 else 0
            cands.append(Candidate(ref.chrom, p, key[1], key[2], d, n, max(0, ref_n - n)))
    cands.sort(key=lambda c: (c.pos, c.ref, c.alt))
    return cands


def build_image(cand: Candidate, reads: list[Read], ref: _RefCache, cfg: MakeExamplesConfig,
                rng_seed: int) -> np.ndarray:
    """The H x W x C uint8 pileup tensor for one candidate."""
    H, W = cfg.pileup_image_height, cfg.pileup_image_width
    chans = channel_names(cfg.channels)
    C = len(chans)
    img = np.zeros((H, W, C), dtype=np.uint8)
    half = W // 2
    w0 = cand.pos - half
    # reference band
    lo, hi = max(0, w0), min(len(ref.seq), w0 + W)
    if lo < hi:
        refvals = BASE_VALUE[ref.arr[lo:hi]]
        cols = slice(lo - w0, hi - w0)
        img[:REF_ROWS, cols, 0] = refvals
        img[:REF_ROWS, cols, 1] = 254
        img[:REF_ROWS, cols, 2] = 254
        img[:REF_ROWS, cols, 3] = 70
        img[:REF_ROWS, cols, 4] = 152
        img[:REF_ROWS, cols, 5] = 50
    # reads overlapping the candidate's REF span
    cand_end = cand.pos + max(1, len(cand.ref))
    rows = [rd for rd in reads if rd.start < cand_end and rd.end > cand.pos]
    max_reads = H - REF_ROWS
    if len(rows) > max_reads:
        rng = np.random.default_rng(rng_seed)
        keep = np.sort(rng.choice(len(rows), size=max_reads, replace=False))
        rows = [rows[i] for i in keep]
    key = (cand.pos, cand.ref, cand.alt)
    snp = cand.is_snp
    alt_code = ord(cand.alt) if snp else 0
    has_insert = "insert_size" in chans
    for r, rd in enumerate(rows, start=REF_ROWS):
        s, e = max(rd.start, w0), min(rd.end, w0 + W)
        if s >= e:
            continue
        span = slice(s - w0, e - w0)
        if snp:
            hit = np.nonzero(rd.rpos == cand.pos)[0]
            supports = bool(hit.size) and rd.bases[hit[0]] in (alt_code, alt_code + 32)
        else:
            supports = key in rd.events
        row = img[r]
        row[span, 2] = int(254 * min(rd.mapq, 60) / 60)
        row[span, 3] = 240 if rd.reverse else 70
        row[span, 4] = 254 if supports else 152
        row[span, 5] = 254  # deletions/unaligned columns differ unless overwritten below
        if has_insert:
            row[span, 6] = int(254 * min(rd.tlen, 1000) / 1000)
        m = (rd.rpos >= w0) & (rd.rpos < w0 + W)
        cols = rd.rpos[m] - w0
        b = rd.bases[m]
        row[cols, 0] = BASE_VALUE[b]
        row[cols, 1] = (254 * np.minimum(rd.quals[m], 40) // 40).astype(np.uint8)
        refb = ref.arr[rd.rpos[m]]
        row[cols, 5] = np.where((b | 32) == (refb | 32), 50, 254)
        if rd.ins_anchors.size:
            a = rd.ins_anchors[(rd.ins_anchors >= w0) & (rd.ins_anchors < w0 + W)] - w0
            row[a, 5] = 254
    return img


def _partitions(regions: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    out = []
    for chrom, s, e in regions:
        for p in range(s, e, PARTITION_SIZE):
            out.append((chrom, p, min(p + PARTITION_SIZE, e)))
    return out


def _truth_index(cfg: MakeExamplesConfig, lengths: dict[str, int], fasta: pysam.FastaFile,
                 contigs: set[str]) -> dict[tuple[str, int, str, str], int]:
    """(chrom, pos, ref, alt) normalised -> copies of alt in the truth genotype (PASS
    records; split and normalised exactly as the evaluation does)."""
    assert cfg.truth_variants is not None
    truth = read_vcf(cfg.truth_variants, contigs=lengths, regions=contigs, pass_only=True)
    return {e.key: e.copies for e in split_events(truth, Normalizer(fasta))}


def example_info(cfg: MakeExamplesConfig) -> dict:
    chans = channel_names(cfg.channels)
    return {
        "version": f"dvtrain-{__version__}",
        "shape": [cfg.pileup_image_height, cfg.pileup_image_width, len(chans)],
        "channels": [CHANNEL_IDS[c] for c in chans],
    }


def make_examples(config: MakeExamplesConfig) -> dict:
    """Write shard ``config.task`` of ``config.examples``; return its path and counts."""
    cfg = config
    paths = sharded_paths(cfg.examples)
    if cfg.task >= len(paths):
        raise InputError(cfg.examples, f"--task {cfg.task} but only {len(paths)} shard(s)")
    out_path = Path(shard_path(cfg.examples, cfg.task))
    lengths = contig_lengths(cfg.ref)
    fasta = open_reference(cfg.ref)
    regions = parse_regions(cfg.regions, lengths)
    bams = open_bams(list(cfg.reads), lengths)
    for bam in bams:
        for c in {r[0] for r in regions}:
            if c not in bam.references:
                raise InputError(bam.filename.decode(), f"contig {c!r} is not in the BAM header")
    truth: dict = {}
    confident: Optional[IntervalIndex] = None
    if cfg.mode == "training":
        assert cfg.confident_regions is not None
        confident = IntervalIndex(read_bed(cfg.confident_regions))
        truth = _truth_index(cfg, lengths, fasta, {r[0] for r in regions})
    parts = [p for i, p in enumerate(_partitions(regions)) if i % len(paths) == cfg.task]
    shape = [cfg.pileup_image_height, cfg.pileup_image_width, len(channel_names(cfg.channels))]
    contig_index = {c: i for i, c in enumerate(lengths)}
    class_counts = [0, 0, 0]
    n_candidates = 0
    ref: Optional[_RefCache] = None
    norm_cache: dict = {}
    half = cfg.pileup_image_width // 2
    with TFRecordWriter(out_path) as writer:
        for chrom, start, end in parts:
            if ref is None or ref.chrom != chrom:  # partitions come contig by contig
                norm_cache.clear()
                ref = _RefCache(fasta, chrom)
            if confident is not None and not confident.clip(chrom, start, end):
                continue
            reads = _fetch_reads(bams, chrom, start - half, end + half, cfg.min_mapping_quality, ref, norm_cache)
            cands = find_candidates(reads, ref, start, end, cfg)
            n_candidates += len(cands)
            for cand in cands:
                label = None
                if confident is not None:
                    if not confident.contains_span(chrom, cand.pos, cand.pos + len(cand.ref)):
                        continue
                    label = truth.get((chrom, cand.pos, cand.ref, cand.alt), 0)
                img = build_image(cand, reads, ref, cfg, rng_seed=(cfg.seed * 1_000_003 + contig_index[chrom]) * 4_000_000_007 + cand.pos)
                feats: dict = {
                    "image/encoded": img.tobytes(),
                    "image/shape": shape,
                    "locus": f"{chrom}:{cand.pos + 1}-{cand.pos + len(cand.ref)}".encode(),
                    "variant/encoded": encode_variant(chrom, cand.pos, cand.ref, [cand.alt]),
                    "alt_allele_indices/encoded": encode_alt_allele_indices([0]),
                    "variant_type": 1 if cand.is_snp else 2,
                    "dvtrain/allele_counts": [cand.depth, cand.ref_count, cand.alt_count],
                }
                if label is not None:
                    feats["label"] = label
                    class_counts[label] += 1
                writer.write(encode_example(feats))
        n = writer.count
    info_path = Path(str(out_path) + ".example_info.json")
    with atomic_output(info_path) as tmp:
        tmp.write_text(json.dumps(example_info(cfg), sort_keys=True) + "\n")
    result = {"path": str(out_path), "num_examples": n, "num_candidates": n_candidates,
              "example_info": str(info_path)}
    if cfg.mode == "training":
        result["class_counts"] = class_counts
    return result
