"""hap.py-style stratified ("extended") metrics: rows per subtype, genotype and stratum.

A *stratification TSV* (hap.py ``--stratification``) lists one stratum per line,
``NAME<TAB>BED_PATH``; blank lines and ``#`` lines are skipped; a relative BED path is
relative to the TSV's directory; BEDs may be gzipped.

``extended_rows(truth, labelled, strata)`` turns the labelled events of
``evaluate.label_filters`` into hap.py ``extended.csv`` rows (``EXTENDED_COLUMNS``):

* **Subset** ``*`` is every event; each stratum (in TSV order) keeps the events whose
  normalised REF span ``[pos, pos + len(ref))`` *overlaps* one of its intervals (partial
  overlap counts; an insertion's span is its anchor base). Truth events keep their labels
  (``OUT`` ones still count for nothing), so a stratum row counts exactly the events of the
  ``*`` row that fall in it. ``Subset.Size`` is the number of bases the stratum covers
  (its merged intervals; empty for ``*``).
* **Subtype** (``subtype``): SNPs ``ti`` / ``tv``; indels ``I``/``D``/``C`` (pure
  insertion, pure deletion, complex) with a length class ``1_5``, ``6_15`` or ``16_PLUS``.
* **Genotype**: ``het``, ``homalt`` or ``hetalt``, the genotype class of each event's own
  source record (truth events by the truth record, query events by the query record).

For each Type (INDEL, SNP), Subset and Filter (ALL, PASS) the rows are: Subtype ``*`` /
Genotype ``*`` (always written), then each subtype with Genotype ``*``, then each genotype
with Subtype ``*``; a non-``*`` row whose TRUTH.TOTAL and QUERY.TOTAL are both 0 is left
out. Every row is ``evaluate.metrics_row`` of the events (and their labels) of that cell.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import numpy as np

from .bed import merge, read_bed
from .errors import InputError
from .evaluate import _TRANSITIONS, COLUMNS, FILTERS, TYPES, Event, Labelled, metrics_row, write_csv

EXTENDED_COLUMNS = ["Type", "Subtype", "Subset", "Filter", "Genotype", *COLUMNS[2:], "Subset.Size"]
LENGTH_CLASSES = ("1_5", "6_15", "16_PLUS")
SUBTYPES = {
    "SNP": ("ti", "tv"),
    "INDEL": tuple(f"{k}{c}" for k in "IDC" for c in LENGTH_CLASSES),
}
GENOTYPES = ("het", "homalt", "hetalt")



# ---------------------------------------------------------------- subtypes
def _length_class(n: int) -> str:
    return "1_5" if n <= 5 else ("6_15" if n <= 15 else "16_PLUS")


def subtype(e: Event) -> str:
    """hap.py's subtype code of a (trimmed) event: ``ti``/``tv`` for SNPs, else
    ``I``/``D``/``C`` + ``1_5``/``6_15``/``16_PLUS``."""
    ref, alt = e.ref, e.alt
    if len(ref) == 1 and len(alt) == 1:
        return "ti" if (ref, alt) in _TRANSITIONS else "tv"
    if len(ref) == 1 and len(alt) > 1 and alt[0] == ref:
        return "I" + _length_class(len(alt) - 1)
    if len(alt) == 1 and len(ref) > 1 and ref[0] == alt:
        return "D" + _length_class(len(ref) - 1)
    return "C" + _length_class(max(len(ref), len(alt), 2) - 1)


# ---------------------------------------------------------------- strata
def read_stratification(path: str | Path) -> list[tuple[str, Path]]:
    """Parse a hap.py stratification TSV into ``[(name, bed_path)]`` in file order."""
    p = Path(path)
    if not p.exists():
        raise InputError(p, "stratification file does not exist")
    if not p.is_file():
        raise InputError(p, "stratification file is not a regular file")
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(p, f"cannot read stratification file: {e}") from None
    out: list[tuple[str, Path]] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in line.split("\t")]
        if len(fields) != 2 or not fields[0] or not fields[1]:
            raise InputError(p, f"line {n}: expected NAME<TAB>BED_PATH, got {len(fields)} tab-separated field(s)")
        name, bed = fields
        if name in seen:
            raise InputError(p, f"line {n}: duplicate stratum name {name!r} (first on line {seen[name]})")
        seen[name] = n
        bed_path = Path(bed).expanduser()
        if not bed_path.is_absolute():
            bed_path = p.parent / bed_path
        if not bed_path.is_file():
            raise InputError(p, f"line {n}: BED for stratum {name!r} does not exist: {bed_path}")
        out.append((name, bed_path))
    if not out:
        raise InputError(p, "lists no strata")
    return out


class Stratum:
    """A named set of regions answering "does this span overlap it" (merged intervals,
    bisect / numpy ``searchsorted`` per contig)."""

    __slots__ = ("name", "path", "size", "_starts", "_ends")

    def __init__(self, name: str, intervals: Iterable[tuple[str, int, int]], path: Optional[Path] = None):
        self.name = name
        self.path = path
        starts: dict[str, list[int]] = {}
        ends: dict[str, list[int]] = {}
        for c, s, e in merge((c, s, e) for c, s, e in intervals if e > s):
            starts.setdefault(c, []).append(s)
            ends.setdefault(c, []).append(e)
        self._starts = {c: np.asarray(v, dtype=np.int64) for c, v in starts.items()}
        self._ends = {c: np.asarray(v, dtype=np.int64) for c, v in ends.items()}
        self.size = int(sum(int((self._ends[c] - self._starts[c]).sum()) for c in self._starts))

    def __repr__(self) -> str:
        return f"Stratum({self.name!r}, {sum(len(v) for v in self._starts.values())} intervals, {self.size} bp)"

    @property
    def contigs(self) -> list[str]:
        return list(self._starts)

    def overlaps(self, chrom: str, start: int, end: int) -> bool:
        """True when [start, end) (an empty span counts as its first base) overlaps it."""
        ends = self._ends.get(chrom)
        if ends is None:
            return False
        end = max(end, start + 1)
        k = int(np.searchsorted(ends, start, side="right"))  # first interval ending after start
        return k < len(ends) and int(self._starts[chrom][k]) < end

    def overlap_flags(self, events: Sequence[Event] | "_Spans") -> np.ndarray:
        """A boolean array: whether each event's REF span overlaps the stratum."""
        spans = events if isinstance(events, _Spans) else _Spans(events)
        out = np.zeros(spans.n, dtype=bool)
        for c, (idx, st, en) in spans.by_chrom.items():
            ends = self._ends.get(c)
            if ends is None:
                continue
            k = np.searchsorted(ends, st, side="right")
            ok = k < len(ends)
            out[idx] = ok & (self._starts[c][np.minimum(k, len(ends) - 1)] < en)
        return out


class _Spans:
    """Events' REF spans grouped by contig as numpy arrays (index, start, end)."""

    __slots__ = ("n", "by_chrom")

    def __init__(self, events: Sequence[Event]):
        self.n = len(events)
        lists: dict[str, tuple[list[int], list[int], list[int]]] = {}
        for i, e in enumerate(events):
            t = lists.get(e.chrom)
            if t is None:
                t = lists[e.chrom] = ([], [], [])
            t[0].append(i)
            t[1].append(e.pos)
            t[2].append(e.pos + max(len(e.ref), 1))
        self.by_chrom = {c: (np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64),
                             np.asarray(d, dtype=np.int64)) for c, (a, b, d) in lists.items()}


def load_strata(path: str | Path, rename: Optional[Callable[[str], str]] = None) -> list[Stratum]:
    """Read a stratification TSV and each of its BEDs (contig names through ``rename``)."""
    out = []
    for name, bed in read_stratification(path):
        ivs = read_bed(bed)
        if rename is not None:
            ivs = [(rename(c), s, e) for c, s, e in ivs]
        out.append(Stratum(name, ivs, bed))
    return out


# ---------------------------------------------------------------- rows
def _cells(events: list[Event], flags: Optional[np.ndarray], vtype: str
           ) -> tuple[list[int], dict[str, list[int]], dict[str, list[int]]]:
    """Indices of ``events`` of ``vtype`` (inside ``flags``): all, by subtype, by genotype."""
    if flags is None:
        idx = [i for i, e in enumerate(events) if e.vtype == vtype]
    else:
        idx = [i for i in np.flatnonzero(flags).tolist() if events[i].vtype == vtype]
    by_sub: dict[str, list[int]] = {}
    by_gt: dict[str, list[int]] = {}
    for i in idx:
        e = events[i]
        by_sub.setdefault(subtype(e), []).append(i)
        by_gt.setdefault(e.gtc, []).append(i)
    return idx, by_sub, by_gt


def extended_rows(truth: list[Event], labelled: Labelled, strata: Sequence[Stratum] = ()) -> list[dict]:
    """hap.py extended.csv rows (see the module docstring) for ``label_filters`` output."""
    subsets: list[tuple[str, Optional[Stratum]]] = [("*", None)] + [(s.name, s) for s in strata]
    t_spans = _Spans(truth)
    q_spans = {flt: _Spans(labelled[flt][1]) for flt in FILTERS}
    t_flags = [None if s is None else s.overlap_flags(t_spans) for _, s in subsets]
    q_flags = [{flt: (None if s is None else s.overlap_flags(q_spans[flt])) for flt in FILTERS}
               for _, s in subsets]
    rows: list[dict] = []
    for vtype in TYPES:
        for k, (name, stratum) in enumerate(subsets):
            t_all, t_sub, t_gt = _cells(truth, t_flags[k], vtype)
            size = None if stratum is None else stratum.size
            for flt in FILTERS:
                t_lab, q_ev, q_lab = labelled[flt]
                q_all, q_sub, q_gt = _cells(q_ev, q_flags[k][flt], vtype)

                def row(sub: str, gt: str, ti: list[int], qi: list[int], always: bool = False) -> None:
                    r = metrics_row(vtype, flt, [truth[i] for i in ti], [t_lab[i] for i in ti],
                                    [q_ev[j] for j in qi], [q_lab[j] for j in qi])
                    if not always and r["TRUTH.TOTAL"] == 0 and r["QUERY.TOTAL"] == 0:
                        return
                    r.update({"Subtype": sub, "Subset": name, "Genotype": gt, "Subset.Size": size})
                    rows.append({c: r[c] for c in EXTENDED_COLUMNS})

                row("*", "*", t_all, q_all, always=True)
                for sub in SUBTYPES[vtype]:
                    row(sub, "*", t_sub.get(sub, []), q_sub.get(sub, []))
                for gt in GENOTYPES:
                    row("*", gt, t_gt.get(gt, []), q_gt.get(gt, []))
    return rows


# ---------------------------------------------------------------- CSV
def extended_path(prefix: str | Path) -> Path:
    return Path(str(prefix) + ".extended.csv")


def write_extended(path: str | Path, rows: list[dict]) -> None:
    """Write extended rows as CSV (``EXTENDED_COLUMNS``), atomically."""
    write_csv(path, EXTENDED_COLUMNS, rows)
