"""``assetpipe up`` as an operator runs it: stopped with Ctrl-C or SIGTERM while it catches up, its
embedded broker killed under it, and ``status`` polled while it starts. Every event acknowledged (an
HTTP 200, an SDK delivery) is in ClickHouse afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from assetpipe import Reporter
from assetpipe.schemas.settings import Settings
from tests.integration import helpers
from tests.integration.helpers import run_cli, start_cli, wait_until

pytestmark = pytest.mark.slow

_BATCH = 2_000


def _ready(env: dict[str, str]) -> bool:
    return run_cli(["status"], env, timeout=30).returncode == 0


def _count(env: dict[str, str], run: str) -> int:
    sql = f"SELECT count() FROM assetpipe.asset_events WHERE partition LIKE '{run}-%'"
    done = run_cli(["sql", sql, "--format", "csv"], env)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.splitlines()[-1])


@pytest.fixture
def up_env(tmp_path: Path) -> dict[str, str]:
    # small batches: ingest stays well behind a fast producer, so a stop meets a backlog
    return helpers.up_env(tmp_path / "data", ASSETPIPE_INGEST_BATCH_MAX_ROWS="5000")


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    up = start_cli(["up"], env, log)
    wait_until(lambda: up.poll() is not None or _ready(env), 120, "assetpipe up ready")
    assert up.poll() is None, log.read_text()
    return up


def _stopped(up: subprocess.Popen[bytes], log: Path, timeout: float = 300) -> str:
    try:
        code = up.wait(timeout)
    except subprocess.TimeoutExpired:
        up.kill()
        raise AssertionError(f"assetpipe up did not stop within {timeout:.0f}s:\n{log.read_text()[-3000:]}") from None
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    return text


def _post_events(url: str, run: str, count: int) -> int:
    """Report ``count`` events over HTTP in batches; returns how many were acknowledged (200)."""
    acknowledged = 0
    with httpx.Client(base_url=url, timeout=60) as client:
        for start in range(0, count, _BATCH):
            body = b"\n".join(
                orjson.dumps(
                    {"type": "ASSET_MATERIALIZATION", "asset_key": ["life", "http"], "partition": f"{run}-{i}"}
                )
                for i in range(start, min(start + _BATCH, count))
            )
            answer = client.post("/report_asset_events", content=body, headers={"Content-Type": "application/x-ndjson"})
            assert answer.status_code == 200, answer.text
            acknowledged += answer.json()["accepted"]
    return acknowledged


@pytest.fixture
def running(up_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    log = tmp_path / "up.log"
    up = _start(up_env, log)
    try:
        yield up, log
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()


def test_sigterm_while_ingest_catches_up_loses_no_acknowledged_event(
    up_env: dict[str, str], running: tuple[subprocess.Popen[bytes], Path], tmp_path: Path
) -> None:
    up, log = running
    url = f"http://127.0.0.1:{up_env['ASSETPIPE_HTTP_PORT']}"
    http = _post_events(url, "http", 200_000)
    settings = Settings.from_env({k: v for k, v in up_env.items() if k.startswith("ASSETPIPE_")})
    with Reporter(settings=settings, receipts=False) as reporter:
        for i in range(200_000):
            reporter.report_materialization("life/sdk", partition=f"sdk-{i}")
        reporter.flush()  # every event acknowledged by the broker
    up.send_signal(signal.SIGTERM)
    text = _stopped(up, log)
    assert "stopping: reports are refused (503)" in text
    assert "assetpipe stopped." in text

    again = _start(up_env, tmp_path / "up-again.log")
    try:
        assert (_count(up_env, "http"), _count(up_env, "sdk")) == (http, 200_000)
    finally:
        again.send_signal(signal.SIGINT)
        _stopped(again, tmp_path / "up-again.log")


def test_reports_during_the_drain_are_refused_with_retry_after(
    up_env: dict[str, str], running: tuple[subprocess.Popen[bytes], Path]
) -> None:
    up, log = running
    url = f"http://127.0.0.1:{up_env['ASSETPIPE_HTTP_PORT']}"
    _post_events(url, "drain", 100_000)
    up.send_signal(signal.SIGTERM)
    wait_until(lambda: "stopping: reports are refused" in log.read_text(), 30, "the drain to start")
    with httpx.Client(base_url=url, timeout=10) as client:
        answer = client.post("/report_asset_materialization/life/late", json={"partition": "late"})
        ready = client.get("/readyz")
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "1"
    assert answer.json()["status"] == "error" and "assetpipe is stopping" in answer.json()["error"]
    assert ready.status_code == 503
    status = run_cli(["status"], up_env, timeout=30)
    assert status.returncode == 1 and "draining" in status.stdout, status.stdout
    _stopped(up, log)


def test_a_second_signal_stops_at_once_and_says_what_it_abandons(
    up_env: dict[str, str], running: tuple[subprocess.Popen[bytes], Path]
) -> None:
    up, log = running
    url = f"http://127.0.0.1:{up_env['ASSETPIPE_HTTP_PORT']}"
    _post_events(url, "forced", 200_000)
    up.send_signal(signal.SIGINT)
    wait_until(lambda: "waiting for" in log.read_text(), 30, "the drain to say what it waits for")
    up.send_signal(signal.SIGINT)
    text = _stopped(up, log, timeout=60)
    assert "stopping now:" in text and "are abandoned" in text, text[-2000:]


def test_the_embedded_broker_killed_is_restarted_and_nothing_acknowledged_after_is_lost(
    up_env: dict[str, str], running: tuple[subprocess.Popen[bytes], Path], tmp_path: Path
) -> None:
    up, log = running
    url = f"http://127.0.0.1:{up_env['ASSETPIPE_HTTP_PORT']}"
    broker = int(
        subprocess.run(["pgrep", "-f", "--", f"--listener-url tcp://127.0.0.1:{up_env['ASSETPIPE_EMBEDDED_KAFKA_PORT']}"],
                       capture_output=True, text=True, check=True).stdout.split()[0]
    )  # fmt: skip
    os.kill(broker, signal.SIGKILL)
    wait_until(lambda: "the embedded broker exited" in log.read_text(), 30, "the stack to see the broker die")
    wait_until(lambda: _ready(up_env), 120, "the stack ready again")
    acknowledged = _post_events(url, "after", 50_000)
    assert up.poll() is None
    up.send_signal(signal.SIGTERM)  # at once: the drain writes what the restarted broker holds
    text = _stopped(up, log)
    assert "the workers resumed" in text

    again = _start(up_env, tmp_path / "up-again.log")
    try:
        assert _count(up_env, "after") == acknowledged == 50_000
    finally:
        again.send_signal(signal.SIGINT)
        _stopped(again, tmp_path / "up-again.log")


def test_status_says_ready_only_when_a_report_is_taken_at_once(up_env: dict[str, str], tmp_path: Path) -> None:
    log = tmp_path / "up.log"
    up = start_cli(["up"], up_env, log)
    url = f"http://127.0.0.1:{up_env['ASSETPIPE_HTTP_PORT']}"
    pending: list[str] = []  # what status said while the stack was starting
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = run_cli(["status"], up_env, timeout=30)
            if status.returncode == 0:
                break
            if "starting" in status.stdout:
                pending.append(status.stdout)
        else:
            raise AssertionError(log.read_text())
        answer = httpx.post(f"{url}/report_asset_materialization/life/first", timeout=10)
        assert answer.status_code == 200, answer.text
        for component in ("kafka", "clickhouse", "ingest", "checks", "http"):
            assert component in status.stdout
        # while starting, every component it will run was listed, the ones not yet running as NOT READY
        assert pending, "status never answered while the stack was starting"
        assert (
            all(c in pending[0] for c in ("kafka", "clickhouse", "ingest", "checks", "http"))
            and "NOT READY" in pending[0]
        )
    finally:
        up.send_signal(signal.SIGINT)
        _stopped(up, log)
