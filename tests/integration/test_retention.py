"""Retention on the real ClickHouse engine (docs/retention.md): three years of history, a TTL of 30 days on the raw
tables, the TTL forced through (``OPTIMIZE ... FINAL`` once its mutation is done). The raw rows go; the plots of the old
history still draw, from the rollups; the latest state, the check results and what producers and runs rely on
(known assets, current data versions) are still there. A database of its own: the TTL would drop other tests' rows.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from assetpipe.api import warehouse_seed
from assetpipe.consumers.catalog import SeriesQuery, asset_detail, partitions, series, series_labels
from assetpipe.consumers.catalog.rows import iso
from assetpipe.consumers.ingest.rows import EVENT_COLUMNS, EventColumns
from assetpipe.consumers.retention import apply_retention, retention_days
from assetpipe.consumers.runs.store import RunStore
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.schemas.asset_key import AssetKey
from assetpipe.schemas.model import build_record
from assetpipe.schemas.settings import Settings
from tests.integration.conftest import Stack
from tests.integration.helpers import wait_until

DAY_US = 86_400_000_000
DAYS = 3 * 365  # of daily history of shop/daily, up to yesterday
WINDOW = 30
RETIRED = range(800, 699, -1)  # days ago shop/retired was materialized, the last 700 days ago
CHECKS = range(DAYS, 0, -30)  # days ago shop/daily's check ran


@dataclass(frozen=True)
class History:
    warehouse: Warehouse
    today_us: int  # midnight UTC

    def at(self, days_ago: int, hour: int = 6) -> int:
        return self.today_us - days_ago * DAY_US + hour * 3_600_000_000

    def read(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self.warehouse.query(sql.replace("{db}", self.warehouse.database), parameters=params).rows


def write(warehouse: Warehouse, events: list[tuple[str, dict[str, Any]]], token: str) -> None:
    """``events`` into ``asset_events`` in one insert under ``token``, as the ingest worker writes a batch."""
    rows = EventColumns()
    for i, (event_type, record) in enumerate(events):
        rows.append(event_type, record, i + 1, 0, i)
    warehouse.insert("asset_events", rows.columns, EVENT_COLUMNS, dedup_token=token)


def event(event_type: str, key: str, at: int, **fields: Any) -> tuple[str, dict[str, Any]]:
    return event_type, build_record(event_type, key.split("/"), source="sdk", host="test", timestamp_us=at, **fields)


@pytest.fixture(scope="module")
def history(stack: Stack) -> Iterator[History]:
    warehouse = Warehouse(stack.clickhouse_url, f"r{uuid.uuid4().hex[:10]}")
    warehouse.migrate()
    today = time.time_ns() // 1000 // DAY_US * DAY_US
    found = History(warehouse, today)
    events = [
        event("materialization", "shop/daily", found.at(d), partition=iso(found.at(d))[:10], metadata={"rows": d})
        for d in range(DAYS, 0, -1)
    ]
    events += [
        event("check_evaluation", "shop/daily", found.at(d, 7), check_name="positive", passed=d % 60 != 0,
              metadata={"failed_rows": d % 7})
        for d in CHECKS
    ]  # fmt: skip
    events += [
        event("materialization", "shop/retired", found.at(d), partition=f"p{d}", data_version=f"v{d}",
              run_id="last-run" if d == RETIRED[-1] else None, metadata={"size": d, "owner": "ops"})
        for d in RETIRED
    ]  # fmt: skip
    events.append(event("check_evaluation", "shop/retired", found.at(700, 8), check_name="shape", passed=False,
                        metadata={"columns": 3}))  # fmt: skip
    write(warehouse, events, "history")
    yield found
    warehouse.command(f"DROP DATABASE {warehouse.database}")
    warehouse.close()


def expire(history: History) -> None:
    """The TTL carried out now, as ClickHouse's merges would in time: once the TTL's mutation is done (a server
    runs it in the background), a merge of every part."""
    pending = "SELECT count() FROM system.mutations WHERE database = {db:String} AND NOT is_done"
    db = history.warehouse.database
    wait_until(lambda: history.read(pending, {"db": db}) == [(0,)], 60, "the TTL's mutations done")
    for table in ("asset_events", "asset_metadata_points"):
        history.warehouse.command(f"OPTIMIZE TABLE {db}.{table} FINAL")


ROLLUPS = (
    "SELECT label, count(), sum(values), sum(total), min(low), max(high), min(first_at), max(last) FROM "
    "(SELECT label, bucket, sum(values) AS values, sum(total) AS total, min(low) AS low, max(high) AS high, "
    "min(first_at) AS first_at, max(last) AS last FROM {db}.asset_metadata_{grain} GROUP BY asset_key, label, bucket) "
    "GROUP BY label ORDER BY label"
)


def test_history_older_than_the_window_plots_from_rollups_and_its_state_shows_after_the_ttl(history: History) -> None:
    warehouse, query = history.warehouse, history.warehouse.own_read_only_query
    rollups = {grain: history.read(ROLLUPS.replace("{grain}", grain)) for grain in ("hourly", "daily")}
    assert [row[:3] for row in rollups["daily"]] == [("rows", DAYS, DAYS), ("size", len(RETIRED), len(RETIRED))]
    assert rollups["hourly"] == rollups["daily"]  # one value a day: the same buckets at either grain
    whole = series(query, "shop/daily", "rows", SeriesQuery())
    assert (whole["grain"], whole["count"], whole["raw_since"]) == ("raw", DAYS, None)  # few values, all kept

    assert apply_retention(warehouse, WINDOW) == ["asset_events", "asset_metadata_points"]
    assert apply_retention(warehouse, WINDOW) == []  # as it is: nothing to change
    assert retention_days(warehouse) == {"asset_events": WINDOW, "asset_metadata_points": WINDOW}
    expire(history)

    # the raw rows of the months past the window are gone, but for the check results, kept whole
    oldest = history.today_us - (WINDOW + 31) * DAY_US
    kept = history.read(
        "SELECT event_type, count(), countIf(toUnixTimestamp64Micro(timestamp) < {oldest:Int64}) "
        "FROM {db}.asset_events GROUP BY event_type ORDER BY event_type",
        {"oldest": oldest},
    )
    old_checks = sum(1 for d in CHECKS if history.at(d, 7) < oldest) + 1
    assert kept[1] == ("check_evaluation", len(CHECKS) + 1, old_checks)
    assert kept[0][0] == "materialization" and WINDOW <= kept[0][1] <= WINDOW + 31 and kept[0][2] == 0
    points = history.read("SELECT count(), min(toUnixTimestamp64Micro(timestamp)) FROM {db}.asset_metadata_points")
    assert points[0][0] == kept[0][1] and points[0][1] >= oldest
    # the rollups are as they were: a TTL delete is a merge, and no view sees it
    assert {grain: history.read(ROLLUPS.replace("{grain}", grain)) for grain in rollups} == rollups

    # the whole history still plots, by day; an old range by hour; the raw points only since the window
    whole = series(query, "shop/daily", "rows", SeriesQuery())
    assert (whole["grain"], whole["count"], whole["first"], whole["last"]) == (
        "day", DAYS, iso(history.at(DAYS)), iso(history.at(1)))  # fmt: skip
    assert whole["raw_since"] is not None and len(whole["points"]) == DAYS // 2 + 1  # two days a point
    assert (whole["points"][0]["x"], whole["points"][0]["count"], whole["points"][0]["max"]) == (
        iso(history.today_us - DAYS * DAY_US), 2, DAYS)  # fmt: skip
    assert sum(p["count"] for p in whole["points"]) == DAYS
    old = SeriesQuery.parse({"after": iso(history.at(500, 0)) or "", "before": iso(history.at(480, 0)) or ""})
    zoomed = series(query, "shop/daily", "rows", old)
    assert (zoomed["grain"], zoomed["count"]) == ("hour", 20)
    first_two = [(p["y"], p["min"], p["max"], p["last"]) for p in zoomed["points"][:2]]
    assert first_two == [(500, 500, 500, 500), (499, 499, 499, 499)]
    raw = series(query, "shop/daily", "rows", SeriesQuery.parse({"grain": "raw"}))
    assert raw["grain"] == "raw" and raw["count"] == points[0][0] and raw["first"] >= iso(oldest)

    # an asset whose every materialization is past the window: its latest state, check and plot
    shown = asset_detail(query, "shop/retired")
    assert shown is not None
    latest = shown["latest_materialization"]
    assert (latest["expired"], latest["timestamp"], latest["data_version"], latest["run_id"], latest["metadata"]) == (
        True, iso(history.at(700)), "v700", "last-run", {})  # fmt: skip
    (check,) = shown["checks"]
    assert (check["check_name"], check["passed"], check["metadata"], check.get("expired")) == (
        "shape", False, {"columns": {"type": "int", "value": 3}}, None)  # fmt: skip
    assert shown["partitions"]["materialized"] == len(RETIRED)
    page = partitions(query, "shop/retired", {"limit": "500"})
    assert len(page["items"]) == len(RETIRED) and page["items"][0]["materialization"]["data_version"] is not None
    assert series_labels(query, "shop/retired") == ["size"]
    retired = series(query, "shop/retired", "size", SeriesQuery())
    assert (retired["grain"], retired["count"]) == ("hour", len(RETIRED))
    # by partition: the latest value of each partition is kept apart from the raw events, every partition plots
    by_partition = series(query, "shop/retired", "size", SeriesQuery.parse({"x": "partition", "points": "500"}))
    assert by_partition["count"] == len(RETIRED) and (by_partition["first"], by_partition["last"]) == ("p700", "p800")
    assert [p["last"] for p in by_partition["points"]] == sorted(RETIRED)
    assert series(query, "shop/daily", "rows", SeriesQuery.parse({"x": "partition"}))["count"] == DAYS
    daily = asset_detail(query, "shop/daily")
    assert daily is not None and daily["latest_materialization"]["metadata"] == {"rows": {"type": "int", "value": 1}}

    # what producers and runs read: the asset is known, its data version current
    settings = Settings(clickhouse_url="http://unused:8123", clickhouse_database=warehouse.database)
    seed = warehouse_seed(settings, warehouse)
    assert seed is not None and "shop/retired" in set(seed())
    key = AssetKey(["shop", "retired"])
    assert RunStore(warehouse).current_data_versions([key]) == {key: "v700"}

    # unset: the TTL goes, and the raw points are no longer said to be partial
    assert apply_retention(warehouse, None) == ["asset_events", "asset_metadata_points"]
    assert retention_days(warehouse) == {"asset_events": None, "asset_metadata_points": None}
    assert series(query, "shop/daily", "rows", SeriesQuery())["raw_since"] is None


def test_a_batch_written_again_under_its_token_counts_once_in_the_rollups(history: History) -> None:
    """A batch the ingest worker writes again (a retry after ClickHouse failed to answer) carries the same token:
    the points, the hours and the days take it once."""
    batch = [event("observation", "shop/retry", history.at(2, h), metadata={"lag": h}) for h in range(24)]
    for _ in range(2):
        write(history.warehouse, batch, "retried-batch")
    counted = (
        "SELECT (SELECT count() FROM {db}.asset_metadata_points WHERE asset_key = 'shop/retry'), "
        "(SELECT sum(values) FROM {db}.asset_metadata_hourly WHERE asset_key = 'shop/retry'), "
        "(SELECT sum(values) FROM {db}.asset_metadata_daily WHERE asset_key = 'shop/retry'), "
        "(SELECT sum(total) FROM {db}.asset_metadata_daily WHERE asset_key = 'shop/retry')"
    )
    assert history.read(counted) == [(24, 24, 24, float(sum(range(24))))]
