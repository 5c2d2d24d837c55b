"""Fail-fast checks of a whole case-study config, before any stage runs.

Everything cheap to check up front is checked here, so that a bad path or a contig
mismatch is reported in one line in seconds rather than after an hour of make_examples.
Remote inputs (``s3://``, ``gs://``) are skipped here: the flow checks that they exist
through their storage blocks (``tasks.staging.check_remote_inputs``).
"""

from __future__ import annotations

from pathlib import Path

from .bed import read_bed
from .config import CaseStudyConfig
from .errors import InputError, require_file
from .genome import contig_lengths, open_bams
from .uri import is_remote
from .variants import read_header_contigs


def check_case_study(cfg: CaseStudyConfig) -> None:
    """Raise InputError for the first problem found in ``cfg``'s local inputs."""
    lengths = None if is_remote(cfg.reference) else contig_lengths(cfg.reference)
    seen: dict[str, str] = {}
    for split in ("train", "tune", "test"):
        for contig in getattr(cfg.splits, split):
            if lengths is not None and contig not in lengths:
                raise InputError(cfg.reference, f"splits.{split} names contig {contig!r}, which the reference lacks")
            if contig in seen:
                raise InputError(cfg.reference, f"contig {contig!r} is in both splits.{seen[contig]} and splits.{split}")
            seen[contig] = split
    if not is_remote(cfg.truth_vcf):
        require_file(cfg.truth_vcf, "truth VCF")
        read_header_contigs(cfg.truth_vcf)  # readable, (b)gzip or plain text
    if not is_remote(cfg.truth_bed):
        bed = read_bed(cfg.truth_bed)
        if not any(iv[0] in seen for iv in bed):
            raise InputError(cfg.truth_bed, "no interval on the train/tune/test contigs")
    augment = [b for aug in cfg.augment for b in aug.reads]
    local_bams = [b for b in list(cfg.reads) + list(cfg.baseline.reads) + augment if not is_remote(b)]
    if lengths is None:  # remote reference: no contig lengths to compare against
        for b in local_bams:
            require_file(b, "BAM")
    else:
        for bam in open_bams(local_bams, lengths):
            missing = [c for c in seen if c not in bam.references]
            if missing:
                raise InputError(bam.filename.decode(), f"contig {missing[0]!r} (in splits) is not in the BAM header")
            bam.close()
    if cfg.baseline.model is not None and not is_remote(cfg.baseline.model):
        if cfg.engine == "deepvariant":  # a checkpoint prefix (PREFIX.index, PREFIX.data-*) or its folder
            p = Path(cfg.baseline.model)
            if not (p.is_dir() or Path(f"{p}.index").is_file()):
                raise InputError(p, "baseline model: no DeepVariant checkpoint (PREFIX.index) there")
        else:
            require_file(cfg.baseline.model, "baseline model")
    if cfg.dataset_json is not None and not is_remote(cfg.dataset_json):
        require_file(cfg.dataset_json, "dataset_json")
