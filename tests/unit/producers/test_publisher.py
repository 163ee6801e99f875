"""Publisher: backpressure, delivery failures, timeouts, closing.

These publishers have no ``bootstrap.servers``: librdkafka never opens a socket, so messages wait in the
local queue until ``message.timeout.ms`` fails them (librdkafka checks timeouts once a second, so a
failing test takes about a second). That is exactly the broker-unreachable case, without a broker.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from assetpipe import DeliveryError, PublisherClosedError, PublishError, PublishTimeoutError, QueueFullError
from assetpipe.producers.publisher import Publisher
from assetpipe.schemas.errors import ConfigError

FAILS_FAST = {"message.timeout.ms": 100}
NEVER_FAILS = {"message.timeout.ms": 600_000}


@pytest.fixture
def offline() -> Iterator[Any]:
    """A factory of broker-less publishers; each is drained at teardown so none outlives its test."""
    made: list[Publisher] = []

    def make(config: dict[str, Any], backpressure_timeout_s: float = 0.2, **options: Any) -> Publisher:
        publisher = Publisher(config, backpressure_timeout_s=backpressure_timeout_s, **options)
        made.append(publisher)
        return publisher

    yield make
    for publisher in made:  # fail what is still queued, so no publisher logs a loss at teardown
        if publisher.pending:
            publisher._producer.purge()
            publisher._producer.flush(1)


def wait_settled(publisher: Publisher, receipts: list[Any], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not all(r.done for r in receipts) and time.monotonic() < deadline:
        publisher.poll(0.05)


def test_receipt_result_raises_delivery_error(offline: Any) -> None:
    publisher = offline(FAILS_FAST)
    receipt = publisher.publish("events", b"a/b", b"payload", event_id="e1")
    with pytest.raises(DeliveryError) as raised:
        receipt.result(timeout=10)
    assert raised.value.code == "delivery_failed"
    assert raised.value.event_ids == ("e1",)
    assert "Message timed out" in str(raised.value)
    assert receipt.done and receipt.error == "Local: Message timed out"
    # Raised once: flush does not report it again, and nothing is left pending.
    publisher.flush(timeout=5)
    assert publisher.failed == ()


def test_fire_and_forget_failures_are_raised_by_flush(offline: Any) -> None:
    publisher = offline(FAILS_FAST)
    awaited = publisher.publish("events", b"a", b"1", event_id="e1")
    receipts = [publisher.publish("events", b"a", b"2", event_id=f"e{i}") for i in (2, 3)]
    with pytest.raises(DeliveryError):
        awaited.result(timeout=10)
    wait_settled(publisher, receipts)
    assert publisher.failed == ("e2", "e3")

    with pytest.raises(DeliveryError, match="2 events were not delivered") as raised:
        publisher.flush(timeout=5)
    assert raised.value.event_ids == ("e2", "e3")
    assert raised.value.reasons == ("Local: Message timed out", "Local: Message timed out")
    assert publisher.failed == ()
    publisher.flush(timeout=5)  # reported once


def test_sent_messages_report_only_their_failures_by_flush(offline: Any) -> None:
    publisher = offline(FAILS_FAST, receipts=False, label=lambda value: f"event-{value.decode()}")
    publisher.send("events", b"a", b"1")
    publisher.send("events", b"b", b"2")
    with pytest.raises(DeliveryError, match="2 events were not delivered") as raised:
        publisher.flush(timeout=10)
    assert sorted(raised.value.event_ids) == ["event-1", "event-2"]
    assert raised.value.reasons == ("Local: Message timed out", "Local: Message timed out")
    publisher.flush(timeout=5)  # reported once
    with pytest.raises(ConfigError, match="receipts=False"):
        publisher.publish("events", b"a", b"3", event_id="e3")  # its receipt would never settle


def test_send_beside_publish_names_a_failure_by_its_key(offline: Any) -> None:
    publisher = offline(FAILS_FAST)
    receipt = publisher.publish("events", b"a", b"1", event_id="e1")
    publisher.send("events", b"sales/daily", b"2")
    with pytest.raises(DeliveryError) as raised:
        publisher.flush(timeout=10)
    assert sorted(raised.value.event_ids) == ["e1", "message with key 'sales/daily'"]
    assert receipt.done


def test_send_waits_for_room_then_raises_queue_full(offline: Any) -> None:
    publisher = offline({**NEVER_FAILS, "queue.buffering.max.messages": 1}, receipts=False, label=bytes.decode)
    publisher.send("events", b"a", b"e1")
    with pytest.raises(QueueFullError, match="event e2 not published: the local produce queue stayed full"):
        publisher.send("events", b"a", b"e2")


def test_result_times_out_while_the_message_is_still_queued(offline: Any) -> None:
    publisher = offline(NEVER_FAILS)
    receipt = publisher.publish("events", b"a", b"1", event_id="e1")
    with pytest.raises(PublishTimeoutError, match=r"event e1 not acknowledged within 0\.1s") as raised:
        receipt.result(timeout=0.1)
    assert raised.value.code == "publish_timeout"
    assert raised.value.remaining >= 1
    assert not receipt.done


def test_flush_and_close_time_out_without_dropping(offline: Any) -> None:
    publisher = offline(NEVER_FAILS)
    publisher.publish("events", b"a", b"1", event_id="e1")
    with pytest.raises(PublishTimeoutError, match="1 messages still queued"):
        publisher.flush(timeout=0.1)
    with pytest.raises(PublishTimeoutError):
        publisher.close(timeout=0.1)
    assert publisher.pending == 1
    publisher.publish("events", b"a", b"2", event_id="e2")  # still open: the queue is kept


def test_full_queue_raises_queue_full_after_backpressure_timeout(offline: Any) -> None:
    publisher = offline({**NEVER_FAILS, "queue.buffering.max.messages": 1}, backpressure_timeout_s=0.2)
    publisher.publish("events", b"a", b"1", event_id="e1")
    started = time.monotonic()
    with pytest.raises(QueueFullError, match="event e2 not published: the local produce queue stayed full") as raised:
        publisher.publish("events", b"a", b"2", event_id="e2")
    assert time.monotonic() - started >= 0.2
    assert raised.value.code == "queue_full"
    assert raised.value.event_id == "e2"


def test_full_queue_waits_for_room(offline: Any) -> None:
    publisher = offline({**FAILS_FAST, "queue.buffering.max.messages": 1}, backpressure_timeout_s=10)
    first = publisher.publish("events", b"a", b"1", event_id="e1")
    second = publisher.publish("events", b"a", b"2", event_id="e2")  # waits until e1 leaves the queue
    assert first.done and first.error is not None
    with pytest.raises(DeliveryError) as raised:
        second.result(timeout=10)  # it was queued, not dropped: it meets its own fate
    assert raised.value.event_ids == ("e2",)


def test_message_refused_by_librdkafka_is_a_publish_error(offline: Any) -> None:
    publisher = offline({"message.max.bytes": 1000})
    with pytest.raises(PublishError, match=r"event big not published to events: .*too large") as raised:
        publisher.publish("events", b"a", b"x" * 2000, event_id="big")
    assert raised.value.code == "publish_failed"


def test_closed_publisher_refuses_to_publish(offline: Any) -> None:
    publisher = offline({})
    with publisher:
        pass
    publisher.close()  # idempotent
    with pytest.raises(PublisherClosedError):
        publisher.publish("events", b"a", b"1", event_id="e1")


def test_invalid_config_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"no\.such\.property"):
        Publisher({"no.such.property": 1})


def test_dropping_an_open_publisher_is_logged_not_silent(caplog: pytest.LogCaptureFixture) -> None:
    publisher = Publisher(NEVER_FAILS)
    receipt = publisher.publish("events", b"a", b"1", event_id="e1")
    del publisher
    assert "dropped without close(): 1 queued messages are lost" in caplog.text
    with pytest.raises(PublisherClosedError, match="event e1: publisher dropped before delivery"):
        receipt.result(timeout=1)
