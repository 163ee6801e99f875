"""Publishing from the event loop: events go to the ``Publisher``; the broker's acknowledgements come back
to the loop without blocking it, within a bounded wait.

A request's events are produced at once (never blocking: a full local queue is ``QueueFullError`` at
once, i.e. 503). Delivery reports are served on the event loop itself: ``publish`` polls once a request's
events are produced, and a pump task polls every millisecond while events are in flight. A request's
``_Waiter`` is the delivery callback of all its events (no object per event): it counts them down on the
loop and completes the request's future directly, with no thread handing reports over (and no lock, no
GIL ping-pong per report). A request answers when all its events settled or after
``http_publish_timeout_s`` (librdkafka's ``message.timeout.ms`` is the same, so an event given up on here
is also given up on by the producer; should the wait end first, every event not yet known failed is
answered as not acknowledged, since a count does not say which ones arrived).

A probe thread asks the broker for metadata every second: while it cannot be reached, requests fail at
once with 503 instead of waiting out the timeout. The publisher is replaced when it turned fatal, when
the broker returns after an outage, and when an event was not delivered although the broker answered:
an idempotent producer whose id a restarted memory-only broker forgot either turns fatal or retries
that id forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message
from confluent_kafka.admin import AdminClient

from assetpipe.producers.exceptions import PublishError, QueueFullError
from assetpipe.producers.http.exceptions import BrokerUnavailableError, NotAcknowledgedError
from assetpipe.producers.publisher import Publisher
from assetpipe.schemas.encoder import Encoded
from assetpipe.schemas.settings import Settings

log = logging.getLogger(__name__)
_KAFKA_LOG = logging.getLogger("producers.librdkafka")

_PROBE_INTERVAL_S = 1.0
_PROBE_TIMEOUT_S = 2.0
_CHUNK = 2000  # events produced between two turns of the event loop
_PUMP_BUSY_S = 0.001  # delivery reports are served this often while events are in flight
_PUMP_IDLE_S = 0.05  # and this often otherwise (error and log callbacks)


@dataclass(slots=True, eq=False)
class _Waiter:
    """One request's events in flight, and their delivery callback (``settled``)."""

    future: asyncio.Future[None]
    results: list[PublishError | None]
    events: Sequence[Encoded]
    delivery: Delivery
    deadline: float = 0.0
    pending: int = 0
    producing: bool = True  # the wait cannot end before every event is produced, even if all so far settled
    _positions: dict[bytes, list[int]] | None = None  # message value -> its indexes, built at the first failure

    def settled(self, err: KafkaError | None, msg: Message) -> None:
        """A message settled (on the loop: only the loop polls while it runs)."""
        self.pending -= 1
        if err is not None and not self.future.done():
            index = self._index_of(msg.value() or b"")
            if index is not None:
                self.results[index] = self.delivery._not_acknowledged(str(err.str()))
        if self.pending == 0 and not self.producing and not self.future.done():
            self.future.set_result(None)

    def _index_of(self, value: bytes) -> int | None:
        """Which event a failed message was: found by its bytes (each carries its own event id)."""
        if self._positions is None:
            self._positions = {}
            for index, event in enumerate(self.events):
                self._positions.setdefault(event.value, []).append(index)
        indexes = self._positions.get(value)
        return indexes.pop() if indexes else None

    def give_up(self, reason: str) -> None:
        """The wait ended with events unsettled: every event not known failed is answered ``reason``."""
        if self.pending > 0:
            failure = NotAcknowledgedError(reason)
            self.results[:] = [failure if r is None else r for r in self.results]


class Delivery:
    """The HTTP API's way to the broker. ``start`` on the serving loop before ``publish``; ``stop`` on it."""

    def __init__(self, settings: Settings, observe_latency: Callable[[float], None] | None = None) -> None:
        self._wait_s = settings.http_publish_timeout_s
        self._config: dict[str, Any] = {
            **settings.producer_config(),
            "message.timeout.ms": max(1, round(self._wait_s * 1000)),
            # Every answer waits for its ack, so lingering adds to each request's latency; under load,
            # messages queue while a produce request is in flight and batch anyway.
            "linger.ms": min(settings.producer_linger_ms, 1),
            "reconnect.backoff.max.ms": 1000,  # find a returning broker within a second, not ten
        }
        self._probe_config = {**settings.as_librdkafka_dict(), "reconnect.backoff.max.ms": 1000, "logger": _KAFKA_LOG}
        self._queue_max = settings.producer_queue_max_messages
        self._topic = settings.topics.events
        self._observe = observe_latency
        self._publisher: Publisher | None = None
        self._retired: list[tuple[Publisher, float]] = []
        self._deadlines: deque[_Waiter] = deque()  # the requests waiting, in deadline order: every wait is as long
        self._pump_task: asyncio.Task[None] | None = None
        self._busy = asyncio.Event()
        self._stop = threading.Event()
        self._probe_thread: threading.Thread | None = None
        self.reachable = True  # until the first probe says otherwise
        self.broker_error: str | None = None
        self._stale: str | None = None  # why the producer should be replaced before its next use
        self._replaced_at = 0.0
        self._reachable_at = 0.0  # when the probe last reached the broker (monotonic)

    @property
    def in_flight(self) -> int:
        return sum(waiter.pending for waiter in self._deadlines if not waiter.future.done())

    def start(self) -> None:
        self._publisher = Publisher(self._config, backpressure_timeout_s=0.0)
        self._pump_task = asyncio.get_running_loop().create_task(self._pump())
        self._probe_thread = threading.Thread(target=self._probe, name="http-broker-probe", daemon=True)
        self._probe_thread.start()

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop serving reports on the loop, then flush what is queued (in a thread: it blocks)."""
        self._stop.set()
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task
        for waiter in self._deadlines:  # a request still waiting is answered as timed out
            if not waiter.future.done():
                waiter.give_up(self._timed_out)
                waiter.future.set_result(None)
        self._deadlines.clear()  # every request has been answered; late reports have nobody to tell
        publishers = [p for p, _ in self._retired] + ([self._publisher] if self._publisher else [])
        self._publisher, self._retired = None, []
        await asyncio.to_thread(self._close, publishers, timeout)

    def _close(self, publishers: list[Publisher], timeout: float) -> None:
        if self._probe_thread is not None:
            self._probe_thread.join()
        for publisher in publishers:
            try:
                publisher.close(timeout)
            except PublishError as exc:  # every client was told: the waits ended with 503
                log.warning("HTTP API producer closed with undelivered events: %s", exc)

    def ready(self) -> dict[str, Any]:
        """Readiness: the broker answers and the producer's queue has room."""
        publisher = self._publisher
        queued = publisher.pending if publisher is not None else 0
        return {
            "broker": "reachable" if self.reachable and publisher is not None else "unreachable",
            "broker_error": None if self.reachable else self.broker_error,
            "queued": queued,
            "queue_max": self._queue_max,
            "ready": publisher is not None and self.reachable and queued < self._queue_max,
        }

    async def publish(
        self, events: Sequence[Encoded], topic: str | None = None, *, topics: Sequence[str] | None = None
    ) -> list[PublishError | None]:
        """Produce ``events`` (to the events topic unless ``topic``; event ``i`` to ``topics[i]`` when given)
        and wait for the broker once for them all; per event, None (acknowledged) or why not."""
        results: list[PublishError | None] = [None] * len(events)
        if not events:
            return results
        try:
            publisher = self._current()
        except BrokerUnavailableError as exc:
            return [exc] * len(events)
        waiter = _Waiter(asyncio.get_running_loop().create_future(), results, events, self)
        started = time.perf_counter()
        settled, topic, send = waiter.settled, topic or self._topic, publisher.send
        for index, event in enumerate(events):
            if index and index % _CHUNK == 0:
                await asyncio.sleep(0)  # a large batch must not starve the other requests
            waiter.pending += 1  # before the send: its report may be served within it
            try:
                send(topic if topics is None else topics[index], event.key, event.value, settled)
            except QueueFullError as exc:
                waiter.pending -= 1
                full = BrokerUnavailableError(f"Event not stored: the producer queue is full ({exc.queued} queued)")
                results[index:] = [full] * (len(events) - index)
                break
            except PublishError as exc:
                waiter.pending -= 1
                results[index] = exc
        waiter.producing = False
        if waiter.pending:
            try:
                publisher.poll(0)  # reports already in: a request the broker answers at once ends here
            except PublishError as exc:  # a fatal producer: its messages settle, it is replaced for the next
                log.warning("polling the HTTP API producer: %s", exc)
        if waiter.pending:
            self._busy.set()
            # librdkafka gives up first (message.timeout.ms); the pump ends the wait a little after it
            waiter.deadline = time.monotonic() + self._wait_s + 0.25
            self._deadlines.append(waiter)
            await waiter.future
            if waiter.pending:  # the deadline passed
                waiter.give_up(self._timed_out)
            if self._observe is not None:
                self._observe(time.perf_counter() - started)
        return results

    def _current(self) -> Publisher:
        publisher = self._publisher
        if publisher is None:
            raise BrokerUnavailableError("Event not stored: the HTTP API is not connected to the broker")
        if not self.reachable:
            raise BrokerUnavailableError(f"Event not stored: the broker is unavailable ({self.broker_error})")
        reason = publisher.fatal_error or self._stale
        down = publisher.all_down_at
        if reason is None and down is not None and self._reachable_at > down:
            # it lost every broker and the probe has reached one since: a broker that restarted (faster
            # than a probe could see it gone) may not know its producer id, and would time its events out
            reason = "the broker returned after this producer lost it"
        if reason is not None:
            log.warning("replacing the HTTP API producer: %s", reason)
            self._stale = None
            self._replaced_at = time.monotonic()
            self._retired.append((publisher, self._replaced_at))
            publisher = self._publisher = Publisher(self._config, backpressure_timeout_s=0.0)
        return publisher

    @property
    def _timed_out(self) -> str:
        return f"Event not stored: the broker did not acknowledge it within {self._wait_s:g}s"

    def _not_acknowledged(self, reason: str) -> NotAcknowledgedError:
        if self.reachable and time.monotonic() - self._replaced_at > self._wait_s:
            # The broker answers, yet this producer could not deliver: e.g. an idempotent producer whose
            # producer id a restarted memory-only broker forgot retries that id forever.
            self._stale = f"an event was not delivered while the broker was reachable ({reason})"
        return NotAcknowledgedError(f"Event not stored: the broker did not acknowledge it ({reason})")

    async def _pump(self) -> None:
        while True:
            publisher = self._publisher
            if publisher is not None:
                publisher.poll(0)
            if self._retired:
                self._serve_retired()
            if self._deadlines:
                self._expire()
            if self._deadlines:
                await asyncio.sleep(_PUMP_BUSY_S)
                continue
            self._busy.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_PUMP_IDLE_S):
                    await self._busy.wait()  # set by the next request that waits for the broker

    def _expire(self) -> None:
        """End the waits that are over, or past their deadline (a timer per request would cost more)."""
        deadlines, now = self._deadlines, time.monotonic()
        while deadlines and (deadlines[0].future.done() or deadlines[0].deadline <= now):
            future = deadlines.popleft().future
            if not future.done():
                future.set_result(None)

    def _serve_retired(self) -> None:
        keep = []
        for publisher, since in self._retired:
            publisher.poll(0)
            if publisher.pending and time.monotonic() - since < self._wait_s + 1:
                keep.append((publisher, since))
                continue
            with contextlib.suppress(PublishError):  # its messages were answered 503 (failed or timed out)
                publisher.close(0)
        self._retired = keep

    def _probe(self) -> None:
        admin = AdminClient(self._probe_config)
        while not self._stop.is_set():
            try:
                admin.list_topics(timeout=_PROBE_TIMEOUT_S)
            except KafkaException as exc:
                self.broker_error = str(exc.args[0].str() if exc.args else exc)
                if self.reachable:
                    log.warning("the broker is unreachable; answering 503 until it returns: %s", self.broker_error)
                self.reachable = False
            else:
                self._reachable_at = time.monotonic()
                if not self.reachable:
                    log.info("the broker is reachable again")
                    self._stale = "the broker returned after an outage (a restarted broker may not know our producer)"
                self.reachable = True
            self._stop.wait(_PROBE_INTERVAL_S)
