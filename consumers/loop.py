"""The one consumer loop: poll -> decode -> handle -> publish -> commit.

Every consumer (ingest, sensors, runs) plugs a handler into ``ConsumerLoop``. The loop owns the Kafka
consumer and a producer: it gathers messages into batches bounded by size and time, decodes them for a
``BatchHandler`` (undecodable ones become dead letters; a ``MessageHandler`` takes them undecoded),
hands the batch to the handler, publishes what the handler returns plus the dead letters (and waits
for the broker's acks), and only then commits offsets. A retryable error from the handler pauses the
partitions and retries the same batch with backoff, so nothing is lost while a downstream store is
down. ``consumers.pipeline.PipelinedLoop`` overlaps the handler's work with gathering the next batch.
"""

from __future__ import annotations

import gc
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from consumers.exceptions import ConsumerError
from schemas.codec import Codec
from schemas.errors import AssetpipeError, DecodeError
from schemas.settings import Settings

log = logging.getLogger(__name__)


class _Repeats(logging.Filter):
    """Lets a message through once per ``every`` seconds: while a broker is unreachable, each client
    logs a failed connection at every reconnect attempt, many a second."""

    def __init__(self, every: float = 30.0) -> None:
        super().__init__()
        self._every = every
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        text = re.sub(r"\(after \d+ms|\d+ identical error\(s\) suppressed", "", record.getMessage())
        now = time.monotonic()
        if now - self._last.get(text, -self._every) < self._every:
            return False
        if len(self._last) > 1000:
            self._last.clear()
        self._last[text] = now
        return True


_KAFKA_LOG = logging.getLogger("consumers.librdkafka")  # librdkafka's own lines, through logging
_KAFKA_LOG.addFilter(_Repeats())

Headers = list[tuple[str, bytes]]
T = TypeVar("T")
_FORWARD_CHUNK = 1000  # accepted messages queued by one call into librdkafka


@dataclass(slots=True)
class Decoded:
    event_type: str
    record: dict[str, Any]
    message: Message


@dataclass(slots=True)
class Outbound:
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers | None = None


@dataclass(slots=True)
class Outcome:
    """What a handler made of a batch: messages to publish (accepted events, dead letters), and messages
    of the batch to publish again as they came, key and value, to ``forward_topic`` (no object each)."""

    outbound: list[Outbound] = field(default_factory=list)
    forward: Sequence[Message] = ()
    forward_topic: str = ""


class BatchHandler(Protocol):
    def handle(self, events: Sequence[Decoded], batch: Sequence[Message]) -> Outcome: ...


class MessageHandler(Protocol):
    """A handler that takes the batch's messages undecoded (the loop then decodes nothing).

    ``prepare`` does the batch's own work, the part that needs nothing but its messages (no store, no
    earlier batch), and ``handle_messages`` takes its result; ``PipelinedLoop`` prepares a full batch
    while the one before it is still being handled. Without a result (None) the handler prepares itself.
    """

    def prepare(self, batch: Sequence[Message]) -> Any: ...

    def handle_messages(self, batch: Sequence[Message], prepared: Any = None) -> Outcome: ...


@runtime_checkable
class PartitionAware(Protocol):
    """A handler with state per partition, told which partitions its consumer gains (with each topic's
    partition count; a topic the broker gave none for is left out) and loses."""

    def partitions_assigned(self, partitions: Sequence[tuple[str, int]], counts: Mapping[str, int]) -> None: ...

    def partitions_revoked(self, partitions: Sequence[tuple[str, int]]) -> None: ...


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


def dead_letter(message: Message, dlq_topic: str, error: AssetpipeError) -> Outbound:
    """The original bytes, with the reason and the source position in headers."""
    original = message.headers() or []
    pairs = original.items() if isinstance(original, dict) else original
    headers: Headers = [(k, v if isinstance(v, bytes) else (v or "").encode()) for k, v in pairs]
    headers += [
        ("error_code", error.code.encode()),
        ("error_reason", str(error).encode()),
        ("source_topic", (message.topic() or "").encode()),
        ("source_partition", str(message.partition()).encode()),
        ("source_offset", str(message.offset()).encode()),
    ]
    return Outbound(dlq_topic, message.key(), message.value() or b"", headers)


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


def _kafka_headers(headers: Headers | None) -> list[tuple[str, str | bytes | None]] | None:
    return None if headers is None else [(k, v) for k, v in headers]


class ConsumerLoop:
    def __init__(
        self,
        settings: Settings,
        *,
        group_id: str,
        topics: Sequence[str],
        handler: BatchHandler | MessageHandler,
        codec: Codec | None,
        retryable: tuple[type[Exception], ...] = (),
        max_rows: int | None = None,
        max_seconds: float | None = None,
        idle_seconds: float = 0.5,
        consumer_overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = LoopMetrics()
        self.name = group_id
        self.topics: tuple[str, ...] = tuple(topics)
        self.publish_timeout = 60.0  # the longest a batch's publishing waits for the broker's acks
        self._topics = list(topics)
        self._handler = handler
        self._codec = codec
        self._retryable = retryable
        self._max_rows = max_rows or settings.ingest_batch_max_rows
        self._max_seconds = max_seconds or settings.ingest_batch_max_seconds
        self._idle_close = settings.ingest_batch_idle_seconds
        self._last_arrival = 0.0  # when a consume last returned messages
        self._dlq = settings.topics.dlq
        self._idle_seconds = idle_seconds  # longest wait for a first message: a floor on latency
        conf = {**settings.consumer_config(group_id), **(consumer_overrides or {})}
        conf["stats_cb"] = self._on_stats
        conf.setdefault("logger", _KAFKA_LOG)
        self._consumer = Consumer(conf)
        # Only failures need a delivery report: success is a flush that leaves nothing queued. One
        # callback for the producer, not one per message: per-message callbacks cost a third of a produce.
        self._delivery_failures: list[str] = []
        producer_config = {**settings.producer_config(), "delivery.report.only.error": True}
        self._producer = Producer({**producer_config, "on_delivery": self._on_delivery, "logger": _KAFKA_LOG})
        # What forwarding may queue in one call (``_forward``): half the queue's bounds, so librdkafka's
        # own accounting of a message (payload, key and a little more) cannot fill it first.
        self._chunk_room = (
            int(producer_config.get("queue.buffering.max.messages", 100_000)) // 2,
            int(producer_config.get("queue.buffering.max.kbytes", 1_048_576)) * 1024 // 2,
        )
        self._batch: list[Message] = []
        self._assigned: set[tuple[str, int]] = set()
        self._gained: list[tuple[str, int]] = []  # assigned, not yet told to the handler
        # Set by the owner to stop cleanly: the loop then measures its ``backlog`` each turn, for the
        # owner to stop it once every loop it runs is caught up.
        self.draining = False
        self.backlog: Backlog | None = None

    # -- the loop ---------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        self._consumer.subscribe(self._topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        self.metrics.state = "running"
        try:
            deadline = 0.0
            while not stop.is_set():
                timeout = max(0.0, self._closes(deadline) - time.monotonic()) if self._batch else self._idle_seconds
                deadline = self._gather(timeout, deadline)
                if self._batch and (len(self._batch) >= self._max_rows or time.monotonic() >= self._closes(deadline)):
                    self._flush(stop)
                if self.draining:
                    self._measure_backlog()
            self._flush(stop, final=True)
        finally:
            self.metrics.state = "stopped"
            self._close()

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

    def _flush(self, stop: threading.Event, *, final: bool = False) -> None:
        if not self._batch:
            return
        started = time.monotonic()
        delay = 0.2
        while True:
            batch = self._batch
            try:
                outcome = self._process(batch)
                break
            except self._retryable as exc:
                self.metrics.state = "waiting for warehouse"
                self.metrics.last_error = str(exc)
                self.metrics.retries += 1
                log.warning("retrying a batch of %d in %.1fs: %s", len(batch), delay, exc)
                self._wait(delay, stop if not final else None)
                delay = min(delay * 2, 30.0)
                if not self._batch:  # every partition of the batch was revoked meanwhile
                    return
        self._complete(batch, outcome, started, asynchronous=not final)
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

    def _process(self, batch: list[Message], prepared: Any = None) -> Outcome:
        return without_gc(self._decode_and_handle, batch, prepared)

    def _decode_and_handle(self, batch: list[Message], prepared: Any) -> Outcome:
        if self._codec is None:
            outcome = cast("MessageHandler", self._handler).handle_messages(batch, prepared)
            self.metrics.dead_lettered += sum(1 for o in outcome.outbound if o.topic == self._dlq)
            return outcome
        decoded: list[Decoded] = []
        dead: list[Outbound] = []
        decode = self._codec.decode
        for message in batch:
            try:
                event_type, record = decode(message.value() or b"")
            except DecodeError as exc:
                dead.append(dead_letter(message, self._dlq, exc))
                continue
            decoded.append(Decoded(event_type, record, message))
        outcome = cast("BatchHandler", self._handler).handle(decoded, batch)
        self.metrics.dead_lettered += len(dead) + sum(1 for o in outcome.outbound if o.topic == self._dlq)
        outcome.outbound.extend(dead)
        return outcome

    def _wait(self, seconds: float, stop: threading.Event | None) -> None:
        """Back off with the partitions paused, still serving group membership."""
        assignment = self._consumer.assignment()
        if assignment:
            self._consumer.pause(assignment)
        try:
            end = time.monotonic() + seconds
            while time.monotonic() < end and not (stop and stop.is_set()):
                for message in self._consumer.consume(100, min(0.1, max(0.0, end - time.monotonic()))):
                    if message.error() is None:  # fetched before the pause; kept in order
                        self._batch.append(message)
        finally:
            assignment = self._consumer.assignment()
            if assignment:
                self._consumer.resume(assignment)

    def _publish(self, outcome: Outcome) -> None:
        if not outcome.outbound and not outcome.forward:
            return
        failures = self._delivery_failures
        failures.clear()
        produce = self._producer.produce
        for item in outcome.outbound:
            headers = _kafka_headers(item.headers)
            try:
                produce(item.topic, item.value, item.key, headers=headers)
            except BufferError:
                self._produce_when_room(item.topic, item.value, item.key, headers)
        if outcome.forward:
            self._forward(outcome.forward_topic, outcome.forward, queued=len(outcome.outbound))
        remaining = self._producer.flush(self.publish_timeout)
        if remaining or failures:
            # offsets stay uncommitted: the batch is redelivered, and dedup keeps it single
            raise ConsumerError(f"could not publish {remaining + len(failures)} messages: {failures[:3]}")

    def _forward(self, topic: str, messages: Sequence[Message], *, queued: int) -> None:
        """Produce ``messages`` again as they came, ``_FORWARD_CHUNK`` to a call into librdkafka
        (``produce_batch``: a third of a message's cost is the call). A batch's publishing starts on an
        empty queue (the one before ended with a flush) holding ``queued`` messages of its own, so what
        this call queues is known: a chunk goes whole only while it fits the room left, as a chunk that met
        a full queue midway could be queued out of order (librdkafka tries each message after a refused
        one). The rest goes one message at a time, waiting for room."""
        produce_batch, produce = self._producer.produce_batch, self._producer.produce
        max_count, max_bytes = self._chunk_room
        size = 0
        start, end = 0, len(messages)
        while start < end and queued + _FORWARD_CHUNK <= max_count:
            chunk: list[dict[str, Any]] = [
                {"value": m.value(), "key": m.key()} for m in messages[start : start + _FORWARD_CHUNK]
            ]
            size += sum(len(c["value"] or b"") + len(c["key"] or b"") for c in chunk)
            if size > max_bytes:
                break
            if produce_batch(topic, chunk) < len(chunk):
                refused = [c["_error"] for c in chunk if "_error" in c]
                raise ConsumerError(f"could not publish {len(refused)} accepted messages to {topic}: {refused[0]}")
            queued += len(chunk)
            start += len(chunk)
        for message in messages[start:]:
            try:
                produce(topic, message.value(), message.key())
            except BufferError:
                self._produce_when_room(topic, message.value(), message.key(), None)

    def _produce_when_room(self, topic: str, value: bytes | None, key: bytes | None, headers: Any) -> None:
        while True:
            self._producer.poll(0.05)  # serves delivery reports: the queue drains
            try:
                self._producer.produce(topic, value, key, headers=headers)
                return
            except BufferError:
                continue

    def _held(self) -> int:
        """Messages consumed and not yet committed, beyond the batch being gathered."""
        return 0

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

    def _on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self._delivery_failures.append(str(err))

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
        if gained:
            cast("PartitionAware", self._handler).partitions_assigned(gained, counts)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
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
            self._producer.flush(min(10.0, self.publish_timeout))
            self._producer.close()  # now, not when the collector frees this loop: it would keep reconnecting
        finally:
            self._consumer.close()
