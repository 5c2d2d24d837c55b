"""Prefect flows: composition of the tasks in :mod:`tasks`."""

from .call_variants import call_variants
from .case_study import custom_model_training, run_case_study
from .concurrency import bounded_map
from .training import submit_training, train_model

__all__ = ["custom_model_training", "run_case_study", "train_model", "submit_training", "call_variants", "bounded_map"]
