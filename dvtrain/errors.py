"""User-facing errors: one line that names the file and the problem."""

from __future__ import annotations

from pathlib import Path


class DvtrainError(Exception):
    """An error the CLI reports as a single line (no traceback), exit code 2."""


class InputError(DvtrainError):
    """A bad or missing input file."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def require_file(path: str | Path, what: str = "file") -> Path:
    """Return ``path`` as a Path, or raise InputError if it is not a readable file."""
    p = Path(path)
    if not p.exists():
        raise InputError(p, f"{what} does not exist")
    if not p.is_file():
        raise InputError(p, f"{what} is not a regular file")
    return p


def describe_validation_error(e) -> str:
    """One line from a pydantic ValidationError: ``field: message; ...`` (first three)."""
    parts = []
    for err in e.errors()[:3]:
        loc = ".".join(str(x) for x in err.get("loc", ())) or e.title
        parts.append(f"{loc}: {err.get('msg')}")
    return f"invalid {e.title}: " + "; ".join(parts)
