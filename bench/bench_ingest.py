"""End-to-end ingest: events on the topic -> rows in ClickHouse, and bytes on disk per event.

Prints figures beside the raw limits measured in the same run (raw fastavro decode of the same bytes,
raw consume of the same messages). Starts its own embedded broker and ClickHouse engine.

    python bench/bench_ingest.py [--events 200000]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import uuid

from confluent_kafka import Consumer, Producer

from assetpipe.broker import EmbeddedBroker, create_topics, free_port
from consumers.ingest import IngestWorker
from consumers.warehouse import Warehouse
from schemas.codec import Codec
from schemas.model import build_record
from schemas.settings import Settings


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
    args = parser.parse_args()
    n = args.events
    codec = Codec()
    payloads = [(codec.encode("materialization", reference_event(i)), f"warehouse/sales/table_{i % 500}".encode())
                for i in range(n)]  # fmt: skip
    started = time.perf_counter()
    for value, _ in payloads:
        codec.decode(value)
    decode_rate = n / (time.perf_counter() - started)

    with EmbeddedBroker(free_port()) as broker, tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            kafka_bootstrap_servers=broker.bootstrap_servers,
            clickhouse_url=f"chdb://{tmp}/clickhouse",
            clickhouse_database="bench",
            topic_prefix=f"b{uuid.uuid4().hex[:6]}_",
            kafka_session_timeout_ms=2000,
            kafka_heartbeat_interval_ms=300,
        )
        create_topics(settings)
        producer = Producer(settings.producer_config())
        for value, key in payloads:
            while True:
                try:
                    producer.produce(settings.topics.events, value, key)
                    break
                except BufferError:
                    producer.poll(0.05)
        producer.flush()

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
        worker = IngestWorker(settings, warehouse)
        stop = threading.Event()
        thread = threading.Thread(target=worker.run, args=(stop,))
        thread.start()
        while worker.status()["consumed"] == 0:
            time.sleep(0.01)
        start = time.perf_counter() - worker.metrics.last_batch_seconds
        while worker.status()["consumed"] < n:
            time.sleep(0.01)
        elapsed = time.perf_counter() - start
        stop.set()
        thread.join()

        db = settings.clickhouse_database
        rows = warehouse.query(f"SELECT count() FROM {db}.asset_events").rows[0][0]
        for table in ("asset_events", "asset_metadata_numeric", "asset_event_keys"):
            warehouse.command(f"OPTIMIZE TABLE {db}.{table} FINAL")
        sizes = dict(warehouse.query(
            f"SELECT table, sum(bytes_on_disk) FROM system.parts WHERE database = '{db}' AND active GROUP BY table"
        ).rows)  # fmt: skip
        warehouse.close()

    print(f"events                              {n:>12,}")
    print(f"raw fastavro decode, 1 core         {decode_rate:>12,.0f} ev/s")
    print(f"raw consume of the same messages    {consume_rate:>12,.0f} msg/s")
    print(f"end to end, topic -> ClickHouse     {n / elapsed:>12,.0f} ev/s   (target >= 100,000; rows: {rows:,})")
    total = 0
    for table, size in sorted(sizes.items()):
        total += size
        print(f"bytes on disk per event: {table:<24} {size / n:>8.1f}")
    print(f"bytes on disk per event: all tables             {total / n:>8.1f}   (target <= 100; Dagster ~4,500)")


if __name__ == "__main__":
    main()
