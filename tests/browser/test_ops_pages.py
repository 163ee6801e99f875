"""The sensors, schedules and runs pages as a person uses them, in headless Chromium: open the sensors,
open one, read its ticks, stop and start it by clicking, watch a new tick arrive without reloading, filter
the runs and open one; sign in once with an API key; and hostile strings shown as text."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from assetpipe import Definitions, Reporter, ScheduleDefinition, job
from assetpipe.consumers.schedules.worker import ScheduleWorker
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.producers.http import hash_key
from tests.integration.http_server import serving_stack_api
from tests.integration.pipeline import finished_runs, pipeline, running, wait_ticks
from tests.integration.test_web_ops import SWITCH_S, SettingsFactory, web_settings

HERE = Path(__file__).parent


def version() -> str:
    return uuid.uuid4().hex[:12]


def test_sensors_ticks_stop_and_start_by_clicking_then_runs_and_a_run(
    page: Any, screenshot: Any, settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    settings = web_settings(settings_factory)
    location = str(settings.code_location)
    with (
        pipeline(settings, warehouse, "sales_defs.py"),
        serving_stack_api(settings, warehouse) as client,
        Reporter(settings=settings) as reporter,
    ):
        base = str(client.base_url).rstrip("/")
        reporter.report_materialization("daily_sales_data", partition="2024-06-03", data_version=version())
        reporter.report_materialization("daily_sales_data", partition="2024-12-25", data_version=version())
        reporter.flush()
        wait_ticks(warehouse, settings, "business_day_sensor", 2)
        finished_runs(warehouse, settings, 3)

        page.goto(f"{base}/sensors?location={location}")
        rows = page.locator("#sensors tbody tr")
        assert rows.count() == 5
        row = page.locator("#sensors tr[data-name=business_day_sensor]")
        assert "running" in row.inner_text() and "default" in row.inner_text()
        page.locator("nav a[aria-current]").filter(has_text="Sensors").wait_for()
        screenshot("sensors")

        row.get_by_role("link", name="business_day_sensor").click()
        page.wait_for_url(f"**/sensors/{location}/business_day_sensor")
        ticks = page.locator("#ticks tbody tr")
        assert ticks.count() == 2
        assert "2024-12-25 is a holiday" in ticks.nth(0).inner_text()  # newest first
        assert "success" in ticks.nth(1).inner_text()
        # times are UTC in the HTML and the reader's (Europe/Paris) on the page
        time_element = ticks.nth(0).locator("time")
        assert time_element.get_attribute("datetime").endswith("Z")
        assert "UTC" not in time_element.inner_text()
        screenshot("sensor")

        page.get_by_role("button", name="Stop sensor").click()
        page.get_by_role("button", name="Start sensor").wait_for()
        state = page.locator("#state").inner_text()
        assert "stopped" in state and "set by hand" in state and "local" in state
        page.get_by_role("button", name="Start sensor").click()
        page.get_by_role("button", name="Stop sensor").wait_for()
        assert "running" in page.locator("#state").inner_text()

        # a new tick shows up without a reload
        time.sleep(SWITCH_S)
        page.evaluate("window.__same_page = true")
        reporter.report_materialization("daily_sales_data", partition="2024-06-04", data_version=version())
        reporter.flush()
        page.locator("#ticks tbody tr").nth(2).wait_for()
        assert "2024-06-04" in page.locator("#ticks tbody tr").nth(0).inner_text()
        assert page.evaluate("window.__same_page") is True

        finished_runs(warehouse, settings, 5)
        page.get_by_role("link", name="Runs", exact=True).click()
        page.wait_for_url("**/runs")
        page.get_by_label("Code location").fill(location)
        page.get_by_label("Status").select_option("succeeded")
        page.get_by_label("Job").fill("my_job")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url("**/runs?job=my_job&status=succeeded*")
        runs = page.locator("#runs tbody tr")
        assert runs.count() == 5  # two sensors on 06-03 and on 06-04, one on 12-25 (a holiday for the other)
        assert all("succeeded" in runs.nth(i).inner_text() for i in range(runs.count()))
        screenshot("runs")

        runs.nth(0).locator("a").first.click()
        page.wait_for_url("**/runs/*")
        assert "succeeded" in page.locator("#summary").inner_text()
        events = page.locator("#events tbody tr")
        kinds = [events.nth(i).locator(".etype").inner_text() for i in range(events.count())]
        assert "run started" in kinds and "log" in kinds and "run success" in kinds
        assert "downstream work for" in page.locator("#events").inner_text()
        screenshot("run")


def test_schedules_page_and_a_schedule_stopped_by_clicking(
    page: Any, screenshot: Any, settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    settings = web_settings(settings_factory)
    location = str(settings.code_location)

    @job
    def refresh_dashboards(context: Any) -> None:
        pass

    schedules = [
        ScheduleDefinition("every_two_seconds", job=refresh_dashboards, interval_seconds=2),
        ScheduleDefinition(
            "nightly", job=refresh_dashboards, cron_schedule="0 2 * * *", execution_timezone="Europe/Paris"
        ),
    ]
    defs = Definitions(jobs=[refresh_dashboards], schedules=schedules, location=location)
    with running(ScheduleWorker(settings, defs, warehouse)), serving_stack_api(settings, warehouse) as client:
        base = str(client.base_url).rstrip("/")
        page.goto(f"{base}/schedules?location={location}")
        assert page.locator("#schedules tbody tr").count() == 2
        assert "0 2 * * *" in page.locator("#schedules tr[data-name=nightly]").inner_text()
        screenshot("schedules")
        page.get_by_role("link", name="every_two_seconds").click()
        page.locator("#ticks tbody tr").first.wait_for()  # appears without a reload
        screenshot("schedule")
        page.get_by_role("button", name="Stop schedule").click()
        page.get_by_role("button", name="Start schedule").wait_for()
        assert "stopped" in page.locator("#state").inner_text()


def test_a_browser_signs_in_once_with_a_key_and_signs_out(
    page: Any, settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    key = "apk_browser_" + uuid.uuid4().hex
    settings = web_settings(settings_factory, api_keys=f"{hash_key(key)}:name=alice:types=read")
    with serving_stack_api(settings, warehouse) as client:
        base = str(client.base_url).rstrip("/")
        page.goto(f"{base}/runs?status=failed")
        page.wait_for_url("**/login?next=*")
        page.get_by_label("API key").fill("apk_wrong")
        page.get_by_role("button", name="Sign in").click()
        assert "Invalid API key" in page.locator("[role=alert]").inner_text()
        page.get_by_label("API key").fill(key)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/runs?status=failed")
        assert "alice" in page.locator("header").inner_text()
        assert page.get_by_label("Status").input_value() == "failed"
        cookie = next(c for c in page.context.cookies() if c["name"] == "assetpipe_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and key not in cookie["value"]
        page.goto(f"{base}/sensors")
        assert page.locator("h1").inner_text() == "Sensors"
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url("**/login")
        page.goto(f"{base}/sensors")
        page.wait_for_url("**/login?next=%2Fsensors")


def test_a_hostile_sensor_description_log_and_error_render_as_text(
    page: Any, settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    settings = web_settings(settings_factory)
    location = str(settings.code_location)
    with (
        pipeline(settings, warehouse, str(HERE / "defs" / "hostile_defs.py"), runs=False),
        serving_stack_api(settings, warehouse) as client,
        Reporter(settings=settings) as reporter,
    ):
        base = str(client.base_url).rstrip("/")
        reporter.report_materialization("hostile/asset", data_version=version())
        reporter.flush()
        wait_ticks(warehouse, settings, "hostile_sensor", 1)
        page.goto(f"{base}/sensors?location={location}")
        assert "<script>window.__pwned = 1</script>" in page.locator("#sensors").inner_text()
        page.get_by_role("link", name="hostile_sensor").click()
        page.wait_for_url("**/hostile_sensor")
        for details in page.locator("#ticks details").all():
            details.locator("summary").click()
        text = page.locator("main").inner_text()
        assert '<a href="javascript:window.__pwned = 2">click me</a>' in text
        assert "ValueError: <script>window.__pwned = 4</script>" in text
        assert '<img src=x onerror="window.__pwned = 3">' in text
        assert page.locator("a[href^='javascript']").count() == 0
        assert page.locator("main img").count() == 0 and page.locator("main script").count() == 0
        time.sleep(3.5)  # one refresh of the live part went by
        assert page.evaluate("typeof window.__pwned") == "undefined"
