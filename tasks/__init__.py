"""Prefect tasks: a thin layer over the dvtrain stages (one task per stage)."""

from .cache import FileContentInputs, file_digest, fingerprint
from .publish import publish_task
from .artifacts import artifact_key
from .stages import (
    call_task,
    coverage_task,
    evaluate_task,
    happy_task,
    make_examples_task,
    margin_task,
    peers_task,
    provenance_task,
    report_task,
    shuffle_task,
    train_task,
)

__all__ = [
    "FileContentInputs", "file_digest", "fingerprint", "artifact_key",
    "coverage_task", "make_examples_task", "shuffle_task", "train_task",
    "call_task", "evaluate_task", "margin_task", "happy_task", "peers_task", "provenance_task", "report_task", "publish_task",
]
