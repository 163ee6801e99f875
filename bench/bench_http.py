"""HTTP API throughput and latency, beside Dagster's webserver on the same machine.

Starts the embedded broker and ``assetpipe serve`` (a separate process; once per ``--workers`` count, by
default 1 and 2 uvicorn workers), then drives load with ``wrk`` (a C load generator, in its own process;
``apt-get install wrk``):

- ``POST /report_asset_materialization/sales/daily`` with a partition and 5 metadata entries (int,
  float, text, bool, typed url), at concurrency 8 and 32: requests/s, p50, p99;
- ``POST /report_asset_events`` with NDJSON batches of the same event, its numbers varying from line
  to line: events/s.

Every answer must be a 200 (the broker acknowledged the event); the count of others is printed. Figures
vary run to run, and more on a machine shared with other work. Prints figures; asserts nothing.

    python bench/bench_http.py [--seconds 10] [--workers 1 2] [--batch 2000] [--batch-only]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

from assetpipe.broker import EmbeddedBroker, create_topics, free_port
from assetpipe.schemas.settings import Settings

EVENT = {
    "partition": "2024-06-01",
    "data_version": "v7",
    "metadata": {
        "rows": 1204,
        "ratio": 0.25,
        "owner": "finance",
        "fresh": True,
        "dashboard": {"type": "url", "value": "https://dash.example/sales/daily"},
    },
}
DAGSTER = {"requests/s": 140, "p99 at c32": "~430 ms"}


def batch_event(i: int) -> dict[str, object]:
    """The event as line ``i`` of a batch: its numbers vary from line to line, as real traffic's do."""
    metadata = {**EVENT["metadata"], "rows": 1000 + i, "ratio": i / 7919, "fresh": i % 3 != 0}  # type: ignore[dict-item]
    return {"type": "materialization", "asset_key": ["sales", "daily"], **EVENT, "metadata": metadata}


_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "{content_type}"
wrk.body = [[{body}]]
"""


def wrk(url: str, body: bytes, content_type: str, connections: int, seconds: int, workdir: Path) -> dict[str, float]:
    script = workdir / f"post_{connections}_{len(body)}.lua"
    script.write_text(_LUA.format(content_type=content_type, body=body.decode()))
    threads = min(2, connections)
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "30s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.MULTILINE))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)$", out, re.MULTILINE)
    return {
        "requests": float(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(latency.get("50", "0ms")),
        "p99_ms": _ms(latency.get("99", "0ms")),
        "non_200": float(errors.group(1)) if errors else 0.0,
        "socket_errors": 0.0 if socket_errors is None else 1.0,
    }


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its children (uvicorn's workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def measure(pid: int, url: str, body: bytes, content_type: str, connections: int, seconds: int, workdir: Path
            ) -> dict[str, float]:  # fmt: skip
    before = cpu_seconds(pid)
    result = wrk(url, body, content_type, connections, seconds, workdir)
    result["server_cpu_s_per_request"] = (cpu_seconds(pid) - before) / max(1.0, result["requests"])
    return result


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker processes, one run each")
    parser.add_argument("--batch", type=int, default=2000, help="events per /report_asset_events request")
    parser.add_argument("--batch-only", action="store_true", help="only the /report_asset_events loads")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    workdir = Path(tempfile.mkdtemp(prefix="bench_http_"))
    broker = EmbeddedBroker(free_port(), log_path=workdir / "broker.log")
    broker.start()
    settings = Settings(kafka_bootstrap_servers=broker.bootstrap_servers, topic_prefix="bench_", data_dir=workdir)
    create_topics(settings)
    try:
        print(f"assetpipe HTTP API, {os.cpu_count()} cores shared with the broker, wrk in its own process")
        print(
            f"Dagster 1.13 webserver on this machine: ~{DAGSTER['requests/s']} requests/s, p99 {DAGSTER['p99 at c32']}"
        )
        print(f"{'load':<48} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'events/s':>10} {'non-200':>8}"
              f" {'server CPU us/event':>20}")  # fmt: skip
        for workers in args.workers:
            run_server(broker.bootstrap_servers, workers, args.seconds, args.batch, workdir, batch_only=args.batch_only)
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def run_server(
    bootstrap_servers: str, workers: int, seconds: int, batch_size: int, workdir: Path, *, batch_only: bool = False
) -> None:
    """``assetpipe serve`` with ``workers`` processes, under each load in turn."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSETPIPE_")}
    env |= {
        "ASSETPIPE_KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
        "ASSETPIPE_TOPIC_PREFIX": "bench_",
        "ASSETPIPE_HTTP_PORT": str(port),
        "ASSETPIPE_HTTP_WORKERS": str(workers),
        "ASSETPIPE_DATA_DIR": str(workdir),
        "ASSETPIPE_HTTP_REQUIRE_KNOWN_ASSETS": "false",
    }
    with open(workdir / "server.log", "ab") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "assetpipe.cli", "-q", "serve"], env=env, stdout=log, stderr=log
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base)
        one = orjson.dumps(EVENT)
        url = f"{base}/report_asset_materialization/sales/daily"
        httpx.post(url, content=one, headers={"content-type": "application/json"}, timeout=10).raise_for_status()
        wrk(url, one, "application/json", 8, 2, workdir)  # warm-up
        label = f"{workers} worker{'s' if workers > 1 else ''}"
        for connections in () if batch_only else (8, 32):
            r = measure(server.pid, url, one, "application/json", connections, seconds, workdir)
            _row(f"report_asset_materialization c{connections}, {label}", r, 1)
        batch = b"\n".join(orjson.dumps(batch_event(i)) for i in range(batch_size))
        for connections in (2, 8):
            r = measure(server.pid, f"{base}/report_asset_events", batch, "application/x-ndjson", connections,
                        seconds, workdir)  # fmt: skip
            _row(f"report_asset_events x{batch_size} c{connections}, {label}", r, batch_size)
    finally:
        server.terminate()
        server.wait(30)


def _row(label: str, r: dict[str, float], events_per_request: int) -> None:
    print(
        f"{label:<48} {r['rps']:>9,.0f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} "
        f"{r['rps'] * events_per_request:>10,.0f} {r['non_200']:>8,.0f}"
        f" {r['server_cpu_s_per_request'] * 1e6 / events_per_request:>20,.0f}",
        flush=True,
    )


def _wait_ready(base: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    sys.exit(f"the server did not become ready within {timeout:.0f}s")


if __name__ == "__main__":
    main()
