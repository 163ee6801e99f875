"""Helpers for the sensor and run tests: a code location per test, the ingest, sensor and run workers in
threads of this process (they share its ClickHouse engine), run requests, and waiting on ClickHouse."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from confluent_kafka import Producer

from assetpipe.consumers.ingest.worker import IngestWorker
from assetpipe.consumers.runs.worker import RunWorker
from assetpipe.consumers.sensors.run_keys import run_request_record
from assetpipe.consumers.sensors.worker import SensorWorker
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.definitions.loader import load_definitions
from assetpipe.definitions.ops import RunRequest
from assetpipe.schemas.codec import Codec
from assetpipe.schemas.settings import Settings

DEFS = Path(__file__).parent / "defs"


class Worker(Protocol):
    def run(self, stop: threading.Event) -> None: ...


def location_settings(settings_factory: Callable[..., Settings], **overrides: Any) -> Settings:
    """Fresh topics, groups and code location: run keys and cursors are kept per location."""
    return settings_factory(code_location=f"loc{uuid.uuid4().hex[:10]}", **overrides)


@contextmanager
def running(*workers: Worker) -> Iterator[None]:
    stop = threading.Event()
    errors: list[BaseException] = []

    def run(worker: Worker) -> None:
        try:
            worker.run(stop)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,), name=type(w).__name__) for w in workers]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert not errors, f"a worker failed: {errors[0]!r}"


@dataclass
class Pipeline:
    ingest: IngestWorker
    sensors: SensorWorker | None
    runs: RunWorker | None


@contextmanager
def pipeline(
    settings: Settings, warehouse: Warehouse, defs_file: str, *, sensors: bool = True, runs: bool = True
) -> Iterator[Pipeline]:
    """The ingest worker, and the sensor and run workers of ``defs/<defs_file>``."""
    defs = load_definitions(DEFS / defs_file, settings.code_location)
    p = Pipeline(
        IngestWorker(settings, warehouse),
        SensorWorker(settings, defs, warehouse) if sensors else None,
        RunWorker(settings, defs, warehouse) if runs else None,
    )
    with running(*(w for w in (p.ingest, p.sensors, p.runs) if w is not None)):
        yield p


def request_run(settings: Settings, job_name: str, run_config: Mapping[str, Any] | None = None) -> str:
    """Publish a run request for a job of the settings' code location; returns the run id."""
    run_id = str(uuid.uuid4())
    record = run_request_record(
        RunRequest(run_config=run_config), run_id=run_id, job_name=job_name, code_location=str(settings.code_location)
    )
    producer = Producer(settings.producer_config())
    producer.produce(settings.topics.run_requests, Codec().encode("run_request", record), run_id.encode())
    assert producer.flush(30) == 0
    return run_id


def rows(warehouse: Warehouse, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """A query with ``{db}`` for the session database."""
    return warehouse.query(sql.replace("{db}", warehouse.database), parameters=params).rows


def wait_rows(
    warehouse: Warehouse, sql: str, count: int, timeout: float = 45.0, **params: Any
) -> list[tuple[Any, ...]]:
    """The query's rows once it returns at least ``count`` of them."""
    deadline = time.monotonic() + timeout
    found: list[tuple[Any, ...]] = []
    while time.monotonic() < deadline:
        found = rows(warehouse, sql, **params)
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {count} rows, got {found}: {sql}")


def ticks(warehouse: Warehouse, settings: Settings, sensor: str) -> list[tuple[Any, ...]]:
    """(status, data version, run keys, skip reason, error) of a sensor's ticks, oldest first."""
    return rows(
        warehouse,
        "SELECT status, data_version, run_keys, skip_reason, error FROM {db}.sensor_ticks FINAL "
        "WHERE code_location = %(loc)s AND sensor_name = %(sensor)s ORDER BY evaluated_at",
        loc=settings.code_location,
        sensor=sensor,
    )


def wait_ticks(warehouse: Warehouse, settings: Settings, sensor: str, count: int) -> list[tuple[Any, ...]]:
    return wait_rows(
        warehouse,
        "SELECT status, data_version, run_keys, skip_reason, error FROM {db}.sensor_ticks FINAL "
        "WHERE code_location = %(loc)s AND sensor_name = %(sensor)s ORDER BY evaluated_at",
        count,
        loc=settings.code_location,
        sensor=sensor,
    )


def finished_runs(warehouse: Warehouse, settings: Settings, count: int, **where: str) -> list[dict[str, Any]]:
    """Runs of the settings' code location in a final status (matching ``where`` columns), as dicts."""
    columns = ("run_id", "job_name", "status", "sensor_name", "trigger_event_id", "run_key", "run_config", "tags",
               "requested_at", "started_at", "finished_at", "duration_ms", "attempts", "error_type", "error_message",
               "error_traceback", "error_metadata")  # fmt: skip
    filters = "".join(f" AND {column} = %({column})s" for column in where)
    sql = (
        f"SELECT {', '.join(columns)} FROM {{db}}.runs FINAL WHERE code_location = %(loc)s "
        f"AND status IN ('succeeded', 'failed', 'launched'){filters} ORDER BY requested_at"
    )
    found = wait_rows(warehouse, sql, count, loc=settings.code_location, **where)
    return [dict(zip(columns, row, strict=True)) for row in found]
