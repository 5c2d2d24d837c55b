"""gVCF: reference blocks written by make_examples, joined and cut around calls by call_variants.

**Blocks** (``make_examples --gvcf_blocks``): :func:`reference_confidence` gives each covered,
non-candidate position a hom-ref GQ and PL, :func:`reference_blocks` groups runs of them by
GQ band, and :func:`write_reference_blocks` writes the block file beside the shard; the
block-file format lives only here.

**gVCF** (``call --gvcf_outfile``): the reference blocks that ``make_examples --gvcf_blocks`` wrote beside each shard
(``SHARD.gvcf.tsv.gz``, :func:`reference_blocks`) are read, blocks
that touch end to end in one GQ band (across partition and shard boundaries) are joined
(GQ and MIN_DP the minimum, PL that of the lower-GQ part), and every block is cut around
the REF span of each call. Blocks are written as ``REF <*>`` records with ``END=``, QUAL
0, FILTER ``.`` and ``GT:GQ:MIN_DP:PL`` ``0/0:...``; the calls appear as in the VCF.
"""

from __future__ import annotations

import bisect
import gzip
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np

from .errors import InputError
from .fileio import atomic_output, existing_inputs
from .reads import BASE_CODE, RefCache

if TYPE_CHECKING:
    from .call import CallRecord
    from .config import CallConfig


# ---------------------------------------------------------------- writing (make_examples --gvcf_blocks)
# With ``--gvcf_blocks`` (calling mode) each shard also gets SHARD.gvcf.tsv.gz: the covered,
# non-candidate positions of its partitions as reference blocks, which
# ``call --gvcf_outfile`` merges with the calls into a gVCF (docs/architecture.md).

P_ERROR = 0.001  # DeepVariant's --p_error: per-read error rate of the reference-confidence model
MAX_GQ = 99
GVCF_SUFFIX = ".gvcf.tsv.gz"
GVCF_FORMAT = "##dvtrain_reference_blocks=1"
GVCF_COLUMNS = "#chrom\tstart\tend\tgq\tmin_dp\tpl"


def gvcf_blocks_path(shard: str | Path) -> Path:
    """The reference-block file written beside an examples shard."""
    return Path(str(shard) + GVCF_SUFFIX)


def reference_confidence(n_ref: np.ndarray, n_total: np.ndarray, p_error: float = P_ERROR) -> tuple[np.ndarray, np.ndarray]:
    """(GQ, PL) of a hom-ref call at positions with ``n_ref`` of ``n_total`` reads showing
    the reference base.

    Each read is an independent draw: a non-reference base has probability ``p_error``
    under hom-ref, 1/2 under het and 1 - ``p_error`` under hom-alt. With a flat prior,
    GQ = -10 log10(1 - P(hom-ref | reads)), floored and capped at 99; PL are the
    Phred-scaled likelihoods of (0/0, 0/1, 1/1) relative to the best, rounded.
    """
    n_ref = np.asarray(n_ref, dtype=np.float64)
    n_total = np.asarray(n_total, dtype=np.float64)
    n_alt = n_total - n_ref
    lo, hi = np.log10(p_error), np.log10(1.0 - p_error)
    ll = np.stack([n_ref * hi + n_alt * lo, -n_total * np.log10(2.0), n_ref * lo + n_alt * hi], axis=-1)
    rel = ll - ll.max(axis=-1, keepdims=True)
    pl = np.rint(-10.0 * rel).astype(np.int64)
    lik = 10.0 ** rel
    with np.errstate(divide="ignore"):
        phred = -10.0 * (np.log10(lik[..., 1] + lik[..., 2]) - np.log10(lik.sum(axis=-1)))
    gq = np.floor(np.clip(phred, 0.0, MAX_GQ)).astype(np.int64)
    return gq, pl


def reference_blocks(ref: RefCache, start: int, counts: np.ndarray, skip: set[int], binsize: int) -> list[str]:
    """Reference blocks over [start, start + len(counts)) as block-file lines.

    A position takes part when at least one read has a base there with quality >=
    min_base_quality (``counts``: A C G T N per position), the reference base is A, C, G or
    T, and no candidate starts there (``skip``). Consecutive such positions form one block
    while GQ // ``binsize`` stays the same; a block's GQ and MIN_DP are the minimum over its
    positions and its PL that of its (first) lowest-GQ position.
    """
    width = len(counts)
    if not width:
        return []
    rc = BASE_CODE[ref.arr[start:start + width]]
    n = counts.sum(axis=1)
    valid = (rc < 4) & (n > 0)
    n_ref = np.where(rc < 4, counts[np.arange(width), np.minimum(rc, 3)], 0)
    for p in skip:
        if start <= p < start + width:
            valid[p - start] = False
    gq, pl = reference_confidence(n_ref, n)
    key = np.where(valid, gq // binsize, -1)
    cuts = np.flatnonzero(np.diff(key)) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [width]])
    keep = key[starts] >= 0
    starts, ends = starts[keep], ends[keep]
    if not starts.size:
        return []
    lens = ends - starts
    offsets = np.concatenate([[0], np.cumsum(lens)[:-1]])
    pos = np.arange(int(lens.sum())) + np.repeat(starts - offsets, lens)
    seg = np.repeat(np.arange(starts.size), lens)
    order = np.lexsort((pos, gq[pos], seg))  # per block: lowest GQ first, then position
    worst = pos[order[offsets]]
    min_dp = np.minimum.reduceat(n[pos], offsets)
    chrom = ref.chrom
    return [f"{chrom}\t{start + s}\t{start + e}\t{g}\t{d}\t{a},{b},{c}"
            for s, e, g, d, (a, b, c) in zip(starts.tolist(), ends.tolist(), gq[worst].tolist(), min_dp.tolist(),
                                             pl[worst].tolist())]


def write_reference_blocks(path: Path, lines: list[str], binsize: int) -> None:
    """Write a block file atomically: gzip (mtime 0) text, two ## lines, a column line,
    then ``chrom start end gq min_dp pl`` (0-based half-open, PL as three numbers)."""
    text = "\n".join([GVCF_FORMAT, f"##gq_binsize={binsize}", GVCF_COLUMNS] + lines) + "\n"
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as gz:
            gz.write(text.encode())


# ---------------------------------------------------------------- reading and writing the gVCF (call)
def block_paths(config: CallConfig, shards: list[Path]) -> list[Path]:
    if config.nonvariant_site_path:
        return existing_inputs(config.nonvariant_site_path)
    paths = [gvcf_blocks_path(s) for s in shards]
    for p in paths:
        if not p.is_file():
            raise InputError(p, "no reference blocks beside the examples shard: run make_examples --gvcf_blocks "
                                "(or give nonvariant_site_path)")
    return paths


def read_blocks(paths: list[Path], contigs: dict[str, int]) -> tuple[list[tuple], int]:
    """Blocks (contig index, start, end, gq, min_dp, pl) of the block files, sorted, and
    their GQ bin size (which all files must share)."""
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
            raise InputError(path, "not a make_examples --gvcf_blocks block file")
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
