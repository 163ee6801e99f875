"""Backfill end to end: a JSON Lines file -> ``assetpipe backfill`` -> broker -> ingest worker -> rows in
ClickHouse. Prints the wall time to rows, the publish phase (once with no ingest worker running, once
beside it), the backfill's peak memory, and the raw limits measured in the same run (reading the file,
orjson parsing it, the per-record conversion on one core).

Starts its own embedded broker and ClickHouse engine; the ingest worker runs in a thread of this process
and the backfill as a subprocess (the command users run), so the two do not share an interpreter lock.
The figures are printed, never asserted: on a shared machine they move with its load.

    python bench/bench_backfill.py [--events 1000000] [--files 1] [--skip-alone] [--convert-only]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson
from benchstack import bench_settings, broker_cpu_seconds

from assetpipe.broker import EmbeddedBroker, free_port
from assetpipe.consumers.ingest.worker import IngestWorker
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.producers.backfill.records import RecordConverter
from assetpipe.producers.backfill.sources import open_source
from assetpipe.schemas.codec import Codec
from assetpipe.schemas.encoder import EventEncoder
from assetpipe.schemas.settings import Settings

SAMPLE = 100_000
# Runs the backfill as its child and prints the child's peak RSS. A child forked straight from this
# process would count this process's pages (chDB's) in its peak until it execs.
_MEASURED = (
    "import resource, subprocess, sys; status = subprocess.call(sys.argv[1:]); "
    "print(f'peak-rss-kb {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}', flush=True); sys.exit(status)"
)


def reference_event(i: int) -> dict[str, object]:
    """5 metadata entries and a partition; a timestamp, as history has."""
    return {
        "type": "materialization",
        "asset_key": ["warehouse", "sales", f"table_{i % 500}"],
        "partition": f"2024-{i % 12 + 1:02d}-{i % 28 + 1:02d}",
        "timestamp": 1_704_067_200 + i,
        "metadata": {"row_count": i * 13, "size_mb": i / 7, "owner": "team-sales", "fresh": i % 2 == 0,
                     "dashboard": f"https://bi.example.com/d/{i % 500}"},
    }  # fmt: skip


def write_files(directory: Path, n: int, files: int) -> list[Path]:
    paths = [directory / f"events-{k}.jsonl" for k in range(files)]
    handles = [open(p, "wb") for p in paths]  # noqa: SIM115 - closed below
    for i in range(n):
        handles[i % files].write(orjson.dumps(reference_event(i)) + b"\n")
    for h in handles:
        h.close()
    return paths


def raw_limits(path: Path) -> dict[str, float]:
    """Rates on one core over the first SAMPLE lines of ``path``: read lines, orjson parse, convert."""
    with open(path, "rb") as f:
        lines = [line for _, line in zip(range(SAMPLE), f, strict=False)]
    n = len(lines)
    started = time.perf_counter()
    with open(path, "rb") as f:
        for _ in zip(range(SAMPLE), f, strict=False):
            pass
    read = n / (time.perf_counter() - started)
    started = time.perf_counter()
    for line in lines:
        orjson.loads(line)
    parse = n / (time.perf_counter() - started)
    source = open_source(path)
    convert = RecordConverter(source, EventEncoder(Codec(), source="backfill"), "0" * 64).convert
    started = time.perf_counter()
    for position, line in enumerate(lines, 1):
        convert(position, line)
    return {"read": read, "parse": parse, "convert": n / (time.perf_counter() - started)}


def run_command(paths: list[Path], settings: Settings, directory: Path) -> tuple[float, float, str]:
    """``assetpipe backfill PATHS`` as a subprocess -> (seconds, its peak RSS in MB, its output)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSETPIPE_")}
    env.update(
        ASSETPIPE_KAFKA_BOOTSTRAP_SERVERS=settings.bootstrap_servers,
        ASSETPIPE_TOPIC_PREFIX=settings.topic_prefix,
        ASSETPIPE_DATA_DIR=str(directory),
    )
    command = [sys.executable, "-m", "assetpipe.cli", "-q", "backfill", *map(str, paths)]
    log = directory / f"backfill-{settings.topic_prefix}.log"
    started = time.perf_counter()
    with open(log, "w") as out:
        status = subprocess.call([sys.executable, "-c", _MEASURED, *command], env=env, stdout=out, stderr=out)
    seconds = time.perf_counter() - started
    output, _, peak = log.read_text().rpartition("peak-rss-kb ")
    if status != 0:
        print(output)
        raise SystemExit(f"backfill failed with status {status}")
    return seconds, int(peak) / 1024, output


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=1, help="split the events over this many files")
    parser.add_argument("--skip-alone", action="store_true", help="skip the publish run without an ingest worker")
    parser.add_argument("--convert-only", action="store_true", help="only the per-record rates on one core")
    parser.add_argument("--consumers", type=int, default=1, help="consumers of the ingest worker (default 1)")
    args = parser.parse_args()
    n = args.events
    if args.convert_only:
        with tempfile.TemporaryDirectory() as tmp:
            limits = raw_limits(write_files(Path(tmp), min(n, SAMPLE), 1)[0])
        print(f"raw: read lines, 1 core                      {limits['read']:>12,.0f} lines/s")
        print(f"raw: orjson parse of the same lines, 1 core  {limits['parse']:>12,.0f} lines/s")
        print(f"per record: parse + build + encode, 1 core   {limits['convert']:>12,.0f} records/s")
        return

    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(free_port()) as broker:
        directory = Path(tmp)
        started = time.perf_counter()
        paths = write_files(directory, n, args.files)
        size = sum(p.stat().st_size for p in paths)
        print(f"generated {n:,} events in {args.files} file(s), {size / 1e6:,.0f} MB, "
              f"in {time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip
        limits = raw_limits(paths[0])

        def settings_for(name: str) -> Settings:
            return bench_settings(broker, directory, prefix=name, data_dir=directory / name)

        alone = None if args.skip_alone else run_command(paths, settings_for("alone"), directory)[0]

        settings = settings_for("e2e")
        warehouse = Warehouse(settings.clickhouse_dsn, settings.clickhouse_database)
        warehouse.migrate()
        worker = IngestWorker(settings, consumers=args.consumers)  # each with its own ClickHouse session
        stop = threading.Event()
        thread = threading.Thread(target=worker.run, args=(stop,), name="ingest")
        children_before = _children_cpu()
        cpu_started, broker_started = time.process_time(), broker_cpu_seconds(broker)
        thread.start()
        e2e_started = time.perf_counter()
        publish_s, backfill_rss_mb, output = run_command(paths, settings, directory)
        backfill_cpu = _children_cpu() - children_before
        table = f"{settings.clickhouse_database}.asset_events"
        rows = 0
        while rows < n:
            time.sleep(0.2)
            rows = int(warehouse.query(f"SELECT count() FROM {table}").rows[0][0])
        rows_s = time.perf_counter() - e2e_started
        worker_cpu, broker_cpu = time.process_time() - cpu_started, broker_cpu_seconds(broker) - broker_started
        stop.set()
        thread.join()
        warehouse.close()
        worker_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(output.strip())
    print()
    print(f"events                                       {n:>12,}   ({args.files} file(s), {size / 1e6:,.0f} MB)")
    print(f"raw: read lines, 1 core                      {limits['read']:>12,.0f} lines/s")
    print(f"raw: orjson parse of the same lines, 1 core  {limits['parse']:>12,.0f} lines/s")
    print(f"per record: parse + build + encode, 1 core   {limits['convert']:>12,.0f} records/s")
    if alone is not None:
        print(f"publish alone (no ingest worker running)     {alone:>12.1f} s   ({n / alone:,.0f} events/s)")
    print(f"publish phase, ingest worker running         {publish_s:>12.1f} s   ({n / publish_s:,.0f} events/s)")
    print(f"to rows phase (after the backfill exited)    {rows_s - publish_s:>12.1f} s")
    print(
        f"wall time, file -> rows in ClickHouse        {rows_s:>12.1f} s   ({n / rows_s:,.0f} events/s; target <= 20 s)"
    )
    print(
        f"CPU per event: backfill command {backfill_cpu / n * 1e6:.1f} us, ingest worker process "
        f"{worker_cpu / n * 1e6:.1f} us, broker {broker_cpu / n * 1e6:.1f} us: "
        f"{(os.cpu_count() or 1) / ((backfill_cpu + worker_cpu + broker_cpu) / n):,.0f} events/s at most here"
    )
    print(f"peak RSS, backfill command                   {backfill_rss_mb:>12,.0f} MB  (target < 500 MB)")
    print(f"peak RSS, this process (ingest worker+chDB)  {worker_rss_mb:>12,.0f} MB")
    print(f"rows in ClickHouse                           {rows:>12,}")
    print("note: 2 cores shared by the broker, the ingest worker, the backfill and whatever else runs on the")
    print("      machine; figures move with its load.")


if __name__ == "__main__":
    main()
