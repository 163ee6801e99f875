"""Backfill checkpoints: how far the broker has acknowledged each file, kept on disk.

A checkpoint belongs to one file, keyed by its content hash and its path: the same path with other
content starts over (its events get other ids), and so does the same content under another path. It
holds the highest position whose event, and every event before it, the broker acknowledged (rejected
records count as settled). It is written atomically (a temporary file renamed over it), periodically
during the run and at its end, so a crash leaves the last one whole.

The backfill learns that position from its publisher's flush: a barrier after which every record sent
before it is acknowledged (``producers.publisher``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


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
