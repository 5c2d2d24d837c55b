"""Running programs we did not write (samtools, bcftools, git, ...) without trusting their output.

Their output is read as bytes and decoded with replacement: Debian's ``samtools --version``
prints its build flags with ``«BUILDPATH»`` in Latin-1, which is not UTF-8. A program that is
missing, hangs past its timeout or cannot start gives a result that says so; it never raises.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from typing import Optional


def text(data: Optional[bytes]) -> str:
    """Bytes a program printed, as text: UTF-8, anything else replaced (never raises)."""
    return (data or b"").decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Output:
    """What one run of a program gave: its exit code (None: it did not run to the end), what it
    printed on stdout and stderr (decoded with replacement), and why it did not run, if so."""

    returncode: Optional[int]
    stdout: str = ""
    stderr: str = ""
    problem: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def first_line(self) -> str:
        """The first non-empty line of stdout (else stderr), or what went wrong."""
        if self.problem is not None:
            return self.problem
        for stream in (self.stdout, self.stderr):
            for line in stream.splitlines():
                if line.strip():
                    return line.strip()
        return f"exit {self.returncode}, no output"


def run_program(argv: list[str], timeout: float = 20.0) -> Output:
    """Run ``argv`` (no shell, no stdin) and capture its output as bytes; never raises for a
    missing, hanging or failing program."""
    path = shutil.which(argv[0]) if argv else None
    if path is None:
        return Output(None, problem="not installed")
    try:
        proc = subprocess.run([path, *argv[1:]], capture_output=True, stdin=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Output(None, problem=f"no answer within {timeout:g} s")
    except OSError as e:  # not executable, bad interpreter line, ...
        return Output(None, problem=f"cannot run ({e.strerror or type(e).__name__})")
    return Output(proc.returncode, text(proc.stdout), text(proc.stderr))
