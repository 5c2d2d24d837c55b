"""Benchmark: GIAB variants found in real NA12878 reads downsampled to about 4x, next to bcftools.

    python benchmarks/real_reads.py --model demo-output/custom/train/best_model.keras [--model M2 ...]
                                    [--seeds 1,2,3] [--fraction 0.1] [--workdir DIR] [--label current]

Data: ``../shared/data/na12878-chr22-tiny`` (real HiSeqX reads, ~39x, over 12.4 kb of chr22
as contig ``q``, with the 14 GIAB truth variants; the truth VCF has no ``##contig`` line).
For each seed the BAM is subsampled with ``samtools view -s SEED.FRACTION`` (pysam's
samtools; the default 0.1 gives about 4x), then, on that BAM:

* ``dvtrain make-examples --mode calling`` with each model's image shape and channels
  (from its example_info.json) and the demo's calling thresholds (``--vsc_min_count_snps 1
  --vsc_min_count_indels 2 --vsc_min_snp_lod 2.5``, change with ``--make_examples_args``);
* ``dvtrain call`` and ``dvtrain evaluate --pass-only`` per model;
* ``dvtrain benchmark-peers --peers bcftools`` (``bcftools mpileup | call -mv``).

Prints, per seed, the mean depth and the true positives (of 14) and false positives of each
caller; issue 6 asks that a model find at least as many as bcftools. Results go to
benchmarks/results/real_reads.json under ``--label``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import DV, ROOT, _run, _summary  # noqa: E402  (benchmarks/accuracy.py)
from dvtrain.pileup import model_channels, model_image_size  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "na12878-chr22-tiny"
RESULTS = ROOT / "benchmarks" / "results" / "real_reads.json"
DEMO_CALLING = "--vsc_min_count_snps 1 --vsc_min_count_indels 2 --vsc_min_snp_lod 2.5"


def _found(summary: Path) -> dict:
    """True and false positives over SNPs and indels (PASS rows of a summary.csv)."""
    types = _summary(summary).values()
    return {k: sum(t[k] for t in types) for k in ("truth", "tp", "fp")}


def _downsample(bam: Path, seed: int, fraction: float, out: Path) -> float:
    """Subsample ``bam`` into ``out`` (indexed); returns its mean depth over the contig."""
    import pysam

    if not 0 < fraction < 1:
        sys.exit(f"--fraction {fraction}: must be between 0 and 1")
    frac = f"{fraction:.6f}".rstrip("0")[1:]  # 0.1 -> ".1"
    pysam.view("-b", "-s", f"{seed}{frac}", "-o", str(out), str(bam), catch_stdout=False)
    pysam.index(str(out))
    with pysam.AlignmentFile(str(out)) as f:
        contig, length = f.references[0], f.lengths[0]
        depth = sum(sum(a) for a in f.count_coverage(contig, 0, length, quality_threshold=0))
    return depth / length


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True, type=Path, help="a .keras model (repeat)")
    ap.add_argument("--seeds", default="1,2,3", help="subsampling seeds, comma-separated")
    ap.add_argument("--fraction", type=float, default=0.1, help="fraction of reads kept (0.1: about 4x)")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--make_examples_args", default=DEMO_CALLING, help="make-examples flags, space-separated")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "dvtrain-bench-real-reads")
    ap.add_argument("--label", default="current")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    bam, ref, truth = (args.data / n for n in ("NA12878.chr22.tiny.bam", "q.fa", "NA12878.chr22.tiny.giab.vcf"))
    if not bam.exists():
        sys.exit(f"{bam}: not found (the shared test data sits beside the checkout)")
    models = [m.resolve() for m in args.model]
    env = dict(os.environ)
    out = args.workdir.resolve() / args.label
    out.mkdir(parents=True, exist_ok=True)

    runs = []
    for seed in (int(s) for s in args.seeds.split(",")):
        d = out / f"s{seed}"
        d.mkdir(exist_ok=True)
        small = d / "reads.bam"
        depth = _downsample(bam, seed, args.fraction, small)
        print(f"seed {seed}: {depth:.1f}x ...", flush=True)
        _run([*DV, "benchmark-peers", "--ref", str(ref), "--reads", str(small), "--truth_vcf", str(truth),
              "--output_dir", str(d / "peers"), "--peers", "bcftools"], env, d / "peers.log")
        found = {"bcftools": _found(d / "peers" / "bcftools.eval.summary.csv")}
        for k, model in enumerate(models):
            height, width = model_image_size(model)
            examples = str(d / f"model{k}.tfrecord@1.gz")
            _run([*DV, "make-examples", "--mode", "calling", "--ref", str(ref), "--reads", str(small),
                  "--examples", examples, "--pileup_image_height", str(height), "--pileup_image_width", str(width),
                  "--channels", ",".join(model_channels(model)), *args.make_examples_args.split()],
                 env, d / f"model{k}.me.log")
            vcf = d / f"model{k}.vcf.gz"
            _run([*DV, "call", "--examples", examples, "--checkpoint", str(model), "--ref", str(ref),
                  "--outfile", str(vcf), "--reads", str(small)], env, d / f"model{k}.call.log")
            _run([*DV, "evaluate", str(truth), str(vcf), "-r", str(ref), "-o", str(d / f"model{k}.eval"),
                  "--pass-only"], env, d / f"model{k}.eval.log")
            found[f"model{k}"] = _found(d / f"model{k}.eval.summary.csv")
        runs.append({"seed": seed, "mean_depth": round(depth, 2), "found": found})

    names = ["bcftools"] + [f"model{k}" for k in range(len(models))]
    print(f"{'seed':>4} {'depth':>6} " + " ".join(f"{n + ' TP/FP':>16}" for n in names))
    for r in runs:
        cells = [f"{r['found'][n]['tp']}/{r['found'][n]['truth']} {r['found'][n]['fp']:>3}" for n in names]
        print(f"{r['seed']:>4} {r['mean_depth']:>6.1f} " + " ".join(f"{c:>16}" for c in cells))
    for k, m in enumerate(models):
        print(f"model{k}: {m}")

    report = json.loads(args.out.read_text()) if args.out.is_file() else {}
    report.setdefault("runs", {})[args.label] = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "data": str(args.data), "fraction": args.fraction, "make_examples": args.make_examples_args.split(),
        "models": {f"model{k}": str(m) for k, m in enumerate(models)}, "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
