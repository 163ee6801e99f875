"""The dedup window (``ASSETPIPE_DEDUP_WINDOW_DAYS``) and the key filter's memory budget
(``ASSETPIPE_INGEST_KEY_FILTER_MAX_MB``) on the real broker and engine: a repeat of an event ingested inside the
window is dropped, one of an event ingested before it is stored and forwarded again (and ``FINAL`` reads a
re-sent event once); a filter past its budget looks up more keys and lets no repeat in."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from confluent_kafka import Producer

from assetpipe import Reporter
from assetpipe.consumers.ingest import sql as ingest_sql
from assetpipe.consumers.ingest.rows import EVENT_COLUMNS, EventColumns
from assetpipe.consumers.ingest.staging import sql_string
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.schemas.codec import Codec
from assetpipe.schemas.model import build_record
from assetpipe.schemas.settings import Settings
from tests.integration.helpers import count_rows, read_topic, running_worker, wait_until

HOST = {"source": "sdk", "host": "test"}


def store_as_ingested(warehouse: Warehouse, settings: Settings, record: dict[str, Any], days_ago: int) -> None:
    """``record``, a materialization, in ``asset_events`` as the ingest worker wrote it ``days_ago`` days ago:
    its dedup key as the worker computes it, the partition its asset key maps to."""
    asset = "/".join(record["asset_key"])
    parts = (record.get("partition"), record.get("data_version"), record["event_id"], record.get("run_id"))
    expression = ingest_sql.dedup_key_expr(
        "'materialization'", sql_string(asset), *(sql_string(p or "") for p in parts)
    )
    key = int(warehouse.query(f"SELECT {expression}").rows[0][0])
    rows = EventColumns()
    rows.append("materialization", record, key, zlib.crc32(asset.encode()) % settings.topic_partitions, 0)
    ingested = datetime.now(UTC) - timedelta(days=days_ago)
    warehouse.insert("asset_events", [*rows.columns, [ingested]], [*EVENT_COLUMNS, "ingested_at"])


def produce(settings: Settings, codec: Codec, records: list[dict[str, Any]]) -> None:
    producer = Producer(settings.producer_config())
    for record in records:
        producer.produce(settings.topics.events, codec.encode("materialization", record), "/".join(record["asset_key"]))
    assert producer.flush(30) == 0


@pytest.mark.parametrize("filter_bits", [16, 0], ids=["key-filter", "every-key-looked-up"])
def test_a_repeat_is_dropped_inside_the_window_and_stored_and_forwarded_again_past_it(
    settings_factory: Callable[..., Settings], warehouse: Warehouse, filter_bits: int
) -> None:
    settings = settings_factory(dedup_window_days=30, ingest_key_filter_bits=filter_bits)
    codec, run, db = Codec(timestamp_micros=True), uuid.uuid4().hex[:8], settings.clickhouse_database

    def report(name: str, days_ago: int = 0, **fields: Any) -> dict[str, Any]:
        at = int((datetime.now(UTC) - timedelta(days=days_ago)).timestamp() * 1e6)
        return build_record("materialization", ["win", run, name], partition="p", timestamp_us=at, **HOST, **fields)

    # events of some days ago, ingested then
    inside = report("inside", 29, data_version="v1")
    past = report("past", 32, data_version="v1")
    resent = report("resent", 40)  # no data version: its event id is its identity
    for record, days_ago in ((inside, 29), (past, 32), (resent, 40)):
        store_as_ingested(warehouse, settings, record, days_ago)
    # each reported again: the same data versions under new event ids, and the very same event re-sent
    inside_again, past_again = report("inside", data_version="v1"), report("past", data_version="v1")
    produce(settings, codec, [inside_again, past_again, resent])

    def rows(name: str, final: str = "") -> int:
        return count_rows(warehouse, f"SELECT count() FROM {db}.asset_events {final} WHERE asset_key = {{a:String}}",
                          a=f"win/{run}/{name}")  # fmt: skip

    with running_worker(settings, warehouse) as worker:
        wait_until(lambda: worker.status()["consumed"] >= 3, 60, "the repeats consumed")
        status = worker.status()
        assert (status["duplicates"], status["ingested"]) == (1, 2)
        # the identity stored again is in the window from now on: its next report is dropped
        past_third = report("past", data_version="v1")
        produce(settings, codec, [past_third])
        wait_until(lambda: worker.status()["consumed"] >= 4, 60, "the third report consumed")
        assert worker.status()["duplicates"] == 2

    accepted = read_topic(settings, settings.topics.accepted, 2)
    forwarded = {codec.decode(m.value() or b"")[1]["event_id"] for m in accepted}
    assert forwarded == {past_again["event_id"], resent["event_id"]}
    assert rows("inside") == 1
    # stored again past the window: a second row of the identity; FINAL reads one, the later
    assert rows("past") == 2  # in another month of event time: no merge collapses them
    latest = f"SELECT toString(event_id) FROM {db}.asset_events FINAL WHERE asset_key = {{a:String}}"
    assert warehouse.query(latest, parameters={"a": f"win/{run}/past"}).rows == [(past_again["event_id"],)]
    assert rows("resent", "FINAL") == 1


def test_a_key_filter_past_its_memory_budget_looks_up_more_keys_and_lets_no_repeat_in(
    settings_factory: Callable[..., Settings], warehouse: Warehouse
) -> None:
    settings = settings_factory(ingest_key_filter_max_mb=1)
    run, n, db = uuid.uuid4().hex[:8], 2000, settings.clickhouse_database

    def publish(first: int, count: int) -> None:
        with Reporter(settings=settings) as reporter:
            for i in range(first, first + count):
                reporter.report_materialization(f"budget/t{i % 40}", partition=f"p{i % 7}", data_version=f"{run}-{i}")

    publish(0, n)
    with running_worker(settings, warehouse) as worker:
        wait_until(lambda: worker.status()["consumed"] >= n, 60, "first publication ingested")
    # three million keys in the window: six times what a 1 MiB filter holds at 16 bits a key
    marker = 999_999  # a partition no topic has: these rows are removed afterwards
    warehouse.command(
        f"INSERT INTO {db}.asset_event_keys (dedup_key, event_id, asset_crc, kafka_partition, ingested_on) "
        f"SELECT sipHash64(number, '{run}'), generateUUIDv4(), toUInt32(number), {marker}, toDate(now('UTC')) "
        "FROM numbers(3000000)"
    )
    try:
        publish(0, 2 * n)  # the first n again, and n new
        with running_worker(settings, warehouse) as worker:
            wait_until(lambda: worker.status()["consumed"] >= 2 * n, 60, "second publication consumed")
            status = worker.status()
    finally:
        warehouse.command(
            f"ALTER TABLE {db}.asset_event_keys DELETE WHERE kafka_partition = {marker}", settings={"mutations_sync": 2}
        )
    assert count_rows(warehouse, f"SELECT count() FROM {db}.asset_events WHERE data_version LIKE '{run}-%'") == 2 * n
    assert (status["duplicates"], status["ingested"]) == (n, n)
    assert 0 < status["key_filter_bytes"] <= 1 << 20
    # the repeats are always looked up; most new keys were too: the full filter could not rule them out
    assert status["looked_up"] >= n + n // 2
