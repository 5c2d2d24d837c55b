"""Training as its own flow, so it can run in-process as a subflow or be sent to a GPU
work pool as a deployment (``run_deployment("train-model/gpu", parameters={"train": ...})``)."""

from __future__ import annotations

from prefect import flow

from dvtrain.config import TrainConfig
from tasks import train_task


@flow(name="train-model", log_prints=True)
def train_model(train: TrainConfig) -> dict:
    """Train (or warm-start from ``train.init_checkpoint``) one model; returns best_model/best_metrics."""
    return train_task(train)
