"""BED reading/writing and interval arithmetic (0-based, half-open)."""

from __future__ import annotations

import bisect
import gzip
import sys
from pathlib import Path
from typing import Iterable, Optional

from .errors import InputError, require_file
from .fileio import atomic_output

Interval = tuple[str, int, int]


def read_bed(path: str | Path, keep_extra: bool = False) -> list:
    """Read a BED (plain or gzip). Returns (chrom, start, end) or, with keep_extra,
    (chrom, start, end, [extra columns])."""
    p = require_file(path, "BED file")
    opener = gzip.open if p.name.endswith(".gz") else open
    out: list = []
    empty: list[int] = []
    try:
        with opener(p, "rt") as fh:  # type: ignore[operator]
            for n, line in enumerate(fh, 1):
                if not line.strip() or line.startswith(("#", "track", "browser")):
                    continue
                f = line.rstrip("\n\r").split("\t")
                if len(f) < 3:
                    raise InputError(p, f"line {n}: expected at least 3 tab-separated columns")
                try:
                    s, e = int(f[1]), int(f[2])
                except ValueError:
                    raise InputError(p, f"line {n}: start/end are not integers") from None
                if s < 0 or e < s:
                    raise InputError(p, f"line {n}: invalid interval {f[1]}-{f[2]}")
                if s == e:
                    empty.append(n)
                out.append((f[0], s, e, f[3:]) if keep_extra else (f[0], s, e))
    except (OSError, UnicodeDecodeError, EOFError) as e:
        raise InputError(p, f"cannot read BED: {e}") from None
    if empty:  # start == end holds no base in BED; it is how a 1-based single position looks
        print(f"warning: {p}: {len(empty)} zero-length interval(s) (start == end, first on line {empty[0]}); "
              f"BED is 0-based, half-open: is this file 1-based (off by one)?", file=sys.stderr)
    return out


def require_intervals_on(path: str | Path, intervals: list, contigs: Iterable[str], where: str) -> None:
    """InputError naming the BED at ``path`` unless it has intervals and one of them lies on
    ``contigs`` (``where`` says what those are, e.g. "a BAM contig")."""
    if not intervals:
        raise InputError(path, "BED file has no intervals")
    names = list(contigs)
    if not set(names) & {iv[0] for iv in intervals}:
        raise InputError(path, f"no interval is on {where} ({', '.join(names[:3])}; the BED has "
                               f"{intervals[0][0]!r}: contig names differ?)")


def write_bed(path: str | Path, intervals: Iterable) -> int:
    """Write intervals atomically; items are (chrom, start, end[, extra list])."""
    n = 0
    with atomic_output(path) as tmp:
        with open(tmp, "w") as fh:
            for iv in intervals:
                cols = [iv[0], str(iv[1]), str(iv[2])]
                if len(iv) > 3 and iv[3]:
                    cols.extend(iv[3])
                fh.write("\t".join(cols) + "\n")
                n += 1
    return n


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sort and merge overlapping/adjacent intervals (per contig, contigs in first-seen order)."""
    by: dict[str, list[tuple[int, int]]] = {}
    for c, s, e in intervals:
        by.setdefault(c, []).append((s, e))
    out: list[Interval] = []
    for c, ivs in by.items():
        ivs.sort()
        cs, ce = ivs[0]
        for s, e in ivs[1:]:
            if s <= ce:
                ce = max(ce, e)
            else:
                out.append((c, cs, ce))
                cs, ce = s, e
        out.append((c, cs, ce))
    return out


class IntervalIndex:
    """Membership queries against a merged set of intervals."""

    def __init__(self, intervals: Iterable[Interval]):
        self._starts: dict[str, list[int]] = {}
        self._ends: dict[str, list[int]] = {}
        for c, s, e in merge(intervals):
            self._starts.setdefault(c, []).append(s)
            self._ends.setdefault(c, []).append(e)

    def contains(self, chrom: str, pos: int) -> bool:
        starts = self._starts.get(chrom)
        if not starts:
            return False
        i = bisect.bisect_right(starts, pos) - 1
        return i >= 0 and pos < self._ends[chrom][i]

    def contains_span(self, chrom: str, start: int, end: int) -> bool:
        """True when [start, end) lies inside one interval."""
        starts = self._starts.get(chrom)
        if not starts:
            return False
        i = bisect.bisect_right(starts, start) - 1
        return i >= 0 and end <= self._ends[chrom][i]

    def overlaps(self, chrom: str, start: int, end: int) -> bool:
        """True when [start, end) shares at least one base with an interval."""
        ends = self._ends.get(chrom)
        if not ends:
            return False
        i = bisect.bisect_right(ends, start)  # the first interval ending after start
        return i < len(ends) and self._starts[chrom][i] < end

    def clip(self, chrom: str, start: int, end: int) -> list[Interval]:
        starts = self._starts.get(chrom, [])
        ends = self._ends.get(chrom, [])
        i = max(0, bisect.bisect_right(starts, start) - 1)
        out = []
        while i < len(starts) and starts[i] < end:
            s, e = max(starts[i], start), min(ends[i], end)
            if s < e:
                out.append((chrom, s, e))
            i += 1
        return out

    def total(self) -> int:
        return sum(e - s for c in self._starts for s, e in zip(self._starts[c], self._ends[c]))


def scoring_bed(confident: Optional[str | Path], called: list[Interval], lengths: dict[str, int],
                out: str | Path) -> Optional[Path]:
    """The BED to score calls in when only ``called`` was called.

    Whole contigs (or nothing, i.e. everything): ``confident`` itself (None: score
    everywhere). Parts of contigs: ``confident`` (or the whole contigs) cut to ``called``,
    written to ``out`` in reference order, so truth outside the called regions is not
    counted as missed.
    """
    if all(s == 0 and e == lengths[c] for c, s, e in called):
        return Path(confident) if confident is not None else None
    base = IntervalIndex(read_bed(confident) if confident is not None else [(c, 0, n) for c, n in lengths.items()])
    order = {c: i for i, c in enumerate(lengths)}
    regions = sorted(merge(called), key=lambda iv: (order.get(iv[0], len(order)), iv[1]))
    write_bed(out, [piece for c, s, e in regions for piece in base.clip(c, s, e)])
    return Path(out)
