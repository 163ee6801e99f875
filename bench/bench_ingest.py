"""End-to-end ingest: events on the topic -> rows in ClickHouse, and bytes on disk per event.

Prints figures beside the raw limits measured in the same run: fastavro's schemaless decode of the
same bytes (the raw library limit) and the codec's (the compiled reader the worker runs), raw consume of
the same messages, and a column-oriented clickhouse-connect insert of the worker's rows into a plain
MergeTree copy of ``asset_events`` (no views, no dedup). Starts its own embedded broker and ClickHouse
engine.

``--stored N`` then measures the same ingest onto a history in the same run: onto none, onto 10 million
(when N is larger) and onto N stored events. Each round is a pair of fresh workers over the same
``--events`` new events, one onto the history and one onto an empty database of the same engine, run in
turns, so that the ratio of a pair holds whatever else loads the machine meanwhile. It prints the rates,
the worker's start (to its first batch committed: the group's join, the key filter's load and the first
batch), the filter's load and memory, and the process's memory as the worker started and at its peak
(the engine's included). The history is written in ClickHouse directly (random identities over 5,000
assets, Kafka partitions as librdkafka's partitioner gives them), ingested at ``--history-per-day``
events a day (default 137,000: 100 million over two years) up to yesterday, the newest first, so a
deeper history reaches further back, as years of use do. ``--window-days``
(``ASSETPIPE_DEDUP_WINDOW_DAYS``), ``--key-filter-bits`` (0: no filter, every key looked up in the
window) and ``--key-filter-max-mb`` override the settings.

    python bench/bench_ingest.py [--events 200000] [--consumers 1] [--stored 0] [--rounds 1]
        [--history-per-day 137000] [--window-days 30] [--key-filter-bits 16] [--key-filter-max-mb 256]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import os
import statistics
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
from benchstack import bench_settings, broker_cpu_seconds, produce_all
from confluent_kafka import Consumer, Producer

from assetpipe.broker import EmbeddedBroker, create_topics, free_port
from assetpipe.consumers.ingest import sql as ingest_sql
from assetpipe.consumers.ingest.rows import EVENT_COLUMNS, EventColumns
from assetpipe.consumers.ingest.worker import IngestWorker
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.schemas.codec import Codec
from assetpipe.schemas.model import build_record
from assetpipe.schemas.settings import Settings

TEN_MILLION = 10_000_000


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


def reference_payloads(codec: Codec, first: int, n: int) -> list[tuple[bytes, bytes]]:
    """Events ``first`` .. ``first + n - 1`` encoded, keyed by asset key as the SDK keys them."""
    return [
        (codec.encode("materialization", reference_event(i)), f"warehouse/sales/table_{i % 500}".encode())
        for i in range(first, first + n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--consumers", type=int, default=1, help="consumers of the ingest worker (default 1)")
    parser.add_argument("--stored", type=int, default=0, help="events of history to ingest onto (default 0)")
    parser.add_argument("--rounds", type=int, default=1, help="pairs of ingests at each depth of history (default 1)")
    parser.add_argument("--history-per-day", type=int, default=137_000, help="events the history ingested a day")
    parser.add_argument("--window-days", type=int, default=None, help="ASSETPIPE_DEDUP_WINDOW_DAYS")
    parser.add_argument("--key-filter-bits", type=int, default=None, help="ASSETPIPE_INGEST_KEY_FILTER_BITS")
    parser.add_argument("--key-filter-max-mb", type=int, default=None, help="ASSETPIPE_INGEST_KEY_FILTER_MAX_MB")
    args = parser.parse_args()
    n = args.events
    codec = Codec(timestamp_micros=True)
    payloads = reference_payloads(codec, 0, n)
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
    overrides = {
        name: value
        for name, value in (
            ("dedup_window_days", args.window_days),
            ("ingest_key_filter_bits", args.key_filter_bits),
            ("ingest_key_filter_max_mb", args.key_filter_max_mb),
        )
        if value is not None
    }

    with EmbeddedBroker(free_port()) as broker, tempfile.TemporaryDirectory() as tmp:
        settings = bench_settings(broker, tmp, **overrides)
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
        # The worker's process holds no such heap: millions of objects here would only make Python's
        # collector slower while the worker runs.
        del payloads, rows
        gc.collect()
        run = ingest_run(settings, broker, n, args.consumers)

        stored = warehouse.query(f"SELECT count() FROM {db}.asset_events").rows[0][0]
        sizes: dict[str, int] = {}
        if not args.stored:
            for table in ("asset_events", "asset_event_keys"):
                warehouse.command(f"OPTIMIZE TABLE {db}.{table} FINAL")
            sizes = dict(warehouse.query(
                f"SELECT table, sum(bytes_on_disk) FROM system.parts WHERE database = '{db}' AND active GROUP BY table"
            ).rows)  # fmt: skip

        print(f"events                              {n:>12,}")
        print(f"raw fastavro decode, 1 core         {fastavro_rate:>12,.0f} ev/s")
        print(f"Codec.decode (compiled), 1 core     {decode_rate:>12,.0f} ev/s")
        print(f"raw consume of the same messages    {consume_rate:>12,.0f} msg/s")
        print(f"raw insert of the rows, no views    {insert_rate:>12,.0f} rows/s")
        print_run(run, settings, stored, sizes)
        if args.stored:
            onto_history(args, broker, tmp, overrides, warehouse, codec, settings.topic_partitions)
        warehouse.close()


def print_run(run: IngestRun, settings: Settings, stored: int, sizes: dict[str, int]) -> None:
    n = run.events
    print(f"end to end, topic -> ClickHouse     {run.rate:>12,.0f} ev/s   (target >= 100,000; rows: {stored:,})")
    print(f"dedup: key filter {settings.ingest_key_filter_bits} bits a key; {run.looked_up:,} of {n:,} keys looked up")
    per_event = (run.worker_cpu + run.broker_cpu) / n
    cores = os.cpu_count() or 1
    print(
        f"CPU per event: worker process {run.worker_cpu / n * 1e6:.1f} us (Python, Kafka client, ClickHouse engine), "
        f"broker {run.broker_cpu / n * 1e6:.1f} us: {cores} cores allow at most {cores / per_event:,.0f} ev/s"
    )
    total = 0
    for table, size in sorted(sizes.items()):
        total += size
        print(f"bytes on disk per event: {table:<24} {size / n:>8.1f}")
    if sizes:
        print(f"bytes on disk per event: all tables             {total / n:>8.1f}   (target <= 100; Dagster ~4,500)")


def onto_history(
    args: argparse.Namespace, broker: EmbeddedBroker, directory: str, overrides: dict[str, int], warehouse: Warehouse,
    codec: Codec, partitions: int,
) -> None:  # fmt: skip
    """At each depth of history, none, 10 million (when ``args.stored`` is larger) and ``args.stored``: ``args.rounds``
    pairs of ingests of the same ``args.events`` new events, one onto the history and one onto a database without
    any (``<database>_none``, in the same engine), in turns, so the two rates of a pair see the same machine; then
    the figures side by side."""
    n, db = args.events, warehouse.database
    empty = Warehouse(warehouse.dsn, f"{db}_none")
    empty.migrate()
    depths = sorted({0, min(TEN_MILLION, args.stored), args.stored})
    runs: dict[int, list[tuple[IngestRun, IngestRun]]] = {depth: [] for depth in depths}
    written, offset = 0, n
    for depth in depths:
        if depth > written:
            write_history(warehouse, written, depth - written, partitions, args.history_per_day)
            written = depth
        for round_ in range(args.rounds):
            onto = bench_settings(broker, directory, **overrides)
            none = onto.model_copy(
                update={"clickhouse_database": empty.database, "topic_prefix": f"{onto.topic_prefix}n"}
            )
            create_topics(none)
            payloads = reference_payloads(codec, offset, n)
            offset += n
            producer = Producer(onto.producer_config())
            for target in (onto, none):
                produce_all(producer, target.topics.events, payloads)
            producer.close()
            del payloads
            gc.collect()
            order = (onto, none) if round_ % 2 else (none, onto)  # in turns: a drifting load favours neither
            done = {target.clickhouse_database: ingest_run(target, broker, n, args.consumers) for target in order}
            runs[depth].append((done[db], done[empty.database]))
        window = onto.dedup_window_days
        in_window = warehouse.query(f"SELECT count() FROM {db}.asset_event_keys WHERE {ingest_sql.in_window(window)}")
        print(
            f"history {depth:>12,} ({in_window.rows[0][0]:,} keys in the {window}-day window now): "
            + ", ".join(f"{h.rate:,.0f} ev/s onto it, {e.rate:,.0f} onto none" for h, e in runs[depth])
        )
    empty.close()
    print(
        f"\nonto history, {n:,} new events a round, {args.rounds} round(s) a depth, "
        f"window {onto.dedup_window_days} days, key filter {onto.ingest_key_filter_bits} bits a key "
        f"within {onto.ingest_key_filter_max_mb} MB; "
        "figures of the rounds onto the history (medians; start, load, memory: the largest)"
    )
    print(f"{'stored':>12} {'ev/s':>8} {'none':>8} {'of none':>8} {'start s':>8} {'load s':>7} {'filter MB':>9} "
          f"{'RSS MB, peak':>15} {'looked up':>10} {'CPU us/ev':>9}  ratio of each pair")  # fmt: skip
    for depth in depths:
        onto_runs = [h for h, _ in runs[depth]]
        ratios = [h.rate / e.rate for h, e in runs[depth]]
        print(
            f"{depth:>12,} {statistics.median(r.rate for r in onto_runs):>8,.0f} "
            f"{statistics.median(e.rate for _, e in runs[depth]):>8,.0f} {statistics.median(ratios):>8.0%} "
            f"{max(r.start_seconds for r in onto_runs):>8.2f} {max(r.load_seconds for r in onto_runs):>7.2f} "
            f"{max(r.filter_bytes for r in onto_runs) / 2**20:>9.1f} "
            f"{max(r.rss for r in onto_runs) / 2**20:>7,.0f}, {max(r.peak_rss for r in onto_runs) / 2**20:>5,.0f} "
            f"{max(r.looked_up for r in onto_runs):>10,} "
            f"{statistics.median(r.worker_cpu for r in onto_runs) / n * 1e6:>9.1f}  "
            + ", ".join(f"{r:.0%}" for r in ratios)
        )


@dataclass(frozen=True, slots=True)
class IngestRun:
    """One worker over ``events`` events: seconds from the start of its first batch to the last event, from its
    start to its first batch committed, CPU seconds of this process and of the broker, and what it reported."""

    events: int
    elapsed: float
    start_seconds: float
    worker_cpu: float
    broker_cpu: float
    rss: int  # bytes, of this process (the engine's included) when the worker started
    peak_rss: int  # bytes, the largest while it ran
    status: dict[str, Any]
    worker: IngestWorker

    @property
    def rate(self) -> float:
        return self.events / self.elapsed

    @property
    def looked_up(self) -> int:
        return int(self.status["looked_up"])

    @property
    def load_seconds(self) -> float:
        return float(self.status["key_filter_load_seconds"])

    @property
    def filter_bytes(self) -> int:
        return int(self.status["key_filter_bytes"])


def run_ingest(
    settings: Settings, broker: EmbeddedBroker, n: int, consumers: int = 1
) -> tuple[float, IngestWorker, float, float]:
    """``ingest_run``'s seconds, worker and CPU seconds of this process and of the broker."""
    run = ingest_run(settings, broker, n, consumers)
    return run.elapsed, run.worker, run.worker_cpu, run.broker_cpu


def ingest_run(settings: Settings, broker: EmbeddedBroker, n: int, consumers: int = 1) -> IngestRun:
    """An ingest worker (``consumers`` consumers, each with its own ClickHouse session) over the ``n`` events on
    the topic, from its start to the last event."""
    worker = IngestWorker(settings, consumers=consumers)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    rss = reset_peak_rss()
    cpu_started, broker_started = time.process_time(), broker_cpu_seconds(broker)
    launched = time.perf_counter()
    thread.start()
    while worker.status()["consumed"] == 0:
        time.sleep(0.01)
    start_seconds = time.perf_counter() - launched
    start = time.perf_counter() - worker.metrics.last_batch_seconds
    while worker.status()["consumed"] < n:
        time.sleep(0.01)
    elapsed = time.perf_counter() - start
    worker_cpu, broker_cpu = time.process_time() - cpu_started, broker_cpu_seconds(broker) - broker_started
    peak = peak_rss()
    stop.set()
    thread.join()
    return IngestRun(n, elapsed, start_seconds, worker_cpu, broker_cpu, rss, peak, worker.status(), worker)


def reset_peak_rss() -> int:
    """Start this process's peak resident memory over from its current size, which it returns (Linux; elsewhere
    nothing is reset and 0 returned)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return _memory("VmRSS:")


def peak_rss() -> int:
    """This process's peak resident memory since ``reset_peak_rss``, bytes (0 where unknown)."""
    return _memory("VmHWM:")


def _memory(field: str) -> int:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith(field)), 0)


def write_history(warehouse: Warehouse, start: int, count: int, partitions: int, per_day: int) -> None:
    """Events ``start`` .. ``start + count - 1`` of a history ingested ``per_day`` a day up to yesterday, event
    ``i`` ``i / per_day`` days before, through the partitions their asset keys map to; then merged."""
    db, started = warehouse.database, time.perf_counter()
    for first in range(start, start + count, 5_000_000):
        warehouse.command(
            f"INSERT INTO {db}.asset_events (event_id, event_type, asset_key, asset_key_path, partition, "
            "data_version, dedup_key, kafka_partition, kafka_offset, timestamp, ingested_at) "
            "SELECT generateUUIDv4(), 'materialization', concat('history/table_', toString(number % 5000)) AS a, "
            "splitByChar('/', a), toString(number % 365), hex(number), sipHash64(number, 'history'), "
            f"CRC32(a) % {partitions}, number, ingested - toIntervalSecond(number % 3600), "
            f"toStartOfDay(now64(6)) - toIntervalMicrosecond(intDiv((number + 1) * 86400000000, {per_day})) "
            f"AS ingested FROM numbers({first}, {min(5_000_000, start + count - first)})",
            settings={"throw_on_max_partitions_per_insert_block": 0},
        )
    for table in ("asset_events", "asset_event_keys"):
        warehouse.command(f"OPTIMIZE TABLE {db}.{table} FINAL", settings={"optimize_skip_merged_partitions": 1})
    print(f"history: {count:,} events written and merged in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
