"""Benchmark: ``dvtrain shuffle`` against DeepVariant's Beam shuffle, on synthetic examples.

    python benchmarks/shuffle.py [--examples 2000000] [--inputs 8] [--num_shards 8] [--workers 2]
                                 [--memory_mb 128] [--workdir /tmp/dvtrain-shuffle-bench] [--quick]
                                 [--skip_dv] [--keep] [--timeout 3600] [--dv_max_rss_gb 16]
                                 [--out benchmarks/results/shuffle.json]

Data: ``--examples`` labelled tf.Examples in DeepVariant's feature spec (image/encoded,
image/shape, label, locus, variant/encoded, alt_allele_indices/encoded, variant_type),
seeded, labels 0/1/2 at about 80/12/8 %, written by two processes into ``--inputs`` gzip
TFRecord files ``WORKDIR/input/examples.tfrecord-0000i-of-0000K.gz``, each with its
``.example_info.json``. Images are [10, 21, 7] uint8: the first 5 rows random, the rest zeros
(about 0.8 kB per example compressed). A manifest in the input folder lets a later run with
the same examples, inputs, shape and seed reuse them.

Each side runs in its own subprocess, on Beam's FnApiRunner with ``--workers`` worker
processes (``--direct_running_mode=multi_processing``), into ``--num_shards`` shards:

* ``dvtrain``: ``dvtrain shuffle --memory_mb M`` (its budget of examples held per worker);
* ``deepvariant``: benchmarks/dv_shuffle.py, DeepVariant's ``shuffle_tfrecords_beam.py``
  re-created (sha1 key, GroupByKey, WriteToTFRecord).

The process tree's RSS (the sum over the process and all its descendants, which counts
pages shared between them more than once) is sampled every 0.1 s; a side is killed past
``--timeout`` seconds, and the DeepVariant side also past ``--dv_max_rss_gb``. CPU time is
that of the waited-for descendants (getrusage). Both outputs must hold every example, and
their dataset_config.pbtxt class counts must match the generated labels (else the exit
status is 1). ``ascending`` is the fraction of neighbouring output records whose input
position increases: about 0.5 when shuffled, 1.0 in input order. Outputs are deleted
afterwards unless ``--keep`` (the inputs are kept). Results go to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "shuffle.json"
DV_SCRIPT = ROOT / "benchmarks" / "dv_shuffle.py"
SHAPE = (10, 21, 7)
RANDOM_ROWS = 5  # image rows of random bytes; the other rows are zeros
CHANNELS = [1, 2, 3, 4, 5, 6, 19]
LABEL_P = (0.80, 0.12, 0.08)
CHUNK = 10_000  # examples whose random pixels are drawn at once


def _write_input(path: Path, file_index: int, first: int, count: int, seed: int) -> list[int]:
    """Write examples ``first .. first+count-1`` into ``path`` (+ its example_info.json); their class counts."""
    import numpy as np

    from dvtrain.example_proto import encode_alt_allele_indices, encode_example, encode_variant
    from dvtrain.fileio import TFRecordWriter

    rng = np.random.default_rng([seed, file_index])
    labels = rng.choice(3, size=count, p=LABEL_P)
    zeros = bytes((SHAPE[0] - RANDOM_ROWS) * SHAPE[1] * SHAPE[2])
    alt = encode_alt_allele_indices([0])
    with TFRecordWriter(path) as w:
        for start in range(0, count, CHUNK):
            pixels = rng.integers(0, 256, (min(CHUNK, count - start), RANDOM_ROWS * SHAPE[1] * SHAPE[2]), np.uint8)
            refs = rng.integers(0, 4, len(pixels))
            alts = (refs + rng.integers(1, 4, len(pixels))) % 4  # a base other than the reference
            for j, row in enumerate(pixels):
                pos = 1000 + 10 * (first + start + j)
                w.write(encode_example({
                    "image/encoded": row.tobytes() + zeros, "image/shape": list(SHAPE),
                    "label": [int(labels[start + j])], "locus": f"chr1:{pos + 1}-{pos + 2}".encode(),
                    "variant/encoded": encode_variant("chr1", pos, "ACGT"[refs[j]], ["ACGT"[alts[j]]]),
                    "alt_allele_indices/encoded": alt, "variant_type": [1],
                }))
    Path(f"{path}.example_info.json").write_text(
        json.dumps({"version": "synthetic", "shape": list(SHAPE), "channels": CHANNELS}) + "\n")
    return np.bincount(labels, minlength=3).tolist()


def generate(work: Path, n: int, k: int, seed: int) -> dict:
    """The input files and their manifest (class counts, sizes), generated unless the manifest already matches."""
    folder = work / "input"
    manifest_path = folder / "manifest.json"
    params = {"examples": n, "inputs": k, "shape": list(SHAPE), "seed": seed}
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if {key: manifest.get(key) for key in params} == params and all(Path(f).is_file() for f in manifest["files"]):
            print(f"reusing {n:,} examples in {folder}", flush=True)
            return manifest
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    paths = [folder / f"examples.tfrecord-{i:05d}-of-{k:05d}.gz" for i in range(k)]
    sizes = [n // k + (i < n % k) for i in range(k)]
    firsts = [sum(sizes[:i]) for i in range(k)]
    print(f"generating {n:,} examples into {k} files in {folder} ...", flush=True)
    t = time.perf_counter()
    with multiprocessing.Pool(2) as pool:
        counts = pool.starmap(_write_input, [(paths[i], i, firsts[i], sizes[i], seed) for i in range(k)], chunksize=1)
    total_bytes = sum(p.stat().st_size for p in paths)
    manifest = {**params, "files": [str(p) for p in paths],
                "pattern": str(folder / f"examples.tfrecord-?????-of-{k:05d}.gz"),
                "class_counts": [sum(c[j] for c in counts) for j in range(3)], "bytes": total_bytes,
                "bytes_per_example": round(total_bytes / n, 1), "generate_s": round(time.perf_counter() - t, 1)}
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _tree(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _tree_rss(root: psutil.Process) -> int:
    total = 0
    for p in _tree(root):
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass  # exited between listing and reading
    return total


def measure(cmd: list[str], log: Path, timeout_s: float, max_rss_mb: float | None) -> dict:
    """Run ``cmd`` (output to ``log``), sampling its process tree's RSS every 0.1 s; kill it past the caps.

    A run that completes gets ``wall_s`` and ``cpu_s``; one killed or failed gets ``killed`` or ``failed``.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    t = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
    root = psutil.Process(proc.pid)
    peak, killed = 0, None
    while proc.poll() is None:
        rss = _tree_rss(root)
        peak = max(peak, rss)
        if max_rss_mb is not None and rss > max_rss_mb * 2**20:
            killed = f"rss > {max_rss_mb / 1024:g} GiB"
        elif time.perf_counter() - t > timeout_s:
            killed = f"wall > {timeout_s:g} s"
        if killed:
            for p in _tree(root):
                try:
                    p.kill()
                except psutil.NoSuchProcess:
                    pass
            proc.wait()
            break
        time.sleep(0.1)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = {"peak_rss_mb": round(peak / 2**20, 1), "load_avg_1m_before": round(load, 2)}
    if killed:
        return {**result, "killed": killed, "stopped_after_s": round(wall, 1)}
    if proc.returncode:
        print("\n".join(log.read_text().splitlines()[-15:]), file=sys.stderr)
        return {**result, "failed": f"exit {proc.returncode}, see {log}", "stopped_after_s": round(wall, 1)}
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {**result, "wall_s": round(wall, 2), "cpu_s": round(cpu, 1)}


def check_output(out: Path, pbtxt: Path, data: dict) -> dict:
    """Count the records of the output shards; compare them and the pbtxt's class counts with the generated data
    (``problems`` lists the differences).

    ``ascending_pairs``: the fraction of neighbouring records in a shard whose input position
    (from the locus) increases: about 0.5 for a shuffled order, 1.0 for the input order.
    """
    from dvtrain.example_proto import decode_example
    from dvtrain.fileio import read_tfrecords
    from dvtrain.shuffle import read_dataset_config

    shards = sorted(out.glob("train-*-of-*.tfrecord.gz"))
    records = pairs = ascending = 0
    for path in shards:
        previous = None
        for rec in read_tfrecords(path):
            position = int(decode_example(rec, keys={"locus"})["locus"][0].split(b":")[1].split(b"-")[0])
            records += 1
            if previous is not None:
                pairs += 1
                ascending += position > previous
            previous = position
    config = read_dataset_config(pbtxt)
    problems = [f"{what}: {got} != {want}" for what, got, want in (
        ("records", records, data["examples"]), ("num_examples", config["num_examples"], data["examples"]),
        ("class counts", config["class_counts"], data["class_counts"])) if got != want]
    return {"problems": problems, "records": records, "shards": len(shards), "class_counts": config["class_counts"],
            "ascending_pairs": round(ascending / max(1, pairs), 3),
            "output_bytes": sum(p.stat().st_size for p in shards)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=2_000_000)
    ap.add_argument("--quick", action="store_true", help="100,000 examples")
    ap.add_argument("--inputs", type=int, default=8, help="input files")
    ap.add_argument("--num_shards", type=int, default=8, help="output shards")
    ap.add_argument("--workers", type=int, default=2, help="Beam worker processes (--direct_num_workers)")
    ap.add_argument("--memory_mb", type=int, default=128, help="dvtrain shuffle --memory_mb (MiB per worker)")
    ap.add_argument("--seed", type=int, default=42, help="synthetic data seed")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/dvtrain-shuffle-bench"))
    ap.add_argument("--timeout", type=float, default=3600, help="wall-time cap of each side, seconds")
    ap.add_argument("--dv_max_rss_gb", type=float, default=16, help="kill the DeepVariant side past this tree RSS")
    ap.add_argument("--skip_dv", action="store_true", help="run only dvtrain shuffle")
    ap.add_argument("--keep", action="store_true", help="keep the shuffled outputs")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    n = 100_000 if args.quick else args.examples
    work = args.workdir.resolve()

    data = generate(work, n, args.inputs, args.seed)
    print(f"input: {data['bytes'] / 2**20:,.1f} MiB in {args.inputs} files, "
          f"{data['bytes_per_example']} bytes/example, classes {data['class_counts']}", flush=True)

    beam_flags = [f"--direct_num_workers={args.workers}", "--direct_running_mode=multi_processing"]
    cli = [sys.executable, "-m", "dvtrain.cli", "shuffle"]
    memory = ["--memory_mb", str(args.memory_mb), "--no-progress"]
    sides = {"dvtrain": ([*cli, "--input_pattern_list", data["pattern"], "--num_shards", str(args.num_shards),
                          "--seed", "42", "--runner", "FnApiRunner", *memory, *beam_flags], None)}
    if not args.skip_dv:
        sides["deepvariant"] = ([sys.executable, str(DV_SCRIPT), "--input_pattern_list", data["pattern"],
                                 "--num_shards", str(args.num_shards), "--direct_num_workers", str(args.workers),
                                 "--direct_running_mode", "multi_processing"], args.dv_max_rss_gb * 1024)
    rows = []
    for side, (cmd, max_rss_mb) in sides.items():
        out = work / side
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        cmd = [*cmd, "--output_pattern_prefix", str(out / "train"), "--output_dataset_name", "train",
               "--output_dataset_config_pbtxt", str(out / "train.pbtxt")]
        print(f"{side}: {' '.join(cmd)}", flush=True)
        row = {"side": side, "examples": n, **measure(cmd, work / f"{side}.log", args.timeout, max_rss_mb)}
        if "wall_s" in row:
            row["examples_per_s"] = round(n / row["wall_s"], 1)
            row.update(check_output(out, out / "train.pbtxt", data))
        if not args.keep:
            shutil.rmtree(out)
        rows.append(row)
        print(json.dumps(row), flush=True)

    ours, dv = rows[0], rows[1] if len(rows) > 1 else {}
    both = "wall_s" in ours and "wall_s" in dv  # both completed
    ratios = {key: round(ours[key] / dv[key], 3) for key in ("wall_s", "peak_rss_mb")} if both else {}
    hdr = (f"{'side':12} {'examples':>10} {'wall s':>9} {'ex/s':>9} {'peak RSS MiB':>13} {'CPU s':>8} "
           f"{'ascending':>9}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        if "wall_s" in r:
            print(f"{r['side']:12} {r['examples']:10,} {r['wall_s']:9.1f} {r['examples_per_s']:9,.0f} "
                  f"{r['peak_rss_mb']:13,.0f} {r['cpu_s']:8.1f} {r['ascending_pairs']:9.3f}")
        else:
            print(f"{r['side']:12} {r['examples']:10,} {r.get('killed') or r['failed']} after "
                  f"{r['stopped_after_s']} s (peak RSS {r['peak_rss_mb']:,.0f} MiB)")
    if ratios:
        print(f"dvtrain / deepvariant: wall {ratios['wall_s']}x, peak RSS {ratios['peak_rss_mb']}x")
    problems = [f"{r['side']}: {p}" for r in rows for p in r.get("problems", [])]
    for p in problems:
        print(f"OUTPUT MISMATCH {p}", file=sys.stderr)

    import apache_beam

    report = {
        "benchmark": "global shuffle: dvtrain shuffle vs DeepVariant's Beam shuffle (re-created), FnApiRunner",
        "machine": {"cpus": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
                    "platform": platform.platform(), "python": platform.python_version(),
                    "apache_beam": apache_beam.__version__},
        "params": {"num_shards": args.num_shards, "workers": args.workers, "runner": "FnApiRunner",
                   "running_mode": "multi_processing", "memory_mb": args.memory_mb,
                   "timeout_s": args.timeout, "dv_max_rss_gb": args.dv_max_rss_gb},
        "data": {key: data[key] for key in ("examples", "inputs", "shape", "seed", "class_counts", "bytes",
                                            "bytes_per_example", "generate_s")},
        "rows": rows, "ratio_dvtrain_over_deepvariant": ratios,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
