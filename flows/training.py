"""Training as its own flow, so it can run in-process as a subflow or be sent to a GPU
work pool as a deployment (``run_deployment("train-model/gpu", parameters={"train": ...})``).

:func:`submit_training` picks between the two: no work pool → the ``train_model`` subflow
in this process; a work pool name → a flow run of the ``train-model`` deployment on that
pool, linked to the calling flow as a subflow, awaited, and read back from the files it
wrote (a worker on another machine cannot share this process's Prefect result storage, so
``experiment_dir`` must be on storage both workers see).
"""

from __future__ import annotations

import json
from typing import Optional

from prefect import flow, get_run_logger
from prefect.exceptions import MissingContextError
from prefect.logging import get_logger

from blocks.storage import exists, read_bytes, use_storage_blocks
from dvtrain import uri
from dvtrain.config import DeepVariantEngineConfig, TrainConfig
from dvtrain.errors import DvtrainError
from tasks import train_task
from tasks.artifacts import publish_training

from .naming import training_model_name, training_run_name

TRAIN_FLOW_NAME = "train-model"


@flow(name=TRAIN_FLOW_NAME, flow_run_name=training_run_name, log_prints=True)
def train_model(train: TrainConfig, storage_blocks: Optional[dict[str, str]] = None,
                engine: Optional[DeepVariantEngineConfig] = None) -> dict:
    """Train (or warm-start from ``train.init_checkpoint``) one model; returns best_model/best_metrics.

    Args:
        train: datasets (shuffled ``dataset_config.pbtxt`` files), output folder and hyper-parameters.
        storage_blocks: ``{uri prefix: block name}`` for s3:// / gs:// locations (else blocks are found by bucket name).
        engine: DeepVariant container settings: train with DeepVariant's own trainer in its -gpu image.
    """
    if storage_blocks is not None:
        use_storage_blocks(storage_blocks)
    if engine is not None:
        return train_task(train, engine)
    summary = train_task(train)
    publish_training(training_model_name(train.experiment_dir), summary, train.experiment_dir)
    return summary


class TrainingSubmissionError(DvtrainError):
    """The training deployment is missing, or its run did not complete / left no outputs."""


def find_training_deployment(work_pool: str) -> str:
    """``train-model/<deployment>`` of the ``train-model`` deployment on ``work_pool``.

    Several on one pool: the first by name. None: a one-line error naming the pool.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, WorkPoolFilter, WorkPoolFilterName

    with get_client(sync_client=True) as client:
        deployments = client.read_deployments(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[TRAIN_FLOW_NAME])),
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[work_pool])),
        )
    if not deployments:
        raise TrainingSubmissionError(
            f"no deployment of flow '{TRAIN_FLOW_NAME}' on work pool '{work_pool}' "
            f"(deploy one: python deployments/deploy.py), or unset training_work_pool to train in-process"
        )
    return f"{TRAIN_FLOW_NAME}/{sorted(d.name for d in deployments)[0]}"


def read_training_outputs(experiment_dir) -> dict:
    """The summary a finished training run left in ``experiment_dir`` (what ``train_task`` returns),
    with ``best_model`` as seen from here: ``experiment_dir/best_model.keras``."""
    summary_path, best = uri.join(experiment_dir, "train_summary.json"), uri.join(experiment_dir, "best_model.keras")
    for path in (summary_path, best):
        if not exists(path):
            raise TrainingSubmissionError(
                f"{path}: missing after the training run completed "
                f"(is the workdir on storage that the workers of both work pools see?)"
            )
    summary = json.loads(read_bytes(summary_path))
    summary["best_model"] = str(best)
    return summary


def submit_training(train: TrainConfig, work_pool: Optional[str] = None, poll_interval: float = 2.0,
                    storage_blocks: Optional[dict[str, str]] = None,
                    engine: Optional[DeepVariantEngineConfig] = None) -> dict:
    """Train in-process (``work_pool`` None/empty) or on ``work_pool`` through its ``train-model``
    deployment, waiting for it either way; returns the training summary (``best_model``, ...).

    Call it from a flow: the remote run is linked as a subflow of the caller.
    """
    if not work_pool:
        return train_model(train, storage_blocks, engine)

    from prefect.deployments import run_deployment

    name = find_training_deployment(work_pool)
    try:
        logger = get_run_logger()
    except MissingContextError:  # called outside a flow: still works, just not linked as a subflow
        logger = get_logger(__name__)
    logger.info("training %s on work pool %s via deployment %s", train.experiment_dir, work_pool, name)
    run = run_deployment(
        name, parameters={"train": train.model_dump(mode="json"), "storage_blocks": storage_blocks,
                          **({"engine": engine.model_dump(mode="json")} if engine is not None else {})},
        as_subflow=True, timeout=None, poll_interval=poll_interval,
    )
    state = run.state
    if state is None or not state.is_completed():
        status = state.name if state else "unknown"
        message = f": {state.message}" if state and state.message else ""
        raise TrainingSubmissionError(
            f"training run '{run.name}' ({run.id}) on work pool '{work_pool}' ended {status}{message}"
        )
    if engine is not None:
        from dvtrain.containers import latest_checkpoint

        best = latest_checkpoint(uri.location(train.experiment_dir))
        if best is None:
            raise TrainingSubmissionError(f"{train.experiment_dir}: no DeepVariant checkpoint after the training run")
        return {"best_model": best, "engine": "deepvariant"}
    return read_training_outputs(train.experiment_dir)
