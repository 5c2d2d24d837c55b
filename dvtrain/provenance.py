"""provenance.json: what a case-study run was made of, so that it can be made again.

Recorded: the config (as run), the seed, a content digest of every input file (streamed,
size + BLAKE2b, with its index companions), the versions of the external tools the run
may call (bcftools, freebayes, bedtools, docker, apptainer: whichever are installed), of
Python, and of every installed Python distribution, plus dvtrain's git commit when run
from a checkout. No clock time is recorded, so the same run gives the same file.
"""

from __future__ import annotations

import json
import platform
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Optional

from . import __version__
from .config import CaseStudyConfig
from .fileio import atomic_output, content_key, index_companions
from .tools import run_program
from .uri import is_remote

TOOLS = {  # binary -> arguments that print its version
    "bcftools": ["--version"], "freebayes": ["--version"], "bedtools": ["--version"],
    "samtools": ["--version"], "docker": ["--version"], "apptainer": ["--version"],
}
#: seconds a tool gets to print its version before it is recorded as not answering
TOOL_TIMEOUT_S = 20.0


def tool_versions() -> dict[str, Optional[str]]:
    """First line of each installed tool's version output; None when it is not installed.

    Whatever a tool does (odd bytes, a hang, a crash) is recorded, never raised: provenance
    must not fail a run."""
    out: dict[str, Optional[str]] = {}
    for tool, args in TOOLS.items():
        result = run_program([tool, *args], timeout=TOOL_TIMEOUT_S)
        out[tool] = None if result.problem == "not installed" else \
            result.first_line() if result.returncode is not None else f"unavailable ({result.problem})"
    return out


def package_versions() -> dict[str, str]:
    """Every installed Python distribution (name, lower-cased) -> version."""
    found = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found[re.sub(r"[-_.]+", "-", name).lower()] = dist.version
    return dict(sorted(found.items()))


def git_commit(path: Path = Path(__file__).resolve().parents[1]) -> Optional[str]:
    """dvtrain's commit when it runs from a git checkout (with '+dirty' for local changes)."""
    if not (path / ".git").exists():
        return None
    head = run_program(["git", "-C", str(path), "rev-parse", "HEAD"])
    if not head.ok or not head.stdout.strip():
        return None
    dirty = run_program(["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"])
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def input_digests(config: CaseStudyConfig) -> dict[str, dict]:
    """Content digest of every local input file and its index companions; remote inputs by URI."""
    out: dict[str, dict] = {}
    for p in config.input_locations():
        key = str(p)
        if is_remote(key):
            out[key] = {"remote": True}
            continue
        path = Path(key)
        if not path.is_file():
            out[key] = {"missing": True}
            continue
        entry = {"size": path.stat().st_size, "blake2b": content_key(path)}
        for sfx, side in index_companions(path):
            entry[sfx] = content_key(side)
        out[key] = entry
    return out


def provenance(config: CaseStudyConfig) -> dict:
    return {
        "dvtrain": {"version": __version__, "git_commit": git_commit()},
        "seed": config.seed,
        "config": config.model_dump(mode="json"),
        "inputs": input_digests(config),
        "python": {"version": sys.version.split()[0], "implementation": platform.python_implementation()},
        "platform": {"system": platform.system(), "machine": platform.machine()},
        "tools": tool_versions(),
        "packages": package_versions(),
    }


def write_provenance(config: CaseStudyConfig, path: str | Path) -> dict:
    """Write ``provenance(config)`` to ``path`` (atomically; an identical file is left
    untouched, so a re-run of the same inputs changes nothing); returns it."""
    data = provenance(config)
    text = json.dumps(data, indent=1, sort_keys=True) + "\n"
    p = Path(path)
    if not (p.is_file() and p.read_text() == text):
        with atomic_output(p) as tmp:
            tmp.write_text(text)
    return data
