"""``assetpipe worker ingest`` as a process: killed mid-stream, and ClickHouse unavailable for a while.

Each test gives the worker its own embedded ClickHouse directory (one process per directory), and reads
the result afterwards with ``assetpipe sql`` once the worker has stopped.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from assetpipe import Reporter
from assetpipe.schemas.settings import Settings
from tests.integration.helpers import cli_env, read_topic, run_cli, start_cli, wait_until

N = 50_000


def publish(settings: Settings, n: int, run: str) -> set[str]:
    with Reporter(settings=settings) as reporter:
        ids = {
            reporter.report_materialization(
                f"orders/t{i % 20}", partition=str(i % 7), data_version=f"{run}-{i}", metadata={"i": i}
            ).event_id
            for i in range(n)
        }
        reporter.flush(60)
    return ids


def accepted_ids(settings: Settings, expected: int) -> set[str]:
    from assetpipe.schemas.codec import Codec

    codec = Codec()
    return {codec.decode(m.value())[1]["event_id"] for m in read_topic(settings, settings.topics.accepted, expected)}


def stop_worker(worker: subprocess.Popen[bytes]) -> int:
    worker.send_signal(signal.SIGTERM)
    return worker.wait(60)


def query(env: dict[str, str], sql: str) -> list[dict[str, object]]:
    result = run_cli(["sql", sql, "--format", "json"], env)
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


@pytest.fixture
def worker_settings(settings_factory: Callable[..., Settings], tmp_path: Path) -> Settings:
    return settings_factory(
        clickhouse_url=f"chdb://{tmp_path / 'clickhouse'}", data_dir=tmp_path, ingest_batch_max_rows=5000
    )


@pytest.mark.slow
def test_worker_killed_mid_stream_loses_and_duplicates_nothing(worker_settings: Settings, tmp_path: Path) -> None:
    if not worker_settings.uses_embedded_clickhouse:
        pytest.skip("uses an embedded ClickHouse directory of its own")
    ids = publish(worker_settings, N, "kill")
    env = cli_env(worker_settings)
    log = tmp_path / "worker.log"
    worker = start_cli(["worker", "ingest"], env, log)
    wait_until(lambda: log.read_text().count("committed a batch") >= 2, 120, "two batches committed")
    worker.kill()  # SIGKILL: no flush, no commit of the batch in flight
    worker.wait()
    committed_before = log.read_text().count("committed a batch")
    assert committed_before * 5000 < N, "the kill must land mid-stream"

    worker = start_cli(["worker", "ingest"], env, log)
    assert accepted_ids(worker_settings, N) >= ids  # everything reached the accepted stream
    assert stop_worker(worker) == 0  # SIGTERM: finish the batch, commit, exit 0

    rows = query(
        env, f"SELECT count() AS n, uniqExact(event_id) AS u FROM {worker_settings.clickhouse_database}.asset_events"
    )
    assert rows == [{"n": N, "u": N}]


@pytest.mark.slow
def test_clickhouse_unavailable_for_a_while_then_caught_up(worker_settings: Settings, tmp_path: Path) -> None:
    if not worker_settings.uses_embedded_clickhouse:
        pytest.skip("makes the embedded ClickHouse directory unavailable by holding its lock")
    path = worker_settings.clickhouse_dsn.removeprefix("chdb://")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time, clickhouse_connect\n"
         "client = clickhouse_connect.get_client(dsn=sys.argv[1])\n"  # the engine lives as long as the client
         "client.query('SELECT 1')\n"
         "print('holding', flush=True)\n"
         "time.sleep(600)\n",
         f"chdb://{path}"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"holding"
        env = cli_env(worker_settings)
        log = tmp_path / "worker.log"
        worker = start_cli(["worker", "ingest"], env, log)
        ids = publish(worker_settings, 5000, "outage")
        wait_until(lambda: log.read_text().count("retrying a batch") >= 3, 60, "the worker retrying")
        assert "committed a batch" not in log.read_text()
        time.sleep(2)
        assert worker.poll() is None, "the worker must wait, not exit"
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    assert accepted_ids(worker_settings, len(ids)) == ids
    assert stop_worker(worker) == 0
    rows = query(env, f"SELECT count() AS n FROM {worker_settings.clickhouse_database}.asset_events")
    assert rows == [{"n": len(ids)}]
