"""Freshness policies: Dagster's constructors and messages, the JSON form the registry stores, the policy on
``@asset``, ``AssetSpec`` and ``@observable_source_asset``, and ``evaluate_freshness`` to the microsecond:
each window's edge, UNKNOWN, cron deadlines across daylight-saving changes (no sockets)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from assetpipe import AssetSpec, DefinitionError, FreshnessPolicy, asset, observable_source_asset
from assetpipe.definitions.freshness import CronFreshnessPolicy, TimeWindowFreshnessPolicy, evaluate_freshness

S = 1_000_000  # a second in microseconds


def us(*parts: int) -> int:
    """A UTC time in microseconds since the epoch."""
    return int(datetime(*parts, tzinfo=UTC).timestamp()) * S  # type: ignore[misc]


def values(result: Any) -> dict[str, Any]:
    return {key: value.value for key, value in result.metadata.items()}


def test_the_constructors_make_dagsters_two_policies() -> None:
    window = FreshnessPolicy.time_window(fail_window=timedelta(seconds=2), warn_window=timedelta(seconds=1))
    assert isinstance(window, TimeWindowFreshnessPolicy) and isinstance(window, FreshnessPolicy)
    assert (window.fail_window, window.warn_window) == (timedelta(seconds=2), timedelta(seconds=1))
    cron = FreshnessPolicy.cron(deadline_cron="0 10 * * *", lower_bound_delta=timedelta(hours=1))
    assert isinstance(cron, CronFreshnessPolicy)
    assert (cron.deadline_cron, cron.lower_bound_delta, cron.timezone) == ("0 10 * * *", timedelta(hours=1), "UTC")
    assert FreshnessPolicy.time_window(timedelta(seconds=2)) == TimeWindowFreshnessPolicy(timedelta(seconds=2))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: FreshnessPolicy.time_window(timedelta(seconds=2), timedelta(seconds=2)),
         "warn_window must be less than fail_window"),
        (lambda: FreshnessPolicy.time_window(timedelta(seconds=2), timedelta(seconds=3)),
         "warn_window must be less than fail_window"),
        (lambda: FreshnessPolicy.time_window(timedelta(0)), "fail_window must be positive, was 0.0 seconds"),
        (lambda: FreshnessPolicy.time_window(timedelta(seconds=2), timedelta(seconds=-1)),
         "warn_window must be positive, was -1.0 seconds"),
        (lambda: FreshnessPolicy.time_window(120), "fail_window must be a timedelta, got int"),  # type: ignore[arg-type]
        (lambda: FreshnessPolicy.cron("0 10 * *", timedelta(hours=1)), "Invalid cron string."),
        (lambda: FreshnessPolicy.cron("0 0 30 2 *", timedelta(hours=1)), "Invalid cron string."),  # never fires
        (lambda: FreshnessPolicy.cron(["0 10 * * *"], timedelta(hours=1)), "Invalid cron string."),  # type: ignore[arg-type]
        (lambda: FreshnessPolicy.cron("0 10 * * *", timedelta(hours=1), "Mars/Olympus"),
         "Invalid IANA timezone: Mars/Olympus"),
        (lambda: FreshnessPolicy.cron("0 10 * * *", timedelta(hours=25)),
         "lower_bound_delta must be less than or equal to the smallest cron interval of (86400.0 seconds for "
         "deadline_cron 0 10 * * *). Provided lower_bound_delta is 90000.0 seconds"),
        (lambda: FreshnessPolicy.cron("0 10 * * 1-5", timedelta(hours=30)),
         "the smallest cron interval of (86400.0 seconds"),  # weekdays: 24 hours apart, though Friday's is 72
        (lambda: FreshnessPolicy.cron("0 0 1,29 * *", timedelta(days=2)),
         "the smallest cron interval of (86400.0 seconds"),  # 29 Feb to 1 Mar, in leap years only
        (lambda: FreshnessPolicy.cron("*/5 * * * *", timedelta(0)), "lower_bound_delta must be positive"),
    ],
)  # fmt: skip
def test_validation_says_what_dagster_says(make: Any, message: str) -> None:
    with pytest.raises(DefinitionError) as raised:
        make()
    assert message in str(raised.value)


def test_windows_below_dagsters_minute_are_allowed() -> None:
    assert FreshnessPolicy.time_window(timedelta(seconds=2), timedelta(milliseconds=500)).warn_window == timedelta(
        milliseconds=500
    )
    every_minute = FreshnessPolicy.cron("* * * * *", timedelta(seconds=60))
    assert every_minute.lower_bound_delta == timedelta(minutes=1)
    with pytest.raises(DefinitionError, match=r"smallest cron interval of \(60.0 seconds"):
        FreshnessPolicy.cron("* * * * *", timedelta(seconds=61))


@pytest.mark.parametrize(
    ("policy", "form"),
    [
        (FreshnessPolicy.time_window(timedelta(hours=2), timedelta(minutes=90)),
         {"type": "time_window", "fail_window_seconds": 7200, "warn_window_seconds": 5400}),
        (FreshnessPolicy.time_window(timedelta(seconds=1.5)),
         {"type": "time_window", "fail_window_seconds": 1.5, "warn_window_seconds": None}),
        (FreshnessPolicy.cron("0 9 * * 1-5", timedelta(minutes=45), "America/New_York"),
         {"type": "cron", "deadline_cron": "0 9 * * 1-5", "lower_bound_delta_seconds": 2700,
          "timezone": "America/New_York"}),
    ],
)  # fmt: skip
def test_the_json_form_round_trips(policy: FreshnessPolicy, form: dict[str, Any]) -> None:
    assert policy.to_json() == form
    assert FreshnessPolicy.from_json(form) == policy
    assert FreshnessPolicy.from_json(policy.to_json_text()) == policy
    assert policy.to_json_text() == json.dumps(form, sort_keys=True, separators=(",", ":"))  # canonical


def test_the_json_form_takes_defaults_and_refuses_what_it_does_not_know() -> None:
    assert FreshnessPolicy.from_json({"type": "time_window", "fail_window_seconds": 60}) == FreshnessPolicy.time_window(
        timedelta(minutes=1)
    )
    cron = FreshnessPolicy.from_json({"type": "cron", "deadline_cron": "@daily", "lower_bound_delta_seconds": 60})
    assert cron == FreshnessPolicy.cron("@daily", timedelta(minutes=1), "UTC")
    refusals = {
        "freshness_policy.type must be 'time_window' or 'cron', got 'hourly'": {"type": "hourly"},
        "freshness_policy has unknown field 'fail_window': a time_window policy has fail_window_seconds, "
        "warn_window_seconds": {"type": "time_window", "fail_window": 60},
        "freshness_policy.fail_window_seconds is required": {"type": "time_window"},
        "freshness_policy.fail_window_seconds must be a number of seconds, got '60'": {
            "type": "time_window",
            "fail_window_seconds": "60",
        },
        "freshness_policy.lower_bound_delta_seconds must be a number of seconds, got True": {
            "type": "cron",
            "deadline_cron": "@daily",
            "lower_bound_delta_seconds": True,
        },
        "freshness_policy.deadline_cron is required": {"type": "cron", "lower_bound_delta_seconds": 60},
    }
    for message, form in refusals.items():
        with pytest.raises(DefinitionError) as raised:
            FreshnessPolicy.from_json(form)
        assert str(raised.value) == message


def test_the_policy_goes_on_assets_specs_and_observable_sources() -> None:
    policy = FreshnessPolicy.time_window(timedelta(hours=1))

    @asset(freshness_policy=policy)
    def orders() -> None: ...

    @observable_source_asset(freshness_policy=policy)
    def raw() -> None: ...

    spec = AssetSpec("ledger", freshness_policy=policy)
    assert orders.spec.freshness_policy == raw.spec.freshness_policy == spec.freshness_policy == policy
    later = FreshnessPolicy.cron("0 9 * * *", timedelta(hours=1))
    assert spec.replace_attributes(freshness_policy=later).freshness_policy == later
    assert spec.replace_attributes(freshness_policy=None).freshness_policy is None
    assert spec.merge_attributes(owners=["team:x"]).freshness_policy == policy
    assert AssetSpec("plain").freshness_policy is None
    with pytest.raises(DefinitionError, match=r"freshness_policy of asset 'x' must be FreshnessPolicy\.time_window"):
        AssetSpec("x", freshness_policy={"type": "time_window"})  # type: ignore[arg-type]


# -- time windows -------------------------------------------------------------------------------------------


def test_a_time_window_passes_warns_and_fails_exactly_at_its_edges() -> None:
    policy = FreshnessPolicy.time_window(fail_window=timedelta(seconds=2), warn_window=timedelta(seconds=1))
    last = us(2024, 5, 1, 12)
    just_before_warn = evaluate_freshness(policy, last, last + S - 1)
    assert (just_before_warn.state, just_before_warn.next_change_us) == ("PASS", last + S)
    at_warn = evaluate_freshness(policy, last, last + S)  # the window's edge belongs to the next state
    assert (at_warn.state, at_warn.next_change_us, at_warn.passed) == ("WARN", last + 2 * S, False)
    assert evaluate_freshness(policy, last, last + 2 * S - 1).state == "WARN"
    at_fail = evaluate_freshness(policy, last, last + 2 * S)
    assert (at_fail.state, at_fail.next_change_us) == ("FAIL", None)
    assert (at_fail.severity.value, at_warn.severity.value, just_before_warn.passed) == ("ERROR", "WARN", True)
    assert evaluate_freshness(policy, last, last + 10**12).state == "FAIL"


def test_a_time_window_without_a_warn_window_goes_from_pass_to_fail() -> None:
    policy = FreshnessPolicy.time_window(timedelta(seconds=2))
    last = us(2024, 5, 1, 12)
    assert evaluate_freshness(policy, last, last).next_change_us == last + 2 * S
    assert evaluate_freshness(policy, last, last + 2 * S - 1).state == "PASS"
    assert evaluate_freshness(policy, last, last + 2 * S).state == "FAIL"
    assert evaluate_freshness(policy, last + 5 * S, last).state == "PASS"  # reported from a clock ahead of ours


def test_the_metadata_of_each_state() -> None:
    policy = FreshnessPolicy.time_window(timedelta(seconds=2), timedelta(seconds=1))
    last = us(2024, 5, 1, 12)
    params = {"type": "time_window", "fail_window_seconds": 2, "warn_window_seconds": 1}
    passing = evaluate_freshness(policy, last, last + S // 2)
    assert values(passing) == {
        "dagster/freshness_params": params,
        "dagster/last_updated_timestamp": last / S,
        "dagster/fresh_until_timestamp": last / S + 1,
        "freshness_state": "PASS",
    }
    assert passing.metadata["dagster/fresh_until_timestamp"].kind == "timestamp"
    assert passing.description == "Asset is fresh: the last update was 0.5 seconds ago, within the window of 1 second."
    warning = evaluate_freshness(policy, last, last + 1_250_000)
    assert values(warning) == {
        "dagster/freshness_params": params,
        "dagster/last_updated_timestamp": last / S,
        "dagster/overdue_deadline_timestamp": last / S + 1,
        "dagster/overdue_seconds": 0.25,
        "freshness_state": "WARN",
    }
    assert warning.metadata["dagster/overdue_seconds"].kind == "float"
    failing = evaluate_freshness(policy, last, last + 3 * S + 3600 * S)
    assert values(failing)["dagster/overdue_deadline_timestamp"] == last / S + 2
    assert failing.description == (
        "Asset is overdue: the last update was 1 hour, 3 seconds ago, past the fail window of 2 seconds."
    )


def test_never_updated_is_unknown_and_stays_so() -> None:
    for policy in (
        FreshnessPolicy.time_window(timedelta(seconds=2)),
        FreshnessPolicy.cron("@hourly", timedelta(hours=1)),
    ):
        result = evaluate_freshness(policy, None, us(2024, 5, 1))
        assert (result.state, result.next_change_us, result.passed) == ("UNKNOWN", None, False)
        assert result.description == "Asset has never been observed/materialized."
        assert values(result) == {"dagster/freshness_params": policy.to_json(), "freshness_state": "UNKNOWN"}


# -- cron deadlines -----------------------------------------------------------------------------------------


def test_a_cron_policy_judges_the_latest_deadline_passed() -> None:
    """Dagster's example: due every day between 9:00 and 10:00 (UTC here)."""
    policy = FreshnessPolicy.cron("0 10 * * *", timedelta(hours=1))
    on_time = us(2024, 5, 1, 9, 30)
    fresh = evaluate_freshness(policy, on_time, us(2024, 5, 1, 10))  # a tick at the instant itself has passed
    assert (fresh.state, fresh.next_change_us) == ("PASS", us(2024, 5, 2, 10))
    assert values(fresh)["dagster/latest_cron_tick_timestamp"] == us(2024, 5, 1, 10) / S
    assert values(fresh)["dagster/freshness_lower_bound_timestamp"] == us(2024, 5, 1, 9) / S
    assert values(fresh)["dagster/fresh_until_timestamp"] == us(2024, 5, 2, 10) / S
    assert evaluate_freshness(policy, us(2024, 5, 1, 9), us(2024, 5, 1, 10)).state == "PASS"  # the window's start
    early = evaluate_freshness(policy, us(2024, 5, 1, 9) - 1, us(2024, 5, 1, 10))
    assert (early.state, early.next_change_us) == ("FAIL", None)
    assert values(early)["dagster/overdue_deadline_timestamp"] == us(2024, 5, 1, 10) / S
    assert values(early)["dagster/overdue_seconds"] == 0.0
    # before 10:00 the state is that of yesterday's deadline: an update at 8:30 was not in yesterday's window,
    # but is after its deadline, so it passes until today's deadline, which it misses
    before = evaluate_freshness(policy, us(2024, 5, 1, 8, 30), us(2024, 5, 1, 9, 59))
    assert (before.state, before.next_change_us) == ("PASS", us(2024, 5, 1, 10))
    late = evaluate_freshness(policy, us(2024, 5, 1, 10, 30), us(2024, 5, 1, 10, 31))  # late: fresh at once
    assert (late.state, late.next_change_us) == ("PASS", us(2024, 5, 2, 10))
    missed = evaluate_freshness(policy, us(2024, 4, 30, 9, 30), us(2024, 5, 1, 12))
    assert (missed.state, values(missed)["dagster/overdue_seconds"]) == ("FAIL", 7200.0)


def test_an_update_inside_the_coming_window_carries_past_its_deadline() -> None:
    policy = FreshnessPolicy.cron("0 10 * * *", timedelta(hours=1))
    result = evaluate_freshness(policy, us(2024, 5, 2, 9, 15), us(2024, 5, 2, 9, 20))
    assert (result.state, result.next_change_us) == ("PASS", us(2024, 5, 3, 10))


def test_cron_deadlines_follow_the_schedules_rules_across_daylight_saving() -> None:
    """02:30 in Paris does not exist on 31 March 2024 (the deadline is 03:00 CEST, 01:00 UTC) and happens twice
    on 27 October 2024 (the deadline is the second, 02:30 CET, 01:30 UTC), as a schedule's tick would be."""
    policy = FreshnessPolicy.cron("30 2 * * *", timedelta(hours=1), "Europe/Paris")
    spring = evaluate_freshness(policy, us(2024, 3, 30, 1), us(2024, 3, 30, 12))  # 02:00 CET, in the window
    assert (spring.state, spring.next_change_us) == ("PASS", us(2024, 3, 31, 1))
    in_window = evaluate_freshness(policy, us(2024, 3, 31, 0, 5), us(2024, 3, 31, 1, 30))
    assert (in_window.state, values(in_window)["dagster/latest_cron_tick_timestamp"]) == (
        "PASS",
        us(2024, 3, 31, 1) / S,
    )
    missed = evaluate_freshness(policy, us(2024, 3, 30, 23, 55), us(2024, 3, 31, 1, 30))
    assert (missed.state, values(missed)["dagster/overdue_deadline_timestamp"]) == ("FAIL", us(2024, 3, 31, 1) / S)
    assert "2024-03-31T03:00:00+02:00" in missed.description
    autumn = evaluate_freshness(policy, us(2024, 10, 26, 0, 10), us(2024, 10, 26, 12))  # 02:10 CEST
    assert (autumn.state, autumn.next_change_us) == ("PASS", us(2024, 10, 27, 1, 30))
    between = evaluate_freshness(policy, us(2024, 10, 27, 0, 20), us(2024, 10, 27, 1))  # first 02:30 is no deadline
    assert (between.state, between.next_change_us) == ("PASS", us(2024, 10, 27, 1, 30))
    assert evaluate_freshness(policy, us(2024, 10, 27, 0, 20), us(2024, 10, 27, 1, 30)).state == "FAIL"
    assert evaluate_freshness(policy, us(2024, 10, 27, 0, 30), us(2024, 10, 27, 1, 30)).state == "PASS"


def test_the_next_change_of_a_weekday_deadline_skips_the_weekend() -> None:
    policy = FreshnessPolicy.cron("0 9 * * 1-5", timedelta(hours=2))
    friday = us(2024, 5, 3, 8)  # a Friday, in its window
    assert evaluate_freshness(policy, friday, us(2024, 5, 4, 12)).next_change_us == us(2024, 5, 6, 9)
