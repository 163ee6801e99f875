"""The group commit of deliveries: each sender returns once its own delivery is recorded, deliveries that
finish during an insert go together in the next, and an insert's error reaches every sender of its batch."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from assetpipe.consumers.alerts.alert import Alert, Delivery, Sent
from assetpipe.consumers.alerts.recorder import Recorded, Recorder


def outcome(n: int) -> Recorded:
    alert = Alert(f"a{n}", "p", "check", "triggered", f"k{n}", "rows", "ERROR", "FAILED", "", f"e{n}", n, "")
    return Delivery(alert, "hook", "webhook", "hook"), Sent(1, "", n), n


class SlowTable:
    """Holds its first insert until ``release`` is set; keeps every insert's deliveries."""

    def __init__(self) -> None:
        self.inserts: list[list[str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail = False

    def record_many(self, outcomes: Sequence[Recorded]) -> None:
        if not self.inserts:
            self.entered.set()
            assert self.release.wait(10)
        if self.fail:
            raise RuntimeError("the table is gone")
        self.inserts.append([d.alert.alert_id for d, _, _ in outcomes])


def test_deliveries_finishing_during_an_insert_go_in_the_next_one_and_each_sender_waits_for_its_own() -> None:
    table = SlowTable()
    recorder = Recorder(table.record_many)
    returned: list[int] = []
    first = threading.Thread(target=lambda: (recorder.record(outcome(0)), returned.append(0)))
    first.start()
    assert table.entered.wait(10)
    others = [threading.Thread(target=lambda n=n: (recorder.record(outcome(n)), returned.append(n))) for n in (1, 2, 3)]
    for thread in others:
        thread.start()
    threading.Event().wait(0.2)  # the three are queued behind the insert in progress
    assert returned == []
    table.release.set()
    for thread in (first, *others):
        thread.join(10)
    assert table.inserts[0] == ["a0"]
    assert sorted(table.inserts[1]) == ["a1", "a2", "a3"] and len(table.inserts) == 2
    assert sorted(returned) == [0, 1, 2, 3]


def test_an_insert_that_fails_raises_in_every_sender_of_its_batch() -> None:
    table = SlowTable()
    table.release.set()
    table.fail = True
    recorder = Recorder(table.record_many)
    errors: list[BaseException] = []

    def send(n: int) -> None:
        try:
            recorder.record(outcome(n))
        except RuntimeError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(errors) == 4 and table.inserts == []
    table.fail = False
    recorder.record(outcome(9))  # the next insert is tried afresh
    assert table.inserts == [["a9"]]
    with pytest.raises(RuntimeError):
        table.fail = True
        recorder.record(outcome(10))
