"""Benchmark: ``dvtrain call`` (examples/s) and BAM -> VCF end to end against bcftools.

    python benchmarks/call.py [--length 5000000] [--quick] [--workdir DIR] [--label current]
                              [--repeats 1] [--rounds 1] [--no-keras]

Data: the simulated contig of benchmarks/make_examples.py (``dvtrain simulate``, seed 7,
one contig ``chr1`` of ``--length`` bp with ~30x ``generic`` and ~4x ``lowcov`` BAMs),
simulated once into ``--workdir`` and reused; the same ``--workdir`` as that benchmark
shares the dataset.

Model: dvtrain's ``--architecture`` (default ``read_sums``, the training default) built
untrained (``dvtrain.model.build_model``, seeded) and saved once into the workdir. Inference
time does not depend on the weights, and postprocess does the same work whatever the
genotypes. ``--vsc_min_count_snps`` / ``--vsc_min_count_indels`` / ``--vsc_min_snp_lod``
pass make_examples' candidate thresholds (the demo's low-coverage setting is 1 / 2 / 2.0);
``--pileup_image_height`` and ``--channels`` its image shape (the model is built to match).

For each coverage, on the same BAM and region, in the same run:

* ``bcftools``: ``bcftools mpileup -f ref.fa -r HALF bam | bcftools call -mv`` on the two
  halves of the contig as two parallel pipelines (as benchmarks/make_examples.py);
* ``make_examples``: ``dvtrain make-examples --mode calling`` tasks 0 and 1 of 2 in parallel;
* ``call``: ``dvtrain call --threads 2`` on those two shards: inference (numpy engine) plus
  postprocess and the bgzipped, indexed VCF. ``examples/s`` = examples / its wall time,
  start-up included;
* ``call (keras)``: the same with ``--engine keras --threads 1`` (TensorFlow), for
  comparison (skip with ``--no-keras``);
* ``end-to-end`` = make_examples wall + call wall; ``ratio`` = that / the bcftools wall.

Wall and CPU times come from measure.measure (best of ``--repeats``; CPU summed over the
process tree). The 1-minute load average is recorded before each measurement: the machine
may be shared, which slows both tools alike but makes single numbers noisy. With
``--rounds N`` the three measurements run N times in turn (bcftools, make_examples, call,
then again), each round gives its own ratio, and the median of those is printed and stored
(``summary``): a slow spell of the machine then weighs on both sides of a ratio. Results go
to benchmarks/results/call.json under ``--label``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_examples import _parallel, _simulate, add_dataset_args  # noqa: E402  (benchmarks/make_examples.py)
from measure import measure  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from dvtrain.pileup import channel_names  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "call.json"
WIDTH = 221  # make_examples' default image width

_MODEL = r"""
import sys
import keras
from dvtrain.model import build_model
keras.utils.set_random_seed(7)
build_model([int(x) for x in sys.argv[3].split("x")], architecture=sys.argv[2]).save(sys.argv[1])
"""


def _model(work: Path, env: dict, architecture: str, shape: tuple[int, int, int]) -> Path:
    tag = "x".join(map(str, shape))
    path = work / "models" / f"{architecture}-untrained-{tag}.keras"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(".tmp-" + path.name)
        subprocess.run([sys.executable, "-c", _MODEL, str(tmp), architecture, tag], check=True, env=env)
        os.replace(tmp, path)
    return path


def _row(tool: str, wall: float, cpu: float, rss_mb: float, examples: int | None, load: float, **extra) -> dict:
    row = {"tool": tool, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "peak_rss_mb": round(rss_mb, 1),
           "examples": examples, "examples_per_s": round(examples / wall, 1) if examples else None,
           "load_avg_1m": round(load, 2)}
    row.update(extra)
    return row


def bench_case(data: dict, profile: str, chrom: str, length: int, out: Path, model: Path, repeats: int, env: dict,
               keras_too: bool, candidates: list[str]) -> list[dict]:
    bam, ref = data["bams"][profile], data["ref"]
    out.mkdir(parents=True, exist_ok=True)
    mid = length // 2
    halves = [f"{chrom}:1-{mid}", f"{chrom}:{mid + 1}-{length}"]
    cmds = [["sh", "-c", f"bcftools mpileup -f {ref} -r {r} {bam} 2>/dev/null | bcftools call -mv 2>/dev/null "
                         f"| tee {out / f'bcftools.{i}.vcf'} | grep -vc '^#' || true"] for i, r in enumerate(halves)]
    load = os.getloadavg()[0]
    m, br = _parallel(cmds, repeats, env, out)
    bcf = _row("bcftools", m["best_wall_s"], m["best_cpu_s"], sum(b["maxrss_kb"] for b in br) / 1024, None, load,
               records=sum(int(b["stdout"].strip() or 0) for b in br))
    spec = str(out / "calling.tfrecord@2.gz")
    cmds = [[sys.executable, "-m", "dvtrain.cli", "make-examples", "--mode", "calling", "--ref", ref, "--reads", bam,
             "--regions", f"{chrom}:1-{length}", "--examples", spec, "--task", str(t), *candidates] for t in range(2)]
    load = os.getloadavg()[0]
    m, br = _parallel(cmds, repeats, env, out)
    examples = sum(json.loads(b["stdout"])["num_examples"] for b in br)
    me = _row("make_examples", m["best_wall_s"], m["best_cpu_s"], sum(b["maxrss_kb"] for b in br) / 1024, examples, load)
    rows = [bcf, me]
    variants = [("call", ["--threads", "2"])] + ([("call (keras)", ["--engine", "keras", "--threads", "1"])]
                                                 if keras_too else [])
    for tool, extra in variants:
        vcf = out / f"{tool.split()[-1].strip('()')}.vcf.gz"
        cmd = [sys.executable, "-m", "dvtrain.cli", "call", "--examples", spec, "--checkpoint", str(model), "--ref", ref,
               "--outfile", str(vcf), "--reads", bam, *extra]
        load = os.getloadavg()[0]
        m = measure(cmd, repeats, env, cwd=out)
        records = subprocess.run(["bcftools", "view", "-H", str(vcf)], capture_output=True, text=True,
                                 check=True).stdout.count("\n")
        row = _row(tool, m["best_wall_s"], m["best_cpu_s"], m["peak_rss_mb"], examples, load, records=records)
        row["end_to_end_s"] = round(me["wall_s"] + row["wall_s"], 3)
        row["ratio_vs_bcftools"] = round(row["end_to_end_s"] / bcf["wall_s"], 3)
        rows.append(row)
    for r in rows:
        r.update(coverage=profile, region=f"{chrom}:1-{length}", region_bp=length)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_dataset_args(ap)
    ap.add_argument("--no-keras", action="store_true", help="skip the Keras-engine comparison")
    ap.add_argument("--architecture", default="read_sums", choices=["read_sums", "read_evidence", "small_cnn"])
    ap.add_argument("--vsc_min_count_snps", type=int, default=2)
    ap.add_argument("--vsc_min_count_indels", type=int, default=2)
    ap.add_argument("--vsc_min_snp_lod", type=float, help="make_examples' SNP likelihood-ratio filter (default: none)")
    ap.add_argument("--pileup_image_height", type=int, default=100)
    ap.add_argument("--channels", default="insert_size", help="make_examples' optional channels (comma-separated)")
    ap.add_argument("--profiles", default="lowcov,generic", help="coverages to run (lowcov ~4x, generic ~30x)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run bcftools, make_examples and call this many times in turn and report each round's "
                         "ratio and their median: on a shared machine a slow spell then hits both tools of a round")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    length = 1_000_000 if args.quick else args.length

    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    load_start = os.getloadavg()
    sim_dir = work / f"sim-chr1-{length}-s{args.seed}"
    sim_info = _simulate(sim_dir, {"chr1": length}, args.seed, env)
    files = json.loads((sim_dir / "dataset.json").read_text())["files"]
    data = {k: (str(sim_dir / v) if isinstance(v, str) else {p: str(sim_dir / f) for p, f in v.items()})
            for k, v in files.items()}
    channels = [c for c in args.channels.split(",") if c]
    shape = (args.pileup_image_height, WIDTH, len(channel_names(channels)))
    model = _model(work, env, args.architecture, shape)
    candidates = ["--vsc_min_count_snps", str(args.vsc_min_count_snps),
                  "--vsc_min_count_indels", str(args.vsc_min_count_indels),
                  "--pileup_image_height", str(args.pileup_image_height), "--channels", ",".join(channels)]
    if args.vsc_min_snp_lod is not None:
        candidates += ["--vsc_min_snp_lod", str(args.vsc_min_snp_lod)]

    rows = []
    rounds: dict[str, list[float]] = {}  # coverage -> end-to-end ratio of each round
    for profile in args.profiles.split(","):
        for k in range(args.rounds):
            print(f"{profile} chr1:1-{length} ..." + (f" round {k + 1}/{args.rounds}" if args.rounds > 1 else ""),
                  flush=True)
            got = bench_case(data, profile, "chr1", length, work / "call-runs" / args.label / profile, model,
                             args.repeats, env, not args.no_keras and k == 0, candidates)
            for r in got:
                r["round"] = k + 1
            rounds.setdefault(profile, []).append(next(r["ratio_vs_bcftools"] for r in got if r["tool"] == "call"))
            rows += got

    hdr = (f"{'cov':8} {'tool':14} {'wall s':>8} {'cpu s':>8} {'RSS MB':>8} {'examples':>9} {'ex/s':>8} "
           f"{'BAM->VCF s':>10} {'ratio':>6} {'load':>5}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        e2e = r.get("end_to_end_s")
        print(f"{r['coverage']:8} {r['tool']:14} {r['wall_s']:8.2f} {r['cpu_s']:8.2f} {r['peak_rss_mb']:8.1f} "
              f"{r['examples'] or 0:9d} {r['examples_per_s'] or 0:8.1f} {e2e if e2e else 0:10.2f} "
              f"{r.get('ratio_vs_bcftools', 0):6.2f} {r['load_avg_1m']:5.2f}")
    for r in rows:
        if r["tool"] == "call":
            print(f"{r['coverage']}: end-to-end BAM -> VCF {r['end_to_end_s']:.2f} s = "
                  f"{r['ratio_vs_bcftools']:.2f} x bcftools (target <= 2)")
    summary = {cov: {"ratios": ratios, "median_ratio": round(statistics.median(ratios), 3)}
               for cov, ratios in rounds.items()}
    if args.rounds > 1:
        for cov, v in summary.items():
            print(f"{cov}: ratio per round {', '.join(f'{x:.2f}' for x in v['ratios'])}; "
                  f"median {v['median_ratio']:.2f} x bcftools")

    report = json.loads(args.out.read_text()) if args.out.is_file() else {}
    report.setdefault("runs", {})[args.label] = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "bcftools": subprocess.run(["bcftools", "--version"], capture_output=True, text=True).stdout.splitlines()[0]},
        "load_avg_start": [round(x, 2) for x in load_start], "load_avg_end": [round(x, 2) for x in os.getloadavg()],
        "shards": 2, "repeats": args.repeats, "rounds": args.rounds, "summary": summary, "candidates": candidates,
        "model": {"path": str(model), "architecture": args.architecture,
                                                        "weights": "untrained (seeded build_model)", "shape": list(shape)},
        "simulate": sim_info, "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
