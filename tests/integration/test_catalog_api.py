"""The asset catalog's JSON on the real stack: events reported with ``assetpipe.Reporter`` through the embedded
broker and the ingest worker into ClickHouse, definitions registered with ``AssetRegistry``, and the API
(``build_app`` under uvicorn) answering from ClickHouse. Every endpoint and filter, an asset only reported and
one only defined, pagination that holds while assets are added, a downsampled series of a long history, the
partitions of a partitioned asset, runs requested with ``POST .../materialize``, and the scopes of API keys."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from assetpipe import Reporter, TableColumn, TableSchema
from assetpipe.broker import create_topics, free_port
from assetpipe.consumers.ingest.rows import EVENT_COLUMNS, EventColumns
from assetpipe.consumers.registry import AssetRegistry, spec_entry
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.producers.http import hash_key
from assetpipe.schemas.model import build_record
from assetpipe.schemas.settings import Settings
from tests.integration.conftest import Stack
from tests.integration.helpers import running_worker, wait_until
from tests.integration.http_server import serving_stack_api
from tests.integration.pipeline import finished_runs, location_settings, pipeline

SettingsFactory = Callable[..., Settings]
HISTORY = 1500  # materializations of the asset only reported: the long history of its series
WIDE = 250  # partitions of the partitioned asset


@dataclass
class World:
    """The assets of the module, under ``prefix``, and what was reported of them."""

    prefix: str
    client: httpx.Client
    history: dict[str, int] = field(default_factory=dict)  # event id -> row_count of the asset only reported
    wide: dict[str, str] = field(default_factory=dict)  # partition -> event id

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def get(self, path: str, **params: Any) -> Any:
        response = self.client.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def keys(self, **params: Any) -> list[str]:
        return [item["asset_key"] for item in self.get("/api/assets", prefix=self.prefix, limit=500, **params)["items"]]


def specs(prefix: str) -> list[dict[str, Any]]:
    orders_schema = {
        "columns": [{"name": "id", "type": "int", "description": "the order"}, {"name": "total", "type": "float"}]
    }
    return [
        {
            "key": f"{prefix}/orders",
            "description": "Every order of the shop, as exported",
            "deps": [f"{prefix}/raw_orders"],
            "owners": ["team:sales", "ana@example.com"],
            "tags": {"domain": "sales", "pii": ""},
            "kinds": ["snowflake"],
            "group_name": "sales",
            "code_version": "1",
            "metadata": {
                "dagster/column_schema": {"type": "table_schema", "value": orders_schema},
                "dagster/code_references": {
                    "type": "code_references",
                    "value": [
                        {"file_path": "/src/orders.py", "line_number": 12},
                        {"url": "https://git.example/o.py#L3", "label": "git"},
                    ],
                },
                "dagster/column_lineage": {
                    "type": "column_lineage",
                    "value": {"total": [{"asset_key": [prefix, "raw_orders"], "column_name": "amount"}]},
                },
            },
        },
        {
            "key": f"{prefix}/only_defined",
            "description": "Defined, nothing reported yet",
            "deps": [f"{prefix}/orders"],
            "owners": ["team:finance"],
            "tags": {"domain": "finance"},
            "kinds": ["dbt"],
            "group_name": "finance",
        },
        {"key": f"{prefix}/wide", "owners": ["team:ops"], "kinds": ["python"], "group_name": "ops"},
    ]


@pytest.fixture(scope="module")
def world(stack: Stack, warehouse: Warehouse) -> Iterator[World]:
    """Definitions registered from a spec file's entries (location ``warehouse``), and events reported."""
    settings = Settings(
        kafka_bootstrap_servers=stack.bootstrap_servers,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}_",
        ingest_group_id=f"g{uuid.uuid4().hex[:10]}",
        clickhouse_url=stack.clickhouse_url,
        clickhouse_database=stack.database,
        data_dir=stack.data_dir,
        kafka_session_timeout_ms=2000,
        kafka_heartbeat_interval_ms=300,
        ingest_batch_max_seconds=0.2,
        http_port=free_port(),
    )
    create_topics(settings)
    prefix = f"cat{uuid.uuid4().hex[:8]}"
    entries = [spec_entry(entry, f"entry {i}") for i, entry in enumerate(specs(prefix))]
    AssetRegistry(warehouse).register_specs(entries, "file", "warehouse", time.time_ns() // 1000)
    with serving_stack_api(settings, warehouse, timeout=60) as client:
        found = World(prefix, client)
        expected = 0
        with running_worker(settings, warehouse), Reporter(settings=settings) as reporter:
            for i in range(HISTORY):
                receipt = reporter.report_materialization(found.key("raw_orders"), metadata={"row_count": i})
                found.history[receipt.event_id] = i
            schema = TableSchema([TableColumn("total", "decimal(10,2)"), TableColumn("loaded_at", "timestamp")])
            for day in (1, 2, 3):
                reporter.report_materialization(
                    found.key("orders"), partition=f"2024-01-0{day}", data_version=f"v{day}",
                    metadata={"row_count": 10 * day, "dagster/column_schema": schema},
                )  # fmt: skip
            reporter.report_observation(found.key("orders"), data_version="seen", metadata={"lag_minutes": 5})
            reporter.report_check(found.key("orders"), check_name="positive", passed=True, severity="WARN",
                                  partition="2024-01-03")  # fmt: skip
            reporter.report_check(found.key("orders"), check_name="no_nulls", passed=False, severity="ERROR",
                                  partition="2024-01-03", metadata={"null_rows": 4})  # fmt: skip
            for i in range(WIDE):
                partition = f"p{i:03d}"
                found.wide[partition] = reporter.report_materialization(
                    found.key("wide"), partition=partition, metadata={"size": i}
                ).event_id
            reporter.report_check(found.key("wide"), check_name="fresh", passed=False, partition="p010")
            reporter.report_materialization(found.key("a/events"), description="a key whose last part is events")
            reporter.flush()
            expected = HISTORY + 3 + 1 + 2 + WIDE + 1 + 1

            def stored() -> int:
                sql = "SELECT count() FROM {db}.asset_events WHERE startsWith(asset_key, {p:String})"
                return int(
                    warehouse.query(sql.replace("{db}", stack.database), parameters={"p": prefix + "/"}).rows[0][0]
                )

            wait_until(lambda: stored() == expected, 90, f"{expected} events in ClickHouse")
        yield found


def test_the_list_shows_assets_only_reported_and_only_defined_with_their_latest_state(world: World) -> None:
    page = world.get("/api/assets", prefix=world.prefix)
    rows = {item["asset_key"]: item for item in page["items"]}
    assert list(rows) == [world.key(k) for k in ("a/events", "only_defined", "orders", "raw_orders", "wide")]
    assert page["next_cursor"] is None
    orders = rows[world.key("orders")]
    assert (orders["defined"], orders["code_location"], orders["group"], orders["execution_type"]) == (
        True, "warehouse", "sales", "external"
    )  # fmt: skip
    assert orders["owners"] == ["team:sales", "ana@example.com"] and orders["kinds"] == ["snowflake"]
    assert orders["tags"] == {"domain": "sales", "pii": ""} and orders["description"].startswith("Every order")
    assert orders["latest_materialization"]["partition"] == "2024-01-03"
    assert orders["latest_materialization"]["data_version"] == "v3"
    assert orders["latest_observation"]["data_version"] == "seen"
    assert orders["checks"] == {"total": 2, "passed": {"WARN": 1, "ERROR": 0}, "failed": {"WARN": 0, "ERROR": 1}}
    assert orders["status"] == "FRESH" and orders["last_updated"] >= orders["latest_materialization"]["timestamp"]
    reported = rows[world.key("raw_orders")]
    assert (reported["defined"], reported["execution_type"], reported["code_location"], reported["status"]) == (
        False, "external", None, "FRESH"
    )  # fmt: skip
    assert reported["latest_materialization"]["partition"] is None and reported["latest_observation"] is None
    defined = rows[world.key("only_defined")]
    assert defined["defined"] and defined["latest_materialization"] is None and defined["last_updated"] is None
    assert defined["checks"]["total"] == 0 and defined["status"] == "FRESH"


def test_every_filter_of_the_list(world: World) -> None:
    k = world.key
    assert world.keys(search="EVERY ORDER") == [k("orders")]  # the description, any case
    assert world.keys(search="RAW_ord") == [k("raw_orders")]  # the key
    assert world.keys(search="x' OR 1=1 --") == []
    assert world.keys(tag="domain=sales") == [k("orders")]
    assert world.keys(tag="domain") == [k("only_defined"), k("orders")]
    assert world.keys(tag="pii") == [k("orders")]  # a label
    assert world.keys(owner="team:finance") == [k("only_defined")]
    assert world.keys(group="ops") == [k("wide")]
    assert world.keys(kind="dbt") == [k("only_defined")]
    assert world.keys(location="warehouse") == [k("only_defined"), k("orders"), k("wide")]
    assert world.keys(defined="false") == [k("a/events"), k("raw_orders")]
    assert world.keys(defined="true") == [k("only_defined"), k("orders"), k("wide")]
    assert world.keys(status="failed_check") == [k("orders"), k("wide")]
    assert world.keys(status="FRESH") == [k(n) for n in ("a/events", "only_defined", "orders", "raw_orders", "wide")]
    assert world.keys(status="STALE") == world.keys(status="MISSING") == []
    assert world.get("/api/assets", prefix=world.key("a"))["items"][0]["asset_key"] == k("a/events")
    assert world.get("/api/assets", prefix=world.key("ord"))["items"] == []  # prefixes are whole parts
    latest = world.keys(sort="updated")
    assert latest[0] == k("a/events") and latest[-1] == k("only_defined")  # never reported: last
    refused = world.client.get("/api/assets", params={"status": "ROTTEN"})
    assert refused.status_code == 400 and "status" in refused.json()["error"]


def test_an_asset_in_full(world: World) -> None:
    orders = world.get(f"/api/assets/{world.key('orders')}")
    definition = orders["definition"]
    assert (definition["source"], definition["versions"], definition["code_version"]) == ("file", 1, "1")
    assert definition["metadata"]["dagster/column_schema"]["type"] == "table_schema"
    latest = orders["latest_materialization"]
    assert latest["partition"] == "2024-01-03" and latest["metadata"]["row_count"] == {"type": "int", "value": 30}
    assert orders["latest_observation"]["metadata"]["lag_minutes"]["value"] == 5
    assert [(c["name"], c["type"], c["source"]) for c in orders["column_schema"]] == [
        ("id", "int", "definition"),
        ("total", "decimal(10,2)", "both"),
        ("loaded_at", "timestamp", "materialization"),
    ]
    assert orders["column_lineage"] == {"total": [{"asset_key": world.key("raw_orders"), "column_name": "amount"}]}
    assert orders["code_references"] == [
        {"kind": "local_file", "file_path": "/src/orders.py", "line_number": 12, "label": None},
        {"kind": "url", "url": "https://git.example/o.py#L3", "label": "git"},
    ]
    assert orders["upstream"] == [world.key("raw_orders")] and orders["downstream"] == [world.key("only_defined")]
    checks = {c["check_name"]: c for c in orders["checks"]}
    assert checks["no_nulls"]["passed"] is False and checks["no_nulls"]["metadata"]["null_rows"]["value"] == 4
    assert checks["positive"]["severity"] == "WARN" and orders["check_summary"]["failed"]["ERROR"] == 1
    assert (orders["status"], orders["causes"]) == ("FRESH", [])
    assert orders["partitions"] == {"partitioned": True, "materialized": 3, "observed": 0, "failed": 0,
                                    "failed_checks": 1, "latest": "2024-01-03"}  # fmt: skip
    assert (orders["failed"], orders["latest_failure"]) == (False, None)

    reported = world.get(f"/api/assets/{world.key('raw_orders')}")
    assert reported["definition"] is None and reported["defined"] is False
    assert reported["latest_materialization"]["metadata"]["row_count"]["value"] == HISTORY - 1
    assert reported["downstream"] == [world.key("orders")] and reported["partitions"]["partitioned"] is False
    defined = world.get(f"/api/assets/{world.key('only_defined')}")
    assert defined["latest_materialization"] is None and defined["upstream"] == [world.key("orders")]

    # a key whose last part is a suffix's word: a JSON list of its parts
    parts = quote(json.dumps([world.prefix, "a", "events"]), safe="")
    listed = world.get(f"/api/assets/{parts}")
    assert listed["asset_key"] == world.key("a/events") and listed["defined"] is False
    assert world.get(f"/api/assets/{parts}/events")["items"][0]["description"] == "a key whose last part is events"
    nowhere = f"/api/assets/{world.key('nowhere')}"
    for path in (nowhere, f"/api/assets/{world.key('a')}/events", f"{nowhere}/partitions", f"{nowhere}/metadata/x"):
        missing = world.client.get(path)
        assert missing.status_code == 404, path
        assert missing.json()["error"].startswith("Asset key '")


def test_events_newest_first_a_page_at_a_time(world: World) -> None:
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 400, **({"cursor": cursor} if cursor else {})}
        page = world.get(f"/api/assets/{world.key('raw_orders')}/events", **params)
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == HISTORY and {e["event_id"] for e in seen} == set(world.history)
    times = [e["timestamp"] for e in seen]
    assert times == sorted(times, reverse=True)
    assert all(e["run"] is None and e["event_type"] == "materialization" for e in seen)
    assert seen[0]["metadata"]["row_count"] == {"type": "int", "value": HISTORY - 1}

    orders = f"/api/assets/{world.key('orders')}/events"
    checks = world.get(orders, type="check")["items"]
    assert sorted(c["check_name"] for c in checks) == ["no_nulls", "positive"]
    assert [e["data_version"] for e in world.get(orders, partition="2024-01-02")["items"]] == ["v2"]
    middle = world.get(orders, type="materialization")["items"][1]["timestamp"]  # 2024-01-02's
    assert [e["data_version"] for e in world.get(orders, type="materialization", before=middle)["items"]] == ["v1"]
    assert [e["data_version"] for e in world.get(orders, type="materialization", after=middle)["items"]] == ["v3", "v2"]
    assert world.client.get(orders, params={"after": "yesterday"}).status_code == 400


def test_a_series_of_the_whole_history_is_downsampled_in_clickhouse(world: World) -> None:
    path = f"/api/assets/{world.key('raw_orders')}/metadata/row_count"
    shown = world.get(path, points=50)
    points = shown["points"]
    assert (shown["count"], shown["downsampled"], shown["x"]) == (HISTORY, True, "time")
    assert (shown["grain"], shown["raw_since"]) == ("raw", None)  # few values, every raw point kept
    assert 3 <= len(points) <= 50
    assert (points[0]["y"], points[-1]["y"]) == (0, HISTORY - 1)  # the ends are always kept
    assert all(world.history[p["event_id"]] == p["y"] for p in points)  # each point opens its event
    assert [p["x"] for p in points] == sorted(p["x"] for p in points)

    after, before = points[10]["x"], points[20]["x"]
    zoomed = world.get(path, points=50, after=after, before=before)
    assert 0 < zoomed["count"] < HISTORY and all(after <= p["x"] < before for p in zoomed["points"])
    everything = world.get(path, points=10_000)
    assert everything["downsampled"] is False and len(everything["points"]) == HISTORY
    by_day = world.get(path, grain="day")  # the daily rollup: a bucket or two, each its count, min, max, mean
    days = by_day["points"]
    assert (by_day["grain"], by_day["count"], sum(d["count"] for d in days)) == ("day", HISTORY, HISTORY)
    assert (min(d["min"] for d in days), max(d["max"] for d in days), days[-1]["last"]) == (0, HISTORY - 1, HISTORY - 1)
    assert sum(d["y"] * d["count"] for d in days) == pytest.approx(sum(range(HISTORY)))

    by_partition = world.get(f"/api/assets/{world.key('wide')}/metadata/size", x="partition", points=10)
    buckets = by_partition["points"]
    assert (by_partition["count"], len(buckets), by_partition["first"], by_partition["last"]) == (
        WIDE,
        10,
        "p000",
        "p249",
    )
    assert [(b["first_partition"], b["last_partition"], b["partitions"]) for b in buckets[:2]] == [
        ("p000", "p024", 25),
        ("p025", "p049", 25),
    ]
    assert (buckets[1]["min"], buckets[1]["max"], buckets[1]["avg"], buckets[1]["last"]) == (25, 49, 37, 49)
    assert buckets[1]["event_id"] == world.wide["p049"]
    narrowed = world.get(f"/api/assets/{world.key('wide')}/metadata/size", x="partition", after="p100", before="p109")
    assert narrowed["count"] == 10 and [b["last"] for b in narrowed["points"]] == list(range(100, 110))
    text = world.get(f"/api/assets/{world.key('orders')}/metadata/dagster/column_schema")
    assert (text["label"], text["count"], text["points"]) == ("dagster/column_schema", 0, [])
    assert world.client.get(path, params={"points": "2"}).status_code == 400


def test_the_partitions_of_a_partitioned_asset(world: World) -> None:
    path = f"/api/assets/{world.key('wide')}/partitions"
    seen: list[dict[str, Any]] = []
    cursor, pages = None, 0
    while True:
        page = world.get(path, limit=100, **({"cursor": cursor} if cursor else {}))
        seen += page["items"]
        cursor, pages = page["next_cursor"], pages + 1
        if cursor is None:
            break
    assert pages == 3 and [p["partition"] for p in seen] == sorted(world.wide)
    assert all(p["status"] == "MATERIALIZED" and p["materialization"]["event_id"] == world.wide[p["partition"]]
               for p in seen)  # fmt: skip
    failed = [p for p in seen if p["failed_checks"]]
    assert [(p["partition"], p["checks"][0]["check_name"], p["checks"][0]["passed"]) for p in failed] == [
        ("p010", "fresh", False)
    ]
    assert world.get(f"/api/assets/{world.key('raw_orders')}/partitions") == {"items": [], "next_cursor": None}


def write_events(warehouse: Warehouse, key: str, events: list[tuple[str, str, int, dict[str, Any]]]) -> list[str]:
    """``(event type, partition, time, metadata)`` of asset ``key`` into ``asset_events`` in one insert, as the ingest
    worker writes a batch: each event carries its producer's time, so a backfill can bring an old one late. Returns
    the events' ids."""
    rows, ids = EventColumns(), []
    for i, (event_type, partition, at, metadata) in enumerate(events):
        record = build_record(event_type, key.split("/"), source="sdk", host="test", timestamp_us=at,
                              partition=partition, metadata=metadata)  # fmt: skip
        rows.append(event_type, record, uuid.uuid4().int >> 64, 0, i)
        ids.append(record["event_id"])
    warehouse.insert("asset_events", rows.columns, EVENT_COLUMNS, dedup_token=uuid.uuid4().hex)
    return ids


def test_a_plot_by_partition_keeps_each_partitions_latest_value_after_its_raw_events_are_gone(
    world: World, warehouse: Warehouse
) -> None:
    """Each partition's latest numeric value (of a materialization or an observation, by the events' times, not the
    order they came in) is kept apart from the raw events: once retention has dropped them, every partition still
    has its point in the plot, with the event it came from."""
    key = f"{world.prefix}_kept/daily"  # not under the prefix the tests above list
    now, day = time.time_ns() // 1000, 86_400_000_000
    first = write_events(warehouse, key, [
        ("materialization", "2024-01-01", now - 9 * day, {"rows": 10}),
        ("observation", "2024-01-01", now - 8 * day, {"rows": 11}),  # newer: wins, an observation too
        ("materialization", "2024-01-02", now - 7 * day, {"rows": 20}),
        ("materialization", "2024-01-02", now - 6 * day, {"rows": "n/a"}),  # text: no value, 20 stays
        ("materialization", "2024-01-03", now - 5 * day, {"rows": True}),  # bool: 1, until the observation below
        ("materialization", "", now - 4 * day, {"rows": 99}),  # not partitioned: not in the plot
    ])  # fmt: skip
    late = write_events(warehouse, key, [
        ("materialization", "2024-01-01", now - 20 * day, {"rows": 100}),  # older than 11, ingested after it
        ("observation", "2024-01-03", now - 3 * day, {"rows": 0.5}),
        ("materialization", "2024-01-04", now - 2 * day, {"rows": True, "other": 7}),
    ])  # fmt: skip
    path = f"/api/assets/{key}/metadata/rows"
    expected = [("2024-01-01", 11, first[1]), ("2024-01-02", 20, first[2]), ("2024-01-03", 0.5, late[1]),
                ("2024-01-04", 1, late[2])]  # fmt: skip

    def plotted(**params: Any) -> list[tuple[str, float, str]]:
        shown = world.get(path, x="partition", points=10, **params)  # ten buckets: one partition each
        assert shown["count"] == len(shown["points"]) and shown["downsampled"] is False
        assert all(p["partitions"] == 1 and p["first_partition"] == p["last_partition"] for p in shown["points"])
        return [(p["first_partition"], p["last"], p["event_id"]) for p in shown["points"]]

    assert plotted() == expected
    db = warehouse.database
    for table in ("asset_events", "asset_metadata_points"):  # what ASSETPIPE_RETENTION_DAYS drops in time
        # a lightweight delete: it marks the asset's rows, where a mutation rewrote every part of the session's events
        warehouse.query(f"DELETE FROM {db}.{table} WHERE asset_key = {{key:String}}", {"key": key})
    raw = warehouse.query(f"SELECT count() FROM {db}.asset_events WHERE asset_key = {{key:String}}", {"key": key})
    assert raw.rows == [(0,)]

    assert plotted() == expected
    assert plotted(after="2024-01-02", before="2024-01-03") == expected[1:3]
    assert plotted(after="2024-01-03") == expected[2:]
    shown = world.get(path, x="partition", points=3)  # four partitions in three buckets
    assert (shown["count"], shown["downsampled"]) == (4, True)
    assert (shown["first"], shown["last"]) == ("2024-01-01", "2024-01-04")
    assert shown["points"][0] == {"first_partition": "2024-01-01", "last_partition": "2024-01-02", "partitions": 2,
                                  "min": 11, "max": 20, "avg": 15.5, "last": 20, "event_id": first[2]}  # fmt: skip
    assert [p["first_partition"] for p in shown["points"]] == ["2024-01-01", "2024-01-03", "2024-01-04"]
    other = world.get(f"/api/assets/{key}/metadata/other", x="partition")
    assert [(p["first_partition"], p["last"]) for p in other["points"]] == [("2024-01-04", 7)]


def test_lineage_around_an_asset(world: World) -> None:
    graph = world.get("/api/lineage", root=world.key("orders"), depth=1)
    nodes = {n["asset_key"]: n for n in graph["nodes"]}
    assert {k: n["distance"] for k, n in nodes.items()} == {
        world.key("raw_orders"): -1, world.key("orders"): 0, world.key("only_defined"): 1
    }  # fmt: skip
    assert nodes[world.key("raw_orders")]["defined"] is False and nodes[world.key("orders")]["kinds"] == ["snowflake"]
    assert nodes[world.key("only_defined")]["group"] == "finance" and nodes[world.key("orders")]["status"] == "FRESH"
    assert graph["edges"] == [
        {"from": world.key("orders"), "to": world.key("only_defined")},
        {"from": world.key("raw_orders"), "to": world.key("orders")},
    ]
    # an asset with no definition has no upstream; its downstream are the assets whose definitions name it
    undefined = world.get("/api/lineage", root=world.key("raw_orders"), depth=2)
    assert [(n["asset_key"], n["distance"]) for n in undefined["nodes"]] == [
        (world.key("raw_orders"), 0), (world.key("orders"), 1), (world.key("only_defined"), 2)
    ]  # fmt: skip
    assert world.client.get("/api/lineage", params={"root": world.key("nowhere")}).status_code == 404
    assert world.client.get("/api/lineage", params={"root": world.key("orders"), "depth": 0}).status_code == 400
    assert world.client.get("/api/lineage").status_code == 400


def test_materialize_requests_a_run_and_its_events_show_the_run(
    settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    settings = location_settings(settings_factory, http_port=free_port())
    with (
        pipeline(settings, warehouse, "assets_defs.py", sensors=False),
        serving_stack_api(settings, warehouse, timeout=60) as client,
    ):
        wait_until(
            lambda: (
                (client.get("/api/assets/sel/first").json().get("definition") or {}).get("code_location")
                == settings.code_location
            ),
            30,
            "the run worker registered its location",
        )
        requested = client.post("/api/assets/sel/first/materialize", json={"partition": None})
        assert requested.status_code == 202, requested.text
        (run_id,) = requested.json()["run_ids"]
        assert requested.json()["runs"][0]["code_location"] == settings.code_location
        (run,) = finished_runs(warehouse, settings, 1, run_id=run_id)
        assert run["status"] == "succeeded", run["error_message"]

        def latest_event() -> dict[str, Any]:
            items: list[dict[str, Any]] = client.get("/api/assets/sel/first/events", params={"limit": 1}).json()[
                "items"
            ]
            return items[0] if items else {}

        wait_until(lambda: latest_event().get("run_id") == run_id, 30, "the run's materialization")
        assert latest_event()["run"] == {"run_id": run_id, "status": "succeeded"}

        wrong = client.post("/api/assets/sel/first/observe")
        assert wrong.status_code == 400 and "use `assetpipe assets materialize`" in wrong.json()["error"]
        external = client.post("/api/assets/external/table/materialize")
        assert external.status_code == 400 and "external asset" in external.json()["error"]
        assert client.post("/api/assets/nowhere/at/all/materialize").status_code == 404
        assert client.post("/api/assets/sel/first/materialize", json={"partition": 3}).status_code == 400
        assert client.post("/api/assets/sel/first/materialize", json={"colour": "red"}).status_code == 400


def test_reads_need_the_read_scope_and_runs_the_run_scope_under_the_keys_prefixes(
    settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    keys = {"reader": "apk_reader", "reporter": "apk_reporter", "runner": "apk_runner"}
    entries = [
        f"{hash_key(keys['reader'])}:name=reader:types=read",
        f"{hash_key(keys['reporter'])}:name=reporter:types=materialization",
        f"{hash_key(keys['runner'])}:name=runner:types=read,run:prefixes=other/",
    ]
    settings = settings_factory(http_port=free_port(), api_keys=";".join(entries))
    with serving_stack_api(settings, warehouse, timeout=60) as client:
        assert client.get("/api/assets").status_code == 401
        assert client.get("/api/assets", headers={"X-API-Key": keys["reader"]}).status_code == 200
        refused = client.get("/api/lineage?root=a", headers={"X-API-Key": keys["reporter"]})
        assert refused.status_code == 403 and "read" in refused.json()["error"]
        no_run = client.post("/api/assets/sel/first/materialize", headers={"X-API-Key": keys["reader"]})
        assert no_run.status_code == 403 and "run" in no_run.json()["error"]
        outside = client.post("/api/assets/sel/first/materialize", headers={"X-API-Key": keys["runner"]})
        assert outside.status_code == 403 and "other/" in outside.json()["error"]


# Last: it adds assets under the prefix, which the tests above list.
def test_pages_hold_while_assets_are_added(world: World, warehouse: Warehouse) -> None:
    for sort in ("key", "updated"):
        full = world.keys(sort=sort)
        pages, cursor, seen = 0, None, []
        while True:
            params: dict[str, Any] = {"prefix": world.prefix, "limit": 2, "sort": sort}
            if cursor:
                params["cursor"] = cursor
            page = world.get("/api/assets", **params)
            seen += [item["asset_key"] for item in page["items"]]
            cursor, pages = page["next_cursor"], pages + 1
            if pages == 1 and sort == "key":  # an asset defined meanwhile, sorted before the cursor: nothing shifts
                entry = spec_entry({"key": world.key(f"a/{sort}_added")}, "added")
                AssetRegistry(warehouse).register_specs([entry], "file", "warehouse", time.time_ns() // 1000)
            if cursor is None:
                break
        assert seen == full and pages == 3
    bad = world.client.get("/api/assets", params={"sort": "updated", "cursor": "bm90IGEgY3Vyc29y"})
    assert bad.status_code == 400


@pytest.fixture
def catalog_schema(settings_factory: SettingsFactory, warehouse: Warehouse) -> Iterator[schemathesis.BaseSchema]:
    with serving_stack_api(settings_factory(http_port=free_port()), warehouse) as client:
        yield schemathesis.openapi.from_url(f"{client.base_url}/openapi.json")


# the filter goes on the lazy schema: one set inside the fixture does not reach the tests it parametrizes
catalog = schemathesis.pytest.from_fixture("catalog_schema").include(
    operation_id=["list_assets", "get_asset", "list_asset_events", "get_asset_metadata_series", "list_asset_partitions",
                  "get_lineage", "materialize_asset", "observe_asset"]
)  # fmt: skip


@catalog.parametrize()
@hypothesis_settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_the_catalog_routes_do_what_their_document_says(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
    case.call_and_validate(timeout=60, excluded_checks=[positive_data_acceptance])
