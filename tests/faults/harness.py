"""Kill the case-study flow at seeded random points and check that a re-run repairs it.

Used by ``tests/faults/test_faults.py`` (a few kills, in CI) and ``benchmarks/robustness.py``
(20+ kills). One trial:

1. ``dvtrain run`` starts in a subprocess (its own session, against a shared Prefect server);
2. it is killed with SIGKILL (the whole process group: Beam workers too) either a drawn
   fraction into one stage (timed from the previous stage's end marker, scaled by that
   stage's length in a clean run), or the moment a temporary output
   (``.NAME.XXXXXXXX.part...``) or a given path appears, i.e. in the middle of a write;
3. the same command runs again, to completion;
4. checks: exit 0; every final output byte-identical to the clean run (``digests``); no
   temporary file left; no task that completed before the kill ran again (its persisted
   result record, named by its cache key, is not rewritten: ``cache_records``).

Nothing here mocks a stage: the flow, Prefect, Beam and Keras are the real ones.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import yaml

REPO = Path(__file__).resolve().parents[2]

#: stage -> the output whose appearance ends it (relative to the workdir), in flow order
STAGE_ENDS = [
    ("coverage", "coverage/confident.bed"),
    ("baseline-make-examples", "baseline/examples/tune.tfrecord-00001-of-00002.gz"),
    ("baseline-shuffle", "baseline/shuffled/tune.dataset_config.pbtxt"),
    ("baseline-train", "baseline/train/train_summary.json"),
    ("custom-make-examples", "custom/examples/tune.tfrecord-00001-of-00002.gz"),
    ("custom-shuffle", "custom/shuffled/tune.dataset_config.pbtxt"),
    ("custom-train", "custom/train/train_summary.json"),
    ("call", "custom/calls.vcf.gz"),
    ("evaluate-report", "report.md"),
]

#: a temporary name: ``.NAME.XXXXXXXX.part...`` (dvtrain.fileio: atomic_output, temp_dir, the shuffle's spill)
TEMP = re.compile(r"^\..+\.part")

#: files whose bytes carry a clock or a host detail by design, left out of the comparison
VOLATILE = re.compile(
    r"(events\.out\.tfevents|provenance\.json$|metrics\.jsonl$|train_summary\.json$|train_state|\.png$|"
    r"/state/|\.npz$)"
)


def make_dataset(root: Path, seed: int = 11) -> dict:
    from dvtrain.config import SimulateConfig
    from dvtrain.simulate import simulate

    return simulate(SimulateConfig(outdir=root / "data", seed=seed,
                                   contigs={"chr1": 20_000, "chr21": 10_000, "chr20": 15_000}))


def write_config(root: Path, data: dict, seed: int = 5, epochs: int = 2) -> Path:
    cfg = {
        "reference": str(data["ref"]), "truth_vcf": str(data["truth_vcf"]), "truth_bed": str(data["truth_bed"]),
        "reads": [str(data["bams"]["lowcov"])], "baseline": {"reads": [str(data["bams"]["generic"])]},
        "dataset_json": str(data["dataset_json"]), "shards": 2, "max_concurrency": 2, "shuffle_shards": 2,
        "baseline_epochs": epochs, "custom_epochs": epochs, "batch_size": 16, "seed": seed, "peers": [],
        "sample_name": "SIM001",
    }
    path = root / "case-study.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@dataclass
class Run:
    rc: Optional[int]
    seconds: float
    killed: bool = False
    kill_reason: str = ""
    stage_times: dict = field(default_factory=dict)  # stage -> seconds after start its output appeared
    log: str = ""


def _walk(wd: Path) -> list[Path]:
    out = []
    stack = [wd]
    while stack:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                for e in it:
                    if e.is_dir(follow_symlinks=False):
                        out.append(Path(e.path))
                        stack.append(Path(e.path))
                    else:
                        out.append(Path(e.path))
        except FileNotFoundError:
            pass
    return out


def temp_files(wd: Path) -> list[str]:
    return sorted(str(p.relative_to(wd)) for p in _walk(wd) if TEMP.match(p.name))


def run_flow(config: Path, workdir: Path, env: dict, kill_on_temp: Optional[int] = None,
             kill_on_glob: Optional[str] = None, kill_after: Optional[tuple[Optional[str], float]] = None,
             timeout: float = 900, log_path: Optional[Path] = None) -> Run:
    """``dvtrain run`` in a subprocess, its workdir polled every 4 ms.
    ``kill_after`` (path, seconds): SIGKILL that long after ``path`` (relative to the workdir;
    None: the start) appeared, i.e. that far into the stage the path ends;
    ``kill_on_temp``: SIGKILL when the n-th distinct temporary output (1-based) is seen;
    ``kill_on_glob``: SIGKILL when a path matching this glob (relative to the workdir) exists."""
    log_path = log_path or workdir.with_suffix(".log")
    cmd = [sys.executable, "-m", "dvtrain.cli", "run", "--config", str(config), "--workdir", str(workdir)]
    t0 = time.monotonic()
    seen: set[str] = set()
    stage_times: dict[str, float] = {}
    marker_seen_at: Optional[float] = None
    killed, reason = False, ""
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        while proc.poll() is None:
            now = time.monotonic() - t0
            for stage, rel in STAGE_ENDS:
                if stage not in stage_times and (workdir / rel).exists():
                    stage_times[stage] = now
            if kill_after is not None:
                marker, delay = kill_after
                if marker_seen_at is None and (marker is None or (workdir / marker).exists()):
                    marker_seen_at = now
                if marker_seen_at is not None and now >= marker_seen_at + delay:
                    reason = f"{delay:.2f} s after {marker or 'the start'} ({now:.2f} s)"
            if kill_on_glob is not None:
                hit = next(iter(workdir.glob(kill_on_glob)), None)
                if hit is not None:
                    reason = f"on {hit.relative_to(workdir)} ({now:.2f} s)"
            if kill_on_temp is not None:
                for name in temp_files(workdir):
                    if name not in seen:
                        seen.add(name)
                        if len(seen) == kill_on_temp:
                            reason = f"while writing {name} ({now:.2f} s)"
                            break
            if reason:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                killed = True
                break
            if now > timeout:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise TimeoutError(f"{cmd} ran past {timeout} s (log {log_path})")
            time.sleep(0.004)
        try:  # a Beam worker or peer left in the group: gone with its parent
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return Run(rc=None if killed else proc.returncode, seconds=time.monotonic() - t0, killed=killed, kill_reason=reason, stage_times=stage_times,
               log=log_path.read_text(errors="replace"))


# ------------------------------------------------------------------ what "the same outputs" means
def _weights_digest(keras_zip: Path) -> str:
    """The model's weights (every HDF5 dataset in the .keras archive) and its config, not the
    archive: metadata.json records the save time, and config.json numbers shared objects by
    their Python id() (renumbered here in order of appearance)."""
    import h5py

    h = hashlib.sha256()
    with zipfile.ZipFile(keras_zip) as z, h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                h.update(name.encode())
                h.update(obj[()].tobytes() if obj.shape != () else repr(obj[()]).encode())
        f.visititems(visit)
        config = z.read("config.json").decode()
        ids: dict[str, str] = {}
        config = re.sub(r'"shared_object_id": (\d+)', lambda m: f'"shared_object_id": {ids.setdefault(m[1], str(len(ids)))}',
                        config)
        h.update(config.encode())
    return h.hexdigest()


def _text_digest(data: bytes, workdir: Path) -> str:
    text = data.replace(str(workdir).encode(), b"<WORKDIR>")
    text = b"".join(line for line in text.splitlines(keepends=True) if not line.startswith(b"##fileDate"))
    return hashlib.sha256(text).hexdigest()


def digests(workdir: Path) -> dict[str, str]:
    """relative path -> digest of every final output: raw bytes for binary outputs; VCFs
    decompressed without ``##fileDate``; text with the workdir's path replaced; .keras by
    weights. Volatile files (event logs, plots, provenance, resume state) are left out."""
    out = {}
    for p in sorted(_walk(workdir)):
        rel = str(p.relative_to(workdir))
        if p.is_dir() or TEMP.match(p.name) or VOLATILE.search("/" + rel):
            continue
        if p.name.endswith(".keras"):
            out[rel] = _weights_digest(p)
        elif p.name.endswith(".vcf.gz"):
            out[rel] = _text_digest(gzip.decompress(p.read_bytes()), workdir)
        elif p.suffix in (".tbi", ".csi"):
            continue  # an index of a compressed file whose header carries the date
        elif p.suffix in (".md", ".csv", ".json", ".pbtxt", ".bed", ".txt", ".tsv", ".yaml"):
            out[rel] = _text_digest(p.read_bytes(), workdir)
        else:
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


# ------------------------------------------------------------------ recomputation, from the result store
def cache_records(env: dict) -> dict[str, int]:
    """Prefect's persisted task results under the child's PREFECT_HOME, by file name (a
    cached task's record is named by its cache key) -> mtime. A completed task's record is
    written when it finishes; a cache hit reads it and leaves it alone; a task that runs
    again rewrites it."""
    store = Path(env["PREFECT_HOME"]) / "storage"
    return {p.name: p.stat().st_mtime_ns for p in store.iterdir() if p.is_file()} if store.is_dir() else {}


@dataclass
class Trial:
    index: int
    mode: str  # "stage" or "write"
    target: str
    kill_reason: str
    killed: bool
    rerun_rc: Optional[int]
    completed_before_kill: int
    recomputed: list[str]
    identical: bool
    differing: list[str]
    temp_left: list[str]
    seconds: float

    @property
    def survived(self) -> bool:
        return self.rerun_rc == 0 and self.identical and not self.temp_left and not self.recomputed

    def as_dict(self) -> dict:
        return {**asdict(self), "survived": self.survived}


def plan(n: int, seed: int, clean: Run) -> list[tuple[str, str, object]]:
    """``n`` kills: (mode, target, value). Stage kills cycle through the stages in a seeded
    order, each a uniform fraction into that stage: ``value`` = (the previous stage's end
    marker, a delay drawn within the stage's duration in the clean run), so the kill lands
    inside the stage however fast the machine runs. Write kills cut the k-th temporary
    file of the run (k seeded, up to the temporaries a clean run makes)."""
    rng = random.Random(seed)
    windows, prev, prev_marker = [], 0.0, None
    for stage, marker in STAGE_ENDS:
        end = clean.stage_times.get(stage)
        if end is not None and end > prev:
            windows.append((stage, prev_marker, end - prev))
            prev, prev_marker = end, marker
    stages = list(windows)
    rng.shuffle(stages)
    out: list[tuple[str, str, object]] = []
    for i in range(n):
        if i % 3 == 2:  # every third kill: in the middle of a file write
            k = rng.randint(1, 60)
            out.append(("write", f"temp file #{k}", k))
        else:
            stage, marker, length = stages[(i - i // 3) % len(stages)]
            out.append(("stage", stage, (marker, rng.uniform(0.05, 0.9) * length)))
    return out


def trial(index: int, mode: str, target: str, value, config: Path, root: Path, env: dict,
          reference: dict[str, str]) -> Trial:
    """One kill + re-run. ``mode``: "stage" (``value`` seconds), "write" (the ``value``-th
    temporary file) or "path" (``value`` a glob: kill when it matches)."""
    wd = root / f"trial-{index:02d}"
    kw = {"stage": {"kill_after": value}, "write": {"kill_on_temp": value}, "path": {"kill_on_glob": value}}[mode]
    first = run_flow(config, wd, env, log_path=root / f"trial-{index:02d}.kill.log", **kw)
    done = cache_records(env)
    second = run_flow(config, wd, env, log_path=root / f"trial-{index:02d}.rerun.log")
    after = cache_records(env)
    recomputed = sorted(k for k, mtime in done.items() if after.get(k) != mtime)
    got = digests(wd) if second.rc == 0 else {}
    differing = sorted(k for k in set(reference) | set(got) if reference.get(k) != got.get(k))
    return Trial(index=index, mode=mode, target=target, kill_reason=first.kill_reason or "finished before the kill",
                 killed=first.killed, rerun_rc=second.rc, completed_before_kill=len(done), recomputed=recomputed,
                 identical=not differing, differing=differing[:10], temp_left=temp_files(wd),
                 seconds=first.seconds + second.seconds)


def subprocess_env(prefect_home: Path) -> dict:
    """The child's environment: this process's Prefect API (the shared server) and a
    PREFECT_HOME whose result store survives the kill (the cache lives there)."""
    from prefect.settings import PREFECT_API_URL

    env = dict(os.environ, PREFECT_API_URL=str(PREFECT_API_URL.value()), PREFECT_HOME=str(prefect_home),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    env.pop("PREFECT_LOCAL_STORAGE_PATH", None)
    return env


def summary(trials: list[Trial]) -> dict:
    """Kills that landed (the run had not finished yet) and how many of those the re-run repaired."""
    landed = [t for t in trials if t.killed]
    return {
        "kills_planned": len(trials), "kills_tried": len(landed),
        "kills_survived": sum(t.survived for t in landed),
        "outputs_identical": sum(t.identical for t in landed), "outputs_compared": len(landed),
        "trials": [t.as_dict() for t in trials],
    }


if __name__ == "__main__":  # python tests/faults/harness.py ROOT: one clean run, digests printed
    root = Path(sys.argv[1])
    root.mkdir(parents=True, exist_ok=True)
    data = make_dataset(root)
    cfg = write_config(root, data)
    r = run_flow(cfg, root / "clean", dict(os.environ))
    print(r.rc, f"{r.seconds:.1f}s", json.dumps(r.stage_times))
    print(json.dumps(digests(root / "clean"), indent=1))
