"""call_variants + postprocess: genotype probabilities -> bgzipped, indexed VCF.

DeepVariant conventions: GT is the most likely of hom-ref / het / hom-alt;
QUAL = -10 log10 P(hom-ref) (a variant's confidence), GQ = -10 log10(1 - P(GT)),
PL = -10 log10 P(g) shifted so the best genotype has 0; hom-ref calls are kept with
FILTER RefCall. Probabilities are floored at 1e-10 and QUAL/GQ capped at 99.

Multi-allelic sites (make_examples writes one example per alt allele and one per pair of
alts, marked by ``alt_allele_indices``) become one record: the probability of genotype
``j/k`` is the minimum, over the site's examples that contain ``j`` or ``k`` (every
example for ``0/0``), of that example's probability for the number of the genotype's
alleles it contains; the genotype probabilities are then renormalised (DeepVariant's
postprocess does the same). PL lists the genotypes in VCF order.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .config import CallConfig
from .errors import InputError, ShapeMismatchError
from .example_proto import decode_alt_allele_indices, decode_example, decode_variant
from .fileio import existing_inputs, read_tfrecords
from .genome import contig_lengths
from .variants import vcf_header, write_bgzip_vcf

MAX_PHRED = 99
_EPS = 1e-10


def _phred(p: float) -> float:
    return -10.0 * math.log10(max(p, _EPS))


def genotype_fields(probs: np.ndarray) -> tuple[str, float, int, list[int], str]:
    """(GT, QUAL, GQ, PL, FILTER) from [P(0/0), P(0/1), P(1/1)]."""
    return site_fields(probs, 1)


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


def site_fields(probs: np.ndarray, n_alts: int) -> tuple[str, float, int, list[int], str]:
    """(GT, QUAL, GQ, PL, FILTER) from genotype probabilities in VCF order."""
    p = np.clip(np.asarray(probs, dtype=np.float64), _EPS, 1.0)
    p = p / p.sum()
    g = int(np.argmax(p))
    j, k = genotypes(n_alts)[g]
    qual = min(MAX_PHRED, _phred(float(p[0])))
    gq = int(round(min(MAX_PHRED, _phred(1.0 - float(p[g])))))
    pls = [int(round(_phred(float(x)))) for x in p]
    low = min(pls)
    return f"{j}/{k}", qual, gq, [x - low for x in pls], "RefCall" if g == 0 else "PASS"


def _batches(paths: list[Path], batch_size: int):
    images, metas = [], []
    for path in paths:
        for rec in read_tfrecords(path):
            ex = decode_example(rec, keys={"image/encoded", "image/shape", "variant/encoded", "dvtrain/allele_counts",
                                           "alt_allele_indices/encoded"})
            if "image/encoded" not in ex or "variant/encoded" not in ex:
                raise InputError(path, "example without image/encoded or variant/encoded")
            images.append(np.frombuffer(ex["image/encoded"][0], dtype=np.uint8).reshape(ex["image/shape"]))
            sub = tuple(decode_alt_allele_indices(ex["alt_allele_indices/encoded"][0])) \
                if "alt_allele_indices/encoded" in ex else (0,)
            metas.append((decode_variant(ex["variant/encoded"][0]), ex.get("dvtrain/allele_counts"), sub))
            if len(images) == batch_size:
                yield np.stack(images), metas
                images, metas = [], []
    if images:
        yield np.stack(images), metas


def call_variants(config: CallConfig) -> dict:
    paths = existing_inputs(config.examples)
    lengths = contig_lengths(config.ref)
    from .model import load_model  # imports the Keras backend: only once inputs look right

    model = load_model(config.checkpoint)
    want = tuple(model.input_shape[1:])
    order = {c: i for i, c in enumerate(lengths)}
    sites: dict[tuple, dict] = {}
    for images, metas in _batches(paths, config.batch_size):
        if tuple(images.shape[1:]) != want:
            raise ShapeMismatchError(paths[0], f"image shape {list(images.shape[1:])} does not fit the model ({list(want)})")
        probs = np.asarray(model.predict_on_batch(images))
        for pr, (var, counts, sub) in zip(probs, metas):
            chrom = var["reference_name"]
            if chrom not in order:
                raise InputError(paths[0], f"example on contig {chrom!r}, which the reference lacks")
            key = (order[chrom], var["start"], var["reference_bases"], tuple(var["alternate_bases"]))
            site = sites.setdefault(key, {"chrom": chrom, "preds": [], "counts": {}})
            site["preds"].append((sub, pr))
            if counts and len(sub) == 1:
                site["counts"][sub[0]] = counts
    records = []
    n_var = 0
    for key in sorted(sites):
        _, start, ref, alts = key
        site = sites[key]
        n = len(alts)
        if n == 1 and len(site["preds"]) == 1:
            gp = np.asarray(site["preds"][0][1], dtype=np.float64)
        else:
            gp = combine_site(n, site["preds"])
        gt, qual, gq, pl, flt = site_fields(gp, n)
        n_var += flt == "PASS"
        fmt, keys = f"{gt}:{gq}", "GT:GQ"
        per = site["counts"]
        if per:
            first = next(iter(per.values()))
            dp, rc = first[0], first[1]
            ad = [rc] + [per[i][2] if i in per else 0 for i in range(n)]
            vaf = ",".join(f"{(a / dp if dp else 0.0):.4g}" for a in ad[1:])
            keys += ":DP:AD:VAF"
            fmt += f":{dp}:{','.join(map(str, ad))}:{vaf}"
        keys += ":PL"
        fmt += ":" + ",".join(map(str, pl))
        records.append("\t".join([site["chrom"], str(start + 1), ".", ref, ",".join(alts), f"{qual:.1f}", flt, ".",
                                  keys, fmt]))
    header = vcf_header(lengths, config.sample_name, source=f"dvtrain call_variants model={Path(config.checkpoint).name}")
    write_bgzip_vcf(config.outfile, records, header)
    return {"outfile": str(config.outfile), "num_records": len(records), "num_variants": n_var}
