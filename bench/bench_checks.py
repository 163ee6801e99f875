"""The check worker at scale: 100,000 assets with freshness policies, and the accepted stream flowing through
it (1,000,000 materializations by default, spread over the assets), consumed from the embedded broker as a
worker replica consumes it. Prints the rate, the worker's CPU per event and its memory with the checks and
their clocks held, beside the raw limits of the same run: consuming the same messages with no checks at all
(the worker decodes only the events of assets it checks), and the process's memory before the checks were
built.

Then the latency of lateness: ``--deadlines`` assets (1,000 by default) with 2-second windows, materialized
once each with their deadlines staggered over ``--spread`` seconds; for each, the time from its deadline to
its FAIL evaluation stored in ClickHouse and to its alert received by a webhook on loopback (the ingest and
alert workers running beside), p50 and p99.

    python bench/bench_checks.py [--assets 100000] [--events 1000000] [--deadlines 1000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import tempfile
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from benchstack import bench_settings, produce_all
from confluent_kafka import Producer

from assetpipe.broker import EmbeddedBroker, free_port
from assetpipe.consumers.alerts import AlertWorker
from assetpipe.consumers.checks.evaluator import TimedCheck
from assetpipe.consumers.checks.sources import policy_check
from assetpipe.consumers.checks.worker import CheckWorker
from assetpipe.consumers.ingest.worker import IngestWorker
from assetpipe.consumers.registry.monitors import CurrentPolicy
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.definitions.alerts import AlertPolicy, WebhookChannel
from assetpipe.definitions.freshness import FreshnessPolicy
from assetpipe.schemas.codec import Codec
from assetpipe.schemas.model import build_record, now_us
from assetpipe.schemas.settings import Settings


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def checks(keys: list[str], window: timedelta) -> list[TimedCheck]:
    policy = FreshnessPolicy.time_window(fail_window=window)
    updated = frozenset({"materialization", "observation"})
    return [policy_check(CurrentPolicy(key, policy, ""), updated) for key in keys]


def accepted_messages(keys: list[str], events: int) -> list[tuple[bytes, bytes]]:
    codec = Codec(timestamp_micros=True)
    out = []
    for i in range(events):
        key = keys[i % len(keys)]
        record = build_record("materialization", key.split("/"), source="sdk", host="bench",
                              metadata={"dagster/row_count": i})  # fmt: skip
        out.append((codec.encode("materialization", record), key.encode()))
    return out


def consume(settings: Settings, warehouse: Warehouse, source_checks: list[TimedCheck], events: int) -> dict[str, float]:
    """Run a check worker over the accepted topic until it consumed ``events``; rate, CPU per event, memory."""
    worker = CheckWorker(settings, lambda: (source_checks, []), warehouse)
    stop = threading.Event()
    before_rss, before_cpu = rss_mb(), cpu_s()
    thread = threading.Thread(target=worker.run, args=(stop,))
    started = time.monotonic()
    thread.start()
    first = None
    while worker.loop.metrics.consumed < events:
        if first is None and worker.loop.metrics.consumed:
            first = time.monotonic()
        time.sleep(0.02)
    elapsed = time.monotonic() - (first or started)
    used_cpu = cpu_s() - before_cpu
    figures = {
        "rate": events / elapsed,
        "cpu_us": used_cpu / events * 1e6,
        "rss_mb": rss_mb(),
        "rss_before_mb": before_rss,
        "evaluations": float(worker.handler.metrics.evaluations),
    }
    stop.set()
    thread.join(60)
    return figures


class Hooks:
    """A webhook receiver on loopback, in a process of its own as a receiver is: when each alert about each
    asset arrived (wall clock, microseconds), written to a file a line each."""

    def __init__(self, directory: str) -> None:
        self._path = Path(directory) / "arrivals.txt"
        self._path.write_text("")
        ready: multiprocessing.Queue[int] = multiprocessing.Queue()
        self._process = multiprocessing.Process(target=_serve, args=(str(self._path), ready), daemon=True)
        self._process.start()
        self.url = f"http://127.0.0.1:{ready.get(timeout=30)}/alerts"

    @property
    def arrived(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for line in self._path.read_text().splitlines():
            key, _, at = line.rpartition(" ")
            if key and at.isdigit():
                found.setdefault(key, int(at))
        return found

    def close(self) -> None:
        self._process.terminate()
        self._process.join(10)


def _serve(path: str, ready: multiprocessing.Queue[int]) -> None:
    arrivals = open(path, "a", buffering=1)  # noqa: SIM115 - open while the process serves

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            at = now_us()
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            if body.get("transition") == "triggered":
                arrivals.write(f"{body.get('asset_key')} {at}\n")
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 128  # the standard library's 5 drops connections a sender opens at once

    server = Server(("127.0.0.1", 0), Handler)
    ready.put(server.server_address[1])
    server.serve_forever()


def lateness(
    broker: EmbeddedBroker, directory: str, assets: int, spread_s: float, batch_s: float
) -> tuple[list[float], list[float]]:
    """Seconds from each deadline to its FAIL evaluation stored, and to its alert received by a webhook."""
    settings = bench_settings(broker, directory, prefix="l", check_group_id="bench-late", alert_group_id="bench-alerts",
                              ingest_batch_max_seconds=batch_s)  # fmt: skip
    warehouse = Warehouse(settings.clickhouse_dsn, settings.clickhouse_database)
    warehouse.migrate()
    keys = [f"late/a{i}" for i in range(assets)]
    hooks = Hooks(directory)
    worker = CheckWorker(settings, lambda: (checks(keys, timedelta(seconds=2)), []), warehouse)
    ingest = IngestWorker(settings, warehouse)
    alerts = AlertWorker(settings, [AlertPolicy("late", [WebhookChannel(hooks.url)], prefixes=["late"])], warehouse)
    stop = threading.Event()
    threads = [threading.Thread(target=w.run, args=(stop,)) for w in (worker, ingest, alerts)]
    for thread in threads:
        thread.start()
    while not worker.evaluator.owns(keys[0]) or alerts.loop.metrics.state != "running":
        time.sleep(0.1)
    time.sleep(1)
    codec = Codec(timestamp_micros=True)
    producer = Producer(settings.producer_config())
    started = now_us()
    materialized = {}
    for i, key in enumerate(keys):  # deadlines staggered: each asset materialized at its own moment
        at = started + int(i * spread_s * 1e6 / assets)
        while now_us() < at:
            time.sleep(0.0005)
        record = build_record("materialization", key.split("/"), source="sdk", host="bench")
        materialized[key] = record["timestamp"]
        producer.produce(settings.topics.events, codec.encode("materialization", record), key.encode())
        producer.poll(0)
    producer.flush()
    query = (
        f"SELECT asset_key, toUnixTimestamp64Micro(ingested_at) FROM {warehouse.database}.asset_events "
        "WHERE event_type = 'check_evaluation' AND check_name = 'freshness' AND NOT check_passed"
    )
    deadline = time.monotonic() + spread_s + 60
    found: dict[str, int] = {}
    arrived: dict[str, int] = {}
    while time.monotonic() < deadline and (len(found) < assets or len(arrived) < assets):
        found = {str(k): int(at) for k, at in warehouse.query(query).rows}
        arrived = hooks.arrived
        time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join(60)
    hooks.close()
    warehouse.close()
    stored = sorted((found[k] - (materialized[k] + 2_000_000)) / 1e6 for k in found)
    alerted = sorted((at - (materialized[k] + 2_000_000)) / 1e6 for k, at in arrived.items())
    return stored, alerted


def percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--assets", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--deadlines", type=int, default=1_000)
    parser.add_argument("--spread", type=float, default=10.0, help="seconds the deadlines are staggered over")
    batch_help = "ASSETPIPE_INGEST_BATCH_MAX_SECONDS of the ingest worker the evaluations go through"
    parser.add_argument("--ingest-batch-seconds", type=float, default=0.25, help=batch_help)
    args = parser.parse_args()

    keys = [f"bench/t{i}" for i in range(args.assets)]
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(free_port()) as broker:
        messages = accepted_messages(keys, args.events)
        runs = {}
        configurations = (("no checks (consumed, nothing decoded)", False), (f"{args.assets:,} policies", True))
        for name, with_checks in configurations:
            settings = bench_settings(broker, tmp, prefix="c", check_group_id=f"bench-{int(with_checks)}")
            warehouse = Warehouse(settings.clickhouse_dsn, settings.clickhouse_database)
            warehouse.migrate()
            produce_all(Producer(settings.producer_config()), settings.topics.accepted, messages)
            built_before = rss_mb()
            source = checks(keys, timedelta(hours=1)) if with_checks else []
            runs[name] = {**consume(settings, warehouse, source, args.events), "built_mb": rss_mb() - built_before}
            warehouse.command(f"DROP DATABASE {settings.clickhouse_database}")
            warehouse.close()
        stored, alerted = lateness(broker, tmp, args.deadlines, args.spread, args.ingest_batch_seconds)

    print(f"check worker over {args.events:,} accepted events of {args.assets:,} assets, one consumer")
    for name, figures in runs.items():
        print(f"  {name:<34} {figures['rate']:>10,.0f} events/s  CPU {figures['cpu_us']:5.1f} µs/event  "
              f"RSS {figures['rss_mb']:,.0f} MB (before the worker {figures['rss_before_mb']:,.0f} MB, the checks "
              f"built {figures['built_mb']:,.0f} MB)  evaluations published {figures['evaluations']:,.0f}")  # fmt: skip
    print(
        f"deadline -> ..., {args.deadlines:,} assets with 2 s windows staggered over {args.spread:.0f} s, "
        f"ingest batches of at most {args.ingest_batch_seconds:g} s"
    )
    for what, late in (("FAIL evaluation stored", stored), ("alert received by a webhook", alerted)):
        print(f"  {what:<28} {len(late):,} assets: p50 {percentile(late, 0.5):.3f} s, "
              f"p99 {percentile(late, 0.99):.3f} s, max {late[-1] if late else float('nan'):.3f} s")  # fmt: skip


if __name__ == "__main__":
    main()
