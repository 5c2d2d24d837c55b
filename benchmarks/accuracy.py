"""Benchmark: accuracy on a held-out simulated genome, next to bcftools and freebayes.

    python benchmarks/accuracy.py --model demo-output/custom/train/best_model.keras [--model M2 ...]
                                  [--length 5000000] [--quick] [--workdir DIR] [--label current]
                                  [--profile lowcov] [--vsc_min_count_snps 1] [--vsc_min_count_indels 2]
                                  [--make_examples_args "--noindel_haplotype_support"]

The demo's test contig holds 640 SNPs and 120 indels, so one call moves its INDEL F1 by
about 0.01 and a seed's luck hides real differences. This benchmark scores models on a
genome none of them has seen: the simulated contig of benchmarks/make_examples.py
(``dvtrain simulate``, seed 7, one contig ``chr1`` of ``--length`` bp, the same ~4x
BGISEQ-like ``lowcov`` and ~30x ``generic`` read profiles as the demo), about 11,000 SNPs
and 1,750 indels inside the scoring BED at 5 Mb.

For the ``--profile`` BAM, in one run:

* the scoring BED: ``dvtrain coverage`` (depth > 2, intersected with the truth BED), as the
  case study scores its test contig;
* ``dvtrain make-examples --mode calling`` (2 shards) per distinct model image shape and
  channels (read from each model's example_info.json), with the candidate thresholds given
  (the demo's low-coverage setting, 1 / 2, by default);
* ``dvtrain call`` and ``dvtrain evaluate --pass-only`` per model;
* ``dvtrain benchmark-peers`` (bcftools and freebayes) on the same BAM and BED.

Prints recall / precision / F1 per caller and type, and each model's F1 minus the best
peer's; results go to benchmarks/results/accuracy.json under ``--label``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_examples import _simulate, add_dataset_args  # noqa: E402  (benchmarks/make_examples.py)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from dvtrain.evaluate import read_summary  # noqa: E402
from dvtrain.pileup import model_channels, model_image_size  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "accuracy.json"
DV = [sys.executable, "-m", "dvtrain.cli"]


def _run(cmd: list[str], env: dict, log: Path) -> None:
    with open(log, "w") as fh:
        rc = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode
    if rc:
        sys.exit(f"{Path(sys.argv[0]).name}: {' '.join(cmd[2:4])} failed (exit {rc}); see {log}")


def _summary(path: Path) -> dict:
    """{type: {recall, precision, f1, truth, tp, fp}} from a summary.csv's PASS rows."""
    return {r["Type"]: {"recall": r["METRIC.Recall"], "precision": r["METRIC.Precision"], "f1": r["METRIC.F1_Score"],
                        "truth": r["TRUTH.TOTAL"], "tp": r["TRUTH.TP"], "fp": r["QUERY.FP"]}
            for r in read_summary(path) if r["Filter"] == "PASS" and r["Type"] in ("SNP", "INDEL")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_dataset_args(ap)
    ap.add_argument("--model", action="append", required=True, type=Path, help="a .keras model (repeat)")
    ap.add_argument("--profile", default="lowcov", help="which simulated BAM to call (lowcov ~4x, generic ~30x)")
    ap.add_argument("--vsc_min_count_snps", type=int, default=1)
    ap.add_argument("--vsc_min_count_indels", type=int, default=2)
    ap.add_argument("--make_examples_args", default="", help="more make-examples flags, space-separated")
    ap.add_argument("--peers", default="bcftools,freebayes")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    length = 1_000_000 if args.quick else args.length

    work = args.workdir.resolve()
    env = dict(os.environ)
    sim_dir = work / f"sim-chr1-{length}-s{args.seed}"
    sim_info = _simulate(sim_dir, {"chr1": length}, args.seed, env)
    files = json.loads((sim_dir / "dataset.json").read_text())["files"]
    ref, truth, truth_bed = (str(sim_dir / files[k]) for k in ("ref", "truth_vcf", "truth_bed"))
    bam = str(sim_dir / files["bams"][args.profile])
    out = work / "accuracy-runs" / args.label / args.profile
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()

    bed = out / "scoring.bed"
    _run([*DV, "coverage", "--reads", bam, "--truth_bed", truth_bed, "--output_bed", str(bed)], env, out / "coverage.log")
    print(f"{args.profile} chr1:1-{length}: peers ...", flush=True)
    _run([*DV, "benchmark-peers", "--ref", ref, "--reads", bam, "--regions", "chr1", "--truth_vcf", truth,
          "--confident_regions", str(bed), "--output_dir", str(out / "peers"), "--peers", args.peers], env,
         out / "peers.log")
    results = {p: _summary(out / "peers" / f"{p}.eval.summary.csv") for p in args.peers.split(",")}

    thresholds = ["--vsc_min_count_snps", str(args.vsc_min_count_snps),
                  "--vsc_min_count_indels", str(args.vsc_min_count_indels), *args.make_examples_args.split()]
    examples: dict[tuple, str] = {}
    models = {}
    for k, model in enumerate(args.model):
        model = model.resolve()
        height, width = model_image_size(model)
        channels = model_channels(model)
        shape = (height, width, tuple(channels))
        if shape not in examples:
            spec = str(out / f"examples-{len(examples)}" / "calling.tfrecord@2.gz")
            Path(spec).parent.mkdir(exist_ok=True)
            print(f"make_examples {height}x{width} {','.join(channels) or '-'} ...", flush=True)
            logs = [open(out / f"me-{len(examples)}-{t}.log", "w") for t in range(2)]
            procs = [subprocess.Popen([*DV, "make-examples", "--mode", "calling", "--ref", ref, "--reads", bam,
                                       "--regions", "chr1", "--examples", spec, "--task", str(t),
                                       "--pileup_image_height", str(height), "--pileup_image_width", str(width),
                                       "--channels", ",".join(channels), *thresholds],
                                      env=env, stdout=subprocess.DEVNULL, stderr=log)
                     for t, log in enumerate(logs)]
            failed = [p.wait() for p in procs]
            for log in logs:
                log.close()
            if any(failed):
                sys.exit(f"accuracy benchmark: make-examples failed; see {out}/me-*.log")
            examples[shape] = spec
        name = f"model{k}"
        vcf = out / f"{name}.vcf.gz"
        print(f"{name}: call + evaluate {model} ...", flush=True)
        _run([*DV, "call", "--examples", examples[shape], "--checkpoint", str(model), "--ref", ref, "--outfile",
              str(vcf), "--reads", bam], env, out / f"{name}.call.log")
        _run([*DV, "evaluate", truth, str(vcf), "-f", str(bed), "-r", ref, "-o", str(out / f"{name}.eval"),
              "--pass-only"], env, out / f"{name}.eval.log")
        results[name] = _summary(out / f"{name}.eval.summary.csv")
        models[name] = {"path": str(model), "shape": [height, width], "channels": channels}

    peers = args.peers.split(",")
    hdr = f"{'caller':12} {'type':6} {'truth':>6} {'recall':>7} {'prec':>7} {'F1':>7} {'vs best peer':>12}"
    print(hdr)
    print("-" * len(hdr))
    for name, res in results.items():
        for typ in ("SNP", "INDEL"):
            r = res[typ]
            best = max(results[p][typ]["f1"] for p in peers)
            diff = f"{r['f1'] - best:+.4f}" if name not in peers else ""
            print(f"{name:12} {typ:6} {r['truth']:6d} {r['recall']:7.4f} {r['precision']:7.4f} {r['f1']:7.4f} {diff:>12}")
    for name, m in models.items():
        print(f"{name}: {m['path']}")

    report = json.loads(args.out.read_text()) if args.out.is_file() else {}
    report.setdefault("runs", {})[args.label] = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "dataset": {"simulate": sim_info, "contig": "chr1", "length": length, "profile": args.profile},
        "make_examples": thresholds, "models": models, "results": results,
        "wall_s": round(time.monotonic() - t0, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
