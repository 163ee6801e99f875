"""The catalog and asset pages as a person uses them, in headless Chromium, on the real stack: filter the catalog
by tag and by owner, open an asset, read its overview, see its plots drawn from its whole history (5,000 events,
downsampled in ClickHouse), zoom into a range and click a point to open its event, page through its events, press
Materialize and follow the run; and a hostile asset shown as text on every tab."""

from __future__ import annotations

import math
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from assetpipe import AssetMaterialization, MetadataValue, Reporter
from assetpipe.consumers.warehouse import Warehouse
from tests.integration.http_server import serving_stack_api
from tests.integration.pipeline import pipeline, wait_rows
from tests.integration.test_web_ops import SettingsFactory, web_settings

HERE = Path(__file__).parent
EVENTS = 5000
START = datetime(2024, 1, 1, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def wait_events(warehouse: Warehouse, key: str, count: int) -> None:
    sql = "SELECT c FROM (SELECT count() AS c FROM {db}.asset_events WHERE asset_key = %(key)s) WHERE c >= %(n)s"
    wait_rows(warehouse, sql, 1, timeout=120, key=key, n=count)


def wait_defined(warehouse: Warehouse, location: str, count: int) -> None:
    sql = "SELECT asset_key FROM {db}.latest_asset_definitions WHERE code_location = %(loc)s"
    wait_rows(warehouse, sql, count, loc=location)


def report_history(reporter: Reporter[Any], key: list[str]) -> None:
    """An hour apart, one day's partition each: the plots' x axes span 5,000 hours and 5,000 partitions."""
    for i in range(EVENTS):
        event = AssetMaterialization(
            key,
            partition=(START.date() + timedelta(days=i)).isoformat(),
            timestamp=START + timedelta(hours=i),
            metadata={
                "dagster/row_count": 1000 + i // 5 + (i * 37) % 60,
                "ratio": round(0.5 + 0.4 * math.sin(i / 300), 4),
            },
            data_version=f"v{i}",
        )
        reporter.report(event)
    reporter.flush()


def plot_state(page: Any, plot_id: str) -> dict[str, str]:
    return page.evaluate(f"({{...document.getElementById('{plot_id}').dataset}})")  # type: ignore[no-any-return]


def test_catalog_filters_an_asset_its_plots_events_and_materialize(
    page: Any, screenshot: Any, settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    settings = web_settings(settings_factory)
    location = str(settings.code_location)
    with (
        pipeline(settings, warehouse, str(HERE / "defs" / "catalog_defs.py"), sensors=False),
        serving_stack_api(settings, warehouse) as client,
        Reporter(settings=settings) as reporter,
    ):
        base = str(client.base_url).rstrip("/")
        wait_defined(warehouse, location, 3)
        report_history(reporter, ["shop", "orders"])
        reporter.report_materialization(["shop", "raw_orders"], data_version="r1", metadata={"rows": 10})
        reporter.report_check(["shop", "orders"], check_name="totals_positive", passed=False, severity="WARN")
        reporter.report_check(["shop", "orders"], check_name="ids_unique", passed=True)
        reporter.flush()
        wait_events(warehouse, "shop/orders", EVENTS + 2)

        # the catalog, filtered by tag, then by owner, through the form
        page.goto(f"{base}/?location={location}")
        rows = page.locator("#assets tbody tr")
        assert sorted(r.get_attribute("data-key") for r in rows.all()) == ["finance/ledger", "shop/orders",
                                                                           "shop/raw_orders"]  # fmt: skip
        orders = page.locator("#assets tr[data-key='shop/orders']")
        assert "1 check failed" in orders.inner_text() and "team:sales" in orders.inner_text()
        screenshot("catalog")
        page.get_by_label("Tag").fill("domain=finance")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url("**tag=domain%3Dfinance*")
        assert [r.get_attribute("data-key") for r in rows.all()] == ["finance/ledger"]
        page.get_by_label("Tag").fill("")
        page.get_by_label("Owner").fill("data@example.com")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url("**owner=data%40example.com*")
        assert [r.get_attribute("data-key") for r in rows.all()] == ["shop/raw_orders"]
        page.get_by_label("Owner").fill("")
        page.get_by_label("Status").select_option("FAILED_CHECK")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url("**status=FAILED_CHECK*")
        assert [r.get_attribute("data-key") for r in rows.all()] == ["shop/orders"]

        # the asset: its overview
        rows.first.get_by_role("link", name="shop/orders").click()
        page.wait_for_url("**/assets/shop/orders")
        assert page.locator("h1").inner_text() == "shop/orders"
        assert page.locator("#description strong").inner_text() == "order"
        facts = page.locator("#facts").inner_text()
        assert "team:sales" in facts and "pii" in facts and "domain=sales" in facts and "duckdb" in facts
        assert page.locator("#code-references a").get_attribute("href").startswith("https://git.example.com/")
        assert page.locator("#upstream a").inner_text() == "shop/raw_orders"
        assert "totals_positive: failed" in page.locator("#status").inner_text()
        columns = page.locator("#columns").inner_text()
        assert "not null" in columns and "unique" in columns and "> 0" in columns
        assert page.locator("#metadata-definition a.url").get_attribute("href") == "https://wiki.example.com/orders"
        assert page.locator("#metadata-definition .md em").inner_text() == "hourly"
        latest = page.locator("#latest-materialization time").first  # the last of the history, in the reader's zone
        assert latest.get_attribute("datetime").startswith("2024-07-27T07:00:00") and "UTC" not in latest.inner_text()
        assert "unchanged since" in page.locator("#seen-materialization").inner_text()  # its identity's reports
        screenshot("asset")

        # plots: the whole history, by time and by partition, downsampled in ClickHouse
        page.get_by_role("link", name="Plots").click()
        page.wait_for_url("**tab=plots")
        labels = [e.get_attribute("data-label") for e in page.locator(".plot[data-x=time]").all()]
        assert labels == ["dagster/row_count", "ratio"]
        by_time = page.locator(".plot[data-label='dagster/row_count'][data-x=time]")
        plot_id = by_time.get_attribute("id")
        page.locator(f"#{plot_id}[data-state=drawn]").wait_for()
        drawn = plot_state(page, plot_id)
        assert drawn["count"] == str(EVENTS) and 100 < int(drawn["points"]) <= 1000
        assert drawn["first"] == iso(START) and drawn["last"] == iso(START + timedelta(hours=EVENTS - 1))
        xs = page.evaluate(f"document.getElementById('{plot_id}').data[0].x")
        assert len(xs) == int(drawn["points"]) and xs[0].startswith("2024-01-01 01:00")  # Paris is UTC+1
        assert xs[-1].startswith("2024-07-27")
        assert "downsampled in ClickHouse" in page.locator(f"#{plot_id}-note").inner_text()
        by_partition = page.locator(".plot[data-label='dagster/row_count'][data-x=partition]")
        page.locator(f"#{by_partition.get_attribute('id')}[data-state=drawn]").wait_for()
        assert plot_state(page, by_partition.get_attribute("id"))["count"] == str(EVENTS)
        screenshot("asset-plots")

        # zoom: drag across the middle fifth of the plot; the narrower range is fetched and downsampled again
        area = page.locator(f"#{plot_id} .nsewdrag").bounding_box()
        y = area["y"] + area["height"] / 2
        page.mouse.move(area["x"] + area["width"] * 0.4, y)
        page.mouse.down()
        page.mouse.move(area["x"] + area["width"] * 0.5, y, steps=5)
        page.mouse.move(area["x"] + area["width"] * 0.6, y, steps=5)
        page.mouse.up()
        page.locator(f"#{plot_id}[data-range=zoomed][data-state=drawn]").wait_for()
        zoomed = plot_state(page, plot_id)
        assert 500 < int(zoomed["count"]) < 1500 and zoomed["first"] > drawn["first"] and zoomed["last"] < drawn["last"]

        # a click on a point opens its event (the point under the pointer: they are a pixel or two apart)
        x, y = page.evaluate(
            f"""() => {{
              const el = document.getElementById('{plot_id}'), xa = el._fullLayout.xaxis, ya = el._fullLayout.yaxis;
              const trace = el.data[0], i = Math.floor(trace.x.length / 2), box = el.getBoundingClientRect();
              return [box.left + xa._offset + xa.d2p(trace.x[i]), box.top + ya._offset + ya.d2p(trace.y[i])];
            }}"""
        )
        page.mouse.click(x, y)
        page.wait_for_url("**tab=events*")
        opened = parse_qs(urlsplit(page.url).query)
        focused = page.locator("#events tr.focus")
        assert focused.count() == 1 and focused.get_attribute("data-event-id") == opened["event"][0]
        at = focused.locator("time").get_attribute("datetime")
        assert at == opened["at"][0] and zoomed["first"] <= at <= zoomed["last"]

        # events, newest first, a page at a time
        page.get_by_role("link", name="all events").click()
        page.wait_for_url("**tab=events")
        events = page.locator("#events > tbody > tr")
        assert events.count() == 50
        newest = events.first.locator("time").get_attribute("datetime")
        page.locator("#older-events").click()
        page.wait_for_url("**cursor=*")
        second = events.first.locator("time").get_attribute("datetime")
        assert events.count() == 50 and second < newest
        page.locator("#older-events").click()
        page.wait_for_function(f"document.querySelector('#events time').getAttribute('datetime') < '{second}'")
        page.get_by_label("Type").select_option("check")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url("**type=check*")
        assert events.count() == 2

        # Materialize: the run is requested, followed, and its materialization appears
        page.goto(f"{base}/assets/shop/orders?tab=events")
        page.get_by_role("button", name="Materialize").click()
        run_link = page.locator("#run-result a.run")
        run_link.wait_for()
        page.locator("#run-result .badge-succeeded").wait_for(timeout=60_000)
        run_id = run_link.get_attribute("href").rsplit("/", 1)[1]
        made = page.locator(f"#events a.run[href='/runs/{run_id}']")
        made.wait_for()  # the live part shows the run's materialization without a reload
        run_link.click()
        page.wait_for_url(f"**/runs/{run_id}")
        assert "succeeded" in page.locator("#summary").inner_text()
        assert "shop/orders" in page.locator("#summary").inner_text()


HOSTILE = '<script>window.__pwned = 1</script><a href="javascript:window.__pwned = 2">click me</a>'
HOSTILE_MD = '<img src=x onerror="window.__pwned = 3"> [run me](javascript:window.__pwned=4) **bold**'


def test_a_hostile_asset_renders_as_text_on_every_tab(
    page: Any, settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    settings = web_settings(settings_factory)
    key = ["hostile", f"<b>{uuid.uuid4().hex[:6]}"]
    with (
        pipeline(settings, warehouse, str(HERE / "defs" / "catalog_defs.py"), sensors=False, runs=False),
        serving_stack_api(settings, warehouse) as client,
        Reporter(settings=settings) as reporter,
    ):
        base = str(client.base_url).rstrip("/")
        spec = {
            "description": HOSTILE,
            "deps": [["hostile", "<i>up"]],
            "metadata": {"notes": {"type": "md", "value": HOSTILE_MD}, "evil": HOSTILE},
        }
        defined = client.put(f"/api/assets/hostile/{quote(key[1], safe='')}", json=spec)
        assert defined.status_code == 200, defined.text
        for i in range(3):
            reporter.report_materialization(
                key,
                partition=f"<i>{i}</i>",
                description=HOSTILE,
                data_version=HOSTILE,
                metadata={
                    "notes": MetadataValue.md(HOSTILE_MD),
                    "link": MetadataValue.url("javascript:window.__pwned=5"),
                    HOSTILE: i,
                },
                tags={"t": "v"},
            )
        reporter.report_check(key, check_name="not_hostile", passed=False, description=HOSTILE)
        reporter.flush()
        wait_events(warehouse, "/".join(key), 4)

        page.goto(f"{base}/?search={key[1][3:]}")
        assert page.locator("#assets tbody tr").count() == 1
        listed = page.locator("#assets").inner_text()
        assert HOSTILE in listed and "/".join(key) in listed and "<i>2</i>" in listed
        page.locator("#assets tbody tr a").first.click()
        page.wait_for_url("**/assets/hostile/*")
        assert page.locator("h1").inner_text() == "/".join(key)
        for tab in ("overview", "events", "plots", "partitions", "checks", "lineage"):
            page.goto(f"{base}/assets/hostile/%3Cb%3E{key[1][3:]}?tab={tab}")
            text = page.locator("main").inner_text()
            assert page.locator("h1").inner_text() == "/".join(key)
            if tab == "lineage":
                assert page.locator("#lineage a.node").count() == 2
            if tab in ("overview", "events", "checks"):
                assert "<script>window.__pwned = 1</script>" in text
            if tab == "plots":
                page.locator(".plot[data-state=drawn]").first.wait_for()
                assert HOSTILE in text
            if tab == "overview":
                assert page.locator("#metadata-materialization .md strong").inner_text() == "bold"
                assert page.locator("#metadata-definition .md strong").inner_text() == "bold"
                assert "hostile/<i>up" in page.locator("#upstream").inner_text()
                assert "[run me](javascript:window.__pwned=4)" in text and "<img src=x onerror=" in text
            assert page.locator("main a[href^='javascript'], main a[href^='JAVASCRIPT']").count() == 0
            assert page.locator("main img").count() == 0 and page.locator("main script:not([type])").count() == 0
            assert page.locator("main b, main i").count() == 0
        time.sleep(3.5)  # one refresh of the live part went by
        assert page.evaluate("typeof window.__pwned") == "undefined"


def test_a_failed_materialization_shows_in_the_catalog_and_on_its_asset(
    page: Any, settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    settings = web_settings(settings_factory)
    name = f"orders_{uuid.uuid4().hex[:6]}"
    key = ["etl", name]
    with (
        pipeline(settings, warehouse, str(HERE / "defs" / "catalog_defs.py"), sensors=False, runs=False),
        serving_stack_api(settings, warehouse) as client,
        Reporter(settings=settings) as reporter,
    ):
        base = str(client.base_url).rstrip("/")
        for day in ("2024-06-01", "2024-06-02"):
            reporter.report_materialization(key, partition=day).result(10)
        reporter.report_materialization_failure(
            key, partition="2024-06-01", run_id="run-1", reason="UPSTREAM_FAILED_TO_MATERIALIZE",
            description="upstream raw/orders failed",
        )  # fmt: skip
        reporter.report_materialization_failure(
            key, partition="2024-06-02", run_id="run-2", failure_type="SKIPPED", reason="RUN_TERMINATED"
        )
        reporter.flush()
        wait_events(warehouse, "/".join(key), 4)

        # the catalog, filtered to the assets that failed to materialize
        page.goto(f"{base}/?search={name}")
        page.get_by_label("Status").select_option("FAILED")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url("**status=FAILED*")
        rows = page.locator("#assets tbody tr")
        assert [r.get_attribute("data-key") for r in rows.all()] == ["/".join(key)]
        assert "failed" in rows.first.locator(".badge-materialization-failed").inner_text()

        # the asset: failed, and why; the partition that failed, the skipped one still materialized
        rows.first.get_by_role("link", name="/".join(key)).click()
        page.wait_for_url(f"**/assets/etl/{name}")
        assert page.locator("#status .badge-materialization-failed").count() == 1
        latest = page.locator("#latest-failure").inner_text()
        assert "UPSTREAM_FAILED_TO_MATERIALIZE" in latest and "upstream raw/orders failed" in latest
        assert "2024-06-01" in latest
        page.get_by_role("link", name="Partitions").click()
        page.wait_for_url("**tab=partitions")
        assert "1 failed to materialize" in page.locator("#partition-summary").inner_text()
        cells = {c.get_attribute("data-partition"): c.get_attribute("class") for c in page.locator(".grid a").all()}
        assert cells == {"2024-06-01": "cell cell-materialization-failed", "2024-06-02": "cell cell-materialized"}
        page.get_by_role("link", name="Events").click()
        page.get_by_label("Type").select_option("materialization_failure")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url("**type=materialization_failure*")
        events = page.locator("#events tbody tr.event")
        assert events.count() == 2
        assert "SKIPPED · RUN_TERMINATED" in events.first.inner_text()

        # the JSON the pages show
        detail = client.get(f"/api/assets/etl/{name}").json()
        assert (detail["failed"], detail["partitions"]["failed"], detail["latest_failure"]["reason"]) == (
            True, 1, "UPSTREAM_FAILED_TO_MATERIALIZE")  # fmt: skip
        assert detail["latest_materialization"]["partition"] == "2024-06-02"  # a failure is no materialization
        listed = client.get("/api/assets", params={"search": name, "status": "FAILED"}).json()["items"]
        assert [(a["asset_key"], a["failed"]) for a in listed] == [("/".join(key), True)]


LONG = 120_000  # values of a long history: more than a plot reduces from raw points (RAW_MAX_VALUES)


def test_a_long_history_is_drawn_from_the_daily_rollup_and_a_zoom_reads_raw_points_again(
    page: Any, settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    """Half-hourly values over almost seven years: the plot is the daily rollup's groups, each its mean within the
    band of its min and max, and its note says so; a zoom into a fifth of it (about 24,000 values) is raw points."""
    settings = web_settings(settings_factory)
    key = f"history/long_{uuid.uuid4().hex[:6]}"
    start_us = int(START.timestamp() * 1_000_000)
    warehouse.command(
        f"INSERT INTO {warehouse.database}.asset_events (event_id, event_type, asset_key, asset_key_path, dedup_key, "
        f"timestamp, metadata, metadata_types) SELECT generateUUIDv7(number), 'materialization', '{key}', "
        f"splitByChar('/', '{key}'), cityHash64('{key}', number), "
        f"fromUnixTimestamp64Micro(toInt64({start_us} + number * 1800000000), 'UTC'), "
        f"map('rows', toString(1000 + number % 97)), map('rows', 'int') FROM numbers({LONG})"
    )
    with serving_stack_api(settings, warehouse) as client:
        page.goto(f"{str(client.base_url).rstrip('/')}/assets/{key}?tab=plots")
        plot = page.locator(".plot[data-label='rows'][data-x=time]")
        plot_id = plot.get_attribute("id")
        page.locator(f"#{plot_id}[data-state=drawn]").wait_for()
        drawn = plot_state(page, plot_id)
        assert (drawn["grain"], drawn["count"]) == ("day", str(LONG)) and 100 < int(drawn["points"]) <= 1000
        assert "daily rollups, downsampled in ClickHouse" in page.locator(f"#{plot_id}-note").inner_text()
        traces = page.evaluate(f"document.getElementById('{plot_id}').data.map((t) => t.y.length)")
        assert traces == [int(drawn["points"])] * 3  # min and max, the band between, and the means

        area = page.locator(f"#{plot_id} .nsewdrag").bounding_box()
        y = area["y"] + area["height"] / 2
        page.mouse.move(area["x"] + area["width"] * 0.4, y)
        page.mouse.down()
        page.mouse.move(area["x"] + area["width"] * 0.6, y, steps=5)
        page.mouse.up()
        page.locator(f"#{plot_id}[data-range=zoomed][data-state=drawn]").wait_for()
        zoomed = plot_state(page, plot_id)
        assert zoomed["grain"] == "raw" and LONG // 10 < int(zoomed["count"]) < LONG // 2
        assert page.evaluate(f"document.getElementById('{plot_id}').data.length") == 1
