"""OpenLineage in, end to end on `assetpipe up`: COMPLETE run events of 3 outputs, each with a 30-column schema,
column lineage (16 of its columns copied from the run's input) and output statistics, about 10 KB of JSON each,
posted to /api/v1/lineage/batch by a few concurrent clients (``--gzip``: compressed). 300 tables, each with a
schema and lineage of its own that every run writing it sends again.

Prints, beside each other:

- the raw limits on one core, in this process: orjson's parse of the batches alone; parse and the schema
  check; the receiver's whole work per event (parse, bounds, schema check, translation, Avro encoding, the
  raw topic's envelope) without HTTP and broker; and in a process of its own, the storage work alone (the ingest
  and OpenLineage workers' handlers over those events, in batches of ``--storage-batch``) without broker;
- events/s accepted (every batch answered 200, so acknowledged by the broker) and stored (every
  materialization in ``asset_events`` and every event in ``openlineage_events``), with the CPU per event of
  ``assetpipe up`` and of its broker; and the least CPU an event takes here (the receiver alone, the storage
  alone and the broker's share), with the rate the machine's cores allow at that cost;
- the bytes on disk per OpenLineage event of the typed rows (``asset_events`` and the tables it feeds) and
  of the raw side table, beside the raw JSON: once the background merges have settled, and after
  ``OPTIMIZE ... FINAL``;
- the same machine's rate of plain report events through the HTTP API (``/report_asset_events``, the same
  materializations without their column schema and lineage, as many a request), on a fresh stack.

    python bench/bench_openlineage.py [--events 20000] [--batch 100] [--clients 4] [--gzip] [--serve-workers N]
                                      [--storage-batch 4000]
"""

from __future__ import annotations

import argparse
import gc
import gzip
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson

_FACET = "https://openlineage.io/spec/facets/"
_PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.9.1/integration/spark"
_TYPES = ("BIGINT", "INT", "TEXT", "DATE", "NUMERIC(12,2)", "BOOLEAN", "TIMESTAMP")
TABLES = 300
COLUMNS = 30
LINEAGE_COLUMNS = 16
SOURCES = 20


def _facet(url: str, **fields: Any) -> dict[str, Any]:
    return {"_producer": _PRODUCER, "_schemaURL": _FACET + url, **fields}


def output(i: int, table: int) -> dict[str, Any]:
    """Table ``table`` as run ``i`` writes it: its own column types and lineage, the same in every run."""
    columns = [f"c{c}" for c in range(COLUMNS)]
    source = {"namespace": "postgres://db:5432", "name": f"shop.src{table % SOURCES}"}
    return {
        "namespace": "postgres://db:5432", "name": f"shop.mart.t{table}",
        "facets": {
            "schema": _facet("1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
                             fields=[{"name": c, "type": _TYPES[(table * 7 + k * 3) % len(_TYPES)]}
                                     for k, c in enumerate(columns)]),
            "columnLineage": _facet("1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet",
                                    fields={c: {"inputFields": [{**source, "field": f"s{(k + table) % 40}"}]}
                                            for k, c in enumerate(columns[:LINEAGE_COLUMNS])}),
        },
        "outputFacets": {"outputStatistics": _facet(
            "1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet",
            rowCount=1000 + i, size=64000 + i)},
    }  # fmt: skip


def event(i: int) -> dict[str, Any]:
    time_text = f"2024-05-02T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z"
    table = i % TABLES
    return {
        "eventType": "COMPLETE", "eventTime": time_text,
        "producer": _PRODUCER, "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": str(uuid.uuid4())}, "job": {"namespace": "spark", "name": f"etl.job_{i % 50}"},
        "inputs": [{"namespace": "postgres://db:5432", "name": f"shop.src{table % SOURCES}"}],
        "outputs": [output(i, (table + o) % TABLES) for o in range(3)],
    }  # fmt: skip


def plain(i: int, o: int) -> dict[str, Any]:
    """The materialization a run's output becomes, as a plain report: no column schema, no lineage."""
    return {"type": "materialization", "asset_key": ["postgres", "shop", "mart", f"t{(i % TABLES + o) % TABLES}"],
            "metadata": {"dagster/row_count": 1000 + i, "size_bytes": 64000 + i},
            "tags": {"openlineage/job": f"etl.job_{i % 50}"}}  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc), 0 where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _by_thread_kind(pid: int) -> dict[str, float]:
    """CPU seconds of process ``pid``'s threads so far, by kind: Python's (the receiver's event loop, the workers'
    loops, and the ClickHouse statements they run in their own thread), librdkafka's, ClickHouse's merges, and
    ClickHouse's other threads (queries' pipelines, inserts)."""
    found = dict.fromkeys(THREAD_KINDS.values(), 0.0)
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "stat").read_text()
        except OSError:
            continue
        name, fields = text[text.index("(") + 1 : text.rindex(")")], text.rsplit(")", 1)[1].split()
        prefix = next((p for p in ("python", "rdk") if name.startswith(p)), name)  # python3, python3.11, rdk:main
        kind = THREAD_KINDS.get(prefix) or THREAD_KINDS[""]
        found[kind] += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


THREAD_KINDS = {"python": "Python threads", "rdk": "librdkafka", "MergeMutate": "ClickHouse merges",
                "": "ClickHouse queries and inserts"}  # fmt: skip


def _stop(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGINT, as Ctrl-C stops it; killed if it has not stopped within ``timeout`` seconds."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


class Stack:
    """``assetpipe up`` on a data directory of its own, and its SQL through the CLI."""

    def __init__(self, data: Path) -> None:
        self.data = data
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASSETPIPE_")}
        self.env = env | {"ASSETPIPE_DATA_DIR": str(data), "ASSETPIPE_EMBEDDED_KAFKA_PORT": str(_free_port()),
                          "ASSETPIPE_HTTP_PORT": str(_free_port())}  # fmt: skip
        self.url = f"http://127.0.0.1:{self.env['ASSETPIPE_HTTP_PORT']}"
        self.serve_pid = 0

    @contextmanager
    def running(self) -> Iterator[Stack]:
        self.data.mkdir(parents=True, exist_ok=True)
        log = (self.data / "up.log").open("wb")
        up = subprocess.Popen([sys.executable, "-m", "assetpipe.cli", "up"], env=self.env,
                              stdout=subprocess.DEVNULL, stderr=log)  # fmt: skip
        self.pid = up.pid
        try:
            deadline = time.monotonic() + 120
            while subprocess.run([sys.executable, "-m", "assetpipe.cli", "status"], env=self.env,
                                 capture_output=True).returncode != 0:  # fmt: skip
                if time.monotonic() > deadline or up.poll() is not None:
                    raise RuntimeError("assetpipe up did not start: " + (self.data / "up.log").read_text()[-2000:])
                time.sleep(0.5)
            self.broker = next((c for c in _children(up.pid) if "tansu" in Path(f"/proc/{c}/cmdline").read_text()), 0)
            yield self
        finally:
            _stop(up, 180)
            log.close()

    @contextmanager
    def serving(self, workers: int) -> Iterator[str]:
        """``assetpipe serve --workers N`` beside the running stack (its broker, and its registry through the
        control socket): the HTTP API in processes of its own. Yields its URL."""
        env = self.env | {"ASSETPIPE_HTTP_PORT": str(_free_port())}
        url = f"http://127.0.0.1:{env['ASSETPIPE_HTTP_PORT']}"
        log = (self.data / "serve.log").open("wb")
        serve = subprocess.Popen([sys.executable, "-m", "assetpipe.cli", "serve", "--workers", str(workers)], env=env,
                                 stdout=subprocess.DEVNULL, stderr=log)  # fmt: skip
        self.serve_pid = serve.pid
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or serve.poll() is not None:
                    started = (self.data / "serve.log").read_text()[-2000:]
                    raise RuntimeError(f"assetpipe serve did not start: {started}")
                time.sleep(0.3)
            yield url
        finally:
            _stop(serve, 60)
            self.serve_pid = 0
            log.close()

    def sql(self, query: str) -> list[dict[str, Any]]:
        done = subprocess.run([sys.executable, "-m", "assetpipe.cli", "sql", query, "--format", "json"],
                              env=self.env, capture_output=True, text=True, timeout=120)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        rows: list[dict[str, Any]] = orjson.loads(done.stdout)
        return rows

    def count(self, table: str) -> int:
        return int(self.sql(f"SELECT count() AS n FROM {table}")[0]["n"])

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far: ``assetpipe up`` by kind of thread, ``assetpipe serve`` (its processes) and the
        broker."""
        serve = [self.serve_pid, *_children(self.serve_pid)] if self.serve_pid else []
        return {**_by_thread_kind(self.pid), "assetpipe serve": sum(_cpu(pid) for pid in serve),
                "the broker": _cpu(self.broker) if self.broker else 0.0}  # fmt: skip


def post_all(url: str, bodies: list[bytes], clients: int, headers: dict[str, str]) -> float:
    """Every body posted by ``clients`` concurrent clients; seconds until the last answer. Raises unless every
    answer is a 200 saying every event was stored."""
    failures: list[str] = []

    def send(share: list[bytes]) -> None:
        with httpx.Client(timeout=120) as client:
            for body in share:
                answer = client.post(url, content=body, headers=headers)
                if answer.status_code != 200 or answer.json()["status"] != "success":
                    failures.append(answer.text[:300])

    threads = [threading.Thread(target=send, args=(bodies[c::clients],)) for c in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise RuntimeError(f"{len(failures)} batches failed: {failures[0]}")
    return time.perf_counter() - started


def wait_stored(stack: Stack, expected: dict[str, int], started: float) -> float:
    for table, n in expected.items():
        while stack.count(table) < n:
            time.sleep(0.2)
    return time.perf_counter() - started


def settle(stack: Stack, limit_s: float = 120.0, quiet_s: float = 10.0) -> float:
    """Wait (up to ``limit_s``) until the background merges are done: no merge running and the parts unchanged for
    ``quiet_s``; seconds waited."""
    started = time.monotonic()
    query = ("SELECT (SELECT count() FROM system.merges WHERE database = currentDatabase()) AS merging, "
             "(SELECT count() FROM system.parts WHERE active AND database = currentDatabase()) AS parts")  # fmt: skip
    last, quiet_since = None, time.monotonic()
    while time.monotonic() - started < limit_s:
        now = stack.sql(query)[0]
        if now["merging"] or now["parts"] != last:
            last, quiet_since = now["parts"], time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            break
        time.sleep(1)
    return time.monotonic() - started


def best_rate(work: Callable[[], object], n: int, rounds: int = 3) -> float:
    """Events/s of ``work`` (``n`` events), the best of ``rounds`` (other work on the cores slows single runs), with
    the cyclic collector off, as ``assetpipe up`` runs while its ingest worker does."""
    best = float("inf")
    gc.disable()
    try:
        for _ in range(rounds):
            started = time.perf_counter()
            work()
            best = min(best, time.perf_counter() - started)
    finally:
        gc.enable()
    return n / best


RECEIVER_WORK = "the receiver's whole work (parse, bounds, schema, translate, encode, envelope)"


def raw_limits(bodies: list[bytes], n: int) -> dict[str, float]:
    """The receiver's stages on one core, in this process: no HTTP, no broker."""
    from assetpipe.producers.http.app import Api
    from assetpipe.producers.openlineage.receiver import envelope
    from assetpipe.producers.openlineage.spec import EventValidator
    from assetpipe.producers.openlineage.translate import READ_FACETS
    from assetpipe.schemas.settings import Settings

    validator = EventValidator(READ_FACETS)
    routes = Api(Settings.from_env({})).openlineage

    def parse() -> None:
        for body in bodies:
            orjson.loads(body)

    def check() -> None:
        for body in bodies:
            for e in orjson.loads(body):
                validator.validate(e)

    def receive() -> None:
        for body in bodies:
            _failed, ready = routes.prepare_batch(orjson.loads(body), None)
            for _, translation, _typed, text in ready:
                envelope(translation, text, 0)

    return {
        "orjson parse alone": best_rate(parse, n),
        "parse + OpenLineage schema check": best_rate(check, n),
        RECEIVER_WORK: best_rate(receive, n),
    }


def storage_limit(n: int, batch: int, data: Path, per_batch: int) -> tuple[float, float]:
    """The stack's storage work alone, no broker, in a process of its own on the embedded engine (one data
    directory a process: this one opens the stack's after it stopped): the ingest worker's handler over the typed
    events and the OpenLineage worker's over the raw ones, as the receiver encodes them, in batches of
    ``per_batch`` OpenLineage events (the size the stack's ingest batches reach under this load, where a batch's
    fixed cost, ~120 ms, weighs little). -> (events/s, CPU µs an event: every thread, merges that ran included)."""
    from confluent_kafka import Message

    from assetpipe.consumers.ingest.handler import IngestHandler
    from assetpipe.consumers.openlineage.worker import OpenLineageHandler
    from assetpipe.consumers.warehouse import Warehouse
    from assetpipe.producers.http.app import Api
    from assetpipe.producers.openlineage.receiver import envelope
    from assetpipe.schemas.codec import Codec
    from assetpipe.schemas.settings import Settings

    bodies = [orjson.dumps([event(i) for i in range(s, min(s + batch, n))]) for s in range(0, n, batch)]
    settings = Settings.from_env({"ASSETPIPE_DATA_DIR": str(data)})
    routes = Api(Settings.from_env({})).openlineage
    topics = settings.topics
    offsets = {topics.events: 0, topics.openlineage: 0}

    def message(topic: str, key: bytes, value: bytes) -> Message:
        offsets[topic] += 1
        return Message(topic=topic, partition=0, offset=offsets[topic] - 1, key=key, value=value)

    bodies_a_batch = max(1, per_batch // batch)
    batches: list[tuple[list[Message], list[Message]]] = []  # (typed events, raw events)
    for start in range(0, len(bodies), bodies_a_batch):
        typed: list[Message] = []
        raws: list[Message] = []
        for body in bodies[start : start + bodies_a_batch]:
            for _, translation, encoded, text in routes.prepare_batch(orjson.loads(body), None)[1]:
                typed += [message(topics.events, e.key, e.value) for e in encoded]
                raw = envelope(translation, text, time.time_ns() // 1000)
                raws.append(message(topics.openlineage, raw.key, raw.value))
        batches.append((typed, raws))
    warehouse = Warehouse.from_settings(settings)
    try:
        warehouse.migrate()
        ingest = IngestHandler(warehouse, Codec(timestamp_micros=True), settings)
        raw_handler = OpenLineageHandler(warehouse, settings)
        cpu_before, started = time.process_time(), time.perf_counter()
        for typed_messages, raw_messages in batches:
            ingest.handle(typed_messages, ingest.prepare(typed_messages))
            raw_handler.handle(raw_messages, raw_handler.prepare(raw_messages))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_before
        for table, expected in (("asset_events", 3 * n), ("openlineage_events", n)):
            stored = warehouse.query(f"SELECT count() FROM {warehouse.database}.{table}").rows[0][0]
            if stored != expected:
                raise RuntimeError(f"the storage limit's run stored {stored} rows in {table}, not {expected}")
    finally:
        warehouse.close()
    return n / elapsed, 1e6 * cpu / n


def on_disk(sql: Callable[[str], list[dict[str, Any]]], database: str) -> dict[str, int]:
    rows = sql(f"SELECT table, sum(bytes_on_disk) AS b FROM system.parts WHERE active AND database = '{database}' "
               "GROUP BY table")  # fmt: skip
    return {r["table"]: int(r["b"]) for r in rows}


def print_bytes(label: str, sizes: dict[str, int], n: int, raw_bytes: int) -> None:
    typed_tables = sorted(t for t in sizes if t.startswith("asset_") and t != "asset_lineage_edges")
    typed = sum(sizes[t] for t in typed_tables)
    print(f"bytes on disk per OpenLineage event, {label}:")
    tables = ", ".join(f"{t} {sizes[t] / n:,.1f}" for t in sorted(typed_tables, key=lambda t: -sizes[t]))
    print(f"  typed rows {typed / n:,.0f} B = {100 * typed / raw_bytes:.2f}% of the raw JSON ({tables})")
    print(f"  openlineage_events (the raw JSON kept) {sizes.get('openlineage_events', 0) / n:,.0f} B; "
          f"asset_lineage_edges {sizes.get('asset_lineage_edges', 0) / n:,.1f} B")  # fmt: skip


def optimized_sizes(data: Path) -> tuple[dict[str, int], dict[str, int]]:
    """``OPTIMIZE ... FINAL`` of every table of a stopped stack's warehouse, opened in this process: the bytes on
    disk of each table, and of each column of ``asset_events`` (compressed, marks and indexes aside)."""
    import clickhouse_connect

    client = clickhouse_connect.get_client(dsn=f"chdb://{data / 'clickhouse'}")
    database = "assetpipe"

    def sql(query: str) -> list[dict[str, Any]]:
        result = client.query(query)
        return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]

    for table in on_disk(sql, database):
        client.command(f"OPTIMIZE TABLE {database}.{table} FINAL")
    columns = sql(
        "SELECT column, sum(column_data_compressed_bytes) AS b FROM system.parts_columns "
        f"WHERE active AND database = '{database}' AND table = 'asset_events' GROUP BY column"
    )
    return on_disk(sql, database), {r["column"]: int(r["b"]) for r in columns}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--gzip", action="store_true", help="send the batches gzip-compressed")
    parser.add_argument("--serve-workers", type=int, default=0,
                        help="post to `assetpipe serve --workers N` beside the stack, not to its HTTP API")  # fmt: skip
    parser.add_argument("--storage-batch", type=int, default=4000,
                        help="OpenLineage events a batch of the storage work's raw limit")  # fmt: skip
    args = parser.parse_args()
    n = args.events
    bodies, raw_bytes = [], 0
    for start in range(0, n, args.batch):
        batch = [event(i) for i in range(start, min(start + args.batch, n))]
        raw_bytes += sum(len(orjson.dumps(e)) for e in batch)
        bodies.append(orjson.dumps(batch))
    headers = {"content-type": "application/json"} | ({"content-encoding": "gzip"} if args.gzip else {})
    sent = [gzip.compress(b, 1) for b in bodies] if args.gzip else bodies
    limits = raw_limits(bodies, n)
    with tempfile.TemporaryDirectory(prefix="bench-openlineage-") as tmp:  # both stacks' data, removed after
        root = Path(tmp)
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            storage = pool.submit(storage_limit, n, args.batch, root / "storage", args.storage_batch)
            storage_rate, storage_us = storage.result()
        with Stack(root / "openlineage").running() as stack, ExitStack() as serving:
            url = serving.enter_context(stack.serving(args.serve_workers)) if args.serve_workers else stack.url
            cpu_before = stack.cpu()
            started = time.perf_counter()
            accepted = post_all(url + "/api/v1/lineage/batch", sent, args.clients, headers)
            stored = wait_stored(stack, {"asset_events": 3 * n, "openlineage_events": n}, started)
            cpu = {kind: spent - cpu_before[kind] for kind, spent in stack.cpu().items()}
            serving.close()
            settled_s = settle(stack)
            merged = on_disk(lambda q: stack.sql(q), "assetpipe")
        with Stack(root / "plain").running() as plain_stack:
            plain_bodies = [orjson.dumps([plain(i, o) for i in range(s, min(s + args.batch, n)) for o in range(3)])
                            for s in range(0, n, args.batch)]  # fmt: skip
            plain_cpu_before = plain_stack.cpu()
            plain_started = time.perf_counter()
            plain_accepted = post_all(plain_stack.url + "/report_asset_events", plain_bodies, args.clients,
                                      {"content-type": "application/json"})  # fmt: skip
            plain_stored = wait_stored(plain_stack, {"asset_events": 3 * n}, plain_started)
            plain_cpu = {kind: spent - plain_cpu_before[kind] for kind, spent in plain_stack.cpu().items()}
        final, columns = optimized_sizes(root / "openlineage")

    front = f"; posted to assetpipe serve --workers {args.serve_workers}" if args.serve_workers else ""
    print(f"{n:,} OpenLineage events of 3 outputs, {raw_bytes / n / 1024:.1f} KB of JSON each; {args.clients} clients, "
          f"batches of {args.batch}{', gzip' if args.gzip else ''}{front}")  # fmt: skip
    print("raw limits on one core, in this process (events/s):")
    for label, rate in limits.items():
        print(f"  {label:<80} {rate:>9,.0f}")
    label = f"the storage work alone (ingest, raw events, edges; no broker), batches of {args.storage_batch:,}"
    print(f"  {label:<80} {storage_rate:>9,.0f}   ({storage_us:,.0f} µs of CPU an event, every thread)")
    receiver_us = 1e6 / limits[RECEIVER_WORK]
    rows = [
        ("accepted (every batch answered 200: the broker acknowledged every message)", n / accepted),
        ("stored (every materialization in asset_events, every event in openlineage_events)", n / stored),
    ]
    for label, rate in rows:
        print(f"{label:<82} {rate:>9,.0f} ev/s")
    total, broker, served = sum(cpu.values()), cpu["the broker"], cpu["assetpipe serve"]
    split = ", ".join(f"{kind} {1e6 * spent / n:,.0f}" for kind, spent in cpu.items()
                      if kind not in ("the broker", "assetpipe serve"))  # fmt: skip
    serve_cpu = f", assetpipe serve {1e6 * served / n:,.0f}" if args.serve_workers else ""
    print(f"  CPU per OpenLineage event: {1e6 * total / n:,.0f} µs ({total / stored:.2f} cores over the run): "
          f"assetpipe up {1e6 * (total - broker - served) / n:,.0f} ({split}){serve_cpu}, "
          f"its broker {1e6 * broker / n:,.0f}")  # fmt: skip
    least = receiver_us + storage_us + 1e6 * broker / n
    cores = os.cpu_count() or 1
    print(
        f"  the least work an event takes here: the receiver alone {receiver_us:,.0f} + the storage alone "
        f"{storage_us:,.0f} + the broker {1e6 * broker / n:,.0f} = {least:,.0f} µs of CPU: at most "
        f"{cores * 1e6 / least:,.0f} events/s on this machine's {cores} cores, with no HTTP and nothing else running"
    )
    plain_up = sum(v for k, v in plain_cpu.items() if k != "the broker")
    print(f"plain report events through /report_asset_events ({3 * args.batch} a request), fresh stack: accepted "
          f"{3 * n / plain_accepted:,.0f} ev/s, stored {3 * n / plain_stored:,.0f} ev/s; CPU per event: up "
          f"{1e6 * plain_up / (3 * n):,.0f} µs, broker {1e6 * plain_cpu['the broker'] / (3 * n):,.0f} µs")  # fmt: skip
    print(f"raw JSON {raw_bytes / n:,.0f} B per OpenLineage event")
    print_bytes(f"as the background merges left them ({settled_s:.0f} s after)", merged, n, raw_bytes)
    print_bytes("after OPTIMIZE ... FINAL", final, n, raw_bytes)
    top = sorted(columns.items(), key=lambda c: -c[1])
    print("  asset_events by column: " + ", ".join(f"{c} {b / n:,.1f}" for c, b in top if b / n >= 0.5))


if __name__ == "__main__":
    main()
