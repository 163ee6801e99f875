"""The sensors, schedules and runs JSON of the web catalog on the real stack: the workers run in this
process (ingest, sensor, run, scheduler), the API under uvicorn with the pages mounted, answering from
ClickHouse. Stopping and starting a sensor or schedule through the API is followed by the running
workers; API keys gate reads (scope read), switches (scope run) and the browser's session."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from starlette.testclient import TestClient

from assetpipe import Definitions, Reporter, ScheduleDefinition, asset_sensor, job
from assetpipe.api import build_app
from assetpipe.broker import free_port
from assetpipe.consumers.schedules.worker import ScheduleWorker
from assetpipe.consumers.sensors.store import SensorStore
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.definitions.loader import load_definitions
from assetpipe.producers.http import hash_key
from assetpipe.schemas.settings import Settings
from tests.integration.helpers import run_cli, start_cli, up_env, wait_until
from tests.integration.http_server import serving_stack_api
from tests.integration.pipeline import DEFS, location_settings, pipeline, request_run, running, wait_ticks

SettingsFactory = Callable[..., Settings]
SWITCH_S = 1.2  # the sensor worker reads the overrides every half second; the scheduler every step


def web_settings(settings_factory: SettingsFactory, **overrides: Any) -> Settings:
    return location_settings(settings_factory, http_port=free_port(), **overrides)


def version() -> str:
    return uuid.uuid4().hex[:12]


def sensor_of(client: httpx.Client, name: str, location: str) -> dict[str, Any]:
    items = client.get("/api/sensors", params={"location": location}).json()["items"]
    return next(item for item in items if item["name"] == name)


def test_sensors_with_their_ticks_and_a_stop_and_start_the_worker_follows(
    settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    settings = web_settings(settings_factory)
    location = str(settings.code_location)
    with (
        pipeline(settings, warehouse, "sales_defs.py", runs=False),
        serving_stack_api(settings, warehouse) as client,
        Reporter(settings=settings) as reporter,
    ):
        first = reporter.report_materialization("daily_sales_data", partition="2024-06-03", data_version=version())
        wait_ticks(warehouse, settings, "daily_sales_data_sensor", 1)
        wait_ticks(warehouse, settings, "weekly_report_sensor", 1)

        sensors = client.get("/api/sensors", params={"location": location})
        assert sensors.status_code == 200, sensors.text
        by_name = {item["name"]: item for item in sensors.json()["items"]}
        assert set(by_name) == {
            "daily_sales_data_sensor", "business_day_sensor", "weekly_report_sensor", "asset_a_and_b_sensor",
            "stopped_sensor",
        }  # fmt: skip
        daily = by_name["daily_sales_data_sensor"]
        assert (daily["type"], daily["asset_keys"], daily["job_name"]) == ("asset", ["daily_sales_data"], "my_job")
        assert (daily["status"], daily["status_source"], daily["override"]) == ("running", "default", None)
        assert daily["ticks_24h"] == {"success": 1, "skipped": 0, "failure": 0} and daily["last_tick"]["status"]
        assert by_name["stopped_sensor"]["status"] == "stopped"
        assert by_name["weekly_report_sensor"]["ticks_24h"]["skipped"] == 1

        ticks = client.get("/api/sensors/daily_sales_data_sensor/ticks", params={"location": location}).json()
        (tick,) = ticks["items"]
        assert tick["status"] == "success" and ticks["next_cursor"] is None
        assert tick["trigger"]["event_id"] == first.event_id and tick["trigger"]["asset_key"] == "daily_sales_data"
        assert tick["trigger"]["partition"] == "2024-06-03" and tick["runs"][0]["job_name"] == "my_job"
        skipped = client.get("/api/sensors/weekly_report_sensor/ticks", params={"location": location}).json()
        assert skipped["items"][0]["skip_reason"] == "Asset materialization does not have the required property"

        stop = client.post("/api/sensors/daily_sales_data_sensor/stop", params={"location": location})
        assert stop.status_code == 200, stop.text
        assert stop.json()["status"] == "stopped" and stop.json()["changed"] is True
        assert stop.json()["override"]["by"] == "local" and stop.json()["status_source"] == "override"
        again = client.post("/api/sensors/daily_sales_data_sensor/stop", params={"location": location}).json()
        assert again["changed"] is False
        started = client.post("/api/sensors/stopped_sensor/start", params={"location": location}).json()
        assert started["status"] == "running" and started["default_status"] == "stopped"
        time.sleep(SWITCH_S)

        while_stopped = version()
        reporter.report_materialization("daily_sales_data", data_version=while_stopped)
        wait_ticks(warehouse, settings, "business_day_sensor", 2)  # the event was evaluated by the worker
        wait_ticks(warehouse, settings, "stopped_sensor", 1)  # switched on by hand: it evaluates it
        assert [t[1] for t in wait_ticks(warehouse, settings, "daily_sales_data_sensor", 1)] == [first_version(tick)]

        assert (
            client.post("/api/sensors/daily_sales_data_sensor/start", params={"location": location}).json()["status"]
            == "running"
        )
        time.sleep(SWITCH_S)
        after = version()
        reporter.report_materialization("daily_sales_data", data_version=after)
        versions = [t[1] for t in wait_ticks(warehouse, settings, "daily_sales_data_sensor", 2)]
        assert versions == [first_version(tick), after]  # resumed at the events accepted after start
        assert sensor_of(client, "daily_sales_data_sensor", location)["override"]["status"] == "running"


def first_version(tick: dict[str, Any]) -> str:
    return str(tick["trigger"]["data_version"])


def test_ticks_are_paged_newest_first_and_filtered_by_status(
    settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    settings = web_settings(settings_factory)
    location = str(settings.code_location)
    partitions = ["2024-06-03", "2024-12-25", "2024-06-04", "2025-01-01", "2024-06-05"]  # two holidays: skipped
    with (
        pipeline(settings, warehouse, "sales_defs.py", runs=False),
        serving_stack_api(settings, warehouse) as client,
        Reporter(settings=settings) as reporter,
    ):
        for partition in partitions:
            reporter.report_materialization("daily_sales_data", partition=partition, data_version=version())
            reporter.flush()
        wait_ticks(warehouse, settings, "business_day_sensor", len(partitions))
        seen: list[str] = []
        cursor = None
        while True:
            params = {"location": location, "limit": "2", **({"cursor": cursor} if cursor else {})}
            answer = client.get("/api/sensors/business_day_sensor/ticks", params=params).json()
            assert len(answer["items"]) <= 2
            seen += [t["trigger"]["partition"] for t in answer["items"]]
            cursor = answer["next_cursor"]
            if cursor is None:
                break
        assert seen == partitions[::-1]
        skipped = client.get(
            "/api/sensors/business_day_sensor/ticks", params={"location": location, "status": "skipped"}
        ).json()["items"]
        assert [t["skip_reason"] for t in skipped] == ["2025-01-01 is a holiday", "2024-12-25 is a holiday"]
        for bad in ({"status": "ok"}, {"cursor": "%%%"}, {"limit": "0"}, {"limit": "x"}):
            answer = client.get("/api/sensors/business_day_sensor/ticks", params={"location": location, **bad})
            assert answer.status_code == 400, (bad, answer.text)
        missing = client.get("/api/sensors/no_such_sensor/ticks", params={"location": location})
        assert missing.status_code == 404 and missing.json()["error"] == (
            f"Sensor 'no_such_sensor' not found in code location '{location}'"
        )


def test_a_sensor_name_in_two_code_locations_needs_the_location(
    settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    settings = web_settings(settings_factory)
    name = f"shared_{uuid.uuid4().hex[:8]}"
    sensor = asset_sensor("some/asset", job_name="some_job", name=name)(lambda: None)
    first, second = f"a{uuid.uuid4().hex[:8]}", f"b{uuid.uuid4().hex[:8]}"
    for location in (first, second):
        SensorStore(warehouse, location).register([sensor], int(time.time() * 1e6))
    with serving_stack_api(settings, warehouse) as client:
        ambiguous = client.get(f"/api/sensors/{name}")
        assert ambiguous.status_code == 400
        assert ambiguous.json()["error"] == (
            f"Sensor '{name}' is in several code locations ({first}, {second}): pass location=<one of them>"
        )
        one = client.get(f"/api/sensors/{name}", params={"location": second})
        assert one.status_code == 200 and one.json()["code_location"] == second
        assert client.post(f"/api/sensors/{name}/stop").status_code == 400  # nothing switched in either


def test_runs_are_listed_newest_first_filtered_and_shown_with_their_events(
    settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    settings = web_settings(settings_factory)
    location = str(settings.code_location)
    with pipeline(settings, warehouse, "ops_defs.py", sensors=False), serving_stack_api(settings, warehouse) as client:
        etl = request_run(settings, "etl")
        failed = request_run(settings, "no_files")
        flaky = request_run(settings, "flaky")

        def final(run_id: str) -> dict[str, Any]:
            found: dict[str, Any] = {}

            def done() -> bool:
                found.update(client.get(f"/api/runs/{run_id}").json())
                return found.get("status") in ("succeeded", "failed")

            wait_until(done, 60, f"run {run_id} finished")
            return found

        etl_run, failed_run, flaky_run = final(etl), final(failed), final(flaky)
        listed = client.get("/api/runs", params={"location": location}).json()["items"]
        assert [r["run_id"] for r in listed] == [flaky, failed, etl]  # newest requested first
        only_failed = client.get("/api/runs", params={"location": location, "status": "failed"}).json()["items"]
        assert [r["run_id"] for r in only_failed] == [failed]
        by_job = client.get("/api/runs", params={"location": location, "job": "etl"}).json()["items"]
        assert [r["run_id"] for r in by_job] == [etl]
        by_asset = client.get("/api/runs", params={"location": location, "asset": "ops/source"}).json()["items"]
        assert [r["run_id"] for r in by_asset] == [etl]  # the run observed it
        page = client.get("/api/runs", params={"location": location, "limit": "2"}).json()
        rest = client.get("/api/runs", params={"location": location, "cursor": page["next_cursor"]}).json()
        assert [r["run_id"] for r in page["items"] + rest["items"]] == [flaky, failed, etl]

    kinds = [e["event_type"] for e in etl_run["events"]]
    assert "asset_observation" in kinds and "step_output" in kinds and "expectation_result" in kinds
    observation = next(e for e in etl_run["events"] if e["event_type"] == "asset_observation")
    assert observation["asset_key"] == "ops/source" and observation["op_name"] == "extract"
    output = next(e for e in etl_run["events"] if e["event_type"] == "step_output" and e["op_name"] == "check")
    assert {"key": "dashboard_url", "type": "url", "value": "http://example.com/d"} in output["metadata"]
    assert etl_run["status"] == "succeeded" and etl_run["error"] is None and etl_run["events_total"] == len(kinds)

    assert failed_run["status"] == "failed"
    assert failed_run["error"]["message"] == "op 'no_files' failed: No files to process"
    assert failed_run["error"]["metadata"]["filepath"] == "/path/to/files"
    assert flaky_run["attempts"] == 3
    assert [e["attempt"] for e in flaky_run["events"] if e["event_type"] == "step_retry"] == [1, 2]


def test_a_stopped_schedule_records_no_ticks_and_started_again_does_not_catch_up(
    settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    settings = web_settings(settings_factory)
    location = str(settings.code_location)

    @job
    def tick_job(context: Any) -> None:
        pass

    every_second = ScheduleDefinition("every_second", job=tick_job, interval_seconds=1)
    defs = Definitions(jobs=[tick_job], schedules=[every_second], location=location)
    scheduler = ScheduleWorker(settings, defs, warehouse)

    def scheduled() -> list[str]:
        answer = client.get("/api/schedules/every_second/ticks", params={"location": location, "limit": "200"})
        return [t["scheduled_at"] for t in answer.json()["items"]]

    with running(scheduler), serving_stack_api(settings, warehouse) as client:
        wait_until(lambda: len(scheduled()) >= 2, 30, "two ticks")
        listed = client.get("/api/schedules", params={"location": location}).json()["items"]
        assert [(s["name"], s["status"], s["interval_seconds"]) for s in listed] == [("every_second", "running", 1.0)]
        assert listed[0]["next_tick"] is not None and listed[0]["ticks_24h"]["success"] >= 2
        stopped = client.post("/api/schedules/every_second/stop", params={"location": location})
        assert stopped.status_code == 200 and stopped.json()["status"] == "stopped", stopped.text
        assert stopped.json()["next_tick"] is None
        time.sleep(SWITCH_S)
        before = scheduled()
        time.sleep(3)
        assert scheduled() == before  # nothing while stopped
        restarted_at = time.time()
        client.post("/api/schedules/every_second/start", params={"location": location})
        wait_until(lambda: len(scheduled()) > len(before), 30, "ticks again")
        newer = scheduled()[: len(scheduled()) - len(before)]
        catch_up = client.get("/api/schedules/every_second/ticks", params={"location": location}).json()["items"]
        assert not any(t["catch_up"] for t in catch_up)
        assert all(datetime.fromisoformat(at).timestamp() >= restarted_at - 1 for at in newer)


def test_reads_need_the_read_scope_switches_the_run_scope_and_a_browser_signs_in_once(
    settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    keys = {"reader": "apk_reader_" + uuid.uuid4().hex, "operator": "apk_op_" + uuid.uuid4().hex,
            "reporter": "apk_rep_" + uuid.uuid4().hex}  # fmt: skip
    entries = [
        f"{hash_key(keys['reader'])}:name=reader:types=read",
        f"{hash_key(keys['operator'])}:name=operator:types=read,run",
        f"{hash_key(keys['reporter'])}:name=reporter",
    ]
    settings = web_settings(settings_factory, api_keys=";".join(entries))
    location = str(settings.code_location)
    defs = load_definitions(DEFS / "sales_defs.py", location)
    SensorStore(warehouse, location).register(defs.sensors, int(time.time() * 1e6))
    path, stop = "/api/sensors/daily_sales_data_sensor", "/api/sensors/daily_sales_data_sensor/stop"
    params = {"location": location}
    with serving_stack_api(settings, warehouse) as client:
        assert client.get(path, params=params).status_code == 401
        assert client.get(path, params=params, headers={"X-API-Key": "apk_wrong"}).status_code == 401
        refused = client.get(path, params=params, headers={"X-API-Key": keys["reporter"]})
        assert refused.status_code == 403
        assert refused.json()["error"] == "API key 'reporter' may not read the catalog: its types must include read"
        assert client.get(path, params=params, headers={"Authorization": f"Bearer {keys['reader']}"}).status_code == 200
        assert client.post(stop, params=params, headers={"X-API-Key": keys["reader"]}).status_code == 403
        switched = client.post(stop, params=params, headers={"X-API-Key": keys["operator"]})
        assert switched.status_code == 200 and switched.json()["override"]["by"] == "operator"

        # pages: to /login without a session; the session cookie names the key, never holds it
        page = client.get("/sensors", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/login?next=%2Fsensors"
        origin = {"Origin": str(client.base_url).rstrip("/")}
        wrong = client.post("/login", data={"key": keys["reporter"], "next": "/sensors"}, headers=origin)
        assert wrong.status_code == 403 and "may not read the catalog" in wrong.text
        login = client.post("/login", data={"key": keys["operator"], "next": "/sensors"}, headers=origin,
                            follow_redirects=False)  # fmt: skip
        assert login.status_code == 303 and login.headers["location"] == "/sensors"
        cookie = login.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert keys["operator"] not in cookie
        session = login.cookies["assetpipe_session"]
        browser = {"Cookie": f"assetpipe_session={session}"}
        assert client.get("/sensors", headers=browser).status_code == 200
        assert client.get("/api/sensors", headers=browser).status_code == 200
        forged = {"Cookie": f"assetpipe_session={session[:-4]}beef"}
        assert client.get("/api/sensors", headers=forged).status_code == 401
        start = "/api/sensors/daily_sales_data_sensor/start"
        assert client.post(start, params=params, headers=browser).status_code == 403  # no Origin
        evil = {**browser, "Origin": "http://evil.example"}
        assert client.post(start, params=params, headers=evil).status_code == 403
        assert client.post(start, params=params, headers={**browser, **origin}).json()["status"] == "running"
        offsite = client.post("/login", data={"key": keys["reader"], "next": "//evil.example/x"}, headers=origin,
                              follow_redirects=False)  # fmt: skip
        assert offsite.headers["location"] == "/"


def test_serve_beside_up_reads_and_switches_through_the_stacks_control_socket(tmp_path: Path) -> None:
    """``assetpipe serve`` against the embedded engine of a running ``assetpipe up``: its reads go through
    the control socket, and so does a stop, which the stack's own API then shows."""
    env = up_env(tmp_path / "data")
    up = start_cli(["up", "--defs", str(DEFS / "sales_defs.py")], env, tmp_path / "up.log")
    try:
        wait_until(lambda: run_cli(["status"], env, timeout=30).returncode == 0, 120, "the stack is ready")
        serve = TestClient(build_app(Settings.from_env(env)))  # no warehouse here: the stack holds it
        names = {item["name"] for item in serve.get("/api/sensors").json()["items"]}
        assert {"daily_sales_data_sensor", "stopped_sensor"} <= names
        stopped = serve.post("/api/sensors/daily_sales_data_sensor/stop")
        assert stopped.status_code == 200 and stopped.json()["status"] == "stopped", stopped.text
        stack_api = f"http://127.0.0.1:{env['ASSETPIPE_HTTP_PORT']}"
        seen = httpx.get(f"{stack_api}/api/sensors/daily_sales_data_sensor", timeout=30).json()
        assert (seen["status"], seen["status_source"]) == ("stopped", "override")
    finally:
        up.send_signal(signal.SIGINT)
        assert up.wait(120) == 0, (tmp_path / "up.log").read_text()[-3000:]


# -- the document of the routes ------------------------------------------------------------------------


@pytest.fixture
def ops_api_schema(settings_factory: SettingsFactory, warehouse: Warehouse) -> Iterator[schemathesis.BaseSchema]:
    settings = web_settings(settings_factory)
    with serving_stack_api(settings, warehouse) as client:
        yield schemathesis.openapi.from_url(f"{client.base_url}/openapi.json")


# the filter goes on the lazy schema: one set inside the fixture does not reach the tests it parametrizes
ops_schema = schemathesis.pytest.from_fixture("ops_api_schema").include(path_regex="^/api/(sensors|schedules|runs)")


@ops_schema.parametrize()
@settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_the_ops_routes_do_what_their_document_says(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
    case.call_and_validate(timeout=30, excluded_checks=[positive_data_acceptance])
