"""Schedules: the definition and its checks, when it ticks (time zones, daylight-saving changes, intervals,
missed ticks) with the clock given, and what its function may return. No sockets, no sleeping."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assetpipe.definitions.asset_jobs import define_asset_job
from assetpipe.definitions.assets import asset
from assetpipe.definitions.jobs import job
from assetpipe.definitions.loader import Definitions, load_definitions
from assetpipe.definitions.ops import DefinitionError, RunConfig, RunRequest, SkipReason
from assetpipe.definitions.schedules import (
    DefaultScheduleStatus,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    schedule,
)

NEW_YORK = ZoneInfo("America/New_York")


@job
def nightly(context: object) -> None:
    pass


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def ticks(definition: ScheduleDefinition, start: datetime, count: int) -> list[datetime]:
    """The next ``count`` ticks after ``start``, as UTC instants."""
    found = []
    moment = start
    for _ in range(count):
        moment = definition.next_tick_after(moment)
        found.append(moment.astimezone(UTC))
    return found


def context(name: str = "s", when: datetime | None = None) -> ScheduleEvaluationContext:
    return ScheduleEvaluationContext(
        schedule_name=name,
        code_location="loc",
        scheduled_execution_time=when or utc(2024, 1, 1),
        log=logging.getLogger("test"),
    )


# -- the definition ---------------------------------------------------------------------------------------


def test_a_schedule_takes_dagster_arguments_and_defaults_to_running_in_utc() -> None:
    plain = ScheduleDefinition(job=nightly, cron_schedule="0 2 * * *", run_config={"ops": {}}, tags={"team": "a"})
    assert (plain.name, plain.job_name, plain.job) == ("nightly_schedule", "nightly", nightly)
    assert plain.default_status is DefaultScheduleStatus.RUNNING and plain.running
    assert (plain.execution_timezone, plain.cron_schedule, plain.interval_seconds) == ("UTC", "0 2 * * *", None)
    assert (plain.run_config, plain.tags) == ({"ops": {}}, {"team": "a"})

    named = ScheduleDefinition("hourly", job_name="elsewhere", cron_schedule=["0 * * * *", "30 * * * *"])
    assert (named.name, named.job_name, named.job, named.cron_schedules) == (
        "hourly",
        "elsewhere",
        None,
        ("0 * * * *", "30 * * * *"),
    )
    stopped = ScheduleDefinition(
        job=nightly, interval_seconds=5, default_status=DefaultScheduleStatus.STOPPED, name="every_5s"
    )
    assert not stopped.running and stopped.interval_seconds == 5 and stopped.cron_schedules == ()

    @schedule(cron_schedule="@daily", job=nightly, execution_timezone="Europe/Paris")
    def daily(context: ScheduleEvaluationContext) -> None:
        """Every day."""

    assert (daily.name, daily.description, daily.execution_timezone) == ("daily", "Every day.", "Europe/Paris")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cron_schedule": "bogus"}, "'bogus' is not a valid cron string"),
        ({"cron_schedule": "0 0 * * * *"}, "is not a valid cron string: five fields"),  # seconds: Dagster refuses
        ({"cron_schedule": []}, "cron_schedule is an empty list"),
        ({"cron_schedule": "0 0 30 2 *"}, "never fires"),
        ({"cron_schedule": "0 * * * *", "execution_timezone": "Mars/Olympus"}, "is not an IANA time zone"),
        ({"cron_schedule": "0 * * * *", "interval_seconds": 5}, "pass cron_schedule or interval_seconds"),
        ({}, "pass cron_schedule or interval_seconds"),
        ({"interval_seconds": 0}, "interval_seconds must be a positive number"),
        ({"interval_seconds": -1.5}, "interval_seconds must be a positive number"),
        ({"interval_seconds": True}, "interval_seconds must be a positive number"),
        ({"interval_seconds": "5"}, "interval_seconds must be a positive number"),
        ({"interval_seconds": 0.0001}, "at least 0.001"),
        ({"interval_seconds": 1, "run_config": {"x": object()}}, "run_config must be JSON-serializable"),
    ],
)
def test_a_bad_schedule_is_refused_when_defined(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        ScheduleDefinition(job=nightly, **kwargs)  # type: ignore[arg-type]


def test_names_targets_and_signatures_are_checked() -> None:
    with pytest.raises(DefinitionError, match="needs a name, or a job"):
        ScheduleDefinition(cron_schedule="0 * * * *")
    with pytest.raises(DefinitionError, match="pass job or job_name, not both"):
        ScheduleDefinition(job=nightly, job_name="nightly", cron_schedule="0 * * * *")
    with pytest.raises(DefinitionError, match="job must be a @job"):
        ScheduleDefinition(job="nightly", cron_schedule="0 * * * *")  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="schedule name 'not a name'"):
        ScheduleDefinition("not a name", job=nightly, cron_schedule="0 * * * *")
    with pytest.raises(DefinitionError, match="must take a context or nothing"):

        @schedule(cron_schedule="0 * * * *", job=nightly)
        def two(context: object, other: object) -> None:
            pass


# -- when it ticks ----------------------------------------------------------------------------------------


def test_cron_times_are_read_in_the_execution_timezone() -> None:
    paris = ScheduleDefinition(job=nightly, cron_schedule="0 9 * * *", execution_timezone="Europe/Paris")
    winter, summer = paris.next_tick_after(utc(2024, 1, 15)), paris.next_tick_after(utc(2024, 7, 15))
    assert (winter.astimezone(UTC), summer.astimezone(UTC)) == (utc(2024, 1, 15, 8), utc(2024, 7, 15, 7))
    assert winter.tzinfo == ZoneInfo("Europe/Paris") and winter.hour == 9  # what the function is handed


def test_a_time_skipped_when_clocks_go_forward_runs_at_the_next_time_that_exists() -> None:
    """New York, 10 March 2024: 02:00 EST becomes 03:00 EDT; a 02:30 schedule runs at 03:00 that day."""
    daily = ScheduleDefinition(job=nightly, cron_schedule="30 2 * * *", execution_timezone="America/New_York")
    found = [t.astimezone(NEW_YORK) for t in ticks(daily, utc(2024, 3, 8, 12), 4)]
    assert [t.isoformat() for t in found] == [
        "2024-03-09T02:30:00-05:00",
        "2024-03-10T03:00:00-04:00",
        "2024-03-11T02:30:00-04:00",
        "2024-03-12T02:30:00-04:00",
    ]
    hourly = ScheduleDefinition(job=nightly, cron_schedule="0 * * * *", execution_timezone="America/New_York")
    assert ticks(hourly, utc(2024, 3, 10, 5, 30), 3) == [utc(2024, 3, 10, 6), utc(2024, 3, 10, 7), utc(2024, 3, 10, 8)]


def test_a_time_that_happens_twice_when_clocks_go_back_runs_once_the_second_time() -> None:
    """New York, 3 November 2024: 02:00 EDT becomes 01:00 EST; 01:30 happens twice, a daily 01:30 schedule
    runs at the second (06:30 UTC), as in Dagster."""
    daily = ScheduleDefinition(job=nightly, cron_schedule="30 1 * * *", execution_timezone="America/New_York")
    assert ticks(daily, utc(2024, 11, 2, 12), 3) == [utc(2024, 11, 3, 6, 30), utc(2024, 11, 4, 6, 30),
                                                     utc(2024, 11, 5, 6, 30)]  # fmt: skip
    assert daily.latest_tick_at_or_before(utc(2024, 11, 3, 6, 0)).astimezone(UTC) == utc(2024, 11, 2, 5, 30)
    assert daily.latest_tick_at_or_before(utc(2024, 11, 3, 6, 45)).astimezone(UTC) == utc(2024, 11, 3, 6, 30)


def test_an_hourly_schedule_runs_in_both_of_the_repeated_hours() -> None:
    hourly = ScheduleDefinition(job=nightly, cron_schedule="30 * * * *", execution_timezone="America/New_York")
    found = ticks(hourly, utc(2024, 11, 3, 4), 4)
    assert found == [utc(2024, 11, 3, 4, 30), utc(2024, 11, 3, 5, 30), utc(2024, 11, 3, 6, 30), utc(2024, 11, 3, 7, 30)]
    assert [t.astimezone(NEW_YORK).strftime("%H:%M%z") for t in found] == ["00:30-0400", "01:30-0400", "01:30-0500",
                                                                         "02:30-0500"]  # fmt: skip


def test_an_interval_schedule_ticks_at_multiples_of_its_interval_since_the_epoch() -> None:
    every = ScheduleDefinition(job=nightly, interval_seconds=1.5, execution_timezone="Asia/Tokyo")
    start = utc(2024, 1, 1)  # 1,704,067,200 s since the epoch: a multiple of 1.5
    assert ticks(every, start, 3) == [start + timedelta(seconds=s) for s in (1.5, 3.0, 4.5)]
    assert every.latest_tick_at_or_before(start + timedelta(seconds=2.9)).astimezone(UTC) == start + timedelta(
        seconds=1.5
    )
    assert every.next_tick_after(start).utcoffset() == timedelta(hours=9)  # handed over in its time zone


def simulate(definition: ScheduleDefinition, start: datetime, until: datetime) -> Iterator[datetime]:
    """What the scheduler does with its clock given: wake at the next tick, run the due tick, repeat."""
    handled = now = start
    while True:
        now = definition.next_tick_after(now)
        if now > until:
            return
        due = definition.due_tick(handled, now)
        assert due is not None, f"woke at {now} with nothing due"
        handled = due
        yield due.astimezone(UTC)


def test_the_scheduler_clock_walks_through_both_daylight_saving_changes() -> None:
    quarter = ScheduleDefinition(job=nightly, cron_schedule="15 1-3 * * *", execution_timezone="America/New_York")
    spring = list(simulate(quarter, utc(2024, 3, 10, 5), utc(2024, 3, 10, 9)))
    assert spring == [utc(2024, 3, 10, 6, 15), utc(2024, 3, 10, 7, 0), utc(2024, 3, 10, 7, 15)]  # 01:15, 03:00, 03:15
    autumn = list(simulate(quarter, utc(2024, 11, 3, 4), utc(2024, 11, 3, 9)))
    assert autumn == [utc(2024, 11, 3, 6, 15), utc(2024, 11, 3, 7, 15), utc(2024, 11, 3, 8, 15)]  # 01:15 EST, 02, 03


def test_after_a_pause_only_the_latest_missed_tick_is_due() -> None:
    hourly = ScheduleDefinition(job=nightly, cron_schedule="0 * * * *")
    handled = utc(2024, 1, 1, 3)
    assert hourly.due_tick(handled, utc(2024, 1, 1, 3, 59)) is None
    assert hourly.due_tick(handled, utc(2024, 1, 1, 7, 20)) == utc(2024, 1, 1, 7)  # not 04:00, 05:00 and 06:00
    assert hourly.due_tick(utc(2024, 1, 1, 7), utc(2024, 1, 1, 7, 20)) is None  # and once
    with pytest.raises(DefinitionError, match="timezone-aware"):
        hourly.next_tick_after(datetime(2024, 1, 1))


@settings(max_examples=200, deadline=None)
@given(
    expr=st.sampled_from(["30 1 * * *", "30 2 * * *", "*/20 * * * *", "0 1,2 * * *", "15 1-3 * * 0"]),
    zone=st.sampled_from(["America/New_York", "Europe/London", "Australia/Lord_Howe", "UTC"]),
    moment=st.datetimes(datetime(2024, 3, 1), datetime(2024, 11, 30), timezones=st.just(UTC)),
)
def test_no_tick_lies_between_the_latest_before_and_the_next_after(expr: str, zone: str, moment: datetime) -> None:
    definition = ScheduleDefinition(job=nightly, cron_schedule=expr, execution_timezone=zone)
    before, after = definition.latest_tick_at_or_before(moment), definition.next_tick_after(moment)
    assert before <= moment < after
    assert definition.next_tick_after(before).astimezone(UTC) == after.astimezone(UTC)
    assert definition.latest_tick_at_or_before(after).astimezone(UTC) == after.astimezone(UTC)


# -- what it requests -------------------------------------------------------------------------------------


def test_a_plain_schedule_requests_one_run_with_its_config_and_tags() -> None:
    plain = ScheduleDefinition(
        job=nightly, cron_schedule="0 2 * * *", run_config=RunConfig(ops={"x": {"n": 1}}), tags={"n": 2}
    )
    assert plain.evaluate(context()) == ([RunRequest(run_config={"ops": {"x": {"config": {"n": 1}}}}, tags={"n": "2"})],
                                         None)  # fmt: skip


def test_a_schedule_function_returns_what_dagster_allows() -> None:
    seen: list[datetime] = []

    def define(result: object) -> ScheduleDefinition:
        @schedule(cron_schedule="0 * * * *", job=nightly, run_config={"default": True}, tags={"t": "1"})
        def fn(context: ScheduleEvaluationContext) -> object:
            seen.append(context.scheduled_execution_time)
            return result

        return fn

    default = RunRequest(run_config={"default": True}, tags={"t": "1"})
    assert define(None).evaluate(context(when=utc(2024, 5, 1))) == ([default], None)
    assert seen == [utc(2024, 5, 1)]
    assert define({"ops": {}}).evaluate(context()) == ([RunRequest(run_config={"ops": {}}, tags={"t": "1"})], None)
    two = [RunRequest(run_key="a"), RunRequest(run_key="b", job_name="other")]
    assert define(two).evaluate(context()) == (two, None)
    assert define(iter(two)).evaluate(context()) == (two, None)
    assert define(SkipReason("holiday")).evaluate(context()) == ([], SkipReason("holiday"))
    assert define([]).evaluate(context()) == ([], None)  # nothing requested: a skipped tick
    with pytest.raises(DefinitionError, match="schedule 'fn' returned a int"):
        define(5).evaluate(context())
    with pytest.raises(DefinitionError, match="received both"):
        define([RunRequest(), SkipReason()]).evaluate(context())

    @schedule(interval_seconds=60, job=nightly)
    def no_context() -> RunRequest:
        return RunRequest(run_key="k")

    assert no_context.evaluate(context()) == ([RunRequest(run_key="k")], None)


def test_an_error_in_the_function_reaches_the_caller() -> None:
    @schedule(cron_schedule="0 * * * *", job=nightly)
    def broken(context: ScheduleEvaluationContext) -> None:
        raise KeyError("missing")

    with pytest.raises(KeyError, match="missing"):
        broken.evaluate(context())


# -- in Definitions and definitions files -----------------------------------------------------------------


def test_definitions_take_schedules_whose_jobs_join_the_jobs() -> None:
    @asset
    def table() -> None:
        pass

    tables = define_asset_job("tables", selection=[table])
    by_job = ScheduleDefinition(job=nightly, cron_schedule="0 2 * * *")
    by_asset_job = ScheduleDefinition(job=tables, cron_schedule="0 3 * * *")
    by_name = ScheduleDefinition("by_name", job_name="elsewhere", interval_seconds=60)
    defs = Definitions(assets=[table], schedules=[by_job, by_asset_job, by_name])
    assert defs.schedules == (by_job, by_asset_job, by_name)
    assert defs.schedule("tables_schedule") is by_asset_job and defs.schedule("missing") is None
    assert {job.name for job in defs.jobs} == {"nightly", "tables"}
    with pytest.raises(DefinitionError, match="two different schedules are named 'nightly_schedule'"):
        Definitions(schedules=[by_job, ScheduleDefinition(job=nightly, cron_schedule="0 4 * * *")])
    with pytest.raises(DefinitionError, match="schedules must be schedules, got str"):
        Definitions(schedules=["nightly_schedule"])  # type: ignore[list-item]


def test_a_file_without_definitions_gives_its_module_level_schedules(tmp_path: Path) -> None:
    path = tmp_path / "scheduled.py"
    path.write_text(
        "from assetpipe import ScheduleDefinition, job, schedule\n"
        "@job\n"
        "def nightly(context):\n"
        "    pass\n"
        "every_night = ScheduleDefinition(job=nightly, cron_schedule='0 2 * * *', execution_timezone='Europe/Paris')\n"
        "@schedule(interval_seconds=30, job=nightly)\n"
        "def often(context):\n"
        "    return {'ops': {}}\n"
    )
    defs = load_definitions(path)
    assert (defs.location, sorted(s.name for s in defs.schedules)) == ("scheduled", ["nightly_schedule", "often"])
    assert [job.name for job in defs.jobs] == ["nightly"]
