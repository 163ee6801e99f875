"""One file of a backfill: read, convert, publish, checkpoint, in this process or a pool worker.

The loop does as little as it can per record (convert, publish, one list append); everything else (the
stop flag, progress counters, the rate cap, checkpoints) runs every ``_every`` records. State shared by
every job of a run (``Shared``: the stop flag, the reject count, the progress counters) lives in shared
memory, so the same code serves a job in this process and one in a pool process.
"""

from __future__ import annotations

import gc
import hashlib
import multiprocessing
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any, TextIO

from assetpipe.producers.backfill.bounds import RecordBounds
from assetpipe.producers.backfill.checkpoint import Checkpoint, CheckpointStore
from assetpipe.producers.backfill.records import RecordConverter
from assetpipe.producers.backfill.rejects import Reject, RejectSink
from assetpipe.producers.backfill.sources import open_source
from assetpipe.producers.exceptions import DeliveryError, MalformedRecordError
from assetpipe.producers.publisher import Publisher
from assetpipe.schemas.codec import codec_for
from assetpipe.schemas.encoder import EventEncoder
from assetpipe.schemas.errors import AssetpipeError, ValidationError
from assetpipe.schemas.model import EventType
from assetpipe.schemas.settings import Settings

_CHECKPOINT_EVERY_S = 1.0
# The producer's queue bounds the memory of a backfill: a few seconds of events at full speed, not the
# million messages the SDK's default allows. Longer lingering makes fuller batches.
_PRODUCER_OVERRIDES = {"queue.buffering.max.messages": 100_000, "linger.ms": 50}
# Young collections while the loop runs: every record leaves a few container objects, so the default (700
# allocations) collects hundreds of times a second, finding nothing.
_GC_YOUNG = 100_000


@dataclass
class Shared:
    """What the jobs of one run share: ``stop`` (an Event), ``rejected`` (a counter), ``counters``
    (records done and bytes read, two per file)."""

    stop: Any
    rejected: Synchronized[int]
    counters: Any

    @classmethod
    def create(cls, files: int) -> Shared:
        context = multiprocessing.get_context("spawn")
        return cls(context.Event(), context.Value("q", 0), context.RawArray("q", 2 * files))


@dataclass(frozen=True)
class FileJob:
    index: int
    path: Path
    settings: Settings
    event_type: EventType | None
    mapping: dict[str, str]
    resume: bool
    dry_run: bool
    rate: float | None  # this job's share of the run's cap, events/s
    checkpoint_dir: Path
    rejects: Path | None
    max_errors: int


@dataclass
class FileResult:
    path: str
    published: int = 0  # validated, in a dry run
    rejected: int = 0
    skipped: int = 0  # at or before the checkpoint, with --resume
    position: int = 0  # the checkpoint at the end
    started: bool = False
    complete: bool = False
    error: str | None = None
    note: str | None = None

    @property
    def status(self) -> str:
        if self.error:
            return "failed"
        if self.complete:
            return "done" + (f" ({self.note})" if self.note else "")
        return f"stopped after position {self.position:,}" if self.started else "not started"


_shared: Shared | None = None
_stderr: TextIO | None = None  # where rejects are reported; a pool process's own stderr if None


def init_worker(shared: Shared, in_child: bool, stderr: TextIO | None = None) -> None:
    """Pool initializer (and the in-process setup): remember the run's shared state. A pool process
    ignores SIGINT: Ctrl-C reaches the whole process group, and the parent decides (it sets ``stop``)."""
    global _shared, _stderr
    _shared, _stderr = shared, stderr
    if in_child:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def backfill_file(job: FileJob) -> FileResult:
    shared = _shared
    assert shared is not None, "init_worker first"
    result = FileResult(str(job.path))
    if shared.stop.is_set():
        return result
    result.started = True
    try:
        _backfill(job, shared, result)
    except AssetpipeError as exc:
        result.error = f"[{exc.code}] {exc}"
        shared.stop.set()
    return result


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class RateLimiter:
    """Holds a count of events to ``rate`` per second since it started. ``sleep`` is the publisher's
    ``poll`` while publishing, so that waiting serves delivery reports."""

    def __init__(
        self, rate: float, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], Any] = time.sleep
    ) -> None:
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._start = clock()

    def wait(self, count: int) -> None:
        due = self._start + count / self.rate
        while (delay := due - self._clock()) > 0:
            self._sleep(delay)


def _backfill(job: FileJob, shared: Shared, result: FileResult) -> None:
    settings = job.settings
    source = open_source(job.path)
    content_hash = file_sha256(job.path)
    store = CheckpointStore(job.checkpoint_dir)
    start = 0
    previous = store.load(job.path) if job.resume else None
    if previous is not None and previous.sha256 == content_hash:
        start = previous.position
    elif previous is not None:
        result.note = "changed since its checkpoint: started over"
    codec = codec_for(settings, settings.topics.events)
    encoder = EventEncoder(codec, source="backfill")
    convert = RecordConverter(
        source, encoder, content_hash, default_type=job.event_type, mapping=job.mapping,
        bounds=RecordBounds.from_settings(settings),
    ).convert  # fmt: skip

    # Receipt-free: only failures are reported, and each checkpoint's flush is the barrier that says
    # every record before it is acknowledged.
    def event_id(value: bytes) -> str:  # what a failure report names
        return str(codec.decode(value)[1]["event_id"])

    publisher = None
    if not job.dry_run:
        publisher = Publisher.from_settings(settings, _PRODUCER_OVERRIDES, receipts=False, label=event_id)
    rejects = RejectSink(job.rejects, shared.rejected, job.max_errors, _stderr)
    limiter = RateLimiter(job.rate, sleep=publisher.poll if publisher else time.sleep) if job.rate else None
    every = 1024 if not job.rate else max(1, min(1024, int(job.rate / 20)))
    counters, slot = shared.counters, 2 * job.index
    saved, saved_at = start, time.monotonic()
    topic = settings.topics.events
    send = publisher.send if publisher is not None else None
    published = rejected = n = 0
    acknowledged = handled = start  # every record up to ``acknowledged`` is acknowledged (or rejected)
    exhausted = lost = False

    def checkpoint(complete: bool = False) -> None:
        nonlocal saved, saved_at
        if publisher is not None and (acknowledged != saved or complete):
            store.save(Checkpoint(str(job.path.resolve()), content_hash, acknowledged, complete))
            saved = acknowledged
        saved_at = time.monotonic()

    gc.freeze()  # what exists before the loop outlives it: no collection needs to look at it
    thresholds = gc.get_threshold()
    gc.set_threshold(_GC_YOUNG, *thresholds[1:])
    records = source.records(start)
    try:
        for position, line, payload in records:
            n += 1
            try:
                _event_id, key, value = convert(position, payload)
            except (ValidationError, MalformedRecordError) as exc:
                rejected += 1
                handled = position
                if not rejects.add(Reject.of(str(job.path), source.unit, line, exc, source.text(payload))):
                    shared.stop.set()
                    break
            else:
                if send is not None:
                    send(topic, key, value)
                published += 1
                handled = position
            if n % every == 0:
                counters[slot], counters[slot + 1] = n + source.skipped, source.bytes_read()
                if limiter is not None:
                    limiter.wait(published)
                if time.monotonic() - saved_at >= _CHECKPOINT_EVERY_S:
                    if publisher is not None:
                        try:
                            publisher.flush()
                        except DeliveryError:  # the run stops; its checkpoint stays before the lost events
                            lost = True
                            raise
                    acknowledged = handled
                    checkpoint()
                if shared.stop.is_set():
                    break
        else:
            exhausted = True
    finally:
        records.close()  # the file now, also when the loop ended early
        gc.set_threshold(*thresholds)
        gc.unfreeze()
        result.published, result.rejected, result.skipped = published, rejected, source.skipped
        counters[slot], counters[slot + 1] = n + source.skipped, source.bytes_read()
        rejects.close()
        if publisher is not None:
            flushed = False
            try:
                publisher.close()
                flushed = True
            finally:
                if flushed and not lost:
                    acknowledged = handled
                result.position = acknowledged
                ok = exhausted and flushed
                result.complete = ok
                checkpoint(complete=ok)
        else:
            result.complete = exhausted
