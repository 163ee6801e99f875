"""The check evaluator's decisions, driven by hand: deadlines, state changes only, ownership, retries."""

from __future__ import annotations

from assetpipe.consumers.checks.deadlines import Deadlines
from assetpipe.consumers.checks.evaluator import (
    FAIL,
    PASS,
    UNKNOWN,
    WARN,
    Clock,
    Evaluator,
    EventCheck,
    Stored,
    TimedCheck,
    Verdict,
    partition_of,
)

S = 1_000_000


def window(warn_s: int, fail_s: int) -> TimedCheck:
    """A time-window freshness check of ``a/b``: WARN after ``warn_s``, FAIL after ``fail_s`` without update."""

    def evaluate(clock: Clock, now: int) -> Verdict:
        last = clock.last(frozenset({"materialization"}))
        if last is None:
            return Verdict(UNKNOWN, True, "WARN")
        age = now - last
        if age >= fail_s * S:
            return Verdict(FAIL, False, "ERROR")
        if age >= warn_s * S:
            return Verdict(WARN, False, "WARN", next_change_us=last + fail_s * S)
        return Verdict(PASS, True, "WARN", next_change_us=last + warn_s * S)

    return TimedCheck("a/b", "freshness", frozenset({"materialization"}), evaluate)


def owning_everything(count: int = 4) -> Evaluator:
    evaluator = Evaluator()
    evaluator.assign(range(count), count, {}, 0)
    return evaluator


def test_deadlines_keep_one_live_entry_per_key() -> None:
    deadlines: Deadlines[str] = Deadlines()
    deadlines.set("x", 30)
    deadlines.set("y", 10)
    deadlines.set("x", 5)  # supersedes 30
    deadlines.set("z", 20)
    deadlines.cancel("z")
    assert deadlines.next_at() == 5
    assert deadlines.pop_due(15) == [("x", 5), ("y", 10)]
    assert deadlines.pop_due(100) == [] and deadlines.next_at() is None and len(deadlines) == 0
    for i in range(5000):  # superseded entries do not pile up
        deadlines.set("k", i)
    assert len(deadlines._heap) < 2 * 1 + 1024 + 2


def test_a_timed_check_publishes_state_changes_only_at_events_and_deadlines() -> None:
    evaluator = owning_everything()
    assert evaluator.set_checks([window(2, 4)], [], 0) == []  # never updated: UNKNOWN, nothing published
    first = evaluator.on_event("materialization", "a/b", "e1", 10 * S, None, {}, 10 * S)
    assert [(e.verdict.state, e.trigger, e.previous) for e in first] == [(PASS, "e1", UNKNOWN)]
    assert evaluator.on_event("materialization", "a/b", "e2", 11 * S, None, {}, 11 * S) == []  # still PASS
    assert evaluator.next_deadline() == 12 * S  # the update only moved the clock: judged at the old deadline
    assert evaluator.due(12 * S) == [] and evaluator.next_deadline() == 13 * S  # with the update: PASS, later
    warned = evaluator.due(13 * S)
    assert [(e.verdict.state, e.trigger) for e in warned] == [(WARN, f"deadline:{13 * S}")]
    assert [e.verdict.state for e in evaluator.due(15 * S)] == [FAIL]
    assert evaluator.next_deadline() is None  # FAIL until the next update
    assert [e.verdict.state for e in evaluator.on_event("observation", "a/b", "o", 16 * S, None, {}, 16 * S)] == []
    resolved = evaluator.on_event("materialization", "a/b", "e3", 16 * S, None, {}, 16 * S)
    assert [e.verdict.state for e in resolved] == [PASS] and evaluator.state("a/b", "freshness") == PASS


def test_an_unpublished_verdict_is_decided_again() -> None:
    evaluator = owning_everything()
    evaluator.set_checks([window(2, 4)], [], 0)
    (passed,) = evaluator.on_event("materialization", "a/b", "e1", 0, None, {}, 0)
    evaluator.unpublished([passed], retry_at_us=S // 2)
    assert evaluator.state("a/b", "freshness") == UNKNOWN and evaluator.next_deadline() == S // 2
    assert [e.verdict.state for e in evaluator.due(S // 2)] == [PASS]


def test_a_restart_does_not_publish_a_stored_state_again_and_catches_up_a_missed_deadline() -> None:
    stored = {"a/b": Stored({"materialization": 10 * S}, {"freshness": PASS})}
    evaluator = Evaluator()
    evaluator.set_checks([window(2, 4)], [], 0)
    assert evaluator.assign(range(4), 4, stored, 11 * S) == []  # PASS as stored
    evaluator.revoke(range(4))
    again = Evaluator()
    again.set_checks([window(2, 4)], [], 0)
    assert [e.verdict.state for e in again.assign(range(4), 4, stored, 20 * S)] == [FAIL]  # passed while unowned


def test_only_the_owner_of_an_assets_partition_evaluates_it() -> None:
    owner = partition_of("a/b", 4)
    evaluator = Evaluator()
    evaluator.set_checks([window(2, 4)], [], 0)
    evaluator.assign([p for p in range(4) if p != owner], 4, {}, 0)
    assert not evaluator.owns("a/b")
    assert evaluator.on_event("materialization", "a/b", "e", 0, None, {}, 0) == []
    assert evaluator.next_deadline() is None


def test_event_checks_judge_every_event_with_their_label() -> None:
    def bounds(value: float, _at: int) -> Verdict:
        return Verdict(PASS if value >= 10 else FAIL, value >= 10, "WARN", {"value": value})

    evaluator = owning_everything()
    check = EventCheck("a/b", "dagster/row_count_bounds", "dagster/row_count", frozenset({"materialization"}), bounds)
    evaluator.set_checks([], [check], 0)
    out = evaluator.on_event("materialization", "a/b", "e1", 0, "2024-01-01", {"dagster/row_count": 5.0}, 0)
    assert [(e.check_name, e.verdict.passed, e.partition, e.previous) for e in out] == [
        ("dagster/row_count_bounds", False, "2024-01-01", None)
    ]
    assert evaluator.on_event("materialization", "a/b", "e2", 0, None, {"other": 1.0}, 0) == []
    assert len(evaluator.on_event("materialization", "a/b", "e3", 0, None, {"dagster/row_count": 50.0}, 0)) == 1


def test_a_restart_restores_the_newest_partition_for_a_partitioned_check() -> None:
    seen: list[tuple[str | None, int | None]] = []

    def evaluate(clock: Clock, now: int) -> Verdict:
        seen.append((clock.newest_partition, clock.newest_at))
        return Verdict(PASS, True, "WARN")

    check = TimedCheck("a/b", "freshness", frozenset({"materialization"}), evaluate, newer=max)
    evaluator = Evaluator()
    evaluator.set_checks([check], [], 0)
    assert evaluator.partitioned_assets() == {"a/b"}
    stored = {"a/b": Stored({"materialization": 9 * S}, {}, {"2024-01-02": 5 * S, "2024-01-01": 9 * S})}
    evaluator.assign(range(4), 4, stored, 10 * S)
    assert seen[-1] == ("2024-01-02", 5 * S)  # the newest window, not the latest written
