"""End-to-end ingest: events on the topic -> rows in ClickHouse, and bytes on disk per event.

Prints figures beside the raw limits measured in the same run: fastavro's schemaless decode of the
same bytes (the raw library limit) and the codec's (the compiled reader the worker runs), raw consume of
the same messages, and a column-oriented clickhouse-connect insert of the worker's rows into a plain
MergeTree copy of ``asset_events`` (no views, no dedup). Starts its own embedded broker and ClickHouse
engine. ``--stored N`` first writes N events of history (random identities over 5,000 assets), so the
run shows what the dedup lookup costs against a large table, with the key filter
(``--key-filter-bits``, default the setting's; 0 turns it off and every key is looked up).

    python bench/bench_ingest.py [--events 200000] [--consumers 1] [--stored 0] [--key-filter-bits 16]
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import tempfile
import threading
import time
import uuid

import fastavro
from benchstack import bench_settings, broker_cpu_seconds, produce_all
from confluent_kafka import Consumer, Producer

from assetpipe.broker import EmbeddedBroker, free_port
from assetpipe.consumers.ingest.rows import EVENT_COLUMNS, EventColumns
from assetpipe.consumers.ingest.worker import IngestWorker
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.schemas.codec import Codec
from assetpipe.schemas.model import build_record
from assetpipe.schemas.settings import Settings


def reference_event(i: int) -> dict[str, object]:
    """5 metadata entries, a partition, a data version."""
    return build_record(
        "materialization",
        ["warehouse", "sales", f"table_{i % 500}"],
        source="sdk",
        host="bench-host",
        partition=f"2024-{i % 12 + 1:02d}-{i % 28 + 1:02d}",
        data_version=f"{i:012x}",
        metadata={"row_count": i * 13, "size_mb": i / 7, "owner": "team-sales", "fresh": i % 2 == 0,
                  "dashboard": f"https://bi.example.com/d/{i % 500}"},
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--consumers", type=int, default=1, help="consumers of the ingest worker (default 1)")
    parser.add_argument("--stored", type=int, default=0, help="events of history written first (default 0)")
    parser.add_argument("--key-filter-bits", type=int, default=None, help="ASSETPIPE_INGEST_KEY_FILTER_BITS")
    args = parser.parse_args()
    n = args.events
    codec = Codec(timestamp_micros=True)
    payloads = [(codec.encode("materialization", reference_event(i)), f"warehouse/sales/table_{i % 500}".encode())
                for i in range(n)]  # fmt: skip
    schema = codec.schemas.current["materialization"]
    started = time.perf_counter()
    for value, _ in payloads:
        fastavro.schemaless_reader(io.BytesIO(value[10:]), schema, None)
    fastavro_rate = n / (time.perf_counter() - started)
    decode = codec.decode
    started = time.perf_counter()
    for value, _ in payloads:
        decode(value)
    decode_rate = n / (time.perf_counter() - started)
    rows = EventColumns()
    for i, (value, _) in enumerate(payloads):
        record = decode(value)[1]
        rows.append("materialization", record, i, i % 4, i)

    with EmbeddedBroker(free_port()) as broker, tempfile.TemporaryDirectory() as tmp:
        filter_bits = {} if args.key_filter_bits is None else {"ingest_key_filter_bits": args.key_filter_bits}
        settings = bench_settings(broker, tmp, **filter_bits)
        producer = Producer(settings.producer_config())
        produce_all(producer, settings.topics.events, payloads)
        producer.close()

        consumer = Consumer(settings.consumer_config(f"raw-{uuid.uuid4().hex[:6]}"))
        consumer.subscribe([settings.topics.events])
        got, first = 0, None
        while got < n:
            batch = consumer.consume(10_000, 1.0)
            if batch and first is None:
                first = time.perf_counter()
            got += sum(1 for m in batch if m.error() is None)
        consume_rate = n / (time.perf_counter() - (first or 0))
        consumer.close()

        warehouse = Warehouse(settings.clickhouse_dsn, settings.clickhouse_database)
        warehouse.migrate()
        db = settings.clickhouse_database
        warehouse.command(f"CREATE TABLE {db}.raw_insert AS {db}.asset_events ENGINE = MergeTree ORDER BY tuple()")
        started = time.perf_counter()
        for start in range(0, n, 50_000):
            warehouse.insert("raw_insert", [c[start : start + 50_000] for c in rows.columns], EVENT_COLUMNS)
        insert_rate = n / (time.perf_counter() - started)
        warehouse.command(f"DROP TABLE {db}.raw_insert")
        if args.stored:
            write_history(warehouse, args.stored, settings.topic_partitions)
        # The worker's process holds no such heap: millions of objects here would only make Python's
        # collector slower while the worker runs.
        del payloads, rows
        gc.collect()
        elapsed, worker, worker_cpu, broker_cpu = run_ingest(settings, broker, n, args.consumers)

        stored = warehouse.query(f"SELECT count() FROM {db}.asset_events").rows[0][0] - args.stored
        for table in ("asset_events", "asset_event_keys"):
            warehouse.command(f"OPTIMIZE TABLE {db}.{table} FINAL")
        sizes = dict(warehouse.query(
            f"SELECT table, sum(bytes_on_disk) FROM system.parts WHERE database = '{db}' AND active GROUP BY table"
        ).rows)  # fmt: skip
        warehouse.close()

    print(f"events                              {n:>12,}")
    print(f"raw fastavro decode, 1 core         {fastavro_rate:>12,.0f} ev/s")
    print(f"Codec.decode (compiled), 1 core     {decode_rate:>12,.0f} ev/s")
    print(f"raw consume of the same messages    {consume_rate:>12,.0f} msg/s")
    print(f"raw insert of the rows, no views    {insert_rate:>12,.0f} rows/s")
    print(f"end to end, topic -> ClickHouse     {n / elapsed:>12,.0f} ev/s   (target >= 100,000; rows: {stored:,})")
    status = worker.status()
    print(
        f"dedup: {args.stored:,} events stored before; key filter {settings.ingest_key_filter_bits} bits a key; "
        f"{status['looked_up']:,} of {n:,} keys looked up in asset_event_keys"
    )
    per_event = (worker_cpu + broker_cpu) / n
    cores = os.cpu_count() or 1
    print(
        f"CPU per event: worker process {worker_cpu / n * 1e6:.1f} us (Python, Kafka client, ClickHouse engine), "
        f"broker {broker_cpu / n * 1e6:.1f} us: {cores} cores allow at most {cores / per_event:,.0f} ev/s"
    )
    if args.stored:
        return  # the history's rows are not the reference event's: bytes per event would mislead
    total = 0
    for table, size in sorted(sizes.items()):
        total += size
        print(f"bytes on disk per event: {table:<24} {size / n:>8.1f}")
    print(f"bytes on disk per event: all tables             {total / n:>8.1f}   (target <= 100; Dagster ~4,500)")


def run_ingest(
    settings: Settings, broker: EmbeddedBroker, n: int, consumers: int = 1
) -> tuple[float, IngestWorker, float, float]:
    """An ingest worker (``consumers`` consumers, each with its own ClickHouse session) over the ``n`` events on
    the topic: seconds from its first batch to the last event, the worker, and CPU seconds of this process
    and of the broker meanwhile."""
    worker = IngestWorker(settings, consumers=consumers)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    cpu_started, broker_started = time.process_time(), broker_cpu_seconds(broker)
    thread.start()
    while worker.status()["consumed"] == 0:
        time.sleep(0.01)
    start = time.perf_counter() - worker.metrics.last_batch_seconds
    while worker.status()["consumed"] < n:
        time.sleep(0.01)
    elapsed = time.perf_counter() - start
    worker_cpu, broker_cpu = time.process_time() - cpu_started, broker_cpu_seconds(broker) - broker_started
    stop.set()
    thread.join()
    return elapsed, worker, worker_cpu, broker_cpu


def write_history(warehouse: Warehouse, count: int, partitions: int) -> None:
    """``count`` events already ingested, through the partitions their asset keys map to, merged."""
    db, started = warehouse.database, time.perf_counter()
    for start in range(0, count, 5_000_000):
        warehouse.command(
            f"INSERT INTO {db}.asset_events (event_id, event_type, asset_key, asset_key_path, partition, "
            "data_version, dedup_key, kafka_partition, kafka_offset, timestamp) "
            "SELECT generateUUIDv4(), 'materialization', concat('history/table_', toString(number % 5000)) AS a, "
            f"splitByChar('/', a), toString(number % 365), hex(number), sipHash64(number, 'history'), "
            f"CRC32(a) % {partitions}, number, now64(6) - number "
            f"FROM numbers({start}, {min(5_000_000, count - start)})"
        )
    for table in ("asset_events", "asset_event_keys"):
        warehouse.command(f"OPTIMIZE TABLE {db}.{table} FINAL")
    print(f"history: {count:,} events written and merged in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
