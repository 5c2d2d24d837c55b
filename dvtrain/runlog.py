"""Where an unexpected error's traceback goes: a log file, not the terminal.

The terminal gets one line (what failed, in which stage, where the log is); the log file gets
the full traceback, plus, for ``dvtrain run``, every log record of the run (Prefect's
included). Log records on the terminal keep their message but lose their traceback, so a
failed flow does not print the same traceback twice.

Logs go to ``WORKDIR/logs/`` for ``dvtrain run`` and to ``logs/`` beside a stage's output
for the stage commands; where that folder is remote or cannot be written, to
``$TMPDIR/dvtrain-logs/``. Nothing is written when the command succeeds.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
import traceback
from pathlib import Path
from typing import Optional

from .uri import is_remote

#: the frame of a Prefect task wrapping a stage (tasks/stages.py: ``shuffle_task``)
_TASK_FRAME = re.compile(r"^(\w+?)_task$")


class _WithoutTraceback(logging.Formatter):
    """Formats as ``inner`` does, minus the traceback and stack of the record."""

    def __init__(self, inner: Optional[logging.Formatter]):
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info = record.exc_text = record.stack_info = None
        try:
            return self.inner.format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def stage_of(exc: BaseException) -> Optional[str]:
    """The stage whose task raised ``exc`` (the innermost ``NAME_task`` frame), else None."""
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        m = _TASK_FRAME.match(frame.name)
        if m:
            found = m.group(1)
    return found


class CommandLog:
    """The log of one CLI command: records captured while it runs, written out only if it fails."""

    def __init__(self, command: str):
        self.command = re.sub(r"[^A-Za-z0-9_-]+", "-", command) or "dvtrain"
        self.folder: Optional[Path] = None
        self._handler: Optional[logging.StreamHandler] = None  # set by capture(), over a temporary file
        self._quieted: list[tuple[logging.Handler, Optional[logging.Formatter]]] = []

    def logs_beside(self, location: object, inside: bool = False) -> None:
        """Logs go to ``logs/`` in (``inside``) or beside ``location``, a local folder or file."""
        if location is None or is_remote(str(location)):
            return
        path = Path(str(location)).expanduser()
        self.folder = (path if inside else path.parent) / "logs"

    def capture(self) -> None:
        """Record every log record from here on (root logger), and keep tracebacks of records
        off the terminal: they go to the log file only. Without it, a failure's log file holds
        the traceback alone."""
        root = logging.getLogger()
        if self._handler is None:
            buffer = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")
            self._handler = logging.StreamHandler(buffer)
            self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            root.addHandler(self._handler)
        for handler in root.handlers:
            if handler is self._handler or isinstance(handler.formatter, _WithoutTraceback):
                continue
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                self._quieted.append((handler, handler.formatter))
                handler.setFormatter(_WithoutTraceback(handler.formatter))

    def close(self) -> None:
        for handler, formatter in self._quieted:
            handler.setFormatter(formatter)  # type: ignore[arg-type]
        self._quieted.clear()
        if self._handler is not None:
            logging.getLogger().removeHandler(self._handler)
            self._handler.stream.close()
            self._handler = None

    def write_failure(self, exc: BaseException) -> Path:
        """Write the captured records and ``exc``'s full traceback to a new log file; its path."""
        captured = ""
        if self._handler is not None:
            self._handler.flush()
            self._handler.stream.seek(0)
            captured = self._handler.stream.read()
        body = captured + "".join(traceback.format_exception(exc))
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        name = f"dvtrain-{self.command}-{stamp}-{os.getpid()}.log"
        for folder in (self.folder, Path(tempfile.gettempdir()) / "dvtrain-logs"):
            if folder is None:
                continue
            try:
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / name
                path.write_text(body, encoding="utf-8", errors="replace")
                return path.resolve()
            except OSError:
                continue
        raise OSError(f"no folder to write {name} to")  # pragma: no cover - the temp dir is writable
