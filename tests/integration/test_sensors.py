"""Sensors end to end: SDK -> ingest worker -> accepted stream -> sensor worker -> ticks, run requests on
``run_requests`` (Avro) and in ClickHouse -> run worker. Real broker, real ClickHouse engine."""

from __future__ import annotations

import dataclasses
import json
import signal
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from assetpipe import (
    AssetKey,
    Definitions,
    Reporter,
    RunRequest,
    SensorEvaluationContext,
    asset_sensor,
    job,
    multi_asset_sensor,
)
from assetpipe.broker import free_port
from assetpipe.consumers.ingest.worker import IngestWorker
from assetpipe.consumers.sensors.worker import SensorWorker
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.definitions.context import MultiAssetSensorEvaluationContext
from assetpipe.schemas.codec import Codec
from assetpipe.schemas.settings import Settings
from tests.integration.helpers import cli_env, read_topic, run_cli, start_cli, wait_until
from tests.integration.pipeline import (
    DEFS,
    finished_runs,
    location_settings,
    pipeline,
    rows,
    running,
    ticks,
    wait_rows,
    wait_ticks,
)

SettingsFactory = Callable[..., Settings]


def version() -> str:
    return uuid.uuid4().hex[:12]  # data versions are deduplicated across the session's database


def test_a_run_is_requested_when_daily_sales_data_is_materialized(
    settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    settings = location_settings(settings_factory)
    sales = version()
    with pipeline(settings, warehouse, "sales_defs.py"), Reporter(settings=settings) as reporter:
        event_id = reporter.report_materialization(
            "daily_sales_data", partition="2024-06-03", data_version=sales
        ).event_id
        runs = finished_runs(warehouse, settings, 2, job_name="my_job")
    assert {(r["sensor_name"], r["status"], r["trigger_event_id"]) for r in runs} == {
        ("daily_sales_data_sensor", "succeeded", event_id),
        ("business_day_sensor", "succeeded", event_id),
    }
    for run in runs:
        assert run["requested_at"] <= run["started_at"] <= run["finished_at"] and run["duration_ms"] >= 0
    business = next(r for r in runs if r["sensor_name"] == "business_day_sensor")
    assert business["run_key"] == event_id and business["tags"] == {"day": "2024-06-03"}  # run_key=context.cursor

    requests = [Codec().decode(m.value() or b"") for m in read_topic(settings, settings.topics.run_requests, 2)]
    assert [t for t, _ in requests] == ["run_request", "run_request"]
    assert {(r["sensor_name"], r["job_name"], r["trigger"]["event_id"]) for _, r in requests} == {
        ("daily_sales_data_sensor", "my_job", event_id),
        ("business_day_sensor", "my_job", event_id),
    }
    reason = "Asset materialization does not have the required property"
    assert ticks(warehouse, settings, "weekly_report_sensor") == [("skipped", sales, [], reason, "")]
    assert ticks(warehouse, settings, "stopped_sensor") == []
    status = rows(warehouse, "SELECT sensor_name, status FROM {db}.sensors FINAL WHERE code_location = %(loc)s "
                  "ORDER BY sensor_name", loc=settings.code_location)  # fmt: skip
    assert ("stopped_sensor", "stopped") in status and ("daily_sales_data_sensor", "running") in status


def test_a_custom_evaluation_skips_holidays(settings_factory: SettingsFactory, warehouse: Warehouse) -> None:
    settings = location_settings(settings_factory)
    holiday, workday = version(), version()
    with pipeline(settings, warehouse, "sales_defs.py", runs=False), Reporter(settings=settings) as reporter:
        reporter.report_materialization("daily_sales_data", partition="2024-12-25", data_version=holiday)
        reporter.report_materialization("daily_sales_data", partition="2024-12-27", data_version=workday)
        found = wait_ticks(warehouse, settings, "business_day_sensor", 2)
    assert [(status, v, reason) for status, v, _, reason, _ in found] == [
        ("skipped", holiday, "2024-12-25 is a holiday"),
        ("success", workday, ""),
    ]
    assert len(ticks(warehouse, settings, "daily_sales_data_sensor")) == 2  # other sensors still fire on holidays


def test_run_config_is_built_from_the_event_metadata(settings_factory: SettingsFactory, warehouse: Warehouse) -> None:
    settings = location_settings(settings_factory)
    with pipeline(settings, warehouse, "sales_defs.py"), Reporter(settings=settings) as reporter:
        reporter.report_materialization(
            "daily_sales_data", data_version=version(), metadata={"specific_property": "eu-7"}
        )
        [run] = finished_runs(warehouse, settings, 1, job_name="weekly_report_job")
    assert run["status"] == "succeeded" and run["sensor_name"] == "weekly_report_sensor"
    assert json.loads(run["run_config"]) == {"ops": {"weekly_report": {"config": {"param1": "eu-7"}}}}
    events = rows(warehouse, "SELECT event_type, op_name, message, metadata FROM {db}.run_events "
                  "WHERE run_id = %(id)s ORDER BY seq", id=str(run["run_id"]))  # fmt: skip
    assert ("log", "weekly_report", "Running weekly report with param1: eu-7", {}) in events
    assert ("step_output", "weekly_report", "", {"param1": "eu-7"}) in events


def test_a_multi_asset_sensor_fires_once_both_assets_have_new_data(
    settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    settings = location_settings(settings_factory)
    sensor = "asset_a_and_b_sensor"
    versions = [version() for _ in range(6)]
    assets = ["asset_a", "asset_b", "asset_b", "asset_a", "asset_a", "asset_b"]
    with pipeline(settings, warehouse, "sales_defs.py", runs=False), Reporter(settings=settings) as reporter:
        reporter.report_materialization("asset_a", data_version=versions[0])
        wait_ticks(warehouse, settings, sensor, 1)
    # a restarted worker picks up the cursor: asset_a's materialization is still unconsumed
    with pipeline(settings, warehouse, "sales_defs.py", runs=False), Reporter(settings=settings) as reporter:
        for n in range(1, 6):
            reporter.report_materialization(assets[n], data_version=versions[n])
            wait_ticks(warehouse, settings, sensor, n + 1)
    statuses = [status for status, *_ in ticks(warehouse, settings, sensor)]
    assert statuses == ["skipped", "success", "skipped", "success", "skipped", "success"]
    requested = rows(warehouse, "SELECT tags['a'] FROM {db}.run_requests WHERE code_location = %(loc)s "
                     "AND sensor_name = %(s)s ORDER BY requested_at", loc=settings.code_location, s=sensor)  # fmt: skip
    assert requested == [(versions[0],), (versions[3],), (versions[4],)]  # the newest unconsumed asset_a event
    cursor = rows(warehouse, "SELECT asset_key, consumed FROM {db}.multi_asset_cursors WHERE code_location = %(loc)s "
                  "AND sensor_name = %(s)s ORDER BY asset_key", loc=settings.code_location, s=sensor)  # fmt: skip
    assert cursor == [("asset_a", True), ("asset_b", True)]


def test_run_keys_are_requested_once_across_a_sensor_worker_restart(
    settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    settings = location_settings(settings_factory)
    first, second = version(), version()
    with pipeline(settings, warehouse, "dedup_defs.py", runs=False), Reporter(settings=settings) as reporter:
        reporter.report_materialization("orders", partition="p1", data_version=first)
        wait_ticks(warehouse, settings, "orders_sensor", 1)
        twice = wait_ticks(warehouse, settings, "twice_sensor", 1)
    assert twice == [("success", first, [f"twice-{first}"], "", "")]  # the same key twice in one evaluation

    with pipeline(settings, warehouse, "dedup_defs.py", runs=False), Reporter(settings=settings) as reporter:
        reporter.report_materialization("orders", partition="p1", data_version=second)  # rewritten: same run key
        found = wait_ticks(warehouse, settings, "orders_sensor", 2)
    assert found == [
        ("success", first, ["orders-p1"], "", ""),
        ("skipped", second, [], "run keys already requested: orders-p1", ""),
    ]
    requested = rows(warehouse, "SELECT sensor_name, run_key FROM {db}.run_requests FINAL WHERE code_location = "
                     "%(loc)s ORDER BY sensor_name, run_key", loc=settings.code_location)  # fmt: skip
    assert requested == sorted([
        ("from_earliest_sensor", first), ("from_earliest_sensor", second),
        ("orders_sensor", "orders-p1"),
        ("twice_sensor", f"twice-{first}"), ("twice_sensor", f"twice-{second}"),
    ])  # fmt: skip


def test_events_delivered_again_are_not_evaluated_again(
    settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    settings = location_settings(settings_factory)
    with pipeline(settings, warehouse, "dedup_defs.py"), Reporter(settings=settings) as reporter:
        reporter.report_materialization("orders", partition="p9", data_version=version())
        first = finished_runs(warehouse, settings, 3)
    # a new sensor group reads the accepted stream from its start, as after a crash before offsets were committed
    replay = settings.model_copy(update={"sensor_group_id": "replay"})
    with pipeline(replay, warehouse, "dedup_defs.py") as p:
        sensors, runs = p.sensors, p.runs
        assert sensors is not None and runs is not None
        wait_until(lambda: sensors.status()["republished"] == 3, 30, "the recorded requests published again")
        wait_until(lambda: runs.status()["skipped"] == 3, 30, "the run worker skipping runs that finished")
        assert sensors.status()["evaluations"] == 0
    assert finished_runs(warehouse, settings, 3) == first
    assert rows(warehouse, "SELECT count() FROM {db}.sensor_ticks WHERE code_location = %(loc)s",
                loc=settings.code_location) == [(3,)]  # fmt: skip


def test_a_duplicate_data_version_triggers_nothing(settings_factory: SettingsFactory, warehouse: Warehouse) -> None:
    settings = location_settings(settings_factory)
    repeated, marker = version(), version()
    with pipeline(settings, warehouse, "dedup_defs.py", runs=False) as p, Reporter(settings=settings) as reporter:
        reporter.report_materialization("orders", partition="p2", data_version=repeated)
        reporter.report_materialization("orders", partition="p2", data_version=repeated, metadata={"again": True})
        reporter.report_materialization("orders", partition="p3", data_version=marker)  # same asset: after them
        found = wait_ticks(warehouse, settings, "twice_sensor", 2)
        assert p.ingest.status()["duplicates"] == 1
    assert [v for _, v, *_ in found] == [repeated, marker]


def test_a_sensor_added_later_starts_at_the_end_of_the_stream(
    settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    settings = location_settings(settings_factory)
    before, after = version(), version()
    with (
        pipeline(settings, warehouse, "dedup_defs.py", sensors=False, runs=False) as p,
        Reporter(settings=settings) as r,
    ):
        r.report_materialization("orders", partition="p1", data_version=before)
        wait_until(lambda: p.ingest.status()["ingested"] >= 1, 30, "the first event accepted")
    with pipeline(settings, warehouse, "dedup_defs.py", runs=False), Reporter(settings=settings) as reporter:
        reporter.report_materialization("orders", partition="p2", data_version=after)
        earliest = wait_ticks(warehouse, settings, "from_earliest_sensor", 2)
        latest = wait_ticks(warehouse, settings, "orders_sensor", 1)
    assert [v for _, v, *_ in earliest] == [before, after]  # start_at="earliest": what the group reads
    assert [v for _, v, *_ in latest] == [after]  # new sensors ignore what was accepted before them


def test_a_raising_sensor_does_not_stop_the_others(settings_factory: SettingsFactory, warehouse: Warehouse) -> None:
    settings = location_settings(settings_factory)
    with pipeline(settings, warehouse, "watch_defs.py", runs=False), Reporter(settings=settings) as reporter:
        for _ in range(2):
            reporter.report_materialization("inventory", data_version=version(), metadata={"rows": 5})
        broken = wait_ticks(warehouse, settings, "broken_sensor", 2)
        healthy = wait_ticks(warehouse, settings, "healthy_sensor", 2)
    assert [s for s, *_ in broken] == ["failure", "failure"] and [s for s, *_ in healthy] == ["success", "success"]
    assert broken[0][4] == "TypeError: unsupported operand type(s) for /: 'dict' and 'int'"
    [trace] = rows(warehouse, "SELECT any(traceback) FROM {db}.sensor_ticks WHERE code_location = %(loc)s AND "
                   "sensor_name = 'broken_sensor'", loc=settings.code_location)[0]  # fmt: skip
    assert "watch_defs.py" in trace and "/ 0" in trace


def test_sensors_watch_observations_failed_checks_and_failures_to_materialize(
    settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    settings = location_settings(settings_factory)
    changed = version()
    with pipeline(settings, warehouse, "watch_defs.py"), Reporter(settings=settings) as reporter:
        reporter.report_observation("raw/source_table", data_version=changed)
        reporter.report_observation("raw/source_table", data_version=changed)  # unchanged: not accepted again
        reporter.report_check("orders", check_name="row_count", passed=True)
        reporter.report_check("orders", check_name="row_count", passed=False, severity="WARN")
        reporter.report_check("orders", check_name="row_count", passed=False, severity="ERROR")
        reporter.report_materialization_failure("orders", failure_type="SKIPPED", reason="RUN_TERMINATED", run_id="r0")
        reporter.report_materialization_failure("orders", reason="UPSTREAM_FAILED_TO_MATERIALIZE", run_id="r1")
        reporter.report_materialization_failure("orders", reason="UPSTREAM_FAILED_TO_MATERIALIZE", run_id="r1")
        runs = finished_runs(warehouse, settings, 3)
    assert sorted((r["sensor_name"], r["status"], tuple(sorted(r["tags"].items()))) for r in runs) == [
        ("failed_check", "succeeded", (("check", "row_count"),)),
        ("failed_materialization", "succeeded", (("failed_run", "r1"), ("reason", "UPSTREAM_FAILED_TO_MATERIALIZE"))),
        ("source_changed", "succeeded", (("version", changed),)),
    ]
    assert len(ticks(warehouse, settings, "source_changed")) == 1
    assert len(ticks(warehouse, settings, "failed_check")) == 1
    # the skipped one filtered out, the repeated report of run r1's failure not accepted again
    assert [t[0] for t in ticks(warehouse, settings, "failed_materialization")] == ["success"]


def test_sensors_of_two_code_locations_both_see_the_stream(
    settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    team_a = location_settings(settings_factory, run_group_id="runs")
    team_b = team_a.model_copy(update={"code_location": f"{team_a.code_location}_b"})
    with (
        pipeline(team_a, warehouse, "sales_defs.py", runs=False),
        pipeline(team_b, warehouse, "location_b_defs.py", runs=False),
        Reporter(settings=team_a) as reporter,
    ):
        reporter.report_materialization("daily_sales_data", data_version=version())
        assert wait_ticks(warehouse, team_a, "daily_sales_data_sensor", 1)[0][0] == "success"
        assert wait_ticks(warehouse, team_b, "other_team_sensor", 1)[0][0] == "success"


def test_assetpipe_up_with_defs_runs_the_sensor_and_run_workers(
    settings_factory: SettingsFactory, tmp_path: Path
) -> None:
    settings = location_settings(
        settings_factory, clickhouse_url=f"chdb://{tmp_path / 'clickhouse'}", data_dir=tmp_path, http_port=free_port()
    )
    env = cli_env(settings)
    log = tmp_path / "up.log"
    stack = start_cli(["up", "--defs", str(DEFS / "sales_defs.py")], env, log)
    try:
        wait_until(lambda: "assetpipe is running" in log.read_text(), 60, "the stack started")
        assert "sensor worker" in log.read_text() and "run worker" in log.read_text()
        with Reporter(settings=settings) as reporter:
            reporter.report_materialization("daily_sales_data", data_version=version())

        def succeeded() -> bool:
            sql = f"SELECT sensor_name FROM {settings.clickhouse_database}.runs FINAL WHERE status = 'succeeded'"
            result = run_cli(["sql", sql, "--format", "json"], env)
            return result.returncode == 0 and "daily_sales_data_sensor" in result.stdout

        wait_until(succeeded, 60, "a sensor's run succeeded inside `assetpipe up`")
        status = run_cli(["status"], env)
        assert "sensors" in status.stdout and "runs" in status.stdout, status.stdout
    finally:
        stack.send_signal(signal.SIGTERM)
        assert stack.wait(60) == 0, log.read_text()[-3000:]


# Dagster code that runs unchanged: sensors written against Dagster's EventLogEntry and EventLogRecord,
# logging through context.log, on events whose data version is the tag an op would set.


@job
def compat_job(context: Any) -> None:
    context.log.info("compat run")


@asset_sensor(asset_key=AssetKey(["compat", "orders"]), job=compat_job)
def dagster_style_sensor(context: SensorEvaluationContext, asset_event: Any) -> RunRequest:
    materialization = asset_event.dagster_event.event_specific_data.materialization
    key = asset_event.dagster_event.asset_key.to_user_string()
    context.log.info("saw %s as %s", key, asset_event.dagster_event.event_type_value)
    context.log.warning("rows=%d", materialization.metadata["rows"].value)
    return RunRequest(
        run_key=context.cursor,
        tags={
            "version": asset_event.asset_materialization.tags["dagster/data_version"],
            "data_version": asset_event.data_version,  # assetpipe's own reading of the event, as before
            "run_id": asset_event.run_id or "none",
            "seconds": str(asset_event.timestamp > 1_600_000_000),
        },
    )


@multi_asset_sensor(monitored_assets=[AssetKey(["compat", "a"]), AssetKey(["compat", "b"])], job=compat_job)
def dagster_style_multi_sensor(context: MultiAssetSensorEvaluationContext) -> RunRequest | None:
    records = context.latest_materialization_records_by_key()
    if not all(records.values()):
        return None
    context.advance_all_cursors()
    a, b = records[AssetKey(["compat", "a"])], records[AssetKey(["compat", "b"])]
    assert a is not None and b is not None
    return RunRequest(
        tags={
            "a": a.event_log_entry.dagster_event.event_specific_data.materialization.data_version,
            "b": b.asset_materialization.data_version or "",
        }
    )


@asset_sensor("compat/either", job=compat_job)
def either_event_sensor(context: SensorEvaluationContext, asset_event: Any) -> RunRequest:
    return RunRequest(run_key=context.cursor, tags={"type": asset_event.dagster_event.event_type_value})


# evaluated on both types, as a sensor on several event types is (SensorDefinition.event_types)
either_event_sensor = dataclasses.replace(either_event_sensor, event_types=("materialization", "observation"))
COMPAT_DEFS = Definitions(sensors=[dagster_style_sensor, dagster_style_multi_sensor, either_event_sensor])


@contextmanager
def compat_pipeline(settings: Settings, warehouse: Warehouse) -> Iterator[None]:
    """The ingest and sensor workers of the definitions above, in the settings' code location."""
    defs = dataclasses.replace(COMPAT_DEFS, location=str(settings.code_location))
    with running(IngestWorker(settings, warehouse), SensorWorker(settings, defs, warehouse)):
        yield


def requested_tags(warehouse: Warehouse, settings: Settings, sensor: str) -> list[dict[str, str]]:
    found = rows(warehouse, "SELECT tags FROM {db}.run_requests FINAL WHERE code_location = %(loc)s AND "
                 "sensor_name = %(s)s ORDER BY requested_at", loc=settings.code_location, s=sensor)  # fmt: skip
    return [dict(tags) for (tags,) in found]


def test_a_dagster_style_asset_sensor_reads_the_event_log_entry_and_its_log_lines_are_kept_on_the_tick(
    settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    settings = location_settings(settings_factory)
    first, second = version(), version()
    tagged = {"dagster/data_version": first, "dagster/code_version": "c1", "dagster/input_data_version/raw/x": "f" * 64}
    with compat_pipeline(settings, warehouse), Reporter(settings=settings) as reporter:
        reporter.report_materialization("compat/orders", metadata={"rows": 3}, tags=tagged)
        reporter.report_materialization("compat/orders", metadata={"rows": 3}, tags=tagged)  # the same version
        reporter.report_materialization("compat/orders", metadata={"rows": 4}, tags={"dagster/data_version": second})
        found = wait_ticks(warehouse, settings, "dagster_style_sensor", 2)
    assert [(status, v) for status, v, *_ in found] == [("success", first), ("success", second)]
    stored = rows(warehouse, "SELECT data_version, tags FROM {db}.asset_events WHERE asset_key = 'compat/orders' "
                  "AND data_version IN (%(a)s, %(b)s) ORDER BY timestamp", a=first, b=second)  # fmt: skip
    assert stored == [(first, tagged), (second, {"dagster/data_version": second})]  # the duplicate kept once
    assert requested_tags(warehouse, settings, "dagster_style_sensor") == [
        {"version": first, "data_version": first, "run_id": "none", "seconds": "True"},
        {"version": second, "data_version": second, "run_id": "none", "seconds": "True"},
    ]
    sql = ("SELECT logs, evaluated_at FROM {db}.sensor_ticks FINAL WHERE code_location = %(loc)s "
           "AND sensor_name = 'dagster_style_sensor' ORDER BY evaluated_at")  # fmt: skip
    logs = rows(warehouse, sql, loc=settings.code_location)
    assert [[(line["level"], line["message"]) for line in lines] for lines, _ in logs] == [
        [("INFO", "saw compat/orders as ASSET_MATERIALIZATION"), ("WARNING", "rows=3")],
        [("INFO", "saw compat/orders as ASSET_MATERIALIZATION"), ("WARNING", "rows=4")],
    ]
    for lines, evaluated_at in logs:  # each line was written during its own evaluation
        assert all(abs((line["time"] - evaluated_at).total_seconds()) < 60 for line in lines)


def test_a_dagster_style_multi_asset_sensor_reads_event_log_records(
    settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    settings = location_settings(settings_factory)
    a, b = version(), version()
    with compat_pipeline(settings, warehouse), Reporter(settings=settings) as reporter:
        reporter.report_materialization("compat/a", tags={"dagster/data_version": a})
        wait_ticks(warehouse, settings, "dagster_style_multi_sensor", 1)
        reporter.report_materialization("compat/b", tags={"dagster/logical_version": b})  # Dagster's older name
        found = wait_ticks(warehouse, settings, "dagster_style_multi_sensor", 2)
    assert [status for status, *_ in found] == ["skipped", "success"]
    assert requested_tags(warehouse, settings, "dagster_style_multi_sensor") == [{"a": a, "b": b}]


def test_a_sensor_on_several_event_types_is_evaluated_on_each(
    settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    settings = location_settings(settings_factory)
    with compat_pipeline(settings, warehouse), Reporter(settings=settings) as reporter:
        reporter.report_materialization("compat/either", data_version=version())
        reporter.report_observation("compat/either", data_version=version())
        wait_ticks(warehouse, settings, "either_event_sensor", 2)
    sql = ("SELECT tags['type'] FROM {db}.run_requests FINAL WHERE code_location = %(loc)s "
           "AND sensor_name = 'either_event_sensor' ORDER BY requested_at")  # fmt: skip
    types = wait_rows(warehouse, sql, 2, loc=settings.code_location)
    assert types == [("ASSET_MATERIALIZATION",), ("ASSET_OBSERVATION",)]
