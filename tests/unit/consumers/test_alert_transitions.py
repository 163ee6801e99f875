"""When an alert is due: levels per policy, transitions only, stale and replayed evaluations ignored."""

from __future__ import annotations

from typing import Any

from assetpipe import AlertPolicy, WebhookChannel
from assetpipe.consumers.alerts.transitions import Evaluation, State, check_kind, level_of, step, watches

HOOK = WebhookChannel("http://127.0.0.1:9/hook")
EVERYTHING = AlertPolicy("all", [HOOK])


def evaluation(
    check: str = "rows", passed: bool = False, severity: str = "ERROR", at: int = 1, **meta: str
) -> Evaluation:
    return Evaluation("a/b", check, passed, severity, f"e{at:04d}", at, metadata=meta)


def run(policy: AlertPolicy, evaluations: list[Evaluation]) -> list[Any]:
    state = State()
    return [step(state, level_of(policy, e), (e.event_us, e.event_id)) for e in evaluations]


def test_kinds_by_check_name() -> None:
    assert check_kind("freshness") == "freshness"
    assert check_kind("dagster/row_count_anomaly") == "anomaly"
    assert check_kind("row_count_bounds") == check_kind("no_nulls") == "check"


def test_a_failure_alerts_once_until_it_passes_again() -> None:
    changes = run(EVERYTHING, [evaluation(at=1), evaluation(at=2), evaluation(passed=True, at=3),
                               evaluation(passed=True, at=4), evaluation(at=5)])  # fmt: skip
    assert changes == ["triggered", None, "resolved", None, "triggered"]


def test_a_first_pass_says_nothing() -> None:
    assert run(EVERYTHING, [evaluation(passed=True)]) == [None]


def test_an_escalation_alerts_again_and_a_lower_failure_keeps_the_alert() -> None:
    changes = run(EVERYTHING, [evaluation(severity="WARN", at=1), evaluation(at=2), evaluation(severity="WARN", at=3),
                               evaluation(passed=True, at=4)])  # fmt: skip
    assert changes == ["triggered", "triggered", None, "resolved"]


def test_a_severity_the_policy_does_not_watch_counts_as_passing() -> None:
    errors_only = AlertPolicy("errors", [HOOK], on=["check_error"])
    assert run(
        errors_only, [evaluation(severity="WARN", at=1), evaluation(at=2), evaluation(severity="WARN", at=3)]
    ) == [
        None,
        "triggered",
        "resolved",
    ]


def test_freshness_reads_its_state_and_unknown_changes_nothing() -> None:
    fail_only = AlertPolicy("late", [HOOK], on=["freshness_fail"])
    warn = evaluation("freshness", severity="WARN", at=1, **{"dagster/freshness_state": "WARN"})
    fail = evaluation("freshness", at=2, **{"dagster/freshness_state": "FAIL"})
    unknown = evaluation("freshness", passed=True, at=3, **{"dagster/freshness_state": "UNKNOWN"})
    fresh = evaluation("freshness", passed=True, at=4, **{"dagster/freshness_state": "PASS"})
    assert run(fail_only, [warn, fail, unknown, fresh]) == [None, "triggered", None, "resolved"]
    assert fail.state == "FAIL" and evaluation().state == "FAILED"
    assert watches(fail_only, "freshness") and not watches(fail_only, "check") and not watches(fail_only, "anomaly")


def test_an_evaluation_not_newer_than_the_last_is_ignored() -> None:
    state = State()
    assert step(state, 2, (10, "b")) == "triggered"
    assert step(state, 0, (10, "b")) is None  # the same one again (a replay)
    assert step(state, 0, (9, "z")) is None  # an older one reported late
    assert step(state, 0, (10, "c")) == "resolved"  # same time, a later id


def test_a_state_rebuilt_from_the_alerts_table_replays_nothing_twice() -> None:
    """Sent: triggered at 1, resolved at 3. A replay of 1..3 from a state rebuilt as "resolved at 3" sends nothing."""
    state = State(0, (3, "e0003"))
    replay = [evaluation(at=1), evaluation(at=2), evaluation(passed=True, at=3)]
    assert [step(state, level_of(EVERYTHING, e), (e.event_us, e.event_id)) for e in replay] == [None, None, None]


def outcome(event_type: str, at: int, partition: str | None = None, **fields: Any) -> Evaluation:
    record = {"asset_key": ["a", "b"], "event_id": f"m{at:04d}", "timestamp": at, "partition": partition, **fields}
    return Evaluation.outcome(event_type, record)


def test_a_failure_to_materialize_alerts_until_the_asset_materializes_and_a_check_named_alike_is_a_check() -> None:
    failed = outcome("materialization_failure", 1, description="boom", failure_type="FAILED", reason="UNKNOWN")
    assert (failed.kind, failed.check_name, failed.state) == ("materialization", "materialization", "FAILED")
    assert failed.description == "boom (FAILED, UNKNOWN)"
    partitioned = outcome("materialization_failure", 1, partition="2026-01-01")
    assert partitioned.check_name == "materialization[2026-01-01]" and partitioned.description == ""
    events = [failed, outcome("materialization_failure", 2), outcome("materialization", 3)]
    assert run(EVERYTHING, events) == ["triggered", None, "resolved"]
    only_checks = AlertPolicy("checks", [HOOK], on=["check_error"])
    assert run(only_checks, events) == [None, None, None] and not watches(only_checks, "materialization")
    assert evaluation(check="materialization").kind == "check"
