"""Against a real ``prefect server`` (tests/prefect_live.py): deployments/deploy.py creates the
pools and deployments, process workers serve ``cpu-pool`` and ``gpu-pool``, and a run of
``custom-model-training/scheduled-retraining`` triggered through the API (as the UI does)
trains its models as ``train-model/gpu`` runs on the ``gpu-pool`` worker.

About 4 minutes on 2 cores (server and workers start once per session, shared with test_ui.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pysam
import pytest

from prefect_live import REPO, shared_live_server, wait_for_final

pytestmark = pytest.mark.slow

CASE_STUDY = "custom-model-training/scheduled-retraining"
ON_DEMAND = "call-variants/on-demand"
GPU = "train-model/gpu"


@pytest.fixture(scope="module")
def live(request):
    return shared_live_server(request.config)


@pytest.fixture(scope="module")
def deployments(live) -> dict:
    with live.client() as client:
        return {f"{client.read_flow(d.flow_id).name}/{d.name}": d for d in client.read_deployments()}


def test_deploy_py_creates_pools_and_deployments(live, deployments):
    with live.client() as client:
        pools = {p.name: p for p in client.read_work_pools()}
    assert pools["cpu-pool"].type == "process"
    assert pools["gpu-pool"].type == "process" and pools["gpu-pool"].concurrency_limit == 1
    assert pools["gpu-pool"].base_job_template == json.loads((REPO / "deployments" / "gpu-work-pool.json").read_text())

    assert set(deployments) == {CASE_STUDY, ON_DEMAND, GPU}
    assert {name: d.work_pool_name for name, d in deployments.items()} == {
        CASE_STUDY: "cpu-pool", ON_DEMAND: "cpu-pool", GPU: "gpu-pool"}
    for d in deployments.values():  # workers run the flows from this checkout
        assert d.pull_steps == [{"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}]
        assert d.enforce_parameter_schema
    scheduled = deployments[CASE_STUDY]
    assert [(s.schedule.cron, s.schedule.timezone, s.active) for s in scheduled.schedules] == [("0 3 * * 1", "UTC", False)]
    config = scheduled.parameters["config"]  # deploy.py --config: the tiny dataset, training on gpu-pool
    assert config["reference"] == str(live.dataset["ref"]) and config["training_work_pool"] == "gpu-pool"
    assert deployments[GPU].job_variables == {"keras_backend": "tensorflow", "gpu_devices": "0"}


def _definition(schema: dict, name: str) -> dict:
    return (schema.get("definitions") or schema["$defs"])[name]


def test_parameter_forms_are_documented_and_enforced(live, deployments):
    from prefect.exceptions import PrefectHTTPStatusError

    schema = deployments[CASE_STUDY].parameter_openapi_schema
    assert schema["properties"]["config"]["$ref"].endswith("/CaseStudyConfig")
    assert schema["required"] == ["config"]
    case = _definition(schema, "CaseStudyConfig")
    assert case["title"] == "Case study" and case["description"]
    assert {"reference", "truth_vcf", "truth_bed", "reads", "baseline"} <= set(case["required"])
    props = case["properties"]
    assert props["min_coverage"] == {
        "title": "Minimum coverage", "type": "integer", "default": 2, "minimum": 0, "maximum": 1000,
        "description": props["min_coverage"]["description"],
    } and props["min_coverage"]["description"]
    assert props["training_work_pool"]["title"] == "Training work pool" and "gpu-pool" in props["training_work_pool"]["description"]
    assert props["custom_epochs"]["minimum"] == 1 and props["learning_rate"]["exclusiveMinimum"] == 0
    assert all(p.get("title") for p in props.values() if "$ref" not in p)  # (a $ref takes its title from the model)
    assert _definition(schema, "Splits")["properties"]["test"]["description"]

    calling = _definition(deployments[ON_DEMAND].parameter_openapi_schema, "CallVariantsConfig")
    assert calling["title"] == "Call variants" and set(calling["required"]) == {"ref", "reads", "model", "output_vcf"}
    assert all(p.get("title") and p.get("description") for p in calling["properties"].values())
    assert calling["properties"]["num_shards"]["minimum"] == 1 and calling["properties"]["num_shards"]["default"] == 2

    train = _definition(deployments[GPU].parameter_openapi_schema, "TrainConfig")
    assert train["title"] == "Training"
    assert train["properties"]["epochs"]["minimum"] == 1 and train["properties"]["epochs"]["default"] == 8
    assert train["properties"]["epochs"]["description"]

    # the server validates a run's parameters against the schema before the run exists
    bad = json.loads(json.dumps(deployments[CASE_STUDY].parameters))
    bad["config"]["min_coverage"] = -1
    with live.client() as client, pytest.raises(PrefectHTTPStatusError, match="min_coverage|minimum|-1"):
        client.create_flow_run_from_deployment(deployments[CASE_STUDY].id, parameters=bad)


def test_scheduled_retraining_trains_on_the_gpu_pool(live, deployments):
    from prefect.client.schemas.filters import (
        ArtifactFilter, ArtifactFilterFlowRunId, FlowRunFilter, FlowRunFilterParentFlowRunId,
        LogFilter, LogFilterFlowRunId,
    )

    deployment = deployments[CASE_STUDY]
    with live.client() as client:  # what the UI's "Run" sends: the deployment's parameters
        parent = client.create_flow_run_from_deployment(deployment.id, parameters=deployment.parameters)
    parent = wait_for_final(live, parent.id)
    assert parent.state.is_completed(), f"{parent.state}\n{live.logs()}"
    assert parent.work_pool_name == "cpu-pool"

    def worker_of(client, run) -> str:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
        return next((name for name in ("cpu-worker", "gpu-worker")
                     for log in logs if log.message.startswith(f"Worker '{name}' submitting flow run")), "")

    with live.client() as client:
        assert worker_of(client, parent) == "cpu-worker"
        children = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent.id])))
        trainings = [c for c in children if c.deployment_id == deployments[GPU].id]
        assert len(trainings) == 2, [(c.name, c.deployment_id) for c in children]  # baseline, then custom
        for run in trainings:
            assert run.work_pool_name == "gpu-pool" and run.state.is_completed(), run
            assert client.read_task_run(run.parent_task_run_id).flow_run_id == parent.id  # linked as a subflow
            assert worker_of(client, run) == "gpu-worker"
            assert set(run.parameters) == {"train", "storage_blocks"} and run.parameters["storage_blocks"] == {}
        experiment_dirs = sorted(Path(r.parameters["train"]["experiment_dir"]) for r in trainings)
        artifacts = {a.key for a in client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[parent.id])))}

    wd = live.workdir
    assert experiment_dirs == [wd / "baseline" / "train", wd / "custom" / "train"]
    custom = json.loads((wd / "custom" / "train" / "train_summary.json").read_text())
    assert custom["init_checkpoint"] == str(wd / "baseline" / "train" / "best_model.keras")  # warm start from the GPU run
    report = json.loads((wd / "report.json").read_text())
    models = {r["model"] for r in report["rows"]}
    assert {"baseline", "custom"} <= models <= {"baseline", "custom", "bcftools", "freebayes"}  # + installed peers
    assert {"evaluation-baseline", "evaluation-custom", "evaluation-report"} <= artifacts


def test_call_variants_on_demand(live, deployments):
    """call-variants/on-demand with the custom model just trained: a sub-contig region, scored
    against the truth inside the coverage BED."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from dvtrain.bed import read_bed
    from dvtrain.config import CallVariantsConfig

    model = live.workdir / "custom" / "train" / "best_model.keras"
    if not model.exists():
        pytest.skip("needs the model of test_scheduled_retraining_trains_on_the_gpu_pool")
    out = live.root / "calls"
    config = CallVariantsConfig(  # no image height or thresholds: the model's (32 rows here) are used
        ref=live.dataset["ref"], reads=[live.dataset["bams"]["lowcov"]], model=model, regions=["chr20:1-15000"],
        output_vcf=out / "calls.vcf.gz", intermediate_results_dir=out,
        truth_vcf=live.dataset["truth_vcf"],  # no sample_name: the BAM's read groups name it
        truth_bed=live.workdir / "coverage" / "confident.bed", seed=7,
    )
    with live.client() as client:
        run = client.create_flow_run_from_deployment(deployments[ON_DEMAND].id, parameters={"config": config.model_dump(mode="json")})
    run = wait_for_final(live, run.id)
    assert run.state.is_completed(), f"{run.state}\n{live.logs()}"
    assert (out / "calls.vcf.gz").exists() and (out / "calls.vcf.gz.tbi").exists()
    with pysam.VariantFile(str(out / "calls.vcf.gz")) as vcf:
        assert list(vcf.header.samples) == ["SIM001"]  # dvtrain simulate's read-group SM
    assert (out / "eval.summary.csv").exists()
    scored = read_bed(out / "scored_regions.bed")  # the region, inside the coverage BED
    assert scored and all(c == "chr20" and 0 <= s < e <= 15000 for c, s, e in scored)
    with live.client() as client:
        keys = {a.key for a in client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))}
    assert "evaluation-calls" in keys


def test_training_submission_errors_are_one_line(live, tmp_path):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from dvtrain.config import TrainConfig
    from flows.training import TrainingSubmissionError, find_training_deployment, submit_training

    with temporary_settings({PREFECT_API_URL: live.api}):
        with pytest.raises(TrainingSubmissionError, match="no deployment of flow 'train-model' on work pool 'no-such-pool'"):
            find_training_deployment("no-such-pool")
        # the GPU run fails (no such dataset): the caller gets one line naming the run and its state
        missing = tmp_path / "missing.dataset_config.pbtxt"
        train = TrainConfig(train_dataset_config=missing, tune_dataset_config=missing, experiment_dir=tmp_path / "train")
        with pytest.raises(TrainingSubmissionError, match=r"training run '.+' \(.+\) on work pool 'gpu-pool' ended Failed"):
            submit_training(train, "gpu-pool", poll_interval=1)


def test_dvtrain_submit_watch_runs_a_yaml_case_study(live, deployments, tmp_path):
    """`dvtrain submit --config case.yaml --watch`: the YAML is validated here, a run of the
    deployment is created with it, the workers run it, and the command follows it to the end
    and prints the report. A bad path is one line and creates no run."""
    import re
    import subprocess
    import sys
    import time

    env = {**live.env, "PREFECT_API_URL": live.api}
    workdir = tmp_path / "run"
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "dvtrain.cli", "submit", "--config", str(live.config_yaml), "--set", f"workdir={workdir}",
         "--watch"], cwd=REPO, env=env, capture_output=True, text=True, timeout=540)
    seconds = time.monotonic() - t0
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{live.logs()}"
    m = re.search(r"submitted run ([0-9a-f-]{36}) of custom-model-training/scheduled-retraining: (\S+)/runs/flow-run/\1",
                  done.stdout)
    assert m and m.group(2) == live.url, done.stdout
    # --watch prints the state changes under the name the run takes when it starts
    assert re.search(rf"train-tiny-chr1-\d{{4}}-\d\d-\d\dT\d{{4}}-{m.group(1)[:8]}: Completed", done.stdout), done.stdout
    assert "| Model | Type | Recall | Precision | F1 |" in done.stdout and "data:image" not in done.stdout
    assert (workdir / "report.md").exists()
    print(f"dvtrain submit --watch: {seconds:.0f} s")  # (run with -s to see it)

    bad = tmp_path / "bad.yaml"
    bad.write_text(live.config_yaml.read_text().replace(str(live.dataset["ref"]), str(tmp_path / "nope.fa")))
    with live.client() as client:
        before = len(client.read_flow_runs())
    failed = subprocess.run([sys.executable, "-m", "dvtrain.cli", "submit", "--config", str(bad)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert failed.returncode == 2 and failed.stderr.count("\n") == 1, failed.stderr
    assert "nope.fa" in failed.stderr and "does not exist" in failed.stderr
    with live.client() as client:
        assert len(client.read_flow_runs()) == before
