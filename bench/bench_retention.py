"""Retention (docs/retention.md): bytes on disk per event with the rollups on, before and after a retention window
drops the raw history, and the time of a 5-year daily plot from the daily rollup beside the same plot from raw
points, in the same run.

Five years of history are generated in ClickHouse with ``INSERT ... SELECT FROM numbers()`` into ``asset_events``,
so every materialized view runs as ingest runs it (the latest state, the points, the hourly and daily rollups, the
dedup keys): ``--assets`` assets materialized once an hour (every other one daily-partitioned, every 24th event a
check evaluation), and one asset, ``bench/dense``, once a minute; each materialization with five numeric metadata
entries and a URL, as bench_catalog's. First, what the rollups' views cost a write: 1,000,000 of those events
inserted into fresh databases with and without them, in turn, and the ingest worker's end-to-end rate over
``--ingest-events`` of bench_ingest's reference events (a live stream: each batch within a second) with and without
them. Every table of the history is then merged (``OPTIMIZE ... FINAL``) and measured, the plots timed (p50, p95),
the retention of ``--retention-days`` set (``apply_retention``) and carried out, and everything measured and timed
again. Starts its own embedded ClickHouse engine and broker.

    python bench/bench_retention.py [--assets 100] [--retention-days 90] [--runs 20] [--ingest-events 200000]
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

from assetpipe.broker import EmbeddedBroker, free_port
from assetpipe.consumers.catalog import SeriesQuery, series
from assetpipe.consumers.retention import apply_retention
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.schemas.codec import Codec

DENSE = "bench/dense"
HOURLY = "bench/a1"  # one of the hourly assets, daily-partitioned
YEARS_DAYS = 5 * 365 + 1
_HOUR_US = 3_600_000_000
_CHUNK = 2_000_000
_METADATA = (
    "map('row_count', toString(rows), 'size_mb', toString(round(rows / 7.3, 2)), "
    "'duration_s', toString(round(20 + 10 * sin(number / 1000), 3)), 'null_count', toString(number % 17), "
    "'lag_s', toString(number % 3600), 'source', concat('s3://bench/', key, '/', toString(number % 1000)))"
)
_KINDS = (
    "map('row_count', 'int', 'size_mb', 'float', 'duration_s', 'float', 'null_count', 'int', 'lag_s', 'int', "
    "'source', 'url')"
)
TABLES = (
    "asset_events", "asset_metadata_points", "asset_metadata_hourly", "asset_metadata_daily", "asset_event_keys",
    "asset_partition_state", "asset_latest_state", "asset_report_state",
)  # fmt: skip


def _events_sql(db: str, start_us: int, first: int, count: int, assets: int) -> str:
    """Events ``first`` .. ``first + count`` of the hourly assets: event n is asset n % assets at hour n / assets."""
    return (
        f"INSERT INTO {db}.asset_events (event_id, event_type, asset_key, asset_key_path, partition, data_version, "
        "metadata, metadata_types, check_name, check_passed, check_severity, timestamp, source, producer_host, "
        "dedup_key, kafka_partition, kafka_offset) "
        "SELECT generateUUIDv7(number), type, key, splitByChar('/', key), part, hex(number), "
        f"if(type = 'check_evaluation', map('failed_rows', toString(number % 13)), {_METADATA}), "
        f"if(type = 'check_evaluation', map('failed_rows', 'int'), {_KINDS}), "
        "if(type = 'check_evaluation', 'row_count_positive', ''), "
        "if(type = 'check_evaluation', number % 10 != 0, NULL), if(type = 'check_evaluation', 'WARN', NULL), "
        f"fromUnixTimestamp64Micro(toInt64({start_us} + hour * {_HOUR_US} + i * 1000000), 'UTC'), 'sdk', 'bench', "
        "number, 0, number FROM ("
        f"SELECT number, number % {assets} AS i, intDiv(number, {assets}) AS hour, "
        "concat('bench/a', toString(i)) AS key, if(hour % 24 = 23, 'check_evaluation', 'materialization') AS type, "
        f"if(i % 2 = 1, toString(toDate(fromUnixTimestamp64Micro(toInt64({start_us} + hour * {_HOUR_US}), 'UTC'))), "
        "'') AS part, toInt64(1000000 + 400000 * sin(number / 50000) + number % 9973) AS rows "
        f"FROM numbers({first}, {count}))"
    )


def _dense_sql(db: str, start_us: int, first: int, count: int, offset: int) -> str:
    """Events ``first`` .. ``first + count`` of bench/dense, one a minute."""
    return (
        f"INSERT INTO {db}.asset_events (event_id, event_type, asset_key, asset_key_path, partition, data_version, "
        "metadata, metadata_types, timestamp, source, producer_host, dedup_key, kafka_partition, kafka_offset) "
        f"SELECT generateUUIDv7(number), 'materialization', key, splitByChar('/', key), '', '', {_METADATA}, {_KINDS}, "
        f"fromUnixTimestamp64Micro(toInt64({start_us} + number * 60000000), 'UTC'), 'sdk', 'bench', "
        f"number + {offset}, 1, number FROM (SELECT number, '{DENSE}' AS key, "
        "toInt64(1000000 + 400000 * sin(number / 50000) + number % 9973) AS rows "
        f"FROM numbers({first}, {count}))"
    )


def generate(warehouse: Warehouse, start_us: int, assets: int) -> tuple[int, float]:
    """Five years of both histories; (events, seconds)."""
    db = warehouse.database
    hourly, dense = assets * YEARS_DAYS * 24, YEARS_DAYS * 24 * 60
    started = time.perf_counter()
    for first in range(0, hourly, _CHUNK):
        warehouse.command(_events_sql(db, start_us, first, min(_CHUNK, hourly - first), assets))
    for first in range(0, dense, _CHUNK):
        warehouse.command(_dense_sql(db, start_us, first, min(_CHUNK, dense - first), hourly))
    return hourly + dense, time.perf_counter() - started


def insert_rates(directory: str, start_us: int, assets: int, rounds: int = 2) -> dict[str, list[float]]:
    """``INSERT ... SELECT`` of 1,000,000 hourly events (rows/s) into a fresh database with every view, and with the
    rollups' two views dropped, in turn: what the rollups cost a write."""
    rates: dict[str, list[float]] = {"with the rollups": [], "without them": []}
    for round_ in range(rounds):
        for n, label in enumerate(rates):
            warehouse = Warehouse(f"chdb://{directory}/clickhouse", f"rate{round_}{n}")
            warehouse.migrate()
            if label == "without them":
                for view in ("asset_metadata_hourly_mv", "asset_metadata_daily_mv"):
                    warehouse.command(f"DROP VIEW {warehouse.database}.{view}")
            elapsed, _ = timed(lambda w=warehouse: w.command(_events_sql(w.database, start_us, 0, 1_000_000, assets)))
            rates[label].append(1_000_000 / elapsed)
            warehouse.command(f"DROP DATABASE {warehouse.database}")
            warehouse.close()
    return rates


def ingest_rates(directory: str, events: int, rounds: int = 2) -> dict[str, list[float]]:
    """The ingest worker's end-to-end rate (``bench_ingest.run_ingest``) over ``events`` reference events, in a fresh
    database with every view, and with the rollups' two views dropped, in turn."""
    codec = Codec(timestamp_micros=True)
    payloads = [(codec.encode("materialization", reference_event(i)), f"warehouse/sales/table_{i % 500}".encode())
                for i in range(events)]  # fmt: skip
    rates: dict[str, list[float]] = {"with the rollups": [], "without them": []}
    with EmbeddedBroker(free_port()) as broker:
        for round_ in range(rounds):
            for n, label in enumerate(rates):
                settings = bench_settings(broker, directory, prefix="r")
                settings = settings.model_copy(update={"clickhouse_database": f"ingest{round_}{n}"})
                warehouse = Warehouse(settings.clickhouse_dsn, settings.clickhouse_database)
                warehouse.migrate()
                if label == "without them":
                    for view in ("asset_metadata_hourly_mv", "asset_metadata_daily_mv"):
                        warehouse.command(f"DROP VIEW {warehouse.database}.{view}")
                produce_all(Producer(settings.producer_config()), settings.topics.events, payloads)
                elapsed, _, _, _ = run_ingest(settings, broker, events)
                rates[label].append(events / elapsed)
                warehouse.command(f"DROP DATABASE {warehouse.database}")
                warehouse.close()
    return rates


def merged(warehouse: Warehouse) -> float:
    """Every table merged whole (as months of background merges leave it), once the TTL's mutations are done;
    seconds taken."""
    db = warehouse.database
    started = time.perf_counter()
    while warehouse.query(f"SELECT count() FROM system.mutations WHERE database = '{db}' AND NOT is_done").rows[0][0]:
        time.sleep(0.5)
    for table in TABLES:
        warehouse.command(f"OPTIMIZE TABLE {db}.{table} FINAL")
    return time.perf_counter() - started


def sizes(warehouse: Warehouse) -> dict[str, tuple[int, int]]:
    """Rows and bytes on disk of each table (active parts)."""
    rows = warehouse.query(
        f"SELECT table, sum(rows), sum(bytes_on_disk) FROM system.parts WHERE database = '{warehouse.database}' "
        "AND active GROUP BY table"
    ).rows
    return {str(table): (int(n), int(size)) for table, n, size in rows}


def reads(warehouse: Warehouse, raw: bool) -> list[tuple[str, Callable[[], Any]]]:
    """The plots, as the API runs them (read-only, with parameters); with ``raw``, also from the raw points."""
    query, db = warehouse.own_read_only_query, warehouse.database
    shown: list[tuple[str, Callable[[], Any]]] = []
    for key, what in ((DENSE, "one value a minute"), (HOURLY, "one value an hour")):
        shown += [
            (f"{key} ({what}): 5-year daily plot, asset_metadata_daily",
             lambda k=key: series(query, k, "row_count", SeriesQuery(grain="day"))),
            (f"{key}: the catalog's plot of all of it (grain auto)",
             lambda k=key: series(query, k, "row_count", SeriesQuery())),
            (f"{key}: one year by hour, asset_metadata_hourly",
             lambda k=key: series(query, k, "row_count", SeriesQuery.parse({"grain": "hour", "after": "2025-01-01",
                                                                             "before": "2026-01-01"}))),
        ]  # fmt: skip
        if raw:
            daily = (
                f"SELECT toStartOfDay(timestamp) AS day, count(), min(value), max(value), avg(value), "
                f"argMax(value, timestamp) FROM {db}.asset_metadata_points WHERE asset_key = '{key}' "
                "AND label = 'row_count' GROUP BY day ORDER BY day"
            )
            shown += [
                (f"{key}: raw points to 1,000 (largestTriangleThreeBuckets, grain raw)",
                 lambda k=key: series(query, k, "row_count", SeriesQuery(grain="raw"))),
                (f"{key}: raw limit, its points grouped by day (GROUP BY over asset_metadata_points)",
                 lambda sql=daily: warehouse.query(sql)),
            ]  # fmt: skip
    return shown


def report(title: str, events: int, found: dict[str, tuple[int, int]]) -> None:
    total = sum(size for _, size in found.values())
    print(f"{title}: {total / events:.1f} bytes on disk an event ({total / 1e6:,.0f} MB in all)")
    for table in TABLES:
        n, size = found.get(table, (0, 0))
        print(f"  {table:<26} {n:>14,} rows {size / 1e6:>10,.1f} MB {size / events:>8.2f} B/event")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assets", type=int, default=100, help="assets materialized once an hour (100)")
    parser.add_argument("--retention-days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=20, help="timed runs of each read (default 20)")
    parser.add_argument("--ingest-events", type=int, default=200_000, help="events an ingest run (200,000)")
    args = parser.parse_args()
    now_us = time.time_ns() // 1000 // _HOUR_US * _HOUR_US
    start_us = now_us - YEARS_DAYS * 24 * _HOUR_US

    with tempfile.TemporaryDirectory() as tmp:
        written = insert_rates(tmp, start_us, args.assets)
        ingested = ingest_rates(tmp, args.ingest_events)
        warehouse = Warehouse(f"chdb://{tmp}/clickhouse", "bench")
        warehouse.migrate()
        events, generated_s = generate(warehouse, start_us, args.assets)
        merged_s = merged(warehouse)
        before = sizes(warehouse)
        timings = [(name, percentiles(read, args.runs)) for name, read in reads(warehouse, raw=True)]
        retention_s, _ = timed(lambda: apply_retention(warehouse, args.retention_days))
        expired_s = merged(warehouse)
        after = sizes(warehouse)
        kept = [(name, percentiles(read, args.runs)) for name, read in reads(warehouse, raw=False)]
        auto = series(warehouse.own_read_only_query, DENSE, "row_count", SeriesQuery())
        warehouse.close()

    print(f"{events:,} events over 5 years: {args.assets} assets once an hour, {DENSE} once a minute; generated "
          f"through the views in {generated_s:.0f} s ({events / generated_s:,.0f} events/s), "
          f"merged in {merged_s:.0f} s")  # fmt: skip
    for label, rates in written.items():
        shown = ", ".join(f"{rate:,.0f}" for rate in rates)
        print(f"INSERT ... SELECT of 1,000,000 hourly events, {label:<20} {shown} rows/s")
    for label, rates in ingested.items():
        shown = ", ".join(f"{rate:,.0f}" for rate in rates)
        print(f"ingest worker end to end, {args.ingest_events:,} reference events, {label:<20} {shown} ev/s")
    report("everything kept", events, before)
    print(f"retention of {args.retention_days} days set in {retention_s:.1f} s, carried out and merged in "
          f"{expired_s:.0f} s")  # fmt: skip
    report(f"raw history of {args.retention_days} days", events, after)
    print(f"the catalog's whole-history plot of {DENSE} after: grain {auto['grain']}, {len(auto['points'])} points "
          f"for {auto['count']:,} values")  # fmt: skip
    print(f"{'read (p50 and p95 of ' + str(args.runs) + ' runs after one)':<92} {'p50 ms':>8} {'p95 ms':>8}")
    for title, rows in (("everything kept", timings), (f"raw history of {args.retention_days} days", kept)):
        print(f"{title}:")
        for name, (p50, p95) in rows:
            print(f"  {name:<90} {p50:>8.1f} {p95:>8.1f}")


if __name__ == "__main__":
    main()
