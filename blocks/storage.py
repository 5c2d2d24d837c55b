"""Where a case study's results go: a local folder or any fsspec URL (s3://, gs://, ...).

The stages need local files (htslib, TFRecords), so a run computes in a local workdir and
then *publishes* the small, useful part of it (report, VCFs, evaluation, models) to the
storage block. Credentials for the remote file system go into ``settings`` (a secret;
passed to ``fsspec.filesystem``), e.g. ``{"key": ..., "secret": ...}`` for s3fs or
``{"token": ...}`` for gcsfs; those packages must be installed where the flow runs.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import fsspec
from prefect.blocks.core import Block
from prefect.filesystems import LocalFileSystem, RemoteFileSystem, WritableFileSystem
from prefect.types import SecretDict
from pydantic import Field

# Bulky intermediates that are cheap to regenerate and not worth uploading.
DEFAULT_EXCLUDE = ("*/examples/*", "*/shuffled/*", "*.bam", "*.bam.bai", "*.part*")


class DvtrainStorage(Block):
    """Storage for dvtrain results: a local path or an fsspec URL."""

    _block_type_name = "dvtrain Storage"
    _description = "Where dvtrain publishes case-study results: a local folder, s3://bucket/prefix, gs://bucket/prefix, ..."

    basepath: str = Field(description="local folder or fsspec URL", examples=["s3://my-bucket/dvtrain", "/shared/dvtrain"])
    settings: SecretDict = Field(default_factory=lambda: SecretDict({}), description="fsspec options (credentials)")
    exclude: list[str] = Field(default_factory=lambda: list(DEFAULT_EXCLUDE), description="glob patterns (relative paths) not to publish")

    @property
    def is_remote(self) -> bool:
        return "://" in self.basepath and not self.basepath.startswith("file://")

    def filesystem(self) -> WritableFileSystem:
        """The same location as a Prefect file system block (usable as ``result_storage``)."""
        if self.is_remote:
            return RemoteFileSystem(basepath=self.basepath, settings=self.settings.get_secret_value())
        return LocalFileSystem(basepath=self.basepath.removeprefix("file://"))

    def url(self, subpath: str = "") -> str:
        return f"{self.basepath.rstrip('/')}/{subpath.strip('/')}" if subpath else self.basepath

    def _fsspec(self):
        """(fsspec file system, root path inside it)."""
        return fsspec.core.url_to_fs(self.basepath, **self.settings.get_secret_value())

    def publish(self, local_dir: str | Path, subpath: str) -> list[str]:
        """Copy ``local_dir`` (minus ``exclude``) under ``basepath/subpath``, streaming file by file.

        Returns the relative paths copied.
        """
        fs, root = self._fsspec()
        src, dest = Path(local_dir), f"{root.rstrip('/')}/{subpath.strip('/')}"
        copied = []
        for f in sorted(p for p in src.rglob("*") if p.is_file()):
            rel = f.relative_to(src).as_posix()
            if any(fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch("/" + rel, pat) for pat in self.exclude):
                continue
            target = f"{dest}/{rel}"
            fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            fs.put_file(str(f), target)
            copied.append(rel)
        return copied

    def fetch(self, subpath: str, local_dir: str | Path) -> None:
        """Download ``basepath/subpath`` into ``local_dir``."""
        fs, root = self._fsspec()
        Path(local_dir).mkdir(parents=True, exist_ok=True)
        fs.get(f"{root.rstrip('/')}/{subpath.strip('/')}/", str(local_dir), recursive=True)


def register() -> None:
    """Register dvtrain's block types with the current Prefect API (server or Cloud).

    Equivalent CLI: ``prefect block register -m blocks``.
    """
    DvtrainStorage.register_type_and_schema()
