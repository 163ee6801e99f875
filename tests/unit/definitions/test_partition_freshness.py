"""A time-partitioned asset's freshness, per its latest expected partition: which partition is expected when
(the partitions definition's own rule, without listing every key), the time-window and cron rules, UNKNOWN,
static partitions, and partitions read back from what the registry stores (no sockets)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from assetpipe import (
    DailyPartitionsDefinition,
    FreshnessPolicy,
    HourlyPartitionsDefinition,
    MonthlyPartitionsDefinition,
    StaticPartitionsDefinition,
    WeeklyPartitionsDefinition,
)
from assetpipe.definitions.freshness import evaluate_freshness, moment
from assetpipe.definitions.partition_freshness import (
    _Windows,
    evaluate_partition_freshness,
    expected_partition,
    newest_partition,
    partitions_from_description,
)
from assetpipe.definitions.partitions import TimeWindowPartitionsDefinition

S = 1_000_000
H = 3600 * S
PARIS_DAYS = DailyPartitionsDefinition("2024-01-01", timezone="Europe/Paris")


def us(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp()) * S  # type: ignore[misc]


DEFINITIONS = [
    PARIS_DAYS,
    HourlyPartitionsDefinition("2024-03-09-00:00", timezone="America/New_York"),
    HourlyPartitionsDefinition("2024-10-26-00:00", end_date="2024-10-29-00:00", timezone="Europe/Paris"),
    WeeklyPartitionsDefinition("2024-01-07"),
    MonthlyPartitionsDefinition("2023-01-01", timezone="Asia/Kolkata"),
    DailyPartitionsDefinition("2024-01-01", end_offset=1),
    DailyPartitionsDefinition("2024-01-01-06:00", fmt="%d/%m/%Y %H", hour_offset=6),
]


@pytest.mark.parametrize("definition", DEFINITIONS, ids=lambda d: f"{d.cadence}-{d.timezone}-{d.end_offset}")
def test_the_windows_expected_are_those_the_definition_lists(definition: TimeWindowPartitionsDefinition) -> None:
    """Counted without listing the keys, the expected windows are get_partition_keys' at any instant, and a
    window is expected from the first microsecond it is listed."""
    windows = _Windows(definition)
    start = int(definition.start.timestamp() * S)
    draw = random.Random(20)
    span = 3 * 365 * 24 * H if definition.cadence == "monthly" else 90 * 24 * H
    for _ in range(200):
        at = start + draw.randint(-24 * H, span)
        keys = definition.get_partition_keys(moment(at))
        assert windows.count(at) == len(keys), moment(at)
        if keys:
            assert windows.index(keys[-1]) == len(keys) - 1
    for index in range(40):
        since = windows.expected_at(index)
        if since is None:
            assert definition.end is not None and len(definition.get_partition_keys(moment(us(2030, 1, 1)))) <= index
            continue
        # when clocks go forward two windows may appear at once
        assert len(definition.get_partition_keys(moment(since))) > index
        assert len(definition.get_partition_keys(moment(since - 1))) <= index


def test_keys_that_are_not_windows_are_not_partitions() -> None:
    windows = _Windows(PARIS_DAYS)
    assert [windows.index(k) for k in ("2024-01-01", "2024-01-31", "2023-12-31", "2024-1-05", "x")] == [
        0, 30, None, None, None,
    ]  # fmt: skip
    assert newest_partition(PARIS_DAYS, ["2024-03-02", "2024-03-10", "nope", "2024-02-29"]) == "2024-03-10"
    assert newest_partition(PARIS_DAYS, []) is None
    assert newest_partition(StaticPartitionsDefinition(["a", "b"]), ["a", "b"]) is None


def test_a_time_window_is_fresh_while_the_latest_expected_partition_is_materialized() -> None:
    """Daily partitions in Paris: 2024-05-01 is expected from midnight CEST (2024-04-30 22:00 UTC) on 2 May."""
    policy = FreshnessPolicy.time_window(fail_window=timedelta(hours=6), warn_window=timedelta(hours=2))
    now = us(2024, 5, 2, 12)
    assert expected_partition(policy, PARIS_DAYS, now) == "2024-05-01"
    fresh = evaluate_partition_freshness(policy, PARIS_DAYS, "2024-05-01", us(2024, 5, 2, 1), now)
    expected_since = us(2024, 5, 2, 22)  # 2024-05-02's window ends at midnight CEST on 3 May
    assert (fresh.state, fresh.next_change_us) == ("PASS", expected_since + 2 * H)
    assert {k: v.value for k, v in fresh.metadata.items()} == {
        "dagster/freshness_params": policy.to_json(),
        "newest_partition": "2024-05-01",
        "dagster/last_updated_timestamp": us(2024, 5, 2, 1) / S,
        "expected_partition": "2024-05-01",
        "freshness_state": "PASS",
        "dagster/fresh_until_timestamp": (expected_since + 2 * H) / S,
    }
    # the next partition, not materialized: within its warn window PASS, then WARN, then FAIL
    assert evaluate_partition_freshness(policy, PARIS_DAYS, "2024-05-01", None, expected_since).state == "PASS"
    warn = evaluate_partition_freshness(policy, PARIS_DAYS, "2024-05-01", None, expected_since + 2 * H)
    assert (warn.state, warn.next_change_us) == ("WARN", expected_since + 6 * H)
    assert warn.description.startswith("Asset is late: partition 2024-05-02 was expected 2 hours ago")
    fail = evaluate_partition_freshness(policy, PARIS_DAYS, "2024-05-01", None, expected_since + 6 * H)
    assert (fail.state, fail.next_change_us) == ("FAIL", None)
    assert fail.metadata["dagster/overdue_deadline_timestamp"].value == (expected_since + 6 * H) / S


def test_a_new_partition_never_makes_a_late_asset_fresh() -> None:
    """The clock runs from when the first partition after the newest materialized one was expected."""
    policy = FreshnessPolicy.time_window(timedelta(hours=30))
    two_days_later = us(2024, 5, 4, 12)  # 2024-05-02 and 2024-05-03 are expected, neither materialized
    result = evaluate_partition_freshness(policy, PARIS_DAYS, "2024-05-01", None, two_days_later)
    assert result.state == "FAIL"
    assert result.metadata["expected_partition"].value == "2024-05-03"
    assert result.metadata["dagster/overdue_deadline_timestamp"].value == (us(2024, 5, 2, 22) + 30 * H) / S
    caught_up = evaluate_partition_freshness(policy, PARIS_DAYS, "2024-05-03", None, two_days_later)
    assert caught_up.state == "PASS"
    ahead = evaluate_partition_freshness(policy, PARIS_DAYS, "2024-05-06", None, two_days_later)  # before its time
    assert (ahead.state, ahead.next_change_us) == ("PASS", us(2024, 5, 7, 22) + 30 * H)  # when 2024-05-07 is late


def test_no_partition_materialized_is_unknown() -> None:
    policy = FreshnessPolicy.time_window(timedelta(hours=1))
    for newest in (None, "not-a-day"):
        result = evaluate_partition_freshness(policy, PARIS_DAYS, newest, None, us(2024, 5, 2))
        assert (result.state, result.next_change_us) == ("UNKNOWN", None)
        assert result.description == "No partition of the asset was ever materialized."


def test_after_the_last_partition_nothing_more_is_expected() -> None:
    hours = HourlyPartitionsDefinition("2024-05-01-00:00", end_date="2024-05-01-03:00")
    policy = FreshnessPolicy.time_window(timedelta(minutes=10))
    done = evaluate_partition_freshness(policy, hours, "2024-05-01-02:00", None, us(2024, 6, 1))
    assert (done.state, done.next_change_us) == ("PASS", None)
    before = evaluate_partition_freshness(policy, hours, "2024-05-01-01:00", None, us(2024, 5, 1, 2, 30))
    assert (before.state, before.next_change_us) == ("PASS", us(2024, 5, 1, 3, 10))


def test_a_cron_policy_asks_for_the_partition_expected_at_its_deadline() -> None:
    """Due by 09:00 Paris time: at that deadline, yesterday's partition."""
    policy = FreshnessPolicy.cron("0 9 * * *", timedelta(hours=1), "Europe/Paris")
    deadline = us(2024, 5, 2, 7)  # 09:00 CEST
    assert expected_partition(policy, PARIS_DAYS, deadline - 1) == "2024-04-30"
    assert expected_partition(policy, PARIS_DAYS, deadline) == "2024-05-01"
    due = evaluate_partition_freshness(policy, PARIS_DAYS, "2024-04-30", us(2024, 5, 1, 6), deadline)
    assert (due.state, due.next_change_us) == ("FAIL", None)
    assert due.description == (
        "Partition 2024-05-01 is overdue: expected by the deadline 0 seconds ago; the newest partition "
        "materialized is 2024-04-30."
    )
    assert due.metadata["dagster/overdue_deadline_timestamp"].value == deadline / S
    before = evaluate_partition_freshness(policy, PARIS_DAYS, "2024-04-30", us(2024, 5, 1, 6), deadline - 1)
    assert (before.state, before.next_change_us) == ("PASS", deadline)
    late = evaluate_partition_freshness(policy, PARIS_DAYS, "2024-05-01", us(2024, 5, 2, 8), us(2024, 5, 2, 8))
    assert (late.state, late.next_change_us) == ("PASS", us(2024, 5, 3, 7))  # however late: a partition is a key
    assert late.metadata["dagster/latest_cron_tick_timestamp"].value == deadline / S


def test_static_partitions_and_none_judge_the_latest_update() -> None:
    policy = FreshnessPolicy.time_window(timedelta(seconds=2))
    for definition in (None, StaticPartitionsDefinition(["eu", "us"])):
        result = evaluate_partition_freshness(policy, definition, "eu", us(2024, 5, 1), us(2024, 5, 1) + S)
        plain = evaluate_freshness(policy, us(2024, 5, 1), us(2024, 5, 1) + S)
        assert (result.state, result.next_change_us, result.metadata) == (
            plain.state,
            plain.next_change_us,
            plain.metadata,
        )
        assert expected_partition(policy, definition, us(2024, 5, 1)) is None


@pytest.mark.parametrize("definition", [*DEFINITIONS, StaticPartitionsDefinition(["a", "b"])], ids=str)
def test_partitions_read_back_from_the_registry_are_the_same(definition: object) -> None:
    described = definition.describe()  # type: ignore[attr-defined]
    again = partitions_from_description(json.dumps(described))
    assert again is not None and again.describe() == described
    if isinstance(definition, TimeWindowPartitionsDefinition):
        at = moment(us(2024, 11, 3, 7))
        assert again.get_partition_keys(at) == definition.get_partition_keys(at)
    assert partitions_from_description("") is None
