"""Reference FASTA helpers and region parsing."""

from __future__ import annotations

import os
from pathlib import Path

import pysam

from .errors import InputError, require_file
from .fileio import index_companions

_BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


def contig_lengths(reference: str | Path) -> dict[str, int]:
    """Contig -> length from the FASTA index (.fai is built if missing and writable)."""
    ref = require_file(reference, "reference FASTA")
    fai = Path(str(ref) + ".fai")
    if not fai.exists():
        with open(ref, "rb") as fh:
            head = fh.read(2)
        if head[:1] != b">" and head != b"\x1f\x8b":  # FASTA, or bgzipped FASTA
            raise InputError(ref, "not a FASTA file (does not start with '>')")
        try:
            pysam.faidx(str(ref))
        except Exception as e:  # pysam raises SamtoolsError
            msg = (getattr(e, "stderr", "") or str(e)).strip().splitlines() or [type(e).__name__]
            raise InputError(ref, f"cannot index FASTA ({msg[-1]})") from None
    lengths: dict[str, int] = {}
    for line in fai.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) < 2:
            raise InputError(fai, "malformed FASTA index line")
        lengths[fields[0]] = int(fields[1])
    return lengths


def open_reference(reference: str | Path) -> pysam.FastaFile:
    contig_lengths(reference)  # validates and indexes
    try:
        return pysam.FastaFile(str(reference))
    except (OSError, ValueError) as e:
        raise InputError(reference, f"cannot open FASTA: {e}") from None


def parse_regions(regions: list[str], lengths: dict[str, int]) -> list[tuple[str, int, int]]:
    """Parse contig names, ``chr:start-end`` (1-based inclusive) or BED files to 0-based half-open.

    An empty list means every contig.
    """
    if not regions:
        return [(c, 0, n) for c, n in lengths.items()]
    out: list[tuple[str, int, int]] = []
    for r in regions:
        if r.endswith((".bed", ".bed.gz")) and Path(r).exists():
            from .bed import read_bed

            out.extend((c, s, e) for c, s, e in read_bed(r))
            continue
        if ":" in r and r.rsplit(":", 1)[0] in lengths:
            contig, span = r.rsplit(":", 1)
            try:
                a, b = span.replace(",", "").split("-")
                start, end = int(a) - 1, int(b)
            except ValueError:
                raise InputError(r, "region must look like chr:start-end") from None
            if max(0, start) >= min(end, lengths[contig]):
                raise InputError(r, f"region is empty or outside {contig} (length {lengths[contig]})")
        else:
            contig, start, end = r, 0, lengths.get(r, -1)
        if contig not in lengths:
            raise InputError(r, f"contig {contig!r} is not in the reference")
        out.append((contig, max(0, start), min(end, lengths[contig])))
    return out


def check_bam(path: Path) -> list[tuple[str, int]]:
    """Validate one input BAM; return its @SQ (name, length) list."""
    p = require_file(path, "BAM file")
    try:
        with open(p, "rb") as fh:
            magic = fh.read(4)
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - len(_BGZF_EOF)))
            tail = fh.read()
    except OSError as e:
        raise InputError(p, f"cannot read BAM file: {e}") from None
    if magic != b"\x1f\x8b\x08\x04":
        raise InputError(p, "not a BAM file (no BGZF header)")
    if tail != _BGZF_EOF:
        raise InputError(p, "truncated BAM file (no BGZF end-of-file marker)")
    _check_index_age(p)  # before htslib loads (and warns about) a stale index
    try:
        with pysam.AlignmentFile(str(p), "rb", check_sq=False) as bam:
            if not bam.is_bam:
                raise InputError(p, "not a BAM file")
            header = bam.header.to_dict()
    except InputError:
        raise
    except (ValueError, OSError) as e:
        raise InputError(p, f"not a readable BAM file: {e}") from None
    so = header.get("HD", {}).get("SO")
    # as samtools and DeepVariant: a header that says another order is refused; no SO (or
    # SO:unknown, as in many real BAMs) is taken, the index (which samtools builds only over
    # sorted records) or the merge's order check proving the order
    if so in ("unsorted", "queryname"):
        raise InputError(p, f"BAM is not coordinate sorted (@HD SO:{so}); run samtools sort")
    sq = [(d["SN"], int(d["LN"])) for d in header.get("SQ", [])]
    if not sq:
        raise InputError(p, "BAM header has no @SQ lines")
    return sq


def open_bams(paths: list[Path], lengths: dict[str, int]) -> list[pysam.AlignmentFile]:
    """Open indexed, coordinate-sorted BAMs whose shared contigs match the reference."""
    bams = []
    for p in paths:
        sq = dict(check_bam(Path(p)))
        diff = [c for c, n in sq.items() if c in lengths and n != lengths[c]]
        if diff:
            raise InputError(p, f"contig {diff[0]!r} has length {sq[diff[0]]} in the BAM but {lengths[diff[0]]} in the reference")
        if not set(sq) & set(lengths):
            raise InputError(p, "no BAM contig is in the reference (wrong reference build or contig names?)")
        bam = pysam.AlignmentFile(str(p), "rb")
        if not bam.has_index():
            raise InputError(p, "BAM has no index (.bai); run `samtools index`")
        bams.append(bam)
    return bams


def _check_index_age(bam: Path) -> None:
    """An index older than its BAM (the BAM was rewritten after indexing) is an error; htslib
    compares whole seconds and only warns, then reads with the stale index."""
    for _, idx in index_companions(bam, (".bai", ".csi"))[:1]:
        if int(idx.stat().st_mtime) < int(bam.stat().st_mtime):
            raise InputError(bam, f"index {idx.name} is older than the BAM; re-run `samtools index`")
