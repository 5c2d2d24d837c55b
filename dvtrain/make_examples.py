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
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pysam

from .bed import IntervalIndex, read_bed
from .config import MakeExamplesConfig
from .errors import InputError
from .evaluate import Normalizer, split_events
from .example_proto import encode_alt_allele_indices, encode_example, encode_variant
from .fileio import TFRecordWriter, atomic_output, shard_path, sharded_paths
from .genome import contig_lengths, open_bams, open_reference, parse_regions
from .pileup import build_image, channel_names, example_info
from .reads import BASE_CODE, Read, RefCache, fetch_reads
from .variants import read_vcf

PARTITION_SIZE = 1000


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


def find_candidates(reads: list[Read], ref: RefCache, start: int, end: int, cfg: MakeExamplesConfig) -> list[Candidate]:
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
    ref: Optional[RefCache] = None
    norm_cache: dict = {}
    half = cfg.pileup_image_width // 2
    with TFRecordWriter(out_path) as writer:
        for chrom, start, end in parts:
            if ref is None or ref.chrom != chrom:  # partitions come contig by contig
                norm_cache.clear()
                ref = RefCache(fasta, chrom)
            if confident is not None and not confident.clip(chrom, start, end):
                continue
            reads = fetch_reads(bams, chrom, start - half, end + half, cfg.min_mapping_quality, ref, norm_cache)
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
