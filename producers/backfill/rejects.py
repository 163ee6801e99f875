"""Rejected backfill records: reported on stderr and kept in a rejects file, counted against
``--max-errors`` across every file and process of a run.

The rejects file is JSON Lines, one object per rejected record: ``file``, ``line`` (JSON Lines and CSV)
or ``row`` (Parquet and Avro), ``reason``, ``field`` (when one field is at fault), ``code`` and ``text``,
the record as the file has it (to fix it and backfill the fixed records as a new file). Each process
appends whole lines with one ``write`` on a file opened in append mode, so lines never interleave.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import TextIO

import orjson

from assetpipe.schemas.errors import AssetpipeError, ValidationError


@dataclass(frozen=True, slots=True)
class Reject:
    file: str
    unit: str  # "line" or "row"
    number: int
    reason: str
    code: str
    field: str | None
    text: str

    @classmethod
    def of(cls, file: str, unit: str, number: int, exc: AssetpipeError, text: str) -> Reject:
        field = exc.field if isinstance(exc, ValidationError) else None
        return cls(file, unit, number, str(exc), exc.code, field, text)

    def as_json(self) -> bytes:
        entry: dict[str, object] = {"file": self.file, self.unit: self.number, "reason": self.reason}
        if self.field is not None:
            entry["field"] = self.field
        entry.update(code=self.code, text=self.text)
        return orjson.dumps(entry) + b"\n"

    def __str__(self) -> str:
        where = f"{self.file}:{self.number}" if self.unit == "line" else f"{self.file}: row {self.number}"
        return f"{where}: {self.reason}"


class RejectSink:
    """Reports rejects; ``add`` returns False once the run's count is over ``max_errors``."""

    def __init__(
        self, path: Path | None, count: Synchronized[int], max_errors: int, stderr: TextIO | None = None
    ) -> None:
        self.path = path
        self._count = count
        self._max_errors = max_errors
        self._stderr = stderr or sys.stderr
        self._fd: int | None = None
        self._clear = "\r\x1b[K" if self._stderr.isatty() else ""  # over a progress bar

    def add(self, reject: Reject) -> bool:
        if self.path is not None:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(self._fd, reject.as_json())
        self._stderr.write(f"{self._clear}rejected {reject}\n")
        self._stderr.flush()
        with self._count.get_lock():
            self._count.value += 1
            return bool(self._count.value <= self._max_errors)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
