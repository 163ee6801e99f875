"""Sensors: latency from a materialization accepted by the ingest worker to its RunRequest on
``run_requests`` (p50, p99), and sensor evaluations per second with 100 sensors watching 10,000 assets.

Latency: events are reported one at a time through the SDK; a consumer of ``asset_events.accepted`` and
``run_requests`` sees both messages. "published" is the request's Kafka timestamp minus the accepted
event's (both stamped when produced, on this machine's clock); "received" is when the consumer got the
request. Throughput: events are put straight onto the accepted stream, and the sensor worker's own count
of evaluations is timed. Starts its own embedded broker and ClickHouse engine.

    python bench/bench_sensors.py [--latency-events 300] [--events 50000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from benchstack import bench_settings, produce_all
from confluent_kafka import Consumer, Producer

from assetpipe import Reporter
from assetpipe.broker import EmbeddedBroker, free_port
from assetpipe.consumers.ingest.worker import IngestWorker
from assetpipe.consumers.sensors.worker import SensorWorker
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.definitions.loader import load_definitions
from assetpipe.schemas.codec import Codec
from assetpipe.schemas.model import build_record
from assetpipe.schemas.settings import Settings

DEFS = """
from assetpipe import Definitions, RunRequest, SkipReason, asset_sensor, job, multi_asset_sensor


@job
def downstream(context):
    pass


@asset_sensor("bench/latency", job=downstream)
def latency_sensor(context, event):
    return RunRequest(run_key=context.cursor)


def watching(i):
    @multi_asset_sensor([f"bench/a{i * 100 + j}" for j in range(100)], job=downstream, name=f"multi_{i}")
    def sensor(context):
        latest = context.latest_materialization_records_by_key()
        if all(latest.values()):
            context.advance_all_cursors()
            return RunRequest()
        return SkipReason("waiting for all 100 assets")

    return sensor


def fan_out(i):
    @asset_sensor("bench/fan_out", job=downstream, name=f"fan_out_{i}")
    def sensor(context, event):
        return RunRequest(run_key=context.cursor) if event.data_version.endswith("00") else None

    return sensor


defs = Definitions(sensors=[latency_sensor, *(watching(i) for i in range(100)), *(fan_out(i) for i in range(100))])
"""


class Watcher:
    """Accepted events and run requests as a consumer sees them."""

    def __init__(self, settings: Settings) -> None:
        conf = {**settings.consumer_config(f"watch-{uuid.uuid4().hex[:6]}"), "fetch.wait.max.ms": 5}
        self._consumer = Consumer(conf)
        self._consumer.subscribe([settings.topics.accepted, settings.topics.run_requests])
        self._topic = settings.topics.run_requests
        self._codec = Codec()
        self.accepted: dict[str, float] = {}  # event id -> produced at (s)
        self.requested: dict[str, tuple[float, float]] = {}  # trigger event id -> (produced at, received at)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            message = self._consumer.poll(0.01)
            if message is None or message.error() is not None:
                continue
            received = time.time()
            _, record = self._codec.decode(message.value() or b"")
            produced = message.timestamp()[1] / 1000
            if message.topic() == self._topic:
                self.requested[record["trigger"]["event_id"]] = (produced, received)
            else:
                self.accepted[record["event_id"]] = produced
        self._consumer.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def wait_for(predicate: object, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.002)


def throughput(worker: SensorWorker, producer: Producer, settings: Settings, records: list[dict[str, Any]]) -> float:
    """Evaluations per second, from putting ``records`` on the accepted stream until all are evaluated."""
    codec = Codec()
    messages = [(codec.encode("materialization", r), "/".join(r["asset_key"]).encode()) for r in records]
    metrics = worker.handler.metrics
    before = metrics.evaluations
    target = before + len(records) * (100 if records[0]["asset_key"] == ["bench", "fan_out"] else 1)
    start = time.perf_counter()
    produce_all(producer, settings.topics.accepted, messages)
    wait_for(lambda: metrics.evaluations >= target, 600)
    return (metrics.evaluations - before) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-events", type=int, default=300)
    parser.add_argument("--events", type=int, default=50_000)
    args = parser.parse_args()

    with EmbeddedBroker(free_port()) as broker, tempfile.TemporaryDirectory() as tmp:
        settings = bench_settings(broker, tmp, ingest_batch_max_seconds=0.02, code_location="bench")
        (Path(tmp) / "bench_defs.py").write_text(DEFS)
        defs = load_definitions(Path(tmp) / "bench_defs.py")
        warehouse = Warehouse(settings.clickhouse_dsn, settings.clickhouse_database)
        warehouse.migrate()
        ingest, sensors = IngestWorker(settings, warehouse), SensorWorker(settings, defs, warehouse)
        stop = threading.Event()
        threads = [threading.Thread(target=w.run, args=(stop,)) for w in (ingest, sensors)]
        for thread in threads:
            thread.start()
        watcher = Watcher(settings)
        try:
            published, received = [], []
            with Reporter(settings=settings) as reporter:
                for i in range(args.latency_events + 5):  # the first few warm up: group joins, first queries
                    event_id = reporter.report_materialization("bench/latency", data_version=f"v{i}").event_id
                    wait_for(lambda event_id=event_id: event_id in watcher.requested and event_id in watcher.accepted)
                    if i >= 5:
                        produced, got = watcher.requested[event_id]
                        published.append((produced - watcher.accepted[event_id]) * 1000)
                        received.append((got - watcher.accepted[event_id]) * 1000)
                    time.sleep(0.01)

            producer = Producer(settings.producer_config())
            multi = [build_record("materialization", ["bench", f"a{i % 10_000}"], source="sdk", host="bench",
                                  data_version=f"m{i}") for i in range(args.events)]  # fmt: skip
            multi_rate = throughput(sensors, producer, settings, multi)
            fan = [build_record("materialization", ["bench", "fan_out"], source="sdk", host="bench",
                                data_version=f"{i:06d}") for i in range(args.events // 100)]  # fmt: skip
            fan_rate = throughput(sensors, producer, settings, fan)
            producer.close()
            ticks = warehouse.query(f"SELECT count() FROM {settings.clickhouse_database}.sensor_ticks").rows[0][0]
        finally:
            watcher.stop.set()
            watcher.thread.join()
            stop.set()
            for thread in threads:
                thread.join()
            warehouse.close()

    n = len(published)
    print(f"latency, accepted -> RunRequest on run_requests ({n} events, one at a time)")
    print(f"  published   p50 {statistics.median(published):7.1f} ms   p99 {percentile(published, 0.99):7.1f} ms"
          f"   max {max(published):7.1f} ms   (target p50 <= 250 ms, p99 <= 1,000 ms)")  # fmt: skip
    print(f"  received    p50 {statistics.median(received):7.1f} ms   p99 {percentile(received, 0.99):7.1f} ms"
          f"   max {max(received):7.1f} ms   (as a consumer of run_requests sees it)")  # fmt: skip
    print(f"evaluations, 100 multi-asset sensors x 100 assets = 10,000 assets, {args.events:,} events")
    print(f"  {multi_rate:>10,.0f} evaluations/s  (one sensor per event)")
    print(f"evaluations, 100 asset sensors on one asset, {args.events // 100:,} events")
    print(f"  {fan_rate:>10,.0f} evaluations/s  (100 sensors per event, 1% request a run)")
    print(f"ticks recorded: {ticks:,}")


if __name__ == "__main__":
    main()
