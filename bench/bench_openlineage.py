"""OpenLineage in, end to end on `assetpipe up`: COMPLETE run events of 3 outputs, each with a 30-column schema
and column lineage and output statistics (about 10 KB of JSON each), posted to /api/v1/lineage/batch by a few
concurrent clients; timed from the first send until every materialization is in ClickHouse. Prints events/s
accepted and stored, and the bytes on disk per OpenLineage event of the typed rows (asset_events and the tables
its views feed) beside those of the raw JSON as it came and as openlineage_events keeps it.

    python bench/bench_openlineage.py [--events 20000] [--batch 100] [--clients 4]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

_FACET = "https://openlineage.io/spec/facets/"
_PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.9.1/integration/spark"


def _facet(url: str, **fields: Any) -> dict[str, Any]:
    return {"_producer": _PRODUCER, "_schemaURL": _FACET + url, **fields}


def event(i: int) -> dict[str, Any]:
    columns = [f"c{c}" for c in range(30)]
    source = {"namespace": "postgres://db:5432", "name": "shop.public.orders"}
    outputs = []
    for o in range(3):
        outputs.append({
            "namespace": "postgres://db:5432", "name": f"shop.mart.t{(i + o) % 300}",
            "facets": {
                "schema": _facet("1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
                                 fields=[{"name": c, "type": "BIGINT"} for c in columns]),
                "columnLineage": _facet("1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet",
                                        fields={c: {"inputFields": [{**source, "field": c}]} for c in columns}),
            },
            "outputFacets": {"outputStatistics": _facet(
                "1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet",
                rowCount=1000 + i, size=64000 + i)},
        })  # fmt: skip
    time_text = f"2024-05-02T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z"
    return {
        "eventType": "COMPLETE", "eventTime": time_text,
        "producer": _PRODUCER, "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": str(uuid.uuid4())}, "job": {"namespace": "spark", "name": f"etl.job_{i % 50}"},
        "inputs": [source], "outputs": outputs,
    }  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sql(env: dict[str, str], query: str) -> list[dict[str, Any]]:
    done = subprocess.run([sys.executable, "-m", "assetpipe.cli", "sql", query, "--format", "json"], env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="bench-openlineage-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSETPIPE_")}
    env |= {"ASSETPIPE_DATA_DIR": str(data), "ASSETPIPE_EMBEDDED_KAFKA_PORT": str(_free_port()),
            "ASSETPIPE_HTTP_PORT": str(_free_port())}  # fmt: skip
    log = (data / "up.log").open("wb")
    up = subprocess.Popen([sys.executable, "-m", "assetpipe.cli", "up"], env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 120
        while subprocess.run([sys.executable, "-m", "assetpipe.cli", "status"], env=env,
                             capture_output=True).returncode != 0:  # fmt: skip
            if time.monotonic() > deadline or up.poll() is not None:
                raise RuntimeError("assetpipe up did not start: " + (data / "up.log").read_text()[-2000:])
            time.sleep(0.5)
        bodies = []
        raw_bytes = 0
        for start in range(0, args.events, args.batch):
            batch = [event(i) for i in range(start, min(start + args.batch, args.events))]
            raw_bytes += sum(len(json.dumps(e, separators=(",", ":"))) for e in batch)
            bodies.append(json.dumps(batch, separators=(",", ":")).encode())
        url = f"http://127.0.0.1:{env['ASSETPIPE_HTTP_PORT']}/api/v1/lineage/batch"
        failures: list[str] = []

        def send(share: list[bytes]) -> None:
            with httpx.Client(timeout=120) as client:
                for body in share:
                    answer = client.post(url, content=body, headers={"content-type": "application/json"})
                    if answer.status_code != 200 or answer.json()["status"] != "success":
                        failures.append(answer.text[:300])

        threads = [threading.Thread(target=send, args=(bodies[c :: args.clients],)) for c in range(args.clients)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        accepted = time.perf_counter() - started
        if failures:
            raise RuntimeError(f"{len(failures)} batches failed: {failures[0]}")
        expected = args.events * 3
        while _sql(env, "SELECT count() AS n FROM asset_events")[0]["n"] < expected:
            time.sleep(0.2)
        stored = time.perf_counter() - started
        _sql(env, "SELECT 1")  # nothing: the parts below are read as they are, merged or not
        parts = _sql(env, "SELECT table, sum(bytes_on_disk) AS b FROM system.parts WHERE active AND database = "
                          "currentDatabase() GROUP BY table ORDER BY b DESC")  # fmt: skip
        on_disk = {p["table"]: int(p["b"]) for p in parts}
        typed_tables = [t for t in on_disk if t.startswith("asset_") and t != "asset_lineage_edges"]
        typed = sum(on_disk[t] for t in typed_tables)
        print(f"{args.events} OpenLineage events, {raw_bytes / args.events / 1024:.1f} KB each, {args.clients} "
              f"clients, batches of {args.batch}")  # fmt: skip
        print(f"accepted (every batch answered 200): {args.events / accepted:,.0f} events/s")
        print(f"stored end to end (every materialization in ClickHouse): {args.events / stored:,.0f} events/s")
        print(f"raw JSON: {raw_bytes / args.events:,.0f} B/event; openlineage_events on disk: "
              f"{on_disk.get('openlineage_events', 0) / args.events:,.0f} B/event")  # fmt: skip
        print(f"typed rows on disk ({', '.join(sorted(typed_tables))}): {typed / args.events:,.0f} B/event = "
              f"{100 * typed / raw_bytes:.2f}% of the raw JSON")  # fmt: skip
        print(f"asset_events alone: {on_disk.get('asset_events', 0) / args.events:,.0f} B/event = "
              f"{100 * on_disk.get('asset_events', 0) / raw_bytes:.2f}%")  # fmt: skip
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(120)
        except subprocess.TimeoutExpired:
            up.kill()
        log.close()


if __name__ == "__main__":
    main()
