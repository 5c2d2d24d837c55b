"""How sure is an F1 margin? A paired block bootstrap over two evaluations of one truth.

``margin(config)`` reads two ``dvtrain evaluate`` decision VCFs (``PREFIX.vcf.gz``: samples
TRUTH and QUERY with BD / BVT, see :mod:`dvtrain.evaluate`), scored against the same truth
and regions (e.g. a custom and a baseline model on the test contig), and writes
``output_json``::

    {"INDEL": {"f1": 0.7338, "baseline_f1": 0.6741, "difference": 0.0597,
               "sd": 0.0128, "low": 0.0355, "high": 0.0851, "confidence": 0.95,
               "truth_total": 537, "blocks": 812},
     "SNP": {...}, "block_size": 1000, "resamples": 2000, "seed": 0}

Counts are hap.py's: TRUTH TP / FN per truth allele, QUERY TP / FP per query allele (the
distinct non-reference alleles of the sample's genotype; an allele of a ``MIXED`` record is
typed from its own trimmed REF / ALT), so the point estimates equal the F1 of each
evaluation's PASS summary row. The genome is cut into ``block_size`` blocks per contig, and
every block holding a scored record of either evaluation is a unit: each resample draws
that many blocks with replacement (``seed``) and computes both F1 scores on the same draw,
so the spread is that of the difference, with nearby records, which are not independent,
kept together. ``low`` / ``high`` are the percentile interval.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Optional

import numpy as np
import pysam

from .config import MarginConfig
from .errors import InputError, require_file
from .evaluate import trim
from .fileio import atomic_output
from .variants import variant_type

TYPES = ("INDEL", "SNP")
_COLUMNS = {("TRUTH", "TP"): 0, ("TRUTH", "FN"): 1, ("QUERY", "TP"): 2, ("QUERY", "FP"): 3}


def block_counts(path: str | Path, block_size: int) -> dict[str, dict[tuple[str, int], np.ndarray]]:
    """{type: {(contig, block): [truth TP, truth FN, query TP, query FP]}} of one decision VCF."""
    out: dict[str, dict] = {t: defaultdict(lambda: np.zeros(4, np.int64)) for t in TYPES}
    require_file(path, "decision VCF")
    try:
        with pysam.VariantFile(str(path)) as vcf:
            if list(vcf.header.samples)[:2] != ["TRUTH", "QUERY"] or not {"BD", "BVT"} <= set(vcf.header.formats):
                raise InputError(path, "not a dvtrain evaluate / hap.py decision VCF (needs samples TRUTH and "
                                       "QUERY, FORMAT BD and BVT)")
            for rec in vcf:
                for side in ("TRUTH", "QUERY"):
                    s = rec.samples[side]
                    column = _COLUMNS.get((side, s["BD"]))
                    if column is None:
                        continue
                    key = (rec.contig, rec.pos // block_size)
                    for allele in {a for a in (s["GT"] or ()) if a}:
                        alt = rec.alts[allele - 1]
                        vtype = s["BVT"] if s["BVT"] in TYPES else variant_type(*trim(0, rec.ref, alt)[1:])
                        out[vtype][key][column] += 1
    except (OSError, ValueError) as e:
        raise InputError(path, f"cannot be read as a decision VCF ({e})") from None
    return out


def f1_scores(counts: np.ndarray) -> np.ndarray:
    """F1 from [..., 4] count sums as hap.py defines it: NaN without calls or truth, 0 without
    true positives."""
    t_tp, t_fn, q_tp, q_fp = (counts[..., i].astype(float) for i in range(4))
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = t_tp / (t_tp + t_fn)
        precision = q_tp / (q_tp + q_fp)
        f1 = np.where(recall + precision > 0, 2 * recall * precision / (recall + precision), 0.0)
    return np.where(np.isnan(recall) | np.isnan(precision), np.nan, f1)


def paired_bootstrap(a: dict[tuple[str, int], np.ndarray], b: dict[tuple[str, int], np.ndarray], *,
                     resamples: int, seed: int, confidence: float) -> Optional[dict]:
    """F1(a) - F1(b) with its bootstrap spread over the blocks of either; None if both are
    empty. Where either F1 is undefined (no calls) the difference and its spread are None; a
    resample that draws no call of one side counts its F1 as 0."""
    keys = sorted(set(a) | set(b))
    if not keys:
        return None
    zero = np.zeros(4, np.int64)
    ca = np.array([a.get(k, zero) for k in keys])
    cb = np.array([b.get(k, zero) for k in keys])
    fa, fb = float(f1_scores(ca.sum(0))), float(f1_scores(cb.sum(0)))
    result = {"f1": None if np.isnan(fa) else round(fa, 6), "baseline_f1": None if np.isnan(fb) else round(fb, 6),
              "difference": None, "sd": None, "low": None, "high": None, "confidence": confidence,
              "truth_total": int(ca[:, :2].sum()), "blocks": len(keys)}
    if np.isnan(fa) or np.isnan(fb):
        return result
    rng = np.random.default_rng(seed)
    n = len(keys)
    chunk = max(1, 2_000_000 // n)  # bounded memory on a whole genome
    diffs = []
    for start in range(0, resamples, chunk):
        weights = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(min(chunk, resamples - start))])
        diffs.append(np.nan_to_num(f1_scores(weights @ ca)) - np.nan_to_num(f1_scores(weights @ cb)))
    diff = np.concatenate(diffs)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(diff, [tail, 100 - tail])
    return {**result, "difference": round(fa - fb, 6), "sd": round(float(diff.std()), 6),
            "low": round(float(low), 6), "high": round(float(high), 6)}


def margin(config: MarginConfig) -> dict:
    """Write and return ``config.output_json`` (module docstring)."""
    a = block_counts(config.eval_vcf, config.block_size)
    b = block_counts(config.baseline_eval_vcf, config.block_size)
    out: dict = {}
    for vtype in TYPES:
        ta = int(sum(c[:2].sum() for c in a[vtype].values()))
        tb = int(sum(c[:2].sum() for c in b[vtype].values()))
        if ta != tb:
            raise InputError(config.eval_vcf, f"{ta} truth {vtype}s scored, but {tb} in {config.baseline_eval_vcf}: "
                                              "a paired comparison needs one truth and one set of regions")
        result = paired_bootstrap(a[vtype], b[vtype], resamples=config.resamples, seed=config.seed,
                                  confidence=config.confidence)
        if result is not None:
            out[vtype] = result
    out.update(block_size=config.block_size, resamples=config.resamples, seed=config.seed)
    with atomic_output(Path(config.output_json), suffix=".json") as tmp:
        tmp.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    return out
