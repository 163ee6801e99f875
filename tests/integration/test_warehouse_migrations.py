"""Migrations on the real ClickHouse engine: a database written by an earlier version keeps its rows
when ``migrate`` brings it up to date, and goes on taking new ones."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from assetpipe.consumers.ingest.rows import EventColumns
from assetpipe.consumers.openlineage.worker import RAW_COLUMNS
from assetpipe.consumers.registry import AssetRegistry, StoredDefinition
from assetpipe.consumers.registry.definition import DEFINITION_COLUMNS, removal_row
from assetpipe.consumers.warehouse import Warehouse, load_migrations
from assetpipe.definitions.assets import AssetSpec, external_assets
from assetpipe.schemas.metadata import MetadataValue, TableColumn, TableSchema
from assetpipe.schemas.model import build_record
from tests.integration.helpers import insert_event_rows

NUMERIC = "SELECT asset_key, key, partition, value FROM {db}.asset_metadata_numeric ORDER BY asset_key, key, partition"
EVENTS = "SELECT asset_key, partition, metadata FROM {db}.asset_events ORDER BY asset_key, partition"
# the migrations after those these tests upgrade across: applied with them, in order
LATER = [f"{m.version:04d}_{m.name}" for m in load_migrations() if m.version > 9]
OPENLINEAGE_STORAGE = next(m.version for m in load_migrations() if m.name == "openlineage_storage")


def insert_events(warehouse: Warehouse, assets: list[str], first_offset: int) -> None:
    rows = EventColumns()
    for i, asset in enumerate(assets):
        record = build_record(
            "materialization",
            asset.split("/"),
            source="sdk",
            host="test",
            partition=f"2024-01-{i % 9 + 1:02d}",
            metadata={"rows": i * 7, "ratio": i / 4, "fresh": i % 2 == 0, "owner": "team"},
        )
        rows.append("materialization", record, i + first_offset, 0, i + first_offset)
    insert_event_rows(warehouse, rows)


def test_low_cardinality_keys_keep_old_rows_and_take_new_ones(old_warehouse: Warehouse) -> None:
    db = old_warehouse.database
    insert_events(old_warehouse, [f"sales/t{i % 5}" for i in range(40)], 0)
    events_before = old_warehouse.query(EVENTS.format(db=db)).rows
    numeric_before = old_warehouse.query(NUMERIC.format(db=db)).rows
    assert len(numeric_before) == 120  # rows, ratio, fresh of each event

    assert old_warehouse.migrate() == [
        "0006_low_cardinality_keys",
        "0007_metadata_kind_enum",
        "0008_numeric_metadata_view",
        "0009_views_without_alias_setting",
        *LATER,
    ]
    assert old_warehouse.migrate() == []

    types = dict(
        old_warehouse.query(
            f"SELECT concat(table, '.', name), type FROM system.columns WHERE database = '{db}' "
            "AND name IN ('asset_key', 'key') AND table IN ('asset_events', 'asset_metadata_numeric')"
        ).rows
    )
    assert types == {
        "asset_events.asset_key": "LowCardinality(String)",
        "asset_metadata_numeric.asset_key": "LowCardinality(String)",
        "asset_metadata_numeric.key": "LowCardinality(String)",
    }
    assert old_warehouse.query(EVENTS.format(db=db)).rows == events_before
    assert old_warehouse.query(NUMERIC.format(db=db)).rows == numeric_before

    insert_events(old_warehouse, [f"ops/t{i % 3}" for i in range(10)], 1000)
    assert old_warehouse.query(f"SELECT count() FROM {db}.asset_events").rows == [(50,)]
    assert old_warehouse.query(
        f"SELECT count(), sum(value) FROM {db}.asset_metadata_numeric WHERE asset_key LIKE 'ops/%' AND key = 'rows'"
    ).rows == [(10, float(sum(i * 7 for i in range(10))))]


@pytest.mark.parametrize("old_warehouse", [7], indirect=True)
def test_metadata_kind_enum_keeps_old_rows_and_takes_new_ones(old_warehouse: Warehouse) -> None:
    db = old_warehouse.database
    insert_events(old_warehouse, [f"sales/t{i % 5}" for i in range(20)], 0)
    kinds = f"SELECT asset_key, partition, metadata_types FROM {db}.asset_events ORDER BY asset_key, partition"
    before = old_warehouse.query(kinds).rows
    events_before = old_warehouse.query(EVENTS.format(db=db)).rows
    assert before[0][2] == {"rows": "int", "ratio": "float", "fresh": "bool", "owner": "text"}

    assert old_warehouse.migrate() == [
        "0007_metadata_kind_enum",
        "0008_numeric_metadata_view",
        "0009_views_without_alias_setting",
        *LATER,
    ]
    assert old_warehouse.query(
        f"SELECT name, compression_codec FROM system.columns WHERE database = '{db}' AND table = 'asset_events' "
        "AND name = 'metadata'"
    ).rows == [("metadata", "CODEC(ZSTD(6))")]  # LZ4 from 0007 on, ZSTD(1) since openlineage_storage, then 6
    assert old_warehouse.query(kinds).rows == before
    assert old_warehouse.query(EVENTS.format(db=db)).rows == events_before

    insert_events(old_warehouse, [f"ops/t{i % 3}" for i in range(10)], 1000)
    assert old_warehouse.query(
        f"SELECT count() FROM {db}.asset_events WHERE asset_key LIKE 'ops/%' AND metadata_types['fresh'] = 'bool'"
    ).rows == [(10,)]
    assert old_warehouse.query(
        f"SELECT count() FROM {db}.asset_metadata_numeric WHERE asset_key LIKE 'ops/%'"
    ).rows == [(30,)]


@pytest.mark.parametrize("old_warehouse", [8], indirect=True)
def test_numeric_metadata_view_gives_the_table_rows_and_new_ones(old_warehouse: Warehouse) -> None:
    db = old_warehouse.database
    insert_events(old_warehouse, [f"sales/t{i % 5}" for i in range(20)], 0)
    numeric_before = old_warehouse.query(NUMERIC.format(db=db)).rows
    assert len(numeric_before) == 60  # rows, ratio, fresh of each event, written by the materialized view
    columns = f"SELECT name, type FROM system.columns WHERE database = '{db}' AND table = 'asset_metadata_numeric'"
    types_before = old_warehouse.query(columns).rows

    assert old_warehouse.migrate() == ["0008_numeric_metadata_view", "0009_views_without_alias_setting", *LATER]
    assert old_warehouse.migrate() == []
    assert old_warehouse.query(
        f"SELECT name, engine FROM system.tables WHERE database = '{db}' AND name LIKE 'asset_metadata_numeric%'"
    ).rows == [("asset_metadata_numeric", "View")]
    assert old_warehouse.query(columns).rows == types_before
    assert old_warehouse.query(NUMERIC.format(db=db)).rows == numeric_before

    insert_events(old_warehouse, [f"ops/t{i % 3}" for i in range(10)], 1000)
    assert old_warehouse.query(
        f"SELECT count(), sum(value), countIf(key = 'fresh' AND value = 1) FROM {db}.asset_metadata_numeric "
        "WHERE asset_key LIKE 'ops/%'"
    ).rows == [(30, float(sum(i * 7 + i / 4 for i in range(10)) + 5), 5)]


@pytest.mark.parametrize("old_warehouse", [len(load_migrations()) + 1], indirect=True)
def test_numeric_metadata_of_one_asset_reads_only_that_assets_granules(old_warehouse: Warehouse) -> None:
    """The view's filter on the asset key reaches ``asset_events``' primary key: a time series of one of
    ten assets reads a fraction of the table's granules."""
    db = old_warehouse.database
    old_warehouse.command(
        f"INSERT INTO {db}.asset_events (event_id, event_type, asset_key, asset_key_path, dedup_key, timestamp, "
        "metadata, metadata_types) SELECT generateUUIDv4(), 'materialization', concat('t/a', toString(number % 10)), "
        "['t', concat('a', toString(number % 10))], number, toDateTime64('2024-06-01', 6), "
        "map('rows', toString(number), 'owner', 'x'), map('rows', 'int', 'owner', 'text') FROM numbers(200000)"
    )
    old_warehouse.command(f"OPTIMIZE TABLE {db}.asset_events FINAL")
    query = f"SELECT count(), sum(value) FROM {db}.asset_metadata_numeric WHERE asset_key = 't/a3' AND key = 'rows'"
    assert old_warehouse.query(query).rows == [(20_000, float(sum(range(3, 200_000, 10))))]
    plan = "\n".join(row[0] for row in old_warehouse.query(f"EXPLAIN indexes = 1 {query}").rows)
    selected, total = map(int, re.findall(r"Granules: (\d+)/(\d+)", plan)[-1])
    assert total >= 20 and selected <= total // 5, plan


@pytest.mark.parametrize("old_warehouse", [9], indirect=True)
def test_latest_views_read_the_same_rows_by_a_read_only_client(old_warehouse: Warehouse) -> None:
    """Before 0009 the views needed a query setting that a read-only client (``assetpipe sql``, an
    analyst's read-only user) cannot apply, and every query on them failed there."""
    db = old_warehouse.database
    insert_events(old_warehouse, [f"sales/t{i % 5}" for i in range(20)], 0)
    views = {
        "latest_materializations": "asset_key, partition, event_id, timestamp, metadata, materializations",
        "latest_check_results": "asset_key, check_name, passed, evaluations",
        "latest_data_versions": "asset_key, data_version, event_type, partition, timestamp",
    }
    before = {v: old_warehouse.query(f"SELECT {c} FROM {db}.{v} ORDER BY ALL").rows for v, c in views.items()}
    assert len(before["latest_materializations"]) == 20

    assert old_warehouse.migrate() == ["0009_views_without_alias_setting", *LATER]
    for view, columns in views.items():
        query = f"SELECT {columns} FROM {db}.{view} WHERE timestamp > '2000-01-01' ORDER BY ALL"
        assert old_warehouse.query(query, settings={"readonly": 1}).rows == before[view], view


@pytest.mark.parametrize("old_warehouse", [16], indirect=True)
def test_current_definitions_and_metadata_points_are_filled_from_what_was_stored(old_warehouse: Warehouse) -> None:
    """0016 moves the current definitions into a table and 0017 writes the numeric points of every stored event;
    what a reader saw before the upgrade it sees after, and new registrations and events reach both."""
    db = old_warehouse.database
    orders, gone = external_assets([AssetSpec(["shop", "orders"], description="code"), AssetSpec(["shop", "gone"])])
    http = StoredDefinition.of(AssetSpec(["shop", "orders"], description="http"))
    rows = [  # as the registry of the earlier version wrote them: shop/gone left its code location
        StoredDefinition.of(orders).row("shop", "code", 1_000),
        (gone_row := StoredDefinition.of(gone).row("shop", "code", 1_000)),
        http.row("", "http", 2_000),
        removal_row("shop/gone", ["shop", "gone"], gone_row[4], "shop", "code", 3_000),
    ]
    before_0019 = len(DEFINITION_COLUMNS) - 1  # 0019 adds freshness_policy, the last column
    columns = [list(c) for c in zip(*rows, strict=True)][:before_0019]
    old_warehouse.insert("asset_definitions", columns, DEFINITION_COLUMNS[:before_0019])
    insert_events(old_warehouse, [f"sales/t{i % 5}" for i in range(20)], 0)
    definitions = (
        f"SELECT asset_key, code_location, description, shadowed FROM {db}.latest_asset_definitions ORDER BY ALL"
    )
    before = old_warehouse.query(definitions).rows
    assert before == [("shop/orders", "shop", "code", ["http"])]
    numeric = "SELECT asset_key, {label} AS label, timestamp, value FROM {db}.{table} {where} ORDER BY ALL"
    stored = old_warehouse.query(
        numeric.format(label="key", db=db, table="asset_metadata_numeric", where="WHERE event_type = 'materialization'")
    ).rows
    assert len(stored) == 60  # rows, ratio, fresh of each event

    assert old_warehouse.migrate()[:2] == ["0016_current_definitions", "0017_metadata_points"]
    assert old_warehouse.query(definitions).rows == before
    points = numeric.format(label="label", db=db, table="asset_metadata_points", where="")
    assert old_warehouse.query(points).rows == stored

    AssetRegistry(old_warehouse).register_location("shop", external_assets([AssetSpec(["shop", "gone"])]), 4_000)
    assert old_warehouse.query(definitions).rows == [("shop/gone", "shop", "", []), ("shop/orders", "", "http", [])]
    insert_events(old_warehouse, ["ops/t0"], 1000)
    assert old_warehouse.query(f"SELECT count() FROM {db}.asset_metadata_points WHERE asset_key = 'ops/t0'").rows == [
        (3,)
    ]


@pytest.mark.parametrize("old_warehouse", [OPENLINEAGE_STORAGE], indirect=True)
def test_the_raw_openlineage_events_are_kept_sorted_by_job_and_time(old_warehouse: Warehouse) -> None:
    """openlineage_storage copies the raw OpenLineage events into a table sorted by job and time: every row is
    kept, an event sent again still collapses into one row, and the typed events' metadata and run ids take ZSTD."""
    db = old_warehouse.database

    def raw(event_id: str, job: str, hour: int) -> list[object]:
        at = datetime(2024, 6, 1, hour, tzinfo=UTC)
        expires = datetime(2100, 1, 1, tzinfo=UTC)
        return [event_id * 40, "RunEvent", "COMPLETE", at, at, expires, f"run-{event_id}", job, [f"a/{job}"],
                f'{{"job": "{job}", "hour": {hour}}}']  # fmt: skip

    rows = [raw("a", "spark/b", 2), raw("b", "spark/a", 3), raw("c", "spark/a", 1), raw("a", "spark/b", 2)]
    old_warehouse.insert("openlineage_events", [list(c) for c in zip(*rows, strict=True)], RAW_COLUMNS)
    every = f"SELECT {', '.join(RAW_COLUMNS)} FROM {db}.openlineage_events FINAL ORDER BY event_id"
    before = old_warehouse.query(every).rows
    assert len(before) == 3

    assert f"{OPENLINEAGE_STORAGE:04d}_openlineage_storage" in old_warehouse.migrate()
    assert old_warehouse.query(every).rows == before
    assert old_warehouse.query(
        f"SELECT sorting_key FROM system.tables WHERE database = '{db}' AND name = 'openlineage_events'"
    ).rows == [("job, event_time, event_id",)]
    old_warehouse.insert("openlineage_events", [list(c) for c in zip(raw("b", "spark/a", 3), strict=True)], RAW_COLUMNS)
    old_warehouse.command(f"OPTIMIZE TABLE {db}.openlineage_events FINAL")
    assert old_warehouse.query(f"SELECT count() FROM {db}.openlineage_events").rows == [(3,)]
    assert old_warehouse.query(
        f"SELECT name, compression_codec FROM system.columns WHERE database = '{db}' AND table = 'asset_events' "
        "AND name IN ('metadata', 'run_id', 'tags', 'kafka_offset') ORDER BY name"
    ).rows == [  # ZSTD(1) since openlineage_storage; metadata, tags and offsets as event_codecs measured them
        ("kafka_offset", "CODEC(T64, ZSTD(3))"),
        ("metadata", "CODEC(ZSTD(6))"),
        ("run_id", "CODEC(ZSTD(1))"),
        ("tags", "CODEC(ZSTD(9))"),
    ]


@pytest.mark.parametrize("old_warehouse", [22], indirect=True)
def test_the_failures_migration_keeps_the_rows_and_states_and_takes_failures(old_warehouse: Warehouse) -> None:
    """0022 adds the event type materialization_failure, its type and reason, and the source openlineage: the
    events and states of a warehouse at 0021 stay as they were; a FAILED failure is a partition's state, a
    SKIPPED one is not."""
    db = old_warehouse.database
    insert_events(old_warehouse, [f"sales/t{i % 2}" for i in range(4)], 0)
    state = (
        f"SELECT asset_key, partition, toString(event_type), toString(event_id) FROM {db}.asset_partition_state FINAL "
        "ORDER BY ALL"
    )
    events_before, state_before = old_warehouse.query(EVENTS.format(db=db)).rows, old_warehouse.query(state).rows
    assert len(state_before) == 4

    assert old_warehouse.migrate() == [f"{m.version:04d}_{m.name}" for m in load_migrations() if m.version >= 22]
    assert old_warehouse.query(EVENTS.format(db=db)).rows == events_before
    assert old_warehouse.query(state).rows == state_before

    rows = EventColumns()
    for i, (failure_type, reason) in enumerate([("FAILED", "UPSTREAM_FAILED_TO_MATERIALIZE"), ("SKIPPED", "UNKNOWN")]):
        record = build_record(
            "materialization_failure", ["sales", "t0"], source="openlineage", host="lineage", partition="2024-01-01",
            run_id=f"run-{i}", description="upstream failed", failure_type=failure_type, reason=reason,
        )  # fmt: skip
        rows.append("materialization_failure", record, 100 + i, 0, 100 + i)
    insert_event_rows(old_warehouse, rows)
    assert old_warehouse.query(
        f"SELECT toString(source), run_id, toString(failure_type), toString(failure_reason), data_version "
        f"FROM {db}.asset_events WHERE event_type = 'materialization_failure' ORDER BY run_id"
    ).rows == [("openlineage", "run-0", "FAILED", "UPSTREAM_FAILED_TO_MATERIALIZE", ""),
               ("openlineage", "run-1", "SKIPPED", "UNKNOWN", "")]  # fmt: skip
    assert old_warehouse.query(
        f"SELECT partition, run_id, toString(failure_reason) FROM {db}.asset_partition_state FINAL "
        "WHERE event_type = 'materialization_failure'"
    ).rows == [("2024-01-01", "run-0", "UPSTREAM_FAILED_TO_MATERIALIZE")]
    assert old_warehouse.query(
        f"SELECT countIf(failure_type IS NULL AND failure_reason IS NULL) FROM {db}.asset_events "
        "WHERE event_type = 'materialization'"
    ).rows == [(4,)]


@pytest.mark.parametrize("old_warehouse", [26], indirect=True)
def test_the_rollups_are_filled_from_the_points_stored_and_take_new_ones(old_warehouse: Warehouse) -> None:
    """0026 rolls the numeric points stored before up per hour and per day, then its views take each new point once."""
    db = old_warehouse.database
    insert_events(old_warehouse, [f"sales/t{i % 5}" for i in range(20)], 0)
    rolled = (
        "SELECT asset_key, label, sum(values), sum(total), min(low), max(high), min(first_at), max(last).1, "
        "max(last).2 FROM {db}.{table} GROUP BY asset_key, label ORDER BY asset_key, label"
    )
    points = (
        "SELECT asset_key, label, count(), sum(value), min(value), max(value), min(timestamp), max(timestamp), "
        "argMax(value, (timestamp, value)) FROM {db}.asset_metadata_points GROUP BY asset_key, label "
        "ORDER BY asset_key, label"
    )
    stored = old_warehouse.query(points.format(db=db)).rows
    assert len(stored) == 15  # rows, ratio, fresh of five assets

    assert old_warehouse.migrate()[0] == "0026_metadata_rollups"
    for table in ("asset_metadata_hourly", "asset_metadata_daily"):
        assert old_warehouse.query(rolled.format(db=db, table=table)).rows == stored, table

    insert_events(old_warehouse, [f"sales/t{i % 5}" for i in range(10)], 1000)
    now = old_warehouse.query(points.format(db=db)).rows
    assert sum(row[2] for row in now) == 3 * 30
    for table in ("asset_metadata_hourly", "asset_metadata_daily"):
        assert old_warehouse.query(rolled.format(db=db, table=table)).rows == now, table


@pytest.mark.parametrize("old_warehouse", [30], indirect=True)
def test_the_dedup_keys_are_kept_with_the_day_and_partition_of_their_events(old_warehouse: Warehouse) -> None:
    """0030 builds ``asset_event_keys`` again from ``asset_events``: every key held before is still there, with the
    day its event was ingested and what tells the Kafka partition its key filter is on; new events add theirs."""
    db = old_warehouse.database
    insert_events(old_warehouse, [f"sales/t{i % 5}" for i in range(20)], 0)
    keys = f"SELECT dedup_key, toString(event_id) FROM {db}.asset_event_keys ORDER BY ALL"
    before = old_warehouse.query(keys).rows
    assert len(before) == 20

    assert "0030_dedup_window" in old_warehouse.migrate()
    assert set(before) <= set(old_warehouse.query(keys).rows)
    placed = (
        f"SELECT k.dedup_key, k.asset_crc = CRC32(e.asset_key), k.kafka_partition = e.kafka_partition, "
        f"k.ingested_on = toDate(e.ingested_at) FROM {db}.asset_event_keys AS k "
        f"INNER JOIN {db}.asset_events AS e ON k.event_id = e.event_id ORDER BY ALL"
    )
    assert {row[1:] for row in old_warehouse.query(placed).rows} == {(True, True, True)}
    insert_events(old_warehouse, [f"ops/t{i % 3}" for i in range(10)], 1000)
    new = f"SELECT count() FROM {db}.asset_event_keys WHERE dedup_key BETWEEN 1000 AND 1009 AND ingested_on = today()"
    assert old_warehouse.query(new, settings={"session_timezone": "UTC"}).rows == [(10,)]
    assert {row[1:] for row in old_warehouse.query(placed).rows} == {(True, True, True)}


@pytest.mark.parametrize("old_warehouse", [33], indirect=True)
def test_the_latest_value_of_each_partition_is_filled_from_the_events_stored(old_warehouse: Warehouse) -> None:
    """0033 keeps the latest numeric value of each (asset, label, partition) for the plots by partition: an upgraded
    warehouse gets those of the events stored before, and a new event replaces one only when it is newer."""
    db = old_warehouse.database
    insert_events(old_warehouse, [f"sales/t{i % 5}" for i in range(90)], 0)  # each asset's 9 partitions twice
    latest = (
        "SELECT asset_key, key, partition, argMax(value, timestamp), toString(argMax(event_id, timestamp)) "
        f"FROM {db}.asset_metadata_numeric WHERE event_type IN ('materialization', 'observation') AND partition != '' "
        "GROUP BY asset_key, key, partition ORDER BY ALL"
    )
    kept = (
        f"SELECT asset_key, label, partition, value, toString(event_id) FROM {db}.asset_partition_metadata FINAL "
        "ORDER BY ALL"
    )
    stored = old_warehouse.query(latest).rows
    assert len(stored) == 5 * 9 * 3  # rows, ratio, fresh of each asset's partitions

    assert old_warehouse.migrate()[0] == "0033_partition_metadata"
    assert old_warehouse.query(kept).rows == stored

    rows = EventColumns()
    old = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)
    for i, (partition, at) in enumerate([("2024-01-01", old), ("2024-01-09", None)]):  # None: now
        record = build_record("observation", ["sales", "t0"], source="sdk", host="test", partition=partition,
                              metadata={"rows": -1}, timestamp_us=at)  # fmt: skip
        rows.append("observation", record, 1000 + i, 0, 1000 + i)
    insert_event_rows(old_warehouse, rows)
    values = {(r[0], r[1], r[2]): r[3] for r in old_warehouse.query(kept).rows}
    assert values[("sales/t0", "rows", "2024-01-09")] == -1  # newer: the partition's latest
    assert values[("sales/t0", "rows", "2024-01-01")] == next(
        r[3] for r in stored if r[:3] == ("sales/t0", "rows", "2024-01-01")
    )  # older, written later: changes nothing
    assert old_warehouse.query(kept).rows == old_warehouse.query(latest).rows


@pytest.mark.parametrize("old_warehouse", [36], indirect=True)
def test_each_assets_latest_event_of_each_type_is_filled_from_the_state_and_takes_new_ones(
    old_warehouse: Warehouse,
) -> None:
    """0036 keeps, per (asset, event type, check), the latest event and the partitions that have one, for an asset's
    page: an upgraded warehouse gets them from asset_partition_state, new events update them, an older one written
    later changes nothing, and a partition reported again counts once."""
    db = old_warehouse.database
    insert_events(old_warehouse, [f"sales/t{i % 5}" for i in range(90)], 0)  # each asset's 9 partitions twice
    truth = (
        "SELECT asset_key, toString(event_type), check_name, uniqExactIf(partition, partition != ''), "
        "toString(argMax(event_id, timestamp)), max(timestamp) "
        f"FROM {db}.asset_partition_state GROUP BY asset_key, event_type, check_name ORDER BY ALL"
    )
    summary = (
        "SELECT asset_key, toString(event_type), check_name, uniqExactMerge(partitions), "
        "toString(argMaxMerge(latest).2), max(timestamp) "
        f"FROM {db}.asset_event_summary GROUP BY asset_key, event_type, check_name ORDER BY ALL"
    )
    stored = old_warehouse.query(truth).rows
    assert [row[3] for row in stored] == [9] * 5

    assert old_warehouse.migrate()[0] == "0036_asset_event_summary"
    assert old_warehouse.query(summary).rows == stored

    rows = EventColumns()
    old = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)
    cases = [("materialization", "2024-01-01", old), ("materialization", "2024-02-01", None),
             ("observation", None, None)]  # fmt: skip
    for i, (kind, partition, at) in enumerate(cases):
        record = build_record(kind, ["sales", "t0"], source="sdk", host="test", partition=partition,
                              event_id=f"00000000-0000-7000-8000-00000000000{i}", timestamp_us=at)  # fmt: skip
        rows.append(kind, record, 1000 + i, 0, 1000 + i)
    insert_event_rows(old_warehouse, rows)
    found = {row[:2]: row[3:5] for row in old_warehouse.query(summary).rows}
    assert found[("sales/t0", "materialization")] == (10, "00000000-0000-7000-8000-000000000001")  # the newer one
    assert found[("sales/t0", "observation")] == (0, "00000000-0000-7000-8000-000000000002")  # unpartitioned
    assert found[("sales/t1", "materialization")][0] == 9
    assert old_warehouse.query(summary).rows == old_warehouse.query(truth).rows


@pytest.mark.parametrize("old_warehouse", [37], indirect=True)
def test_the_numeric_views_give_the_same_rows_once_they_join_only_numeric_entries(old_warehouse: Warehouse) -> None:
    """0037 has the numeric metadata views join only the numeric entries' texts, not the whole metadata map: the same
    events give the same points and partition values as before, whatever else their metadata holds."""
    db = old_warehouse.database
    schema = TableSchema(columns=[TableColumn(f"c{i}", "INT", description="x" * 200) for i in range(30)])
    metadata: dict[str, Any] = {
        "rows": 7, "ratio": 0.25, "big": 1e300, "inf": float("inf"), "fresh": True, "stale": False,
        "at": MetadataValue.timestamp(1_700_000_000.5), "owner": "team", "nothing": MetadataValue.null(),
        "upstream": MetadataValue.asset("a/b"), "dagster/column_schema": MetadataValue.table_schema(schema),
    }  # fmt: skip

    def write(prefix: str, first: int) -> None:
        rows = EventColumns()
        for i, (kind, partition) in enumerate([("materialization", "2024-01-01"), ("observation", None),
                                               ("materialization", None), ("check_evaluation", None)]):  # fmt: skip
            extra = {"check_name": "c", "passed": True} if kind == "check_evaluation" else {}
            record = build_record(kind, [prefix, "t"], source="sdk", host="test", partition=partition,
                                  metadata={**metadata, "index": i}, timestamp_us=1_700_000_000_000_000 + i,
                                  **extra)  # fmt: skip
            rows.append(kind, record, first + i, 0, first + i)
        insert_event_rows(old_warehouse, rows)

    def rows(prefix: str) -> tuple[list[Any], list[Any]]:
        points = old_warehouse.query(
            f"SELECT label, timestamp, value FROM {db}.asset_metadata_points WHERE asset_key = {{k:String}} "
            "ORDER BY ALL", parameters={"k": f"{prefix}/t"}
        ).rows  # fmt: skip
        partitions = old_warehouse.query(
            f"SELECT label, partition, timestamp, value FROM {db}.asset_partition_metadata FINAL "
            "WHERE asset_key = {k:String} ORDER BY ALL", parameters={"k": f"{prefix}/t"}
        ).rows  # fmt: skip
        return points, partitions

    write("before", 0)
    assert old_warehouse.migrate()[0] == "0037_numeric_entries_only"
    write("after", 100)
    before, after = rows("before"), rows("after")
    assert after == before
    labels = {row[0] for row in after[0]}
    assert labels == {"rows", "ratio", "big", "inf", "fresh", "stale", "at", "index"}  # numeric kinds only
    assert len(after[0]) == 3 * 8  # the check evaluation has none
    assert {row[1] for row in after[1]} == {"2024-01-01"}  # the partitioned event's only
