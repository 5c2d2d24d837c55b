"""The make_examples fan-out as a small subflow, so its task runner is chosen per run.

A Prefect flow's task runner is fixed when the flow object is made, but where shards run
is a run-time choice (``CaseStudyConfig.task_runner``). So the case study hands its shard
configs to :func:`run_shards`, which runs :func:`make_examples_shards` with

* ``threads`` (default): a ``ThreadPoolTaskRunner`` of ``max_concurrency`` threads in
  the flow's process. Shards are CPU-bound Python, so threads share one core (GIL);
* ``dask``: prefect-dask's ``DaskTaskRunner`` on the cluster at ``dask_address``, or on a
  ``LocalCluster`` of ``dask_workers`` single-threaded worker *processes*, so shards use
  as many cores as there are workers. The local cluster is started by the first fan-out
  and shared by the later ones of the same process (starting one and importing dvtrain
  in its workers costs seconds to a minute on a busy machine); it stops when the process
  exits. Task runs, results and the cache live in the same Prefect API and result
  storage (workers get the flow's settings), so a shard cached by a thread run is a hit
  for a Dask run and vice versa.

Either way :func:`flows.concurrency.bounded_map` keeps at most ``max_concurrency`` shards
in flight, and every shard task run carries the tag :data:`SHARD_TAG`: a Prefect
concurrency limit on it (``prefect gcl create tag:dvtrain-shards --limit 8``) caps shards
across all runs on the server, e.g. to protect a shared filesystem.
"""

from __future__ import annotations

import atexit
import threading
from typing import Literal, Optional

from prefect import flow, tags
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from dvtrain.config import CaseStudyConfig, DeepVariantEngineConfig, MakeExamplesConfig
from tasks import make_examples_task
from tasks.artifacts import Progress

from .concurrency import bounded_map

#: tag of every make_examples shard task run (for server-side concurrency limits)
SHARD_TAG = "dvtrain-shards"


_CLUSTERS: dict[int, object] = {}
_CLUSTERS_LOCK = threading.Lock()


def local_cluster_address(workers: int) -> str:
    """Scheduler address of this process's LocalCluster of ``workers`` processes (started once)."""
    with _CLUSTERS_LOCK:
        cluster = _CLUSTERS.get(workers)
        if cluster is None or getattr(cluster, "status", None) is None or cluster.status.name != "running":
            from distributed import LocalCluster

            cluster = LocalCluster(n_workers=workers, processes=True, threads_per_worker=1,
                                   dashboard_address=None)  # no web server (port clashes between runs)
            _CLUSTERS[workers] = cluster
            atexit.register(cluster.close)
        return cluster.scheduler_address


def close_local_clusters() -> None:
    """Stop this process's local Dask clusters now (else at exit, when logging may be gone)."""
    with _CLUSTERS_LOCK:
        while _CLUSTERS:
            cluster = _CLUSTERS.popitem()[1]
            cluster.close()
            atexit.unregister(cluster.close)


def shard_task_runner(kind: Literal["threads", "dask"] = "threads", max_concurrency: int = 2,
                      dask_address: Optional[str] = None, dask_workers: int = 2) -> TaskRunner:
    """The task runner for one fan-out (a fresh one: a task runner is started once)."""
    if kind == "threads":
        return ThreadPoolTaskRunner(max_workers=max_concurrency)
    if kind != "dask":
        raise ValueError(f"task_runner must be 'threads' or 'dask', got {kind!r}")
    from prefect_dask import DaskTaskRunner

    # by address: Prefect duplicates a flow's task runner per run, and a duplicate keeps
    # the address but not a cluster object
    return DaskTaskRunner(address=dask_address or local_cluster_address(dask_workers))


@flow(name="make-examples-shards", flow_run_name="make-examples-{label}", log_prints=True)
def make_examples_shards(configs: list[MakeExamplesConfig], limit: int, label: str = "shards",
                         engine: Optional[DeepVariantEngineConfig] = None) -> list[dict]:
    """Run every shard config through :data:`tasks.make_examples_task`, ``limit`` at a time
    (in DeepVariant's container when ``engine`` is given)."""
    progress = Progress(f"make-examples-{label}-progress", len(configs), f"make_examples {label} shards")
    extra = {"engine": engine} if engine is not None else {}
    with tags(SHARD_TAG):
        return bounded_map(make_examples_task, configs, limit=limit, on_settled=progress.set, **extra)


def run_shards(config: CaseStudyConfig, configs: list[MakeExamplesConfig], label: str = "shards") -> list[dict]:
    """:func:`make_examples_shards` on the task runner ``config`` asks for; results in config order."""
    runner = shard_task_runner(config.task_runner, config.max_concurrency, config.dask_address, config.dask_workers)
    return make_examples_shards.with_options(task_runner=runner)(configs, config.max_concurrency, label,
                                                                 config.container_engine())
