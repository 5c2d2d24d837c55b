"""Benchmark: dvtrain's coverage stage against the samtools + bedtools pipeline it replaces.

    python benchmarks/bench_coverage.py [--length 2000000] [--depth 30] [--repeats 3]

Builds (once, then reuses) two deterministic synthetic lanes over one contig with pysam,
plus a truth BED, then times, best of N wall-clock runs, each in a fresh process:

* full stage:       coverage_bed()  vs  samtools merge + index | genomecov -bg | awk | intersect
* depth+intersect:  filter_truth_by_depth() on the merged BAM  vs  genomecov -bg | awk | intersect

Peak RSS is ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` of a wrapper process that ran only that
command (for a shell pipeline: the largest single process in it). Outputs are checked to be
byte-identical. Writes benchmarks/results/coverage.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pysam

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import measure  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "coverage.json"
CONTIG = "chrS"
READ_LEN = 150


_OURS_FULL = r"""
import sys
from dvtrain.config import CoverageConfig
from dvtrain.coverage import coverage_bed
coverage_bed(CoverageConfig(reads=sys.argv[1:3], truth_bed=sys.argv[3], output_bed=sys.argv[4],
                            merged_bam=sys.argv[5], min_coverage=int(sys.argv[6])))
"""

_OURS_DEPTH = r"""
import sys
from dvtrain.coverage import filter_truth_by_depth
filter_truth_by_depth(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
"""


def build_inputs(work: Path, length: int, depth: int, seed: int) -> tuple[list[Path], Path]:
    """Two coordinate-sorted lanes and a truth BED; rebuilt only when the parameters change."""
    stamp = work / "params.json"
    params = {"length": length, "depth": depth, "seed": seed, "read_len": READ_LEN, "v": 1}
    lanes = [work / "lane1.bam", work / "lane2.bam"]
    truth = work / "truth.bed"
    if stamp.is_file() and json.loads(stamp.read_text()) == params and all(p.is_file() for p in lanes + [truth]):
        return lanes, truth
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    genome = "".join(rng.choice(list("ACGT"), size=length + 1000))
    n = depth * length // READ_LEN
    pos = np.sort(rng.integers(0, length - READ_LEN, size=n))
    kinds = rng.choice(5, size=n, p=[0.90, 0.03, 0.03, 0.02, 0.02])
    cigars = ["150M", "70M3D80M", "60M2I88M", "20S130M", "130M20S"]
    qlens = [150, 150, 150, 150, 150]
    flag_roll = rng.random(n)
    flags = np.where(rng.random(n) < 0.5, 16, 0)
    flags = np.where(flag_roll < 0.02, flags | 1024, flags)                              # duplicates
    flags = np.where((flag_roll >= 0.02) & (flag_roll < 0.03), flags | 256, flags)      # secondary
    flags = np.where((flag_roll >= 0.03) & (flag_roll < 0.033), 4, flags)               # unmapped, placed
    lane = rng.integers(0, 2, size=n)
    qual = pysam.qualitystring_to_array("I" * READ_LEN)
    for li, path in enumerate(lanes):
        header = pysam.AlignmentHeader.from_dict({
            "HD": {"VN": "1.6", "SO": "coordinate"}, "SQ": [{"SN": CONTIG, "LN": length}],
            "RG": [{"ID": f"lane{li + 1}", "SM": "BENCH"}]})
        with pysam.AlignmentFile(str(path), "wb", header=header) as out:
            for i in np.flatnonzero(lane == li).tolist():
                a = pysam.AlignedSegment(header)
                a.query_name = f"r{i}"
                a.flag = int(flags[i])
                a.reference_id = 0
                a.reference_start = int(pos[i])
                a.mapping_quality = 60
                a.cigarstring = cigars[kinds[i]]
                p = int(pos[i])
                a.query_sequence = genome[p:p + qlens[kinds[i]]]
                a.query_qualities = qual
                out.write(a)
    # truth: GIAB-like confident blocks with a name column
    lines, p, k = [], int(rng.integers(0, 2000)), 0
    while p < length:
        span = int(rng.integers(200, 20_000))
        lines.append(f"{CONTIG}\t{p}\t{min(p + span, length)}\tconf{k}\n")
        p += span + int(rng.integers(50, 2_000))
        k += 1
    truth.write_text("".join(lines))
    stamp.write_text(json.dumps(params))
    return lanes, truth


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--length", type=int, default=2_000_000)
    ap.add_argument("--depth", type=int, default=30)
    ap.add_argument("--min-coverage", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=20240611)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "dvtrain-bench-coverage")
    ap.add_argument("--output", type=Path, default=RESULTS)
    args = ap.parse_args()
    for tool in ("bedtools", "samtools", "awk"):
        if shutil.which(tool) is None:
            print(f"{tool} not on PATH; install it (make installs bedtools)", file=sys.stderr)
            return 2

    t0 = time.perf_counter()
    lanes, truth = build_inputs(args.workdir, args.length, args.depth, args.seed)
    build_s = time.perf_counter() - t0
    w = args.workdir
    m = args.min_coverage
    load_start = os.getloadavg()
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    ours_bed, theirs_bed = w / "ours.bed", w / "bedtools.bed"
    ours_bam, theirs_bam = w / "ours.merged.bam", w / "bedtools.merged.bam"
    a, b = (str(x) for x in lanes)
    shell_depth = (f"bedtools genomecov -ibam '{theirs_bam}' -bg | awk '$4 > {m}' "
                   f"| bedtools intersect -a '{truth}' -b - > '{theirs_bed}'")
    shell_full = (f"set -o pipefail; samtools merge -f -c -p '{theirs_bam}' '{a}' '{b}' "
                  f"&& samtools index '{theirs_bam}' && {shell_depth}")

    results = {
        "full_stage": {
            "dvtrain": measure([sys.executable, "-c", _OURS_FULL, a, b, str(truth), str(ours_bed), str(ours_bam),
                                str(m)], args.repeats, env),
            "bedtools": measure(["bash", "-c", shell_full], args.repeats, env),
        },
        "depth_and_intersect": {
            "dvtrain": measure([sys.executable, "-c", _OURS_DEPTH, str(ours_bam), str(truth), str(ours_bed), str(m)],
                               args.repeats, env),
            "bedtools": measure(["bash", "-c", "set -o pipefail; " + shell_depth], args.repeats, env),
        },
    }
    identical = ours_bed.read_bytes() == theirs_bed.read_bytes()
    n_reads = sum(int(pysam.view("-c", str(p)).strip()) for p in lanes)
    out_lines = ours_bed.read_text().count("\n")
    for r in results.values():
        r["ratio_wall_dvtrain_over_bedtools"] = r["dvtrain"]["best_wall_s"] / r["bedtools"]["best_wall_s"]
        r["ratio_cpu_dvtrain_over_bedtools"] = r["dvtrain"]["best_cpu_s"] / r["bedtools"]["best_cpu_s"]
        r["ratio_rss_dvtrain_over_bedtools"] = r["dvtrain"]["peak_rss_mb"] / r["bedtools"]["peak_rss_mb"]

    bedtools_version = subprocess.run(["bedtools", "--version"], capture_output=True, text=True).stdout.strip()
    report = {
        "benchmark": "coverage stage (stage 1)",
        "params": {"contig_length": args.length, "depth": args.depth, "read_length": READ_LEN,
                   "reads": n_reads, "truth_intervals": truth.read_text().count("\n"),
                   "min_coverage": m, "repeats": args.repeats, "seed": args.seed},
        "outputs_identical": identical,
        "output_intervals": out_lines,
        "input_build_s": build_s,
        "results": results,
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count(), "loadavg_1m_start_end": [load_start[0], os.getloadavg()[0]],
                    "bedtools": bedtools_version,
                    "samtools": pysam.__samtools_version__, "pysam": pysam.__version__, "numpy": np.__version__},
        "wall_clock_total_s": time.perf_counter() - t0,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")

    print(f"{n_reads} reads over {args.length:,} bp at {args.depth}x, {report['params']['truth_intervals']} truth "
          f"intervals, min_coverage {m}; outputs identical: {identical} ({out_lines} lines)")
    print(f"{'':20}{'wall: ours':>11}{'bedtools':>9}{'ratio':>7}{'cpu: ours':>11}{'bedtools':>9}{'ratio':>7}"
          f"{'RSS MB: ours':>14}{'bedtools':>9}{'ratio':>7}")
    for name, r in results.items():
        d, t = r["dvtrain"], r["bedtools"]
        print(f"{name:20}{d['best_wall_s']:11.2f}{t['best_wall_s']:9.2f}{r['ratio_wall_dvtrain_over_bedtools']:7.2f}"
              f"{d['best_cpu_s']:11.2f}{t['best_cpu_s']:9.2f}{r['ratio_cpu_dvtrain_over_bedtools']:7.2f}"
              f"{d['peak_rss_mb']:14.1f}{t['peak_rss_mb']:9.1f}{r['ratio_rss_dvtrain_over_bedtools']:7.2f}")
    print(f"load average (1 min) {load_start[0]:.2f} -> {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"(best of {args.repeats}; inputs built/reused in {build_s:.1f}s; total {report['wall_clock_total_s']:.1f}s)"
          f" -> {args.output}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
