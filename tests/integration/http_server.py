"""Helpers for HTTP API tests: the real app under uvicorn in a thread, and the rows its events became."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx

from assetpipe.api import build_app
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.producers.http import ApiServer, create_app
from assetpipe.producers.http.known_assets import Seed
from assetpipe.schemas.settings import Settings
from tests.integration.helpers import running_worker, wait_until

COLUMNS = (
    "event_id", "event_type", "asset_key", "asset_key_path", "partition", "data_version", "description", "metadata",
    "metadata_types", "tags", "check_name", "check_passed", "check_severity", "failure_type", "failure_reason",
    "run_id", "source",
)  # fmt: skip


@contextmanager
def serving(settings: Settings, known_seed: Seed | None = None) -> Iterator[httpx.Client]:
    """The report API on ``settings.http_host:http_port``, and a client for it."""
    with serving_app(create_app(settings, known_seed=known_seed), settings) as client:
        yield client


@contextmanager
def serving_stack_api(settings: Settings, warehouse: Warehouse | None, timeout: float = 30) -> Iterator[httpx.Client]:
    """The HTTP API as ``assetpipe up`` builds it (report API, asset routes, catalog, web pages) on
    ``warehouse`` (the stack's; None: none in this process), and a client for it."""
    with serving_app(build_app(settings, warehouse), settings, timeout) as client:
        yield client


@contextmanager
def serving_app(app: Any, settings: Settings, timeout: float = 30) -> Iterator[httpx.Client]:
    """``app`` under uvicorn on ``settings.http_host:http_port``, and a client for it."""
    server = ApiServer(app, settings)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=timeout) as client:
            yield client
    finally:
        server.stop()


def wait_known_assets_loaded(client: httpx.Client) -> None:
    """The known-asset cache has read the accepted stream to its end (before that it refuses nothing)."""
    wait_until(lambda: client.get("/readyz").json().get("known_assets") == "loaded", 30, "known assets loaded")


def rows(warehouse: Warehouse, settings: Settings, event_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """event id -> its row in ``asset_events``, as a dict of ``COLUMNS``."""
    result = warehouse.query(
        f"SELECT {', '.join(COLUMNS)} FROM {settings.clickhouse_database}.asset_events "
        "WHERE event_id IN {ids:Array(UUID)}",
        parameters={"ids": list(event_ids)},
    )
    return {str(row[0]): dict(zip(COLUMNS, row, strict=True)) for row in result.rows}


def ingested(warehouse: Warehouse, settings: Settings, event_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Run an ingest worker until every event is in ClickHouse; their rows."""
    with running_worker(settings, warehouse):
        wait_until(lambda: len(rows(warehouse, settings, event_ids)) == len(set(event_ids)), 60, "events in ClickHouse")
    return rows(warehouse, settings, event_ids)


def event_id(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success", body
    return str(body["event_id"])


def retry_until_200(send: Any, timeout: float = 60.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        response: httpx.Response = send()
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.2)
