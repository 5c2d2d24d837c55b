"""call_variants + postprocess_variants: calling-mode examples -> bgzipped, indexed VCF
(and, with ``gvcf_outfile``, a gVCF).

Inference: :mod:`dvtrain.inference`; gVCF blocks: :mod:`dvtrain.gvcf`.

**Postprocess** (DeepVariant's conventions). A site's examples (one per alt allele and one
per pair of alts, marked by ``alt_allele_indices``) become one record: the probability of
genotype ``j/k`` is the minimum, over the site's examples that contain ``j`` or ``k``
(every example for ``0/0``), of that example's probability for the number of the
genotype's alleles it contains; the genotype probabilities are then renormalised
(:func:`combine_site`). Probabilities are floored at 1e-10. GT is the most likely genotype;
QUAL = -10 log10 P(0/0) and GQ = -10 log10(1 - P(GT)), both capped at 99; PL =
-10 log10 P(g) minus its minimum, in VCF genotype order. FILTER: ``NoCall`` (GT ``./.``)
when the site's depth is 0, else ``RefCall`` for a hom-ref call, else ``LowQual`` when
QUAL < ``qual_filter`` (DeepVariant's ``--qual_filter``, 1.0), else ``PASS``. FORMAT is
always ``GT:GQ:DP:AD:VAF:PL``: DP, AD (reference reads, then each alt's reads from its
single-alt example) and VAF (AD / DP per alt) come from the ``dvtrain/allele_counts``
feature, else (DeepVariant's examples) from the DP and AD of the VariantCall in
``variant/encoded``, and are ``.`` without either.

**DeepVariant's postprocess_variants** (:func:`postprocess_call_variants_output`, CLI
``postprocess-variants``): call_variants' CallVariantsOutput records -> VCF by its rules
(:func:`deepvariant_site_record`), which differ from the above: low-QUAL alts of a
multi-allelic site are dropped, P(j/k) of two alts comes from their pair example only, a
site without AD is uncalled (NoCall), a RefCall with GQ < 20 gets GT ``./.``, Phred values
are bounded at ~99.03 rather than 99, and PL is truncated rather than rounded.

**Header**: ##fileformat, ##source, the four FILTERs, INFO END, the FORMAT fields (plus
##ALT ``<*>`` and MIN_DP in a gVCF), one ##contig per reference contig with its length,
and ``##dvtrain_command=`` (the command line, given by the CLI) or ``##dvtrain_config=``
(the config as JSON, for library calls; output paths and ``threads`` left out). The sample is
``sample_name``, else the SM of the read groups of ``reads`` (two different SMs are an
error), else ``SAMPLE``. No date line: same inputs give byte-identical files.
"""
from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Optional

import numpy as np

from . import __version__
from .errors import InputError, require_file
from .fileio import existing_inputs
from .gvcf import block_paths, cut_blocks, gvcf_lines, merge_blocks, read_blocks
from .inference import Prediction, run_inference
from .variants import FORMAT_LINES

if TYPE_CHECKING:  # inference workers import dvtrain.inference only: no pydantic / pysam there
    from .config import CallConfig


MAX_PHRED = 99
_EPS = 1e-10
DEFAULT_QUAL_FILTER = 1.0
FILTERS = ("PASS", "RefCall", "LowQual", "NoCall")


def _phred(p: float) -> float:
    return -10.0 * math.log10(max(p, _EPS))


# ---------------------------------------------------------------- genotypes and filters
def genotypes(n_alts: int) -> list[tuple[int, int]]:
    """Diploid genotypes in VCF order: (0,0), (0,1), (1,1), (0,2), (1,2), (2,2), ..."""
    return [(j, k) for k in range(n_alts + 1) for j in range(k + 1)]


def combine_site(n_alts: int, preds: list[tuple[tuple[int, ...], np.ndarray]]) -> np.ndarray:
    """Genotype probabilities (VCF order) of a site from its examples' predictions:
    ``preds`` holds (alt indices of the example, 0-based; [P(0), P(1), P(2)])."""
    gts = genotypes(n_alts)
    out = np.empty(len(gts))
    for g, (j, k) in enumerate(gts):
        alleles = {a - 1 for a in (j, k) if a > 0}
        vals = []
        for sub, pr in preds:
            if alleles and not alleles & set(sub):
                continue
            n = sum(1 for a in (j, k) if a > 0 and a - 1 in sub)
            vals.append(float(pr[min(n, 2)]))
        out[g] = min(vals) if vals else _EPS
    out = np.clip(out, _EPS, None)
    return out / out.sum()


def site_fields(probs: np.ndarray, n_alts: int, qual_filter: float = DEFAULT_QUAL_FILTER,
                depth: Optional[int] = None) -> tuple[str, float, int, list[int], str]:
    """(GT, QUAL, GQ, PL, FILTER) from genotype probabilities in VCF order; ``depth`` 0
    makes a NoCall (GT ``./.``)."""
    p = [min(max(float(x), _EPS), 1.0) for x in probs]  # plain floats: ~10x numpy's speed on 3 values
    total = sum(p)
    p = [x / total for x in p]
    g = max(range(len(p)), key=p.__getitem__)  # the first most likely, as argmax
    j, k = genotypes(n_alts)[g]
    qual = min(MAX_PHRED, _phred(p[0]))
    gq = int(round(min(MAX_PHRED, _phred(1.0 - p[g]))))
    pls = [int(round(_phred(x))) for x in p]
    low = min(pls)
    if depth == 0:
        gt, flt = "./.", "NoCall"
    elif g == 0:
        gt, flt = f"{j}/{k}", "RefCall"
    else:
        gt, flt = f"{j}/{k}", "LowQual" if qual < qual_filter else "PASS"
    return gt, qual, gq, [x - low for x in pls], flt


def genotype_fields(probs: np.ndarray, qual_filter: float = DEFAULT_QUAL_FILTER) -> tuple[str, float, int, list[int], str]:
    """(GT, QUAL, GQ, PL, FILTER) of a biallelic site from [P(0/0), P(0/1), P(1/1)]."""
    return site_fields(probs, 1, qual_filter)


# ---------------------------------------------------------------- postprocess
@dataclass(frozen=True)
class CallRecord:
    contig: int  # index in the reference
    start: int  # 0-based
    end: int  # start + len(REF)
    filter: str
    line: str


def _site_record(chrom: str, start: int, ref: str, alts: tuple[str, ...], preds: list[Prediction],
                 qual_filter: float) -> tuple[str, str]:
    n = len(alts)
    if n == 1 and len(preds) == 1:
        gp = np.asarray(preds[0].probs, dtype=np.float64)
    else:
        gp = combine_site(n, [(p.sub, np.asarray(p.probs)) for p in preds])
    depth, ad = _allele_depths(preds, range(n))
    gt, qual, gq, pl, flt = site_fields(gp, n, qual_filter, depth if ad else None)
    sample = _sample_column(gt, gq, depth, ad, pl, ".4g")
    line = "\t".join([chrom, str(start + 1), ".", ref, ",".join(alts), f"{qual:.1f}", flt, ".",
                      "GT:GQ:DP:AD:VAF:PL", sample])
    return line, flt


def _allele_depths(preds: list[Prediction], alts: Iterable[int]) -> tuple[int, list[int]]:
    """(DP, AD over the reference and ``alts``) of a site from its single-alt examples'
    counts (depth, ref reads, alt reads); (0, []) when they carry none."""
    per = {p.sub[0]: p.counts for p in preds if len(p.sub) == 1 and p.counts and len(p.counts) >= 3}
    if not per:
        return 0, []
    depth, ref_reads = next(iter(per.values()))[:2]
    return depth, [ref_reads] + [per[i][2] if i in per else 0 for i in alts]


def _sample_column(gt: str, gq: int, depth: int, ad: list[int], pl: list[int], vaf_format: str) -> str:
    """GT:GQ:DP:AD:VAF:PL values; DP, AD and VAF (AD / DP per alt) are ``.`` without AD."""
    if ad:
        dp_s, ad_s = str(depth), ",".join(map(str, ad))
        vaf_s = ",".join(format(a / depth if depth else 0.0, vaf_format) for a in ad[1:])
    else:
        dp_s = ad_s = vaf_s = "."
    return ":".join([gt, str(gq), dp_s, ad_s, vaf_s, ",".join(map(str, pl))])


def postprocess(preds: Iterable[Prediction], contigs: dict[str, int], qual_filter: float = DEFAULT_QUAL_FILTER,
                where: str | Path = "examples", deepvariant: Optional[DeepVariantRules] = None) -> list[CallRecord]:
    """One record per site (its examples combined), sorted by reference order and position;
    with ``deepvariant``, by postprocess_variants' rules (:func:`deepvariant_site_record`)."""
    order = {c: i for i, c in enumerate(contigs)}
    sites: dict[tuple, list[Prediction]] = {}
    for p in preds:
        if p.chrom not in order:
            raise InputError(where, f"example on contig {p.chrom!r}, which the reference lacks")
        sites.setdefault((order[p.chrom], p.start, p.ref, p.alts), []).append(p)
    out = []
    for key in sorted(sites):
        ci, start, ref, alts = key
        group = sites[key]
        if deepvariant is None:
            line, flt = _site_record(group[0].chrom, start, ref, alts, group, qual_filter)
        else:
            line, flt = deepvariant_site_record(group[0].chrom, start, ref, alts, group, qual_filter, deepvariant)
        out.append(CallRecord(ci, start, start + len(line.split("\t", 4)[3]), flt, line))
    return out


# ---------------------------------------------------------------- header and sample
def sample_from_reads(reads: list) -> Optional[str]:
    """The SM of the BAMs' read groups; None when no read group names one. Two different
    samples are an InputError."""
    import pysam

    found: Optional[tuple[str, str]] = None  # (sample, BAM that named it)
    for path in reads:
        p = require_file(path, "BAM file")
        try:
            with pysam.AlignmentFile(str(p), "rb", check_sq=False) as bam:
                groups = bam.header.to_dict().get("RG", [])
        except (OSError, ValueError) as e:
            raise InputError(p, f"cannot read BAM header: {e}") from None
        for rg in groups:
            sm = rg.get("SM")
            if not sm:
                continue
            if found is None:
                found = (sm, str(p))
            elif sm != found[0]:
                other = "" if found[1] == str(p) else f" ({found[1]} names {found[0]!r})"
                raise InputError(p, f"read groups name two samples, {found[0]!r} and {sm!r}{other}; "
                                    "give sample_name to choose")
    return found[0] if found else None


def _definitions(qual_filter: float, gvcf: bool) -> list[str]:
    lines = [
        '##FILTER=<ID=PASS,Description="All filters passed">',
        '##FILTER=<ID=RefCall,Description="Genotyping model thinks this site is reference.">',
        f'##FILTER=<ID=LowQual,Description="Variant call with QUAL below the qual_filter threshold ({qual_filter:g})">',
        '##FILTER=<ID=NoCall,Description="No read covers the site (depth 0), so no genotype is called">',
        '##INFO=<ID=END,Number=1,Type=Integer,Description="End position (for use with symbolic alleles)">',
    ]
    if gvcf:
        lines.append('##ALT=<ID=*,Description="Any allele other than the reference (reference blocks)">')
    lines += FORMAT_LINES
    if gvcf:
        lines.append('##FORMAT=<ID=MIN_DP,Number=1,Type=Integer,Description="Minimum read depth over a reference block">')
    return lines


def provenance_line(config: CallConfig, command_line: Optional[str]) -> str:
    """``##dvtrain_command=...`` (CLI) or ``##dvtrain_config={json}``, leaving out what does
    not change the calls (output paths, worker count) and naming inputs by file name only,
    so the same run in another folder writes the same bytes."""
    if command_line is not None:
        return "##dvtrain_command=" + command_line.replace("\r", " ").replace("\n", " ")  # one line
    cfg = config.model_dump(mode="json", exclude={"outfile", "gvcf_outfile", "threads"})
    for key in ("examples", "checkpoint", "ref", "nonvariant_site_path"):
        if cfg.get(key):
            cfg[key] = Path(cfg[key]).name
    cfg["reads"] = [Path(r).name for r in cfg.get("reads") or []]
    return "##dvtrain_config=" + json.dumps(cfg, sort_keys=True, separators=(",", ":"))


def command_line(argv: list[str]) -> str:
    """A shell-quoted ``dvtrain ...`` command line."""
    return shlex.join(["dvtrain", *argv])


# ---------------------------------------------------------------- the stage
def call_variants(config: CallConfig, command_line: Optional[str] = None) -> dict:
    """Examples -> VCF (+ gVCF). ``command_line`` (the CLI's) goes into the header; without
    it the header records the config."""
    from .genome import contig_lengths
    from .variants import vcf_header, write_bgzip_vcf

    paths = existing_inputs(config.examples)
    lengths = contig_lengths(config.ref)
    sample = config.sample_name or sample_from_reads(list(config.reads)) or "SAMPLE"
    blocks_in = block_paths(config, paths) if config.gvcf_outfile is not None else []
    preds, engine = run_inference(paths, config.checkpoint, config.engine, config.batch_size, config.threads)
    calls = postprocess(preds, lengths, config.qual_filter, where=paths[0])
    meta = [provenance_line(config, command_line)]
    source = f"dvtrain-{__version__} call_variants"
    header = vcf_header(lengths, sample, source, definitions=_definitions(config.qual_filter, False), meta=meta)
    write_bgzip_vcf(config.outfile, [c.line for c in calls], header)
    filters = {f: sum(c.filter == f for c in calls) for f in FILTERS}
    result = {"outfile": str(config.outfile), "num_records": len(calls), "num_variants": filters["PASS"],
              "filters": filters, "num_examples": len(preds), "sample_name": sample, "engine": engine}
    if config.gvcf_outfile is not None:
        blocks, binsize = read_blocks(blocks_in, lengths)
        blocks = cut_blocks(merge_blocks(blocks, binsize), calls)
        g_header = vcf_header(lengths, sample, source, definitions=_definitions(config.qual_filter, True), meta=meta)
        write_bgzip_vcf(config.gvcf_outfile, gvcf_lines(blocks, calls, list(lengths), config.ref), g_header)
        result.update(gvcf_outfile=str(config.gvcf_outfile), num_ref_blocks=len(blocks))
    return result


# ---------------------------------------------------------------- DeepVariant's postprocess rules
_DV_MIN_P = 1.25e-10  # nucleus genomics_math: 1 - _MAX_CONFIDENCE (phred ~99.03)
_QUAL_PRECISION = 7  # postprocess_variants rounds QUAL to 7 decimals before filtering


@dataclass(frozen=True)
class DeepVariantRules:
    """postprocess_variants' rules beyond dvtrain's own (its flags, their defaults)."""

    multi_allelic_qual_filter: float = 1.0  # drop a multi-allelic site's alt whose own QUAL is below
    cnn_homref_call_min_gq: float = 20.0  # a RefCall with a lower GQ gets GT ./.


def _dv_phred(p_true: float) -> float:
    """genomics_math.ptrue_to_bounded_phred: -10 log10(1 - p), p capped at 1 - 1.25e-10."""
    return -10.0 * math.log10(1.0 - min(p_true, 1.0 - _DV_MIN_P))


def deepvariant_genotype_probs(n_alts: int, preds: list[Prediction],
                               multi_allelic_qual_filter: float) -> tuple[list[int], list[float]]:
    """(alts kept, 0-based; genotype probabilities over them in VCF order) as
    postprocess_variants' merge_predictions: a site of one example keeps its
    probabilities as they are. Otherwise an alt whose single-alt example has QUAL
    (-10 log10 P(0 copies)) below ``multi_allelic_qual_filter`` is dropped with every
    example holding it (all below: the best is kept); then P(0/0) is the minimum of P(0)
    over the examples, P(0/k) of P(1) over those holding k, P(j/k) of P(2) over those
    holding both j and k, and the whole is normalised."""
    if len(preds) == 1:
        return list(range(n_alts)), [float(x) for x in preds[0].probs]
    quals = {p.sub[0]: round(_dv_phred(min(sum(p.probs[1:]), 1.0)), _QUAL_PRECISION)
             for p in sorted(preds, key=lambda p: p.sub) if len(p.sub) == 1}
    drop = {i for i, q in quals.items() if multi_allelic_qual_filter and q < multi_allelic_qual_filter}
    if quals and len(drop) == n_alts:
        drop.discard(max(quals, key=quals.__getitem__))  # the first of the best
    kept = [i for i in range(n_alts) if i not in drop]
    usable = [p for p in preds if not drop & set(p.sub)]
    probs = []
    for j, k in genotypes(len(kept)):
        a = kept[j - 1] if j else None
        b = kept[k - 1] if k else None
        if b is None:
            vals = [p.probs[0] for p in usable]
        elif a is None:
            vals = [p.probs[1] for p in usable if b in p.sub]
        else:
            vals = [p.probs[2] for p in usable if a in p.sub and b in p.sub]
        probs.append(float(min(vals)) if vals else 0.0)
    total = sum(probs)
    return kept, [x / total for x in probs] if total else [1.0 / len(probs)] * len(probs)


def simplify_alleles(ref: str, alts: list[str]) -> tuple[str, list[str]]:
    """Drop the last base shared by every allele while all are longer than one base
    (variant_utils.simplify_variant_alleles)."""
    alleles = [ref, *alts]
    while all(len(a) > 1 for a in alleles) and len({a[-1] for a in alleles}) == 1:
        alleles = [a[:-1] for a in alleles]
    return alleles[0], alleles[1:]


def deepvariant_site_record(chrom: str, start: int, ref: str, alts: tuple[str, ...], preds: list[Prediction],
                            qual_filter: float, rules: DeepVariantRules) -> tuple[str, str]:
    """A site's VCF line as postprocess_variants writes it: alts pruned and probabilities
    merged (:func:`deepvariant_genotype_probs`), alleles simplified; GT the most likely
    genotype; GQ and QUAL bounded Phred (~99.03 at most), QUAL to one decimal; PL the
    Phred of each probability (floored at 1.25e-10) minus the lowest, truncated. A site
    without AD (or AD all 0) is uncalled: GT ./., GQ 0, PL 0s, FILTER NoCall; then
    RefCall / LowQual / PASS as dvtrain's; a RefCall with GQ below
    ``cnn_homref_call_min_gq`` gets GT ./. (FILTER stays RefCall)."""
    kept, p = deepvariant_genotype_probs(len(alts), preds, rules.multi_allelic_qual_filter)
    ref_s, alts_s = simplify_alleles(ref, [alts[i] for i in kept])
    g = max(range(len(p)), key=p.__getitem__)
    j, k = genotypes(len(kept))[g]
    gq = int(np.around(_dv_phred(p[g])))
    qual = round(_dv_phred(min(sum(p[1:]), 1.0)), _QUAL_PRECISION)
    pls = [-10.0 * math.log10(max(x, _DV_MIN_P)) for x in p]
    pl = [int(x - min(pls)) for x in pls]  # truncated, as nucleus writes PL from GL
    depth, ad = _allele_depths(preds, kept)
    gt = f"{j}/{k}"
    if sum(ad) == 0:  # uncall_gt_if_no_ad
        gt, gq, pl, flt = "./.", 0, [0] * len(p), "NoCall"
    elif g == 0:
        flt = "RefCall"
        if gq < rules.cnn_homref_call_min_gq:
            gt = "./."
    else:
        flt = "LowQual" if qual < qual_filter else "PASS"
    sample = _sample_column(gt, gq, depth, ad, pl, "g")
    line = "\t".join([chrom, str(start + 1), ".", ref_s, ",".join(alts_s), f"{round(qual, 1):g}", flt, ".",
                      "GT:GQ:DP:AD:VAF:PL", sample])
    return line, flt


def read_call_variants_outputs(path: str | Path) -> tuple[list[Prediction], Optional[str]]:
    """call_variants' CallVariantsOutput records (a TFRecord file, gzipped or not) as
    Predictions (counts from the variant's VariantCall DP/AD), and the call_set_name of
    the first record's call (None without)."""
    import struct

    from .example_proto import decode_call_variants_output, decode_variant, variant_calls
    from .fileio import read_tfrecords
    from .inference import call_counts

    preds: list[Prediction] = []
    sample: Optional[str] = None
    for n, rec in enumerate(read_tfrecords(path), 1):
        try:
            var_bytes, indices, probs = decode_call_variants_output(rec)
            var = decode_variant(var_bytes)
            calls = variant_calls(var_bytes)
        except (ValueError, IndexError, UnicodeDecodeError, struct.error) as e:
            raise InputError(path, f"record {n} is not a CallVariantsOutput ({e})") from None
        if not var["reference_name"] or not var["alternate_bases"] or len(probs) != 3:
            raise InputError(path, f"record {n} is not a CallVariantsOutput with a variant and 3 genotype "
                                   f"probabilities (has {len(probs)})")
        sub = tuple(indices) or (0,)
        if any(not 0 <= i < len(var["alternate_bases"]) for i in sub):
            raise InputError(path, f"record {n}: alt allele indices {list(sub)} outside the variant's "
                                   f"{len(var['alternate_bases'])} alt(s)")
        if sample is None and calls and calls[0]["call_set_name"]:
            sample = calls[0]["call_set_name"]
        preds.append(Prediction(var["reference_name"], var["start"], var["reference_bases"],
                                tuple(var["alternate_bases"]), sub, (probs[0], probs[1], probs[2]),
                                call_counts(var_bytes, sub)))
    return preds, sample


def postprocess_call_variants_output(infile: str | Path, ref: str | Path, outfile: str | Path,
                                     qual_filter: float = DEFAULT_QUAL_FILTER, sample_name: Optional[str] = None,
                                     rules: DeepVariantRules = DeepVariantRules(),
                                     command_line: Optional[str] = None) -> dict:
    """DeepVariant's postprocess_variants on call_variants' output (``infile``: a
    CallVariantsOutput TFRecord file or shard spec) -> bgzipped, indexed VCF. The sample
    is ``sample_name``, else the records' call_set_name, else SAMPLE."""
    from .genome import contig_lengths
    from .variants import vcf_header, write_bgzip_vcf

    paths = existing_inputs(str(infile))
    lengths = contig_lengths(ref)
    preds: list[Prediction] = []
    found: Optional[str] = None
    for path in paths:
        more, name = read_call_variants_outputs(path)
        preds += more
        found = found or name
    sample = sample_name or found or "SAMPLE"
    calls = postprocess(preds, lengths, qual_filter, where=paths[0], deepvariant=rules)
    meta = ["##dvtrain_command=" + command_line.replace("\r", " ").replace("\n", " ") if command_line else
            "##dvtrain_postprocess_variants=" + json.dumps(
                {"infile": Path(str(infile)).name, "ref": Path(ref).name, "qual_filter": qual_filter,
                 "sample_name": sample_name, **rules.__dict__}, sort_keys=True, separators=(",", ":"))]
    header = vcf_header(lengths, sample, f"dvtrain-{__version__} postprocess_variants",
                        definitions=_definitions(qual_filter, False), meta=meta)
    write_bgzip_vcf(outfile, [c.line for c in calls], header)
    filters = {f: sum(c.filter == f for c in calls) for f in FILTERS}
    return {"outfile": str(outfile), "num_records": len(calls), "num_variants": filters["PASS"],
            "filters": filters, "num_call_variants_outputs": len(preds), "sample_name": sample}
