#!/usr/bin/env python
"""Create dvtrain's work pools and deploy its three deployments, in one command:

    .venv/bin/python deployments/deploy.py            # against $PREFECT_API_URL

* work pools: ``cpu-pool`` (process) and ``gpu-pool`` (process with
  ``gpu-work-pool.json`` by default; ``--gpu-pool-type docker|kubernetes|vertex-ai`` uses
  ``gpu-work-pool-<type>.json``), created or updated in place;
* deployments, as listed in ``deployments/prefect.yaml`` (one source of truth with
  ``prefect deploy``): ``custom-model-training/scheduled-retraining`` (cron schedule; its
  config submits training to ``gpu-pool``), ``call-variants/on-demand``, ``train-model/gpu``.

Flow code is not copied anywhere: each deployment's pull step enters ``--repo-dir`` (the
checkout the workers see; default: this one) and loads its entrypoint from there.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Optional

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

CPU_POOL, GPU_POOL = "cpu-pool", "gpu-pool"
GPU_TEMPLATES = {
    "process": "gpu-work-pool.json",
    "docker": "gpu-work-pool-docker.json",
    "kubernetes": "gpu-work-pool-kubernetes.json",
    "vertex-ai": "gpu-work-pool-vertex-ai.json",
}
CASE_STUDY_ENTRYPOINT = "flows/case_study.py:custom_model_training"


def load_project(path: Path = HERE / "prefect.yaml") -> dict:
    return yaml.safe_load(path.read_text())


def gpu_template(pool_type: str) -> dict:
    return json.loads((HERE / GPU_TEMPLATES[pool_type]).read_text())


def process_template() -> dict:
    from prefect.workers.process import ProcessWorker

    return ProcessWorker.get_default_base_job_template()


def ensure_pool(client, name: str, pool_type: str, template: dict, concurrency_limit: Optional[int] = None) -> str:
    """Create the work pool, or update its template (and limit) when it exists; returns what was done."""
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
    from prefect.exceptions import ObjectAlreadyExists

    try:
        client.create_work_pool(WorkPoolCreate(
            name=name, type=pool_type, base_job_template=template, concurrency_limit=concurrency_limit))
        return "created"
    except ObjectAlreadyExists:
        pool = client.read_work_pool(name)
        if pool.type != pool_type:
            raise SystemExit(f"work pool {name!r} exists with type {pool.type!r}, not {pool_type!r}: "
                             f"delete it first (prefect work-pool delete {name}) or pick --gpu-pool-type {pool.type}")
        client.update_work_pool(name, WorkPoolUpdate(base_job_template=template, concurrency_limit=concurrency_limit))
        return "updated"


def case_study_parameters(config_yaml: Path, default: dict) -> dict:
    """The case-study YAML as deployment parameters; it keeps the project's training_work_pool
    unless the YAML sets one."""
    from dvtrain.config import load_case_study

    config = load_case_study(config_yaml)
    data = config.model_dump(mode="json")
    if "training_work_pool" not in config.model_fields_set:
        data["training_work_pool"] = default.get("training_work_pool")
    return data


def schedule_problem(parameters: dict) -> Optional[str]:
    """Why a scheduled case study would fail on its first run (a local input missing or
    unreadable, checked as the flow checks it), or None."""
    from dvtrain.config import CaseStudyConfig
    from dvtrain.errors import DvtrainError
    from dvtrain.validate import check_case_study

    config = parameters.get("config")
    if config is None:
        return None
    try:
        check_case_study(CaseStudyConfig.model_validate(config))
    except DvtrainError as e:
        return str(e)
    except ValueError as e:  # pydantic's ValidationError
        return f"its config does not validate: {str(e).splitlines()[0]}"
    return None


def build_deployments(project: dict, repo_dir: Path, *, schedule: bool = True, config_yaml: Optional[Path] = None,
                      gpu_variables: Optional[set[str]] = None, notes: Optional[list[str]] = None) -> list:
    """RunnerDeployments for every entry of ``project['deployments']``, loaded from this checkout
    and pulled by workers from ``repo_dir``. ``gpu_variables``: the GPU pool template's variables
    (job variables it does not know are dropped). A schedule whose case study names inputs
    that are not there is deployed paused, with a line in ``notes`` saying why."""
    from prefect import Flow
    from prefect.runner.storage import LocalStorage
    from prefect.schedules import Cron

    out = []
    for d in project["deployments"]:
        flow = Flow.from_source(str(REPO), d["entrypoint"])
        parameters: dict[str, Any] = dict(d.get("parameters") or {})
        if config_yaml is not None and d["entrypoint"] == CASE_STUDY_ENTRYPOINT:
            parameters["config"] = case_study_parameters(config_yaml, parameters.get("config") or {})
        pool = d["work_pool"]["name"]
        job_variables = dict(d["work_pool"].get("job_variables") or {})
        if pool == GPU_POOL and gpu_variables is not None:
            job_variables = {k: v for k, v in job_variables.items() if k in gpu_variables}
        active = schedule
        if active and any(s.get("active", True) for s in d.get("schedules") or []):
            problem = schedule_problem(parameters)
            if problem:
                active = False
                if notes is not None:
                    notes.append(f"{d['name']}: schedule deployed paused, its first run would fail: {problem}; "
                                 f"deploy again with --config CASE.yaml naming your inputs (deployments/README.md)")
        schedules = [
            Cron(s["cron"], timezone=s.get("timezone"), active=active and s.get("active", True))
            for s in d.get("schedules") or []
        ]
        deployment = flow.to_deployment(
            name=d["name"], work_pool_name=pool, job_variables=job_variables, parameters=parameters,
            description=d.get("description"), tags=d.get("tags"), schedules=schedules,
        )
        if repo_dir.resolve() != REPO:
            deployment.storage = LocalStorage(str(repo_dir))  # the path the workers see
        out.append(deployment)
    return out


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="deployments/deploy.py", description=__doc__.splitlines()[0])
    ap.add_argument("--repo-dir", type=Path, default=REPO,
                    help="the dvtrain checkout (with its .venv) as the workers see it; default: this checkout")
    ap.add_argument("--gpu-pool-type", choices=sorted(GPU_TEMPLATES), default="process",
                    help="worker type of gpu-pool and its GPU job template (default: process)")
    ap.add_argument("--gpu-slots", type=int, default=1,
                    help="concurrency limit of gpu-pool: the number of GPUs behind it (default 1)")
    ap.add_argument("--config", type=Path, default=None,
                    help="case-study YAML to use as scheduled-retraining's default parameters (default: prefect.yaml's)")
    schedule = ap.add_mutually_exclusive_group()
    schedule.add_argument("--schedule", dest="schedule", action="store_true", default=True,
                          help="deploy the retraining schedule active (default)")
    schedule.add_argument("--no-schedule", dest="schedule", action="store_false",
                          help="deploy the retraining schedule paused (runs only when triggered)")
    args = ap.parse_args(argv)

    from prefect.client.orchestration import get_client
    from prefect.settings import get_current_settings

    api = get_current_settings().api.url
    if not api:
        ap.error("no Prefect API configured: start one (prefect server start) and set PREFECT_API_URL, "
                 "e.g. export PREFECT_API_URL=http://127.0.0.1:4200/api")
    if args.gpu_slots < 1:
        ap.error("--gpu-slots must be >= 1")

    template = gpu_template(args.gpu_pool_type)
    with get_client(sync_client=True) as client:
        done = ensure_pool(client, CPU_POOL, "process", process_template())
        print(f"work pool {CPU_POOL} (process): {done}")
        done = ensure_pool(client, GPU_POOL, args.gpu_pool_type, template, concurrency_limit=args.gpu_slots)
        print(f"work pool {GPU_POOL} ({args.gpu_pool_type}, {GPU_TEMPLATES[args.gpu_pool_type]}, "
              f"{args.gpu_slots} concurrent run(s)): {done}")

    notes: list[str] = []
    deployments = build_deployments(
        load_project(), args.repo_dir, schedule=args.schedule, config_yaml=args.config,
        gpu_variables=set(template["variables"].get("properties", {})), notes=notes,
    )
    for deployment in deployments:
        deployment_id = deployment.apply()
        print(f"deployment {deployment.flow_name}/{deployment.name} -> {deployment.work_pool_name} ({deployment_id})")
    for note in notes:
        print(note, file=sys.stderr)
    print(f"\nAPI: {api}\nStart the workers (in {args.repo_dir}, with its .venv active):\n"
          f"  prefect worker start --pool {CPU_POOL}\n"
          f"  prefect worker start --pool {GPU_POOL}" + ("   # on the GPU machine" if args.gpu_pool_type == "process" else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
