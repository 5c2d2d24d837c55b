"""Time a command in a fresh interpreter and read its children's peak RSS (shared by the benchmarks)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Optional

# run in a fresh interpreter: time one command, report its children's CPU time and peak RSS
_WRAPPER = r"""
import json, resource, subprocess, sys, time
t = time.perf_counter()
subprocess.run(sys.argv[1:], check=True)
wall = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "maxrss_kb": ru.ru_maxrss}))
"""


def measure(cmd: list[str], repeats: int, env: dict, cwd: Optional[Path] = None) -> dict:
    """Best wall time (and that run's CPU time) over ``repeats`` runs; peak RSS over all of them."""
    runs = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", _WRAPPER, *cmd], check=True, capture_output=True,
                             text=True, cwd=cwd, env=env)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    best = min(runs, key=lambda r: r["wall_s"])
    return {"best_wall_s": best["wall_s"], "walls_s": [r["wall_s"] for r in runs], "best_cpu_s": best["cpu_s"],
            "peak_rss_mb": max(r["maxrss_kb"] for r in runs) / 1024}
