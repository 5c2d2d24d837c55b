"""Publish a finished workdir to a :class:`blocks.DvtrainStorage` block."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from .stages import retry_options


@task(cache_policy=NO_CACHE, **retry_options())
def publish_task(block_name: str, local_dir: Path, subpath: str) -> str:
    """Copy ``local_dir`` to the storage block ``block_name`` under ``subpath``; return its URL."""
    from blocks import DvtrainStorage

    storage = DvtrainStorage.load(block_name)
    copied = storage.publish(local_dir, subpath)
    url = storage.url(subpath)
    get_run_logger().info("publish: %d files from %s -> %s", len(copied), local_dir, url)
    return url
