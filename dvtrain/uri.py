"""Locations of stage inputs and outputs: local paths or object-store URIs.

A *location* is a local path (``/data/x.bam``, ``file:///data/x.bam``, a ``Path``) or a
remote URI (``s3://bucket/key``, ``gs://bucket/key``). Remote URIs stay strings (``Path``
would turn ``s3://b/k`` into ``s3:/b/k``); ``file://`` URIs and plain paths become ``Path``.
No Prefect here: the Prefect layer (``blocks/``, ``tasks/staging.py``) resolves remote URIs
through saved storage blocks and stages them into local scratch before a stage runs.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path, PurePath
from typing import Union
from urllib.parse import unquote, urlsplit

REMOTE_SCHEMES = ("s3", "gs")
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")

LocationLike = Union[str, PurePath]


def scheme(x: LocationLike) -> str:
    """``"s3"``, ``"gs"``, ``"file"`` or ``""`` for a plain path."""
    if isinstance(x, PurePath):
        return ""
    m = _SCHEME.match(x)
    return m.group("scheme").lower() if m else ""


def is_remote(x: object) -> bool:
    """True for a ``scheme://`` string other than ``file://`` (not for ``Path`` objects)."""
    return isinstance(x, str) and scheme(x) not in ("", "file")


def split(uri: str) -> tuple[str, str, str]:
    """``"s3://bucket/a/b"`` -> ``("s3", "bucket", "a/b")``."""
    s = scheme(uri)
    if s in ("", "file"):
        raise ValueError(f"{uri!r} is not a remote URI (expected s3://bucket/key or gs://bucket/key)")
    rest = uri[len(s) + 3:]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise ValueError(f"{uri!r} has no bucket (expected {s}://bucket/key)")
    return s, bucket, key


def bucket_uri(uri: str) -> str:
    """``"s3://bucket/a/b"`` -> ``"s3://bucket"``."""
    s, bucket, _ = split(uri)
    return f"{s}://{bucket}"


def make(scheme_: str, bucket: str, key: str = "") -> str:
    return f"{scheme_}://{bucket}/{key.lstrip('/')}" if key else f"{scheme_}://{bucket}"


def to_path(x: LocationLike) -> Path:
    """A local location (path or ``file://`` URI) as a ``Path``; remote URIs raise ValueError."""
    if isinstance(x, PurePath):
        return Path(x)
    s = scheme(x)
    if s == "file":
        u = urlsplit(x)
        if u.netloc not in ("", "localhost"):
            raise ValueError(f"{x!r}: file:// URIs must name a local path (file:///path)")
        return Path(unquote(u.path))
    if s:
        raise ValueError(f"{x!r} is a remote URI, not a local path")
    return Path(x)


def location(x: LocationLike) -> Union[str, Path]:
    """Normalise: remote URIs stay ``str``; local paths and ``file://`` URIs become ``Path``."""
    if is_remote(x):
        s = scheme(x)  # type: ignore[arg-type]
        if s not in REMOTE_SCHEMES:
            raise ValueError(f"unsupported URI scheme {s!r} in {x!r} (use a path, file://, s3:// or gs://)")
        split(x)  # type: ignore[arg-type]  # needs a bucket
        return x  # type: ignore[return-value]
    return to_path(x)


def join(base: LocationLike, *parts: str) -> Union[str, Path]:
    """``base / part / ...`` for a local path (-> ``Path``) or a remote URI (-> ``str``)."""
    if is_remote(base):
        s, bucket, key = split(base)  # type: ignore[arg-type]
        key = posixpath.join(key, *[str(p).strip("/") for p in parts]) if parts else key
        return make(s, bucket, key)
    return to_path(base).joinpath(*parts)


def name(x: LocationLike) -> str:
    """The last path component (``s3://b/a/x.bam`` -> ``x.bam``)."""
    return posixpath.basename(x.rstrip("/")) if is_remote(x) else to_path(x).name  # type: ignore[union-attr]


def resolve(x: LocationLike) -> Union[str, Path]:
    """Absolute form: local paths are resolved, remote URIs are returned as they are."""
    return x if is_remote(x) else to_path(x).resolve()  # type: ignore[return-value]


def text(x: LocationLike) -> str:
    """A location as a string (what a log line or a result dict holds)."""
    return x if isinstance(x, str) and is_remote(x) else str(to_path(x))
