"""Backfill checkpoints: how far the broker has acknowledged each file, kept on disk.

A checkpoint belongs to one file, keyed by its content hash and its path: the same path with other
content starts over (its events get other ids), and so does the same content under another path. It
holds the highest position whose event, and every event before it, the broker acknowledged (rejected
records count as settled). It is written atomically (a temporary file renamed over it), periodically
during the run and at its end, so a crash leaves the last one whole.

``AckTracker`` computes that position from the publisher's receipts, in chunks, so the cost per event
is one list append.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

_CHUNK = 4096


@dataclass(frozen=True, slots=True)
class Checkpoint:
    path: str  # absolute
    sha256: str
    position: int  # every record at or before it is settled
    complete: bool = False


class CheckpointStore:
    """One JSON file per backfilled file, in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def file_for(self, path: Path) -> Path:
        resolved = str(path.resolve())
        digest = hashlib.sha256(resolved.encode()).hexdigest()[:16]
        return self.directory / f"{path.name}.{digest}.json"

    def load(self, path: Path) -> Checkpoint | None:
        """The checkpoint of ``path`` whatever its content hash (compare ``sha256``), or None."""
        try:
            data = json.loads(self.file_for(path).read_text())
            return Checkpoint(data["path"], data["sha256"], int(data["position"]), bool(data.get("complete")))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return None  # unreadable: as if absent, and the next save replaces it

    def save(self, checkpoint: Checkpoint) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.file_for(Path(checkpoint.path))
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        with open(tmp, "w") as f:
            json.dump(asdict(checkpoint), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)


class Settled(Protocol):
    @property
    def done(self) -> bool: ...

    @property
    def error(self) -> str | None: ...


class AckTracker:
    """The highest position up to which every event is acknowledged. Feed it positions in order: a
    published event's receipt with ``add``, a rejected record with ``settle``."""

    def __init__(self, start: int = 0) -> None:
        self.position = start  # acknowledged up to here
        self.failed: str | None = None  # why delivery of some event failed; the position stops before it
        self._last = start
        self._receipts: list[Settled] = []
        self._chunks: deque[tuple[int, list[Settled]]] = deque()
        self._scanned = 0  # receipts of the front chunk known to be done

    def add(self, position: int, receipt: Settled) -> None:
        self._receipts.append(receipt)
        self._last = position
        if len(self._receipts) >= _CHUNK:
            self.seal()

    def settle(self, position: int) -> None:
        self._last = position

    def seal(self) -> None:
        """Close the current chunk (it ends at the last position seen)."""
        self._chunks.append((self._last, self._receipts))
        self._receipts = []

    def advance(self) -> int:
        """Move ``position`` past every sealed chunk whose events are all acknowledged."""
        while self._chunks:
            last, receipts = self._chunks[0]
            i = self._scanned
            while i < len(receipts) and receipts[i].done:
                if receipts[i].error is not None:
                    self.failed = self.failed or receipts[i].error
                    self._scanned = i
                    return self.position
                i += 1
            if i < len(receipts):
                self._scanned = i
                return self.position
            self._chunks.popleft()
            self._scanned = 0
            self.position = last
        return self.position

    def finish(self) -> int:
        """After the publisher was flushed: seal what is left and advance over everything settled."""
        self.seal()
        return self.advance()
