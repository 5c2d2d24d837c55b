"""Storage: stage inputs and outputs addressed by URI, resolved through saved Prefect blocks.

A location is a local path (``/data/x.bam``, ``file:///data/x.bam``) or a remote URI
(``s3://bucket/key``, ``gs://bucket/key``). :func:`resolve` finds the saved block that
serves a URI:

1. an explicit mapping ``{"s3://my-bucket": "my-s3-block"}`` (``CaseStudyConfig.storage_blocks``,
   made current for a flow run by :func:`use_storage_blocks`; the longest matching prefix
   wins; a value may also be ``"local-file-system/NAME"`` to serve a bucket from a folder);
2. else the saved ``S3Bucket`` (prefect-aws) whose ``bucket_name`` is the URI's bucket,
   resp. the saved ``GcsBucket`` (prefect-gcp) whose ``bucket`` is;
3. else a one-line :class:`StorageError` that says how to create such a block.

The returned :class:`ObjectStore` talks to the bucket with the block's own client
(``S3Bucket.credentials.get_s3_client()``, ``GcpCredentials.get_cloud_storage_client()``),
so endpoint URLs and credentials come from the saved blocks only (``STORAGE_EMULATOR_HOST``
is honoured by google-cloud-storage itself). Every upload goes to a temporary key beside the
final one and is then copied into place server-side and the temporary key deleted, so a
reader sees the whole object or nothing. Messages name URIs and block names, never
credentials or client configuration.

:class:`DvtrainStorage` publishes a finished workdir (local or remote) to any location
through the same functions.
"""

from __future__ import annotations

import contextlib
import contextvars
import fnmatch
import inspect
import os
import shutil
import tempfile
import threading
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from prefect.blocks.core import Block
from pydantic import Field

from dvtrain import uri as U
from dvtrain.errors import DvtrainError, InputError

# Bulky intermediates that are cheap to regenerate and not worth publishing.
DEFAULT_EXCLUDE = ("*/examples/*", "*/shuffled/*", "*.bam", "*.bam.bai", "*.part*")
TEMP_MARK = ".tmp-"  # temporary upload keys: DIR/.NAME.tmp-<uuid>


#: S3 error codes that mean "these credentials are not accepted here"
_DENIED_S3 = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken",
              "AllAccessDisabled", "AccountProblem", "403", "401"}
#: exception classes (google-api-core, google-auth) that mean the same for GCS
_DENIED_CLASSES = {"Forbidden", "Unauthorized", "RefreshError", "DefaultCredentialsError", "TransportError"}


def describe_store_error(exc: BaseException) -> str:
    """What a store's refusal means, in a few words, for a one-line error. Built from the
    error's code and class, never from request details: nothing of the credentials."""
    names = {c.__name__ for c in type(exc).__mro__}
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", "")) if "ClientError" in names else ""
    if code == "NoSuchBucket":
        return "the bucket does not exist"
    if code in _DENIED_S3:
        return f"access denied: the storage block's credentials were rejected ({code})"
    denied = sorted(names & _DENIED_CLASSES)
    if denied:
        return f"access denied: the storage block's credentials were rejected ({denied[0]})"
    if "NotFound" in names:
        return "the bucket does not exist"
    if "EndpointConnectionError" in names or "ConnectionError" in names:
        return "the storage endpoint cannot be reached"
    return f"the store refused the request ({code or type(exc).__name__})"


class StorageError(DvtrainError):
    """A storage configuration problem (no or wrong block): one line, not retried."""


@dataclass(frozen=True)
class ObjectInfo:
    """Metadata of one stored object (from the store, nothing downloaded)."""

    uri: str
    size: int
    etag: Optional[str] = None
    md5: Optional[str] = None
    crc32c: Optional[str] = None
    generation: Optional[str] = None
    updated: Optional[str] = None
    local_path: Optional[str] = None  # objects that are local files (LocalFileSystem blocks)

    @property
    def version(self) -> tuple:
        """Identity of this write of the object (a changed object has another version)."""
        return (self.size, self.etag, self.generation, self.updated)

    def digest(self) -> dict:
        """Cache-key stand-in for the object's *content*: size plus the store's content hash
        (S3 ETag, GCS md5/crc32c; a streamed digest for local files), so an identical copy
        elsewhere keys the same. Without a content hash the write's identity (generation,
        last-modified) stands in."""
        if self.local_path:
            from dvtrain.fileio import content_key

            return {"size": self.size, "content": content_key(self.local_path)}
        if self.md5:
            return {"size": self.size, "md5": self.md5}
        if self.etag and U.scheme(self.uri) == "s3":
            return {"size": self.size, "etag": self.etag}
        return {"size": self.size, "crc32c": self.crc32c, "etag": self.etag,
                "generation": self.generation, "updated": self.updated}


class ObjectStore(ABC):
    """One bucket (or folder) reached through one block; keys are ``/``-separated."""

    scheme: str = ""
    bucket: str = ""
    block_name: str = ""

    def uri(self, key: str) -> str:
        return U.make(self.scheme, self.bucket, key)

    # ----------------------------------------------------------- primitives
    @abstractmethod
    def stat(self, key: str) -> Optional[ObjectInfo]:
        """Metadata of ``key``, or None if there is no such object."""

    @abstractmethod
    def list(self, prefix: str, limit: Optional[int] = None) -> list[ObjectInfo]:
        """Every object whose key starts with ``prefix`` (recursive), sorted by key;
        ``limit``: at most that many (the first ones)."""

    @abstractmethod
    def _get(self, key: str, path: Path) -> None: ...

    @abstractmethod
    def _put(self, path: Path, key: str) -> None: ...

    @abstractmethod
    def _copy(self, src_key: str, dst_key: str) -> None: ...

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete ``key`` (no error if it is already gone)."""

    # ----------------------------------------------------------- composed
    def key_of(self, info: ObjectInfo) -> str:
        return U.split(info.uri)[2]

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    def read_bytes(self, key: str) -> bytes:
        with tempfile.TemporaryDirectory(prefix="dvtrain-read-") as tmp:
            path = Path(tmp) / "object"
            self.download(key, path)
            return path.read_bytes()

    def download(self, key: str, path: Union[str, Path]) -> ObjectInfo:
        """Download ``key`` to ``path`` (written under a temporary name, then renamed).

        Returns the metadata of the downloaded version; an object rewritten while it was
        being read is read again.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            info = self.stat(key)
            if info is None:
                raise InputError(self.uri(key), "does not exist")
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
            os.close(fd)
            try:
                self._get(key, Path(tmp))
                after = self.stat(key)
                if after is not None and after.version == info.version and os.path.getsize(tmp) == info.size:
                    os.replace(tmp, path)
                    return info
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        raise StorageError(f"{self.uri(key)}: the object kept changing while it was downloaded")

    def upload(self, path: Union[str, Path], key: str) -> ObjectInfo:
        """Upload a local file to ``key`` atomically: to a temporary key, then copied into
        place server-side; the temporary key is deleted either way."""
        tmp = temp_key(key)
        try:
            self._put(Path(path), tmp)
            self._copy(tmp, key)
        finally:
            with contextlib.suppress(Exception):
                self.delete(tmp)
        info = self.stat(key)
        if info is None:  # pragma: no cover - the store lost what it just acknowledged
            raise StorageError(f"{self.uri(key)}: missing right after upload")
        return info


def temp_key(key: str) -> str:
    head, _, name = key.rpartition("/")
    return f"{head + '/' if head else ''}.{name}{TEMP_MARK}{uuid.uuid4().hex}"


def _iso(value: Any) -> Optional[str]:
    return value.isoformat() if hasattr(value, "isoformat") else (str(value) if value is not None else None)


class S3Store(ObjectStore):
    """A bucket behind a saved ``S3Bucket`` block (AWS or any S3-compatible endpoint)."""

    scheme = "s3"

    def __init__(self, block: Any, block_name: str = ""):
        self.bucket = block.bucket_name
        self.block_name = block_name
        self._client = block.credentials.get_s3_client()  # endpoint + credentials from the block

    @staticmethod
    def _missing(exc: Exception) -> bool:
        code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
        return code in ("404", "NoSuchKey", "NotFound")

    def _info(self, key: str, size: int, etag: Optional[str], updated: Any, version: Optional[str] = None) -> ObjectInfo:
        return ObjectInfo(uri=self.uri(key), size=int(size), etag=(etag or "").strip('"') or None,
                          updated=_iso(updated), generation=version)

    def stat(self, key: str) -> Optional[ObjectInfo]:
        try:
            h = self._client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if self._missing(exc):
                return None
            raise
        return self._info(key, h["ContentLength"], h.get("ETag"), h.get("LastModified"), h.get("VersionId"))

    def list(self, prefix: str, limit: Optional[int] = None) -> list[ObjectInfo]:
        out = []
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, PaginationConfig={"MaxItems": limit} if limit else {})
        for page in pages:
            out += [self._info(o["Key"], o["Size"], o.get("ETag"), o.get("LastModified")) for o in page.get("Contents", [])]
        return sorted(out, key=lambda i: i.uri)

    def _get(self, key: str, path: Path) -> None:
        self._client.download_file(self.bucket, key, str(path))

    def _put(self, path: Path, key: str) -> None:
        self._client.upload_file(str(path), self.bucket, key)

    def _copy(self, src_key: str, dst_key: str) -> None:
        self._client.copy({"Bucket": self.bucket, "Key": src_key}, self.bucket, dst_key)  # multipart above 8 MB

    def delete(self, key: str) -> None:
        self._client.delete_object(Bucket=self.bucket, Key=key)


class GcsStore(ObjectStore):
    """A bucket behind a saved ``GcsBucket`` block (GCS, or an emulator via ``STORAGE_EMULATOR_HOST``)."""

    scheme = "gs"

    def __init__(self, block: Any, block_name: str = ""):
        self.bucket = block.bucket
        self.block_name = block_name
        self._credentials = block.gcp_credentials
        self._local = threading.local()  # one client per thread

    def _bucket(self):
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._credentials.get_cloud_storage_client()
        return client.bucket(self.bucket)

    def _info(self, blob: Any) -> ObjectInfo:
        return ObjectInfo(uri=self.uri(blob.name), size=int(blob.size or 0), etag=blob.etag, md5=blob.md5_hash,
                          crc32c=blob.crc32c, generation=str(blob.generation) if blob.generation else None,
                          updated=_iso(blob.updated))

    def stat(self, key: str) -> Optional[ObjectInfo]:
        blob = self._bucket().get_blob(key)
        return None if blob is None else self._info(blob)

    def list(self, prefix: str, limit: Optional[int] = None) -> list[ObjectInfo]:
        bucket = self._bucket()
        blobs = bucket.client.list_blobs(bucket, prefix=prefix, max_results=limit)
        return sorted((self._info(b) for b in blobs), key=lambda i: i.uri)

    def _get(self, key: str, path: Path) -> None:
        self._bucket().blob(key).download_to_filename(str(path))

    def _put(self, path: Path, key: str) -> None:
        self._bucket().blob(key).upload_from_filename(str(path))

    def _copy(self, src_key: str, dst_key: str) -> None:
        bucket = self._bucket()
        src, dst = bucket.blob(src_key), bucket.blob(dst_key)
        token, _, _ = dst.rewrite(src)
        while token is not None:  # big objects are rewritten in several calls
            token, _, _ = dst.rewrite(src, token=token)

    def delete(self, key: str) -> None:
        from google.api_core.exceptions import NotFound

        with contextlib.suppress(NotFound):
            self._bucket().blob(key).delete()


class LocalStore(ObjectStore):
    """A local folder: plain paths (rooted at ``/``), or a bucket prefix served by a saved
    ``LocalFileSystem`` block (``key_prefix`` of the URI maps onto ``root``)."""

    def __init__(self, root: Union[str, Path], scheme: str = "", bucket: str = "", key_prefix: str = "", block_name: str = ""):
        self.root = Path(root)
        self.scheme, self.bucket, self.block_name = scheme, bucket, block_name
        self.key_prefix = key_prefix.strip("/")

    def uri(self, key: str) -> str:
        return U.make(self.scheme, self.bucket, key) if self.scheme else str(self.root / key)

    def _inside(self, key: str) -> bool:
        kp = self.key_prefix
        return not kp or key == kp or key.startswith(kp + "/")

    def path(self, key: str) -> Path:
        if not self._inside(key):
            raise StorageError(f"{self.uri(key)} is outside {self.uri(self.key_prefix)} (block {self.block_name!r})")
        return self.root / key[len(self.key_prefix):].lstrip("/")

    def _key(self, p: Path) -> str:
        rel = p.relative_to(self.root).as_posix()
        return f"{self.key_prefix}/{rel}" if self.key_prefix else rel

    def _local_info(self, key: str, p: Path) -> ObjectInfo:
        st = p.stat()
        return ObjectInfo(uri=self.uri(key), size=st.st_size, updated=str(st.st_mtime_ns), local_path=str(p))

    def stat(self, key: str) -> Optional[ObjectInfo]:
        p = self.path(key)
        return self._local_info(key, p) if p.is_file() else None

    def list(self, prefix: str, limit: Optional[int] = None) -> list[ObjectInfo]:
        if not self._inside(prefix):
            return []
        rel_prefix = prefix[len(self.key_prefix):].lstrip("/")
        top = self.root / rel_prefix.rpartition("/")[0]
        if not top.is_dir():
            return []
        out = []
        for p in sorted(top.rglob("*")):
            if p.is_file() and (key := self._key(p)).startswith(prefix):
                out.append(self._local_info(key, p))
                if limit and len(out) >= limit:
                    break
        return out

    def key_of(self, info: ObjectInfo) -> str:
        return U.split(info.uri)[2] if self.scheme else Path(info.uri).relative_to(self.root).as_posix()

    def _get(self, key: str, path: Path) -> None:
        shutil.copyfile(self.path(key), path)

    def _put(self, path: Path, key: str) -> None:
        dst = self.path(key)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dst)

    def _copy(self, src_key: str, dst_key: str) -> None:
        os.replace(self.path(src_key), self.path(dst_key))  # a rename: atomic on one file system

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)


# ------------------------------------------------------------------ resolution
_STORAGE_BLOCKS: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("dvtrain_storage_blocks", default={})
_CACHE: dict[tuple, tuple[float, ObjectStore]] = {}
_CACHE_LOCK = threading.Lock()
CACHE_SECONDS = 60.0


def use_storage_blocks(mapping: Optional[dict[str, str]]) -> None:
    """Make ``{uri prefix: block name}`` the explicit mapping for this flow run (its tasks
    inherit it). Buckets it does not name are looked up by bucket name."""
    _STORAGE_BLOCKS.set(dict(mapping or {}))


def current_storage_blocks() -> dict[str, str]:
    return _STORAGE_BLOCKS.get()


def clear_cache() -> None:
    """Forget resolved blocks (they are otherwise reused for ``CACHE_SECONDS``)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _bucket_types() -> dict[str, tuple[type, str]]:
    """scheme -> (block class, field naming the bucket)."""
    from prefect_aws import S3Bucket
    from prefect_gcp.cloud_storage import GcsBucket

    return {"s3": (S3Bucket, "bucket_name"), "gs": (GcsBucket, "bucket")}


def _how_to_create(scheme: str, bucket: str) -> str:
    if scheme == "s3":
        return (f"save an S3 Bucket block with bucket_name={bucket!r} (prefect_aws: S3Bucket(bucket_name={bucket!r}, "
                "credentials=AwsCredentials(...)).save(NAME), or the UI's Blocks page)")
    return (f"save a GCS Bucket block with bucket={bucket!r} (prefect_gcp: GcsBucket(bucket={bucket!r}, "
            "gcp_credentials=GcpCredentials(...)).save(NAME), or the UI's Blocks page)")


def _store_from_block(block: Any, name: str, location: str, prefix: str) -> ObjectStore:
    from prefect.filesystems import LocalFileSystem

    scheme, bucket, _ = U.split(location)
    bucket_types = _bucket_types()
    if isinstance(block, LocalFileSystem):
        return LocalStore(block.basepath or ".", scheme, bucket, key_prefix=U.split(prefix)[2], block_name=name)
    cls, field = bucket_types.get(scheme, (None, None))
    if cls is None or not isinstance(block, cls):
        raise StorageError(f"{location}: block {name!r} is a {type(block).__name__}, not a {cls.__name__ if cls else 'storage'} block")
    if getattr(block, field) != bucket:
        raise StorageError(f"{location}: block {name!r} is for bucket {getattr(block, field)!r}, not {bucket!r}")
    return S3Store(block, name) if scheme == "s3" else GcsStore(block, name)


def _find_block_by_bucket(scheme: str, bucket: str, location: str) -> tuple[Any, str]:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    cls, field = _bucket_types()[scheme]
    try:
        with get_client(sync_client=True) as client:
            docs = client.read_block_documents_by_type(cls.get_block_type_slug(), include_secrets=False)
    except ObjectNotFound:  # block type not registered on this server
        docs = []
    names = sorted(d.name for d in docs if not d.is_anonymous and d.name and (d.data or {}).get(field) == bucket)
    if not names:
        raise StorageError(f"no storage block for {location}: {_how_to_create(scheme, bucket)}, "
                           f"or map {U.make(scheme, bucket)!r} to a block in storage_blocks")
    if len(names) > 1:
        raise StorageError(f"{location}: several {cls.__name__} blocks are for bucket {bucket!r} "
                           f"({', '.join(names)}); name one in storage_blocks")
    return cls.load(names[0], _sync=True), names[0]


def resolve(location: str, storage_blocks: Optional[dict[str, str]] = None) -> tuple[ObjectStore, str]:
    """The store serving a location and the key inside it.

    Local paths and ``file://`` URIs give a :class:`LocalStore` rooted at ``/``.
    ``storage_blocks`` defaults to the mapping made current by :func:`use_storage_blocks`.
    """
    if not U.is_remote(location):
        p = U.to_path(location).resolve()
        return LocalStore("/"), p.as_posix().lstrip("/")
    scheme, bucket, key = U.split(location)
    if scheme not in U.REMOTE_SCHEMES:
        raise StorageError(f"{location}: unsupported URI scheme {scheme!r} (use s3:// or gs://)")
    mapping = current_storage_blocks() if storage_blocks is None else storage_blocks
    matches = [p for p in mapping if location == p.rstrip("/") or location.startswith(p.rstrip("/") + "/")]
    prefix = max(matches, key=len) if matches else None
    cache_key = (scheme, bucket, prefix, mapping.get(prefix) if prefix else None)
    now = time.monotonic()
    with _CACHE_LOCK:
        hit = _CACHE.get(cache_key)
    if hit is not None and now - hit[0] < CACHE_SECONDS:
        return hit[1], key
    if prefix is not None:
        name = mapping[prefix]
        try:
            block = Block.load(name, _sync=True) if "/" in name else _bucket_types()[scheme][0].load(name, _sync=True)
        except ValueError as exc:
            raise StorageError(f"{location}: storage block {name!r} (storage_blocks[{prefix!r}]) cannot be loaded: "
                               f"{str(exc).splitlines()[0]}") from None
        store = _store_from_block(block, name, location, prefix)
    else:
        block, name = _find_block_by_bucket(scheme, bucket, location)
        store = _store_from_block(block, name, location, U.make(scheme, bucket))
    with _CACHE_LOCK:
        _CACHE[cache_key] = (now, store)
    return store, key


# ------------------------------------------------------------------ location-level helpers
def stat(location: Union[str, Path]) -> Optional[ObjectInfo]:
    store, key = resolve(U.text(location) if not U.is_remote(location) else location)  # type: ignore[arg-type]
    return store.stat(key)


def exists(location: Union[str, Path]) -> bool:
    if not U.is_remote(location):
        return U.to_path(location).exists()
    return stat(location) is not None


def read_bytes(location: Union[str, Path]) -> bytes:
    if not U.is_remote(location):
        return U.to_path(location).read_bytes()
    store, key = resolve(location)  # type: ignore[arg-type]
    return store.read_bytes(key)


def download(location: str, path: Union[str, Path]) -> ObjectInfo:
    store, key = resolve(location)
    return store.download(key, path)


def upload(path: Union[str, Path], location: Union[str, Path]) -> ObjectInfo:
    store, key = resolve(U.text(location))
    return store.upload(path, key)


def list_files(location: Union[str, Path]) -> list[str]:
    """Relative paths of the files under a folder / URI prefix (temporary uploads excluded)."""
    text = U.text(location).rstrip("/")
    store, key = resolve(text)
    prefix = key.rstrip("/") + "/" if key else ""
    rels = [store.key_of(i)[len(prefix):] for i in store.list(prefix)]
    return sorted(r for r in rels if TEMP_MARK not in r.rsplit("/", 1)[-1])


def copy(src: Union[str, Path], dst: Union[str, Path]) -> None:
    """Copy one file between any two locations (the destination is written atomically)."""
    if not U.is_remote(src):
        upload(U.to_path(src), dst)
        return
    with tempfile.TemporaryDirectory(prefix="dvtrain-copy-") as tmp:
        local = Path(tmp) / U.name(src)
        download(src, local)  # type: ignore[arg-type]
        upload(local, dst)


class DvtrainStorage(Block):
    """Where dvtrain publishes case-study results: a folder or a bucket prefix."""

    _block_type_name = "dvtrain Storage"
    _description = ("Where dvtrain publishes case-study results: a local folder, s3://bucket/prefix or "
                    "gs://bucket/prefix (served by the saved S3 Bucket / GCS Bucket block of that bucket)")

    basepath: str = Field(description="local folder, file://, s3://bucket/prefix or gs://bucket/prefix",
                          examples=["s3://my-bucket/dvtrain", "/shared/dvtrain"])
    exclude: list[str] = Field(default_factory=lambda: list(DEFAULT_EXCLUDE), description="glob patterns (relative paths) not to publish")

    @property
    def is_remote(self) -> bool:
        return U.is_remote(self.basepath)

    def url(self, subpath: str = "") -> str:
        """``basepath/subpath``; a subpath that would climb out of basepath is refused."""
        if any(part in ("..", ".") for part in subpath.replace("\\", "/").split("/")):
            raise StorageError(f"{subpath!r}: a folder under {self.basepath} may not contain '..' or '.' components")
        return f"{self.basepath.rstrip('/')}/{subpath.strip('/')}" if subpath else self.basepath

    def publish(self, workdir: Union[str, Path], subpath: str) -> list[str]:
        """Copy ``workdir`` (a folder or URI prefix; minus ``exclude``) under ``basepath/subpath``,
        file by file, each atomically. Returns the relative paths copied."""
        copied = []
        for rel in list_files(workdir):
            if any(fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch("/" + rel, pat) for pat in self.exclude):
                continue
            copy(U.join(workdir, rel), U.join(self.url(subpath), rel))
            copied.append(rel)
        return copied

    def fetch(self, subpath: str, local_dir: Union[str, Path]) -> None:
        """Download ``basepath/subpath`` into ``local_dir``."""
        src = self.url(subpath)
        for rel in list_files(src):
            copy(U.join(src, rel), Path(local_dir) / rel)


def register() -> None:
    """Register dvtrain's block types and those of prefect-aws and prefect-gcp (S3 Bucket,
    AWS Credentials, GCS Bucket, GCP Credentials, ...) with the current Prefect API, so the
    UI can create them. Equivalent CLI: ``prefect block register -m blocks`` plus
    ``-m prefect_aws`` and ``-m prefect_gcp``."""
    import prefect_aws
    import prefect_gcp
    from prefect.blocks.core import InvalidBlockRegistration

    DvtrainStorage.register_type_and_schema(_sync=True)
    for module in (prefect_aws, prefect_gcp):
        for _, cls in inspect.getmembers(module):
            if cls is not None and Block.is_block_class(cls):
                with contextlib.suppress(InvalidBlockRegistration):
                    cls.register_type_and_schema(_sync=True)
