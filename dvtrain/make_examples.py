"""make_examples (native engine): candidates from read counts -> DeepVariant-style pileup
tensors -> tf.train.Example TFRecords, one shard per ``task``.

Regions: ``regions`` (contigs, ``chr:start-end`` or BED files; merged, so overlapping
inputs give no duplicate examples) minus ``exclude_regions``; the work is split into 10 kb
partitions, and shard ``task`` of N takes partitions ``task, task+N, ...``.

Reads (``dvtrain.reads``): mapped, primary, non-supplementary, non-duplicate, QC-passed,
MAPQ >= ``min_mapping_quality``, fetched per partition (plus half an image width each side)
into one columnar ``ReadBatch`` that candidate counting and every image of the partition
index with numpy; with ``downsample_fraction`` < 1 a read is kept when a hash of (seed,
read name) falls below the fraction, so mates and shards agree.

Candidates, DeepVariant's rules and flag names: every allele at a position whose count
is >= ``vsc_min_count_snps`` / ``vsc_min_count_indels`` and whose fraction of the depth is
>= ``vsc_min_fraction_snps`` / ``vsc_min_fraction_indels`` (bases below
``min_base_quality`` are not counted; with ``vsc_min_snp_lod`` a SNP allele also needs
that het-vs-hom-ref log10 likelihood ratio from its reads' base qualities, ``snp_lod``;
indels are left-normalised; with
``merge_insertion_alleles`` insertions of one length at one anchor count together, see
``insertion_consensus``). The alleles at one
position form a *site* written as one variant (REF = the longest allele REF, every ALT
extended to it); a site gives one example per alt and one per pair of alts, marked in
``alt_allele_indices/encoded``.

Each site's ``variant/encoded`` carries one VariantCall, as DeepVariant's: the sample (the
BAMs' read-group SM, else SAMPLE), GT ``./.`` (training: the labelled genotype), and DP,
AD and VAF from the counts above (DP: reads overlapping the site; ``<*>`` sites DP only),
which DeepVariant's postprocess_variants needs (it uncalls a site without AD).

Images: ``dvtrain.pileup`` (docs/pileup.md), ``pileup_image_height`` x
``pileup_image_width`` x channels; shape and channels go to ``example_info.json``.

Labels (training mode, ``dvtrain.labeler``): haplotype-aware. Candidates and truth events
close together are grouped and each candidate allele gets the copies (0/1/2) that make the
candidate haplotypes reproduce the truth haplotypes, so a truth indel written shifted,
split or merged still labels the reads' representation; an example's label is the sum over
its alleles, capped at 2. Only sites whose REF span lies inside ``confident_regions`` are
written. Per shard, ``SHARD.labeling_metrics.json`` counts truth events matched and
unmatched and candidates per class. ``training_random_emit_ref_sites`` adds that fraction
of covered, non-candidate confident positions (seeded by position) as label-0 examples
with ALT ``<*>`` and variant_type 0.

gVCF (calling mode, ``gvcf``): every covered non-candidate position gets a hom-ref
confidence from its reference vs other bases, and runs of them in one GQ band
(``gvcf_gq_binsize``) become reference blocks, written beside the shard as
``SHARD.gvcf.tsv.gz`` (:mod:`dvtrain.gvcf`); the examples are unchanged.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pysam

from .bed import IntervalIndex, merge, read_bed, require_intervals_on
from .config import MakeExamplesConfig
from .errors import InputError
from .evaluate import Normalizer, split_events
from .example_proto import encode_alt_allele_indices, encode_example, encode_variant, read_counts_call
from .fileio import TFRecordWriter, atomic_output, shard_path, sharded_paths
from .genome import contig_lengths, open_bams, open_reference, parse_regions
from .gvcf import gvcf_blocks_path, reference_blocks, write_reference_blocks
from .labeler import Labeler, labeling_metrics_path, write_metrics
from .pileup import build_image, channel_names, example_info
from .reads import BASE_CODE, ReadBatch, RefCache, fetch_realigned, fetch_reads
from .variants import read_vcf

PARTITION_SIZE = 10_000  # bases per work unit; shard i takes units i, i+N, ...
REALIGNER_PARTITION_SIZE = 1_000  # DeepVariant's --partition_size, with realign_reads


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


def insertion_consensus(alleles: dict[tuple[int, str, str], int], seq: str) -> tuple[int, str, str]:
    """One insertion for reads carrying insertions of one length at one anchor with different
    bases (``alleles``: key -> reads): the most common one; on a tie, base by base the
    majority over all of them, a tied base going to the reference base it would duplicate
    (insertions mostly extend the repeat they sit in), else the first in ACGT order."""
    ranked = sorted(alleles.items(), key=lambda kv: (-kv[1], kv[0]))
    if len(ranked) == 1 or ranked[0][1] > ranked[1][1]:
        return ranked[0][0]
    pos, anchor, _ = ranked[0][0]
    bases = []
    for k in range(len(ranked[0][0][2]) - 1):
        votes: dict[str, int] = {}
        for (_, _, alt), n in alleles.items():
            votes[alt[1 + k]] = votes.get(alt[1 + k], 0) + n
        top = max(votes.values())
        tied = sorted(b for b, v in votes.items() if v == top)
        follows = seq[pos + 1 + k] if pos + 1 + k < len(seq) else ""
        bases.append(follows if follows in tied else tied[0])
    return pos, anchor, anchor + "".join(bases)


LOG10_2, LOG10_3 = np.log10(2.0), np.log10(3.0)


def snp_lod(alt_counts: np.ndarray, alt_qual_sum: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """log10 P(bases | het) / P(bases | hom-ref) of each alt base (``alt_counts`` reads whose
    Phred qualities / 10 sum to ``alt_qual_sum``) at positions with ``depth`` counted bases
    (per position, broadcast over the alt columns). Under het every base has probability
    about 1/2; under hom-ref an alt base is an error, e/3 with e = 10^(-Q/10), and any other
    base about 1: so lod = sum over the alt reads of (Q/10 + log10 3) - depth * log10 2.
    One Q30 read gives 3.48 - 0.30 * depth: 2.6 at depth 3, 1.1 at depth 8; one Q15 read
    at depth 3 gives 1.1."""
    return alt_qual_sum + alt_counts * LOG10_3 - np.asarray(depth)[:, None] * LOG10_2


def find_candidates(reads: ReadBatch, ref: RefCache, start: int, end: int, cfg: MakeExamplesConfig,
                    depth_out: Optional[list] = None, counts_out: Optional[list] = None) -> list[Candidate]:
    """Allele counting over [start, end) -> every allele passing DeepVariant's thresholds,
    sorted by (pos, ref, alt). A position can yield several alleles (a multi-allelic
    site). ``depth_out``, when given, receives the per-position depth array;
    ``counts_out`` the width x 5 array of A, C, G, T, N counts of bases with quality >=
    ``min_base_quality``."""
    width = end - start
    if width <= 0:
        return []
    indel_counts: dict[tuple[int, str, str], int] = {}
    qsum: Optional[np.ndarray] = None  # with vsc_min_snp_lod: per (position, base), the sum of Phred / 10
    if len(reads):
        rs = np.clip(reads.start, start, end) - start
        re_ = np.clip(reads.end, start, end) - start
        ok = rs < re_
        depth = np.cumsum(np.bincount(rs[ok], minlength=width + 1)[: width + 1]
                          - np.bincount(re_[ok], minlength=width + 1)[: width + 1])[:width]
        m = (reads.rpos >= start) & (reads.rpos < end) & (reads.quals >= cfg.min_base_quality)
        codes = BASE_CODE[reads.bases[m]]
        cell = (reads.rpos[m] - start) * 5 + codes
        counts = np.bincount(cell, minlength=width * 5).reshape(width, 5)
        if cfg.vsc_min_snp_lod is not None:
            qsum = np.bincount(cell, weights=reads.quals[m] / 10.0, minlength=width * 5).reshape(width, 5)
    else:
        depth = np.zeros(width, dtype=np.int64)
        counts = np.zeros((width, 5), dtype=np.int64)
    for evs in reads.events.values():
        for ev in evs:
            if start <= ev[0] < end:
                indel_counts[ev] = indel_counts.get(ev, 0) + 1
    if depth_out is not None:
        depth_out.append(depth)
    if counts_out is not None:
        counts_out.append(counts)
    ref_codes = BASE_CODE[ref.arr[start:end]]
    cands: list[Candidate] = []
    alt_counts = counts[:, :4].copy()
    total = depth
    if cfg.realign_reads:
        # DeepVariant's allele counter: a read's indel is its allele at the anchor (not its
        # base there), and a fraction is of the reads with an allele counted at the position
        # (bases of quality >= min_base_quality, indels); without the realigner, misaligned
        # reads beside deletions would pass that fraction, so dvtrain's own is of every
        # read overlapping the position
        anchored, n_indels = _anchor_alleles(reads, start, end, cfg.min_base_quality)
        alt_counts -= anchored
        total = counts.sum(axis=1) - anchored.sum(axis=1) + n_indels
    valid_ref = ref_codes < 4
    alt_counts[np.arange(width)[valid_ref], ref_codes[valid_ref]] = 0
    frac = alt_counts / np.maximum(total, 1)[:, None]
    ok = valid_ref[:, None] & (alt_counts >= cfg.vsc_min_count_snps) & (frac >= cfg.vsc_min_fraction_snps)
    if qsum is not None:  # (without reads no allele passes the counts above)
        ok &= snp_lod(alt_counts, qsum[:, :4], counts.sum(axis=1)) >= cfg.vsc_min_snp_lod
    for i, b in zip(*np.nonzero(ok)):
        p = start + int(i)
        cands.append(Candidate(ref.chrom, p, ref.seq[p], "ACGT"[b], int(depth[i]),
                               int(alt_counts[i, b]), int(counts[i, ref_codes[i]])))
    groups: dict[tuple, dict[tuple[int, str, str], int]] = {}
    for key, n in indel_counts.items():  # an insertion's group: anchor and length
        group = (key[0], len(key[2])) if cfg.merge_insertion_alleles and len(key[1]) == 1 else key
        groups.setdefault(group, {})[key] = n
    for alleles in groups.values():
        key = insertion_consensus(alleles, ref.seq) if len(alleles) > 1 else next(iter(alleles))
        n = sum(alleles.values())
        p = key[0]
        d = int(depth[p - start])
        if n >= cfg.vsc_min_count_indels and n / max(int(total[p - start]), 1) >= cfg.vsc_min_fraction_indels:
            code = BASE_CODE[ref.arr[p]]
            ref_n = int(counts[p - start, code]) if code < 4 else 0
            cands.append(Candidate(ref.chrom, p, key[1], key[2], d, n, max(0, ref_n - n)))
    cands.sort(key=lambda c: (c.pos, c.ref, c.alt))
    return cands


def _anchor_alleles(reads: ReadBatch, start: int, end: int, min_bq: int) -> tuple[np.ndarray, np.ndarray]:
    """For [start, end): per position and base (A, C, G, T), the counted bases (quality >=
    ``min_bq``) of reads whose indel is anchored there, and per position the number of reads
    with an indel allele anchored there (a low-quality insertion is none)."""
    out = np.zeros((end - start, 4), dtype=np.int64)
    n_indels = np.zeros(end - start, dtype=np.int64)
    anchors = {(r, key[0]) for r, keys in reads.events.items() for key in keys if start <= key[0] < end}
    if anchors:
        rows = np.array([r for r, _ in anchors], dtype=np.int64)
        pos = np.array([p for _, p in anchors], dtype=np.int64)
        np.add.at(n_indels, pos - start, 1)
        hit, i = reads.base_at(rows, pos)
        code = BASE_CODE[reads.bases[i[hit]]]
        ok = (reads.quals[i[hit]] >= min_bq) & (code < 4)
        np.add.at(out, (pos[hit][ok] - start, code[ok]), 1)
    return out, n_indels


@dataclass(frozen=True)
class Site:
    """The candidate alleles at one position, written DeepVariant-style as one variant:
    REF is the longest allele REF and every ALT is extended to it."""

    chrom: str
    pos: int
    ref: str
    alts: tuple[str, ...]
    alleles: tuple[Candidate, ...]
    ref_count: int = 0  # reads with the reference base and none of the site's indels

    @property
    def is_ref_site(self) -> bool:
        """A random reference site (``--training_random_emit_ref_sites``), ALT ``<*>``."""
        return self.alts == ("<*>",)

    def subsets(self) -> list[tuple[int, ...]]:
        """DeepVariant's examples per site: one per alt, then one per pair of alts."""
        n = len(self.alts)
        return [(i,) for i in range(n)] + [(i, j) for i in range(n) for j in range(i + 1, n)]


def group_sites(cands: list[Candidate], alt_order: str = "candidate") -> list[Site]:
    """The candidates at each position as one site. ``alt_order``: the alts in candidate
    order (pos, ref, alt), or ``"sorted"`` by their written (extended) sequence, as
    DeepVariant orders them."""
    sites: list[Site] = []
    i = 0
    while i < len(cands):
        j = i
        while j < len(cands) and cands[j].pos == cands[i].pos:
            j += 1
        group = cands[i:j]
        ref = max((c.ref for c in group), key=len)
        if alt_order == "sorted":
            group = sorted(group, key=lambda c: c.alt + ref[len(c.ref):])
        alts = tuple(c.alt + ref[len(c.ref):] for c in group)
        # reads with an indel here still show the reference base at its anchor
        ref_base = max(c.ref_count + (0 if c.is_snp else c.alt_count) for c in group)
        ref_reads = max(0, ref_base - sum(c.alt_count for c in group if not c.is_snp))
        sites.append(Site(group[0].chrom, group[0].pos, ref, alts, tuple(group), ref_reads))
        i = j
    return sites


def _unit_hash(seed: int, *parts) -> float:
    """A uniform number in [0, 1) from the seed and ``parts`` (stable across runs/shards)."""
    h = hashlib.blake2b(repr((seed,) + parts).encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") / 2.0**64


def downsample(reads: ReadBatch, fraction: float, seed: int) -> ReadBatch:
    """Keep about ``fraction`` of the reads, deciding by read name so both mates of a pair
    (and the same read seen from two partitions or shards) go the same way."""
    if fraction >= 1.0:
        return reads
    keep = [i for i, name in enumerate(reads.names) if _unit_hash(seed, "downsample", name) < fraction]
    return reads.subset(np.array(keep, dtype=np.int64))


def _subtract(regions: list[tuple[str, int, int]], exclude: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """Merged ``regions`` minus merged ``exclude``."""
    cut: dict[str, list[tuple[int, int]]] = {}
    for c, s, e in merge(exclude):
        cut.setdefault(c, []).append((s, e))
    out = []
    for c, s, e in merge(regions):
        pieces = [(s, e)]
        for xs, xe in cut.get(c, []):
            pieces = [q for a, b in pieces for q in ((a, min(b, xs)), (max(a, xe), b)) if q[0] < q[1]]
        out += [(c, a, b) for a, b in pieces]
    return out


def _variant_type(site: Site, sub: tuple[int, ...]) -> int:
    """DeepVariant's EncodedVariantType: 1 SNP, 2 indel, 0 other (a reference site)."""
    if site.is_ref_site:
        return 0
    return 1 if all(site.alleles[i].is_snp for i in sub) else 2


def _with_ref_sites(sites: list[Site], cands: list[Candidate], depth: np.ndarray, ref: RefCache, start: int,
                    end: int, confident: Optional[IntervalIndex], cfg: MakeExamplesConfig) -> list[Site]:
    """Add DeepVariant's random reference sites (``--training_random_emit_ref_sites``):
    covered, non-candidate positions inside the confident regions, each kept with that
    probability (seeded by position), as a one-allele site with ALT ``<*>``."""
    taken = {c.pos for c in cands}
    extra = []
    for i in np.nonzero(depth > 0)[0]:
        p = start + int(i)
        if p in taken or BASE_CODE[ref.arr[p]] > 3:
            continue
        if _unit_hash(cfg.seed, "ref_site", ref.chrom, p) >= cfg.training_random_emit_ref_sites:
            continue
        if confident is not None and not confident.contains_span(ref.chrom, p, p + 1):
            continue
        c = Candidate(ref.chrom, p, ref.seq[p], "<*>", int(depth[i]), 0, int(depth[i]))
        extra.append(Site(ref.chrom, p, ref.seq[p], ("<*>",), (c,), c.ref_count))
    return sorted(sites + extra, key=lambda st: st.pos)


def _sample_name(bams: list[pysam.AlignmentFile]) -> str:
    """The sample of the VariantCall on each example (DeepVariant's ``--sample_name``
    default): the SM of the BAMs' read groups when they name exactly one, else SAMPLE."""
    names = {rg["SM"] for bam in bams for rg in bam.header.to_dict().get("RG", []) if rg.get("SM")}
    return names.pop() if len(names) == 1 else "SAMPLE"


def _site_call(st: Site, sample: str, copies: Optional[dict]) -> bytes:
    """The one VariantCall DeepVariant's make_examples stores in a site's variant: DP, AD
    (reference reads, then each alt's) and VAF, and the genotype: ./. for a calling
    candidate; in training mode the labelled one (each alt's copies, hom-ref when none)."""
    genotype: tuple[int, ...] = (-1, -1)
    if copies is not None:
        alleles = [i + 1 for i, c in enumerate(st.alleles) for _ in range(copies.get((c.pos, c.ref, c.alt), 0))]
        genotype = tuple(([0, 0] + alleles)[-2:])
    ad = [st.ref_count] + ([] if st.is_ref_site else [c.alt_count for c in st.alleles])
    return read_counts_call(sample, st.alleles[0].depth, ad, genotype)


def _partitions(regions: list[tuple[str, int, int]], size: int = PARTITION_SIZE) -> list[tuple[str, int, int]]:
    out = []
    for chrom, s, e in regions:
        for p in range(s, e, size):
            out.append((chrom, p, min(p + size, e)))
    return out


def _labeler(cfg: MakeExamplesConfig, lengths: dict[str, int], fasta: pysam.FastaFile, regions: list,
             confident: IntervalIndex) -> Labeler:
    """The haplotype-aware labeler over the truth's PASS records (split and normalised
    exactly as the evaluation does) inside the confident regions.

    A truth set with no variant call inside the confident regions of the regions to process
    (all shards together) is refused: every example would be labelled hom-ref."""
    assert cfg.truth_variants is not None
    truth = read_vcf(cfg.truth_variants, contigs=lengths, regions={r[0] for r in regions}, pass_only=True)
    wanted = IntervalIndex(regions)
    if not any(v.is_variant_call() and wanted.contains(v.chrom, v.pos) and confident.contains(v.chrom, v.pos)
               for v in truth):
        raise InputError(cfg.truth_variants, f"no PASS variant inside the confident regions ({Path(str(cfg.confident_regions)).name}) "
                                             f"of the regions to process: every example would be labelled hom-ref")
    norm = Normalizer(fasta)
    return Labeler(split_events(truth, norm), norm.fetch, confident=confident)


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
    if cfg.exclude_regions:
        regions = _subtract(regions, parse_regions(cfg.exclude_regions, lengths))
    else:
        regions = merge(regions)
    bams = open_bams(list(cfg.reads), lengths)
    for bam in bams:
        for c in {r[0] for r in regions}:
            if c not in bam.references:
                raise InputError(bam.filename.decode(), f"contig {c!r} is not in the BAM header")
    sample = _sample_name(bams)
    labeler: Optional[Labeler] = None
    confident: Optional[IntervalIndex] = None
    if cfg.mode == "training":
        assert cfg.confident_regions is not None
        conf_bed = read_bed(cfg.confident_regions)
        require_intervals_on(cfg.confident_regions, conf_bed, sorted({r[0] for r in regions}), "the contigs to process")
        confident = IntervalIndex(conf_bed)
        labeler = _labeler(cfg, lengths, fasta, regions, confident)
    # the realigner works per partition, as DeepVariant's (its windows and read sets are
    # the partition's): DeepVariant's 1,000 bp partitions then
    size = REALIGNER_PARTITION_SIZE if cfg.realign_reads else PARTITION_SIZE
    parts = [p for i, p in enumerate(_partitions(regions, size)) if i % len(paths) == cfg.task]
    shape = [cfg.pileup_image_height, cfg.pileup_image_width, len(channel_names(cfg.channels))]
    contig_index = {c: i for i, c in enumerate(lengths)}
    class_counts = [0, 0, 0]
    counts = {"candidates": 0, "sites": 0, "multiallelic_sites": 0, "ref_sites": 0, "reads": 0, "reads_kept": 0}
    if cfg.realign_reads:
        counts["reads_realigned"] = 0
    ref: Optional[RefCache] = None
    norm_cache: dict = {}
    half = cfg.pileup_image_width // 2
    blocks: Optional[list[str]] = [] if cfg.gvcf else None
    with TFRecordWriter(out_path) as writer:
        for chrom, start, end in parts:
            if ref is None or ref.chrom != chrom:  # partitions come contig by contig
                norm_cache.clear()
                ref = RefCache(fasta, chrom)
            if confident is not None and not confident.clip(chrom, start, end):
                continue
            if cfg.realign_reads:
                reads, moved = fetch_realigned(bams, chrom, start, end, half, cfg.min_mapping_quality,
                                               cfg.min_base_quality, ref, norm_cache)
                counts["reads_realigned"] += moved
            else:
                reads = fetch_reads(bams, chrom, start - half, end + half, cfg.min_mapping_quality, ref, norm_cache)
            counts["reads"] += len(reads)
            reads = downsample(reads, cfg.downsample_fraction, cfg.seed)
            counts["reads_kept"] += len(reads)
            depth_out: list = []
            counts_out: Optional[list] = [] if blocks is not None else None
            cands = find_candidates(reads, ref, start, end, cfg, depth_out, counts_out)
            counts["candidates"] += len(cands)
            if blocks is not None and counts_out:
                blocks += reference_blocks(ref, start, counts_out[0], {c.pos for c in cands}, cfg.gvcf_gq_binsize)
            sites = group_sites(cands, "sorted" if cfg.realign_reads else "candidate")
            if confident is not None:
                sites = [st for st in sites if confident.contains_span(chrom, st.pos, st.pos + len(st.ref))]
            copies: dict = {}
            if labeler is not None:
                labels = labeler.label(chrom, start, end, [(chrom, c.pos, c.ref, c.alt) for c in cands])
                copies = {(c.pos, c.ref, c.alt): lab for c, lab in zip(cands, labels) if lab is not None}
                if cfg.training_random_emit_ref_sites > 0:
                    sites = _with_ref_sites(sites, cands, depth_out[0], ref, start, end, confident, cfg)
            for st in sites:
                counts["sites"] += 1
                counts["multiallelic_sites"] += len(st.alts) > 1
                counts["ref_sites"] += st.is_ref_site
                seed = (cfg.seed * 1_000_003 + contig_index[chrom]) * 4_000_000_007 + st.pos
                variant = encode_variant(chrom, st.pos, st.ref, list(st.alts),
                                         _site_call(st, sample, copies if labeler is not None else None))
                for sub in st.subsets():
                    alleles = [st.alleles[i] for i in sub]
                    img = build_image(alleles, reads, ref, cfg, rng_seed=seed, ref_len=len(st.ref))
                    feats: dict = {
                        "image/encoded": img.tobytes(),
                        "image/shape": shape,
                        "locus": f"{chrom}:{st.pos + 1}-{st.pos + len(st.ref)}".encode(),
                        "variant/encoded": variant,
                        "alt_allele_indices/encoded": encode_alt_allele_indices(list(sub)),
                        "variant_type": _variant_type(st, sub),
                        "dvtrain/allele_counts": [alleles[0].depth, st.ref_count, sum(c.alt_count for c in alleles)],
                    }
                    if cfg.mode == "training":
                        label = min(2, sum(copies.get((c.pos, c.ref, c.alt), 0) for c in alleles))
                        feats["label"] = label
                        class_counts[label] += 1
                    writer.write(encode_example(feats))
        n = writer.count
    if labeler is not None:
        write_metrics(labeling_metrics_path(out_path), labeler.metrics())
    if blocks is not None:
        write_reference_blocks(gvcf_blocks_path(out_path), blocks, cfg.gvcf_gq_binsize)
    info_path = Path(str(out_path) + ".example_info.json")
    with atomic_output(info_path) as tmp:
        tmp.write_text(json.dumps(example_info(cfg), sort_keys=True) + "\n")
    result = {"path": str(out_path), "num_examples": n, "num_candidates": counts["candidates"],
              "example_info": str(info_path), "counts": counts}
    if blocks is not None:
        result["gvcf_blocks"] = str(gvcf_blocks_path(out_path))
        result["num_ref_blocks"] = len(blocks)
    if cfg.mode == "training":
        result["class_counts"] = class_counts
        result["labeling_metrics"] = str(labeling_metrics_path(out_path))
    return result
