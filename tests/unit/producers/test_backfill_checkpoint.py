"""Checkpoints on disk and the rate cap (on a fake clock)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assetpipe.producers.backfill.checkpoint import Checkpoint, CheckpointStore
from assetpipe.producers.backfill.job import RateLimiter


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
