"""Peer callers: bcftools and freebayes on the same BAMs, reference and regions, scored by
dvtrain's own evaluator so their hap.py rows sit next to the models' in the report.

Each peer's VCF is sorted (reference contig order), bgzipped and tabix-indexed with pysam,
and written atomically to ``OUTPUT_DIR/PEER.vcf.gz``. A peer whose binary is not on PATH is
skipped with a one-line warning; a peer that fails raises a one-line :class:`DvtrainError`
naming the tool and the last line it wrote to stderr.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

from .bed import scoring_bed
from .config import EvaluateConfig, PeersConfig
from .errors import DvtrainError, require_file
from .fileio import atomic_output, temp_dir
from .genome import check_bam, contig_lengths, parse_regions

#: peer -> the binaries it needs
BINARIES = {"bcftools": ("bcftools",), "freebayes": ("freebayes",)}


def available(peers: list[str]) -> dict[str, str | None]:
    """Peer -> path of its (first) binary, or None when a binary is missing."""
    out: dict[str, str | None] = {}
    for p in peers:
        paths = [shutil.which(b) for b in BINARIES[p]]
        out[p] = paths[0] if all(paths) else None
    return out


def _warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


def _region_args(intervals: list[tuple[str, int, int]]) -> list[str]:
    return [f"{c}:{s + 1}-{e}" for c, s, e in intervals if e > s]


def _last_line(path: Path) -> str:
    lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "(no stderr output)"


def _check(tool: str, rc: int, stderr: Path) -> None:
    if rc != 0:
        raise DvtrainError(f"{tool} failed (exit {rc}): {_last_line(stderr)}")


def _run_bcftools(cfg: PeersConfig, regions: list[str], out: Path, work: Path) -> list[Path]:
    mpileup = ["bcftools", "mpileup", "-f", str(cfg.ref), "-a", "FORMAT/AD,FORMAT/DP", "-Ou"]
    if regions:
        mpileup += ["-r", ",".join(regions)]
    mpileup += [str(r) for r in cfg.reads]
    call = ["bcftools", "call", "-mv", "-Oz", "-o", str(out)]
    err1, err2 = work / "mpileup.err", work / "call.err"
    with open(err1, "wb") as e1, open(err2, "wb") as e2:
        p1 = subprocess.Popen(mpileup, stdout=subprocess.PIPE, stderr=e1)
        p2 = subprocess.Popen(call, stdin=p1.stdout, stderr=e2)
        assert p1.stdout is not None
        p1.stdout.close()  # p2 owns the pipe now; p1 gets SIGPIPE if p2 dies
        rc2 = p2.wait()
        rc1 = p1.wait()
    _check("bcftools mpileup", rc1, err1)
    _check("bcftools call", rc2, err2)
    return [out]


def _run_freebayes(cfg: PeersConfig, regions: list[str], out: Path, work: Path) -> list[Path]:
    outs = []
    for i, region in enumerate(regions or [None]):  # freebayes takes one --region per run
        vcf, err = work / f"freebayes.{i}.vcf", work / f"freebayes.{i}.err"
        cmd = ["freebayes", "-f", str(cfg.ref), "--vcf", str(vcf)]
        if region is not None:
            cmd += ["-r", region]
        cmd += [str(r) for r in cfg.reads]
        with open(err, "wb") as e:
            rc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=e).returncode
        _check("freebayes", rc, err)
        outs.append(vcf)
    return outs


RUNNERS = {"bcftools": _run_bcftools, "freebayes": _run_freebayes}


def _header_line(line: str, scratch: Optional[Path]) -> str:
    """A peer's command-line header line without what differs between identical runs: the
    scratch folder's random name and bcftools' ``; Date=...``."""
    if scratch is not None:
        line = line.replace(f"{scratch}/", "")
    return re.sub(r"; Date=[^\n]*", "", line)


def _write_sorted(parts: list[Path], order: dict[str, int], path: Path, scratch: Optional[Path] = None) -> int:
    """Merge VCF parts (header of the first), sort by reference order, bgzip + tabix atomically."""
    import pysam

    header: list[str] = []
    records: list[tuple[int, int, int, str]] = []
    for n, part in enumerate(parts):
        opener = gzip.open if part.name.endswith(".gz") else open
        # a tool's bytes, kept as they are even where they are not UTF-8 (paths in its command line)
        with opener(part, "rt", encoding="utf-8", errors="surrogateescape") as fh:  # type: ignore[operator]
            for line in fh:
                if line.startswith("#"):
                    if n == 0:
                        header.append(_header_line(line, scratch))
                    continue
                f = line.split("\t", 2)
                records.append((order.get(f[0], len(order)), int(f[1]), len(records), line))
    records.sort()
    seen: set[str] = set()  # freebayes regions may overlap: drop exact duplicate records
    with temp_dir(path.parent, path.name) as td:
        plain = Path(td) / "sorted.vcf"
        with open(plain, "w", encoding="utf-8", errors="surrogateescape") as fh:
            fh.writelines(header)
            for *_, line in records:
                if line not in seen:
                    seen.add(line)
                    fh.write(line)
        with atomic_output(path) as tmp:
            pysam.tabix_compress(str(plain), str(tmp), force=True)
            pysam.tabix_index(str(tmp), preset="vcf", force=True)
            with atomic_output(str(path) + ".tbi") as tbi:
                os.replace(str(tmp) + ".tbi", tbi)
    return len(seen)


def run_peer(cfg: PeersConfig, peer: str, regions: list[str], order: dict[str, int]) -> dict:
    """Run one peer; returns {"vcf", "num_records"}."""
    out_dir = Path(cfg.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vcf = out_dir / f"{peer}.vcf.gz"
    with temp_dir(out_dir, vcf.name) as work:
        parts = RUNNERS[peer](cfg, regions, work / f"{peer}.raw.vcf.gz", work)
        n = _write_sorted(parts, order, vcf, scratch=work)
    return {"vcf": str(vcf), "num_records": n}


def benchmark_peers(cfg: PeersConfig) -> dict:
    """Run every available peer and evaluate it; returns
    ``{"rows": [summary rows with "model": PEER], "evaluations": {peer: rows}, "vcfs": {peer: path},
    "skipped": [peer, ...]}``."""
    from .evaluate import evaluate

    lengths = contig_lengths(cfg.ref)
    for bam in cfg.reads:
        check_bam(Path(bam))
    for p in (cfg.truth_vcf, cfg.confident_regions):
        if p is not None:
            require_file(p)
    intervals = parse_regions(list(cfg.regions), lengths) if cfg.regions else []
    regions = _region_args(intervals)
    contigs = sorted({c for c, _, _ in intervals}, key=list(lengths).index)
    order = {c: i for i, c in enumerate(lengths)}
    out_dir = Path(cfg.output_dir)

    # scoring inside chr:start-end regions: the confident BED (or whole contigs) cut to them
    confident = scoring_bed(cfg.confident_regions, intervals, lengths, out_dir / "scored_regions.bed")

    result: dict = {"rows": [], "evaluations": {}, "vcfs": {}, "skipped": []}
    for peer, binary in available(list(cfg.peers)).items():
        if binary is None:
            _warn(f"{peer}: {'/'.join(BINARIES[peer])} not found on PATH; skipping this peer "
                  f"(Debian: apt-get install {peer})")
            result["skipped"].append(peer)
            continue
        called = run_peer(cfg, peer, regions, order)
        result["vcfs"][peer] = called["vcf"]
        if cfg.truth_vcf is not None:
            rows = evaluate(EvaluateConfig(
                truth_vcf=cfg.truth_vcf, query_vcf=called["vcf"], confident_bed=confident, reference=cfg.ref,
                output_prefix=out_dir / f"{peer}.eval", regions=contigs, region_rule=cfg.region_rule,
            ))
            result["evaluations"][peer] = rows
            result["rows"] += [{"model": peer, **r} for r in rows]
    return result
