"""Prefect block types for dvtrain. Nothing is registered at import: call :func:`register`."""

from .storage import DvtrainStorage, register

__all__ = ["DvtrainStorage", "register"]
