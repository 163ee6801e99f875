"""The asset catalog's JSON at scale: 10,000 defined assets, 100 partitions each, 5 numeric metadata
labels, 10 million events (100 million with ``--events 100000000``).

The history is generated in ClickHouse with ``INSERT ... SELECT FROM numbers()`` into the real tables, so
the materialized views (``asset_latest_state``, ``asset_partition_state``, ``asset_metadata_points``, the
dedup keys) run as ingest runs them: definitions rows of ``bench/a<i>`` written directly (the first hundred
assets are only reported, the last hundred only defined), and events interleaved in time over one year: in
each thousand events, some of ``bench/series`` (one numeric series of a million points), some of
``bench/wide`` (100,000 partitions), the rest spread over the 10,000 assets (materializations, every tenth
round observations, every tenth checks).

Then each endpoint's reads (``consumers.catalog``, read-only with parameters, as the API runs them), p50 and
p95, beside the raw limits of the same warehouse: a ``count()`` of ``asset_events``, and reading one
asset's whole numeric series as raw rows. Last, the ingest worker's end-to-end rate (``bench_ingest``'s
machinery) with the catalog's views, with the latest state's only and with neither. Starts its own embedded
ClickHouse engine and broker.

    python bench/bench_catalog.py [--events 10000000] [--runs 20] [--ingest-events 300000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from typing import Any

from bench_definitions import percentiles, timed
from bench_ingest import reference_event, run_ingest
from benchstack import bench_settings, produce_all
from confluent_kafka import Producer

from assetpipe.assets_api import LocalRegistry
from assetpipe.broker import EmbeddedBroker, free_port
from assetpipe.consumers.catalog import (
    AssetQuery,
    EventQuery,
    SeriesQuery,
    asset_detail,
    asset_events,
    cursor,
    lineage,
    list_assets,
    partitions,
    series,
)
from assetpipe.consumers.catalog.rows import micros
from assetpipe.consumers.registry import AssetRegistry
from assetpipe.consumers.warehouse import Warehouse, load_migrations
from assetpipe.schemas.codec import Codec

ASSETS = 10_000
PARTITIONS = 100
ONLY_REPORTED = 100  # bench/a0 .. a99 have events and no definition; the last hundred have no events
SERIES = "bench/series"
WIDE = "bench/wide"
LABELS = ("row_count", "size_mb", "duration_s", "null_count", "lag_s")
_CHUNK = 1_000_000
_START_US = 1_704_067_200_000_000  # 2024-01-01
_YEAR_US = 365 * 86_400 * 1_000_000
# The catalog's materialized views the ingest comparisons detach: none, the latest state's, or both.
VIEWS = {
    "none": ("asset_partition_state_mv", "asset_event_summary_mv", "asset_metadata_points_mv"),
    "state": ("asset_metadata_points_mv",),
    "all": (),
}
VIEW_LABELS = {
    "none": "without the catalog's views",
    "state": "the latest-state views only (asset_partition_state, asset_event_summary)",
    "all": "both views (+ asset_metadata_points)",
}
_DOMAINS = "['sales', 'finance', 'ops', 'marketing', 'support']"
_KINDS = "['python', 'snowflake', 'dbt', 'duckdb', 'spark']"


def _definitions_sql(db: str, key: str, numbers: str) -> str:
    """Definitions rows of ``key`` (an expression of ``number``) over ``numbers``: owners, tags, two kinds,
    a group, two dependencies on the layer before (a hundred assets a layer), a column schema; every
    eighth has code version 2 (its materializations record 1: STALE), every other is daily-partitioned."""
    return (
        f"INSERT INTO {db}.asset_definitions (asset_key, asset_key_path, code_location, source, definition_hash, "
        "registered_at, removed, description, owners, tags, kinds, group_name, deps, code_version, execution_type, "
        "partitions, automation_condition, metadata, metadata_types) "
        f"SELECT {key} AS key, splitByChar('/', key), 'bench', 'code', hex(sipHash64(key)), now64(6), false, "
        f"concat('Table ', toString(number), ' of the ', {_DOMAINS}[number % 5 + 1], ' domain, refreshed daily'), "
        "[concat('team:t', toString(number % 20)), concat('owner', toString(number % 50), '@example.com')], "
        f"map('domain', {_DOMAINS}[number % 5 + 1], 'tier', concat('t', toString(number % 3)), "
        f"concat('dagster/kind/', {_KINDS}[number % 5 + 1]), '', "
        f"concat('dagster/kind/', {_KINDS}[(number + 1) % 5 + 1]), ''), "
        f"arraySort([{_KINDS}[number % 5 + 1], {_KINDS}[(number + 1) % 5 + 1]]), "
        "concat('group_', toString(number % 30)), "
        "if(number < 200, [], arraySort([concat('bench/a', toString(number - 100)), "
        "concat('bench/a', toString(number - 100 + if(number % 100 = 99, -99, 1)))])), "
        "if(number % 8 = 0, '2', '1'), 'materialization', "
        'if(number % 2 = 1, \'{"type": "daily", "start": "2024-01-01"}\', \'\'), \'\', '
        'map(\'dagster/column_schema\', \'{"columns": [{"name": "id", "type": "int"}, '
        '{"name": "amount", "type": "float", "description": "in euros"}]}\', \'rows_estimate\', \'1000\'), '
        "map('dagster/column_schema', 'table_schema', 'rows_estimate', 'int') "
        f"FROM {numbers}"
    )


def _events_sql(db: str, start: int, count: int, total: int, assets: int, partitions: int) -> str:
    """Events ``start`` .. ``start + count`` of ``total``. In each thousand: ``series`` of bench/series, ``wide``
    of bench/wide (partition = its index), the rest round-robin over the assets (round r: partition r % 100,
    every tenth round observations, every tenth checks; assets i % 4 = 0 unpartitioned)."""
    blocks = max(1, total // 1000)
    series = max(1, min(1_000_000, total // 10) // blocks)
    wide = max(1, min(100_000, total // 100) // blocks)
    regular = 1000 - series - wide
    step = max(1, _YEAR_US // total)
    return (
        f"INSERT INTO {db}.asset_events (event_id, event_type, asset_key, asset_key_path, partition, data_version, "
        "metadata, metadata_types, tags, check_name, check_passed, check_severity, timestamp, source, producer_host, "
        "run_id, dedup_key, kafka_partition, kafka_offset) "
        "SELECT generateUUIDv7(number), type, key, splitByChar('/', key), part, hex(number), "
        "if(type = 'check_evaluation', map('failed_rows', toString(number % 13)), "
        "map('row_count', toString(rows), 'size_mb', toString(round(rows / 7.3, 2)), "
        "'duration_s', toString(round(20 + 10 * sin(number / 1000), 3)), 'null_count', toString(number % 17), "
        "'lag_s', toString(number % 3600), 'source', concat('s3://bench/', key, '/', part))), "
        "if(type = 'check_evaluation', map('failed_rows', 'int'), map('row_count', 'int', 'size_mb', 'float', "
        "'duration_s', 'float', 'null_count', 'int', 'lag_s', 'int', 'source', 'url')), "
        "if(type = 'materialization', map('dagster/code_version', '1'), map()), "
        "if(type = 'check_evaluation', ['row_count_positive', 'no_nulls'][round_ % 2 + 1], ''), "
        "if(type = 'check_evaluation', cityHash64(number) % 10 != 0, NULL), "
        "if(type = 'check_evaluation', if(round_ % 2 = 1, 'ERROR', 'WARN'), NULL), "
        f"fromUnixTimestamp64Micro(toInt64({_START_US} + number * {step}), 'UTC'), 'sdk', 'bench', '', number, 0, "
        "number "
        "FROM ("
        "SELECT number, intDiv(number, 1000) AS block, number % 1000 AS j, "
        f"block * {regular} + (j - {series + wide}) AS m, m % {assets} AS i, intDiv(m, {assets}) AS r, "
        f"multiIf(j < {series}, '{SERIES}', j < {series + wide}, '{WIDE}', concat('bench/a', toString(i))) AS key, "
        f"multiIf(j < {series}, 0, j < {series + wide}, 0, r) AS round_, "
        f"multiIf(j < {series}, 'materialization', j < {series + wide}, "
        "if(j % 7 = 0, 'check_evaluation', 'materialization'), "
        "r % 10 = 9, 'observation', r % 10 = 8, 'check_evaluation', 'materialization') AS type, "
        f"multiIf(j < {series}, '', j < {series + wide}, concat('p', leftPad(toString(block * {wide} + j - {series}), "
        f"6, '0')), i % 4 = 0, '', toString(toDate('2024-01-01') + r % {partitions})) AS part, "
        "toInt64(1000000 + 400000 * sin(number / 50000) + number % 9973) AS rows "
        f"FROM numbers({start}, {count}))"
    )


def generate(
    warehouse: Warehouse, events: int, *, start: int = 0, stop: int | None = None, definitions: bool = True
) -> None:
    """The synthetic registry (``definitions``) and events ``start`` .. ``stop`` of a history of ``events``."""
    db = warehouse.database
    if definitions:
        warehouse.command(
            _definitions_sql(db, "concat('bench/a', toString(number))", f"numbers({ONLY_REPORTED}, {ASSETS})")
        )
        for key in (SERIES, WIDE):
            warehouse.command(_definitions_sql(db, f"'{key}'", "numbers(1, 1)"))
        AssetRegistry(warehouse).refresh()
    end = events if stop is None else stop
    for at in range(start, end, _CHUNK):
        warehouse.command(_events_sql(db, at, min(_CHUNK, end - at), events, ASSETS, PARTITIONS))


def counts(warehouse: Warehouse) -> dict[str, int]:
    """Rows of each table, events of bench/series and partitions of bench/wide."""
    db, found = warehouse.database, {}
    for table in ("asset_definitions", "asset_events", "asset_latest_state", "asset_partition_state"):
        found[table] = int(warehouse.query(f"SELECT count() FROM {db}.{table}").rows[0][0])
    for name, key, measure in (("series", SERIES, "count()"), ("wide", WIDE, "uniqExact(partition)")):
        found[name] = int(
            warehouse.query(f"SELECT {measure} FROM {db}.asset_events WHERE asset_key = '{key}'").rows[0][0]
        )
    return found


def ingest_rates(broker: EmbeddedBroker, directory: str, events: int, rounds: int) -> dict[str, list[float]]:
    """The ingest worker's end-to-end rate (``bench_ingest.run_ingest``) over ``events`` reference events, in a
    fresh database each time, with each set of the catalog's views (``VIEWS``), in turn."""
    codec = Codec(timestamp_micros=True)
    payloads = [(codec.encode("materialization", reference_event(i)), f"warehouse/sales/table_{i % 500}".encode())
                for i in range(events)]  # fmt: skip
    rates: dict[str, list[float]] = {views: [] for views in VIEWS}
    for round_ in range(rounds):
        for views, dropped in VIEWS.items():
            settings = bench_settings(broker, directory, prefix="c")
            settings = settings.model_copy(update={"clickhouse_database": f"ingest_{views}_{round_}"})
            warehouse = Warehouse(settings.clickhouse_dsn, settings.clickhouse_database)
            warehouse.migrate()
            for view in dropped:
                warehouse.command(f"DROP VIEW {settings.clickhouse_database}.{view}")
            producer = Producer(settings.producer_config())
            produce_all(producer, settings.topics.events, payloads)
            elapsed, _, _, _ = run_ingest(settings, broker, events)
            rates[views].append(events / elapsed)
            warehouse.command(f"DROP DATABASE {settings.clickhouse_database}")
            warehouse.close()
    return rates


def reads(warehouse: Warehouse) -> list[tuple[str, Callable[[], Any], str]]:
    """Each endpoint's reads as the API runs them (read-only, with parameters, statuses from a snapshot), with its
    target (p95, ms)."""
    registry = LocalRegistry(warehouse)  # as `assetpipe up` reads: its queries, its status snapshot
    query, statuses = registry.query, registry.statuses

    def listed(**params: str) -> Callable[[], Any]:
        return lambda: list_assets(query, AssetQuery.parse(params), statuses)

    key = "bench/a5000"
    second = list_assets(query, AssetQuery.parse({}), statuses)["next_cursor"] or ""
    whole = series(query, SERIES, "row_count", SeriesQuery())
    first, last = micros(whole["first"] or "0"), micros(whole["last"] or "0")
    tenth = {"after": str(first / 1e6), "before": str((first + (last - first) / 10) / 1e6)}
    older = asset_events(query, SERIES, EventQuery())["next_cursor"]
    half = {"cursor": cursor.encode("partitions", "p050000")}
    return [
        ("GET /api/assets (first page, 50, by key)", listed(), "<= 100"),
        ("GET /api/assets?cursor=... (second page)", listed(cursor=second), ""),
        ("GET /api/assets?sort=updated", listed(sort="updated"), ""),
        ("GET /api/assets?tag=domain=ops&owner=team:t2&search=table", listed(tag="domain=ops", owner="team:t2",
                                                                              search="table"), ""),
        ("GET /api/assets?status=STALE", listed(status="STALE"), ""),
        ("GET /api/assets?status=FAILED_CHECK", listed(status="FAILED_CHECK"), ""),
        (f"GET /api/assets/{key}", lambda: asset_detail(query, key, statuses), "<= 50"),
        (f"GET /api/assets/{WIDE} (100,000 partitions)", lambda: asset_detail(query, WIDE, statuses), "<= 50"),
        (f"GET /api/assets/{SERIES}/events (first page)", lambda: asset_events(query, SERIES, EventQuery()), ""),
        (f"GET /api/assets/{SERIES}/events?cursor=...",
         lambda: asset_events(query, SERIES, EventQuery(cursor=older)), ""),
        (f"GET /api/assets/{SERIES}/metadata/row_count?grain=raw (1,000,000 -> 1,000)",
         lambda: series(query, SERIES, "row_count", SeriesQuery(grain="raw")), "<= 200"),
        (f"GET /api/assets/{SERIES}/metadata/row_count (the hourly rollup, as the catalog picks)",
         lambda: series(query, SERIES, "row_count", SeriesQuery()), ""),
        (f"GET /api/assets/{SERIES}/metadata/row_count (a tenth, zoomed)",
         lambda: series(query, SERIES, "row_count", SeriesQuery.parse(tenth)), ""),
        (f"GET /api/assets/{WIDE}/metadata/row_count?x=partition",
         lambda: series(query, WIDE, "row_count", SeriesQuery(x="partition")), ""),
        (f"GET /api/assets/{WIDE}/partitions (first page, 100)", lambda: partitions(query, WIDE, {}), "<= 100"),
        (f"GET /api/assets/{WIDE}/partitions?cursor=p050000", lambda: partitions(query, WIDE, half), "<= 100"),
        (f"GET /api/lineage?root={key}&depth=2", lambda: lineage(query, key, 2, statuses), ""),
        ("raw: count() over asset_events",
         lambda: warehouse.query(f"SELECT count() FROM {warehouse.database}.asset_events"), ""),
        (f"raw: count() of {SERIES}'s row_count points (their primary-key range)",
         lambda: warehouse.query(f"SELECT count() FROM {warehouse.database}.asset_metadata_points "
                                 f"WHERE asset_key = '{SERIES}' AND label = 'row_count'"), ""),
        (f"raw: count() of {SERIES}'s rows (its primary-key range)",
         lambda: warehouse.query(f"SELECT count() FROM {warehouse.database}.asset_events WHERE asset_key = '{SERIES}'"),
         ""),
        ("raw: sum of its row_count, read from the metadata map",
         lambda: warehouse.query(f"SELECT sum(toFloat64OrZero(metadata['row_count'])) FROM {warehouse.database}."
                                 f"asset_events WHERE asset_key = '{SERIES}'"), ""),
        ("raw: SELECT 1 as the catalog's reads run (read-only, one round trip)", lambda: query("SELECT 1", {}), ""),
        ("raw: SELECT 1 through read_only_query (an analyst's: parse and checks)",
         lambda: warehouse.read_only_query("SELECT 1", {}), ""),
        ("raw: every asset's staleness (asset_staleness, the snapshot's read)",
         lambda: query("SELECT count(), countIf(status = 'STALE') FROM asset_staleness", {}), ""),
    ]  # fmt: skip


def insert_rates(warehouse: Warehouse, events: int) -> tuple[dict[str, list[float]], dict[str, int], float]:
    """The history generated chunk by chunk, the first chunks with each set of the catalog's views (``VIEWS``) in
    turn (rows/s each), then migration 0014's backfill of the latest state (seconds) and 0017's of the points of
    the chunks generated without their view."""
    db = warehouse.database
    generate(warehouse, events, stop=0)  # the definitions
    rates: dict[str, list[float]] = {views: [] for views in VIEWS}
    compared = min(2 * len(VIEWS) * _CHUNK, events // 2)
    without_points: list[tuple[int, int]] = []
    for n, at in enumerate(range(0, compared, _CHUNK)):
        views = list(VIEWS)[n % len(VIEWS)]
        for view in VIEWS[views]:
            warehouse.command(f"DETACH TABLE {db}.{view}")
        size = min(_CHUNK, compared - at)
        elapsed, _ = timed(lambda: generate(warehouse, events, start=at, stop=at + size, definitions=False))  # noqa: B023
        rates[views].append(size / elapsed)
        for view in VIEWS[views]:
            warehouse.command(f"ATTACH TABLE {db}.{view}")
        if "asset_metadata_points_mv" in VIEWS[views]:
            without_points.append((at, at + size))
    generate(warehouse, events, start=compared, definitions=False)
    backfills = {m.version: s for m in load_migrations() for s in m.statements if s.startswith("INSERT")}
    # 0014's backfill as written, into the columns the table had then (0022 added the failures' since)
    columns = "asset_key, partition, event_type, check_name, timestamp, event_id, data_version, run_id, check_passed, "
    state = backfills[14].replace("asset_partition_state\n", f"asset_partition_state ({columns}check_severity)\n", 1)
    backfill_s, _ = timed(lambda: warehouse.command(state.replace("{db}", db)))
    where, step = "WHERE n.event_type IN ('materialization', 'observation')", max(1, _YEAR_US // events)
    for low, high in without_points:  # the events of numbers low .. high, by their times
        at = "toUnixTimestamp64Micro(n.timestamp)"
        chunk = f"{where} AND {at} >= {_START_US + low * step} AND {at} < {_START_US + high * step}"
        warehouse.command(backfills[17].replace("{db}", db).replace(where, chunk))
    return rates, counts(warehouse), backfill_s


def settle(warehouse: Warehouse, limit_s: float = 300.0) -> float:
    """Wait (up to ``limit_s``) until no background merge runs: a warehouse filled over months has merged its parts,
    one generated a minute ago has not. Seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        if not warehouse.query(f"SELECT count() FROM system.merges WHERE database = '{warehouse.database}'").rows[0][0]:
            break
        time.sleep(1)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=20, help="timed runs of each read (default 20)")
    parser.add_argument("--ingest-events", type=int, default=200_000, help="events an ingest run (200,000)")
    parser.add_argument("--ingest-rounds", type=int, default=2, help="ingest runs of each set of views")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        warehouse = Warehouse(f"chdb://{tmp}/clickhouse", "bench")
        warehouse.migrate()
        inserted, found, backfill_s = insert_rates(warehouse, args.events)
        settled_s = settle(warehouse)
        timings = [(name, percentiles(read, args.runs), target) for name, read, target in reads(warehouse)]
        state_bytes = warehouse.query(
            f"SELECT sum(bytes_on_disk) FROM system.parts WHERE database = '{warehouse.database}' "
            "AND table = 'asset_partition_state' AND active"
        ).rows[0][0]
        warehouse.close()
        with EmbeddedBroker(free_port()) as broker:
            ingested = ingest_rates(broker, tmp, args.ingest_events, args.ingest_rounds)

    print(f"{args.events:,} events of {ASSETS:,} assets ({PARTITIONS} partitions each); {SERIES}: "
          f"{found['series']:,} events; {WIDE}: {found['wide']:,} partitions")  # fmt: skip
    print(f"asset_partition_state: {found['asset_partition_state']:,} rows before merges, "
          f"{state_bytes / args.events:.1f} bytes an event on disk; migration 0014's backfill from every stored event "
          f"{backfill_s:.1f} s")  # fmt: skip
    for views, label in VIEW_LABELS.items():
        print(f"{'INSERT ... SELECT of 1,000,000 events, ' + label:<72} "
              f"{', '.join(f'{rate:,.0f}' for rate in inserted[views])} rows/s")  # fmt: skip
    for views, label in VIEW_LABELS.items():
        label = f"ingest worker end to end, {label}"
        shown = ", ".join(f"{rate:,.0f}" for rate in ingested[views])
        print(f"{label + f' ({args.ingest_events:,} reference events)':<72} {shown} ev/s")
    print(f"reads timed after the background merges of the generated history ended ({settled_s:.0f} s)")
    print(f"{'read (p50 and p95 of ' + str(args.runs) + ' runs after one)':<72} {'p50 ms':>8} {'p95 ms':>8}  target")
    for name, (p50, p95), target in timings:
        print(f"{name:<72} {p50:>8.1f} {p95:>8.1f}  {target}")


if __name__ == "__main__":
    main()
