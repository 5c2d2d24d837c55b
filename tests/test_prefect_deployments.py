"""deployments/: prefect.yaml, deploy.py's parts and the GPU work-pool templates (process, docker,
kubernetes, vertex-ai) are valid, render GPU jobs, and deploy for real.

(The whole path against a real `prefect server` with workers: tests/test_prefect_server.py.)"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
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
    assert names == {"scheduled-retraining": "custom-model-training", "on-demand": "call-variants", "gpu": "train-model"}
    config = CaseStudyConfig.model_validate(deployment(project, "scheduled-retraining")["parameters"]["config"])
    assert config.baseline.reads and config.splits.test == ["chr20"]
    assert config.training_work_pool == "gpu-pool"  # scheduled runs train on the GPU pool


def test_weekly_schedule_and_gpu_pool(project):
    weekly = deployment(project, "scheduled-retraining")
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
    env.pop("PREFECT_API_KEY", None)
    run = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all", "--prefect-file", "deployments/prefect.yaml"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]

    with get_client(sync_client=True) as client:
        deployed = {d.name: d for d in client.read_deployments()}
    assert deployed["scheduled-retraining"].work_pool_name == "cpu-pool"
    assert [s.schedule.cron for s in deployed["scheduled-retraining"].schedules] == ["0 3 * * 1"]
    assert deployed["scheduled-retraining"].parameters["config"]["baseline"]["reads"] == ["/data/dvtrain/generic.bam"]
    assert deployed["on-demand"].work_pool_name == "cpu-pool"
    assert deployed["gpu"].work_pool_name == "gpu-pool"
    assert deployed["gpu"].job_variables == {"keras_backend": "tensorflow", "gpu_devices": "0"}


# ---------------------------------------------------------------- GPU templates of the other worker types
def _flow_run():
    from prefect.client.schemas.objects import Flow, FlowRun

    flow_run = FlowRun(id=uuid.uuid4(), name="gpu-run", flow_id=uuid.uuid4())
    return flow_run, Flow(id=flow_run.flow_id, name="train-model")


def _render(cls, kind: str, values: dict):
    """The job a worker of ``kind`` would start: template + values, prepared for a flow run."""
    template = json.loads((DEPLOY / f"gpu-work-pool-{kind}.json").read_text())
    config = asyncio.run(cls.from_template_and_values(template, values))
    flow_run, flow = _flow_run()
    config.prepare_for_flow_run(flow_run, flow=flow)
    return config


def test_docker_template_requests_gpus(prefect_server):
    from docker.types import HostConfig
    from prefect_docker.worker import DockerWorkerJobConfiguration

    config = _render(DockerWorkerJobConfiguration, "docker", {"image": "dvtrain:gpu", "gpu_count": 2, "env": {"EXTRA": "x"}})
    assert config.image == "dvtrain:gpu"
    assert config.container_create_kwargs["device_requests"] == [{"count": 2, "capabilities": [["gpu"]]}]
    assert (config.env["KERAS_BACKEND"], config.env["EXTRA"]) == ("tensorflow", "x")
    # what docker-py sends to the daemon (= docker run --gpus 2)
    host = HostConfig(version="1.41", device_requests=config.container_create_kwargs["device_requests"],
                      shm_size=config.container_create_kwargs["shm_size"])
    assert [(r["Count"], r["Capabilities"]) for r in host["DeviceRequests"]] == [(2, [["gpu"]])]
    default = _render(DockerWorkerJobConfiguration, "docker", {"image": "dvtrain:gpu"})
    assert default.container_create_kwargs["device_requests"][0]["count"] == 1


def test_kubernetes_template_limits_nvidia_gpus(prefect_server):
    from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

    config = _render(KubernetesWorkerJobConfiguration, "kubernetes", {
        "image": "dvtrain:gpu", "gpu_count": 2, "node_selector": {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}})
    pod = config.job_manifest["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "dvtrain:gpu"
    assert container["resources"]["limits"] == {"nvidia.com/gpu": 2}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}
    assert {"name": "KERAS_BACKEND", "value": "tensorflow"} in container["env"]
    default = _render(KubernetesWorkerJobConfiguration, "kubernetes", {"image": "dvtrain:gpu"})
    assert default.job_manifest["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": 1}


def test_vertex_ai_template_attaches_accelerators(prefect_server, monkeypatch):
    import google.auth
    from google.auth.credentials import AnonymousCredentials
    from prefect_gcp.workers.vertex import VertexAIWorkerJobConfiguration

    # GcpCredentials() looks for application-default credentials when it is created
    monkeypatch.setattr(google.auth, "default", lambda *a, **k: (AnonymousCredentials(), "test-project"))
    values = {"region": "us-central1", "image": "us-docker.pkg.dev/p/dvtrain/gpu", "service_account_name": "sa@p.iam.gserviceaccount.com"}
    config = _render(VertexAIWorkerJobConfiguration, "vertex-ai", values)
    (pool,) = config.job_spec["worker_pool_specs"]
    assert pool["machine_spec"] == {"machine_type": "n1-standard-8", "accelerator_type": "NVIDIA_TESLA_T4", "accelerator_count": 1}
    assert pool["container_spec"]["image_uri"] == values["image"]
    assert {"name": "KERAS_BACKEND", "value": "tensorflow"} in pool["container_spec"]["env"]
    l4 = _render(VertexAIWorkerJobConfiguration, "vertex-ai", {**values, "accelerator_type": "NVIDIA_L4", "accelerator_count": 2, "machine_type": "g2-standard-24"})
    assert l4.job_spec["worker_pool_specs"][0]["machine_spec"] == {
        "machine_type": "g2-standard-24", "accelerator_type": "NVIDIA_L4", "accelerator_count": 2}


@pytest.mark.parametrize("kind", ["docker", "kubernetes", "vertex-ai"])
def test_gpu_templates_start_from_the_worker_defaults(kind):
    """Each template is its worker type's default template plus the GPU request and keras_backend."""
    from prefect.workers.base import BaseWorker
    from prefect.plugins import load_prefect_collections

    load_prefect_collections()
    worker = BaseWorker.get_worker_class_from_type(kind)
    default = worker.get_default_base_job_template()
    ours = json.loads((DEPLOY / f"gpu-work-pool-{kind}.json").read_text())
    assert set(default["variables"]["properties"]) - {"container_create_kwargs"} <= set(ours["variables"]["properties"])
    assert "keras_backend" in ours["variables"]["properties"]
    assert ours["job_configuration"]["env"]["KERAS_BACKEND"] == "{{ keras_backend }}"
    assert set(default["job_configuration"]) == set(ours["job_configuration"])


def test_deploy_py_builds_every_deployment_for_any_gpu_pool(project, tmp_path):
    """deploy.py's deployments, without a server: flows load from this checkout, workers pull
    from --repo-dir, the schedule is paused with --no-schedule, unknown job variables are dropped."""
    sys.path.insert(0, str(DEPLOY))
    try:
        import deploy
    finally:
        sys.path.remove(str(DEPLOY))
    config_yaml = tmp_path / "case.yaml"
    config_yaml.write_text(yaml.safe_dump({
        "reference": "ref.fa", "truth_vcf": "truth.vcf.gz", "truth_bed": "truth.bed", "reads": ["a.bam"],
        "baseline": {"model": "generic.keras"}, "workdir": "/shared/run"}))
    template = deploy.gpu_template("docker")
    built = {d.name: d for d in deploy.build_deployments(
        project, Path("/opt/dvtrain"), schedule=False, config_yaml=config_yaml,
        gpu_variables=set(template["variables"]["properties"]))}
    assert set(built) == {"scheduled-retraining", "on-demand", "gpu"}
    for d in built.values():
        assert d.storage.to_pull_step() == {"prefect.deployments.steps.set_working_directory": {"directory": "/opt/dvtrain"}}
    scheduled = built["scheduled-retraining"]
    assert [s.active for s in scheduled.schedules] == [False]
    config = scheduled.parameters["config"]
    assert config["reference"] == str(tmp_path / "ref.fa") and config["workdir"] == "/shared/run"
    assert config["training_work_pool"] == "gpu-pool"  # kept from prefect.yaml: the YAML does not set it
    assert built["gpu"].job_variables == {"keras_backend": "tensorflow"}  # gpu_devices is the process template's
    assert set(deploy.GPU_TEMPLATES) == {"process", "docker", "kubernetes", "vertex-ai"}


def test_deploy_py_pauses_a_schedule_whose_inputs_are_not_there(project, sim_dataset, tmp_path):
    """prefect.yaml's default case study points at /data/dvtrain/..., absent here: deploy.py
    deploys the weekly schedule paused and says which input and what to do, instead of
    queueing Monday runs that would fail. With a case study whose inputs exist it stays active."""
    sys.path.insert(0, str(DEPLOY))
    try:
        import deploy
    finally:
        sys.path.remove(str(DEPLOY))
    notes: list[str] = []
    built = {d.name: d for d in deploy.build_deployments(project, REPO, notes=notes)}
    assert [s.active for s in built["scheduled-retraining"].schedules] == [False]
    assert len(notes) == 1 and notes[0].startswith("scheduled-retraining: schedule deployed paused")
    assert "/data/dvtrain/" in notes[0] and "--config" in notes[0]

    data = Path(sim_dataset["ref"]).parent
    config_yaml = tmp_path / "case.yaml"
    config_yaml.write_text(yaml.safe_dump({
        "reference": str(data / "ref.fa"), "truth_vcf": str(data / "truth.vcf.gz"), "truth_bed": str(data / "truth.bed"),
        "reads": [str(data / "lowcov.bam")], "baseline": {"reads": [str(data / "generic.bam")]},
        "workdir": str(tmp_path / "run")}))
    notes = []
    built = {d.name: d for d in deploy.build_deployments(project, REPO, config_yaml=config_yaml, notes=notes)}
    assert [s.active for s in built["scheduled-retraining"].schedules] == [True] and notes == []
