"""The publisher: bytes onto a Kafka topic, with backpressure and delivery tracking.

Owns the confluent-kafka ``Producer`` of a process. It moves ``(topic, key, value, headers)`` and knows
nothing about events: the SDK, the HTTP API and the file backfill all publish through it. The event id it
is given is only the label that receipts and failure reports carry.

How nothing is lost:
- A full local queue (librdkafka's ``BufferError``) is backpressure: ``publish`` serves delivery reports
  and retries until ``backpressure_timeout_s`` elapses, then raises ``QueueFullError``; it never drops.
- Each message's fate reaches the caller exactly once: through its ``Receipt.result()`` if the caller
  asks, otherwise through the next ``flush()``/``close()``, which raises ``DeliveryError`` naming the
  failed event ids. ``failed`` shows failures not yet raised.
- ``flush``/``close`` raise ``PublishTimeoutError`` if messages are still queued when the timeout ends.

Delivery reports are served by whichever thread calls ``publish``/``flush``/``Receipt.result`` (librdkafka
calls back from ``poll``); the publisher may be shared between threads.

Publishing without a receipt per message: ``send`` queues a message and either reports only its failure
(by the next ``flush``, the barrier that says every message sent before it is acknowledged: a backfill)
or tells a callback the caller gives, which may serve many messages (a request of the HTTP API). A
publisher built with ``receipts=False`` asks librdkafka for failure reports only
(``delivery.report.only.error``): no delivery report at all for the messages that arrive, which is most
of what a message costs beyond its produce. Such a publisher has no ``publish``, whose receipts would
never settle.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from assetpipe.producers.exceptions import (
    DeliveryError,
    PublisherClosedError,
    PublishError,
    PublishTimeoutError,
    QueueFullError,
)
from assetpipe.schemas.errors import ConfigError
from assetpipe.schemas.settings import Settings

Headers = dict[str, str | bytes | None] | list[tuple[str, str | bytes | None]]


class KeyValue(Protocol):
    """A message to send as it is: a consumed ``confluent_kafka.Message``, for one."""

    def key(self) -> bytes | None: ...

    def value(self) -> bytes | None: ...


_POLL_SLICE_S = 0.05
_POLL_EVERY = 32
# librdkafka's RD_KAFKA_PARTITION_UA: the partitioner chooses. Per-message ``produce`` calls without
# headers pass (topic, value, key, partition, on_delivery) by position: keyword arguments cost its
# argument parser ~2,800 instructions a message, a twentieth of a report.
_ANY_PARTITION = -1
_BATCH_CHUNK = 1000  # messages queued by one call of ``send_batch`` into librdkafka
_LOG = logging.getLogger(__name__)
# librdkafka's own lines, through logging, for every Kafka client of the process
LIBRDKAFKA_LOG = logging.getLogger("producers.librdkafka")


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


LIBRDKAFKA_LOG.addFilter(_Repeats())


class Receipt:
    """The fate of one published message: pending until the broker acknowledges it or librdkafka gives
    up on it. ``event_id`` is the id of the event it carries; ``result()`` waits for the outcome.

    The receipt is itself the message's delivery callback, so tracking costs one small object per message;
    a caller that never looks at it loses nothing (see ``Publisher.flush``). It holds its publisher weakly:
    librdkafka holds the receipt until the message settles, and a strong reference back would keep a
    dropped publisher (and its producer threads) alive.
    """

    __slots__ = ("_outcome", "_publisher", "event_id")

    def __init__(self, event_id: str, publisher: weakref.ref[Publisher]) -> None:
        self.event_id = event_id
        self._publisher = publisher
        self._outcome: KafkaError | bool | None = None  # None: pending; True: delivered; else why it failed

    @property
    def done(self) -> bool:
        """True once the broker acknowledged the message or delivery failed for good."""
        return self._outcome is not None

    @property
    def error(self) -> str | None:
        """Why delivery failed, or None (delivered, or not settled yet)."""
        outcome = self._outcome
        return str(outcome.str()) if isinstance(outcome, KafkaError) else None

    def result(self, timeout: float | None = None) -> None:
        """Block until the broker has acknowledged this message (``acks=all``).

        Raises ``DeliveryError`` if delivery failed, and ``PublishTimeoutError`` if it is still pending
        after ``timeout`` seconds (None: wait until librdkafka settles it, at most ``message.timeout.ms``).
        """
        publisher = self._publisher()
        if self._outcome is None:
            if publisher is None:
                raise PublisherClosedError(f"event {self.event_id}: publisher dropped before delivery")
            publisher._wait_for(self, timeout)
        error = self.error
        if error is not None:
            if publisher is not None:
                with contextlib.suppress(ValueError):  # a flush in another thread took it already
                    publisher._failures.remove(self)  # raised here: no flush raises it again
            raise DeliveryError([(self.event_id, error)])

    def __call__(self, err: KafkaError | None, _msg: Message) -> None:
        """The delivery report (librdkafka calls it from ``poll``)."""
        if err is None:
            self._outcome = True
            return
        self._outcome = err
        publisher = self._publisher()
        if publisher is not None:
            publisher._failures.append(self)

    def __repr__(self) -> str:
        state = "pending" if self._outcome is None else "failed" if self._outcome is not True else "delivered"
        return f"<Receipt {self.event_id} {state}>"


class _NotifyingReceipt(Receipt):
    """A receipt that also tells ``on_settled`` once its message settles."""

    __slots__ = ("_on_settled",)

    def __init__(self, event_id: str, publisher: weakref.ref[Publisher], on_settled: Callable[[Receipt], None]) -> None:
        super().__init__(event_id, publisher)
        self._on_settled = on_settled

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        super().__call__(err, msg)
        self._on_settled(self)


class Publisher:
    """A thin owner of one confluent-kafka ``Producer``: produce with backpressure, track deliveries,
    flush and close. Build it with ``from_settings``; the constructor takes a raw librdkafka config."""

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        backpressure_timeout_s: float = 30.0,
        receipts: bool = True,
        label: Callable[[bytes], str] | None = None,
    ) -> None:
        """``receipts=False``: a publisher for ``send`` only (see the module's docstring). ``label`` names
        a message ``send`` queued in a failure report, from its value (e.g. the event id it carries);
        the default is its key."""
        self._self_ref = weakref.ref(self)
        conf = dict(config)
        conf.setdefault("error_cb", _error_callback(self._self_ref))
        conf.setdefault("logger", LIBRDKAFKA_LOG)
        # The report of a message ``send`` queued (``publish`` gives each message a callback of its own).
        conf["on_delivery"] = _sent_callback(self._self_ref)
        if not receipts:
            conf["delivery.report.only.error"] = True
        self._receipts = receipts
        self._label = label
        self._sent = conf["on_delivery"]
        # What ``send_batch`` may queue whole: half the queue's bounds, so that librdkafka's own accounting
        # of a message (payload, key and a little more) cannot fill it first.
        self._room = (
            int(conf.get("queue.buffering.max.messages", 100_000)) // 2,
            int(conf.get("queue.buffering.max.kbytes", 1_048_576)) * 1024 // 2,
        )
        self._sent_failures: list[tuple[str, str]] = []
        try:
            self._producer = Producer(conf)
        except (KafkaException, TypeError, ValueError) as exc:
            raise ConfigError(f"invalid Kafka producer configuration: {exc}") from exc
        # Bound once: these run once per message.
        self._produce = self._producer.produce
        self._poll = self._producer.poll
        self.backpressure_timeout_s = backpressure_timeout_s
        self._failures: list[Receipt] = []
        self._unpolled = 0  # messages published since delivery reports were last served
        self._broker_error: str | None = None
        self._fatal_error: str | None = None
        self.all_down_at: float | None = None  # when librdkafka last said every broker was down (monotonic)
        self._closed = False

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        overrides: Mapping[str, Any] | None = None,
        *,
        receipts: bool = True,
        label: Callable[[bytes], str] | None = None,
    ) -> Publisher:
        """``settings.producer_config()`` (acks=all, idempotent, compressed, lingering) plus ``overrides``,
        extra librdkafka properties such as ``{"message.timeout.ms": 5000}``; ``receipts`` and ``label``
        as in the constructor."""
        return cls(
            {**settings.producer_config(), **(overrides or {})},
            backpressure_timeout_s=settings.producer_backpressure_timeout_s,
            receipts=receipts,
            label=label,
        )

    def publish(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Headers | None = None,
        *,
        event_id: str,
        on_settled: Callable[[Receipt], None] | None = None,
    ) -> Receipt:
        """Queue one message; returns its ``Receipt`` at once (delivery is asynchronous).

        ``on_settled(receipt)`` is called once the message settles, from the thread serving delivery
        reports (whichever calls ``poll``): for callers that wait without blocking, e.g. on an event loop.

        Raises ``QueueFullError`` if the local queue stays full for ``backpressure_timeout_s``, and
        ``PublishError`` if librdkafka refuses the message (e.g. over ``message.max.bytes``).
        """
        if self._closed:
            raise PublisherClosedError(f"event {event_id} not published: the publisher is closed")
        if not self._receipts:
            raise ConfigError("this publisher was built with receipts=False: use send()")
        if on_settled is None:
            receipt = Receipt(event_id, self._self_ref)
        else:
            receipt = _NotifyingReceipt(event_id, self._self_ref, on_settled)
        try:
            if headers is None:
                self._produce(topic, value, key, _ANY_PARTITION, receipt)
            else:
                self._produce(topic, value, key, on_delivery=receipt, headers=headers)
        except BufferError:
            self._produce_when_room(topic, key, value, headers, receipt, event_id)
        except KafkaException as exc:
            self._note_fatal(exc)
            raise _refused(exc, event_id, topic) from exc
        self._unpolled += 1
        if self._unpolled >= _POLL_EVERY:
            self._serve_reports()
        return receipt

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        on_delivery: Callable[[KafkaError | None, Message], None] | None = None,
        headers: Headers | None = None,
    ) -> None:
        """Queue one message without a receipt. Without ``on_delivery``, its failure, if any, is raised
        by the next ``flush`` or ``close`` (as ``DeliveryError``, labelled as the constructor's ``label``
        says). With it, ``on_delivery(error, message)`` is told its fate instead, from the thread serving
        delivery reports; one callback may serve many messages (on a ``receipts=False`` publisher it
        hears of failures only). A full queue and a refused message raise as in ``publish``."""
        if self._closed:
            raise PublisherClosedError(f"message to {topic} not sent: the publisher is closed")
        try:
            if headers is not None:
                self._produce(topic, value, key, on_delivery=on_delivery or self._sent, headers=headers)
            elif on_delivery is None:
                self._produce(topic, value, key)
            else:
                self._produce(topic, value, key, _ANY_PARTITION, on_delivery)
        except BufferError:
            self._produce_when_room(topic, key, value, headers, on_delivery, None)
        except KafkaException as exc:
            self._note_fatal(exc)
            raise _refused(exc, self._name(key, value), topic) from exc
        self._unpolled += 1
        if self._unpolled >= _POLL_EVERY:
            self._serve_reports()

    def send_batch(self, topic: str, messages: Sequence[KeyValue]) -> None:
        """Queue ``messages`` (each with ``key()`` and ``value()``, such as consumed messages) in order,
        without receipts, ``_BATCH_CHUNK`` to a call into librdkafka (the call is a third of a message's
        cost). A chunk goes whole only while it fits the room left in the queue: librdkafka tries each
        message after one it refused for a full queue, so a chunk meeting a full queue midway could be
        queued out of order. The rest goes one message at a time, waiting for room as ``send`` does.
        Failures are raised by the next ``flush``."""
        if self._closed:
            raise PublisherClosedError(f"messages to {topic} not sent: the publisher is closed")
        max_count, max_bytes = self._room
        queued = len(self._producer)
        size = 0
        start, end = 0, len(messages)
        while start < end and queued + _BATCH_CHUNK <= max_count:
            chunk: list[dict[str, Any]] = [
                {"value": m.value(), "key": m.key()} for m in messages[start : start + _BATCH_CHUNK]
            ]
            size += sum(len(c["value"] or b"") + len(c["key"] or b"") for c in chunk)
            if size > max_bytes:
                break
            if self._producer.produce_batch(topic, chunk) < len(chunk):
                refused = [c["_error"] for c in chunk if "_error" in c]
                raise PublishError(f"{len(refused)} messages not published to {topic}: {refused[0]}")
            queued += len(chunk)
            start += len(chunk)
        for message in messages[start:]:
            self.send(topic, message.key(), message.value() or b"")

    def _serve_reports(self) -> None:
        # Serving delivery reports costs a call into librdkafka even when none is waiting: ``publish`` and
        # ``send`` do it every ``_POLL_EVERY`` messages. Reports wait in librdkafka meanwhile; ``poll``,
        # ``result``, ``flush`` and a full queue serve them too (a caller awaiting ``on_settled`` polls when
        # it has published).
        self._unpolled = 0
        try:
            self._poll(0)
        except KafkaException as exc:  # a fatal error surfaces here; this message's receipt still settles
            if not self._note_fatal(exc):
                raise PublishError(f"Kafka producer: {exc}") from exc

    @property
    def failed(self) -> tuple[str, ...]:
        """Event ids (labels, for ``send``) whose delivery failed and that no ``flush`` or
        ``Receipt.result`` has raised yet."""
        return tuple(r.event_id for r in self._failures) + tuple(n for n, _ in self._sent_failures)

    @property
    def last_broker_error(self) -> str | None:
        """The last error librdkafka reported about the cluster (e.g. connection refused), or None."""
        return self._broker_error

    @property
    def fatal_error(self) -> str | None:
        """Set once librdkafka reported a fatal error: this producer refuses every message from then on
        and must be replaced (e.g. an idempotent producer after a memory-only broker restarted)."""
        return self._fatal_error

    @property
    def pending(self) -> int:
        """Messages not yet settled. Serves waiting delivery reports first: librdkafka's count also holds
        reports and logs not yet served."""
        if self._closed:
            return 0
        self._poll(0)
        return len(self._producer)

    def poll(self, timeout: float = 0.0) -> int:
        """Serve delivery reports for up to ``timeout`` seconds; returns how many were served. A fatal
        error librdkafka raises here is recorded in ``fatal_error``."""
        if self._closed:
            return 0
        try:
            return int(self._poll(timeout))
        except KafkaException as exc:
            if not self._note_fatal(exc):
                raise PublishError(f"Kafka producer: {exc}") from exc
            return 0

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every queued message is settled, for at most ``timeout`` seconds (None: until
        librdkafka settles them all, bounded by ``message.timeout.ms``).

        Raises ``DeliveryError`` listing every failure not raised before (by an earlier flush or by the
        message's ``Receipt.result``), then forgets them; ``PublishTimeoutError`` if messages remain.
        """
        if self._closed:  # close() flushed, and nothing can be queued since
            return
        remaining = int(self._producer.flush() if timeout is None else self._producer.flush(timeout))
        failures, self._failures = self._failures, []
        unraised = [(r.event_id, r.error or "") for r in failures]
        unraised += self._sent_failures
        self._sent_failures = []
        if unraised:
            raise DeliveryError(unraised, remaining=remaining)
        if remaining:  # only after a bounded flush: an unbounded one returns once the queue is empty
            raise PublishTimeoutError("queued messages", remaining, timeout or 0.0, self._broker_error)

    def close(self, timeout: float | None = None) -> None:
        """Flush (raising as ``flush`` does), then release the producer. If messages are still queued
        after ``timeout`` the producer stays open, so a later ``close``/``flush`` can still deliver them."""
        if self._closed:
            return
        try:
            self.flush(timeout)
        finally:
            if len(self._producer) == 0:
                self._closed = True
                self._producer.close()

    def __del__(self) -> None:
        # Dropping an open producer discards its queue: say so rather than lose events silently.
        if self.__dict__.get("_closed", True):
            return
        self._producer.poll(0)  # serve queued reports and logs, so what is left to count is messages
        queued = len(self._producer)
        if queued:
            _LOG.error("a Publisher was dropped without close(): %d queued messages are lost", queued)

    def __enter__(self) -> Publisher:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _produce_when_room(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: Headers | None,
        on_delivery: Callable[[KafkaError | None, Message], None] | None,
        event_id: str | None,
    ) -> None:
        """Wait for room in the queue (serving delivery reports), up to the backpressure timeout. The
        message is named only if it has to be reported: ``event_id``, else ``_name`` (which may decode it)."""
        deadline = time.monotonic() + self.backpressure_timeout_s
        extra: dict[str, Any] = {} if on_delivery is None else {"on_delivery": on_delivery}
        if headers is not None:
            extra["headers"] = headers
        while True:
            self._poll(min(_POLL_SLICE_S, max(0.0, deadline - time.monotonic())))
            try:
                self._produce(topic, value, key, **extra)
                return
            except BufferError as exc:
                if time.monotonic() >= deadline:
                    name = event_id if event_id is not None else self._name(key, value)
                    raise QueueFullError(
                        name, len(self._producer), self.backpressure_timeout_s, self._broker_error
                    ) from exc
            except KafkaException as exc:
                self._note_fatal(exc)
                raise _refused(exc, event_id if event_id is not None else self._name(key, value), topic) from exc

    def _name(self, key: bytes | None, value: bytes) -> str:
        """What a failure report calls a message ``send`` queued."""
        if self._label is not None:
            try:
                return self._label(value)
            except Exception:  # a report must not fail over its label
                pass
        return f"message with key {(key or b'').decode(errors='replace')!r}"

    def _on_sent(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._sent_failures.append((self._name(msg.key(), msg.value() or b""), str(err.str())))

    def _wait_for(self, receipt: Receipt, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = _POLL_SLICE_S if deadline is None else deadline - time.monotonic()
            self._poll(min(_POLL_SLICE_S, max(0.0, left)))
            if receipt._outcome is not None:
                return
            if timeout is not None and left <= 0:
                what = f"event {receipt.event_id}"
                raise PublishTimeoutError(what, len(self._producer), timeout, self._broker_error)

    def _note_fatal(self, exc: KafkaException) -> bool:
        """Record a fatal error (True); False for any other error."""
        error = exc.args[0] if exc.args else None
        if not isinstance(error, KafkaError) or not (error.fatal() or error.code() == KafkaError._FATAL):
            return False
        if self._fatal_error is None:
            self._fatal_error = str(error.str())
            _LOG.error("Kafka producer fatal error: %s", self._fatal_error)
        return True

    def _on_error(self, err: KafkaError) -> None:
        self._broker_error = str(err.str())
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self.all_down_at = time.monotonic()
        if err.fatal():
            self._fatal_error = self._broker_error
            _LOG.error("Kafka producer fatal error: %s", self._broker_error)
        else:  # librdkafka logs these itself (through producers.librdkafka) and retries
            _LOG.info("Kafka producer: %s", self._broker_error)


def _error_callback(ref: weakref.ref[Publisher]) -> Callable[[KafkaError], None]:
    # Weak, like receipts: the producer holds this callback, so a bound method would be a cycle.
    def on_error(err: KafkaError) -> None:
        publisher = ref()
        if publisher is not None:
            publisher._on_error(err)

    return on_error


def _sent_callback(ref: weakref.ref[Publisher]) -> Callable[[KafkaError | None, Message], None]:
    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        publisher = ref()
        if publisher is not None:
            publisher._on_sent(err, msg)

    return on_delivery


def _refused(exc: KafkaException, event_id: str, topic: str) -> PublishError:
    error = exc.args[0] if exc.args else exc
    reason = error.str() if isinstance(error, KafkaError) else str(error)
    return PublishError(f"event {event_id} not published to {topic}: {reason}")
