"""Reference FASTA helpers and region parsing."""

from __future__ import annotations

from pathlib import Path

import pysam

from .errors import InputError, require_file


def contig_lengths(reference: str | Path) -> dict[str, int]:
    """Contig -> length from the FASTA index (.fai is built if missing and writable)."""
    ref = require_file(reference, "reference FASTA")
    fai = Path(str(ref) + ".fai")
    if not fai.exists():
        try:
            pysam.faidx(str(ref))
        except Exception as e:  # pysam raises SamtoolsError
            raise InputError(ref, f"cannot index FASTA ({str(e).strip().splitlines()[-1] if str(e).strip() else e})") from None
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
        else:
            contig, start, end = r, 0, lengths.get(r, -1)
        if contig not in lengths:
            raise InputError(r, f"contig {contig!r} is not in the reference")
        out.append((contig, max(0, start), min(end, lengths[contig])))
    return out
