"""Prefect flows: composition of the tasks in :mod:`tasks`."""

from .case_study import custom_model_training, run_case_study
from .concurrency import bounded_map
from .training import train_model

__all__ = ["custom_model_training", "run_case_study", "train_model", "bounded_map"]
