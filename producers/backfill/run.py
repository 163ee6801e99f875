"""``assetpipe backfill``: publish the events in files through the same contract as live traffic.

One file is one job: read it (``producers.sources``), turn each record into an encoded event
(``producers.records``), publish it, and keep a checkpoint of what the broker acknowledged
(``producers.checkpoint``). Bad records are rejected one by one (``producers.rejects``) up to
``max_errors``. Several files run in a pool of processes (``jobs``), each with its own producer; one
file runs in this process. Memory stays flat: readers stream, and the producer's queue is bounded.

Stopping: SIGINT or SIGTERM asks every job to stop; each flushes its producer and writes its checkpoint,
and the run ends with status 130. ``--resume`` then continues after the checkpoints. Without it, a run
publishes everything again, and the ingest worker keeps nothing twice: event ids are derived from each
file's content, and events with a data version are also deduplicated by it.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TextIO

from assetpipe.producers.backfill.job import FileJob, FileResult, Shared, backfill_file, init_worker
from assetpipe.producers.backfill.progress import Progress
from assetpipe.producers.backfill.sources import detect_format
from assetpipe.producers.exceptions import BackfillError
from assetpipe.schemas.model import EventType
from assetpipe.schemas.settings import Settings


@dataclass(frozen=True)
class BackfillOptions:
    """What ``assetpipe backfill`` was asked to do. Paths may name directories: their files, sorted."""

    paths: tuple[Path, ...]
    event_type: EventType | None = None
    mapping: Mapping[str, str] = field(default_factory=dict)
    resume: bool = False
    max_errors: int = 0
    rejects: Path | None = None  # default: rejects.jsonl in the checkpoint directory
    dry_run: bool = False
    rate: float | None = None  # events per second, over the whole run
    jobs: int | None = None  # default: one per file, at most one per core
    checkpoint_dir: Path | None = None  # default: <data_dir>/backfill
    progress: bool | None = None  # None: a bar on a terminal, plain lines otherwise
    progress_interval: float = 10.0  # seconds between plain progress lines

    def __post_init__(self) -> None:
        if self.max_errors < 0:
            raise BackfillError(f"--max-errors {self.max_errors}: expected 0 or more")
        if self.rate is not None and self.rate <= 0:
            raise BackfillError(f"--rate {self.rate:g}: expected events per second above 0")
        if self.jobs is not None and self.jobs < 1:
            raise BackfillError(f"--jobs {self.jobs}: expected 1 or more")


@dataclass
class Summary:
    files: list[FileResult]
    elapsed: float
    dry_run: bool = False
    interrupted: bool = False
    max_errors: int = 0
    rejects: Path | None = None

    @property
    def published(self) -> int:
        return sum(f.published for f in self.files)

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.files)

    @property
    def skipped(self) -> int:
        return sum(f.skipped for f in self.files)

    @property
    def errors(self) -> list[str]:
        return [f"{f.path}: {f.error}" for f in self.files if f.error]

    @property
    def too_many_rejects(self) -> bool:
        return self.rejected > self.max_errors

    @property
    def exit_code(self) -> int:
        """130 interrupted, 2 a file failed, 1 more rejects than ``max_errors``, else 0."""
        return 130 if self.interrupted else 2 if self.errors else 1 if self.too_many_rejects else 0

    def render(self) -> str:
        verb = "validated" if self.dry_run else "published"
        width = max([len(f.path) for f in self.files] + [4])
        lines = [f"{'file':<{width}}  {verb:>11}  {'rejected':>9}  {'skipped':>9}  status"]
        lines += [
            f"{f.path:<{width}}  {f.published:>11,}  {f.rejected:>9,}  {f.skipped:>9,}  {f.status}" for f in self.files
        ]
        rate = self.published / self.elapsed if self.elapsed > 0 else 0.0
        lines.append(
            f"{verb} {self.published:,} events in {self.elapsed:.1f} s ({rate:,.0f} events/s); "
            f"rejected {self.rejected:,}; skipped as already published {self.skipped:,}"
        )
        if self.dry_run:
            lines.append("dry run: nothing was published and no checkpoint was written")
        if self.rejected and self.rejects is not None:
            lines.append(f"rejected records: {self.rejects}")
        if self.too_many_rejects:
            lines.append(f"stopped: {self.rejected:,} rejected records, more than --max-errors {self.max_errors:,}")
        if self.interrupted:
            lines.append("interrupted: checkpoints written; run again with --resume to continue")
        lines += [f"error: {e}" for e in self.errors]
        return "\n".join(lines)


def run_backfill(
    settings: Settings, options: BackfillOptions, *, stderr: TextIO | None = None, watch_signals: bool = True
) -> Summary:
    """Backfill every file of ``options``; returns the summary (its ``exit_code`` is the command's)."""
    stderr = stderr or sys.stderr
    paths = list(_expand(options.paths))
    for path in paths:
        detect_format(path)  # fail before publishing anything if a file cannot be opened
    checkpoint_dir = options.checkpoint_dir or settings.data_dir / "backfill"
    rejects = options.rejects or checkpoint_dir / "rejects.jsonl"
    if not options.resume:
        rejects.unlink(missing_ok=True)
    processes = max(1, min(options.jobs or os.cpu_count() or 1, len(paths)))
    rate = options.rate / processes if options.rate else None
    jobs = [
        FileJob(i, path, settings, options.event_type, dict(options.mapping), options.resume, options.dry_run,
                rate, checkpoint_dir, rejects, options.max_errors)
        for i, path in enumerate(paths)
    ]  # fmt: skip
    shared = Shared.create(len(jobs))
    tty = stderr.isatty() if options.progress is None else options.progress
    progress = Progress(shared.counters, sum(p.stat().st_size for p in paths), stderr, tty=tty,
                        interval=options.progress_interval)  # fmt: skip
    started = time.monotonic()
    interrupted = threading.Event()
    with _signals_stop(shared, interrupted, enabled=watch_signals):
        progress.start()
        try:
            results = _run_here(jobs, shared, stderr) if processes == 1 else _run_pool(jobs, shared, processes)
        finally:
            progress.stop()
    return Summary(results, time.monotonic() - started, options.dry_run, interrupted.is_set(), options.max_errors,
                   rejects)  # fmt: skip


def _run_here(jobs: list[FileJob], shared: Shared, stderr: TextIO) -> list[FileResult]:
    init_worker(shared, in_child=False, stderr=stderr)
    return [backfill_file(job) for job in jobs]


def _run_pool(jobs: list[FileJob], shared: Shared, processes: int) -> list[FileResult]:
    # spawn, not fork: the parent may hold threads (a progress bar, librdkafka in tests) that fork
    # would copy in an undefined state.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context, initializer=init_worker, initargs=(shared, True)) as pool:
        futures: list[Future[FileResult]] = [pool.submit(backfill_file, job) for job in jobs]
        try:
            while wait(futures, timeout=0.5).not_done:
                pass
        except KeyboardInterrupt:  # a second Ctrl-C: stop now, without waiting for the flushes
            for process in getattr(pool, "_processes", {}).values():  # the executor has no public kill
                process.terminate()
            raise
        return [f.result() for f in futures]


@contextmanager
def _signals_stop(shared: Shared, interrupted: threading.Event, *, enabled: bool) -> Iterator[None]:
    """SIGINT and SIGTERM ask the jobs to stop cleanly; a second one stops at once (KeyboardInterrupt)."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, _frame: FrameType | None) -> None:
        if interrupted.is_set():
            raise KeyboardInterrupt
        interrupted.set()
        shared.stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _expand(paths: tuple[Path, ...]) -> Iterator[Path]:
    """Files, directories as their files (sorted, hidden ones left out), each file once."""
    if not paths:
        raise BackfillError("no file to backfill")
    seen: set[Path] = set()
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
            if not files:
                raise BackfillError(f"{path}: no file in this directory")
        elif path.exists():
            files = [path]
        else:
            raise BackfillError(f"{path}: no such file")
        for file in files:
            if file.resolve() not in seen:  # one job per file: two would share its checkpoint
                seen.add(file.resolve())
                yield file
