"""gVCF for call_variants: reference blocks from make_examples joined, cut around calls, written.

**gVCF**: the reference blocks that ``make_examples --gvcf`` wrote beside each shard
(``SHARD.gvcf.tsv.gz``, :func:`dvtrain.make_examples.reference_blocks`) are read, blocks
that touch end to end in one GQ band (across partition and shard boundaries) are joined
(GQ and MIN_DP the minimum, PL that of the lower-GQ part), and every block is cut around
the REF span of each call. Blocks are written as ``REF <*>`` records with ``END=``, QUAL
0, FILTER ``.`` and ``GT:GQ:MIN_DP:PL`` ``0/0:...``; the calls appear as in the VCF.
"""

from __future__ import annotations

import bisect
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from .errors import InputError
from .fileio import existing_inputs

if TYPE_CHECKING:
    from .call import CallRecord
    from .config import CallConfig


def block_paths(config: CallConfig, shards: list[Path]) -> list[Path]:
    from .make_examples import gvcf_blocks_path

    if config.nonvariant_site_path:
        return existing_inputs(config.nonvariant_site_path)
    paths = [gvcf_blocks_path(s) for s in shards]
    for p in paths:
        if not p.is_file():
            raise InputError(p, "no reference blocks beside the examples shard: run make_examples --gvcf "
                                "(or give nonvariant_site_path)")
    return paths


def read_blocks(paths: list[Path], contigs: dict[str, int]) -> tuple[list[tuple], int]:
    """Blocks (contig index, start, end, gq, min_dp, pl) of the block files, sorted, and
    their GQ bin size (which all files must share)."""
    import gzip

    from .make_examples import GVCF_FORMAT

    order = {c: i for i, c in enumerate(contigs)}
    blocks: list[tuple] = []
    binsize: Optional[int] = None
    for path in paths:
        try:
            with gzip.open(path, "rt") as fh:
                text = fh.read()
        except (OSError, EOFError, UnicodeDecodeError) as e:
            raise InputError(path, f"cannot read reference blocks: {e}") from None
        lines = text.splitlines()
        if len(lines) < 3 or lines[0] != GVCF_FORMAT or not lines[1].startswith("##gq_binsize="):
            raise InputError(path, "not a make_examples --gvcf block file")
        bs = int(lines[1].split("=", 1)[1])
        if binsize is not None and bs != binsize:
            raise InputError(path, f"gq_binsize {bs}, other block files have {binsize}")
        binsize = bs
        for n, line in enumerate(lines[3:], 4):
            f = line.split("\t")
            if len(f) != 6 or f[0] not in order:
                raise InputError(path, f"line {n}: not a block on a reference contig: {line[:80]!r}")
            try:
                s, e, gq, dp = int(f[1]), int(f[2]), int(f[3]), int(f[4])
            except ValueError:
                raise InputError(path, f"line {n}: malformed block {line[:80]!r}") from None
            if not 0 <= s < e <= contigs[f[0]]:
                raise InputError(path, f"line {n}: block {f[0]}:{s}-{e} lies outside the contig (another reference?)")
            blocks.append((order[f[0]], s, e, gq, dp, f[5]))
    blocks.sort()
    return blocks, binsize or 1


def merge_blocks(blocks: list[tuple], binsize: int) -> list[tuple]:
    """Join sorted blocks that touch end to end with GQ in the same bin."""
    out: list[tuple] = []
    for b in blocks:
        if out:
            a = out[-1]
            if a[0] == b[0] and a[2] == b[1] and a[3] // binsize == b[3] // binsize:
                low = a if a[3] <= b[3] else b
                out[-1] = (a[0], a[1], b[2], low[3], min(a[4], b[4]), low[5])
                continue
        out.append(b)
    return out


def cut_blocks(blocks: list[tuple], calls: list[CallRecord]) -> list[tuple]:
    """Blocks minus the REF spans of the calls."""
    spans: dict[int, list[tuple[int, int]]] = {}
    for c in calls:
        spans.setdefault(c.contig, []).append((c.start, c.end))
    starts = {k: [s for s, _ in v] for k, v in spans.items()}
    longest = {k: max(e - s for s, e in v) for k, v in spans.items()}
    out = []
    for b in blocks:
        ci, s, e = b[0], b[1], b[2]
        if ci not in spans:
            out.append(b)
            continue
        cur = s
        j = bisect.bisect_left(starts[ci], s - longest[ci])
        sp = spans[ci]
        while j < len(sp) and sp[j][0] < e:
            vs, ve = sp[j]
            if ve > cur:
                if vs > cur:
                    out.append((ci, cur, min(vs, e)) + b[3:])
                cur = max(cur, ve)
            j += 1
        if cur < e:
            out.append((ci, cur, e) + b[3:])
    return out


def gvcf_lines(blocks: list[tuple], calls: list[CallRecord], contigs: list[str], ref_path: str | Path) -> list[str]:
    """Block records and call records in reference order."""
    from .genome import open_reference

    fasta = open_reference(ref_path)
    rows: list[tuple[int, int, str]] = [(c.contig, c.start, c.line) for c in calls]
    seq_of: Optional[tuple[int, str]] = None
    for ci, s, e, gq, dp, pl in blocks:
        if seq_of is None or seq_of[0] != ci:
            seq_of = (ci, fasta.fetch(contigs[ci]).upper())
        rows.append((ci, s, f"{contigs[ci]}\t{s + 1}\t.\t{seq_of[1][s]}\t<*>\t0\t.\tEND={e}\t"
                            f"GT:GQ:MIN_DP:PL\t0/0:{gq}:{dp}:{pl}"))
    rows.sort(key=lambda r: (r[0], r[1]))
    return [r[2] for r in rows]
