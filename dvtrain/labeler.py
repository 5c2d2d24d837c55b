"""Haplotype-aware labels for make_examples candidates (training mode).

Each candidate allele ``(chrom, pos, ref, alt)`` (0-based, normalised like the truth) gets
the number of copies (0, 1 or 2) of that allele in the truth genotype. Looking the allele
up by key fails when the truth and the reads write the same variant differently (an indel
shifted in a homopolymer or STR, a complex record split into a SNP and an indel, an MNP
against two SNPs, ...), so candidates are labelled the way ``dvtrain.evaluate`` matches
calls, by haplotype replay:

1. Truth events and candidates are sorted together and cut into *clusters*: an event or
   candidate joins the current cluster when it starts at most ``CLUSTER_GAP`` bases after
   the cluster's end (``evaluate._clusters``). A cluster of candidates only is labelled 0;
   a cluster of truth events only leaves them unmatched.
2. **By key** (fast path): when every truth event of the cluster has a candidate with the
   same key, each candidate gets its truth event's copies (extra candidates 0).
3. **Replay**: otherwise the truth events are placed on two haplotypes in every way (a het
   event on either, a hom event on both, the two alleles of a het-alt record on different
   ones; truth phase is ignored) and every subset of them too (``evaluate._haplotype_sets``),
   and each candidate is given one of 0, het on haplotype A, het on B, hom. The chosen
   assignment is one whose replayed diploid haplotypes equal those of *all* the truth
   events; when none does, those of the largest truth subset that some assignment
   reproduces (the other truth events stay unmatched; candidates are then 0 unless part
   of the reproduction). Ties: fewest non-zero labels, then the first found (0 tried
   before A, B, hom, candidates in order of position): the result is deterministic.
   The candidate search is a depth-first walk that keeps only assignments whose fixed
   haplotype prefixes can still become a target pair, with a node budget per cluster.
4. **Too large**: a cluster whose truth side exceeds ``evaluate.MAX_ASSIGNMENTS``
   placements or whose candidate walk exceeds ``max_nodes`` is cut into runs of overlapping
   events, each decided as above; a run still too large is labelled by key.

``label_candidates`` does this for one list of truth events and candidates; ``Labeler``
serves make_examples partition by partition (truth events near a partition take part, so
a representation that straddles a partition boundary is still found) and accumulates
``LabelingMetrics``, which ``write_metrics`` writes as ``<examples>.labeling_metrics.json``.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

from .evaluate import CLUSTER_GAP, Event, _clusters, _edit, _window, placements, split_or_fallback
from .fileio import atomic_output

Candidate = tuple[str, int, str, str]  # chrom, 0-based pos, ref, alt
Fetch = Callable[[str, int, int], str]

MAX_NODES = 200_000  # candidate-walk nodes per cluster before it counts as too large
MARGIN = 5 * CLUSTER_GAP  # truth events this close to a partition take part in its clusters
_N_EXAMPLES = 20  # unmatched truth events named in the metrics


class _TooLarge(Exception):
    pass


@dataclass
class LabelingMetrics:
    """Counts for one run (or a sum of runs, see ``merge``); JSON-serialisable via ``to_dict``.

    * ``truth_variants``: scored truth events (one per non-reference allele of a PASS
      record, inside the confident regions); ``truth_matched`` of them were reproduced by
      the labelled candidates, ``truth_unmatched`` were not;
    * ``candidates_per_class``: labelled candidates with label 0, 1, 2;
    * ``candidates_matched_by_replay``: non-zero labels given by replay (not by key);
    * ``labels_differing_from_key``: candidates whose label differs from a plain key lookup
      (truth copies of the same normalised allele, else 0);
    * ``clusters``: how clusters were decided (``by_key``, ``replayed`` = ``replayed_full``
      + ``replayed_partial``, ``too_large`` (key fallback), ``split`` (too large, cut into
      runs), ``truth_only``, ``candidates_only``);
    * ``unmatched_examples``: the first few unmatched truth events, ``chrom:pos1 REF>ALT``.
    """

    truth_variants: int = 0
    truth_matched: int = 0
    truth_unmatched: int = 0
    candidates_per_class: list[int] = field(default_factory=lambda: [0, 0, 0])
    candidates_matched_by_replay: int = 0
    labels_differing_from_key: int = 0
    clusters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("by_key", "replayed", "replayed_full", "replayed_partial", "too_large", "split", "truth_only",
         "candidates_only"), 0))
    unmatched_examples: list[str] = field(default_factory=list)

    @property
    def candidates(self) -> int:
        return sum(self.candidates_per_class)

    def to_dict(self) -> dict:
        return {
            "truth_variants": self.truth_variants,
            "truth_matched": self.truth_matched,
            "truth_unmatched": self.truth_unmatched,
            "truth_matched_fraction": (self.truth_matched / self.truth_variants) if self.truth_variants else None,
            "candidates": self.candidates,
            "candidates_per_class": list(self.candidates_per_class),
            "candidates_matched_by_replay": self.candidates_matched_by_replay,
            "labels_differing_from_key": self.labels_differing_from_key,
            "clusters": dict(self.clusters),
            "unmatched_examples": list(self.unmatched_examples),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "LabelingMetrics":
        m = cls()
        for k in ("truth_variants", "truth_matched", "truth_unmatched", "candidates_matched_by_replay",
                  "labels_differing_from_key"):
            setattr(m, k, int(d.get(k, 0)))
        m.candidates_per_class = [int(x) for x in d.get("candidates_per_class", [0, 0, 0])]
        for k, v in d.get("clusters", {}).items():
            m.clusters[k] = int(v)
        m.unmatched_examples = list(d.get("unmatched_examples", []))
        return m

    def merge(self, other: "LabelingMetrics") -> "LabelingMetrics":
        """Add ``other``'s counts into this one (e.g. the shards of one run); returns self."""
        self.truth_variants += other.truth_variants
        self.truth_matched += other.truth_matched
        self.truth_unmatched += other.truth_unmatched
        self.candidates_per_class = [a + b for a, b in zip(self.candidates_per_class, other.candidates_per_class)]
        self.candidates_matched_by_replay += other.candidates_matched_by_replay
        self.labels_differing_from_key += other.labels_differing_from_key
        for k, v in other.clusters.items():
            self.clusters[k] = self.clusters.get(k, 0) + v
        room = _N_EXAMPLES - len(self.unmatched_examples)
        if room > 0:
            self.unmatched_examples.extend(other.unmatched_examples[:room])
        return self


def labeling_metrics_path(examples: str | Path) -> Path:
    """``<examples>.labeling_metrics.json``."""
    return Path(str(examples) + ".labeling_metrics.json")


def write_metrics(path: str | Path, metrics: LabelingMetrics | dict) -> None:
    """Write the metrics as JSON, atomically."""
    d = metrics.to_dict() if isinstance(metrics, LabelingMetrics) else metrics
    text = json.dumps(d, indent=2) + "\n"
    with atomic_output(path, suffix=".json") as tmp:
        tmp.write_text(text)


def read_metrics(path: str | Path) -> LabelingMetrics:
    return LabelingMetrics.from_dict(json.loads(Path(path).read_text()))


# ---------------------------------------------------------------- the candidate walk
def _fits_last(last: Optional[tuple[int, int, str]], ed: tuple[int, int, str]) -> bool:
    """``evaluate._fits`` on a haplotype whose last edit is ``last`` (edits come sorted)."""
    if last is None:
        return True
    s, e, _ = last
    if ed[0] < e:
        return False
    return not (ed[0] == ed[1] == s == e)


def _assign(ref: str, ws: int, eds: list[tuple[int, int, str]], targets: list[tuple[str, str]],
            budget: list[int]) -> Optional[tuple[list[int], tuple[str, str]]]:
    """Copies (0/1/2) per edit (sorted by start) such that the two replayed haplotypes are
    one of ``targets`` (unordered pairs), with the fewest non-zero labels (the first found
    on ties), and the target reproduced; None when no assignment reproduces a target.

    A depth-first walk (options 0, A, B, hom): a haplotype is fixed up to the next edit's
    start, so a branch whose fixed prefixes start no target pair is cut, as is one with
    as many non-zero labels as the best found. While both haplotypes are identical only A
    is tried for a het edit (B mirrors it). ``budget[0]`` counts down the nodes walked; at
    zero ``_TooLarge`` is raised."""
    pairs = set()
    for a, b in targets:
        pairs.add((a, b))
        pairs.add((b, a))
    plist = list(pairs)
    m = len(eds)
    we = ws + len(ref)
    starts = [ed[0] for ed in eds] + [we]
    best: list = [None, m + 1, None]  # labels, non-zero count, target
    labs = [0] * m

    def prefix(out: str, at: int, upto: int) -> str:
        return out + ref[at - ws : upto - ws] if upto > at else out

    def walk(k: int, oa: str, aa: int, la, ob: str, ab: int, lb, nz: int) -> None:
        budget[0] -= 1
        if budget[0] < 0:
            raise _TooLarge
        if nz >= best[1]:
            return
        nxt = starts[k]
        fa, fb = prefix(oa, aa, nxt), prefix(ob, ab, nxt)
        if k == m:
            if (fa, fb) in pairs:
                best[0], best[1], best[2] = list(labs), nz, (fa, fb) if fa <= fb else (fb, fa)
            return
        if not any(ta.startswith(fa) and tb.startswith(fb) for ta, tb in plist):
            return
        ed = eds[k]
        s, e, r = ed
        walk(k + 1, oa, aa, la, ob, ab, lb, nz)
        fit_a, fit_b = _fits_last(la, ed), _fits_last(lb, ed)
        same = oa == ob and aa == ab and la == lb  # mirror images: try A only
        labs[k] = 1
        if fit_a:
            walk(k + 1, fa + r, e, ed, ob, ab, lb, nz + 1)
        if fit_b and not same:
            walk(k + 1, oa, aa, la, fb + r, e, ed, nz + 1)
        if fit_a and fit_b:
            labs[k] = 2
            walk(k + 1, fa + r, e, ed, fb + r, e, ed, nz + 1)
        labs[k] = 0

    walk(0, "", ws, None, "", ws, None, 0)
    return None if best[0] is None else (best[0], best[2])


def _search(ref: str, ws: int, t_ev: list[Event], c_ev: list[Event], max_nodes: int):
    """(indices of the truth events reproduced, label per candidate), or None when too large."""
    truth_side = placements(ref, ws, t_ev, diploid=True)
    if truth_side is None:
        return None
    t_order, sets = truth_side
    by_size: dict[int, list[tuple[str, str]]] = {}
    chosen_of: dict[tuple[str, str], tuple] = {}
    for key, chosen in sets.items():
        if chosen:
            by_size.setdefault(len(chosen), []).append(key)
            chosen_of[key] = chosen
    c_ed = [_edit(e) for e in c_ev]
    c_order = sorted(range(len(c_ev)), key=lambda j: c_ed[j][:2])
    eds = [c_ed[j] for j in c_order]
    budget = [max_nodes]
    try:
        for size in sorted(by_size, reverse=True):
            targets = by_size[size]
            found = _assign(ref, ws, eds, targets, budget)
            if found is None:
                continue
            labs, key = found
            labels = [0] * len(c_ev)
            for k, j in enumerate(c_order):
                labels[j] = labs[k]
            return [t_order[k] for k in chosen_of[key]], labels
    except _TooLarge:
        return None
    return [], [0] * len(c_ev)


# ---------------------------------------------------------------- clusters
def _as_event(c: Candidate) -> Event:
    chrom, pos, ref, alt = c
    return Event(chrom, pos, ref, alt, 0, "", True)


def _label_events(truth: list[Event], cands: list[Event], fetch: Optional[Fetch], max_nodes: int,
                  stats: LabelingMetrics) -> tuple[list[int], set[int]]:
    """Labels for ``cands`` and the indices of the truth events they reproduce; cluster
    counts and ``candidates_matched_by_replay`` go into ``stats``."""
    labels = [0] * len(cands)
    matched: set[int] = set()
    cl = stats.clusters

    def by_key(ts: list[int], cs: list[int]) -> None:
        copies: dict[tuple, int] = {}
        for i in ts:
            copies[truth[i].key] = min(2, copies.get(truth[i].key, 0) + truth[i].copies)
        ckeys = {cands[j].key for j in cs}
        for j in cs:
            labels[j] = copies.get(cands[j].key, 0)
        matched.update(i for i in ts if truth[i].key in ckeys)

    def decide(ts: list[int], cs: list[int], may_split: bool) -> None:
        if not cs:
            cl["truth_only"] += 1
            return
        if not ts:
            cl["candidates_only"] += 1
            return
        ckeys = {cands[j].key for j in cs}
        if all(truth[i].key in ckeys for i in ts):
            cl["by_key"] += 1
            by_key(ts, cs)
            return
        uniq: dict[tuple, list[int]] = {}
        for j in cs:
            uniq.setdefault(cands[j].key, []).append(j)
        c_ev = [cands[js[0]] for js in uniq.values()]
        t_ev = [truth[i] for i in ts]
        ref, ws = _window(t_ev[0].chrom, t_ev, c_ev, fetch)
        found = _search(ref, ws, t_ev, c_ev, max_nodes)
        if found is None:
            split_or_fallback(truth, cands, ts, cs, may_split, cl, decide, by_key)
            return
        t_idx, labs = found
        cl["replayed"] += 1
        cl["replayed_full" if len(t_idx) == len(ts) else "replayed_partial"] += 1
        matched.update(ts[k] for k in t_idx)
        for js, lab in zip(uniq.values(), labs):
            for j in js:
                labels[j] = lab
                if lab:
                    stats.candidates_matched_by_replay += 1

    for ts, cs in _clusters(truth, cands, list(range(len(truth))), list(range(len(cands))), CLUSTER_GAP):
        decide(ts, cs, True)
    return labels, matched


def _count_labels(stats: LabelingMetrics, truth: Sequence[Event], cands: Sequence[Event],
                  labels: Sequence[int]) -> None:
    lookup: dict[tuple, int] = {}
    for e in truth:
        lookup[e.key] = min(2, lookup.get(e.key, 0) + e.copies)
    for c, lab in zip(cands, labels):
        stats.candidates_per_class[lab] += 1
        if lookup.get(c.key, 0) != lab:
            stats.labels_differing_from_key += 1


def _describe(e: Event) -> str:
    return f"{e.chrom}:{e.pos + 1} {e.ref}>{e.alt}"


def label_candidates(truth: Sequence[Event], candidates: Sequence[Candidate], fetch: Optional[Fetch],
                     max_nodes: int = MAX_NODES) -> tuple[list[int], LabelingMetrics]:
    """Copies (0/1/2) of each candidate allele in the truth genotype, and the metrics.

    ``truth``: the scored truth events (``split_events(PASS records, Normalizer(fasta))``,
    already restricted to the region being scored: all of them count in the metrics);
    ``candidates``: ``(chrom, pos, ref, alt)`` alleles, normalised the same way;
    ``fetch(chrom, start, end)``: upper-case reference bases (e.g. ``Normalizer.fetch``;
    None: only the bases that REF alleles name are known)."""
    truth = list(truth)
    cands = [_as_event(c) for c in candidates]
    m = LabelingMetrics()
    labels, matched = _label_events(truth, cands, fetch, max_nodes, m)
    m.truth_variants = len(truth)
    m.truth_matched = len(matched)
    m.truth_unmatched = len(truth) - len(matched)
    m.unmatched_examples = [_describe(truth[i]) for i in range(len(truth)) if i not in matched][:_N_EXAMPLES]
    _count_labels(m, truth, cands, labels)
    return labels, m


class Labeler:
    """Labels candidates partition by partition over one run (make_examples training mode).

    ``truth``: all truth events of the run (``split_events`` of the PASS records, normalised
    with the reference); ``confident``: the confident regions (an ``IntervalIndex``; None:
    everything is scored). A truth event is scored when its REF span lies inside them, and
    it is counted once, by the partition ``[start, end)`` holding its ``pos``: call
    ``label`` for every partition processed, also those without candidates. Truth events
    within ``MARGIN`` bases of a partition take part in its clusters, so a representation
    crossing a partition boundary is still reproduced; a truth event counts as matched when
    any partition's candidates reproduce it, and once matched it takes part in no later
    partition (so it is not labelled twice). Across shards (separate ``Labeler`` objects)
    that memory is not shared: a truth event next to another shard's partition may be
    matched there but counted unmatched here, or (rarely) labelled by both."""

    def __init__(self, truth: Iterable[Event], fetch: Optional[Fetch], confident=None,
                 max_nodes: int = MAX_NODES) -> None:
        self.fetch = fetch
        self.confident = confident
        self.max_nodes = max_nodes
        self._events: list[Event] = []
        by: dict[str, list[int]] = {}
        for e in truth:
            if confident is not None and not confident.contains_span(e.chrom, e.pos, e.end):
                continue
            by.setdefault(e.chrom, []).append(len(self._events))
            self._events.append(e)
        self._ids: dict[str, list[int]] = {}
        self._pos: dict[str, list[int]] = {}
        self._maxlen: dict[str, int] = {}
        for chrom, ids in by.items():
            ids.sort(key=lambda i: (self._events[i].pos, i))
            self._ids[chrom] = ids
            self._pos[chrom] = [self._events[i].pos for i in ids]
            self._maxlen[chrom] = max(len(self._events[i].ref) for i in ids)
        self._seen: set[int] = set()
        self._matched: set[int] = set()
        self._stats = LabelingMetrics()

    def label(self, chrom: str, start: int, end: int, candidates: Sequence[Candidate]) -> list[Optional[int]]:
        """Labels for the candidates of partition ``[start, end)`` (same order): 0/1/2, or
        None for a candidate outside the confident regions (not scored, not counted)."""
        ids = self._ids.get(chrom, [])
        pos = self._pos.get(chrom, [])
        lo = bisect.bisect_left(pos, start - MARGIN - self._maxlen.get(chrom, 0))
        hi = bisect.bisect_left(pos, end + MARGIN)
        near = [i for i in ids[lo:hi] if self._events[i].end > start - MARGIN]
        for i in near:
            if start <= self._events[i].pos < end:
                self._seen.add(i)
        # a truth event already reproduced by another partition's candidates is not offered
        # again (a second representation of it in this partition would be labelled twice)
        near = [i for i in near if i not in self._matched]
        scored = [k for k, c in enumerate(candidates)
                  if self.confident is None or self.confident.contains_span(c[0], c[1], c[1] + len(c[2]))]
        out: list[Optional[int]] = [None] * len(candidates)
        cands = [_as_event(candidates[k]) for k in scored]
        truth = [self._events[i] for i in near]
        labels, matched = _label_events(truth, cands, self.fetch, self.max_nodes, self._stats)
        self._matched.update(near[k] for k in matched)
        _count_labels(self._stats, truth, cands, labels)
        for k, lab in zip(scored, labels):
            out[k] = lab
        return out

    def metrics(self) -> LabelingMetrics:
        """The run's metrics so far (a copy)."""
        m = LabelingMetrics.from_dict(self._stats.to_dict())
        m.truth_variants = len(self._seen)
        hit = self._seen & self._matched
        m.truth_matched = len(hit)
        m.truth_unmatched = len(self._seen) - len(hit)
        miss = sorted(self._seen - hit, key=lambda i: (self._events[i].chrom, self._events[i].pos, i))
        m.unmatched_examples = [_describe(self._events[i]) for i in miss[:_N_EXAMPLES]]
        return m
