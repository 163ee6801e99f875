"""The HTTP API's delivery bookkeeping: one callback per request tells each event's fate.

The publisher has no ``bootstrap.servers`` (no socket is opened): every message times out, as when the
broker cannot be reached, and its failure report must land on its own event.
"""

from __future__ import annotations

import asyncio
import time

from assetpipe.producers.http.delivery import Delivery, _Waiter
from assetpipe.producers.http.exceptions import NotAcknowledgedError
from assetpipe.producers.publisher import Publisher
from assetpipe.schemas.encoder import Encoded
from assetpipe.schemas.settings import Settings

EVENTS = [Encoded(f"e{i}", b"sales/daily", f"value {i}".encode()) for i in range(3)]


def run_waiter(events: list[Encoded], sent: list[int]) -> _Waiter:
    """Send ``events[i]`` for each i in ``sent`` with one waiter as their callback; wait until all settle."""

    async def main() -> _Waiter:
        delivery = Delivery(Settings.model_validate({}))
        waiter = _Waiter(asyncio.get_running_loop().create_future(), [None] * len(events), events, delivery)
        publisher = Publisher({"message.timeout.ms": 100}, backpressure_timeout_s=0.2)
        for index in sent:
            waiter.pending += 1
            publisher.send("events", events[index].key, events[index].value, waiter.settled)
        waiter.producing = False
        deadline = time.monotonic() + 10
        while waiter.pending and time.monotonic() < deadline:
            publisher.poll(0.05)
        publisher.close(1)
        return waiter

    return asyncio.run(main())


def test_each_failure_lands_on_its_own_event() -> None:
    waiter = run_waiter(EVENTS, [2, 0])  # event 1 was never sent (refused before producing)
    assert waiter.pending == 0
    assert [type(r) for r in waiter.results] == [NotAcknowledgedError, type(None), NotAcknowledgedError]
    assert "Message timed out" in str(waiter.results[0])


def test_events_with_the_same_bytes_each_get_one_failure() -> None:
    twins = [EVENTS[0], EVENTS[0], EVENTS[1]]
    waiter = run_waiter(twins, [0, 1])
    assert [type(r) for r in waiter.results] == [NotAcknowledgedError, NotAcknowledgedError, type(None)]


def test_giving_up_answers_every_event_not_known_failed() -> None:
    async def main() -> list[object]:
        delivery = Delivery(Settings.model_validate({}))
        waiter = _Waiter(asyncio.get_running_loop().create_future(), [None] * 3, EVENTS, delivery)
        waiter.pending = 2
        waiter.results[0] = NotAcknowledgedError("refused")
        waiter.give_up("timed out")
        return [str(r) for r in waiter.results]

    assert asyncio.run(main()) == ["refused", "timed out", "timed out"]
