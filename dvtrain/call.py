"""call_variants + postprocess: genotype probabilities -> bgzipped, indexed VCF.

DeepVariant conventions: GT is the most likely of hom-ref / het / hom-alt;
QUAL = -10 log10 P(hom-ref) (a variant's confidence), GQ = -10 log10(1 - P(GT)),
PL = -10 log10 P(g) shifted so the best genotype has 0; hom-ref calls are kept with
FILTER RefCall. Probabilities are floored at 1e-10 and QUAL/GQ capped at 99.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .config import CallConfig
from .errors import InputError, ShapeMismatchError
from .example_proto import decode_example, decode_variant
from .fileio import existing_inputs, read_tfrecords
from .genome import contig_lengths
from .variants import vcf_header, write_bgzip_vcf

MAX_PHRED = 99
_EPS = 1e-10


def _phred(p: float) -> float:
    return -10.0 * math.log10(max(p, _EPS))


def genotype_fields(probs: np.ndarray) -> tuple[str, float, int, list[int], str]:
    """(GT, QUAL, GQ, PL, FILTER) from [P(0/0), P(0/1), P(1/1)]."""
    p = np.clip(np.asarray(probs, dtype=np.float64), _EPS, 1.0)
    p = p / p.sum()
    g = int(np.argmax(p))
    gt = ("0/0", "0/1", "1/1")[g]
    qual = min(MAX_PHRED, _phred(float(p[0])))
    gq = int(round(min(MAX_PHRED, _phred(1.0 - float(p[g])))))
    pls = [int(round(_phred(float(x)))) for x in p]
    low = min(pls)
    pl = [x - low for x in pls]
    return gt, qual, gq, pl, "RefCall" if g == 0 else "PASS"


def _batches(paths: list[Path], batch_size: int):
    images, metas = [], []
    for path in paths:
        for rec in read_tfrecords(path):
            ex = decode_example(rec, keys={"image/encoded", "image/shape", "variant/encoded", "dvtrain/allele_counts"})
            if "image/encoded" not in ex or "variant/encoded" not in ex:
                raise InputError(path, "example without image/encoded or variant/encoded")
            images.append(np.frombuffer(ex["image/encoded"][0], dtype=np.uint8).reshape(ex["image/shape"]))
            metas.append((decode_variant(ex["variant/encoded"][0]), ex.get("dvtrain/allele_counts")))
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
    records: list[tuple[int, int, str, str, str]] = []
    n_var = 0
    for images, metas in _batches(paths, config.batch_size):
        if tuple(images.shape[1:]) != want:
            raise ShapeMismatchError(paths[0], f"image shape {list(images.shape[1:])} does not fit the model ({list(want)})")
        probs = np.asarray(model.predict_on_batch(images))
        for pr, (var, counts) in zip(probs, metas):
            chrom = var["reference_name"]
            if chrom not in order:
                raise InputError(paths[0], f"example on contig {chrom!r}, which the reference lacks")
            gt, qual, gq, pl, flt = genotype_fields(pr)
            n_var += flt == "PASS"
            ref, alt = var["reference_bases"], ",".join(var["alternate_bases"])
            fmt = f"{gt}:{gq}"
            keys = "GT:GQ"
            if counts:
                dp, rc, ac = counts
                vaf = ac / dp if dp else 0.0
                keys += ":DP:AD:VAF"
                fmt += f":{dp}:{rc},{ac}:{vaf:.4g}"
            keys += ":PL"
            fmt += ":" + ",".join(map(str, pl))
            line = "\t".join([chrom, str(var["start"] + 1), ".", ref, alt, f"{qual:.1f}", flt, ".", keys, fmt])
            records.append((order[chrom], var["start"], ref, alt, line))
    records.sort()
    header = vcf_header(lengths, config.sample_name, source=f"dvtrain call_variants model={Path(config.checkpoint).name}")
    write_bgzip_vcf(config.outfile, [r[4] for r in records], header)
    return {"outfile": str(config.outfile), "num_records": len(records), "num_variants": n_var}
