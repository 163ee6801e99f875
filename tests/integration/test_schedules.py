"""Schedules end to end: the scheduler -> ticks in ClickHouse and run requests on ``run_requests`` -> the run
worker -> runs and the asset events of their ops. Real broker, real ClickHouse engine.

Interval schedules of one second keep the tests short; the cron arithmetic (time zones, daylight-saving
changes) is unit-tested, and here once through a scheduler on a clock that does not sleep.
"""

from __future__ import annotations

import itertools
import json
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from assetpipe.consumers.ingest.worker import IngestWorker
from assetpipe.consumers.runs.worker import RunWorker
from assetpipe.consumers.schedules.worker import ScheduleWorker
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.definitions.jobs import job, op
from assetpipe.definitions.loader import Definitions
from assetpipe.definitions.ops import RunRequest, SkipReason
from assetpipe.definitions.schedules import (
    DefaultScheduleStatus,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    schedule,
)
from assetpipe.schemas.codec import Codec
from assetpipe.schemas.model import AssetMaterialization
from assetpipe.schemas.settings import Settings
from tests.integration.helpers import cli_env, read_topic, run_cli, running_up, start_cli, up_env, wait_until
from tests.integration.pipeline import location_settings, rows, running, wait_rows

SettingsFactory = Callable[..., Settings]
TICKS = (
    "SELECT toString(tick_id), status, scheduled_at, catch_up, run_ids, job_names, run_tags, skip_reason, error, "
    "traceback, evaluated_at FROM {db}.schedule_ticks FINAL WHERE code_location = %(loc)s "
    "AND schedule_name = %(name)s ORDER BY scheduled_at"
)
TICK_FIELDS = ("tick_id", "status", "scheduled_at", "catch_up", "run_ids", "job_names", "run_tags", "skip_reason",
               "error", "traceback", "evaluated_at")  # fmt: skip


@op
def refresh(context: Any) -> None:
    context.log_event(
        AssetMaterialization("schedules/dashboard", metadata={"tick": context.tags["dagster/schedule_name"]})
    )


@job
def refresh_dashboards() -> None:
    refresh()


def ticks(warehouse: Warehouse, settings: Settings, name: str, count: int = 0) -> list[dict[str, Any]]:
    """The schedule's ticks, oldest first, once there are at least ``count``."""
    found = [
        dict(zip(TICK_FIELDS, row, strict=True))
        for row in wait_rows(warehouse, TICKS, count, loc=settings.code_location, name=name)
    ]
    for tick in found:  # ClickHouse hands back naive UTC times
        tick["scheduled_at"] = aware(tick["scheduled_at"])
        tick["evaluated_at"] = aware(tick["evaluated_at"])
    return found


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def tick_count(warehouse: Warehouse, settings: Settings, name: str) -> int:
    return len(rows(warehouse, TICKS, loc=settings.code_location, name=name))


def runs_of(warehouse: Warehouse, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    columns = ("run_id", "status", "job_name", "sensor_name", "tick_id", "tags")
    found = rows(
        warehouse,
        "SELECT toString(run_id), status, job_name, sensor_name, tick_id, tags FROM {db}.runs FINAL "
        "WHERE has(%(ids)s, toString(run_id))",
        ids=run_ids,
    )
    return {row[0]: dict(zip(columns, row, strict=True)) for row in found}


def seconds(tick: dict[str, Any]) -> float:
    return float(tick["scheduled_at"].timestamp())


def test_an_interval_schedule_runs_its_job_and_records_ticks_runs_and_asset_events(
    settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    settings = location_settings(settings_factory)
    every_second = ScheduleDefinition(job=refresh_dashboards, interval_seconds=1, tags={"team": "bi"})
    defs = Definitions(schedules=[every_second], location=str(settings.code_location))
    scheduler = ScheduleWorker(settings, defs, warehouse)
    with running(IngestWorker(settings, warehouse), RunWorker(settings, defs, warehouse), scheduler):
        wait_until(lambda: tick_count(warehouse, settings, "refresh_dashboards_schedule") >= 3, 30, "three ticks")
        found = ticks(warehouse, settings, "refresh_dashboards_schedule", 3)[:3]
        run_ids = [str(t["run_ids"][0]) for t in found]
        wait_until(
            lambda: (
                all(r["status"] == "succeeded" for r in runs_of(warehouse, run_ids).values())
                and len(runs_of(warehouse, run_ids)) == 3
            ),
            45,
            "the three runs succeeded",
        )
        events = wait_rows(
            warehouse,
            "SELECT run_id, asset_key, source, metadata FROM {db}.asset_events WHERE has(%(ids)s, run_id)",
            3,
            ids=run_ids,
        )
    assert [t["status"] for t in found] == ["success"] * 3
    assert all(seconds(b) > seconds(a) for a, b in itertools.pairwise(found))
    assert all(seconds(t) % 1 == 0 and not t["catch_up"] for t in found)  # whole seconds since the epoch
    assert all(t["scheduled_at"] <= t["evaluated_at"] < t["scheduled_at"] + timedelta(seconds=1) for t in found)
    runs = runs_of(warehouse, run_ids)
    for tick in found:
        run = runs[str(tick["run_ids"][0])]
        assert (run["status"], run["job_name"], run["sensor_name"], run["tick_id"]) == (
            "succeeded",
            "refresh_dashboards",
            "",
            tick["tick_id"],
        )
        assert run["tags"] == {
            "team": "bi",
            "dagster/schedule_name": "refresh_dashboards_schedule",
            "dagster/scheduled_execution_time": tick["scheduled_at"].astimezone(UTC).isoformat(),
        }
    assert sorted((e[0], e[1], e[2]) for e in events) == sorted((r, "schedules/dashboard", "run") for r in run_ids)
    assert all(e[3] == {"tick": "refresh_dashboards_schedule"} for e in events)

    requests = [Codec().decode(m.value() or b"")[1] for m in read_topic(settings, settings.topics.run_requests, 3)]
    first = next(r for r in requests if r["run_id"] == run_ids[0])
    assert (first["sensor_name"], first["trigger"], first["tick_id"]) == (None, None, found[0]["tick_id"])
    registered = rows(
        warehouse,
        "SELECT cron_schedules, interval_seconds, execution_timezone, job_name, status, tags FROM {db}.schedules "
        "FINAL WHERE code_location = %(loc)s",
        loc=settings.code_location,
    )
    assert registered == [([], 1.0, "UTC", "refresh_dashboards", "running", {"team": "bi"})]
    assert scheduler.status()["state"] == "stopped" and scheduler.status()["ticks"] >= 3


def test_a_tick_missed_while_the_scheduler_was_down_runs_once_after_it_restarts(
    settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    settings = location_settings(settings_factory)
    every_second = ScheduleDefinition("every_second", job=refresh_dashboards, interval_seconds=1)
    defs = Definitions(schedules=[every_second], location=str(settings.code_location))
    with running(ScheduleWorker(settings, defs, warehouse)):
        wait_until(lambda: tick_count(warehouse, settings, "every_second") >= 2, 30, "two ticks")
    before = ticks(warehouse, settings, "every_second")
    time.sleep(3.5)  # down for three ticks or more
    restarted = datetime.now(UTC)
    again = ScheduleWorker(settings, defs, warehouse)
    with running(again):
        wait_until(lambda: tick_count(warehouse, settings, "every_second") >= len(before) + 3, 30, "three more ticks")
    after = ticks(warehouse, settings, "every_second")[len(before) :]
    catch_up, *normal = after
    assert [t["scheduled_at"] for t in ticks(warehouse, settings, "every_second")[: len(before)]] == [
        t["scheduled_at"] for t in before
    ]
    # one tick for the whole pause: the latest missed one, at restart; none of the ticks before it
    assert catch_up["catch_up"] and seconds(catch_up) - seconds(before[-1]) >= 3
    assert catch_up["scheduled_at"] > restarted - timedelta(seconds=1)  # the most recent one missed
    assert catch_up["evaluated_at"] - catch_up["scheduled_at"] < timedelta(seconds=1)
    assert again.status()["catch_up"] == 1
    # then the ticks as they come, none a catch-up
    assert normal and not any(t["catch_up"] for t in normal)
    assert all(seconds(b) > seconds(a) for a, b in itertools.pairwise(after))
    assert all(t["status"] == "success" and len(t["run_ids"]) == 1 for t in before + after)
    queued = rows(
        warehouse,
        "SELECT count() FROM {db}.run_requests FINAL WHERE code_location = %(loc)s "
        "AND tags['dagster/schedule_name'] = 'every_second'",
        loc=settings.code_location,
    )
    assert queued == [(len(before) + len(after),)]  # a run queued per tick, none for the missed ones


class SlowPublishingScheduleWorker(ScheduleWorker):
    """Takes 0.3 s to publish: two replicas both evaluate each tick before either has recorded it, so every
    tick is fired twice, which only derived ids make harmless."""

    def _publish(self, records: list[dict[str, Any]]) -> None:
        time.sleep(0.3)
        super()._publish(records)


def test_two_scheduler_replicas_run_each_tick_once(settings_factory: SettingsFactory, warehouse: Warehouse) -> None:
    settings = location_settings(settings_factory)
    every_second = ScheduleDefinition("replicated", job=refresh_dashboards, interval_seconds=1)
    defs = Definitions(schedules=[every_second], location=str(settings.code_location))
    replicas = [SlowPublishingScheduleWorker(settings, defs, warehouse) for _ in range(2)]
    with running(*replicas, RunWorker(settings, defs, warehouse)):
        wait_until(lambda: tick_count(warehouse, settings, "replicated") >= 4, 30, "four ticks")
        found = ticks(warehouse, settings, "replicated", 4)[:4]
        run_ids = [str(run_id) for t in found for run_id in t["run_ids"]]
        wait_until(
            lambda: sum(r["status"] == "succeeded" for r in runs_of(warehouse, run_ids).values()) == 4,
            45,
            "the four runs succeeded",
        )
    evaluated = sum(r.status()["ticks"] for r in replicas)
    assert evaluated > len(ticks(warehouse, settings, "replicated")), "the replicas never fired the same tick"
    per_time = rows(
        warehouse,
        "SELECT scheduled_at, count() FROM {db}.schedule_ticks FINAL WHERE code_location = %(loc)s "
        "GROUP BY scheduled_at ORDER BY scheduled_at",
        loc=settings.code_location,
    )
    assert all(n == 1 for _, n in per_time)
    runs_per_time = rows(
        warehouse,
        "SELECT tags['dagster/scheduled_execution_time'] AS at, uniqExact(run_id) FROM {db}.runs FINAL "
        "WHERE code_location = %(loc)s GROUP BY at",
        loc=settings.code_location,
    )
    assert runs_per_time and all(n == 1 for _, n in runs_per_time)
    started = rows(
        warehouse,
        "SELECT toString(run_id), count() FROM {db}.run_events WHERE has(%(ids)s, toString(run_id)) "
        "AND event_type = 'run_started' GROUP BY run_id",
        ids=run_ids,
    )
    assert sorted(started) == sorted((run_id, 1) for run_id in run_ids)


def test_a_skip_and_an_error_are_recorded_and_the_other_schedules_carry_on(
    settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    settings = location_settings(settings_factory)

    @schedule(interval_seconds=1, job=refresh_dashboards)
    def holiday(context: ScheduleEvaluationContext) -> SkipReason:
        return SkipReason(f"{context.scheduled_execution_time:%Y-%m-%d} is a holiday")

    @schedule(interval_seconds=1, job=refresh_dashboards)
    def broken() -> None:
        raise ValueError("no config for today")

    @schedule(interval_seconds=1, job=refresh_dashboards)
    def twice(context: ScheduleEvaluationContext) -> list[RunRequest]:
        return [RunRequest(run_key="a", tags={"k": "a"}), RunRequest(run_key="b", partition_key="p")]

    stopped = ScheduleDefinition(
        "stopped", job=refresh_dashboards, interval_seconds=1, default_status=DefaultScheduleStatus.STOPPED
    )
    defs = Definitions(schedules=[holiday, broken, twice, stopped], location=str(settings.code_location))
    scheduler = ScheduleWorker(settings, defs, warehouse)
    with running(scheduler):
        for name in ("holiday", "broken", "twice"):
            wait_until(lambda name=name: tick_count(warehouse, settings, name) >= 2, 30, f"two ticks of {name}")
    skipped, failed, ok = (ticks(warehouse, settings, name)[0] for name in ("holiday", "broken", "twice"))
    today = skipped["scheduled_at"].astimezone(UTC).strftime("%Y-%m-%d")
    assert (skipped["status"], skipped["skip_reason"], skipped["run_ids"]) == ("skipped", f"{today} is a holiday", [])
    assert (failed["status"], failed["error"], failed["run_ids"]) == ("failure", "ValueError: no config for today", [])
    assert "Traceback (most recent call last)" in failed["traceback"]
    assert 'raise ValueError("no config for today")' in failed["traceback"]
    assert (ok["status"], len(ok["run_ids"]), ok["job_names"]) == ("success", 2, ["refresh_dashboards"] * 2)
    assert ok["run_tags"][0]["k"] == "a" and ok["run_tags"][1]["dagster/partition"] == "p"
    assert tick_count(warehouse, settings, "stopped") == 0
    status = scheduler.status()
    assert (
        status["failures"] >= 2
        and status["skipped"] >= 2
        and set(status["next_ticks"])
        == {
            "holiday",
            "broken",
            "twice",
        }
    )
    registered = rows(
        warehouse,
        "SELECT schedule_name, status FROM {db}.schedules FINAL WHERE code_location = %(loc)s ORDER BY schedule_name",
        loc=settings.code_location,
    )
    assert registered == [("broken", "running"), ("holiday", "running"), ("stopped", "stopped"), ("twice", "running")]


class VirtualClock:
    """A clock that jumps to the time the scheduler waits for, and stops it at ``until``."""

    def __init__(self, start: datetime, until: datetime) -> None:
        self.moment = start
        self.until = until

    def now(self) -> datetime:
        return self.moment

    def wait(self, stop: threading.Event, seconds: float | None) -> bool:
        if seconds is None or self.moment + timedelta(seconds=seconds) > self.until:
            stop.set()
            return True
        self.moment += timedelta(seconds=seconds)
        return stop.is_set()


def test_a_cron_schedule_in_a_time_zone_ticks_through_the_end_of_daylight_saving_time(
    settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    """New York, 3 November 2024: 01:30 happens twice. The daily schedule runs at the second; the one every
    half hour at both."""
    settings = location_settings(settings_factory)
    daily = ScheduleDefinition(
        "daily", job=refresh_dashboards, cron_schedule="30 1 * * *", execution_timezone="America/New_York"
    )
    half_hourly = ScheduleDefinition(
        "half_hourly", job=refresh_dashboards, cron_schedule="*/30 * * * *", execution_timezone="America/New_York"
    )
    defs = Definitions(schedules=[daily, half_hourly], location=str(settings.code_location))
    clock = VirtualClock(datetime(2024, 11, 3, 4, 10, tzinfo=UTC), datetime(2024, 11, 3, 7, 50, tzinfo=UTC))
    scheduler = ScheduleWorker(settings, defs, warehouse, clock=clock)
    scheduler.run(threading.Event())  # returns when the clock reaches its end

    def local(name: str) -> list[str]:
        found = [t["run_tags"][0]["dagster/scheduled_execution_time"] for t in ticks(warehouse, settings, name)]
        return [at[11:] for at in found]

    assert local("daily") == ["01:30:00-05:00"]
    assert local("half_hourly") == [
        "00:30:00-04:00",
        "01:00:00-04:00",
        "01:30:00-04:00",
        "01:00:00-05:00",
        "01:30:00-05:00",
        "02:00:00-05:00",
        "02:30:00-05:00",
    ]


DEFS_FILE = """
from assetpipe import AssetMaterialization, ScheduleDefinition, job, op


@op
def touch(context):
    context.log_event(AssetMaterialization("scheduled/touched"))


@job
def touch_job():
    touch()


every_second = ScheduleDefinition(job=touch_job, interval_seconds=1)
"""


def sql(env: dict[str, str], query: str) -> list[dict[str, Any]]:
    done = run_cli(["sql", query, "--format", "json"], env)
    assert done.returncode == 0, done.stderr
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return found


def test_assetpipe_up_runs_the_scheduler_and_status_shows_it(tmp_path: Path) -> None:
    defs = tmp_path / "scheduled_defs.py"
    defs.write_text(DEFS_FILE)
    env = up_env(tmp_path / "data")
    log = tmp_path / "up.log"
    with running_up(["--defs", str(defs)], env, log):
        status = run_cli(["status"], env, timeout=30).stdout
        line = next(line for line in status.splitlines() if line.startswith("schedules"))
        assert "ready" in line and "state=running" in line and "touch_job_schedule" in line, status
        wait_until(
            lambda: sql(env, "SELECT count() AS n FROM runs FINAL WHERE status = 'succeeded'")[0]["n"] >= 2,
            60,
            "two scheduled runs succeeded",
        )
    text = log.read_text()
    assert "scheduler" in text and "1 of 1 schedules running" in text and "Traceback" not in text, text[-3000:]


def test_assetpipe_worker_schedule_publishes_run_requests(settings_factory: SettingsFactory, tmp_path: Path) -> None:
    settings = settings_factory(clickhouse_url=f"chdb://{tmp_path / 'clickhouse'}", data_dir=tmp_path)
    if not settings.uses_embedded_clickhouse:
        pytest.skip("uses an embedded ClickHouse directory of its own")
    defs = tmp_path / "scheduled_defs.py"
    defs.write_text(DEFS_FILE)
    env = cli_env(settings, ASSETPIPE_CODE_LOCATION="standalone")
    worker = start_cli(["worker", "schedule", "--defs", str(defs)], env, tmp_path / "worker.log")
    try:
        requests = [Codec().decode(m.value() or b"")[1] for m in read_topic(settings, settings.topics.run_requests, 2)]
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0, (tmp_path / "worker.log").read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert {(r["job_name"], r["code_location"], r["tags"]["dagster/schedule_name"]) for r in requests} == {
        ("touch_job", "standalone", "touch_job_schedule")
    }
    recorded = sql(
        env,
        f"SELECT toString(tick_id) AS tick, run_ids FROM {settings.clickhouse_database}.schedule_ticks FINAL "
        "ORDER BY scheduled_at",
    )
    assert {r["run_id"] for r in requests} <= {run_id for tick in recorded for run_id in tick["run_ids"]}
    assert {r["tick_id"] for r in requests} <= {tick["tick"] for tick in recorded}
