"""Hand-built references and BAMs for make_examples tests (shared by several modules)."""

from __future__ import annotations

import random
from pathlib import Path

import pysam


def write_ref(tmp_path: Path, n: int = 600, seed: int = 1, name: str = "c") -> tuple[Path, str]:
    """A random ACGT contig ``name`` of ``n`` bases as ref.fa (+ .fai); returns (path, sequence)."""
    rng = random.Random(seed)
    seq = "".join(rng.choice("ACGT") for _ in range(n))
    fa = tmp_path / "ref.fa"
    fa.write_text(f">{name}\n{seq}\n")
    pysam.faidx(str(fa))
    return fa, seq


def write_bam(tmp_path: Path, seq: str, reads: list[tuple], name: str = "r.bam", contig: str = "c") -> Path:
    """A sorted, indexed BAM. A read is (name, start, sequence, cigar, flag[, mapq=60[,
    base quality=40 for every base]])."""
    header = {"HD": {"VN": "1.6", "SO": "coordinate"}, "SQ": [{"SN": contig, "LN": len(seq)}]}
    path = tmp_path / name
    with pysam.AlignmentFile(str(path), "wb", header=header) as out:
        for qname, start, rseq, cigar, flag, *rest in sorted(reads, key=lambda r: (r[1], r[0])):
            a = pysam.AlignedSegment()
            a.query_name = qname
            a.reference_id = 0
            a.reference_start = start
            a.query_sequence = rseq
            a.cigarstring = cigar
            a.mapping_quality = rest[0] if rest else 60
            a.query_qualities = pysam.qualitystring_to_array(chr(33 + (rest[1] if len(rest) > 1 else 40)) * len(rseq))
            a.flag = flag
            out.write(a)
    pysam.index(str(path))
    return path
