"""``dvtrain submit``: start a run of a deployed case study from a case-study YAML, on the
Prefect server of ``$PREFECT_API_URL``, and follow it to its end.

The case study is validated where it is submitted (``preflight``: local paths, formats and
contigs; remote inputs through their storage blocks), so a bad path is one line here, not a
failed run in the UI. The run gets the whole config as its ``config`` parameter (what the
UI's form sends), so nothing else needs to be turned into ``--param`` JSON.
"""

from __future__ import annotations

import re
import time
from typing import Any, Callable, Optional
from uuid import UUID

from dvtrain.config import CaseStudyConfig
from dvtrain.errors import DvtrainError

DEFAULT_DEPLOYMENT = "custom-model-training/scheduled-retraining"
_DATA_IMAGE = re.compile(r"!\[[^\]]*\]\(data:[^)]*\)\n?")


def _api() -> str:
    from prefect.settings import get_current_settings

    api = get_current_settings().api.url
    if not api:
        raise DvtrainError("no Prefect server to submit to: set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api); "
                           "`dvtrain run` runs a case study without one")
    return api


def run_url(flow_run_id: Any) -> str:
    """The flow run's page in the Prefect UI."""
    from prefect.settings import get_current_settings

    ui = get_current_settings().ui_url or _api().rstrip("/").removesuffix("/api")
    return f"{ui.rstrip('/')}/runs/flow-run/{flow_run_id}"


def submit_case_study(config: CaseStudyConfig, deployment: str = DEFAULT_DEPLOYMENT,
                      publish_to: Optional[str] = None):
    """Validate ``config``, then create a run of ``deployment`` with it; returns the FlowRun
    (scheduled now; a worker of the deployment's pool picks it up)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from .case_study import preflight

    api = _api()
    preflight(config)
    parameters: dict[str, Any] = {"config": config.model_dump(mode="json")}
    if publish_to:
        parameters["publish_to"] = publish_to
    with get_client(sync_client=True) as client:
        try:
            found = client.read_deployment_by_name(deployment)
        except ObjectNotFound:
            raise DvtrainError(f"no deployment {deployment!r} on the Prefect server at {api}: create it with "
                               f"deployments/deploy.py, or name another with --deployment FLOW/DEPLOYMENT") from None
        return client.create_flow_run_from_deployment(found.id, parameters=parameters)


def watch(flow_run_id: UUID, echo: Callable[[str], None] = print, poll: float = 5.0):
    """Print the run's state changes until it ends; returns the final FlowRun."""
    from prefect.client.orchestration import get_client

    last = None
    with get_client(sync_client=True) as client:
        while True:
            run = client.read_flow_run(flow_run_id)
            name = run.state.name if run.state else "Pending"
            if name != last:
                echo(f"{time.strftime('%H:%M:%S')}  {run.name}: {name}")
                last = name
            if run.state is not None and run.state.is_final():
                return run
            time.sleep(poll)


def report_markdown(flow_run_id: UUID) -> Optional[str]:
    """The run's ``report`` artifact as text (its embedded chart left out), or None."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=["report"]), flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    if not found:
        return None
    return _DATA_IMAGE.sub("", str(found[-1].data)).strip()
