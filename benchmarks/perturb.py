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
base; that is enough for counting. Pass ``reference=`` (a FASTA) to give them the reference
base instead (needed when the evaluation checks REF against a reference).

``reshift(truth_vcf, reference_fasta, out_vcf, seed)`` writes an *equivalent* copy of the
truth whose indels are written differently: each indel is moved to its right-most
equivalent position (an indel in a homopolymer/STR slides along the repeat, others move
while the next reference base repeats the indel's first; most do move at least one base)
and a seeded subset is padded with extra reference bases on the left and/or right. Genotypes, FILTERs, SNPs and every other record are unchanged, so compared
with a reference (left-alignment) the copy is all TP, no FP. It also returns what an
evaluation *without* a reference (trimming only) must report, from a plain scan.
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


def perturb(truth_vcf, bed, out_vcf, drop: int, flip: int, add_fp: int, seed: int = 0, reference=None) -> dict:
    """Write the perturbed query to ``out_vcf``; return ``{"expected": {type: counts}, ...}``
    where counts are the exact PASS-row values of TRUTH.TOTAL/TP/FN, QUERY.TOTAL/FP/UNK,
    FP.gt, FP.al. With ``reference`` (a FASTA path) the added SNPs carry the reference base
    as REF (the random draws, hence positions and output without it, are unchanged)."""
    truth_vcf, bed, out_vcf = Path(truth_vcf), Path(bed), Path(out_vcf)
    merged = merged_bed(bed)
    header, records = _read_vcf(truth_vcf)
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
        if reference is not None:
            seq = _ref_seq(reference, c)
            ref = seq[p] if p < len(seq) else "N"
            if ref not in "ACGT":
                continue
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
    _write_vcf(out_vcf, header, lines)

    expected = {}
    for t in TYPES:
        expected[t] = {
            "TRUTH.TOTAL": t_total[t], "TRUTH.TP": t_total[t] - fn[t], "TRUTH.FN": fn[t],
            "QUERY.TOTAL": q_total[t], "QUERY.FP": fp_gt[t] + fp[t], "QUERY.UNK": q_unk[t],
            "FP.gt": fp_gt[t], "FP.al": 0,
        }
    return {"expected": expected, "dropped": len(dropped), "flipped": len(flipped), "added_fp": add_fp,
            "candidates": len(candidates), "records_out": len(lines), "seed": seed}


# ---------------------------------------------------------------- shared file helpers
def _read_vcf(path: Path) -> tuple[list[str], list[list[str]]]:
    header: list[str] = []
    records: list[list[str]] = []
    with _open(Path(path)) as fh:
        for line in fh:
            if line.startswith("#"):
                header.append(line)
            elif line.strip():
                records.append(line.rstrip("\n").split("\t"))
    return header, records


def _write_vcf(out_vcf: Path, header: list[str], lines: list[list[str]]) -> None:
    """Plain text, or bgzip + tabix index when the name ends in .gz."""
    out_vcf = Path(out_vcf)
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


_REF_CACHE: dict[tuple[str, str], str] = {}


def _ref_seq(reference, chrom: str) -> str:
    """The whole upper-case contig (cached; the FASTA needs its .fai or is indexed here)."""
    key = (str(reference), chrom)
    if key not in _REF_CACHE:
        import pysam

        if len(_REF_CACHE) > 8:
            _REF_CACHE.clear()
        with pysam.FastaFile(str(reference)) as fa:
            _REF_CACHE[key] = fa.fetch(chrom).upper() if chrom in fa.references else ""
    return _REF_CACHE[key]


# ---------------------------------------------------------------- reshift
def _trim(pos: int, ref: str, alt: str) -> tuple[int, str, str]:
    """dvtrain.evaluate's reference-free normalisation: common suffix, then common prefix."""
    while len(ref) > 1 and len(alt) > 1 and ref[-1] == alt[-1]:
        ref, alt = ref[:-1], alt[:-1]
    while len(ref) > 1 and len(alt) > 1 and ref[0] == alt[0]:
        ref, alt, pos = ref[1:], alt[1:], pos + 1
    return pos, ref, alt


def _right_shift(seq: str, pos: int, ref: str, alt: str):
    """Equivalent anchored representations of a pure indel (``pos`` 0-based, REF/ALT sharing
    their first base, one of them a single base), from ``pos`` rightwards, as
    ``(pos, ref, alt)``: the indel rolled one base at a time while the reference allows."""
    n = len(seq)
    out = [(pos, ref, alt)]
    if len(ref) > len(alt):  # deletion of seq[p+1 : p+1+k]
        k = len(ref) - 1
        p = pos
        while p + 1 + k < n and seq[p + 1] == seq[p + 1 + k]:
            p += 1
            out.append((p, seq[p : p + 1 + k], seq[p]))
    else:  # insertion of ins after seq[p]
        ins, p = alt[1:], pos
        while p + 1 < n and seq[p + 1] == ins[0]:
            ins, p = ins[1:] + ins[0], p + 1
            out.append((p, seq[p], seq[p] + ins))
    return out


PADS = ((0, 1), (1, 0), (1, 1), (0, 2), (2, 0))  # (left, right) extra reference bases


def reshift(truth_vcf, reference_fasta, out_vcf, seed: int = 0, fraction: float = 1.0, pad: bool = True,
            bed=None, pad_fraction: float = 0.5) -> dict:
    """Write ``out_vcf``: the truth with its indels in equivalent, different representations.

    Eligible: biallelic records that trim (suffix, then prefix) to a pure indel (REF and ALT
    share their first base, one is that base alone) whose REF agrees with the reference and
    whose POS no other record shares. A seeded ``fraction`` of them is rewritten: moved to the
    right-most equivalent position, then (``pad``) a seeded ``pad_fraction`` of those padded
    with extra reference bases (one of ``PADS``). A rewrite never makes a record's REF span
    overlap another record's (so no two records share a POS and the file stays sorted), never
    leaves the contig, and with ``bed`` never changes whether the REF span lies inside the
    (merged) BED -- so inside/outside counts are the same whether the evaluator decides on the
    written or the normalised span. Where the full move is not allowed, the right-most allowed
    position is used; a pad that is not allowed is dropped.

    Returns counts (``eligible``, ``rewritten``, ``shifted`` (POS of the anchored indel moved),
    ``padded``, ``changed`` (records whose POS/REF/ALT differ), ``trim_differs`` (rewritten
    records whose trimmed form differs from the truth's: only a reference can match them),
    ``blocked`` (shift cut short by a neighbour/the BED/the contig end)) and ``expected``: the
    PASS rows of the truth vs this copy *with* a reference (all TP: TRUTH.TP = TRUTH.TOTAL,
    QUERY.FP = 0), and ``expected_trim_only``: the same rows *without* a reference, assuming the
    truth is left-aligned (as a normalised truth is)."""
    truth_vcf, out_vcf = Path(truth_vcf), Path(out_vcf)
    merged = merged_bed(Path(bed)) if bed is not None else None
    header, records = _read_vcf(truth_vcf)
    pos_count: dict[tuple[str, str], int] = {}
    for f in records:
        pos_count[(f[0], f[1])] = pos_count.get((f[0], f[1]), 0) + 1

    def inside(chrom: str, s: int, e: int) -> bool:
        return True if merged is None else _inside(merged, chrom, s, e)

    rng = random.Random(seed)
    stats = dict.fromkeys(("eligible", "rewritten", "shifted", "padded", "changed", "trim_differs", "blocked"), 0)
    out: list[list[str]] = []
    prev_chrom, prev_end = None, -1  # max end of the (final) REF spans so far on this contig
    for i, f in enumerate(records):
        chrom, pos0 = f[0], int(f[1]) - 1
        if chrom != prev_chrom:
            prev_chrom, prev_end = chrom, -1
        nxt = records[i + 1] if i + 1 < len(records) else None
        next_start = int(nxt[1]) - 1 if nxt is not None and nxt[0] == chrom else None
        new = f
        ref, alts = f[3].upper(), f[4].upper().split(",")
        seq = _ref_seq(reference_fasta, chrom) if len(alts) == 1 else ""
        p, r, a = _trim(pos0, ref, alts[0]) if len(alts) == 1 else (0, "", "")
        eligible = (len(alts) == 1 and set(ref + alts[0]) <= set("ACGTN") and len(r) != len(a)
                    and r[:1] == a[:1] and min(len(r), len(a)) == 1 and pos_count[(f[0], f[1])] == 1
                    and seq[pos0 : pos0 + len(ref)] == ref)
        if eligible:
            stats["eligible"] += 1
            rewrite = rng.random() < fraction
            pad_draw, pad_pick = rng.random(), rng.randrange(len(PADS))
            if rewrite:
                was_in = inside(chrom, pos0, pos0 + len(ref))

                def allowed(q: int, qr: str) -> bool:
                    return (q >= 0 and q + len(qr) <= len(seq) and q >= prev_end
                            and (next_start is None or q + len(qr) <= next_start)
                            and inside(chrom, q, q + len(qr)) == was_in)

                steps = _right_shift(seq, p, r, a)
                ok = [s for s in steps if allowed(s[0], s[1])]
                if ok:
                    stats["rewritten"] += 1
                    q, qr, qa = ok[-1]
                    stats["blocked"] += ok[-1] != steps[-1]
                    stats["shifted"] += q != p
                    if pad and pad_draw < pad_fraction:
                        lp, rp = PADS[pad_pick]
                        e = q + len(qr)
                        pr = seq[q - lp : e + rp] if q - lp >= 0 else ""
                        if len(pr) == len(qr) + lp + rp and allowed(q - lp, pr):
                            qa = seq[q - lp : q] + qa + seq[e : e + rp]
                            q, qr = q - lp, pr
                            stats["padded"] += 1
                    if (q, qr, qa) != (pos0, ref, alts[0]):
                        stats["changed"] += 1
                        new = f[:1] + [str(q + 1)] + f[2:3] + [qr, qa] + f[5:]
                        stats["trim_differs"] += _trim(q, qr, qa) != (p, r, a)
        out.append(new)
        s = int(new[1]) - 1
        prev_end = max(prev_end, s + len(new[3]))
    order = {c: n for n, c in enumerate(dict.fromkeys(f[0] for f in records))}
    out.sort(key=lambda f: (order[f[0]], int(f[1])))  # already sorted; stable
    _write_vcf(out_vcf, header, out)
    expected, trim_only = _reshift_expected(records, out, inside)
    return {**stats, "expected": expected, "expected_trim_only": trim_only, "records_out": len(out), "seed": seed}


def _record_events(f: list[str]) -> list[tuple[str, tuple[str, int, str, str]]]:
    """(type, trimmed key) per called, non-symbolic allele of a record (one per distinct allele)."""
    alts = f[4].split(",")
    g = f[9].split(":")[0].replace("|", "/").split("/") if len(f) > 9 else []
    called = sorted({int(a) for a in g if a not in (".", "0")})
    out = []
    for n in called:
        alt = alts[n - 1].upper()
        if alt[:1] in ("<", "*", "") or "[" in alt or "]" in alt or alt == f[3].upper():
            continue
        p, r, a = _trim(int(f[1]) - 1, f[3].upper(), alt)
        out.append(("SNP" if len(r) == len(a) == 1 else "INDEL", (f[0], p, r, a)))
    return out


def _reshift_expected(truth: list[list[str]], query: list[list[str]], inside) -> tuple[dict, dict]:
    """PASS rows of truth vs the reshifted query: with a reference (every allele matches its
    own truth allele) and trim-only (keys compared as trimmed; the truth taken as left-aligned,
    so its trimmed form is its normalised form; copies are equal record by record)."""
    z = lambda: {t: 0 for t in TYPES}  # noqa: E731
    t_total, q_total, q_unk = z(), z(), z()
    t_keys: dict[tuple, int] = {}
    t_sites: set[tuple[str, int]] = set()
    for f in truth:
        if f[6] not in ("PASS", "."):
            continue
        for t, k in _record_events(f):
            q_total[t] += 1
            if inside(k[0], k[1], k[1] + len(k[2])):
                t_total[t] += 1
                t_keys[k] = t_keys.get(k, 0) + 1
                t_sites.add(k[:2])
            else:
                q_unk[t] += 1
    expected = {t: {"TRUTH.TOTAL": t_total[t], "TRUTH.TP": t_total[t], "TRUTH.FN": 0, "QUERY.TOTAL": q_total[t],
                    "QUERY.FP": 0, "QUERY.UNK": q_unk[t], "FP.gt": 0, "FP.al": 0} for t in TYPES}
    # trim-only: a query allele matches when its trimmed key is a truth key (the records keep
    # their genotypes, so copies agree); this scan assumes no key occurs twice in the truth
    qt_total, qt_unk, fp, fp_al, tp = z(), z(), z(), z(), z()
    for f in query:
        if f[6] not in ("PASS", "."):
            continue
        for t, k in _record_events(f):
            qt_total[t] += 1
            if not inside(k[0], k[1], k[1] + len(k[2])):
                qt_unk[t] += 1
            elif t_keys.get(k, 0) > 0:
                t_keys[k] -= 1
                tp[t] += 1
            else:
                fp[t] += 1
                fp_al[t] += k[:2] in t_sites
    trim_only = {t: {"TRUTH.TOTAL": t_total[t], "TRUTH.TP": tp[t], "TRUTH.FN": t_total[t] - tp[t],
                     "QUERY.TOTAL": qt_total[t], "QUERY.FP": fp[t], "QUERY.UNK": qt_unk[t], "FP.gt": 0,
                     "FP.al": fp_al[t]} for t in TYPES}
    return expected, trim_only
