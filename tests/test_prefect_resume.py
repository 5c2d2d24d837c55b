"""Resume after a crash, and re-run exactly what an input change invalidates (issue 3).

Real case-study flows on a tiny simulated genome. Which stage tasks ran is read back from
the Prefect API: a task run that executed ends ``Completed``, one served from the
content-keyed cache ends ``Cached``. Each stage task is named by what it wrote
(``make_examples_task:custom/examples/train.tfrecord-00001-of-00002.gz``), read from its
persisted result, so runs in different processes can be compared task by task.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from uuid import UUID

import pytest
import yaml

from dvtrain.config import BaselineConfig, CaseStudyConfig

pytestmark = pytest.mark.slow  # about 2 minutes: five case-study runs (one killed)

REPO = Path(__file__).resolve().parents[1]
STAGES = ("coverage_task", "make_examples_task", "shuffle_task", "train_task", "call_task", "evaluate_task", "report_task")
# result fields that name a stage task's main output
PRIMARY_OUTPUT = ("output_bed", "path", "dataset_config", "best_model", "outfile")


# ------------------------------------------------------------------ reading runs back from the API
def _flow_run_tree(client, root: UUID) -> list[UUID]:
    """``root`` and its subflow runs (training, shard fan-outs), at any depth."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    ids, todo = [root], [root]
    while todo:
        children = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[todo.pop()])))
        ids += [c.id for c in children]
        todo += [c.id for c in children]
    return ids


def _storage_key(task_run) -> str | None:
    data = task_run.state.data if task_run.state else None
    key = getattr(data, "storage_key", None) or (data.get("storage_key") if isinstance(data, dict) else None)
    return str(key) if key else None


def _result(storage_key: str):
    from prefect._internal.result_records import ResultRecord

    return ResultRecord.deserialize(Path(storage_key).read_bytes()).result


def stage_runs(flow_run_id: UUID, workdir: Path) -> list[dict]:
    """Every stage task run under a flow run: {label, task, state, key}, in creation order.

    ``key`` is the cache record the run wrote or read (its storage key), ``label`` the task
    and its main output relative to ``workdir`` (evaluate/report, whose results name no
    file, are numbered in the order the flow creates them: baseline first).
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        ids = _flow_run_tree(client, flow_run_id)
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
    out, seen = [], Counter()
    for tr in sorted(runs, key=lambda t: t.created):
        task = tr.task_key.rsplit("-", 1)[0]
        if task not in STAGES:
            continue  # subflow wrappers
        key = _storage_key(tr)
        label = task
        if key and tr.state_name in ("Completed", "Cached") and os.path.exists(key):
            result = _result(key)
            if isinstance(result, dict) and any(f in result for f in PRIMARY_OUTPUT):
                path = next(result[f] for f in PRIMARY_OUTPUT if f in result)
                label = f"{task}:{Path(path).resolve().relative_to(workdir)}"
        if label == task:
            label = f"{task}#{seen[task]}"
            seen[task] += 1
        out.append({"label": label, "task": task, "state": tr.state_name, "key": key})
    return out


def executed(runs: list[dict]) -> set[str]:
    return {r["label"] for r in runs if r["state"] == "Completed"}


def cached(runs: list[dict]) -> set[str]:
    return {r["label"] for r in runs if r["state"] == "Cached"}


# ------------------------------------------------------------------ the case study
@pytest.fixture(scope="module")
def dataset(sim_dataset) -> dict:
    return sim_dataset


def case_study(dataset: dict, workdir: Path, reads: Path | None = None, **kw) -> CaseStudyConfig:
    fields = dict(
        reference=dataset["ref"], truth_vcf=dataset["truth_vcf"], truth_bed=dataset["truth_bed"],
        reads=[reads or dataset["bams"]["lowcov"]], baseline=BaselineConfig(reads=[dataset["bams"]["generic"]]),
        workdir=workdir, shards=2, max_concurrency=2, shuffle_shards=2, baseline_epochs=1, custom_epochs=1,
        sample_name="SIM001", seed=7)
    return CaseStudyConfig(**{**fields, **kw})


def run_flow(config: CaseStudyConfig) -> list[dict]:
    from flows import custom_model_training

    state = custom_model_training(config, return_state=True)
    assert state.is_completed(), state
    return stage_runs(state.state_details.flow_run_id, config.workdir.resolve())


def every_task() -> set[str]:
    """The 23 stage tasks of a case study with shards=2, shuffle_shards=2, a trained baseline."""
    examples = [f"{model}/examples/{split}.tfrecord-0000{i}-of-00002.gz"
                for model, splits in (("baseline", ("train", "tune")), ("custom", ("train", "tune")), ("test", ("test",)))
                for split in splits for i in range(2)]
    return (
        {"coverage_task:coverage/confident.bed", "coverage_task:baseline/coverage/confident.bed"}
        | {f"make_examples_task:{e}" for e in examples}
        | {f"shuffle_task:{m}/shuffled/{s}.dataset_config.pbtxt" for m in ("baseline", "custom") for s in ("train", "tune")}
        | {f"train_task:{m}/train/best_model.keras" for m in ("baseline", "custom")}
        | {f"call_task:{m}/calls.vcf.gz" for m in ("baseline", "custom")}
        | {"evaluate_task#0", "evaluate_task#1", "report_task#0"}
    )


def deterministic_outputs(wd: Path) -> dict[str, str]:
    """Digests of the outputs that must not depend on the run (no paths or times inside)."""
    files = sorted(f for f in [
        *wd.glob("*/examples/*.tfrecord-*.gz"), *wd.glob("*/shuffled/*.tfrecord.gz"),
        *wd.glob("*/calls.vcf.gz"), *wd.glob("*/eval.summary.csv"), wd / "coverage" / "confident.bed",
        wd / "baseline" / "coverage" / "confident.bed"] if not f.name.startswith("."))
    assert len(files) == 10 + 8 + 2 + 2 + 2, [str(f.relative_to(wd)) for f in files]
    return {str(f.relative_to(wd)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


@pytest.fixture(scope="module")
def clean(prefect_server, dataset, tmp_path_factory) -> dict:
    """One complete run, from scratch. Its reads are a private copy, so that a test may edit them."""
    root = tmp_path_factory.mktemp("clean")
    reads = root / "reads" / "lowcov.bam"
    reads.parent.mkdir()
    for suffix in ("", ".bai"):
        shutil.copy2(str(dataset["bams"]["lowcov"]) + suffix, str(reads) + suffix)
    config = case_study(dataset, root / "wd", reads=reads)
    runs = run_flow(config)
    return {"config": config, "runs": runs, "outputs": deterministic_outputs(config.workdir),
            "rows": _report_rows(config.workdir)}


def _report_rows(wd: Path) -> list[dict]:
    import json

    return json.loads((wd / "report.json").read_text())["rows"]


def test_clean_run_executes_every_stage_once(clean):
    labels = [r["label"] for r in clean["runs"]]
    assert Counter(labels) == Counter(every_task())  # each exactly once, and nothing else
    assert executed(clean["runs"]) == every_task() and not cached(clean["runs"])


def test_unchanged_rerun_executes_nothing(clean):
    runs = run_flow(clean["config"])
    assert executed(runs) == set()
    assert cached(runs) == every_task()
    # ... served from the very records the first run wrote
    assert {r["key"] for r in runs} == {r["key"] for r in clean["runs"]}


# ------------------------------------------------------------------ crash and resume
def _flow_run_of(workdir: Path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["custom-model-training"])))
    return [r for r in runs if str((r.parameters.get("config") or {}).get("workdir", "")).rstrip("/") == str(workdir)]


def _subprocess_env() -> dict:
    """The test session's Prefect server and home: the same API and the same result storage."""
    from prefect.settings import get_current_settings

    s = get_current_settings()
    env = dict(os.environ)
    env.update({
        "PREFECT_API_URL": str(s.api.url), "PREFECT_HOME": str(s.home),
        "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(s.results.local_storage_path),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING",
        "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]),
    })
    return env


def _task_states(flow_run_id: UUID) -> list[tuple[str, str]]:
    """(task, state) of the stage task runs under a flow run: a cheap poll (no results read)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        ids = _flow_run_tree(client, flow_run_id)
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
    return [(tr.task_key.rsplit("-", 1)[0], tr.state_name) for tr in runs]


def test_killed_run_resumes_from_every_finished_task(clean, dataset, tmp_path):
    # One shard at a time; SIGKILL as soon as two make_examples shards have finished.
    config = case_study(dataset, tmp_path / "wd", max_concurrency=1)
    config_yaml = tmp_path / "case-study.yaml"
    config_yaml.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    log = tmp_path / "crashed.log"
    proc = subprocess.Popen([sys.executable, "-m", "flows", str(config_yaml)], cwd=REPO, env=_subprocess_env(),
                            stdout=subprocess.DEVNULL, stderr=log.open("w"))
    workdir = config.workdir.resolve()
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, f"flow exited before the kill: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "no make_examples progress"
            found = _flow_run_of(workdir)
            if found and sum(s == ("make_examples_task", "Completed") for s in _task_states(found[0].id)) >= 2:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    time.sleep(1)  # let the server take any request the process sent before it died

    # What the crash left: a task has finished when its result record is on disk. (Prefect
    # reports Completed a moment *before* it writes the record, so a kill in between leaves
    # a Completed run with no record: that task was not finished, and is recomputed.)
    crashed = stage_runs(found[0].id, workdir)
    finished = {r["label"] for r in crashed if r["state"] == "Completed" and r["key"] and os.path.exists(r["key"])}
    unrecorded = [r for r in crashed if r["state"] == "Completed" and r["label"] not in finished]
    assert len(unrecorded) <= 1, crashed
    assert {"coverage_task:coverage/confident.bed", "coverage_task:baseline/coverage/confident.bed",
            "make_examples_task:baseline/examples/train.tfrecord-00000-of-00002.gz"} <= finished, crashed
    assert sum(label.startswith("make_examples_task") for label in finished) >= 2, crashed
    assert not any(label.startswith(("shuffle_task", "train_task")) for label in finished), crashed
    assert not (workdir / "report.json").exists()

    # The same flow again, in a new process (as after a real crash: fresh imports, the same
    # Prefect server and result storage).
    rerun = subprocess.run([sys.executable, "-m", "flows", str(config_yaml)], cwd=REPO, env=_subprocess_env(),
                           capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    second = [r for r in _flow_run_of(workdir) if r.id != found[0].id]
    assert len(second) == 1 and second[0].state_name == "Completed"
    resumed = stage_runs(second[0].id, workdir)
    assert cached(resumed) == finished  # every finished task is taken from the first run ...
    assert {r["key"] for r in resumed if r["state"] == "Cached"} == {
        r["key"] for r in crashed if r["label"] in finished}
    assert executed(resumed) == every_task() - finished  # ... and only the rest runs
    assert Counter(r["label"] for r in resumed) == Counter(every_task())

    # the result is the clean run's, byte for byte, with no half-written file left behind
    assert deterministic_outputs(workdir) == clean["outputs"]
    assert _report_rows(workdir) == clean["rows"]
    assert not [str(p) for p in workdir.rglob(".*.part*")]


# ------------------------------------------------------------------ one input changes
def _lower_base_qualities(bam: Path, by: int = 5) -> None:
    """Rewrite a BAM in place (same reads, same depth, base qualities lowered) and re-index."""
    import pysam

    tmp = bam.with_suffix(".tmp.bam")
    with pysam.AlignmentFile(str(bam), "rb") as src, pysam.AlignmentFile(str(tmp), "wb", header=src.header) as dst:
        for read in src:
            quals = read.query_qualities
            if quals is not None:
                seq = read.query_sequence
                read.query_sequence = seq  # (setting the sequence resets the qualities)
                read.query_qualities = pysam.qualitystring_to_array("".join(chr(max(0, q - by) + 33) for q in quals))
            dst.write(read)
    os.replace(tmp, bam)
    pysam.index(str(bam))


def test_changed_reads_rerun_exactly_the_stages_downstream(clean):
    """Edit the low-coverage BAM: everything fed by it re-runs, the baseline branch does not.

    Downstream of ``reads``: its coverage BED, the custom and test examples, the custom
    shuffles and training, both call sets (the test examples changed), both evaluations
    and the report. The baseline model is trained on other reads: all of that is cached.
    """
    config = clean["config"]
    _lower_base_qualities(Path(config.reads[0]))
    runs = run_flow(config)
    downstream = (
        {"coverage_task:coverage/confident.bed"}
        | {f"make_examples_task:{m}/examples/{s}.tfrecord-0000{i}-of-00002.gz"
           for m, s in (("custom", "train"), ("custom", "tune"), ("test", "test")) for i in range(2)}
        | {"shuffle_task:custom/shuffled/train.dataset_config.pbtxt", "shuffle_task:custom/shuffled/tune.dataset_config.pbtxt"}
        | {"train_task:custom/train/best_model.keras", "call_task:baseline/calls.vcf.gz", "call_task:custom/calls.vcf.gz"}
        | {"evaluate_task#0", "evaluate_task#1", "report_task#0"}
    )
    assert executed(runs) == downstream
    assert cached(runs) == every_task() - downstream
    assert len(downstream) == 15 and len(cached(runs)) == 8
