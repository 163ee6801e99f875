"""``assetpipe serve`` as a user runs it: serving with several workers, and clear refusals to start."""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable
from pathlib import Path

import httpx

from assetpipe.broker import free_port
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.schemas.settings import Settings
from tests.integration.helpers import cli_env, run_cli, start_cli, up_env, wait_until
from tests.integration.http_server import event_id, ingested


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_serve_with_two_workers(
    settings_factory: Callable[..., Settings], warehouse: Warehouse, tmp_path: Path
) -> None:
    settings = settings_factory(http_port=free_port(), http_workers=2)
    url = f"http://127.0.0.1:{settings.http_port}"
    server = start_cli(["serve"], cli_env(settings), tmp_path / "serve.log")
    try:
        wait_until(lambda: _healthy(url), 60, "assetpipe serve ready")
        with httpx.Client(base_url=url, timeout=30) as client:  # new connections: both workers get some
            ids = [event_id(client.post(f"/report_asset_materialization/served/{i}", headers={"Connection": "close"}))
                   for i in range(6)]  # fmt: skip
            # whichever worker answers, /metrics counts the requests of both
            for _ in range(4):
                text = client.get("/metrics", headers={"Connection": "close"}).text
                line = 'assetpipe_http_requests_total{endpoint="/report_asset_materialization",status="200"}'
                assert f"{line} 6.0" in text, text
                assert "assetpipe_http_events_in_flight" in text
    finally:
        server.send_signal(signal.SIGINT)
        assert server.wait(30) == 0, (tmp_path / "serve.log").read_text()
    assert len(ingested(warehouse, settings, ids)) == 6
    log = (tmp_path / "serve.log").read_text()
    assert f"assetpipe HTTP API on {url} (2 worker(s))" in log
    assert "warning: no API keys" in log and "Traceback" not in log


def test_a_port_in_use_is_a_clear_message(settings_factory: Callable[..., Settings]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = settings_factory(http_port=port)
        for workers in ("1", "2"):
            done = run_cli(["serve"], cli_env(settings, ASSETPIPE_HTTP_WORKERS=workers), timeout=60)
            assert done.returncode == 2
            assert f"cannot listen on 127.0.0.1:{port}: the port is already in use" in done.stderr
            assert "ASSETPIPE_HTTP_PORT" in done.stderr and "Traceback" not in done.stderr


def test_serving_beyond_loopback_needs_api_keys(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(http_port=free_port())
    done = run_cli(["serve", "--host", "0.0.0.0"], cli_env(settings), timeout=60)
    assert done.returncode == 2
    assert "beyond loopback, without API keys: set ASSETPIPE_API_KEYS" in done.stderr
    assert "Traceback" not in done.stderr


def test_up_serves_the_api_and_remembers_assets_across_restarts(tmp_path: Path) -> None:
    env = up_env(tmp_path)
    url = f"http://127.0.0.1:{env['ASSETPIPE_HTTP_PORT']}"

    def stored(event: str) -> bool:
        sql = f"SELECT count() FROM assetpipe.asset_events WHERE event_id = '{event}'"
        done = run_cli(["sql", sql, "--format", "csv"], env)
        return done.returncode == 0 and done.stdout.splitlines()[-1] == "1"

    for run in ("first", "after restart"):
        up = start_cli(["up"], env, tmp_path / f"up-{run.replace(' ', '-')}.log")
        try:
            wait_until(lambda: _healthy(url), 90, f"assetpipe up serving HTTP ({run})")
            with httpx.Client(base_url=url, timeout=30) as client:
                if run == "first":
                    event = event_id(client.post("/report_asset_materialization/up/orders", json={"partition": "1"}))
                    wait_until(lambda: stored(event), 60, "the materialization in ClickHouse")  # noqa: B023 (called here)
                else:  # the broker kept nothing; the cache was seeded from ClickHouse
                    wait_until(lambda: client.get("/readyz").json()["known_assets"] == "loaded", 30, "cache loaded")
                    assert client.post("/report_asset_observation/up/orders").status_code == 200
                    assert client.post("/report_asset_observation/up/unknown").status_code == 404
        finally:
            up.send_signal(signal.SIGINT)
            assert up.wait(60) == 0
    log = (tmp_path / "up-first.log").read_text()
    assert f"http api        {url} (open: no API keys)" in log
    assert "the HTTP API runs without API keys" in log
