"""``PipelinedLoop``: the consumer loop with the handler's work for one batch running in a background
thread while the loop gathers the next batch.

A handler whose time goes to ClickHouse (which runs outside Python's lock) leaves the loop's thread
idle; here that thread keeps consuming meanwhile, so consuming, preparing the next batch (the
handler's ``prepare``: framing, for the ingest handler) and publishing overlap with ClickHouse's work
instead of adding to it. One batch is in flight at a time and batches complete in
order: once a batch is written, the next one goes to ClickHouse, and then the loop's thread publishes
and commits the written one (its offsets never move before its events are published). A batch
that fails with a retryable error is tried again after a backoff, before anything newer; while it
waits, the next batch fills up to its size limit and the partitions are paused, so memory stays
bounded and nothing is lost. A rebalance finishes the batch in flight before partitions change hands.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

from confluent_kafka import Consumer, Message, TopicPartition

from consumers.loop import ConsumerLoop, MessageHandler, Outcome, without_gc

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _InFlight:
    batch: list[Message]
    future: Future[Outcome]
    started: float


class PipelinedLoop(ConsumerLoop):
    _executor: ThreadPoolExecutor | None = None
    _inflight: _InFlight | None = None
    _retry: list[Message] | None = None  # a failed batch waiting for its next attempt
    _retry_at = 0.0
    _delay = 0.2
    _paused = False
    _prepared: tuple[list[Message], int, Any] | None = None  # (batch, its length then, what prepare gave)

    def run(self, stop: threading.Event) -> None:
        self._consumer.subscribe(self._topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        self.metrics.state = "running"
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="batch")
        try:
            deadline = 0.0
            while not stop.is_set():
                done = self._reap(block=False)
                now = time.monotonic()
                if self._inflight is None:
                    if self._retry is not None and now >= self._retry_at:
                        self._submit(self._retry)
                        self._retry = None
                    elif self._retry is None and self._batch and (self._full() or now >= self._closes(deadline)):
                        self._submit(self._batch)
                        self._batch = []
                if done is not None:  # published and committed while ClickHouse works on the next batch
                    self._complete(done.batch, done.future.result(), done.started, asynchronous=True)
                if self._inflight is not None and self._full() and self._prepared is None and self._codec is None:
                    # the next batch is complete: its own work is done here while the batch in flight runs
                    batch = self._batch
                    prepared = without_gc(cast("MessageHandler", self._handler).prepare, batch)
                    self._prepared = (batch, len(batch), prepared)
                self._set_paused(self._full())
                if self._inflight is not None or self._retry is not None:
                    timeout = 0.02  # come back soon to collect the batch in flight
                elif self._batch:
                    timeout = max(0.0, self._closes(deadline) - now)
                else:
                    timeout = self._idle_seconds
                deadline = self._gather(timeout, deadline)
                if self.draining:
                    self._measure_backlog()
            self._finish_inflight()
            self._batch = (self._retry or []) + self._batch
            self._retry = None
            self._set_paused(False)
            self._flush(stop, final=True)
        finally:
            self._executor.shutdown(wait=True)
            self.metrics.state = "stopped"
            self._close()

    def _held(self) -> int:
        return (len(self._inflight.batch) if self._inflight is not None else 0) + len(self._retry or ())

    def _full(self) -> bool:
        return len(self._batch) >= self._max_rows

    def _submit(self, batch: list[Message]) -> None:
        assert self._executor is not None
        prepared = None
        if self._prepared is not None and self._prepared[0] is batch and self._prepared[1] == len(batch):
            prepared = self._prepared[2]
        self._prepared = None
        self._inflight = _InFlight(batch, self._executor.submit(self._process, batch, prepared), time.monotonic())

    def _reap(self, *, block: bool) -> _InFlight | None:
        """The batch in flight if its handler is done (or, ``block``, once it is), for the caller to
        complete; None while it runs, and when it failed with a retryable error (it is kept to retry)."""
        inflight = self._inflight
        if inflight is None or not (block or inflight.future.done()):
            return None
        self._inflight = None
        try:
            inflight.future.result()
        except self._retryable as exc:
            self.metrics.state = "waiting for warehouse"
            self.metrics.last_error = str(exc)
            self.metrics.retries += 1
            log.warning("retrying a batch of %d in %.1fs: %s", len(inflight.batch), self._delay, exc)
            self._retry, self._retry_at = inflight.batch, time.monotonic() + self._delay
            self._delay = min(self._delay * 2, 30.0)
            return None
        self._delay = 0.2
        return inflight

    def _finish_inflight(self) -> None:
        """Wait for the batch in flight and complete it synchronously."""
        done = self._reap(block=True)
        if done is not None:
            self._complete(done.batch, done.future.result(), done.started, asynchronous=False)

    def _set_paused(self, paused: bool) -> None:
        """Pause fetching while the next batch is full (the loop still polls, serving the group).
        Paused again each time: a partition assigned meanwhile starts out fetching."""
        if paused or self._paused:
            assignment = self._consumer.assignment()
            if assignment:
                (self._consumer.pause if paused else self._consumer.resume)(assignment)
        self._paused = paused

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # finish what is in flight, then hand everything not yet committed to the synchronous path,
        # oldest first, so offsets never move past a message that was not written
        self._finish_inflight()
        self._batch = (self._retry or []) + self._batch
        self._retry = None
        super()._on_revoke(consumer, partitions)
