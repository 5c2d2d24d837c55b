"""A hap.py / vcfeval-style small-variant benchmark with haplotype replay.

``evaluate(config)`` compares a query VCF with a truth VCF, optionally only inside a
confident-regions BED (hap.py ``-f``), and writes, all atomically:

* ``PREFIX.summary.csv``: hap.py's columns, rows INDEL/SNP x ALL/PASS;
* ``PREFIX.extended.csv``: the same per subset (``*`` and each ``--stratification``
  stratum), subtype (ti/tv, I/D/C x 1_5/6_15/16_PLUS) and genotype (``dvtrain.stratify``);
* ``PREFIX.vcf.gz`` (+ ``.tbi``): every scored truth record and query call with hap.py's
  BD / BK / BVT decision fields in samples TRUTH and QUERY;
* ``PREFIX.metrics.json``: the summary rows, inputs, options, record/event counts and how
  many clusters were decided each way.

The pure helpers (``split_events``, ``match_events``, ``label_filters``, ``summary_rows``,
``evaluate_rows_for``) do the same on in-memory data.

What is compared
----------------
* **Truth**: the first sample (or ``truth_sample``) of every record whose FILTER is
  ``PASS`` or ``.``.
* **Query**: the first sample (or ``query_sample``) of every record (PASS/``.`` only with
  ``pass_only``); a record is a *call* only when its genotype carries a non-reference
  allele (``0/0`` RefCall records, ``./.`` and ``.`` are not variants). Phased and
  unphased genotypes are alike; a missing allele counts for nothing (``./1`` is one copy);
  a haploid genotype (``1``) is homozygous.
* **Contig names** that differ from the truth's (or, with a reference, the reference's)
  only by a ``chr`` prefix, in the query, the BED, the strata or the truth, are mapped onto
  them with a warning. Rows are produced for Filter ``ALL`` (every call, whatever its
  FILTER) and ``PASS`` (calls whose FILTER is ``PASS`` or ``.``).
* **Events**: each record is split into one event per distinct non-reference allele named
  in its genotype (``1/2`` gives two events, ``2/2`` one). An event's *copies* is how many
  times its allele occurs in the genotype (het 1, hom 2; each allele of ``1/2`` has 1).
  Symbolic / breakend / ``*`` alleles are skipped (out of scope for small variants).
* **Normalisation**: each event is trimmed and, when a reference is given, left-aligned
  (``variants.normalize``); each record's REF must agree with the reference (``N``
  matches anything). Without a reference a warning says that events are only trimmed.
* **Type**: ``SNP`` when the normalised REF and ALT are single bases, otherwise ``INDEL``
  (MNPs and complex substitutions count as INDEL). Truth and query events are typed
  separately, so a truth MNP matched by two query SNPs is one INDEL TP in the truth
  columns and two SNP TPs in the query columns.
* **Confident regions** (``region_rule``). ``overlap`` (the default) is hap.py's and RTG
  vcfeval ``--bed-regions``' rule: an event is *inside* when its span shares a base with the
  BED. Its span is the source record's REF bases and, after normalisation, its own REF
  bases; an insertion's span also takes the base after the inserted sequence (hap.py pads
  insertions on both sides, Illumina/hap.py#91), so a deletion that starts before a region
  and ends inside it counts (Illumina/hap.py#34). ``contain`` is DeepVariant's internal
  rule: the normalised REF span ``[pos, pos + len(ref))`` lies within one (merged) BED
  interval. Truth events outside are not counted (``OUT``); query events outside are
  ``UNK``. Both sides use the same rule, and ``PREFIX.metrics.json`` names it.

Matching (vcfeval's idea, per cluster)
--------------------------------------
Inside truth and query events are sorted together and cut into *clusters*: an event joins
the current cluster when it starts at most ``CLUSTER_GAP`` (10) bases after the cluster's
end. Each cluster is decided on its own (which is what lets ``threads`` split the work):

1. only truth events: all ``FN``; only query events: all ``FP``;
2. the same (allele, copies) multiset on both sides: all ``TP``, no search;
3. otherwise **genotype replay**: every subset of the truth events and of the query
   events is placed on two haplotypes (a het event on either, a hom event on both, the
   two alleles of one het-alt record on different ones, phase ignored); events on one
   haplotype may not overlap (a pure indel's anchor base is not part of its edit, so a
   SNP on the anchor can join it); each haplotype is replayed onto the reference over the
   cluster's window. The pair of subsets whose haplotype pairs are identical and that
   holds the most events wins (ties: the first found; a non-empty subset that replays to
   the reference, i.e. events that cancel out, matches nothing). Its events are ``TP``.
   Identical events paired first and the rest replayed is also tried, and the better of
   the two kept (a call set may hold events that cannot share haplotypes, e.g. Platinum's
   hom SNP inside a hom deletion);
4. **allele replay** of what is left, on one haplotype with genotypes ignored: query
   events in the best matching subset are ``FP.gt`` (their truth partners stay ``FN``,
   BK ``am``); other query events are ``FP.al`` when they overlap a truth event of the
   cluster, else ``FP``;
5. a cluster whose search would exceed ``MAX_ASSIGNMENTS`` placements per side is cut
   into runs of overlapping events and each is decided as above; a run still too large
   falls back to matching by normalised allele and copies.

Without a reference the window's bases are those named by the REF alleles of the
cluster's records (untrimmed); other bases are unique unknowns, so two representations are
equal only when the REF alleles prove it.

Counting (per type, per query filter)
-------------------------------------
* ``TRUTH.TOTAL`` = inside truth events; ``TRUTH.TP + TRUTH.FN = TRUTH.TOTAL``.
* ``QUERY.TOTAL`` = all query events of the filter (inside and outside);
  ``QUERY.UNK`` = those outside; ``QUERY.FP`` includes ``FP.gt`` and ``FP.al``;
  ``QUERY.TP = QUERY.TOTAL - QUERY.FP - QUERY.UNK``.
* ``METRIC.Recall = TRUTH.TP / (TRUTH.TP + TRUTH.FN)``,
  ``METRIC.Precision = QUERY.TP / (QUERY.TP + QUERY.FP)``,
  ``METRIC.Frac_NA = QUERY.UNK / QUERY.TOTAL``, ``METRIC.F1_Score`` their harmonic mean
  (0 when both are 0). An undefined value is ``None`` (an empty CSV cell).
* ``*.TiTv_ratio`` = transitions / transversions over the SNP events of TRUTH.TOTAL or
  QUERY.TOTAL (empty for INDEL rows); ``*.het_hom_ratio`` = events with 1 copy / events
  with 2 copies over the same sets.

Floats are written with 6 decimals; rows come in the order INDEL/ALL, INDEL/PASS,
SNP/ALL, SNP/PASS.
"""

from __future__ import annotations

import csv
import gzip
import io
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional

from .bed import IntervalIndex, read_bed
from .config import REGION_RULES, EvaluateConfig
from .errors import InputError
from .fileio import atomic_output
from .variants import Variant, normalize, read_header_contigs, read_vcf, variant_type, write_bgzip_vcf

COLUMNS = [
    "Type", "Filter", "TRUTH.TOTAL", "TRUTH.TP", "TRUTH.FN", "QUERY.TOTAL", "QUERY.FP",
    "QUERY.UNK", "FP.gt", "FP.al", "METRIC.Recall", "METRIC.Precision", "METRIC.Frac_NA",
    "METRIC.F1_Score", "TRUTH.TOTAL.TiTv_ratio", "QUERY.TOTAL.TiTv_ratio",
    "TRUTH.TOTAL.het_hom_ratio", "QUERY.TOTAL.het_hom_ratio",
]
INT_COLUMNS = {"TRUTH.TOTAL", "TRUTH.TP", "TRUTH.FN", "QUERY.TOTAL", "QUERY.FP", "QUERY.UNK", "FP.gt", "FP.al"}
TYPES = ("INDEL", "SNP")
FILTERS = ("ALL", "PASS")
_TRANSITIONS = {("A", "G"), ("G", "A"), ("C", "T"), ("T", "C")}


@dataclass(frozen=True, slots=True)
class Event:
    """One normalised biallelic allele of a call (0-based ``pos``)."""

    chrom: str
    pos: int
    ref: str
    alt: str
    copies: int
    vtype: str
    is_pass: bool
    rec: int = -1  # index of the source record in the list given to split_events
    gtc: str = "het"  # genotype class of the source record: het, homalt or hetalt
    rpos: int = -1  # the source record's POS (0-based) and REF: reference bases it names
    rref: str = ""

    @property
    def key(self) -> tuple[str, int, str, str]:
        return (self.chrom, self.pos, self.ref, self.alt)

    @property
    def end(self) -> int:
        return self.pos + len(self.ref)


# ---------------------------------------------------------------- normalisation
def trim(pos: int, ref: str, alt: str) -> tuple[int, str, str]:
    """Trim a common suffix, then a common prefix, keeping at least one base in each."""
    while len(ref) > 1 and len(alt) > 1 and ref[-1] == alt[-1]:
        ref, alt = ref[:-1], alt[:-1]
    while len(ref) > 1 and len(alt) > 1 and ref[0] == alt[0]:
        ref, alt, pos = ref[1:], alt[1:], pos + 1
    return pos, ref, alt


class Normalizer:
    """Normalise alleles against an optional reference (a path or an open pysam.FastaFile)."""

    def __init__(self, reference=None):
        self._fasta = None
        self._own = False
        if reference is not None:
            if isinstance(reference, (str, Path)):
                from .genome import open_reference

                self._fasta = open_reference(reference)
                self._own = True
            else:
                self._fasta = reference
        self._block_key: Optional[tuple[str, int]] = None
        self._block = ""

    def close(self) -> None:
        if self._own and self._fasta is not None:
            self._fasta.close()
            self._fasta = None

    def __enter__(self) -> "Normalizer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def has_reference(self) -> bool:
        return self._fasta is not None

    _BLOCK = 1 << 20

    def fetch(self, chrom: str, start: int, end: int) -> str:
        """Upper-case reference bases [start, end), served from 1 Mb cached blocks."""
        b = start // self._BLOCK
        if end - 1 >= start and (end - 1) // self._BLOCK == b:
            if (chrom, b) != self._block_key:
                self._block = self._fasta.fetch(chrom, b * self._BLOCK, (b + 1) * self._BLOCK).upper()  # type: ignore[union-attr]
                self._block_key = (chrom, b)
            off = b * self._BLOCK
            return self._block[start - off : end - off]
        return self._fasta.fetch(chrom, start, end).upper()  # type: ignore[union-attr]

    def ref_mismatch(self, v: Variant) -> bool:
        """True when the record's REF disagrees with the reference (N matches anything)."""
        if self._fasta is None:
            return False
        seq = self.fetch(v.chrom, v.pos, v.pos + len(v.ref))
        if seq == v.ref:
            return False
        if len(seq) != len(v.ref):
            return True
        return any(a != b and a != "N" and b != "N" for a, b in zip(seq, v.ref))

    def __call__(self, chrom: str, pos: int, ref: str, alt: str) -> tuple[int, str, str]:
        if len(ref) == 1 and len(alt) == 1:
            return pos, ref, alt
        if self._fasta is None:
            return trim(pos, ref, alt)
        return normalize(pos, ref, alt, lambda s, e: self.fetch(chrom, s, e))


def split_events(variants: Iterable[Variant], normalizer: Callable | None = None) -> list[Event]:
    """Split called records into normalised per-allele events (see the module docstring)."""
    norm = normalizer or (lambda chrom, pos, ref, alt: trim(pos, ref, alt))
    out: list[Event] = []
    for n, v in enumerate(variants):
        gt = v.gt
        if len(gt) == 2 and gt[0] == gt[1]:  # the common diploid cases, fast
            counts = {gt[0]: 2} if gt[0] > 0 else {}
        elif len(gt) == 1:  # haploid: the allele is on every copy (homozygous)
            counts = {gt[0]: 2} if gt[0] > 0 else {}
        else:
            counts = {}
            for a in gt:
                if a > 0:
                    counts[a] = counts.get(a, 0) + 1
        if not counts:
            continue
        is_pass = v.filter in ("PASS", ".")
        gtc = "hetalt" if len(counts) > 1 else ("homalt" if 2 in counts.values() else "het")
        for a in sorted(counts):
            alt = v.alts[a - 1]
            if not alt or alt == v.ref:  # symbolic / breakend / '*' / no-op
                continue
            pos, ref, nalt = norm(v.chrom, v.pos, v.ref, alt)
            out.append(Event(v.chrom, pos, ref, nalt, counts[a], variant_type(ref, nalt), is_pass, n, gtc,
                             v.pos, v.ref))
    return out


# ---------------------------------------------------------------- matching
def inside_flags(events: list[Event], confident: Optional[IntervalIndex], rule: str = "overlap") -> list[bool]:
    """Whether each event counts as inside the confident regions under ``rule``
    (see "Confident regions" in the module docstring)."""
    if confident is None:
        return [True] * len(events)
    if rule == "contain":
        span = confident.contains_span
        return [span(e.chrom, e.pos, e.pos + len(e.ref)) for e in events]
    if rule != "overlap":
        raise ValueError(f"region rule {rule!r}: expected one of {REGION_RULES}")
    hit = confident.overlaps
    out = []
    for e in events:
        pad = 1 if len(e.alt) > len(e.ref) else 0  # the base after an inserted sequence
        inside = hit(e.chrom, e.pos, e.pos + len(e.ref) + pad)
        if not inside and e.rpos >= 0:
            inside = hit(e.chrom, e.rpos, e.rpos + len(e.rref) + pad)
        out.append(inside)
    return out


CLUSTER_GAP = 10  # events whose spans are at most this far apart are compared together
MAX_ASSIGNMENTS = 4096  # per side and cluster; larger clusters fall back to key matching
_UNKNOWN = 0xE000  # without a reference, unknown bases become unique private-use characters


def _edit(e: Event) -> tuple[int, int, str]:
    """The event as a reference edit ``(start, end, replacement)``: a pure indel keeps its
    anchor base out of the edit, so a SNP on the anchor can sit on the same haplotype."""
    if len(e.ref) != len(e.alt) and e.ref[0] == e.alt[0]:
        return e.pos + 1, e.pos + len(e.ref), e.alt[1:]
    return e.pos, e.pos + len(e.ref), e.alt


def _fits(hap: list[tuple[int, int, str]], ed: tuple[int, int, str]) -> bool:
    """Whether ``ed`` (edits come sorted by start) can follow the haplotype's last edit."""
    if not hap:
        return True
    s, e, _ = hap[-1]
    if ed[0] < e:
        return False
    # two insertions at the same point have no order: one haplotype cannot hold both
    return not (ed[0] == ed[1] == s == e)


def _replay(ref: str, ws: int, hap: list[tuple[int, int, str]]) -> str:
    out, at = [], ws
    for s, e, r in hap:
        out.append(ref[at - ws : s - ws])
        out.append(r)
        at = e
    out.append(ref[at - ws :])
    return "".join(out)


def _assignments(copies: list[int], diploid: bool) -> int:
    """How many placements ``_haplotype_sets`` would walk for events with these copies."""
    n = 1
    for c in copies:
        n *= (3 if c == 1 else 2) if diploid else 2
    return n


def _haplotype_sets(ref: str, ws: int, edits: list[tuple[int, int, str]], copies: list[int],
                    diploid: bool, recs: Optional[list[int]] = None) -> dict:
    """Every consistent way to place a subset of the edits on two haplotypes (a het edit on
    either, a hom edit on both) or, with ``diploid=False``, on one: ``{haplotypes: chosen}``
    keeping the largest subset per distinct haplotype sequence (the first found on ties).
    Edits with the same ``recs`` value (the alleles of one het-alt record) never share a
    haplotype, and a non-empty subset that replays to the reference itself (edits that
    cancel out) is not a match for anything."""
    best: dict = {}
    n = len(edits)
    recs = recs or [-1] * n
    plain = (ref, ref) if diploid else ref

    def walk(k: int, a: list, b: list, ra: tuple, rb: tuple, chosen: tuple) -> None:
        if k == n:
            if diploid:
                sa, sb = _replay(ref, ws, a), _replay(ref, ws, b)
                key = (sa, sb) if sa <= sb else (sb, sa)
            else:
                key = _replay(ref, ws, a)
            if chosen and key == plain:
                return
            old = best.get(key)
            if old is None or len(chosen) > len(old):
                best[key] = chosen
            return
        ed, r = edits[k], recs[k]
        ok_a = _fits(a, ed) and (r < 0 or r not in ra)
        if not diploid:
            if ok_a:
                walk(k + 1, a + [ed], b, ra + (r,), rb, chosen + (k,))
        elif copies[k] >= 2:
            if _fits(a, ed) and _fits(b, ed):
                walk(k + 1, a + [ed], b + [ed], ra, rb, chosen + (k,))
        else:
            if ok_a:
                walk(k + 1, a + [ed], b, ra + (r,), rb, chosen + (k,))
            if _fits(b, ed) and (r < 0 or r not in rb):
                walk(k + 1, a, b + [ed], ra, rb + (r,), chosen + (k,))
        walk(k + 1, a, b, ra, rb, chosen)

    walk(0, [], [], (), (), ())
    return best


def placements(ref: str, ws: int, events: list[Event], diploid: bool):
    """``(order, sets)``: the events sorted by edit position, and ``_haplotype_sets`` of
    them (chosen indices refer to ``order``); None when there would be more than
    MAX_ASSIGNMENTS placements. The two alleles of a het-alt record never share a haplotype."""
    eds = [_edit(e) for e in events]
    cps = [e.copies for e in events]
    if _assignments(cps, diploid) > MAX_ASSIGNMENTS:
        return None
    order = sorted(range(len(events)), key=lambda i: eds[i][:2])
    recs = [events[i].rec if events[i].gtc == "hetalt" else -1 for i in order]
    return order, _haplotype_sets(ref, ws, [eds[i] for i in order], [cps[i] for i in order], diploid, recs)


def _best_match(ref: str, ws: int, t_ev: list[Event], q_ev: list[Event], diploid: bool):
    """The truth and query subsets (indices into t_ev / q_ev) that replay to the same
    haplotypes with the most events, or None when the search would be too large."""
    t_side = placements(ref, ws, t_ev, diploid)
    q_side = placements(ref, ws, q_ev, diploid) if t_side is not None else None
    if q_side is None:
        return None
    (t_order, t_sets), (q_order, q_sets) = t_side, q_side
    best_t: tuple = ()
    best_q: tuple = ()
    for key, tc in t_sets.items():
        qc = q_sets.get(key)
        if qc is not None and len(tc) + len(qc) > len(best_t) + len(best_q):
            best_t, best_q = tc, qc
    return [t_order[k] for k in best_t], [q_order[k] for k in best_q]


def _cluster_match(ref: str, ws: int, t_ev: list[Event], q_ev: list[Event]):
    """The best genotype match of a cluster: the replay of all its events, or identical
    events paired first and the rest replayed, whichever matches more events. (Pairing
    first wins when a call set holds events that cannot share haplotypes, e.g. a hom SNP
    inside a hom deletion, which Platinum Genomes has.)"""
    full = _best_match(ref, ws, t_ev, q_ev, diploid=True)
    if full is None:
        return None
    free: dict[tuple, list[int]] = {}
    for i, e in enumerate(t_ev):
        free.setdefault((e.key, e.copies), []).append(i)
    pt, pq = [], []
    for j, e in enumerate(q_ev):
        pool = free.get((e.key, e.copies))
        if pool:
            pt.append(pool.pop(0))
            pq.append(j)
    if not pt:
        return full
    paired_t, paired_q = set(pt), set(pq)
    rt = [i for i in range(len(t_ev)) if i not in paired_t]
    rq = [j for j in range(len(q_ev)) if j not in paired_q]
    rest = _best_match(ref, ws, [t_ev[i] for i in rt], [q_ev[j] for j in rq], diploid=True) if rt and rq else ([], [])
    if rest is None:
        return full
    paired = (pt + [rt[k] for k in rest[0]], pq + [rq[k] for k in rest[1]])
    if len(paired[0]) + len(paired[1]) > len(full[0]) + len(full[1]):
        return paired
    return full


def _window(chrom: str, t_ev: list[Event], q_ev: list[Event], fetch) -> tuple[str, int]:
    """Reference bases over the cluster: fetched, or (without a reference) assembled from
    the events' REF alleles with unique stand-ins for bases no allele names."""
    evs = t_ev + q_ev
    ws = min(e.pos for e in evs)
    we = max(e.end for e in evs)
    if fetch is not None:
        return fetch(chrom, ws, we), ws
    seq = [chr(_UNKNOWN + i) for i in range(we - ws)]
    for e in evs:
        seq[e.pos - ws : e.end - ws] = e.ref
        if e.rref:  # the untrimmed record REF may name more bases
            lo, hi = max(e.rpos, ws), min(e.rpos + len(e.rref), we)
            if lo < hi:
                seq[lo - ws : hi - ws] = e.rref[lo - e.rpos : hi - e.rpos]
    return "".join(seq), ws


def _key_match(truth, query, ts, qs, t_label, q_label) -> None:
    """Fallback for clusters too large to search: match by normalised allele and copies."""
    t_by_key: dict[tuple, list[int]] = {}
    for i in ts:
        t_by_key.setdefault(truth[i].key, []).append(i)
    gt_pool = {k: list(v) for k, v in t_by_key.items()}
    for j in qs:
        free = t_by_key.get(query[j].key)
        k = next((n for n, i in enumerate(free or []) if truth[i].copies == query[j].copies), None)
        if k is not None:
            i = free.pop(k)  # type: ignore[union-attr]
            gt_pool[query[j].key].remove(i)
            t_label[i] = q_label[j] = "TP"
    for j in qs:
        if q_label[j] == "TP":
            continue
        pool = gt_pool.get(query[j].key)
        if pool:
            pool.pop(0)
            q_label[j] = "FP.gt"
        elif any(_overlaps(query[j], truth[i]) for i in ts):
            q_label[j] = "FP.al"
        else:
            q_label[j] = "FP"


def _clusters(truth, query, ts, qs, gap: int) -> list[tuple[list[int], list[int]]]:
    """Group truth events ``ts`` and query events ``qs`` (indices) into clusters: sorted by
    position, an event joins the current cluster when it starts at most ``gap`` bases
    after the cluster's end."""
    items = sorted([(truth[i].chrom, truth[i].pos, truth[i].end, 0, i) for i in ts]
                   + [(query[j].chrom, query[j].pos, query[j].end, 1, j) for j in qs])
    out: list[tuple[list[int], list[int]]] = []
    chrom, end = None, 0
    for c, s, e, side, i in items:
        if c != chrom or s > end + gap:
            out.append(([], []))
            chrom, end = c, e
        out[-1][side].append(i)
        end = max(end, e)
    return out


def split_or_fallback(truth, other, ts, os_, may_split: bool, stats, decide, fallback) -> None:
    """A cluster too large to search: decide its runs of overlapping events apart
    (``decide(ts, os, False)``, counted as ``split``), or, when it is one run or already a
    run, ``fallback(ts, os)`` (counted as ``too_large``)."""
    parts = _clusters(truth, other, ts, os_, 0) if may_split else []
    if len(parts) > 1:
        stats["split"] += 1
        for pt, po in parts:
            decide(pt, po, False)
    else:
        stats["too_large"] += 1
        fallback(ts, os_)


def _overlaps(a: Event, b: Event) -> bool:
    return a.pos < b.end and b.pos < a.end


def match_events(
    truth: list[Event],
    query: list[Event],
    confident: Optional[IntervalIndex] = None,
    truth_inside: Optional[list[bool]] = None,
    query_inside: Optional[list[bool]] = None,
    fetch=None,
    stats: Optional[Counter] = None,
    truth_kind: Optional[list[str]] = None,
    rule: str = "overlap",
) -> tuple[list[str], list[str]]:
    """Label events by haplotype replay (see the module docstring). Truth labels: ``TP``,
    ``FN`` or ``OUT`` (outside the confident regions); query labels: ``TP``, ``FP``,
    ``FP.gt``, ``FP.al`` or ``UNK``. ``*_inside`` may pass precomputed ``inside_flags``;
    ``fetch(chrom, start, end)`` returns reference bases (None: only what the REF alleles
    say); ``stats`` counts clusters by how they were decided; ``truth_kind``, when given,
    is filled with hap.py's BK per truth event: ``gm`` (TP), ``am`` (FN whose allele a
    query FP.gt carries), ``lm`` (FN overlapped by a query FP.al) or ``.``."""
    t_in = truth_inside if truth_inside is not None else inside_flags(truth, confident, rule)
    q_in = query_inside if query_inside is not None else inside_flags(query, confident, rule)
    t_label = ["FN" if f else "OUT" for f in t_in]
    q_label = ["UNK"] * len(query)
    kinds = ["."] * len(truth)
    stats = stats if stats is not None else Counter()
    clusters = _clusters(truth, query, [i for i in range(len(truth)) if t_in[i]],
                         [j for j in range(len(query)) if q_in[j]], CLUSTER_GAP)

    def decide(ts: list[int], qs: list[int], may_split: bool) -> None:
        if not qs:
            stats["truth_only"] += 1
            return
        if not ts:
            stats["query_only"] += 1
            for j in qs:
                q_label[j] = "FP"
            return
        if sorted((truth[i].key, truth[i].copies) for i in ts) == sorted((query[j].key, query[j].copies) for j in qs):
            stats["identical"] += 1
            for i in ts:
                t_label[i] = "TP"
            for j in qs:
                q_label[j] = "TP"
            return
        t_ev = [truth[i] for i in ts]
        q_ev = [query[j] for j in qs]
        ref, ws = _window(t_ev[0].chrom, t_ev, q_ev, fetch)
        found = _cluster_match(ref, ws, t_ev, q_ev)
        if found is None:
            split_or_fallback(truth, query, ts, qs, may_split, stats, decide,
                              lambda a, b: _key_match(truth, query, a, b, t_label, q_label))
            return
        stats["replayed"] += 1
        for k in found[0]:
            t_label[ts[k]] = "TP"
        for k in found[1]:
            q_label[qs[k]] = "TP"
        rest_t = [k for k in range(len(ts)) if t_label[ts[k]] != "TP"]
        rest_q = [k for k in range(len(qs)) if q_label[qs[k]] != "TP"]
        allele = None
        if rest_t and rest_q:
            allele = _best_match(ref, ws, [t_ev[k] for k in rest_t], [q_ev[k] for k in rest_q], diploid=False)
        if allele is not None:
            gt_q = {rest_q[k] for k in allele[1]}
        else:  # too many leftovers to search: an allele match is an equal normalised allele
            t_keys = {t_ev[k].key for k in rest_t}
            gt_q = {k for k in rest_q if q_ev[k].key in t_keys}
        for k in rest_q:
            if k in gt_q:
                q_label[qs[k]] = "FP.gt"
            elif any(_overlaps(q_ev[k], t) for t in t_ev):
                q_label[qs[k]] = "FP.al"
            else:
                q_label[qs[k]] = "FP"
        if truth_kind is not None and allele is not None:
            for k in allele[0]:
                kinds[ts[rest_t[k]]] = "am"

    for ts, qs in clusters:
        decide(ts, qs, True)
    if truth_kind is not None:
        _truth_kinds(truth, query, t_label, q_label, clusters, kinds)
        truth_kind[:] = kinds
    return t_label, q_label


def _truth_kinds(truth, query, t_label, q_label, clusters, kinds) -> None:
    for ts, qs in clusters:
        for i in ts:
            if t_label[i] == "TP":
                kinds[i] = "gm"
            elif kinds[i] == ".":
                e = truth[i]
                if any(q_label[j] == "FP.gt" and query[j].key == e.key for j in qs):
                    kinds[i] = "am"
                elif any(q_label[j] == "FP.al" and _overlaps(query[j], e) for j in qs):
                    kinds[i] = "lm"


# ---------------------------------------------------------------- metrics
def _ratio(num: float, den: float) -> Optional[float]:
    return num / den if den else None


def _titv(events: Iterable[Event]) -> Optional[float]:
    ti = tv = 0
    for e in events:
        if (e.ref, e.alt) in _TRANSITIONS:
            ti += 1
        else:
            tv += 1
    return _ratio(ti, tv)


def _het_hom(events: Iterable[Event]) -> Optional[float]:
    het = hom = 0
    for e in events:
        if e.copies == 1:
            het += 1
        elif e.copies == 2:
            hom += 1
    return _ratio(het, hom)


def metrics_row(vtype: str, flt: str, truth: list[Event], t_labels: list[str],
                query: list[Event], q_labels: list[str]) -> dict:
    """One hap.py row for the events of ``vtype`` among labelled truth and query events
    (labels from ``match_events``; the caller picks the filter's query set)."""
    t_in = [e for e, lab in zip(truth, t_labels) if lab != "OUT" and e.vtype == vtype]
    tc = Counter(lab for e, lab in zip(truth, t_labels) if e.vtype == vtype)
    q_of_type = [e for e in query if e.vtype == vtype]
    qc = Counter(lab for e, lab in zip(query, q_labels) if e.vtype == vtype)
    tp, fn = tc["TP"], tc["FN"]
    q_total = len(q_of_type)
    q_fp = qc["FP"] + qc["FP.gt"] + qc["FP.al"]
    q_unk = qc["UNK"]
    q_tp = q_total - q_fp - q_unk
    recall = _ratio(tp, tp + fn)
    precision = _ratio(q_tp, q_tp + q_fp)
    if recall is None or precision is None:
        f1 = None
    else:
        f1 = 2 * recall * precision / (recall + precision) if recall + precision else 0.0
    return {
        "Type": vtype,
        "Filter": flt,
        "TRUTH.TOTAL": tp + fn,
        "TRUTH.TP": tp,
        "TRUTH.FN": fn,
        "QUERY.TOTAL": q_total,
        "QUERY.FP": q_fp,
        "QUERY.UNK": q_unk,
        "FP.gt": qc["FP.gt"],
        "FP.al": qc["FP.al"],
        "METRIC.Recall": recall,
        "METRIC.Precision": precision,
        "METRIC.Frac_NA": _ratio(q_unk, q_total),
        "METRIC.F1_Score": f1,
        "TRUTH.TOTAL.TiTv_ratio": _titv(t_in) if vtype == "SNP" else None,
        "QUERY.TOTAL.TiTv_ratio": _titv(q_of_type) if vtype == "SNP" else None,
        "TRUTH.TOTAL.het_hom_ratio": _het_hom(t_in),
        "QUERY.TOTAL.het_hom_ratio": _het_hom(q_of_type),
    }


Labelled = dict[str, tuple[list[str], list[Event], list[str]]]


def label_filters(
    truth: list[Event], query: list[Event], confident: Optional[IntervalIndex] = None, fetch=None,
    reference=None, threads: int = 1, info: Optional[dict] = None, rule: str = "overlap",
) -> Labelled:
    """Match the truth against the ALL and the PASS query sets:
    ``{filter: (truth_labels, query_events, query_labels)}``.

    ``fetch`` (or a ``reference`` path, reopened by each worker) gives reference bases.
    With ``threads`` > 1 the clusters are matched in that many worker processes (clusters
    are independent, so the labels are the same). ``info``, when given, receives
    ``{filter: {"stats": Counter, "truth_kind": [...]}}``."""
    t_in = inside_flags(truth, confident, rule)
    q_in = inside_flags(query, confident, rule)
    jobs = []
    for flt in FILTERS:
        keep = [j for j, e in enumerate(query) if flt == "ALL" or e.is_pass]
        jobs.append((flt, [query[j] for j in keep], [q_in[j] for j in keep]))
    if threads > 1 and fetch is None:
        results = _label_parallel(truth, t_in, jobs, reference, threads)
    else:
        own = Normalizer(reference) if fetch is None and reference is not None else None
        f = fetch or (own.fetch if own is not None else None)
        try:
            results = [_label_job(truth, q, t_in, qi, f) for _, q, qi in jobs]
        finally:
            if own is not None:
                own.close()
    out: Labelled = {}
    for (flt, q, _), (t_lab, q_lab, kinds, stats) in zip(jobs, results):
        out[flt] = (t_lab, q, q_lab)
        if info is not None:
            info[flt] = {"stats": stats, "truth_kind": kinds}
    return out


def _label_job(truth, query, t_in, q_in, fetch):
    stats: Counter = Counter()
    kinds: list[str] = []
    t_lab, q_lab = match_events(truth, query, None, t_in, q_in, fetch=fetch, stats=stats, truth_kind=kinds)
    return t_lab, q_lab, kinds, stats


_FORKED: dict = {}  # the parent's events, inherited (not pickled) by forked workers


def _label_chunk(task):
    jobno, ts, qs = task
    truth, jobs, reference = _FORKED["truth"], _FORKED["jobs"], _FORKED["reference"]
    q = jobs[jobno][1]
    with Normalizer(reference) as norm:
        return _label_job([truth[i] for i in ts], [q[j] for j in qs], [True] * len(ts), [True] * len(qs),
                          norm.fetch if norm.has_reference else None)


def _chunks(truth, t_in, query, q_in, n: int) -> list[tuple[list[int], list[int]]]:
    """The clusters of the inside events grouped into about ``n`` runs (whole clusters
    only, so the labels do not depend on ``n``)."""
    clusters = _clusters(truth, query, [i for i, f in enumerate(t_in) if f],
                         [j for j, f in enumerate(q_in) if f], CLUSTER_GAP)
    target = max(1, sum(len(a) + len(b) for a, b in clusters) // n)
    out: list[tuple[list[int], list[int]]] = [([], [])]
    for ts, qs in clusters:
        if len(out[-1][0]) + len(out[-1][1]) >= target:
            out.append(([], []))
        out[-1][0].extend(ts)
        out[-1][1].extend(qs)
    return out


def _label_parallel(truth, t_in, jobs, reference, threads: int):
    import multiprocessing as mp

    tasks, layout = [], []
    for n, (_, q, qi) in enumerate(jobs):
        parts = _chunks(truth, t_in, q, qi, threads)
        layout.append(parts)
        tasks += [(n, ts, qs) for ts, qs in parts]
    _FORKED.update(truth=truth, jobs=jobs, reference=None if reference is None else str(reference))
    try:
        with mp.get_context("fork").Pool(threads) as pool:
            done = iter(pool.map(_label_chunk, tasks, chunksize=1))
    finally:
        _FORKED.clear()
    results = []
    for (_, q, qi), parts in zip(jobs, layout):
        t_lab = ["FN" if f else "OUT" for f in t_in]
        q_lab = ["UNK"] * len(q)
        kinds = ["."] * len(truth)
        stats: Counter = Counter()
        for ts, qs in parts:
            tl, ql, kd, st = next(done)
            for k, i in enumerate(ts):
                t_lab[i], kinds[i] = tl[k], kd[k]
            for k, j in enumerate(qs):
                q_lab[j] = ql[k]
            stats.update(st)
        results.append((t_lab, q_lab, kinds, stats))
    return results


def summary_rows(truth: list[Event], labelled: Labelled) -> list[dict]:
    """The four summary rows (INDEL/ALL, INDEL/PASS, SNP/ALL, SNP/PASS)."""
    return [metrics_row(vtype, flt, truth, labelled[flt][0], labelled[flt][1], labelled[flt][2])
            for vtype in TYPES for flt in FILTERS]


def summarize(
    truth: list[Event], query: list[Event], confident: Optional[IntervalIndex] = None, fetch=None,
    rule: str = "overlap",
) -> list[dict]:
    """The four summary rows for events (see ``label_filters`` and ``summary_rows``)."""
    return summary_rows(truth, label_filters(truth, query, confident, fetch, rule=rule))


def evaluate_rows_for(
    truth: list[Variant],
    query: list[Variant],
    bed: Optional[Iterable[tuple[str, int, int]]] = None,
    reference=None,
    rule: str = "overlap",
) -> list[dict]:
    """Summary rows for in-memory records. ``truth`` should already hold only PASS/'.'
    records; ``bed`` is intervals (or None for everywhere); ``reference`` a FASTA path, an
    open pysam.FastaFile, or None (trim only)."""
    confident = None if bed is None else (bed if isinstance(bed, IntervalIndex) else IntervalIndex(bed))
    with Normalizer(reference) as norm:
        t_events = split_events(truth, norm)
        q_events = split_events(query, norm)
    return summarize(t_events, q_events, confident, rule=rule)


# ---------------------------------------------------------------- CSV
def format_value(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6f}"
    return str(v)


def write_csv(path: str | Path, columns: list[str], rows: list[dict]) -> None:
    """Rows as CSV with ``columns`` (``format_value`` cells), written atomically."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([format_value(r.get(c)) for c in columns])
    with atomic_output(path, suffix=".csv") as tmp:
        tmp.write_text(buf.getvalue())


def write_summary(path: str | Path, rows: list[dict]) -> None:
    write_csv(path, COLUMNS, rows)


def read_summary(path: str | Path) -> list[dict]:
    """Read a summary.csv back into rows with numbers (None for empty cells)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise InputError(p, f"cannot read summary: {e}") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(p, f"not a summary.csv (missing columns {missing})")
    rows = []
    for n, raw in enumerate(reader, 2):
        row: dict = {}
        for c in COLUMNS:
            s = raw[c]
            try:
                if c in ("Type", "Filter"):
                    row[c] = s
                elif s == "":
                    row[c] = None
                elif c in INT_COLUMNS:
                    row[c] = int(s)
                else:
                    row[c] = float(s)
            except ValueError:
                raise InputError(p, f"line {n}: {c} {s!r} is not a number") from None
        rows.append(row)
    return rows


# ---------------------------------------------------------------- file-level entry point
def _warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


class _ChrAlias:
    """Maps a contig name onto ``target`` names when they differ only by a 'chr' prefix
    (``1`` <-> ``chr1``, ``MT``/``chrM`` are left alone); other names pass unchanged."""

    def __init__(self, target: set[str], path) -> None:
        self.target = target
        self.path = path
        self.renamed: dict[str, str] = {}
        self._memo: dict[str, str] = {}

    def __call__(self, name: str) -> str:
        out = self._memo.get(name)
        if out is None:
            out = name
            if name not in self.target:
                alt = name[3:] if name.startswith("chr") else "chr" + name
                if alt in self.target:
                    out = alt
                    self.renamed[name] = alt
            self._memo[name] = out
        return out

    def report(self) -> None:
        if self.renamed:
            pairs = ", ".join(f"{a} -> {b}" for a, b in sorted(self.renamed.items())[:5])
            more = f" (+{len(self.renamed) - 5} more)" if len(self.renamed) > 5 else ""
            _warn(f"{self.path}: contig names differ from the truth's by a 'chr' prefix; matched {pairs}{more}")


def _require_sample(path: Path) -> None:
    """A genotype comparison needs a sample column."""
    opener = gzip.open if path.name.endswith((".gz", ".bgz")) else open
    try:
        with opener(path, "rt") as fh:  # type: ignore[operator]
            for line in fh:
                if line.startswith("#CHROM"):
                    if len(line.rstrip("\n\r").split("\t")) < 10:
                        raise InputError(path, "has no sample column (a genotyped VCF is needed)")
                    return
                if not line.startswith("##"):
                    return  # read_vcf reports the missing header
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise InputError(path, f"cannot read VCF: {e}") from None


def _check_ref(variants: list[Variant], norm: Normalizer, path: Path, reference) -> None:
    bad = [v for v in variants if norm.ref_mismatch(v)]
    if bad:
        v = bad[0]
        raise InputError(
            path,
            f"REF of {len(bad)} record(s) disagrees with the reference {reference} "
            f"(first: {v.chrom}:{v.pos + 1} REF {v.ref}); wrong reference?",
        )


def evaluate(config: EvaluateConfig) -> list[dict]:
    """Compare ``config.query_vcf`` with ``config.truth_vcf`` and write PREFIX.summary.csv."""
    contigs = None
    if config.reference is not None:
        from .genome import contig_lengths

        contigs = contig_lengths(config.reference)
    regions = set(config.regions) if config.regions else None
    if regions and contigs is not None:
        unknown = sorted(regions - set(contigs))
        if unknown:
            raise InputError(config.reference, f"regions {unknown} are not contigs of this reference")  # type: ignore[arg-type]
    for p in (config.truth_vcf, config.query_vcf):
        if Path(p).is_file():
            _require_sample(Path(p))
    _refuse_overwrite(config)
    # contig names: the reference's when given, else the truth's; a file whose names differ
    # only by a 'chr' prefix is mapped onto them (with one warning per file)
    t_alias = _ChrAlias(set(contigs), config.truth_vcf) if contigs is not None else None
    truth = read_vcf(config.truth_vcf, contigs=contigs, regions=regions, pass_only=True,
                     sample=config.truth_sample, rename=t_alias)
    target = set(contigs) if contigs is not None else (
        set(read_header_contigs(config.truth_vcf)) | {v.chrom for v in truth})
    q_alias = _ChrAlias(target, config.query_vcf)
    query = read_vcf(config.query_vcf, contigs=contigs, regions=regions, sample=config.query_sample, rename=q_alias)
    for a in (t_alias, q_alias):
        if a is not None:
            a.report()
    confident = None
    b_alias = None
    if config.confident_bed is not None:
        b_alias = _ChrAlias(target, config.confident_bed)
        intervals = [(b_alias(c), s, e) for c, s, e in read_bed(config.confident_bed)]
        b_alias.report()
        if regions is not None:
            intervals = [iv for iv in intervals if iv[0] in regions]
        confident = IntervalIndex(intervals)
        bed_contigs = {iv[0] for iv in intervals}
        if truth and not bed_contigs & {v.chrom for v in truth}:
            _warn(f"{config.confident_bed}: shares no contig with the truth VCF; nothing will be scored")
    t_contigs = {v.chrom for v in truth}
    q_contigs = {v.chrom for v in query if v.is_variant_call()}
    if t_contigs and q_contigs and not t_contigs & q_contigs:
        _warn(
            f"{config.query_vcf}: shares no contig with the truth "
            f"(truth: {sorted(t_contigs)[:3]}, query: {sorted(q_contigs)[:3]}); contig naming mismatch?"
        )
    if config.reference is None:
        _warn("no reference (-r): indels are trimmed but not left-aligned, and haplotype replay "
              "knows only the bases named in REF alleles")
    if config.pass_only:
        query = [v for v in query if v.filter in ("PASS", ".")]
    strata = []
    if config.stratification is not None:
        from .stratify import load_strata

        s_alias = _ChrAlias(target, config.stratification)
        strata = load_strata(config.stratification, rename=s_alias)
        s_alias.report()
    info: dict = {}
    with Normalizer(config.reference) as norm:
        if norm.has_reference:
            _check_ref(truth, norm, Path(config.truth_vcf), config.reference)
            _check_ref([v for v in query if v.is_variant_call()], norm, Path(config.query_vcf), config.reference)
        t_events = split_events(truth, norm)
        q_events = split_events(query, norm)
        fetch = norm.fetch if norm.has_reference and config.threads == 1 else None
        labelled = label_filters(t_events, q_events, confident, fetch=fetch, reference=config.reference,
                                 threads=config.threads, info=info, rule=config.region_rule)
    rows = summary_rows(t_events, labelled)
    from .stratify import extended_path, extended_rows, write_extended

    prefix = config.output_prefix
    lengths = contigs if contigs is not None else read_header_contigs(config.truth_vcf)
    order = list(lengths)
    renamed = {str(a.path): a.renamed for a in (t_alias, q_alias, b_alias) if a is not None and a.renamed}
    try:
        write_annotated(annotated_path(prefix), truth, t_events, q_events, labelled["ALL"],
                        info["ALL"]["truth_kind"], query, order, lengths)
        write_extended(extended_path(prefix), extended_rows(t_events, labelled, strata))
        write_metrics(metrics_path(prefix), {
            "rows": rows,
            "inputs": {k: (None if v is None else (list(v) if isinstance(v, list) else str(v))) for k, v in {
                "truth_vcf": config.truth_vcf, "query_vcf": config.query_vcf, "confident_bed": config.confident_bed,
                "reference": config.reference, "regions": list(config.regions), "truth_sample": config.truth_sample,
                "query_sample": config.query_sample, "stratification": config.stratification}.items()},
            "options": {"pass_only": config.pass_only, "threads": config.threads, "cluster_gap": CLUSTER_GAP,
                        "region_rule": config.region_rule,
                        "max_assignments": MAX_ASSIGNMENTS},
            "counts": {"truth_records": len(truth), "query_records": len(query),
                       "query_calls": sum(1 for v in query if v.is_variant_call()),
                       "truth_events": len(t_events), "query_events": len(q_events),
                       "confident_intervals": len(intervals) if confident is not None else None},
            "clusters": {flt: dict(sorted(info[flt]["stats"].items())) for flt in FILTERS},
            "contig_renames": renamed,
        })
        write_summary(summary_path(prefix), rows)
    except BaseException:
        for p in output_paths(prefix):
            if p != summary_path(prefix):  # written last and atomically: never a new partial one
                p.unlink(missing_ok=True)
        raise
    return rows


def output_paths(prefix: str | Path) -> list[Path]:
    """Every file ``evaluate`` writes for PREFIX."""
    from .stratify import extended_path

    return [annotated_path(prefix), Path(str(annotated_path(prefix)) + ".tbi"), summary_path(prefix),
            extended_path(prefix), metrics_path(prefix)]


def _refuse_overwrite(config: EvaluateConfig) -> None:
    """An output PREFIX must not name an input (``-o calls`` would replace calls.vcf.gz)."""
    outs = output_paths(config.output_prefix)
    for src in (config.truth_vcf, config.query_vcf, config.confident_bed, config.stratification, config.reference):
        if src is None or not Path(src).exists():
            continue
        for out in outs:
            if out.exists() and out.resolve() == Path(src).resolve():
                raise InputError(src, f"is also an output of -o {config.output_prefix} ({out.name}); "
                                      "choose another output prefix")


def annotated_path(prefix: str | Path) -> Path:
    return Path(str(prefix) + ".vcf.gz")


def _gt_text(gt: tuple[int, ...]) -> str:
    return "/".join("." if a < 0 else str(a) for a in gt) or "."


def write_annotated(path, truth: list[Variant], t_events: list[Event], q_events: list[Event],
                    labelled_all: tuple[list[str], list[Event], list[str]], truth_kind: list[str],
                    query: list[Variant], order: list[str], lengths: dict) -> None:
    """PREFIX.vcf.gz: every scored truth record and every query call, one line each, with
    hap.py's per-sample decision fields in two samples, TRUTH and QUERY:
    BD (TP, FN, FP, UNK), BK (gm genotype match, am allele match, lm local match, . none)
    and BVT (SNP, INDEL or MIXED). A record takes the decision of its worst event (FN/FP
    over TP; UNK only when all its events are outside the confident regions)."""
    t_lab, q_ev, q_lab = labelled_all
    by_rec: dict[tuple[int, int], list[tuple[Event, str, str]]] = {}
    for e, lab, kind in zip(t_events, t_lab, truth_kind):
        by_rec.setdefault((0, e.rec), []).append((e, lab, kind))
    q_kind = {"TP": "gm", "FP.gt": "am", "FP.al": "lm"}
    for e, lab in zip(q_ev, q_lab):
        by_rec.setdefault((1, e.rec), []).append((e, lab, q_kind.get(lab, ".")))
    rank = {c: n for n, c in enumerate(order)}
    lines = []
    for (side, r), evs in by_rec.items():
        v = (truth if side == 0 else query)[r]
        labs = [lab for _, lab, _ in evs if lab not in ("OUT", "UNK")]
        if not labs:
            bd, bk = "UNK", "."
        else:
            bad = [(lab, kind) for (_, lab, kind) in evs if lab not in ("TP", "OUT", "UNK")]
            if bad:
                bd = "FN" if side == 0 else "FP"
                bk = next((k for k in ("am", "lm") if any(kind == k for _, kind in bad)), ".")
            else:
                bd, bk = "TP", "gm"
        types = {e.vtype for e, _, _ in evs}
        bvt = types.pop() if len(types) == 1 else "MIXED"
        sample = f"{_gt_text(v.gt)}:{bd}:{bk}:{bvt}"
        empty = ".:.:.:."
        qual = "." if v.qual is None else f"{v.qual:g}"
        lines.append(((rank.get(v.chrom, len(rank)), v.chrom, v.pos, side, r), "\t".join([
            v.chrom, str(v.pos + 1), ".", v.ref, ",".join(v.alts), qual, v.filter, ".", "GT:BD:BK:BVT",
            sample if side == 0 else empty, sample if side == 1 else empty])))
    lines.sort()
    seen = [c for c in order] + sorted({v for (_, v, *_), _ in lines} - set(order))
    header = [
        "##fileformat=VCFv4.2",
        "##source=dvtrain evaluate",
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        '##FORMAT=<ID=BD,Number=1,Type=String,Description="Decision for call (TP/FP/FN/UNK)">',
        '##FORMAT=<ID=BK,Number=1,Type=String,Description="Sub-type for decision (gm: genotype match, '
        'am: allele match, lm: local match, .: none)">',
        '##FORMAT=<ID=BVT,Number=1,Type=String,Description="Variant type (SNP, INDEL or MIXED)">',
    ]
    filters = sorted({text.split("\t")[6] for _, text in lines} - {"PASS", "."})
    header += ['##FILTER=<ID=PASS,Description="All filters passed">']
    header += [f'##FILTER=<ID={f},Description="from the input VCF">' for f in filters]
    header += [f"##contig=<ID={c},length={lengths[c]}>" if lengths.get(c) else f"##contig=<ID={c}>" for c in seen]
    header.append("\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", "TRUTH", "QUERY"]))
    write_bgzip_vcf(path, [text for _, text in lines], "\n".join(header) + "\n")


def metrics_path(prefix: str | Path) -> Path:
    return Path(str(prefix) + ".metrics.json")


def write_metrics(path: str | Path, metrics: dict) -> None:
    """PREFIX.metrics.json: the summary rows (numbers, null for undefined), the inputs and
    the record/event counts; written atomically."""
    import json

    text = json.dumps(metrics, indent=2) + "\n"
    with atomic_output(path, suffix=".json") as tmp:
        tmp.write_text(text)


def summary_path(prefix: str | Path) -> Path:
    return Path(str(prefix) + ".summary.csv")
