"""The consumer loop on a real broker, inline and overlapped: where offsets are committed, how a
retryable failure is retried, what a rebalance does to a batch in hand, and the order of what it
forwards. Its handler here is a plain recorder: the loop's guarantees hold for any handler."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import pytest
from confluent_kafka import Consumer, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from assetpipe.consumers.exceptions import WarehouseUnavailableError
from assetpipe.consumers.handler import Outcome
from assetpipe.consumers.loop import ConsumerLoop
from assetpipe.schemas.settings import Settings
from tests.integration.helpers import read_topic, running, wait_until

MODES = {"inline": False, "overlapped": True}


class Recorder:
    """Records every message it handled successfully, in order; fails the first ``failures`` calls
    with a retryable error; forwards what it handled to ``forward_topic`` when given one."""

    def __init__(self, failures: int = 0, forward_topic: str = "") -> None:
        self.handled: list[tuple[int, int, bytes]] = []
        self.calls = 0
        self._failures = failures
        self._forward_topic = forward_topic
        self._lock = threading.Lock()

    def prepare(self, batch: Sequence[Message]) -> Any:
        return None

    def handle(self, batch: Sequence[Message], prepared: Any = None) -> Outcome:
        with self._lock:
            self.calls += 1
            if self.calls <= self._failures:
                raise WarehouseUnavailableError(f"failure {self.calls} of {self._failures}")
            self.handled += [(m.partition() or 0, m.offset() or 0, m.value() or b"") for m in batch]
        if self._forward_topic:
            return Outcome(forward=list(batch), forward_topic=self._forward_topic)
        return Outcome()


def _topic(settings: Settings, partitions: int) -> str:
    name = f"loop-{uuid.uuid4().hex[:10]}"
    admin = AdminClient(settings.as_librdkafka_dict())
    for future in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        future.result(15)
    return name


def _produce(settings: Settings, topic: str, count: int, keys: int = 8) -> dict[int, int]:
    """``count`` messages, keyed over ``keys`` keys; returns the messages each partition got."""
    producer = Producer(settings.producer_config())
    per_partition: Counter[int] = Counter()

    def delivered(err: Any, msg: Message) -> None:
        assert err is None, err
        per_partition[msg.partition() or 0] += 1

    for i in range(count):
        producer.produce(topic, f"{i}".encode(), f"k{i % keys}".encode(), on_delivery=delivered)
        if i % 500 == 0:
            producer.flush(30)  # the queue may be small: settings of a test with a full queue
    assert producer.flush(30) == 0
    return dict(per_partition)


def _committed(settings: Settings, group: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer(settings.consumer_config(group))
    try:
        found = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], 10)
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in found}


def _running(loop: ConsumerLoop) -> AbstractContextManager[threading.Event]:
    return running(loop.run, "loop-under-test")


def _loop(mode: str, settings: Settings, group: str, topic: str, handler: Recorder, **options: Any) -> ConsumerLoop:
    return ConsumerLoop(
        settings, group_id=group, topics=[topic], handler=handler,
        retryable=(WarehouseUnavailableError,), overlap=MODES[mode], **options,
    )  # fmt: skip


@pytest.fixture(params=sorted(MODES))
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_offsets_are_committed_at_each_partitions_end_once_handled(mode: str, settings: Settings) -> None:
    topic = _topic(settings, 3)
    counts = _produce(settings, topic, 5_000)
    group = f"g-{uuid.uuid4().hex[:8]}"
    handler = Recorder()
    loop = _loop(mode, settings, group, topic, handler, max_rows=700)
    with _running(loop):
        wait_until(lambda: len(handler.handled) >= 5_000, 60, "every message handled")
    assert len(handler.handled) == len(set(handler.handled)) == 5_000
    assert _committed(settings, group, topic, 3) == {p: counts.get(p, 0) for p in range(3)} | {
        p: -1001 for p in range(3) if counts.get(p, 0) == 0
    }
    for partition in range(3):  # within a partition, in offset order
        offsets = [offset for p, offset, _ in handler.handled if p == partition]
        assert offsets == sorted(offsets)


def test_a_retryable_failure_retries_the_same_batch_and_commits_nothing_before(mode: str, settings: Settings) -> None:
    topic = _topic(settings, 2)
    _produce(settings, topic, 1_000)
    group = f"g-{uuid.uuid4().hex[:8]}"
    handler = Recorder(failures=3)
    loop = _loop(mode, settings, group, topic, handler)
    with _running(loop):
        wait_until(lambda: len(handler.handled) >= 1_000, 60, "every message handled after the retries")
    assert loop.metrics.retries == 3
    assert sorted(v for _, _, v in handler.handled) == sorted(f"{i}".encode() for i in range(1_000))
    assert sum(_committed(settings, group, topic, 2).values()) == 1_000


def test_a_restarted_loop_resumes_after_the_committed_offsets(mode: str, settings: Settings) -> None:
    topic = _topic(settings, 2)
    _produce(settings, topic, 2_000)
    group = f"g-{uuid.uuid4().hex[:8]}"
    first = Recorder()
    with _running(_loop(mode, settings, group, topic, first)):
        wait_until(lambda: len(first.handled) >= 2_000, 60, "the first 2,000")
    _produce(settings, topic, 500)
    second = Recorder()
    with _running(_loop(mode, settings, group, topic, second)):
        wait_until(lambda: len(second.handled) >= 500, 60, "the next 500")
    assert len(second.handled) == 500  # nothing of the first run again


def test_a_rebalance_hands_over_partitions_without_losing_or_repeating(mode: str, settings: Settings) -> None:
    topic = _topic(settings, 4)
    group = f"g-{uuid.uuid4().hex[:8]}"
    a, b = Recorder(), Recorder()
    with _running(_loop(mode, settings, group, topic, a, max_rows=500)):
        _produce(settings, topic, 3_000, keys=32)
        wait_until(lambda: len(a.handled) > 0, 60, "the first loop started")
        with _running(_loop(mode, settings, group, topic, b, max_rows=500)):
            _produce(settings, topic, 3_000, keys=32)
            wait_until(lambda: len(a.handled) + len(b.handled) >= 6_000, 90, "every message handled by one of two")
    both = a.handled + b.handled
    assert Counter(v for _, _, v in both) == Counter({f"{i}".encode(): 2 for i in range(3_000)})
    assert len(set(both)) == len(both)  # no (partition, offset) handled twice
    assert sum(_committed(settings, group, topic, 4).values()) == 6_000


def test_forwarded_messages_keep_each_keys_order(mode: str, settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(producer_queue_max_messages=2_000)  # forwarding meets a full queue
    topic, out = _topic(settings, 2), _topic(settings, 2)
    _produce(settings, topic, 12_000, keys=16)
    group = f"g-{uuid.uuid4().hex[:8]}"
    handler = Recorder(forward_topic=out)
    with _running(_loop(mode, settings, group, topic, handler, max_rows=5_000)):
        forwarded = read_topic(settings, out, 12_000, timeout=90)
    assert len(forwarded) == 12_000
    by_key: dict[bytes, list[int]] = {}
    for message in forwarded:
        by_key.setdefault(message.key() or b"", []).append(int(message.value() or b"0"))
    for values in by_key.values():
        assert values == sorted(values)
