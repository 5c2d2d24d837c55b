"""Flow-run names that say what is running and tell runs apart, e.g.
``train-lowcov-chr1-2026-11-24T0930-3f2a9c1b`` (UTC date and time of its slot, then the
first 8 characters of the flow run's id: two runs of one day never share a name).

Prefect calls these with no arguments while it creates the run; the run's parameters are
read from :mod:`prefect.runtime` (a pydantic config or the plain dict the API sent).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from prefect.runtime import flow_run


def _field(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _when() -> str:
    start = flow_run.scheduled_start_time  # a scheduled run is named for its slot, not for when a worker woke up
    when = start if isinstance(start, datetime) else datetime.now(timezone.utc)
    run_id = str(flow_run.id or "")[:8]
    return f"{when.astimezone(timezone.utc):%Y-%m-%dT%H%M}" + (f"-{run_id}" if run_id else "")


def case_study_run_name() -> str:
    """``train-<name>-<train contigs>-<date>T<time>-<run id>`` for the case study."""
    config = flow_run.parameters.get("config") or {}
    contigs = _field(_field(config, "splits", {}), "train", None) or ["chr1"]
    return f"train-{_field(config, 'name', None) or 'lowcov'}-{'+'.join(map(str, contigs))}-{_when()}"


def training_model_name(experiment_dir: Any) -> str:
    """The model an experiment dir trains: its parent for ``.../<model>/train``, else its name."""
    parts = [p for p in str(experiment_dir or "").replace("\\", "/").split("/") if p and p != "."]
    if len(parts) >= 2 and parts[-1] == "train":
        return parts[-2]
    return parts[-1] if parts else "model"


def training_run_name() -> str:
    """``train-model-<model>-<date>T<time>-<run id>``, e.g. ``train-model-custom-2026-11-24T0931-9b0e4d22``."""
    train = flow_run.parameters.get("train") or {}
    return f"train-model-{training_model_name(_field(train, 'experiment_dir', ''))}-{_when()}"
