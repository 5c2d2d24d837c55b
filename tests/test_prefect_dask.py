"""make_examples shards on a Dask cluster (prefect-dask) give the same bytes as threads.

A real LocalCluster of worker processes; the shards are CPU-bound Python, so processes
(not threads) are what lets them use more than one core.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from dvtrain.config import BaselineConfig, CaseStudyConfig, MakeExamplesConfig
from flows.shards import SHARD_TAG, run_shards, shard_task_runner

pytestmark = pytest.mark.slow  # starts a Dask cluster and a Prefect server (about 40 s)

SHARDS = 4


@pytest.fixture(scope="module")
def dataset(sim_dataset) -> dict:
    return sim_dataset


def case_study(dataset: dict, workdir: Path, **kw) -> CaseStudyConfig:
    return CaseStudyConfig(
        reference=dataset["ref"], truth_vcf=dataset["truth_vcf"], truth_bed=dataset["truth_bed"],
        reads=[dataset["bams"]["lowcov"]], baseline=BaselineConfig(reads=[dataset["bams"]["generic"]]),
        workdir=workdir, shards=SHARDS, max_concurrency=SHARDS, seed=7, **kw)


def shard_configs(dataset: dict, out: Path) -> list[MakeExamplesConfig]:
    return [
        MakeExamplesConfig(
            mode="training", ref=dataset["ref"], reads=[dataset["bams"]["lowcov"]], task=i,
            examples=str(out / f"train.tfrecord@{SHARDS}.gz"), regions=["chr1"], seed=7,
            truth_variants=dataset["truth_vcf"], confident_regions=dataset["truth_bed"],
        )
        for i in range(SHARDS)
    ]


def digests(results: list[dict]) -> list[str]:
    return [hashlib.sha256(Path(r["path"]).read_bytes()).hexdigest() for r in results]


def test_task_runner_choice(monkeypatch):
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    import flows.shards

    threads = shard_task_runner("threads", max_concurrency=3)
    assert isinstance(threads, ThreadPoolTaskRunner) and threads._max_workers == 3
    started = []
    monkeypatch.setattr(flows.shards, "local_cluster_address", lambda n: started.append(n) or "tcp://127.0.0.1:1")
    local = shard_task_runner("dask", dask_workers=3)
    assert isinstance(local, DaskTaskRunner) and local.address == "tcp://127.0.0.1:1" and started == [3]
    assert local.duplicate().address == local.address  # what each flow run actually uses
    remote = shard_task_runner("dask", dask_address="tcp://scheduler:8786")
    assert remote.address == "tcp://scheduler:8786" and not remote.cluster_kwargs and started == [3]
    with pytest.raises(ValueError):
        shard_task_runner("processes")


def test_case_study_config_fields(dataset, tmp_path):
    cfg = case_study(dataset, tmp_path)
    assert (cfg.task_runner, cfg.dask_address, cfg.dask_workers) == ("threads", None, 2)
    assert case_study(dataset, tmp_path, task_runner="dask", dask_workers=4).dask_workers == 4
    with pytest.raises(ValueError):
        case_study(dataset, tmp_path, task_runner="processes")
    schema = CaseStudyConfig.model_json_schema()["properties"]
    assert all(schema[f].get("title") and schema[f].get("description") for f in ("task_runner", "dask_address", "dask_workers"))


def test_dask_workers_run_the_shards_with_identical_output(prefect_server, dataset, tmp_path):
    from distributed import Client, LocalCluster, get_task_stream
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName, TaskRunFilter, TaskRunFilterTags

    t0 = time.monotonic()
    threads = run_shards(case_study(dataset, tmp_path / "t"), shard_configs(dataset, tmp_path / "threads"), "threads")
    t_threads = time.monotonic() - t0

    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        worker_pids = client.run(os.getpid)  # {worker address: pid}
        t0 = time.monotonic()
        with get_task_stream(client) as stream:
            dask = run_shards(case_study(dataset, tmp_path / "d", task_runner="dask", dask_address=cluster.scheduler_address),
                              shard_configs(dataset, tmp_path / "dask"), "dask")
        t_dask = time.monotonic() - t0

    # the shards ran in the worker processes, spread over both of them
    used = {worker_pids[t["worker"]] for t in stream.data}
    assert len(stream.data) == SHARDS and len(used) == 2 and os.getpid() not in used
    # same examples, byte for byte, and the same summaries
    assert [r["num_examples"] for r in dask] == [r["num_examples"] for r in threads] and sum(r["num_examples"] for r in dask) > 0
    assert digests(dask) == digests(threads)
    assert [Path(r["path"]).name for r in dask] == [f"train.tfrecord-{i:05d}-of-{SHARDS:05d}.gz" for i in range(SHARDS)]
    # both fan-outs are subflow runs whose shard task runs carry the shard tag
    with get_client(sync_client=True) as c:
        runs = c.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=["make-examples-threads", "make-examples-dask"])))
        assert sorted(r.name for r in runs) == ["make-examples-dask", "make-examples-threads"]
        tagged = c.read_task_runs(task_run_filter=TaskRunFilter(tags=TaskRunFilterTags(all_=[SHARD_TAG])),
                                  flow_run_filter=FlowRunFilter(id={"any_": [r.id for r in runs]}))
    assert len(tagged) == 2 * SHARDS and all(t.state_name == "Completed" for t in tagged)
    print(f"{SHARDS} shards: threads {t_threads:.1f} s, dask on a new 2-process cluster (worker imports included) {t_dask:.1f} s")


def test_local_cluster_is_started_once_per_process(prefect_server, dataset, tmp_path):
    """task_runner=dask with no address: a LocalCluster of dask_workers processes, shared by
    every fan-out of the process (as the case study's three fan-outs share it)."""
    from flows.shards import close_local_clusters, local_cluster_address

    config = case_study(dataset, tmp_path, task_runner="dask", dask_workers=2)
    seconds = []
    try:
        for name in ("first", "second"):
            t0 = time.monotonic()
            out = run_shards(config, shard_configs(dataset, tmp_path / name), f"local-{name}")
            seconds.append(time.monotonic() - t0)
            assert all(Path(r["path"]).exists() for r in out)
        assert local_cluster_address(2) == local_cluster_address(2)
    finally:
        close_local_clusters()  # while pytest still captures its logging
    print(f"{SHARDS} shards on the process's 2-worker LocalCluster: first fan-out (cluster start) "
          f"{seconds[0]:.1f} s, second {seconds[1]:.1f} s")
