"""deployments/: prefect.yaml and the GPU work-pool template are valid and deploy for real."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prefect.client.schemas.schedules import CronSchedule
from prefect.flows import load_flow_from_entrypoint
from prefect.workers.process import ProcessJobConfiguration

from dvtrain.config import CaseStudyConfig


REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deployments"


@pytest.fixture(scope="module")
def project() -> dict:
    return yaml.safe_load((DEPLOY / "prefect.yaml").read_text())


@pytest.fixture(scope="module")
def template() -> dict:
    return json.loads((DEPLOY / "gpu-work-pool.json").read_text())


def deployment(project: dict, name: str) -> dict:
    return next(d for d in project["deployments"] if d["name"] == name)


def test_entrypoints_load_and_parameters_validate(project, monkeypatch):
    monkeypatch.chdir(REPO)  # prefect deploy runs from the repository root
    names = {}
    for d in project["deployments"]:
        flow = load_flow_from_entrypoint(d["entrypoint"])
        names[d["name"]] = flow.name
        if d.get("parameters"):
            flow.validate_parameters(d["parameters"])  # what a run of the deployment will do
    assert names == {"weekly-retraining": "custom-model-training", "gpu": "train-model"}
    config = CaseStudyConfig.model_validate(deployment(project, "weekly-retraining")["parameters"]["config"])
    assert config.baseline.reads and config.splits.test == ["chr20"]


def test_weekly_schedule_and_gpu_pool(project):
    weekly = deployment(project, "weekly-retraining")
    (schedule,) = weekly["schedules"]
    CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])  # raises if invalid
    assert schedule["cron"].split()[-1] != "*"  # weekly: a fixed day of the week
    gpu = deployment(project, "gpu")
    assert gpu["work_pool"]["name"] == "gpu-pool"
    assert set(gpu["work_pool"]["job_variables"]) <= set(json.loads((DEPLOY / "gpu-work-pool.json").read_text())["variables"]["properties"])


def test_gpu_template_builds_a_process_job_with_gpu_env(prefect_server, template):
    # (needs an API: from_template_and_values resolves block/variable references)
    default = asyncio.run(ProcessJobConfiguration.from_template_and_values(template, {}))
    assert default.env["KERAS_BACKEND"] == "tensorflow" and default.env["CUDA_VISIBLE_DEVICES"] == "0"
    custom = asyncio.run(ProcessJobConfiguration.from_template_and_values(
        template, {"gpu_devices": "1", "keras_backend": "jax", "env": {"EXTRA": "x"}}))
    assert (custom.env["CUDA_VISIBLE_DEVICES"], custom.env["KERAS_BACKEND"], custom.env["EXTRA"]) == ("1", "jax", "x")


def test_pools_and_deployments_are_accepted_by_a_server(prefect_server, template, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.settings import get_current_settings

    with get_client(sync_client=True) as client:
        pool = client.create_work_pool(WorkPoolCreate(name="gpu-pool", type="process", base_job_template=template))
        assert pool.base_job_template == template  # the server validated and kept it
        client.create_work_pool(WorkPoolCreate(name="cpu-pool", type="process"))

    settings = get_current_settings()
    env = dict(os.environ, PREFECT_API_URL=settings.api.url, PREFECT_HOME=str(settings.home))
    run = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all", "--prefect-file", "deployments/prefect.yaml"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]

    with get_client(sync_client=True) as client:
        deployed = {d.name: d for d in client.read_deployments()}
    assert deployed["weekly-retraining"].work_pool_name == "cpu-pool"
    assert [s.schedule.cron for s in deployed["weekly-retraining"].schedules] == ["0 3 * * 1"]
    assert deployed["weekly-retraining"].parameters["config"]["baseline"]["reads"] == ["/data/dvtrain/generic.bam"]
    assert deployed["gpu"].work_pool_name == "gpu-pool"
    assert deployed["gpu"].job_variables == {"keras_backend": "tensorflow", "gpu_devices": "0"}
