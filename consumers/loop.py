"""The one consumer loop: poll -> prepare -> handle -> publish -> commit, for every worker.

Each worker (ingest, sensors, runs) plugs a ``Handler`` into ``ConsumerLoop``. The loop owns the Kafka
consumer and publishes through a ``Publisher``, the one Kafka writer: it gathers messages into batches
bounded by size and time, hands each batch to the handler, publishes what the handler returns (and
waits for the broker's acks), and only then commits offsets.

The handler runs inline, or, with ``overlap``, on one background thread: a handler whose time goes to
ClickHouse (outside Python's lock) then leaves the loop's thread free to consume the next batch and
prepare it meanwhile. One batch is handled at a time and batches complete in order, so offsets never
move past a message that was not handled and published. A retryable error from the handler retries
the same batch after a backoff (0.2 s doubling to 30 s), before anything newer: meanwhile the next
batch fills up to its size limit and the partitions are paused, so memory stays bounded and nothing
is lost. A rebalance completes the batch in hand before partitions change hands.
"""

from __future__ import annotations

import gc
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from assetpipe.consumers.exceptions import ConsumerError
from assetpipe.consumers.handler import Handler, Outcome, PartitionAware
from assetpipe.producers.exceptions import PublishError
from assetpipe.producers.publisher import LIBRDKAFKA_LOG, Publisher
from assetpipe.schemas.errors import AssetpipeError
from assetpipe.schemas.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")
_UNPREPARED = object()


_FIRST_DELAY_S = 0.2
_MAX_DELAY_S = 30.0


@dataclass(slots=True)
class LoopMetrics:
    consumed: int = 0
    batches: int = 0
    dead_lettered: int = 0
    lag: int | None = None
    state: str = "starting"
    last_error: str | None = None
    retries: int = 0
    last_batch_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class Backlog:
    """What a loop has yet to handle and commit, measured in its own thread while it drains: the
    partitions it holds, the messages behind (fetched or not), and whether every count is known (a
    partition not fetched from yet, or one with nothing consumed and no committed offset, is not)."""

    assigned: frozenset[tuple[str, int]]
    behind: int
    known: bool
    idle_seconds: float  # since a consume last returned messages


def without_gc(work: Callable[..., T], *args: Any) -> T:
    """``work(*args)`` with the cyclic collector off: a batch allocates tens of thousands of short-lived,
    acyclic objects, which reference counting frees; the collector's passes over them only cost time."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return work(*args)
    finally:
        if collecting:
            gc.enable()


@dataclass(slots=True)
class _InFlight:
    batch: list[Message]
    future: Future[Outcome]
    started: float


class ConsumerLoop:
    def __init__(
        self,
        settings: Settings,
        *,
        group_id: str,
        topics: Sequence[str],
        handler: Handler,
        retryable: tuple[type[Exception], ...] = (),
        overlap: bool = False,
        publisher: Publisher | None = None,
        max_rows: int | None = None,
        max_seconds: float | None = None,
        idle_seconds: float = 0.5,
        consumer_overrides: Mapping[str, Any] | None = None,
    ) -> None:
        """``overlap``: handle a batch on a background thread while the next one is gathered and
        prepared. ``publisher``: the one to publish through (a handler that also publishes, such as the
        run worker's, shares it); by default the loop builds its own and closes it when it stops."""
        self.settings = settings
        self.metrics = LoopMetrics()
        self.name = group_id
        self.topics: tuple[str, ...] = tuple(topics)
        self.publish_timeout = 60.0  # the longest a batch's publishing waits for the broker's acks
        self._handler = handler
        self._retryable = retryable
        self._overlap = overlap
        self._max_rows = max_rows or settings.ingest_batch_max_rows
        self._max_seconds = max_seconds or settings.ingest_batch_max_seconds
        self._idle_close = settings.ingest_batch_idle_seconds
        self._last_arrival = 0.0  # when a consume last returned messages
        self._dlq = settings.topics.dlq
        self._idle_seconds = idle_seconds  # longest wait for a first message: a floor on latency
        conf = {**settings.consumer_config(group_id), **(consumer_overrides or {})}
        conf["stats_cb"] = self._on_stats
        conf.setdefault("logger", LIBRDKAFKA_LOG)
        self._consumer = Consumer(conf)
        # Only failures need a delivery report: success is a flush that leaves nothing queued.
        self._owns_publisher = publisher is None
        self.publisher = publisher or Publisher.from_settings(settings, receipts=False)
        self._batch: list[Message] = []
        self._inflight: _InFlight | None = None
        self._retry: list[Message] | None = None  # a failed batch waiting for its next attempt
        self._retry_at = 0.0
        self._delay = _FIRST_DELAY_S
        self._paused = False
        self._prepared: tuple[list[Message], int, Any] | None = None  # (batch, its length then, what prepare gave)
        self._assigned: set[tuple[str, int]] = set()
        self._gained: list[tuple[str, int]] = []  # assigned, not yet told to the handler
        # Set by the owner to stop cleanly: the loop then measures its ``backlog`` each turn, for the
        # owner to stop it once every loop it runs is caught up.
        self.draining = False
        self.backlog: Backlog | None = None

    # -- the loop ---------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        self._consumer.subscribe(list(self.topics), on_assign=self._on_assign, on_revoke=self._on_revoke)
        self.metrics.state = "running"
        executor = ThreadPoolExecutor(1, thread_name_prefix="batch") if self._overlap else None
        try:
            deadline = 0.0
            while not stop.is_set():
                done = self._reap(block=False)
                now = time.monotonic()
                if self._inflight is None:
                    if self._retry is not None and now >= self._retry_at:
                        self._submit(self._retry, executor)
                        self._retry = None
                    elif self._retry is None and self._batch and (self._full() or now >= self._closes(deadline)):
                        self._submit(self._batch, executor)
                        self._batch = []
                    if executor is None:  # handled already: complete it now
                        done = self._reap(block=False)
                if done is not None:  # published and committed (overlapped: while the next batch is handled)
                    self._complete(done.batch, done.future.result(), done.started, asynchronous=True)
                if executor is not None and self._inflight is not None and self._full() and self._prepared is None:
                    # the next batch is complete: its own work is done here while the batch in flight runs
                    batch = self._batch
                    self._prepared = (batch, len(batch), without_gc(self._handler.prepare, batch))
                self._set_paused(self._full())
                if self._inflight is not None or self._retry is not None:
                    timeout = 0.02  # come back soon for the batch in flight, or the retry
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
            self._flush_final()
        finally:
            if executor is not None:
                executor.shutdown(wait=True)
            self.metrics.state = "stopped"
            self._close()

    def _full(self) -> bool:
        return len(self._batch) >= self._max_rows

    def _closes(self, deadline: float) -> float:
        """When the batch closes short of its size: at its ``deadline``, or once no message came for
        ``ingest_batch_idle_seconds`` (the end of a burst need not wait out the deadline)."""
        return min(deadline, self._last_arrival + self._idle_close)

    def _gather(self, timeout: float, deadline: float) -> float:
        """Consume into the batch (up to its room, waiting at most ``timeout``); returns the batch's
        deadline, set when its first message arrives."""
        room = max(1, min(10_000, self._max_rows - len(self._batch)))
        messages = self._consumer.consume(room, timeout)
        if self._gained:
            self._tell_gained()
        if not messages:
            return deadline
        good = [message for message in messages if message.error() is None]
        if good:
            now = self._last_arrival = time.monotonic()
            if not self._batch:
                deadline = now + self._max_seconds
            self._batch += good
        if len(good) < len(messages):
            for message in messages:
                error = message.error()
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    self.metrics.last_error = str(error)
                    if error.fatal():
                        raise ConsumerError(f"fatal Kafka error: {error}")
                    log.warning("kafka: %s", error)
        return deadline

    # -- handling a batch -------------------------------------------------------------------
    def _submit(self, batch: list[Message], executor: ThreadPoolExecutor | None) -> None:
        """Hand ``batch`` to the handler: on the executor, or here and now (a future already done)."""
        prepared = _UNPREPARED
        if self._prepared is not None and self._prepared[0] is batch and self._prepared[1] == len(batch):
            prepared = self._prepared[2]
        self._prepared = None
        if executor is not None:
            future = executor.submit(self._process, batch, prepared)
        else:
            future = Future()
            try:
                future.set_result(self._process(batch, prepared))
            except Exception as exc:
                future.set_exception(exc)
        self._inflight = _InFlight(batch, future, time.monotonic())

    def _process(self, batch: list[Message], prepared: Any = _UNPREPARED) -> Outcome:
        return without_gc(self._prepare_and_handle, batch, prepared)

    def _prepare_and_handle(self, batch: list[Message], prepared: Any) -> Outcome:
        if prepared is _UNPREPARED:
            prepared = self._handler.prepare(batch)
        outcome = self._handler.handle(batch, prepared)
        self.metrics.dead_lettered += sum(1 for o in outcome.outbound if o.topic == self._dlq)
        return outcome

    def _reap(self, *, block: bool) -> _InFlight | None:
        """The batch in flight if its handler is done (or, ``block``, once it is), for the caller to
        complete; None while it runs, and when it failed with a retryable error (kept to retry)."""
        inflight = self._inflight
        if inflight is None or not (block or inflight.future.done()):
            return None
        self._inflight = None
        try:
            inflight.future.result()
        except self._retryable as exc:
            self._retry, self._retry_at = inflight.batch, time.monotonic() + self._backoff(len(inflight.batch), exc)
            return None
        self._delay = _FIRST_DELAY_S
        return inflight

    def _backoff(self, size: int, exc: Exception) -> float:
        """The one retry policy: the delay before a batch's next attempt, doubling to ``_MAX_DELAY_S``."""
        delay, self._delay = self._delay, min(self._delay * 2, _MAX_DELAY_S)
        self.metrics.state = "waiting for warehouse"
        self.metrics.last_error = str(exc)
        self.metrics.retries += 1
        log.warning("retrying a batch of %d in %.1fs: %s", size, delay, exc)
        return delay

    def _finish_inflight(self) -> None:
        """Wait for the batch in flight and complete it synchronously."""
        done = self._reap(block=True)
        if done is not None:
            self._complete(done.batch, done.future.result(), done.started, asynchronous=False)

    def _flush_final(self) -> None:
        """Handle and complete what is left when the loop stops, retrying until it succeeds."""
        if not self._batch:
            return
        started = time.monotonic()
        while True:
            batch = self._batch
            try:
                outcome = self._process(batch)
                break
            except self._retryable as exc:
                self._wait(self._backoff(len(batch), exc))
                if not self._batch:  # every partition of the batch was revoked meanwhile
                    return
        self._complete(batch, outcome, started, asynchronous=False)
        self._batch = []

    def _complete(self, batch: list[Message], outcome: Outcome, started: float, *, asynchronous: bool) -> None:
        """Publish what the handler returned, then commit: offsets move only after both succeeded."""
        self._publish(outcome)
        self._commit(batch, asynchronous=asynchronous)
        self.metrics.state = "running"
        self.metrics.batches += 1
        self.metrics.consumed += len(batch)
        self.metrics.last_batch_seconds = time.monotonic() - started
        log.info("committed a batch of %d messages in %.2fs", len(batch), self.metrics.last_batch_seconds)

    def _wait(self, seconds: float) -> None:
        """Back off with the partitions paused, still serving group membership."""
        assignment = self._consumer.assignment()
        if assignment:
            self._consumer.pause(assignment)
        try:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                for message in self._consumer.consume(100, min(0.1, max(0.0, end - time.monotonic()))):
                    if message.error() is None:  # fetched before the pause; kept in order
                        self._batch.append(message)
        finally:
            assignment = self._consumer.assignment()
            if assignment:
                self._consumer.resume(assignment)

    def _set_paused(self, paused: bool) -> None:
        """Pause fetching while the next batch is full (the loop still polls, serving the group).
        Paused again each time: a partition assigned meanwhile starts out fetching."""
        if paused or self._paused:
            assignment = self._consumer.assignment()
            if assignment:
                (self._consumer.pause if paused else self._consumer.resume)(assignment)
        self._paused = paused

    def _publish(self, outcome: Outcome) -> None:
        if not outcome.outbound and not outcome.forward:
            return
        publisher = self.publisher
        try:
            for item in outcome.outbound:
                publisher.send(item.topic, item.key, item.value, headers=item.headers)
            if outcome.forward:
                publisher.send_batch(outcome.forward_topic, outcome.forward)
            publisher.flush(self.publish_timeout)
        except PublishError as exc:
            # offsets stay uncommitted: the batch is redelivered, and dedup keeps it single
            raise ConsumerError(f"could not publish a batch's messages: {exc}") from exc

    def _held(self) -> int:
        """Messages consumed and not yet committed, beyond the batch being gathered."""
        return (len(self._inflight.batch) if self._inflight is not None else 0) + len(self._retry or ())

    def _measure_backlog(self) -> None:
        """Messages behind the log end on the partitions held, plus those consumed and not committed.
        The high watermarks are the ones the last fetches brought (a broker's uncached answer can be
        short of the log end); a partition with nothing consumed since it was assigned counts from its
        committed offset."""
        assigned = frozenset(self._assigned)
        behind = len(self._batch) + self._held()
        known = True
        if assigned:
            positions = self._consumer.position([TopicPartition(t, p) for t, p in sorted(assigned)])
            unread = [tp for tp in positions if tp.offset < 0]
            committed: dict[tuple[str, int], int] = {}
            if unread:
                try:
                    committed = {(tp.topic, tp.partition): tp.offset for tp in self._consumer.committed(unread, 5)}
                except KafkaException:
                    committed = {}
            for tp in positions:
                low, high = self._consumer.get_watermark_offsets(tp, cached=True)
                at = tp.offset if tp.offset >= 0 else committed.get((tp.topic, tp.partition), -1)
                if high < 0 or (at < 0 and high > max(low, 0)):
                    known = False
                elif at >= 0:
                    behind += max(0, high - at)
        self.backlog = Backlog(assigned, behind, known, time.monotonic() - self._last_arrival)

    def _commit(self, batch: list[Message], *, asynchronous: bool) -> None:
        # A partition's messages come in offset order, so its last one in the batch has the offset to
        # commit: read from the end, until every assigned partition has been met.
        positions: dict[tuple[str, int], int] = {}
        wanted = len(self._assigned)
        for message in reversed(batch):
            where = (message.topic() or "", message.partition() or 0)
            if where not in positions:
                positions[where] = (message.offset() or 0) + 1
                if len(positions) >= wanted and all(p in positions for p in self._assigned):
                    break
        offsets = [TopicPartition(t, p, o) for (t, p), o in positions.items() if (t, p) in self._assigned]
        if not offsets:
            return
        try:
            if asynchronous:
                self._consumer.commit(offsets=offsets, asynchronous=True)
            else:
                self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # a failed commit only means redelivery, which dedup absorbs
            log.warning("offset commit failed: %s", exc)

    # -- group membership -------------------------------------------------------------------
    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        gained = [(tp.topic, tp.partition) for tp in partitions]
        self._assigned.update(gained)
        if isinstance(self._handler, PartitionAware):
            self._gained.extend(gained)  # told after the poll: no blocking client call inside a callback

    def _tell_gained(self) -> None:
        """Tell a ``PartitionAware`` handler the partitions gained, with their topics' partition counts
        (a metadata request, made here, outside the rebalance callback: a blocking call of the consumer
        within one of its callbacks breaks confluent-kafka's bookkeeping of the call in progress)."""
        gained = [p for p in self._gained if p in self._assigned]
        self._gained = []
        counts = {}
        for topic in {t for t, _ in gained}:
            try:
                metadata = self._consumer.list_topics(topic, timeout=10).topics.get(topic)
            except KafkaException as exc:
                log.warning("no partition count for %s: %s", topic, exc)
                continue
            if metadata is not None and metadata.error is None and metadata.partitions:
                counts[topic] = len(metadata.partitions)
        if gained and isinstance(self._handler, PartitionAware):
            self._handler.partitions_assigned(gained, counts)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # finish what is in flight, then complete everything not yet committed synchronously, oldest
        # first, so offsets never move past a message that was not handled
        self._finish_inflight()
        self._batch = (self._retry or []) + self._batch
        self._retry = None
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        if self._batch:
            try:
                self._complete(self._batch, self._process(self._batch), time.monotonic(), asynchronous=False)
                self._batch = []
            except (AssetpipeError, KafkaException) as exc:
                log.warning("batch dropped at rebalance, to be redelivered: %s", exc)
                self._batch = [m for m in self._batch if (m.topic(), m.partition()) not in revoked]
        self._assigned -= revoked
        if isinstance(self._handler, PartitionAware) and revoked:
            self._handler.partitions_revoked(sorted(revoked))

    def _on_stats(self, stats_json: str) -> None:
        """Consumer lag from librdkafka statistics (right on every broker, unlike uncached offsets)."""
        try:
            stats = json.loads(stats_json)
        except ValueError:
            return
        lag = 0
        for topic in stats.get("topics", {}).values():
            for pid, part in topic.get("partitions", {}).items():
                if pid != "-1" and part.get("consumer_lag", -1) >= 0:
                    lag += part["consumer_lag"]
        self.metrics.lag = lag

    def _close(self) -> None:
        try:
            if self._owns_publisher:  # now, not when the collector frees this loop: it would keep reconnecting
                self.publisher.close(min(10.0, self.publish_timeout))
        except PublishError as exc:  # nothing of a committed batch is left in it: only what was not committed
            log.warning("closing the loop's publisher: %s", exc)
        finally:
            self._consumer.close()
