"""A content-keyed Prefect cache policy for tasks whose inputs are files.

Why not Prefect's built-ins: ``INPUTS`` keys a ``Path`` by its string (edit a BAM in place
and the cache still hits), and ``file_hash`` reads a whole file into memory.

The key of one task run is a hash of

* every input, with pydantic configs expanded via ``model_dump()``. Any value that names an
  existing file (a ``Path``, a ``str``, a ``NAME@N`` shard spec or a glob) is replaced by
  its content digest (:func:`dvtrain.fileio.content_key`, streamed and memoised) plus the
  digests of its companion indexes (.bai/.tbi/.csi/.fai/.crai/.gzi) and, for a
  ``*.pbtxt`` dataset config, of the TFRecords it lists. Input *paths* don't matter: an
  identical copy elsewhere gives the same key;
* the fields named in ``outputs``, keyed by their absolute path string and never by
  content (they exist after the first run; hashing them would change the key). Two calls
  whose inputs have identical content therefore share a key only if they write to the
  same place: a hit elsewhere would hand back a result pointing at someone else's files;
* the task's source (``TASK_SOURCE``) and the source of the wrapped ``dvtrain`` stage
  module plus the ``dvtrain`` modules it imports, transitively.

Deleted outputs. A cache hit never runs the task body, so the task itself cannot notice
that its outputs are gone (and ``refresh_cache`` is fixed before the key is computed).
Instead, before handing Prefect a key, the policy reads the record already stored under
it: if any file that the cached result points at (a ``Path`` or an absolute path string
anywhere in the result) or any of the policy's ``must_exist`` files no longer exists, the
record is stale and the policy moves on to ``KEY-1``, ``KEY-2``, ... until it finds a
free or valid slot. The task then re-runs and writes the files again; as the output paths
are part of the key, they are the same paths, so the original record is valid again next
time. (A changed, rather than deleted, output is not detected: downstream tasks key on its
content, so they do re-run, but this task's cached result is served as is.)
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Callable, Optional

from prefect.cache_policies import TASK_SOURCE, CachePolicy
from prefect.context import TaskRunContext
from prefect.results import get_result_store
from prefect.utilities.hashing import hash_objects
from pydantic import BaseModel

from dvtrain.fileio import content_key, index_companions, sharded_paths
from dvtrain.uri import REMOTE_SCHEMES, is_remote, scheme

from .staging import TFRECORD_PATH, remote_digest, remote_exists


def file_digest(path: str | Path) -> dict:
    """Content digest of one file, its companion indexes and (pbtxt) listed TFRecords."""
    p = Path(path)
    out: dict[str, Any] = {"content": content_key(p)}
    for sfx, idx in index_companions(p):
        out[sfx] = content_key(idx)
    if p.name.endswith(".pbtxt"):
        refs = []
        for m in TFRECORD_PATH.finditer(p.read_text(errors="replace")):
            pattern = m.group(2)
            if not os.path.isabs(pattern):
                pattern = str(p.parent / pattern)
            refs.extend(content_key(f) for f in sharded_paths(pattern) if os.path.isfile(f))
        out["tfrecords"] = refs
    return out


def _files_named_by(value: str) -> Optional[list[str]]:
    """The existing files a string names (a path, a shard spec or a glob), else None."""
    if not value or len(value) > 4096 or "\x00" in value or "\n" in value:
        return None
    try:
        if os.path.isfile(value):
            return [value]
        if "@" in value or any(ch in value for ch in "*?["):
            paths = sharded_paths(value)
            if paths and all(os.path.isfile(p) for p in paths):
                return paths
    except (OSError, ValueError):
        pass
    return None


def fingerprint(value: Any, outputs: frozenset[str] = frozenset(), _field: str | None = None) -> Any:
    """A JSON-able stand-in for ``value`` in which files are replaced by their content."""
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, dict):
        return {str(k): fingerprint(v, outputs, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [fingerprint(v, outputs, _field) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((fingerprint(v, outputs, _field) for v in value), key=repr)
    if _field in outputs and isinstance(value, (str, PurePath)):
        return {"output": value if is_remote(value) else os.path.abspath(str(value))}
    if is_remote(value) and scheme(value) in REMOTE_SCHEMES:  # s3:// gs://: object metadata (size + ETag/md5/crc32c)
        # (other URLs, e.g. the https:// one dv_config.py may come from, are plain strings)
        digest = remote_digest(value)
        return {"remote": digest} if digest is not None else value
    if isinstance(value, (str, PurePath)):
        files = _files_named_by(str(value))
        if files is not None:
            return {"files": [file_digest(f) for f in files]}
        return str(value)
    return value


def _source(name: str) -> Optional[Path]:
    """The .py file of a module, found without importing it (no TensorFlow for a key)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec and spec.origin and spec.origin.endswith(".py") else None


def dvtrain_modules(name: str) -> dict[str, Path]:
    """``name`` and every ``dvtrain`` module its source imports, transitively.

    Import statements are read from the source (``ast``), so imports inside functions
    (``from .model import load_model`` in ``train()``) count too.
    """
    found: dict[str, Path] = {}
    todo = [name]
    while todo:
        mod = todo.pop()
        path = _source(mod)
        if mod in found or path is None:
            continue
        found[mod] = path
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_bytes())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) if node.level else node.module or ""
                targets = [base]
                base_path = _source(base) if base.split(".")[0] == "dvtrain" else None
                if base_path is not None and base_path.name == "__init__.py":  # `from . import fileio`
                    targets += [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            todo += [t for t in targets if t.split(".")[0] == "dvtrain" and t not in found]
    return found


_MODULE_DIGESTS: dict[str, str] = {}
# Shards key concurrently, and CPython 3.11's ast.parse is not thread-safe ("AST constructor
# recursion depth mismatch"): one thread computes a digest, the others wait for it.
_MODULE_DIGEST_LOCK = threading.Lock()


def module_digest(name: str) -> str:
    """Hash of the source of :func:`dvtrain_modules` (memoised: a process runs one version)."""
    with _MODULE_DIGEST_LOCK:
        if name not in _MODULE_DIGESTS:
            h = hashlib.blake2b(digest_size=16)
            for mod, path in sorted(dvtrain_modules(name).items()):
                h.update(mod.encode() + b"\0" + path.read_bytes() + b"\0")
            _MODULE_DIGESTS[name] = h.hexdigest()
        return _MODULE_DIGESTS[name]


def referenced_paths(result: Any) -> list[str]:
    """Files a task result points at: ``Path`` values and absolute path strings."""
    found: list[str] = []
    if isinstance(result, dict):
        for v in result.values():
            found += referenced_paths(v)
    elif isinstance(result, (list, tuple, set)):
        for v in result:
            found += referenced_paths(v)
    elif isinstance(result, PurePath) or (isinstance(result, str) and (os.path.isabs(result) or is_remote(result)) and "\n" not in result):
        found.append(str(result))
    return found


def missing_paths(result: Any) -> list[str]:
    """Referenced paths that no longer exist (shard specs and globs are expanded)."""
    missing = []
    for p in referenced_paths(result):
        if os.path.exists(p) or (is_remote(p) and remote_exists(p)):
            continue
        expanded = sharded_paths(p) if ("@" in p or any(c in p for c in "*?[")) else []
        if not expanded or not all(os.path.exists(x) for x in expanded):
            missing.append(p)
    return missing


@dataclass
class FileContentInputs(CachePolicy):
    """Content-keyed inputs + output paths + task/stage source; skips stale records.

    outputs: names of config fields (at any depth) or task parameters that are outputs.
    stage: dotted module of the wrapped ``dvtrain`` stage, e.g. ``"dvtrain.coverage"``.
    must_exist: for outputs the result does not name: ``inputs -> paths`` that a valid
        record needs (e.g. evaluate's ``PREFIX.summary.csv``).
    """

    outputs: tuple[str, ...] = ()
    stage: Optional[str] = None
    must_exist: Optional[Callable[[dict[str, Any]], list]] = None
    max_generations: int = 16

    def base_key(self, task_ctx: Optional[TaskRunContext], inputs: dict[str, Any], flow_parameters: dict[str, Any]) -> str:
        return hash_objects(
            fingerprint(inputs or {}, frozenset(self.outputs)),
            TASK_SOURCE.compute_key(task_ctx, inputs, flow_parameters) if task_ctx else None,
            module_digest(self.stage) if self.stage else None,
            raise_on_failure=True,
        )

    def compute_key(self, task_ctx: TaskRunContext, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs: Any) -> Optional[str]:
        base = self.base_key(task_ctx, inputs, flow_parameters)
        store = get_result_store()
        for generation in range(self.max_generations):
            key = base if generation == 0 else f"{base}-{generation}"
            if not store.exists(key):
                return key
            try:
                missing = missing_paths(store.read(key).result)
                if self.must_exist is not None:
                    missing += [str(p) for p in self.must_exist(inputs)
                                if not (os.path.exists(p) or (is_remote(p) and remote_exists(p)))]
            except Exception as exc:  # unreadable record: treat as stale
                missing = [f"<unreadable record: {exc}>"]
            if not missing:
                return key
            _warn(f"cached result {key} is stale (missing: {', '.join(missing[:3])}); recomputing")
        return None  # give up caching for this run rather than loop forever


def _warn(msg: str) -> None:
    from prefect.logging import get_logger, get_run_logger

    try:
        get_run_logger().warning(msg)
    except Exception:
        get_logger("dvtrain.cache").warning(msg)

