"""Benchmark: ``dvtrain make-examples`` (2 shards) against ``bcftools mpileup | bcftools call -mv``.

    python benchmarks/make_examples.py [--length 5000000] [--quick] [--workdir DIR] [--label after]
                                       [--pythonpath DIR] [--no-demo] [--repeats 1]
                                       [--me-args '--preset deepvariant']

Data (simulated once with ``dvtrain simulate``, seeded, then reused from ``--workdir``):

* ``sim``: one contig ``chr1`` of ``--length`` bp (default 5 Mb, ``--quick``: 1 Mb), with the
  generic (~30x, 150 bp) and lowcov (~4x, 100 bp) BAMs;
* ``demo``: the embedded demo dataset (simulate defaults, seed 42), region chr20.

For each dataset x coverage, on the same BAM and the same region, in the same run:

* ``me-calling`` / ``me-training``: ``dvtrain make-examples --task 0`` and ``--task 1`` of
  ``X.tfrecord@2.gz`` as two parallel processes (training mode with the simulated truth VCF
  and confident BED);
* ``bcftools``: ``bcftools mpileup -f ref.fa -r HALF bam | bcftools call -mv`` on the two halves
  of the region, as two parallel pipelines, so that both tools use both cores.

Wall and CPU time come from :func:`measure.measure` (best of ``--repeats``; CPU summed over the
process tree). Peak RSS is the sum over the two parallel branches of each branch's largest
process (an upper bound on the tree's concurrent peak). Candidates are make_examples'
``num_candidates`` (bcftools: records called). Mbp/s per core = region Mbp / wall / 2.
``ratio`` = wall / bcftools wall on the same data. The 1-minute load average is recorded
before each measurement (the machine may be shared). ``--pythonpath`` runs make-examples from
another copy of the ``dvtrain`` package (e.g. a ``git archive`` of an older commit) for
before/after numbers; results are merged into benchmarks/results/make_examples.json under
``--label``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import measure  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "make_examples.json"
CORES = 2

# run the commands in argv[2] (a JSON list) in parallel; write each branch's exit status,
# stdout and rusage (ru_maxrss covers the branch's largest process) to the JSON file argv[1]
_PARALLEL = r"""
import json, os, subprocess, sys, tempfile
cmds = json.loads(sys.argv[2])
files = [tempfile.TemporaryFile(mode="w+") for _ in cmds]
procs = [subprocess.Popen(c, stdout=f) for c, f in zip(cmds, files)]
by_pid = {p.pid: i for i, p in enumerate(procs)}
res = [None] * len(cmds)
while by_pid:
    pid, status, ru = os.wait4(-1, 0)
    if pid in by_pid:
        i = by_pid.pop(pid)
        procs[i].returncode = os.waitstatus_to_exitcode(status)
        files[i].seek(0)
        res[i] = {"rc": procs[i].returncode, "maxrss_kb": ru.ru_maxrss, "stdout": files[i].read()}
json.dump(res, open(sys.argv[1], "w"))
sys.exit(max(abs(r["rc"]) for r in res))
"""


def _simulate(outdir: Path, contigs: dict | None, seed: int, env: dict) -> dict:
    """Simulate once into ``outdir`` (dataset.json marks completion); time the generation."""
    stamp = outdir / "bench_simulate.json"
    if (outdir / "dataset.json").is_file() and stamp.is_file():
        return json.loads(stamp.read_text())
    code = ("import sys, json\nfrom dvtrain.config import SimulateConfig\nfrom dvtrain.simulate import simulate\n"
            "kw = json.loads(sys.argv[2])\n"
            "simulate(SimulateConfig(outdir=sys.argv[1], seed=kw['seed'], **({'contigs': kw['contigs']} if kw['contigs'] else {})))\n")
    print(f"simulating {outdir} ...", flush=True)
    outdir.parent.mkdir(parents=True, exist_ok=True)  # a new --workdir
    m = measure([sys.executable, "-c", code, str(outdir), json.dumps({"seed": seed, "contigs": contigs})], 1, env, cwd=outdir.parent)
    info = {"wall_s": round(m["best_wall_s"], 2), "cpu_s": round(m["best_cpu_s"], 2), "peak_rss_mb": round(m["peak_rss_mb"], 1),
            "contigs": contigs or "defaults", "seed": seed}
    stamp.write_text(json.dumps(info) + "\n")
    return info


def _parallel(cmds: list[list[str]], repeats: int, env: dict, cwd: Path) -> tuple[dict, list[dict]]:
    with tempfile.NamedTemporaryFile(suffix=".json", dir=cwd, delete=False) as tf:
        side = Path(tf.name)
    try:
        m = measure([sys.executable, "-c", _PARALLEL, str(side), json.dumps(cmds)], repeats, env, cwd=cwd)
        branches = json.loads(side.read_text())
    finally:
        side.unlink(missing_ok=True)
    return m, branches


def _row(name: str, mode: str, m: dict, branches: list[dict], region_bp: int, candidates: int, examples: int | None) -> dict:
    wall = m["best_wall_s"]
    return {
        "tool": name, "mode": mode, "wall_s": round(wall, 3), "cpu_s": round(m["best_cpu_s"], 3),
        "walls_s": [round(w, 3) for w in m["walls_s"]],
        "peak_rss_mb": round(sum(b["maxrss_kb"] for b in branches) / 1024, 1),
        "max_process_rss_mb": round(max(b["maxrss_kb"] for b in branches) / 1024, 1),
        "candidates": candidates, "examples": examples,
        "candidates_per_s": round(candidates / wall, 1),
        "mbp_per_s_per_core": round(region_bp / 1e6 / wall / CORES, 4),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def bench_case(dataset: str, data: dict, profile: str, chrom: str, length: int, out: Path, repeats: int,
               env: dict, me_env: dict, me_args: list[str] = ()) -> list[dict]:
    bam, ref = data["bams"][profile], data["ref"]
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    # bcftools on the two halves, in parallel
    mid = length // 2
    halves = [f"{chrom}:1-{mid}", f"{chrom}:{mid + 1}-{length}"]
    cmds = [["sh", "-c", f"bcftools mpileup -f {ref} -r {r} {bam} 2>/dev/null | bcftools call -mv 2>/dev/null "
                         f"| tee {out / f'bcftools.{i}.vcf'} | grep -vc '^#' || true"] for i, r in enumerate(halves)]
    load = os.getloadavg()[0]
    m, br = _parallel(cmds, repeats, env, out)
    calls = sum(int(b["stdout"].strip() or 0) for b in br)
    bcf = _row("bcftools", "call -mv", m, br, length, calls, None)
    bcf["load_avg_1m"] = round(load, 2)
    # make_examples, 2 shards in parallel
    for mode in ("calling", "training"):
        extra = ["--truth_variants", data["truth_vcf"], "--confident_regions", data["truth_bed"]] if mode == "training" else []
        cmds = [[sys.executable, "-m", "dvtrain.cli", "make-examples", "--mode", mode, "--ref", ref, "--reads", bam,
                 "--regions", f"{chrom}:1-{length}", "--examples", str(out / f"{mode}.tfrecord@2.gz"), "--task", str(t), *extra,
                 *me_args]
                for t in range(2)]
        load = os.getloadavg()[0]
        m, br = _parallel(cmds, repeats, me_env, out)
        res = [json.loads(b["stdout"]) for b in br]
        row = _row("make_examples", mode, m, br, length, sum(r["num_candidates"] for r in res),
                   sum(r["num_examples"] for r in res))
        row["load_avg_1m"] = round(load, 2)
        rows.append(row)
    rows.append(bcf)
    for r in rows:
        r.update(dataset=dataset, coverage=profile, region=f"{chrom}:1-{length}", region_bp=length,
                 ratio_vs_bcftools=round(r["wall_s"] / bcf["wall_s"], 3))
    return rows


def add_dataset_args(ap: argparse.ArgumentParser) -> None:
    """The simulated-dataset and result options shared with benchmarks/call.py."""
    ap.add_argument("--length", type=int, default=5_000_000, help="simulated contig length (bp)")
    ap.add_argument("--quick", action="store_true", help="1 Mb contig")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "dvtrain-bench-make-examples")
    ap.add_argument("--label", default="current", help="key under which results are stored in the JSON")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_dataset_args(ap)
    ap.add_argument("--pythonpath", type=Path, help="run make-examples from this copy of the dvtrain package")
    ap.add_argument("--no-demo", action="store_true", help="skip the embedded demo dataset")
    ap.add_argument("--me-args", default="", help="more make-examples options, e.g. '--preset deepvariant'")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    length = 1_000_000 if args.quick else args.length

    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    me_env = dict(env)
    if args.pythonpath:
        me_env["PYTHONPATH"] = str(args.pythonpath.resolve())
    load_start = os.getloadavg()

    datasets = []
    sim_dir = work / f"sim-chr1-{length}-s{args.seed}"
    sim_info = _simulate(sim_dir, {"chr1": length}, args.seed, env)
    datasets.append(("sim", sim_dir, "chr1", length, sim_info))
    if not args.no_demo:
        demo_dir = work / "demo-s42"
        demo_info = _simulate(demo_dir, None, 42, env)
        demo_len = json.loads((demo_dir / "dataset.json").read_text())["parameters"]["contigs"]["chr20"]
        datasets.append(("demo", demo_dir, "chr20", demo_len, demo_info))

    rows = []
    for name, d, chrom, clen, _ in datasets:
        files = json.loads((d / "dataset.json").read_text())["files"]
        data = {k: (str(d / v) if isinstance(v, str) else {p: str(d / f) for p, f in v.items()}) for k, v in files.items()}
        for profile in ("generic", "lowcov"):
            print(f"{name} {profile} {chrom}:1-{clen} ...", flush=True)
            rows += bench_case(name, data, profile, chrom, clen, work / "runs" / args.label / f"{name}-{profile}",
                               args.repeats, env, me_env, shlex.split(args.me_args))

    hdr = f"{'dataset':8} {'cov':8} {'tool':14} {'mode':9} {'wall s':>8} {'cpu s':>8} {'RSS MB':>8} {'cands':>7} {'cand/s':>8} {'Mbp/s/core':>10} {'ratio':>6} {'load':>5}"
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(f"{r['dataset']:8} {r['coverage']:8} {r['tool']:14} {r['mode']:9} {r['wall_s']:8.2f} {r['cpu_s']:8.2f} "
              f"{r['peak_rss_mb']:8.1f} {r['candidates']:7d} {r['candidates_per_s']:8.1f} {r['mbp_per_s_per_core']:10.4f} "
              f"{r['ratio_vs_bcftools']:6.2f} {r['load_avg_1m']:5.2f}")

    report = json.loads(args.out.read_text()) if args.out.is_file() else {}
    report.setdefault("runs", {})[args.label] = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "bcftools": subprocess.run(["bcftools", "--version"], capture_output=True, text=True).stdout.splitlines()[0]},
        "pythonpath": str(args.pythonpath) if args.pythonpath else None,
        "load_avg_start": [round(x, 2) for x in load_start], "load_avg_end": [round(x, 2) for x in os.getloadavg()],
        "shards": 2, "repeats": args.repeats, "make_examples_args": args.me_args,
        "simulate": {name: info for name, _, _, _, info in datasets},
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
