"""Prefect blocks for dvtrain: URI resolution through saved storage blocks, the publish
block, and block-type registration. Nothing is registered at import: call :func:`register`."""

from .storage import (
    DvtrainStorage,
    ObjectInfo,
    ObjectStore,
    StorageError,
    clear_cache,
    register,
    resolve,
    use_storage_blocks,
)

__all__ = ["DvtrainStorage", "ObjectInfo", "ObjectStore", "StorageError", "clear_cache", "register", "resolve",
           "use_storage_blocks"]
