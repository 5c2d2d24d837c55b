"""A seeded perturbation of a truth VCF with its expected hap.py-style counts.

``perturb(truth_vcf, bed, out_vcf, drop=N, flip=M, add_fp=K, seed=S)`` writes a query VCF
(plain text, sorted) that is the truth with

* ``drop`` records removed                    -> each allele: truth FN;
* ``flip`` records' genotypes flipped         -> truth FN and query FP (counted in FP.gt);
  (het ``0/1``/``1/0`` <-> hom-alt ``1/1``, phasing kept)
* ``add_fp`` new het SNPs at positions inside the BED that no record covers -> query FP,

and returns the expected PASS-row counts per type, computed by a plain scan, independent of
``dvtrain.evaluate``. Only biallelic PASS records with a plain het/hom-alt genotype, whose
REF span lies inside the (merged) BED and whose POS is shared with no other record, are
perturbed, so each perturbation changes exactly one event.

Without a reference the evaluator does not check REF, so the added SNPs use a random REF
base; that is enough for counting.
"""

from __future__ import annotations

import bisect
import gzip
import random
from pathlib import Path

FLIPS = {"0/1": "1/1", "1/0": "1/1", "0|1": "1|1", "1|0": "1|1", "1/1": "0/1", "1|1": "0|1"}
TYPES = ("INDEL", "SNP")


def _open(p: Path):
    return gzip.open(p, "rt") if p.name.endswith((".gz", ".bgz")) else open(p)


def merged_bed(bed: Path) -> dict[str, tuple[list[int], list[int]]]:
    by: dict[str, list[tuple[int, int]]] = {}
    with _open(Path(bed)) as fh:
        for line in fh:
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            c, s, e = line.split("\t")[:3]
            by.setdefault(c, []).append((int(s), int(e)))
    out = {}
    for c, ivs in by.items():
        ivs.sort()
        m = [list(ivs[0])]
        for s, e in ivs[1:]:
            if s <= m[-1][1]:
                m[-1][1] = max(m[-1][1], e)
            else:
                m.append([s, e])
        out[c] = ([a for a, _ in m], [b for _, b in m])
    return out


def _inside(merged, chrom: str, s: int, e: int) -> bool:
    starts, ends = merged.get(chrom, ([], []))
    i = bisect.bisect_right(starts, s) - 1
    return i >= 0 and e <= ends[i]


def _trim_type(ref: str, alt: str) -> str:
    while len(ref) > 1 and len(alt) > 1 and ref[-1] == alt[-1]:
        ref, alt = ref[:-1], alt[:-1]
    while len(ref) > 1 and len(alt) > 1 and ref[0] == alt[0]:
        ref, alt = ref[1:], alt[1:]
    return "SNP" if len(ref) == 1 and len(alt) == 1 else "INDEL"


def _event_types(f: list[str]) -> list[str]:
    """Types of the called, non-symbolic alleles of one record (one per distinct allele)."""
    alts = f[4].split(",")
    g = f[9].split(":")[0].replace("|", "/").split("/") if len(f) > 9 else []
    called = sorted({int(a) for a in g if a not in (".", "0")})
    return [_trim_type(f[3].upper(), alts[a - 1].upper()) for a in called if alts[a - 1][:1] not in ("<", "*", "")
            and "[" not in alts[a - 1] and "]" not in alts[a - 1]]


def perturb(truth_vcf, bed, out_vcf, drop: int, flip: int, add_fp: int, seed: int = 0) -> dict:
    """Write the perturbed query to ``out_vcf``; return ``{"expected": {type: counts}, ...}``
    where counts are the exact PASS-row values of TRUTH.TOTAL/TP/FN, QUERY.TOTAL/FP/UNK,
    FP.gt, FP.al."""
    truth_vcf, bed, out_vcf = Path(truth_vcf), Path(bed), Path(out_vcf)
    merged = merged_bed(bed)
    header: list[str] = []
    records: list[list[str]] = []
    with _open(truth_vcf) as fh:
        for line in fh:
            if line.startswith("#"):
                header.append(line)
            elif line.strip():
                records.append(line.rstrip("\n").split("\t"))
    pos_count: dict[tuple[str, str], int] = {}
    covered: dict[str, set[int]] = {}
    for f in records:
        pos_count[(f[0], f[1])] = pos_count.get((f[0], f[1]), 0) + 1
        s = int(f[1]) - 1
        covered.setdefault(f[0], set()).update(range(s, s + len(f[3])))

    def counted(f) -> bool:
        s = int(f[1]) - 1
        return f[6] in ("PASS", ".") and _inside(merged, f[0], s, s + len(f[3]))

    candidates = [i for i, f in enumerate(records)
                  if counted(f) and "," not in f[4] and len(f) > 9 and f[9].split(":")[0] in FLIPS
                  and pos_count[(f[0], f[1])] == 1 and len(_event_types(f)) == 1]
    rng = random.Random(seed)
    if drop + flip > len(candidates):
        raise ValueError(f"only {len(candidates)} records can be perturbed; asked for {drop + flip}")
    chosen = rng.sample(candidates, drop + flip)
    dropped, flipped = set(chosen[:drop]), set(chosen[drop:])

    # baseline counts (truth == query), then the perturbation's deltas
    z = lambda: {t: 0 for t in TYPES}  # noqa: E731
    t_total, q_total, q_unk, fn, fp_gt, fp = z(), z(), z(), z(), z(), z()
    for i, f in enumerate(records):
        if f[6] not in ("PASS", "."):
            continue
        inside = counted(f)
        for t in _event_types(f):
            if inside:
                t_total[t] += 1
            if i in dropped:
                fn[t] += 1
                continue
            q_total[t] += 1
            if not inside:
                q_unk[t] += 1
            if i in flipped:
                fn[t] += 1
                fp_gt[t] += 1

    # false-positive SNPs: inside the BED, on no record's REF span, distinct positions
    contigs = [c for c in merged if c in covered] or list(merged)
    ivs = [(c, s, e) for c in contigs for s, e in zip(*merged[c])]
    weights = [e - s for _, s, e in ivs]
    new: dict[tuple[str, int], list[str]] = {}
    tries = 0
    while len(new) < add_fp:
        tries += 1
        if tries > 1000 * max(add_fp, 1):
            raise ValueError("could not place the false-positive SNPs (BED too small?)")
        c, s, e = rng.choices(ivs, weights)[0]
        p = rng.randrange(s, e)
        if p in covered.get(c, ()) or (c, p) in new:
            continue
        ref = rng.choice("ACGT")
        alt = rng.choice([b for b in "ACGT" if b != ref])
        new[(c, p)] = [c, str(p + 1), ".", ref, alt, "50", "PASS", ".", "GT", "0/1"]
    fp["SNP"] += add_fp
    q_total["SNP"] += add_fp

    lines = []
    for i, f in enumerate(records):
        if i in dropped:
            continue
        if i in flipped:
            g, _, rest = f[9].partition(":")
            f = f[:9] + [FLIPS[g] + (":" + rest if rest else "")]
        lines.append(f)
    order = {c: n for n, c in enumerate(dict.fromkeys([f[0] for f in records] + [c for c, _ in new]))}
    lines += list(new.values())
    lines.sort(key=lambda f: (order[f[0]], int(f[1])))
    out_vcf.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(header) + "".join("\t".join(f) + "\n" for f in lines)
    if out_vcf.name.endswith(".gz"):
        import pysam

        plain = out_vcf.with_name(out_vcf.name[:-3])
        plain.write_text(text)
        pysam.tabix_compress(str(plain), str(out_vcf), force=True)
        pysam.tabix_index(str(out_vcf), preset="vcf", force=True)
        plain.unlink()
    else:
        out_vcf.write_text(text)

    expected = {}
    for t in TYPES:
        expected[t] = {
            "TRUTH.TOTAL": t_total[t], "TRUTH.TP": t_total[t] - fn[t], "TRUTH.FN": fn[t],
            "QUERY.TOTAL": q_total[t], "QUERY.FP": fp_gt[t] + fp[t], "QUERY.UNK": q_unk[t],
            "FP.gt": fp_gt[t], "FP.al": 0,
        }
    return {"expected": expected, "dropped": len(dropped), "flipped": len(flipped), "added_fp": add_fp,
            "candidates": len(candidates), "records_out": len(lines), "seed": seed}
