"""Run a stage on remote inputs/outputs: stage in to local scratch, run, upload, map back.

The stages (``dvtrain.*``) read and write local files only. A task whose config names
``s3://`` / ``gs://`` locations runs its stage through :func:`staged`:

* every remote *input* (any field not named in ``outputs``) is downloaded into the
  scratch cache ``$DVTRAIN_SCRATCH/objects/<scheme>/<bucket>/<key>`` together with its
  companions (``.bai .csi .tbi .fai .crai .gzi`` indexes, ``.example_info.json``); a shard
  spec ``NAME@N.gz`` or a glob brings every file it names, and a ``*.pbtxt`` dataset config
  brings the TFRecords its ``tfrecord_path`` lists (the local copy points at the local
  shards). A download is reused while the object's size and ETag/generation are unchanged;
* every remote *output* is replaced by a path in a fresh per-run folder
  ``$DVTRAIN_SCRATCH/out/<id>/<scheme>/<bucket>/<key>``;
* after the stage succeeds, every file written there (outputs, indexes, shards, info files)
  is uploaded to the matching key, each through a temporary key (see ``blocks.storage``);
  companions and shards go before the files that point at them. Paths in the result (and
  in uploaded ``.pbtxt``/``.json`` files) are mapped back to URIs.

Local paths pass through untouched: a config without remote locations runs the stage
directly. ``DVTRAIN_SCRATCH`` defaults to a folder in the system temp dir; the download
cache is kept under ``DVTRAIN_SCRATCH_LIMIT`` (``dvtrain.scratch``; ``dvtrain clean`` empties it).
"""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import json
import os
import re
import shutil
import uuid
from pathlib import Path, PurePath
from typing import Any, Callable, Iterable, Optional, TypeVar, Union

from pydantic import BaseModel

from dvtrain import scratch
from dvtrain import uri as U
from dvtrain.errors import DvtrainError, InputError
from dvtrain.fileio import INDEX_SUFFIXES, sharded_paths

COMPANION_SUFFIXES = INDEX_SUFFIXES + (".example_info.json",)
#: a dataset_config.pbtxt's ``tfrecord_path: "..."`` line; group 2 is the path
TFRECORD_PATH = re.compile(r'^(\s*tfrecord_path\s*:\s*")([^"]+)(")', re.M)
_REWRITE_SUFFIXES = (".pbtxt", ".json")

T = TypeVar("T")


def scratch_root() -> Path:
    return scratch.root()


def has_remote(value: Any) -> bool:
    """Does ``value`` (a config, dict, list, string) name any remote location?"""
    if isinstance(value, BaseModel):
        return any(has_remote(getattr(value, f)) for f in type(value).model_fields)
    if isinstance(value, dict):
        return any(has_remote(v) for v in value.values())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(has_remote(v) for v in value)
    return U.is_remote(value)


def _is_pattern(key: str) -> bool:
    return "@" in key.rsplit("/", 1)[-1] or any(c in key for c in "*?[")


def _companions(key: str) -> set[str]:
    out = {key + s for s in COMPANION_SUFFIXES}
    head, _, name = key.rpartition("/")
    if "." in name:
        stem = name.rsplit(".", 1)[0]
        out |= {f"{head}/{stem}{s}" if head else f"{stem}{s}" for s in INDEX_SUFFIXES}
    return out - {key}


class _Lister:
    """Prefix listings of one staging/keying pass, reused for narrower prefixes."""

    def __init__(self) -> None:
        self._listings: dict[tuple[int, str], list] = {}

    def under(self, store, prefix: str) -> list:
        for (sid, p), infos in self._listings.items():
            if sid == id(store) and prefix.startswith(p):
                return [i for i in infos if store.key_of(i).startswith(prefix)]
        infos = store.list(prefix)
        self._listings[(id(store), prefix)] = infos
        return infos

    def stat(self, store, key: str):
        head, _, name = key.rpartition("/")
        stem = name.split(".", 1)[0] if name else name
        prefix = f"{head}/{stem}" if head else stem
        return next((i for i in self.under(store, prefix) if store.key_of(i) == key), None)


def _expand(store, key: str, lister: _Lister) -> list:
    """ObjectInfos a key names: one object, every shard of ``NAME@N``, or a glob's matches."""
    if _is_pattern(key):
        names = sharded_paths(key) if "@" in key.rsplit("/", 1)[-1] else None
        head = re.split(r"[*?\[@]", key, maxsplit=1)[0]
        infos = lister.under(store, head)
        if names is not None and names != [key]:
            by_key = {store.key_of(i): i for i in infos}
            found = [by_key.get(n) for n in names]
            return found if all(found) else []
        return [i for i in infos if fnmatch.fnmatchcase(store.key_of(i), key)]
    info = lister.stat(store, key)
    return [info] if info is not None else []


def _with_companions(store, infos: list, lister: _Lister) -> list:
    out = list(infos)
    for info in infos:
        key = store.key_of(info)
        wanted = _companions(key)
        head = key.rpartition("/")[0]
        stem = key.rsplit("/", 1)[-1].split(".", 1)[0]
        out += [i for i in lister.under(store, f"{head}/{stem}" if head else stem) if store.key_of(i) in wanted]
    return out


def _pbtxt_pattern(text: str) -> Optional[str]:
    m = TFRECORD_PATH.search(text)
    return m.group(2) if m else None


def _resolve_relative(location: str, pattern: str) -> str:
    if U.scheme(pattern) or os.path.isabs(pattern):
        return pattern
    s, bucket, key = U.split(location)
    return U.make(s, bucket, f"{key.rpartition('/')[0]}/{pattern}".lstrip("/"))


# ------------------------------------------------------------------ cache keys (no download)
def remote_digest(location: str, _lister: Optional[_Lister] = None) -> Optional[dict]:
    """Cache-key stand-in for a remote location from object metadata only: size + content
    hash of every object it names, of their companions and (``*.pbtxt``) of the TFRecords
    listed inside (the small pbtxt itself is read). None if nothing exists there."""
    from blocks.storage import resolve

    lister = _lister or _Lister()
    store, key = resolve(location)
    infos = _expand(store, key, lister)
    if not infos:
        return None
    files = []
    for info in infos:
        entry: dict[str, Any] = {"object": info.digest()}
        for comp in _with_companions(store, [info], lister)[1:]:
            entry[store.key_of(comp)[len(store.key_of(info)):] or "companion"] = comp.digest()
        if store.key_of(info).endswith(".pbtxt"):
            pattern = _pbtxt_pattern(store.read_bytes(store.key_of(info)).decode(errors="replace"))
            if pattern:
                target = _resolve_relative(info.uri, pattern)
                entry["tfrecords"] = (remote_digest(target, lister) if U.is_remote(target) else pattern)
        files.append(entry)
    return {"files": files}


def remote_exists(location: str) -> bool:
    """Does every object a remote location names (shards of a spec included) exist?
    A "folder" (a prefix of other keys, like a workdir) exists when it holds an object."""
    from blocks.storage import resolve

    store, key = resolve(location)
    lister = _Lister()
    if _expand(store, key, lister):
        return True
    return not _is_pattern(key) and bool(store.list(key.rstrip("/") + "/" if key else "", limit=1))


# ------------------------------------------------------------------ staging
def _raise_open_files_limit() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft != resource.RLIM_INFINITY and soft < want:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class Staging:
    """One stage run's scratch: downloads (shared cache) and a private output folder."""

    def __init__(self) -> None:
        self.root = scratch_root()
        self.objects = self.root / "objects"
        self.meta = self.root / "meta"
        self.out = self.root / "out" / uuid.uuid4().hex
        self._lister = _Lister()
        self._pins: dict[Path, Any] = {}  # .pin file -> open file holding a shared lock while the stage runs
        self._out_lock: Any = None
        _raise_open_files_limit()  # one open pin per input file (a sharded dataset has hundreds)

    # -- paths
    def _cache_path(self, location: str) -> Path:
        s, bucket, key = U.split(location)
        return self.objects / s / bucket / key

    def _out_path(self, location: str) -> Path:
        s, bucket, key = U.split(location)
        return self.out / s / bucket / key

    # -- inputs
    def _fetch(self, store, info) -> Path:
        """Download one object into the cache unless the cached copy is this version. The
        object is pinned (a shared lock on its ``.pin`` file) until :meth:`cleanup`, so that
        pruning leaves it; downloads serialise on its ``.lock`` file."""
        local = self._cache_path(info.uri)
        meta = self.meta / local.relative_to(self.objects)
        meta = meta.with_name(meta.name + ".json")
        meta.parent.mkdir(parents=True, exist_ok=True)
        pin_path = meta.with_name(meta.name + ".pin")
        if pin_path not in self._pins:
            pin = open(pin_path, "a")
            fcntl.flock(pin, fcntl.LOCK_SH)
            self._pins[pin_path] = pin
        with open(meta.with_name(meta.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if local.is_file() and meta.is_file() and json.loads(meta.read_text()).get("version") == list(info.version):
                    os.utime(meta)  # its last use, for pruning
                    return local
            except (OSError, ValueError):
                pass
            got = store.download(store.key_of(info), local)
            meta.write_text(json.dumps({"uri": info.uri, "version": list(got.version)}))
        return local

    def input(self, location: str) -> str:
        """Local stand-in for a remote input (same spec/glob form); downloads what it names."""
        from blocks.storage import resolve

        store, key = resolve(location)
        infos = _expand(store, key, self._lister)
        if not infos:
            raise InputError(location, "does not exist" if not _is_pattern(key) else "no objects match")
        for info in _with_companions(store, infos, self._lister):
            local = self._fetch(store, info)
            if local.name.endswith(".pbtxt"):
                self._localize_pbtxt(info.uri, local)
        return str(self._cache_path(location))

    def _localize_pbtxt(self, location: str, local: Path) -> None:
        text = local.read_text(errors="replace")
        pattern = _pbtxt_pattern(text)
        if not pattern or not (U.is_remote(pattern) or not os.path.isabs(pattern)):
            return  # an absolute local path: the pbtxt was written for this machine
        target = _resolve_relative(location, pattern)
        if not U.is_remote(target):
            return
        local_pattern = self.input(target)
        with contextlib.suppress(OSError):
            local.write_text(TFRECORD_PATH.sub(lambda m: m.group(1) + local_pattern + m.group(3), text, count=1))

    # -- outputs
    def output(self, location: str) -> str:
        if self._out_lock is None:  # held while the stage runs: `dvtrain clean` leaves the folder
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self._out_lock = open(self.out.with_name(self.out.name + ".lock"), "a")
            fcntl.flock(self._out_lock, fcntl.LOCK_SH)
        path = self._out_path(location)
        path.parent.mkdir(parents=True, exist_ok=True)
        return str(path)

    def localize(self, config: T, outputs: Iterable[str] = ()) -> T:
        """``config`` with remote inputs downloaded and remote outputs moved to scratch."""
        outs = frozenset(outputs)

        def walk(value: Any, field: Optional[str]) -> Any:
            if isinstance(value, dict):
                return {k: walk(v, str(k)) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return type(value)(walk(v, field) for v in value)
            if U.is_remote(value):
                return self.output(value) if field in outs else self.input(value)
            return value

        local = type(config).model_validate(walk(config.model_dump(), None)) if isinstance(config, BaseModel) \
            else walk(config, None)
        if self._pins:  # once per stage, its inputs pinned: least recently used first, never a pinned object
            scratch.prune_to_limit(self.root)
        return local

    def _to_uri(self, text: str) -> str:
        for base in (self.out, self.objects):
            b = str(base) + os.sep
            if text.startswith(b):
                s, _, rest = text[len(b):].partition(os.sep)
                bucket, _, key = rest.partition(os.sep)
                return U.make(s, bucket, key.replace(os.sep, "/"))
        return text

    def _rewrite_text(self, text: str) -> str:
        for base in (self.out, self.objects):
            for s in U.REMOTE_SCHEMES:
                text = re.sub(re.escape(f"{base}{os.sep}{s}{os.sep}") + r"([^/\"\s]+)/", lambda m: f"{s}://{m.group(1)}/", text)
        return text

    def upload_outputs(self) -> list[str]:
        """Upload every file of the output folder; returns the URIs written."""
        from blocks.storage import upload

        if not self.out.is_dir():
            return []
        files = [p for p in self.out.rglob("*") if p.is_file() and ".part" not in p.name]

        def order(p: Path) -> tuple:
            companion = any(p.name.endswith(s) for s in COMPANION_SUFFIXES)
            return (p.name.endswith(".pbtxt"), not companion, str(p))

        written = []
        for p in sorted(files, key=order):
            if p.name.endswith(_REWRITE_SUFFIXES) and p.stat().st_size < (10 << 20):
                text = p.read_text(errors="replace")
                new = self._rewrite_text(text)
                if new != text:
                    p.write_text(new)
            location = self._to_uri(str(p))
            upload(p, location)
            written.append(location)
        return written

    def remote(self, result: Any) -> Any:
        """``result`` with scratch paths mapped back to their URIs (other values unchanged)."""
        if isinstance(result, dict):
            return {k: self.remote(v) for k, v in result.items()}
        if isinstance(result, (list, tuple)):
            return type(result)(self.remote(v) for v in result)
        if isinstance(result, (str, PurePath)):
            text = str(result)
            mapped = self._to_uri(text)
            return mapped if mapped != text else result
        return result

    def cleanup(self) -> None:
        shutil.rmtree(self.out, ignore_errors=True)
        if self._out_lock is not None:
            Path(self._out_lock.name).unlink(missing_ok=True)
            self._out_lock.close()
            self._out_lock = None
        for lock in self._pins.values():
            lock.close()
        self._pins.clear()


@contextlib.contextmanager
def staging():
    """A :class:`Staging` whose private output folder is removed afterwards."""
    st = Staging()
    try:
        yield st
    finally:
        st.cleanup()


def staged(stage: Callable[[Any], Any], config: Any, outputs: Iterable[str] = ()) -> Any:
    """``stage(config)`` with remote locations staged; ``outputs`` names the output fields.

    A config with only local paths runs ``stage(config)`` as is.
    """
    if not has_remote(config):
        return stage(config)
    with staging() as st:
        result = stage(st.localize(config, outputs))
        st.upload_outputs()
        return st.remote(result)


def staged_output(write: Callable[[Union[str, Path]], Any], location: Union[str, Path]) -> Any:
    """``write(location)`` for a function whose single argument is an output folder/file."""
    if not U.is_remote(location):
        return write(location)
    with staging() as st:
        result = write(Path(st.output(location)))  # type: ignore[arg-type]
        st.upload_outputs()
        return st.remote(result)


def check_remote_inputs(locations: Iterable[Union[str, Path, None]]) -> None:
    """Pre-flight: raise InputError (one line) for the first remote input that is missing.

    Resolving also fails fast, in one line, for a bucket without a storage block."""
    from blocks.storage import describe_store_error

    for loc in locations:
        if loc is None or not U.is_remote(loc):
            continue
        try:
            found = remote_exists(loc)  # type: ignore[arg-type]
        except DvtrainError:
            raise
        except Exception as exc:  # the store said no: missing bucket, rejected credentials, ...
            raise InputError(loc, describe_store_error(exc)) from None  # type: ignore[arg-type]
        if not found:
            raise InputError(loc, "does not exist")  # type: ignore[arg-type]
