"""The ingest worker end to end: SDK -> Kafka -> worker -> ClickHouse, on the real broker and engine."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest
from confluent_kafka import Producer
from fastavro.schema import parse_schema

from assetpipe import Reporter
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.schemas.codec import HISTORY_DIR, Codec, schema_fingerprint
from assetpipe.schemas.metadata import (
    LocalFileCodeReference,
    MetadataValue,
    TableColumn,
    TableColumnConstraints,
    TableColumnDep,
    TableColumnLineage,
    TableRecord,
    TableSchema,
    UrlCodeReference,
    from_text,
    normalize,
)
from assetpipe.schemas.model import build_record
from assetpipe.schemas.settings import Settings
from tests.integration.helpers import read_topic, running_worker, wait_until

N = 100_000

ALL_TYPES: dict[str, Any] = {
    "text": "hello",
    "url": MetadataValue.url("https://example.com/d"),
    "path": Path("/data/f.csv"),
    "notebook": MetadataValue.notebook("nb/a.ipynb"),
    "json": {"a": [1, 2, {"b": None}]},
    "md": MetadataValue.md("# Title\n*x*"),
    "int": -(2**62),
    "float": 0.25,
    "bool": False,
    "timestamp": MetadataValue.timestamp(datetime(2024, 1, 15, 12, tzinfo=UTC)),
    "null": None,
    "asset": MetadataValue.asset("upstream/orders"),
    "table": MetadataValue.table([TableRecord({"id": 1, "name": "a"}), TableRecord({"id": 2, "name": "b"})]),
    "table_schema": TableSchema(
        [
            TableColumn("id", "int", "the key", TableColumnConstraints(False, True, ("> 0",)), {"pii": ""}),
            TableColumn("name"),
        ]
    ),
    "column_lineage": TableColumnLineage({"id": [TableColumnDep("raw/orders", "order_id")]}),
    "code_references": MetadataValue.code_references(
        [LocalFileCodeReference("/src/a.py", 12, "def"), UrlCodeReference("https://git.example/a.py#L12")]
    ),
}


def event_args(i: int, run: str) -> tuple[str, dict[str, Any]]:
    """Event i of a data set: mostly materializations, some observations and checks."""
    kind = ("materialization", "observation", "check")[0 if i % 10 < 8 else 1 if i % 10 == 8 else 2]
    metadata: dict[str, Any] = {"rows": i, "size_mb": i / 7, "owner": "team-a", "ok": True, "n": i % 3}
    if i % 1000 == 0:
        metadata = dict(ALL_TYPES)
    args: dict[str, Any] = {"partition": f"2024-01-{i % 28 + 1:02d}", "metadata": metadata}
    if kind == "check":
        args.update(check_name="row_count", passed=i % 3 != 0, severity="WARN" if i % 2 else "ERROR")
    else:
        args.update(data_version=f"{run}-{i}", tags={"team": "sales", "tier": str(i % 3)})
    return kind, args


def publish(reporter: Reporter, n: int, run: str) -> list[str]:
    ids = []
    for i in range(n):
        kind, args = event_args(i, run)
        key = f"sales/table_{i % 50}"
        if kind == "check":
            receipt = reporter.report_check(key, idempotency_key=f"{run}-{i}", **args)
        elif kind == "observation":
            receipt = reporter.report_observation(key, **args)
        else:
            receipt = reporter.report_materialization(key, **args)
        ids.append(receipt.event_id)
    reporter.flush(120)
    return ids


def db_count(warehouse: Warehouse, settings: Settings, where: str) -> int:
    sql = f"SELECT count() FROM {settings.clickhouse_database}.asset_events WHERE {where}"
    return int(warehouse.query(sql).rows[0][0])


@pytest.mark.slow
def test_100k_events_land_exactly_once_with_every_field_intact(settings: Settings, warehouse: Warehouse) -> None:
    run = uuid.uuid4().hex[:8]
    with Reporter(settings=settings) as reporter:
        ids = publish(reporter, N, run)
    with running_worker(settings, warehouse) as worker:
        wait_until(lambda: worker.status()["ingested"] >= N, 120, "100,000 events ingested")
    rows = warehouse.query(
        f"SELECT count(), uniqExact(event_id) FROM {settings.clickhouse_database}.asset_events "
        f"WHERE has(%(ids)s, toString(event_id))",
        parameters={"ids": ids},
        settings={"max_query_size": 10_000_000},
    ).rows
    assert rows == [(N, N)]
    assert worker.status()["duplicates"] == 0

    # every field of a few events, and every metadata type, as an analyst reads them
    for i in (0, 1000, 8, 9, 12_345):
        kind, args = event_args(i, run)
        row = warehouse.query(
            f"SELECT event_type, asset_key, asset_key_path, partition, data_version, metadata, metadata_types, "
            f"tags, check_name, check_passed, check_severity, source, producer_host "
            f"FROM {settings.clickhouse_database}.asset_events WHERE event_id = %(id)s",
            parameters={"id": ids[i]},
        ).rows
        assert len(row) == 1
        (
            etype,
            key,
            path,
            partition,
            data_version,
            metadata,
            types,
            tags,
            check,
            passed,
            severity,
            source,
            host,
        ) = row[0]
        assert etype == {"check": "check_evaluation"}.get(kind, kind)
        assert (key, path, partition) == (
            f"sales/table_{i % 50}",
            ["sales", f"table_{i % 50}"],
            args["partition"],
        )
        assert source == "sdk" and host
        expected = {k: normalize(k, v) for k, v in args["metadata"].items()}
        assert {k: from_text(types[k], metadata[k]) for k in metadata} == expected
        if kind == "check":
            assert (check, passed, severity) == ("row_count", args["passed"], args["severity"])
            assert data_version == "" and tags == {}
        else:
            assert (check, passed, severity) == ("", None, None)
            assert data_version == args["data_version"] and tags == args["tags"]

    # every numeric metadata entry is a time series
    numeric = warehouse.query(
        f"SELECT count() FROM {settings.clickhouse_database}.asset_metadata_numeric "
        f"WHERE has(%(ids)s, toString(event_id)) AND key = 'rows'",
        parameters={"ids": ids},
        settings={"max_query_size": 10_000_000},
    ).rows
    assert numeric == [(N - N // 1000,)]


@pytest.mark.slow
def test_republishing_the_same_data_versions_adds_zero_rows(settings: Settings, warehouse: Warehouse) -> None:
    run = uuid.uuid4().hex[:8]
    where = f"data_version LIKE '{run}-%'"
    with running_worker(settings, warehouse) as worker:
        with Reporter(settings=settings) as reporter:
            ids = publish(reporter, N, run)
        wait_until(lambda: worker.status()["consumed"] >= N, 120, "first publication ingested")
        first = db_count(warehouse, settings, where)
        assert first == N - N // 10  # checks carry no data version
        # the key filter ruled out nearly every new key: they were not looked up in ClickHouse
        assert worker.status()["looked_up"] < N // 100
        with Reporter(settings=settings) as reporter:
            publish(reporter, N, run)  # new event ids, same data versions; checks reuse idempotency keys
        wait_until(lambda: worker.status()["consumed"] >= 2 * N, 120, "second publication consumed")
        status = worker.status()
    assert db_count(warehouse, settings, where) == first
    assert status["ingested"] == N
    # new ids with stored versions are repeated reports; the checks, sent again with their ids, are the same events,
    # although their keys (hashed from the id, so naming it) were stored without it
    assert (status["duplicates"], status["redelivered"]) == (N - N // 10, N // 10)
    assert status["looked_up"] >= N  # every key of the second publication was in the filter
    db = settings.clickhouse_database
    sample = f"FROM {db}.asset_events WHERE event_id IN {{ids:Array(UUID)}}"  # the first 1,000 events: 100 checks
    owners = warehouse.query(
        f"SELECT e.data_version = '', k.event_id = toUUID('00000000-0000-0000-0000-000000000000'), count() "
        f"FROM (SELECT data_version, dedup_key {sample}) AS e INNER JOIN (SELECT dedup_key, event_id "
        f"FROM {db}.asset_event_keys WHERE dedup_key IN (SELECT dedup_key {sample})) AS k ON k.dedup_key = e.dedup_key "
        "GROUP BY ALL ORDER BY ALL",
        {"ids": ids[:1000]},
    ).rows
    # only the keys hashed from an event's id are stored without it
    assert owners == [(False, False, 900), (True, True, 100)]


def test_bad_messages_go_to_the_dlq_and_the_rest_is_ingested(
    settings: Settings, warehouse: Warehouse, codec: Codec
) -> None:
    producer = Producer(settings.producer_config())
    topic = settings.topics.events
    host = {"source": "sdk", "host": "test"}
    good_ids = []
    bad: dict[int, tuple[bytes, str]] = {}  # index in the stream -> (bytes, expected error code)
    invalid_records = [
        {**build_record("materialization", ["a"], **host), "asset_key": ["a", ""]},  # empty key part
        build_record("materialization", ["a"], tags={"bad key!": "x"}, **host),
        build_record("observation", ["a"], tags={"k": "has space"}, **host),
        {**build_record("materialization", ["a"], **host), "event_id": "not-a-uuid"},
        {**build_record("check_evaluation", ["a"], check_name="", passed=True, **host)},
    ]
    valid_record = build_record("materialization", ["a", "ok"], metadata={"x": 1}, **host)
    garbage = [b"", b"garbage", b"\xc3\x01" + b"\x00" * 8 + b"xx", b"\x00\x00\x00\x00\x07abc",
               codec.encode("materialization", valid_record)[:-3]]  # fmt: skip
    stream: list[bytes] = []
    for i in range(200):
        if i % 10 == 3 and garbage:
            data, code = garbage.pop(), "undecodable"
            bad[len(stream)] = (data, code)
            stream.append(data)
        elif i % 10 == 7 and invalid_records:
            record = invalid_records.pop()
            data = codec.encode(_type_of(record), record)
            bad[len(stream)] = (data, "invalid_event")
            stream.append(data)
        else:
            record = build_record("materialization", ["a", "ok"], metadata={"i": i}, **host)
            good_ids.append(record["event_id"])
            stream.append(codec.encode("materialization", record))
    for data in stream:
        producer.produce(topic, data, b"a/ok")  # one key: one partition, so offsets follow the stream
    assert producer.flush(30) == 0

    with running_worker(settings, warehouse) as worker:
        wait_until(lambda: worker.status()["consumed"] >= len(stream), 60, "stream consumed")
    count = warehouse.query(
        f"SELECT count() FROM {settings.clickhouse_database}.asset_events WHERE has(%(ids)s, toString(event_id))",
        parameters={"ids": good_ids},
    ).rows[0][0]
    assert count == len(good_ids)

    dead = read_topic(settings, settings.topics.dlq, len(bad))
    assert len(dead) == len(bad)
    offsets = sorted(bad)
    for message in sorted(dead, key=lambda m: int(dict(m.headers())["source_offset"])):
        headers = {k: v.decode() for k, v in message.headers()}
        index = offsets.pop(0)
        data, code = bad[index]
        assert message.value() == data
        assert headers["error_code"] in ({code} if code == "invalid_event" else {"undecodable", "unknown_schema"})
        assert headers["error_reason"]
        assert headers["source_topic"] == topic and int(headers["source_offset"]) == index


def _type_of(record: dict[str, Any]) -> str:
    return "check_evaluation" if "check_name" in record else "materialization"


def test_an_event_written_with_the_previous_schema_is_ingested(settings: Settings, warehouse: Warehouse) -> None:
    v1 = parse_schema(json.loads((HISTORY_DIR / "assetpipe.AssetMaterialization.v1.avsc").read_text()))
    record = build_record(
        "materialization",
        ["legacy", "table"],
        source="sdk",
        host="old",
        data_version="v1",
        metadata={"rows": 3},
    )
    del record["run_id"]  # v1 has no run_id
    buf = io.BytesIO()
    buf.write(b"\xc3\x01" + schema_fingerprint(v1))
    fastavro.schemaless_writer(buf, v1, record)
    producer = Producer(settings.producer_config())
    producer.produce(settings.topics.events, buf.getvalue(), b"legacy/table")
    assert producer.flush(30) == 0
    with running_worker(settings, warehouse) as worker:
        wait_until(lambda: worker.status()["ingested"] >= 1, 60, "the v1 event ingested")
    rows = warehouse.query(
        f"SELECT asset_key, data_version, metadata, run_id FROM {settings.clickhouse_database}.asset_events "
        "WHERE event_id = %(id)s",
        parameters={"id": record["event_id"]},
    ).rows
    assert rows == [("legacy/table", "v1", {"rows": "3"}, "")]


@pytest.mark.parametrize(
    ("batch_rows", "queue_max", "n"),
    [
        (100, 1_000_000, 3_000),  # many batches, each published while the next is written
        (5_000, 4_000, 12_000),  # batches forwarded partly by chunks, partly one by one (room for 2,000)
    ],
    ids=["small-batches", "chunks-and-singles"],
)
def test_the_accepted_stream_keeps_each_assets_order_across_batches(
    settings_factory: Callable[..., Settings], warehouse: Warehouse, batch_rows: int, queue_max: int, n: int
) -> None:
    settings = settings_factory(ingest_batch_max_rows=batch_rows, producer_queue_max_messages=queue_max)
    run = uuid.uuid4().hex[:8]
    with Reporter(settings=settings) as reporter:  # a backlog first: the worker's batches fill up
        for i in range(n):
            reporter.report_materialization(f"ordered/a{i % 7}", data_version=f"{run}-{i:05d}")
    with running_worker(settings, warehouse) as worker:
        wait_until(lambda: worker.status()["consumed"] >= n, 120, "every event ingested")
        assert worker.status()["batches"] >= n // batch_rows
    codec = Codec()
    versions: dict[str, list[str]] = {}
    for message in read_topic(settings, settings.topics.accepted, n):
        record = codec.decode(message.value() or b"")[1]
        versions.setdefault("/".join(record["asset_key"]), []).append(record["data_version"])
    assert sum(len(v) for v in versions.values()) == n
    for asset, published in versions.items():
        assert published == sorted(published), f"{asset}: accepted out of order"
    assert db_count(warehouse, settings, f"data_version LIKE '{run}-%'") == n


def test_a_quiet_stream_closes_the_batch_before_its_time_bound(
    settings_factory: Callable[..., Settings], warehouse: Warehouse
) -> None:
    """The end of a burst is written once the partitions are quiet, not when the time bound runs out."""
    settings = settings_factory(ingest_batch_max_seconds=600.0, ingest_batch_idle_seconds=0.2)
    with running_worker(settings, warehouse) as worker:
        wait_until(lambda: worker.metrics.state == "running", 60, "the worker running")
        with Reporter(settings=settings) as reporter:
            for i in range(50):
                reporter.report_materialization(f"quiet/a{i % 5}")
        # consumed counts a batch once it is written, published and committed (ingested: once written)
        wait_until(lambda: worker.status()["consumed"] >= 50, 120, "the burst committed, long before 600 s")
        assert worker.status()["batches"] >= 1
    assert db_count(warehouse, settings, "asset_key LIKE 'quiet/%'") == 50
