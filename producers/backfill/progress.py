"""Progress of a backfill: a bar on a terminal (records/s, bytes, ETA), plain lines otherwise.

Workers, in this process or in others, write two counters per file into shared memory (records done,
bytes read); a thread of the process that started the run reads them and draws. The ETA is from bytes:
a compressed file counts its compressed bytes, so the ETA holds for it too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any, TextIO

_BAR = 24


def format_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def format_duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """Draws the run's progress from ``counters`` (records, bytes for each file, in that order) until
    ``stop``. ``interval``: seconds between plain lines; a bar redraws every quarter second."""

    def __init__(
        self, counters: Sequence[int] | Any, total_bytes: int, stream: TextIO, *, tty: bool, interval: float = 10.0
    ) -> None:
        self._counters = counters
        self._total = max(total_bytes, 1)
        self._stream = stream
        self._tty = tty
        self._interval = 0.25 if tty else interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.monotonic()
        self._last: tuple[float, int] = (self._started, 0)
        self._rate = 0.0

    def start(self) -> None:
        self._started = time.monotonic()
        self._last = (self._started, 0)
        self._thread = threading.Thread(target=self._run, name="backfill-progress", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._tty:
            self._stream.write("\r\x1b[K")
            self._stream.flush()

    def totals(self) -> tuple[int, int]:
        """(records done, bytes read) over every file."""
        values = list(self._counters)
        return sum(values[0::2]), sum(values[1::2])

    def line(self, now: float) -> str:
        records, done_bytes = self.totals()
        then, before = self._last
        if now > then:
            recent = (records - before) / (now - then)
            self._rate = recent if self._rate == 0 else 0.5 * self._rate + 0.5 * recent
        self._last = (now, records)
        fraction = min(done_bytes / self._total, 1.0)
        elapsed = now - self._started
        eta = elapsed * (1 - fraction) / fraction if fraction > 0 else None
        parts = [
            f"{fraction:4.0%}",
            f"{records:,} records",
            f"{self._rate:,.0f}/s",
            f"{format_bytes(done_bytes)} / {format_bytes(self._total)}",
            f"ETA {format_duration(eta)}" if eta is not None else "ETA -",
        ]
        if self._tty:
            filled = int(fraction * _BAR)
            return f"\r\x1b[K[{'#' * filled}{'.' * (_BAR - filled)}] " + "  ".join(parts)
        return "backfill: " + ", ".join(parts) + "\n"

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._stream.write(self.line(time.monotonic()))
            self._stream.flush()
