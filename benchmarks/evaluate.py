"""Benchmark: dvtrain.evaluate on Platinum NA12878 chr21 (65,402 records) with known answers.

    python benchmarks/evaluate.py [--drop 1000] [--flip 1000] [--add-fp 1000] [--seed 1] [--repeats 3]

Builds a seeded perturbed copy of the truth (benchmarks/perturb.py: records dropped,
genotypes flipped het <-> hom-alt, false-positive SNPs added inside the confident BED),
then times ``evaluate`` in a fresh interpreter, best of N, for

* self:      truth vs truth (everything TP);
* perturbed: truth vs the perturbed copy; its PASS rows are checked against the counts the
  perturbation implies (exit 1 on any mismatch);
* perturbed -t2: the same with ``threads=2`` (matching in two forked workers).

Each run writes every output (summary, extended, annotated VCF + index, metrics); the
PASS-filter cluster statistics (identical / replayed / split / too_large) are recorded.

Wall time is the child process's whole life (interpreter start, imports, reading, writing);
peak RSS is ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` of a wrapper that ran only that child.
Writes benchmarks/results/evaluate.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import measure  # noqa: E402
from perturb import perturb  # noqa: E402

PLATINUM = ROOT.parent / "shared" / "data" / "platinum-na12878-chr21"
RESULTS = ROOT / "benchmarks" / "results" / "evaluate.json"
CHECKED = ("TRUTH.TOTAL", "TRUTH.TP", "TRUTH.FN", "QUERY.TOTAL", "QUERY.FP", "QUERY.UNK", "FP.gt", "FP.al")


_EVAL = r"""
import json, sys
from dvtrain.config import EvaluateConfig
from dvtrain.evaluate import evaluate
rows = evaluate(EvaluateConfig(truth_vcf=sys.argv[1], query_vcf=sys.argv[2], confident_bed=sys.argv[3],
                               output_prefix=sys.argv[4], threads=int(sys.argv[5])))
with open(sys.argv[4] + ".rows.json", "w") as fh:
    json.dump(rows, fh)
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--drop", type=int, default=1000)
    ap.add_argument("--flip", type=int, default=1000)
    ap.add_argument("--add-fp", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--output", type=Path, default=RESULTS)
    args = ap.parse_args()
    truth, bed = PLATINUM / "PG_NA12878_chr21.vcf.gz", PLATINUM / "PG_Conf_chr21.bed.gz"
    if not truth.is_file():
        print(f"Platinum data not found at {PLATINUM}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    load_start = os.getloadavg()
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with tempfile.TemporaryDirectory(prefix="bench-evaluate-") as td:
        work = Path(td)
        query = work / "perturbed.vcf.gz"
        t = time.perf_counter()
        info = perturb(truth, bed, query, args.drop, args.flip, args.add_fp, seed=args.seed)
        build_s = time.perf_counter() - t
        results = {}
        mismatches = []
        for name, q, threads in (("self", truth, 1), ("perturbed", query, 1), ("perturbed -t2", query, 2)):
            prefix = str(work / ("eval-" + name.replace(" ", "")))
            results[name] = measure([sys.executable, "-c", _EVAL, str(truth), str(q), str(bed), prefix, str(threads)],
                                    args.repeats, env)
            results[name]["clusters"] = json.loads(Path(prefix + ".metrics.json").read_text())["clusters"]["PASS"]
            rows = {(r["Type"], r["Filter"]): r for r in json.loads(Path(prefix + ".rows.json").read_text())}
            results[name]["pass_rows"] = {t: {c: rows[t, "PASS"][c] for c in CHECKED} for t in ("SNP", "INDEL")}
        for vtype, exp in info["expected"].items():
            for name in ("perturbed", "perturbed -t2"):
                got = results[name]["pass_rows"][vtype]
                mismatches += [f"{name} {vtype} {c}: got {got[c]}, expected {exp[c]}" for c in CHECKED if got[c] != exp[c]]
    report = {
        "benchmark": "evaluate (stage 6), Platinum NA12878 chr21 truth vs itself and vs a perturbed copy",
        "params": {"truth_records": 65402, "drop": args.drop, "flip": args.flip, "add_fp": args.add_fp,
                   "seed": args.seed, "repeats": args.repeats, "perturbable_records": info["candidates"]},
        "expected": info["expected"],
        "counts_match": not mismatches,
        "mismatches": mismatches,
        "input_build_s": build_s,
        "results": results,
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
                    "loadavg_1m_start_end": [load_start[0], os.getloadavg()[0]]},
        "wall_clock_total_s": time.perf_counter() - t0,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")

    print(f"Platinum chr21: drop {args.drop}, flip {args.flip}, add {args.add_fp} FP SNPs (seed {args.seed}); "
          f"counts match: {not mismatches}")
    for m in mismatches:
        print("  MISMATCH", m)
    print(f"{'':12}{'wall s':>8}{'cpu s':>8}{'RSS MB':>8}   {'SNP TP/FN/FP/FP.gt':>22}{'INDEL TP/FN/FP/FP.gt':>24}")
    for name, r in results.items():
        s, i = r["pass_rows"]["SNP"], r["pass_rows"]["INDEL"]
        fmt = lambda x: f"{x['TRUTH.TP']}/{x['TRUTH.FN']}/{x['QUERY.FP']}/{x['FP.gt']}"  # noqa: E731
        print(f"{name:12}{r['best_wall_s']:8.2f}{r['best_cpu_s']:8.2f}{r['peak_rss_mb']:8.1f}   {fmt(s):>22}{fmt(i):>24}")
    print(f"load average (1 min) {load_start[0]:.2f} -> {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"(best of {args.repeats}; perturbed copy built in {build_s:.1f}s; total {report['wall_clock_total_s']:.1f}s)"
          f" -> {args.output}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
