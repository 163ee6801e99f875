"""A repeated report still says "seen now": the ingest worker keeps one event per (type, asset, partition,
data version) and records every report of it in ``asset_report_state`` (first and last reported, repeats),
on the real broker and ClickHouse engine. A batch written again counts nothing twice."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from confluent_kafka import Message

from assetpipe.broker import free_port
from assetpipe.consumers.catalog.reports import report_state
from assetpipe.consumers.exceptions import WarehouseUnavailableError
from assetpipe.consumers.ingest.handler import IngestHandler
from assetpipe.consumers.ingest.rows import EventColumns
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.schemas.codec import Codec
from assetpipe.schemas.model import build_record
from assetpipe.schemas.settings import Settings
from tests.integration.helpers import insert_event_rows, running_worker, wait_until
from tests.integration.http_server import event_id, serving

HOST = {"source": "sdk", "host": "test"}
MAT, OBS = "/report_asset_materialization", "/report_asset_observation"
STATE = (  # read as an analyst would, with FINAL; times and ids as text
    "SELECT toString(event_type), partition, data_version, toString(first_reported_at), toString(last_reported_at), "
    "repeats, toString(last_repeat_at), toString(finalizeAggregation(last_repeat_id)), toString(stored_event_id) "
    "FROM {db}.asset_report_state FINAL WHERE asset_key = %(key)s ORDER BY event_type, partition, data_version"
)
EVENTS = (
    "SELECT toString(event_id), data_version, metadata FROM {db}.asset_events WHERE asset_key = %(key)s "
    "AND event_type = 'observation' ORDER BY timestamp"
)
NO_REPEAT = (None, "00000000-0000-0000-0000-000000000000")


def at(text: str) -> str:
    """An ISO 8601 time in UTC as ClickHouse writes a DateTime64(6)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S.%f")


def micros(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()) * 1_000_000


def rows(warehouse: Warehouse, sql: str, key: str) -> list[tuple[Any, ...]]:
    return warehouse.query(sql.replace("{db}", warehouse.database), parameters={"key": key}).rows


def kpis(lag_minutes: int, timestamp: str) -> dict[str, Any]:
    """Seed 003's "data freshness" observation: the same data version, a new lag each time."""
    metadata = {"last_updated": "2024-01-15T23:45:00Z", "lag_minutes": lag_minutes, "source_system": "analytics"}
    return {"data_version": "2024-01-15", "timestamp": timestamp, "metadata": metadata}


@pytest.fixture
def api_settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(http_port=free_port())


def test_an_observation_repeated_with_the_same_data_version_is_stored_once_and_counted_twice(
    api_settings: Settings, warehouse: Warehouse
) -> None:
    key = f"reports/daily_kpis_{uuid.uuid4().hex[:8]}"
    with serving(api_settings) as client, running_worker(api_settings, warehouse) as worker:
        event_id(client.post(f"{MAT}/{key}"))  # an asset is observed once it exists
        first = event_id(client.post(f"{OBS}/{key}", json=kpis(15, "2024-01-16T10:02:00Z")))
        wait_until(lambda: len(rows(warehouse, EVENTS, key)) == 1, 60, "the first report stored")
        second = event_id(client.post(f"{OBS}/{key}", json=kpis(71, "2024-01-16T10:58:00Z")))
        wait_until(lambda: worker.status()["duplicates"] == 1, 60, "the second report judged a duplicate")
    assert second != first  # the client got a 200 and an event id of its own

    # one stored event: the first report, its metadata; the second's lag is not stored
    stored = {"last_updated": "2024-01-15T23:45:00Z", "lag_minutes": "15", "source_system": "analytics"}
    assert rows(warehouse, EVENTS, key) == [(first, "2024-01-15", stored)]
    # its identity was reported twice, first at 10:02, last at 10:58 (the second report's own time and id)
    assert rows(warehouse, STATE, key) == [
        ("observation", "", "2024-01-15", at("2024-01-16T10:02:00Z"), at("2024-01-16T10:58:00Z"), 1,
         at("2024-01-16T10:58:00Z"), second, first)
    ]  # fmt: skip
    # as the catalog will show it
    assert report_state(warehouse.read_only_query, key) == [
        {"event_type": "observation", "partition": None, "data_version": "2024-01-15",
         "first_reported_at": "2024-01-16T10:02:00Z", "last_reported_at": "2024-01-16T10:58:00Z", "reports": 2,
         "repeats": 1, "stored_event_id": first, "last_event_id": second}
    ]  # fmt: skip


def test_an_observation_without_a_data_version_is_stored_whole_each_time_and_has_no_report_state(
    api_settings: Settings, warehouse: Warehouse
) -> None:
    """The way to keep every report's metadata: no data version (or one that changes). Each report is an
    event of its own, with its metadata; a retry with the same Idempotency-Key is the same event, stored once."""
    key = f"api/user_service_{uuid.uuid4().hex[:8]}"
    ids = []
    with serving(api_settings) as client, running_worker(api_settings, warehouse) as worker:
        event_id(client.post(f"{MAT}/{key}"))
        for i, window in enumerate(("1h", "2h")):
            body = {"metadata": {"error_rate": f"0.{i}%", "monitoring_window": window}}
            ids.append(event_id(client.post(f"{OBS}/{key}", json=body, headers={"Idempotency-Key": window})))
        again = event_id(client.post(f"{OBS}/{key}", json={"metadata": {"x": 1}}, headers={"Idempotency-Key": "2h"}))
        wait_until(lambda: worker.status()["consumed"] == 4, 60, "every report consumed")
        status = worker.status()
    assert again == ids[1]
    assert (status["ingested"], status["redelivered"], status["duplicates"]) == (3, 1, 0)
    assert [(event, metadata["monitoring_window"]) for event, _, metadata in rows(warehouse, EVENTS, key)] == [
        (ids[0], "1h"),
        (ids[1], "2h"),
    ]
    assert rows(warehouse, STATE, key) == []
    assert report_state(warehouse.read_only_query, key) == []


@pytest.fixture
def session(warehouse: Warehouse) -> Iterator[Warehouse]:
    """A ClickHouse session of its own, as a worker has (the staging tables are per session)."""
    own = Warehouse(warehouse.dsn, warehouse.database)
    yield own
    own.close()


def batch(records: list[dict[str, Any]], topic: str) -> list[Message]:
    """The records as one batch read from ``topic``'s partition 0, from offset 0."""
    codec = Codec(timestamp_micros=True)
    values = [codec.encode("observation", record) for record in records]
    return [Message(topic=topic, partition=0, offset=i, key=b"k", value=v) for i, v in enumerate(values)]


def test_a_batch_written_again_counts_nothing_twice_and_a_redelivered_event_is_no_repeat(
    settings: Settings, warehouse: Warehouse, session: Warehouse
) -> None:
    handler = IngestHandler(session, Codec(timestamp_micros=True), settings)
    key = f"redelivered_{uuid.uuid4().hex[:8]}"

    def observed(version: str, when: str) -> dict[str, Any]:
        return build_record(
            "observation", [key], partition="p", data_version=version, timestamp_us=micros(when), **HOST
        )

    stored, other = observed("v1", "2024-01-16T10:00:00Z"), observed("v2", "2024-01-16T10:00:00Z")
    repeats = [observed("v1", "2024-01-16T10:05:00Z"), observed("v1", "2024-01-16T10:09:00Z")]
    handler.handle(batch([stored, other], "first"))
    second = batch([*repeats, stored], "second")  # two repeats, and the stored event itself again
    handler.handle(second)
    handler.handle(second)  # the same offsets again: the worker crashed before committing them
    metrics = handler.metrics
    assert (metrics.ingested, metrics.duplicates, metrics.redelivered) == (2, 4, 2)
    assert rows(warehouse, STATE, key) == [
        ("observation", "p", "v1", at("2024-01-16T10:00:00Z"), at("2024-01-16T10:09:00Z"), 2,
         at("2024-01-16T10:09:00Z"), repeats[1]["event_id"], stored["event_id"]),
        ("observation", "p", "v2", at("2024-01-16T10:00:00Z"), at("2024-01-16T10:00:00Z"), 0, *NO_REPEAT,
         other["event_id"]),
    ]  # fmt: skip

    # a crash after the events were written, before the repeats: the batch again counts the repeat once
    new, late = observed("v3", "2024-01-16T11:00:00Z"), observed("v1", "2024-01-16T11:30:00Z")
    third = batch([new, late], "third")
    command = session.command

    def crash_before_repeats(sql: str, *args: Any, **kwargs: Any) -> Any:
        if "asset_report_state" in sql:
            raise WarehouseUnavailableError("the worker died here")
        return command(sql, *args, **kwargs)

    session.command = crash_before_repeats  # type: ignore[method-assign]
    with pytest.raises(WarehouseUnavailableError):
        handler.handle(third)
    session.command = command  # type: ignore[method-assign]
    handler.handle(third)  # v3, REDELIVERED now, was reported once, with its insert
    state = {row[2]: row[3:] for row in rows(warehouse, STATE, key)}
    assert state["v3"] == (at("2024-01-16T11:00:00Z"), at("2024-01-16T11:00:00Z"), 0, *NO_REPEAT, new["event_id"])
    assert state["v1"][1:3] == (at("2024-01-16T11:30:00Z"), 3)
    assert len(rows(warehouse, EVENTS, key)) == 3


@pytest.mark.parametrize("old_warehouse", [18], indirect=True)
def test_the_migration_fills_the_report_state_of_the_events_stored_before(old_warehouse: Warehouse) -> None:
    events = EventColumns()
    stored = [  # two identities, and an event without a data version
        ("materialization", {"partition": "2024-01-01", "data_version": "v1"}, "2024-01-02T00:00:00Z"),
        ("observation", {"data_version": "v1"}, "2024-01-03T00:00:00Z"),
        ("materialization", {"partition": "2024-01-01"}, "2024-01-04T00:00:00Z"),
    ]
    records = []
    for i, (event_type, fields, when) in enumerate(stored):
        records.append(build_record(event_type, ["old", "a"], timestamp_us=micros(when), **fields, **HOST))
        events.append(event_type, records[-1], i, 0, i)
    insert_event_rows(old_warehouse, events)

    assert "0018_report_state" in old_warehouse.migrate()
    assert rows(old_warehouse, STATE, "old/a") == [
        ("materialization", "2024-01-01", "v1", at("2024-01-02T00:00:00Z"), at("2024-01-02T00:00:00Z"), 0, *NO_REPEAT,
         records[0]["event_id"]),
        ("observation", "", "v1", at("2024-01-03T00:00:00Z"), at("2024-01-03T00:00:00Z"), 0, *NO_REPEAT,
         records[1]["event_id"]),
    ]  # fmt: skip
