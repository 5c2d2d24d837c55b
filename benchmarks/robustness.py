"""Benchmark: how the pipeline takes bad inputs, crashes and repeated runs (issue 9).

    python benchmarks/robustness.py [--kills 20] [--seed 9] [--workdir /tmp/dvtrain-robustness]
                                    [--skip_bad_inputs] [--out benchmarks/results/robustness.json]

Three measurements, one table:

* **bad inputs**: the data-driven corpus ``tests/bad_inputs`` (each case through the real
  CLI: exit code, one-line message naming the file, no traceback, nothing left behind),
  run with pytest; tried = cases collected (a skip counts as not passed), passed = passed.
* **kills**: ``--kills`` trials of ``tests/faults/harness.py``: the case study (a small
  simulated genome, the real flow in a subprocess against one temporary Prefect server) is
  killed with SIGKILL at a seeded point, inside a stage (a drawn fraction of that stage's
  length in a clean run, after the previous stage's end) or while a temporary output file
  is being written; then re-run. Only kills that landed (the run had not finished) count.
  Survived = the re-run exits 0, every output is byte-identical to the clean run, no
  temporary file remains and no task that had completed before the kill ran again.
* **reproducibility**: two clean runs with the same seed, every final output compared
  (examples, shuffled records and pbtxt, model weights, VCFs without ``##fileDate``,
  evaluation tables, report): identical / compared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "faults"))
RESULTS = ROOT / "benchmarks" / "results" / "robustness.json"


def bad_inputs() -> dict:
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rfEs", "-p", "no:cacheprovider", "tests/bad_inputs"],
                          cwd=ROOT, capture_output=True, text=True)
    lines = proc.stdout.strip().splitlines()
    tail = lines[-1] if lines else proc.stderr[-500:]
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|skipped|errors?)", tail)}
    tried = sum(counts.values())
    return {"tried": tried, "passed": counts.get("passed", 0), "skipped": counts.get("skipped", 0),
            "seconds": round(time.monotonic() - t0, 1), "pytest": tail,
            "not_passed": [x for x in lines if x.startswith(("FAILED", "ERROR", "SKIPPED"))]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=9, help="draws the kill points")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "dvtrain-robustness")
    ap.add_argument("--skip_bad_inputs", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    import harness
    from prefect.settings import temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    result: dict = {"host": platform.node(), "cpus": os.cpu_count(), "kills_requested": args.kills, "seed": args.seed}
    if not args.skip_bad_inputs:
        result["bad_inputs"] = bad_inputs()
        print(f"bad inputs: {result['bad_inputs']['passed']}/{result['bad_inputs']['tried']} "
              f"({result['bad_inputs']['seconds']} s)", flush=True)

    home = args.workdir / "prefect-home"
    with temporary_settings(updates={"home": str(home / "server"), "server.analytics_enabled": False}), \
            prefect_test_harness(server_startup_timeout=180):
        env = harness.subprocess_env(home / "client")
        data = harness.make_dataset(args.workdir)
        config = harness.write_config(args.workdir, data)
        clean = []
        for name in ("clean-a", "clean-b"):
            run = harness.run_flow(config, args.workdir / name, env, log_path=args.workdir / f"{name}.log")
            if run.rc != 0:
                print(f"clean run {name} failed (rc {run.rc}); log: {args.workdir / name}.log", file=sys.stderr)
                return 1
            clean.append(run)
            print(f"{name}: {run.seconds:.1f} s", flush=True)
        ref, other = harness.digests(args.workdir / "clean-a"), harness.digests(args.workdir / "clean-b")
        differing = sorted(k for k in set(ref) | set(other) if ref.get(k) != other.get(k))
        result["reproducibility"] = {"compared": len(set(ref) | set(other)), "identical": len(set(ref) | set(other)) - len(differing),
                                     "differing": differing, "clean_run_s": [round(r.seconds, 1) for r in clean],
                                     "stage_ends_s": {k: round(v, 2) for k, v in clean[0].stage_times.items()}}
        print(f"reproducibility: {result['reproducibility']['identical']}/{result['reproducibility']['compared']} identical",
              flush=True)
        # the kill runs start from a clean cache: a fresh PREFECT_HOME per trial (same server)
        trials = []
        for i, (mode, target, value) in enumerate(harness.plan(args.kills, args.seed, clean[0])):
            t_env = harness.subprocess_env(home / f"trial-{i:02d}")
            t = harness.trial(i, mode, target, value, config, args.workdir, t_env, ref)
            trials.append(t)
            print(f"kill {i:2d} {mode:5s} {target:24s} {t.kill_reason:60.60s} survived={t.survived} "
                  f"(done before kill {t.completed_before_kill}, recomputed {len(t.recomputed)}, "
                  f"differing {len(t.differing)}, temp left {len(t.temp_left)}) {t.seconds:.0f} s", flush=True)
        result["faults"] = harness.summary(trials)

    rows = []
    if "bad_inputs" in result:
        rows.append(("bad inputs rejected cleanly", result["bad_inputs"]["passed"], result["bad_inputs"]["tried"]))
    f = result["faults"]
    rows.append(("kills survived (SIGKILL + re-run)", f["kills_survived"], f["kills_tried"]))
    rows.append(("outputs byte-identical after a kill", f["outputs_identical"], f["outputs_compared"]))
    r = result["reproducibility"]
    rows.append(("outputs identical, two clean runs", r["identical"], r["compared"]))
    print()
    print(f"| {'check':40s} | {'passed':>6s} | {'of':>4s} |")
    print(f"|{'-' * 42}|{'-' * 8}|{'-' * 6}|")
    for name, ok, total in rows:
        print(f"| {name:40s} | {ok:6d} | {total:4d} |")
    result["table"] = [{"check": n, "passed": ok, "of": total} for n, ok, total in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(f"\nwritten {args.out}")
    return 0 if all(ok == total for _, ok, total in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
