"""Benchmark: make_examples shards on threads vs a Dask cluster of worker processes.

    python benchmarks/bench_shards.py [--length 200000] [--shards 4] [--workers 2]

Simulates one training contig (seeded), then runs the same ``--shards`` make_examples
shards (training mode) through :func:`flows.shards.make_examples_shards` three ways, each
writing to its own folder so that nothing is served from the cache:

* ``threads``: ThreadPoolTaskRunner, ``--shards`` threads in this process (one core: the
  shards are GIL-bound Python);
* ``dask-cold``: ``task_runner=dask`` as the case study runs it: the process's LocalCluster
  of ``--workers`` single-threaded processes is started by this first fan-out (cluster
  start and worker imports included);
* ``dask-warm``: the next fan-out, on the same (now warm) cluster.

Outputs are checked to be byte-identical. Prefect runs in ephemeral mode (no server set
up). Writes benchmarks/results/shards.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "240")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--length", type=int, default=200_000, help="training contig length (bp)")
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2, help="Dask worker processes")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "shards.json")
    args = ap.parse_args()

    from dvtrain.config import MakeExamplesConfig, SimulateConfig
    from dvtrain.simulate import simulate
    from flows.shards import make_examples_shards, shard_task_runner

    tmp = Path(tempfile.mkdtemp(prefix="bench-shards-"))
    data = simulate(SimulateConfig(outdir=tmp / "data", seed=3,
                                   contigs={"chr1": args.length, "chr21": 10_000, "chr20": 10_000}))

    def configs(name: str) -> list[MakeExamplesConfig]:
        return [MakeExamplesConfig(
            mode="training", ref=data["ref"], reads=[data["bams"]["lowcov"]], task=i, regions=["chr1"], seed=3,
            examples=str(tmp / name / f"train.tfrecord@{args.shards}.gz"),
            truth_variants=data["truth_vcf"], confident_regions=data["truth_bed"],
        ) for i in range(args.shards)]

    def timed(name: str, runner) -> dict:
        t0 = time.monotonic()
        out = make_examples_shards.with_options(task_runner=runner)(configs(name), args.shards, name)
        return {"seconds": round(time.monotonic() - t0, 2), "examples": sum(r["num_examples"] for r in out),
                "digests": [hashlib.sha256(Path(r["path"]).read_bytes()).hexdigest() for r in out]}

    make_examples_shards.with_options(task_runner=shard_task_runner("threads", 1))(configs("warmup")[:1], 1, "warmup")
    results = {"threads": timed("threads", shard_task_runner("threads", args.shards)),
               "dask-cold": timed("dask-cold", shard_task_runner("dask", dask_workers=args.workers)),
               "dask-warm": timed("dask-warm", shard_task_runner("dask", dask_workers=args.workers))}
    assert len({json.dumps(r["digests"]) for r in results.values()}) == 1, "outputs differ between runners"
    report = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "length": args.length, "shards": args.shards, "dask_workers": args.workers,
        "examples": results["threads"]["examples"],
        "seconds": {k: v["seconds"] for k, v in results.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
