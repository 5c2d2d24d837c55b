"""Prefect flows: composition of the tasks in :mod:`tasks`."""

import os

# Before Prefect is first imported (it reads its settings then): an ephemeral server gets
# 240 s to start instead of Prefect's 20, which the first SQLite migration on a cold machine
# overruns ("Timed out while attempting to connect to ephemeral Prefect API server").
# Here, so that dvtrain run, python -m flows and the Python API all get it; a value already
# in the environment wins.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "240")

from prefect.logging.configuration import ensure_logging_setup

from .call_variants import call_variants
from .case_study import custom_model_training, run_case_study
from .concurrency import bounded_map
from .training import submit_training, train_model

__all__ = ["custom_model_training", "run_case_study", "train_model", "submit_training", "call_variants", "bounded_map",
           "ensure_logging_setup"]
