"""A real Prefect deployment for tests: ``prefect server start`` (SQLite, loopback, UI on),
``deployments/deploy.py`` against it, and one process worker per work pool.

Started once per pytest session (by the first test that asks for it) and shared by
tests/test_prefect_server.py and tests/test_ui.py; everything lives in one temporary
folder (PREFECT_HOME, the database, a tiny simulated dataset, the case-study workdir).
The scheduled-retraining deployment's default parameters point at the tiny dataset
(``deploy.py --config``) and submit training to ``gpu-pool``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import httpx
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKERS = {"cpu-worker": "cpu-pool", "gpu-worker": "gpu-pool"}
START_TIMEOUT = float(os.environ.get("DVTRAIN_TEST_SERVER_TIMEOUT", "240"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    root: Path
    port: int
    env: dict[str, str]
    dataset: dict = field(default_factory=dict)
    config_yaml: Optional[Path] = None
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return f"{self.url}/api"

    @property
    def workdir(self) -> Path:
        return self.root / "wd"

    def log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def log_tail(self, name: str, n: int = 4000) -> str:
        p = self.log(name)
        return f"--- {name} ---\n" + (p.read_text(errors="replace")[-n:] if p.exists() else "(no log)")

    def logs(self) -> str:
        return "\n".join(self.log_tail(n) for n in ["server", "deploy", *WORKERS])

    def client(self):
        from prefect.client.orchestration import SyncPrefectClient

        return SyncPrefectClient(self.api)

    def spawn(self, name: str, args: list[str], **env: str) -> subprocess.Popen:
        self.log(name).parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log(name), "ab")
        proc = subprocess.Popen(
            args, cwd=REPO, env={**self.env, **env}, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: flow-run subprocesses stop with it
        )
        self.procs[name] = proc
        return proc

    # ------------------------------------------------------------------ lifecycle
    def start_server(self) -> None:
        self.spawn("server", [sys.executable, "-m", "prefect", "server", "start",
                              "--host", "127.0.0.1", "--port", str(self.port)])

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.procs["server"].poll() is not None:
                raise RuntimeError(f"prefect server exited ({self.procs['server'].returncode})\n{self.log_tail('server')}")
            try:
                if httpx.get(f"{self.api}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"prefect server not healthy after {START_TIMEOUT:.0f}s\n{self.log_tail('server')}")

    def make_dataset(self) -> None:
        from dvtrain.config import SimulateConfig
        from dvtrain.simulate import simulate

        self.dataset = simulate(SimulateConfig(
            outdir=self.root / "data", seed=7, contigs={"chr1": 40_000, "chr21": 20_000, "chr20": 30_000},
        ))
        d = self.dataset
        config = {
            "name": "tiny", "reference": str(d["ref"]), "truth_vcf": str(d["truth_vcf"]), "truth_bed": str(d["truth_bed"]),
            "reads": [str(d["bams"]["lowcov"])], "baseline": {"reads": [str(d["bams"]["generic"])]},
            "workdir": str(self.workdir), "shards": 2, "max_concurrency": 2, "shuffle_shards": 2,
            "baseline_epochs": 1, "custom_epochs": 1, "sample_name": "SIM001", "seed": 7,
            "dataset_json": str(d["dataset_json"]), "training_work_pool": "gpu-pool",
            # 32-row low-coverage images: the on-demand call must draw the custom model's height
            "pileup_image_height": 32,
        }
        self.config_yaml = self.root / "case-study.yaml"
        self.config_yaml.write_text(yaml.safe_dump(config))

    def deploy(self) -> None:
        self.log("deploy").parent.mkdir(parents=True, exist_ok=True)
        run = subprocess.run(
            [sys.executable, "deployments/deploy.py", "--config", str(self.config_yaml), "--no-schedule"],
            cwd=REPO, env=self.env, capture_output=True, text=True, timeout=300,
        )
        self.log("deploy").write_text(run.stdout + run.stderr)
        if run.returncode != 0:
            raise RuntimeError(f"deploy.py failed ({run.returncode})\n{self.log_tail('deploy')}")

    def start_workers(self) -> None:
        for name, pool in WORKERS.items():
            self.spawn(name, [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool,
                              "--type", "process", "--name", name])

    def stop(self) -> None:
        for name in [*WORKERS, "server"]:
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            try:  # workers shut down on Ctrl-C (SIGINT), the server on SIGTERM
                os.killpg(proc.pid, signal.SIGTERM if name == "server" else signal.SIGINT)
                proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)


def start_live_server() -> LiveServer:
    root = Path(tempfile.mkdtemp(prefix="dvtrain-live-"))
    home = root / "home"
    home.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_UI_ENABLED": "true",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "2",  # each poll writes (last_polled): fewer SQLite lock collisions
        "PREFECT_WORKER_PREFETCH_SECONDS": "5",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    })
    live = LiveServer(root=root, port=port, env=env)
    try:
        live.start_server()
        live.make_dataset()  # while the server migrates its database
        live.wait_healthy()
        live.deploy()
        live.start_workers()
    except BaseException:
        live.stop()
        raise
    return live


_LIVE: Optional[LiveServer] = None
_FAILED: Optional[str] = None


def shared_live_server(config) -> LiveServer:
    """The session's LiveServer (started on first use; stopped and removed when pytest ends)."""
    global _LIVE, _FAILED
    if _FAILED is not None:
        raise RuntimeError(f"live Prefect server failed to start earlier in this session:\n{_FAILED}")
    if _LIVE is None:
        try:
            _LIVE = start_live_server()
        except BaseException as e:
            _FAILED = str(e)
            raise
        live = _LIVE

        def cleanup() -> None:
            global _LIVE
            live.stop()
            shutil.rmtree(live.root, ignore_errors=True)
            _LIVE = None

        config.add_cleanup(cleanup)
    return _LIVE


def wait_for_final(live: LiveServer, flow_run_id, timeout: float = 420):
    """Poll the API until the flow run is in a final state; returns the FlowRun."""
    deadline = time.monotonic() + timeout
    with live.client() as client:
        while True:
            run = client.read_flow_run(flow_run_id)
            if run.state is not None and run.state.is_final():
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"flow run {run.name} still {run.state.name if run.state else None} "
                                     f"after {timeout:.0f}s\n{live.logs()}")
            for name, proc in live.procs.items():
                if proc.poll() is not None:
                    raise AssertionError(f"{name} exited ({proc.returncode}) while waiting\n{live.logs()}")
            time.sleep(1)
