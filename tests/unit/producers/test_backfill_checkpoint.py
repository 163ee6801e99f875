"""Checkpoints on disk, the acknowledged position from receipts, and the rate cap (on a fake clock)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from producers.backfill_job import RateLimiter
from producers.checkpoint import AckTracker, Checkpoint, CheckpointStore


@dataclass
class FakeReceipt:
    done: bool = False
    error: str | None = None


def test_checkpoints_are_keyed_by_path_and_replaced_whole(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "ck")
    events = tmp_path / "events.jsonl"
    assert store.load(events) is None
    store.save(Checkpoint(str(events.resolve()), "ab" * 32, 41))
    store.save(Checkpoint(str(events.resolve()), "ab" * 32, 42, complete=True))
    assert store.load(events) == Checkpoint(str(events.resolve()), "ab" * 32, 42, complete=True)
    assert [p.name for p in (tmp_path / "ck").iterdir()] == [store.file_for(events).name]  # no temporary left
    assert store.load(tmp_path / "other" / "events.jsonl") is None  # same name, another path
    store.file_for(events).write_text("{torn")
    assert store.load(events) is None  # unreadable: as if absent


def test_the_position_advances_over_whole_chunks_of_acknowledged_events() -> None:
    tracker = AckTracker(start=10)
    receipts = [FakeReceipt() for _ in range(5)]
    for position, receipt in zip(range(11, 16), receipts, strict=True):
        tracker.add(position, receipt)
    tracker.settle(16)  # a rejected record
    tracker.seal()
    receipts[0].done = receipts[1].done = True
    assert tracker.advance() == 10  # 13 is not acknowledged yet
    for r in receipts:
        r.done = True
    assert tracker.advance() == 16
    late = FakeReceipt(done=True, error="Broker: Message size too large")
    tracker.add(17, FakeReceipt(done=True))
    tracker.add(18, late)
    tracker.add(19, FakeReceipt(done=True))
    assert tracker.finish() == 16  # never past a failed event
    assert tracker.failed == "Broker: Message size too large"


def test_a_chunk_of_rejects_only_advances_at_once() -> None:
    tracker = AckTracker()
    tracker.settle(1)
    tracker.settle(2)
    assert tracker.finish() == 2


def test_the_rate_limiter_holds_the_count_to_the_rate() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(50.0, clock=lambda: now[0], sleep=sleep)
    limiter.wait(10)  # 10 events at 50/s are due at 0.2 s
    assert slept == [pytest.approx(0.2)]
    now[0] += 1.0  # the next 10 took longer than their due time: no wait
    limiter.wait(20)
    assert len(slept) == 1
    limiter.wait(100)  # 100 events are due at 2.0 s
    assert now[0] - 100.0 == pytest.approx(2.0)
