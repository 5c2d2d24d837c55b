"""End to end: simulate a tiny genome, run the whole case-study flow, then run it again.

Slow (trains two small models on CPU): ``pytest -m slow tests/test_prefect_case_study.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dvtrain.config import BaselineConfig, CaseStudyConfig


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dataset(sim_dataset) -> dict:
    return sim_dataset


def products(wd: Path) -> list[Path]:
    """Outputs of every kind of task (coverage, examples, shuffle, train, call, evaluate, report)."""
    return [
        wd / "coverage" / "confident.bed",
        wd / "baseline" / "coverage" / "confident.bed",
        wd / "custom" / "examples" / "train.tfrecord-00000-of-00002.gz",
        wd / "custom" / "shuffled" / "train.dataset_config.pbtxt",
        wd / "baseline" / "train" / "best_model.keras",
        wd / "custom" / "train" / "best_model.keras",
        wd / "baseline" / "calls.vcf.gz",
        wd / "custom" / "calls.vcf.gz",
        wd / "custom" / "eval.summary.csv",
        wd / "margins.json",
        wd / "report.json",
        wd / "report.md",
        wd / "provenance.json",
    ]


def test_case_study_end_to_end_then_cached(prefect_server, dataset, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey, FlowRunFilter,
                                                FlowRunFilterParentFlowRunId)

    from blocks import DvtrainStorage, register
    from flows import custom_model_training, run_case_study

    register()

    config = CaseStudyConfig(
        reference=dataset["ref"], truth_vcf=dataset["truth_vcf"], truth_bed=dataset["truth_bed"],
        reads=[dataset["bams"]["lowcov"]], baseline=BaselineConfig(reads=[dataset["bams"]["generic"]]),
        workdir=tmp_path / "wd", shards=2, max_concurrency=2, shuffle_shards=2,
        baseline_epochs=1, custom_epochs=1, sample_name="SIM001", seed=7, dataset_json=dataset["dataset_json"],
    )
    wd = config.workdir

    first = custom_model_training(config, return_state=True)
    report = first.result()
    import shutil

    peers = {p for p in config.peers if shutil.which(p)}  # installed peers sit next to the models
    assert {r["model"] for r in report["rows"]} == {"baseline", "custom"} | peers
    assert report["dataset"]["generator"] == "dvtrain.simulate"
    missing = [str(p) for p in products(wd) if not p.exists()]
    assert not missing
    # the custom-minus-baseline F1 with its paired bootstrap interval, in the report and its Markdown
    f1 = {(r["model"], r["Type"]): r["METRIC.F1_Score"] for r in report["rows"]}
    baseline_margins = {k: v for k, v in report["margins"].items() if k != "peers"}
    assert baseline_margins == json.loads((wd / "margins.json").read_text())
    for peer in peers:  # custom minus each peer, with its own bootstrap
        assert report["margins"]["peers"][peer] == json.loads((wd / f"margins.{peer}.json").read_text())
    for vtype in ("INDEL", "SNP"):
        m = report["margins"][vtype]
        for key, model in (("f1", "custom"), ("baseline_f1", "baseline")):
            row = f1[(model, vtype)]
            assert m[key] == (None if row is None else pytest.approx(row, abs=1e-6))
        if m["difference"] is not None:  # both models made calls of this type
            assert m["low"] <= m["difference"] <= m["high"]
    assert report["margins"]["SNP"]["difference"] is not None
    assert "paired bootstrap interval" in (wd / "report.md").read_text()
    # What the UI shows: tables, markdown with inline plots, finished progress, a telling run name.
    expected = {
        "evaluation-baseline": "table", "evaluation-custom": "table", "evaluation-report": "table",
        **{f"evaluation-{p}": "table" for p in peers},
        "dataset-train": "table", "dataset-tune": "table", "report": "markdown",
        "training-baseline": "markdown", "training-custom": "markdown",
        "training-baseline-progress": "progress", "training-custom-progress": "progress",
        "make-examples-custom-training-progress": "progress", "make-examples-test-calling-progress": "progress",
        "shuffle-train-progress": "progress", "shuffle-tune-progress": "progress",
    }
    with get_client(sync_client=True) as client:
        # this run's artifacts only: its flow run and its subflows (other tests on the session's
        # server, the SIGKILLed ones of tests/faults included, publish under the same keys)
        runs, frontier = {first.state_details.flow_run_id}, {first.state_details.flow_run_id}
        while frontier:
            children = client.read_flow_runs(flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=list(frontier))))
            frontier = {c.id for c in children} - runs
            runs |= frontier
        found = {a.key: a for a in sorted(client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=list(expected)), flow_run_id=ArtifactFilterFlowRunId(any_=list(runs)))),
            key=lambda a: a.created)}
        run = client.read_flow_run(found["report"].flow_run_id)
    assert {k: a.type for k, a in found.items()} == expected
    assert all(found[k].data == 100.0 for k in expected if expected[k] == "progress")
    for key in ("report", "training-custom"):
        assert "![" in found[key].data and "data:image/png;base64,iVBORw0KGgo" in found[key].data
    # the training curves on the case study's own page too (published after the subflow's)
    assert found["training-custom"].flow_run_id == found["report"].flow_run_id == first.state_details.flow_run_id
    # evaluation tables: PASS rows, F1 / recall / precision first
    evaluation = json.loads(found["evaluation-custom"].data)
    assert {r["Filter"] for r in evaluation} == {"PASS"}
    assert list(evaluation[0])[:4] == ["Type", "METRIC.F1_Score", "METRIC.Recall", "METRIC.Precision"]
    assert list(json.loads(found["evaluation-report"].data)[0])[:3] == ["model", "Type", "METRIC.F1_Score"]
    assert {row["class"] for row in json.loads(found["dataset-train"].data)} <= {"0 (hom-ref)", "1 (het)", "2 (hom-alt)"}
    assert sum(row["examples"] for row in json.loads(found["dataset-train"].data)) > 0
    # unique per run: the slot's UTC date and time, then the run id's first 8 characters
    assert run.name == f"train-lowcov-chr1-{run.expected_start_time:%Y-%m-%dT%H%M}-{str(run.id)[:8]}", run.name
    assert (wd / "evaluation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # each model's best epoch by its own metric: the baseline's by tune/loss, the custom model's by F1
    picked = {m: json.loads((wd / m / "train" / "train_summary.json").read_text())["best_checkpoint_metric"]
              for m in ("baseline", "custom")}
    assert picked == {"baseline": "tune/loss", "custom": "tune/f1_weighted"}

    # Same inputs again: every task is a cache hit, so no output file is rewritten.
    stamps = {p: p.stat().st_mtime_ns for p in products(wd)}
    state = custom_model_training(config, return_state=True)
    assert state.result() == report
    assert {p: p.stat().st_mtime_ns for p in products(wd)} == stamps
    # ... and the cached run's own page still shows the results (the flow publishes them, not the tasks)
    with get_client(sync_client=True) as client:
        cached_run = {a.key for a in client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id={"any_": [state.state_details.flow_run_id]}))}
    assert {"evaluation-baseline", "evaluation-custom", "evaluation-report", "report", "dataset-train"} <= cached_run
    # margins.json is not named in the margin task's result: its policy checks it still exists
    (wd / "margins.json").unlink()
    assert custom_model_training(config) == report
    assert json.loads((wd / "margins.json").read_text()) == {k: v for k, v in report["margins"].items() if k != "peers"}

    # A deleted output is recomputed; what it does not depend on stays cached. This run goes
    # through run_case_study(YAML) and publishes to a storage block (a local folder; buckets: tests/test_prefect_blocks.py).
    (wd / "custom" / "calls.vcf.gz").unlink()
    DvtrainStorage(basepath=str(tmp_path / "published")).save("e2e-results", overwrite=True)
    config_yaml = tmp_path / "case-study.yaml"
    config_yaml.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    assert run_case_study(config_yaml, publish_to="e2e-results") == report
    assert (wd / "custom" / "calls.vcf.gz").exists()
    assert (wd / "custom" / "train" / "best_model.keras").stat().st_mtime_ns == stamps[wd / "custom" / "train" / "best_model.keras"]
    published = [p.as_posix() for p in (tmp_path / "published").rglob("*") if p.is_file()]
    assert any(p.endswith("/report.md") for p in published) and any(p.endswith("/custom/calls.vcf.gz") for p in published)
    assert not any("/examples/" in p or p.endswith(".bam") for p in published)
