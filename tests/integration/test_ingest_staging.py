"""The ingest handler's staged path on the real ClickHouse engine: what ClickHouse renders and filters
must match what Python would have done, and bytes that fool the fast path end up read by Python.

The handler is driven with in-process messages (confluent-kafka ``Message`` objects), so every case
runs as one batch through staging, the SQL filter, the dedup verdicts and the insert.
"""

from __future__ import annotations

import math
import random
import struct
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from confluent_kafka import Message, Producer

from assetpipe.consumers.exceptions import WarehouseUnavailableError
from assetpipe.consumers.ingest.handler import IngestHandler
from assetpipe.consumers.ingest.worker import IngestWorker
from assetpipe.consumers.sensors.run_keys import run_request_record
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.definitions.ops import RunRequest
from assetpipe.schemas.codec import Codec
from assetpipe.schemas.errors import ValidationError
from assetpipe.schemas.metadata import (
    MetadataValue,
    TableColumn,
    TableColumnConstraints,
    TableColumnDep,
    TableColumnLineage,
    TableConstraints,
    TableSchema,
    metadata_to_wire,
    to_text,
)
from assetpipe.schemas.model import build_record
from assetpipe.schemas.settings import Settings
from assetpipe.schemas.validation import TIMESTAMP_MAX_US, TIMESTAMP_MIN_US, validate_record
from tests.integration.helpers import wait_until

HOST = {"source": "sdk", "host": "test"}
FLOAT_EDGES = [0.0, -0.0, 1.0, -1.0, 0.1, 0.25, 1e-4, 9.999999999999999e-05, 1e-5, 2.5e-5, 1e15, 1e16 - 2,
               1e16, 1.5e16, 1e22, -1e22, 5e-324, 1.7976931348623157e308, 0.30000000000000004, 123456789012345.6,
               math.inf, -math.inf, math.nan, 2.0**53, 2.0**53 + 2, 1 / 3]  # fmt: skip


@pytest.fixture
def codec() -> Codec:
    return Codec(timestamp_micros=True)


@pytest.fixture
def handler(settings: Settings, warehouse: Warehouse, codec: Codec) -> Iterator[IngestHandler]:
    # its own session, as a worker has: the staging tables are per session
    own = Warehouse(warehouse.dsn, warehouse.database)
    yield IngestHandler(own, codec, settings)
    own.close()


def as_messages(values: list[bytes], topic: str = "t") -> list[Message]:
    return [Message(topic=topic, partition=0, offset=i, key=b"k", value=v) for i, v in enumerate(values)]


def stored_metadata(warehouse: Warehouse, event_ids: list[str]) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    rows = warehouse.query(
        f"SELECT toString(event_id), metadata, metadata_types FROM {warehouse.database}.asset_events "
        "WHERE has(%(ids)s, toString(event_id))",
        parameters={"ids": event_ids},
    ).rows
    return {event_id: (metadata, types) for event_id, metadata, types in rows}


def random_floats(n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    floats = [struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0] for _ in range(n)]
    floats += [rng.uniform(-1e6, 1e6) for _ in range(n)] + [float(rng.randint(-(10**17), 10**17)) for _ in range(n)]
    return floats + [rng.choice([1e-4, 1e16]) * rng.uniform(0.5, 2) for _ in range(n)]


def test_metadata_text_is_what_python_renders(handler: IngestHandler, warehouse: Warehouse, codec: Codec) -> None:
    rng = random.Random(7)
    floats = FLOAT_EDGES + random_floats(500, seed=11)
    records = []
    for i, value in enumerate(floats):
        metadata: dict[str, Any] = {
            "f": value,
            "n": rng.randint(-(2**63), 2**63 - 1),
            "s": "".join(rng.choice("aé\u00e9\U0001f600'\\\"\n\t/") for _ in range(rng.randint(0, 12))),
            "b": i % 2 == 0,
            "none": None,
            "j": {"k": [1, 2.5, None]},
        }
        records.append(build_record("materialization", ["render", str(i)], metadata=metadata, **HOST))
    outcome = handler.handle(as_messages([codec.encode("materialization", r) for r in records]))
    assert not [o for o in outcome.outbound if o.topic.endswith(".dlq")]

    stored = stored_metadata(warehouse, [r["event_id"] for r in records])
    assert len(stored) == len(records)
    for record in records:
        metadata, types = stored[record["event_id"]]
        expected = {key: to_text(entry) for key, entry in record["metadata"].items()}
        assert metadata == expected, record["metadata"]["f"]
        assert types == {key: entry["kind"] for key, entry in record["metadata"].items()}
    assert handler.metrics.ingested == len(records)
    # ClickHouse rendered most; Python those outside the range where the two float forms agree
    assert handler.metrics.decoded_in_python < len(records) * 0.6


def test_table_schemas_and_column_lineage_are_rendered_as_python_renders_them(
    handler: IngestHandler, warehouse: Warehouse, codec: Codec
) -> None:
    rng = random.Random(5)
    # quotes, backslashes, slashes, non-ASCII; control characters and U+2028 are written \u.. by ClickHouse
    plain, escaped = "ab\"\\/\u00e9\U0001f600\n\t'<>", "\x01\x1f\u2028\u2029\x7f"

    def text(alphabet: str) -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))

    records = []
    for i in range(120):
        alphabet = plain + escaped if i % 4 == 0 else plain
        columns = [
            TableColumn(text(alphabet) or "c", text(alphabet), rng.choice([None, text(alphabet)]),
                        TableColumnConstraints(rng.random() < 0.5, rng.random() < 0.5, (text(alphabet),)),
                        {text(alphabet): text(alphabet)})
            for _ in range(rng.randint(0, 4))
        ]  # fmt: skip
        lineage = {
            text(alphabet) or "c": [TableColumnDep(["src", text(alphabet) or "t"], text(alphabet))]
            for _ in range(rng.randint(0, 3))
        }
        metadata = {
            "dagster/column_schema": MetadataValue.table_schema(TableSchema(columns, TableConstraints(("pk",)))),
            "dagster/column_lineage": MetadataValue.column_lineage(TableColumnLineage(lineage)),
        }
        records.append(build_record("materialization", ["schemas", str(i)], metadata=metadata, **HOST))
    outcome = handler.handle(as_messages([codec.encode("materialization", r) for r in records]))
    assert not [o for o in outcome.outbound if o.topic.endswith(".dlq")]

    stored = stored_metadata(warehouse, [r["event_id"] for r in records])
    for record in records:
        metadata, types = stored[record["event_id"]]
        assert metadata == {key: to_text(entry) for key, entry in record["metadata"].items()}
        assert types == {"dagster/column_schema": "table_schema", "dagster/column_lineage": "column_lineage"}
    # ClickHouse rendered the records whose strings need no \u escape: three in four, at least
    assert handler.metrics.decoded_in_python <= len(records) // 4


def random_event(rng: random.Random) -> tuple[str, dict[str, Any]]:
    """An event that may break any rule of schemas.validation, or none."""
    alphabet = "aZ09_.-/ :é!"

    def word(low: int, high: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(low, high)))

    event_type = rng.choice(["materialization", "observation", "check_evaluation"])
    checks = {"check_name": "c", "passed": True} if event_type == "check_evaluation" else {}
    record = build_record(event_type, ["ok"], **checks, **HOST)
    roll = rng.random()
    if roll < 0.15:
        record["asset_key"] = [word(0, 3) for _ in range(rng.randint(0, 3))]
    elif roll < 0.3:
        record["tags"] = {word(0, 70 if rng.random() < 0.1 else 8): word(0, 70 if rng.random() < 0.1 else 8)}
    elif roll < 0.4:
        record["tags"] = {rng.choice(["dagster/data_version", "dagster/partition/x", "dagster/kind/db"]): word(0, 6)}
    elif roll < 0.5:
        record["event_id"] = rng.choice([str(uuid.uuid4()).upper(), "x" * 36, str(uuid.uuid4())[:-1], "", "{}"])
    elif roll < 0.6:
        record["partition"] = rng.choice(["", "p", None])
        record["data_version"] = rng.choice(["", "v", None])
    elif roll < 0.7:
        record["metadata"] = {word(0, 2): {"kind": "int", "value": 1}}
    elif roll < 0.8 and event_type == "check_evaluation":
        record["check_name"] = rng.choice(["", "c"])
    elif roll < 0.9:
        edges = [TIMESTAMP_MIN_US - 1, TIMESTAMP_MIN_US, TIMESTAMP_MAX_US, TIMESTAMP_MAX_US + 1, 2**62, -(2**62)]
        record["timestamp"] = rng.choice([*edges, 1_717_200_000_000_000_000])  # the last: milliseconds as seconds
    return event_type, record


def test_every_event_python_rejects_goes_to_the_dlq_and_no_other(
    handler: IngestHandler, warehouse: Warehouse, codec: Codec, settings: Settings
) -> None:
    rng = random.Random(3)
    typed = [random_event(rng) for _ in range(600)]
    records = [record for _, record in typed]
    values, verdicts = [], []
    for event_type, record in typed:
        values.append(codec.encode(event_type, record))
        try:
            validate_record(event_type, record)
            verdicts.append(None)
        except ValidationError as exc:
            verdicts.append(str(exc))
    assert 100 < verdicts.count(None) < 500  # both kinds are well represented

    outcome = handler.handle(as_messages(values))
    dead = {int(dict(o.headers or [])["source_offset"]): o for o in outcome.outbound if o.topic == settings.topics.dlq}
    assert {i for i, v in enumerate(verdicts) if v is not None} == set(dead)
    for i, message in dead.items():
        assert dict(message.headers or [])["error_reason"].decode() == verdicts[i]
    valid_ids = {records[i]["event_id"].lower() for i, v in enumerate(verdicts) if v is None}
    stored = warehouse.query(
        f"SELECT count() FROM {warehouse.database}.asset_events WHERE has(%(ids)s, toString(event_id))",
        parameters={"ids": sorted(valid_ids)},
    ).rows[0][0]
    assert stored == handler.metrics.ingested


@pytest.mark.parametrize("cases", [[10], [20], [30], [10, 20, 30]], ids=["stray-bytes", "cut", "noise", "all"])
def test_bodies_that_are_not_one_record_are_read_in_python(
    handler: IngestHandler, warehouse: Warehouse, codec: Codec, settings: Settings, cases: list[int]
) -> None:
    good = [build_record("observation", ["framing", str(i)], partition="p", **HOST) for i in range(50)]
    values = [codec.encode("observation", r) for r in good]
    damaged = {
        10: values[10] + b"\x02\x04",  # one record and two stray bytes: ClickHouse reads on, misaligned
        20: values[20][:-4],  # cut short
        30: values[30][:12] + bytes(range(200, 250)),  # the right header, then noise
    }
    bad = {i: damaged[i] for i in cases}
    outcome = handler.handle(as_messages([bad.get(i, v) for i, v in enumerate(values)]))

    dead = {int(dict(o.headers or [])["source_offset"]) for o in outcome.outbound if o.topic == settings.topics.dlq}
    assert dead == set(bad)
    kept = [r["event_id"] for i, r in enumerate(good) if i not in bad]
    assert len(stored_metadata(warehouse, kept)) == len(kept)
    assert handler.metrics.decoded_in_python >= len(bad)


def test_strings_that_are_not_utf8_go_to_the_dlq(
    handler: IngestHandler, warehouse: Warehouse, codec: Codec, settings: Settings
) -> None:
    # well framed, so ClickHouse reads the batch: only the SQL filter can send these to Python
    good = [build_record("observation", ["utf8", str(i)], partition="pp", **HOST) for i in range(20)]
    values = [codec.encode("observation", r) for r in good]
    split = {**good[15], "asset_key": ["aX", "Yb"]}  # halves of one character, each invalid alone
    # invalid strings deep in a column schema and a column lineage, which ClickHouse renders as JSON
    schema = {**good[8], "metadata": metadata_to_wire({"s": TableSchema([TableColumn("id", "QQ")])})}
    lineage = {**good[9], "metadata": metadata_to_wire({"l": TableColumnLineage({"c": [TableColumnDep(["t"], "QQ")]})})}
    bad = {
        5: values[5].replace(b"\x02\x04pp", b"\x02\x04\xff\xfe"),
        8: codec.encode("observation", schema).replace(b"QQ", b"\xc3Q"),
        9: codec.encode("observation", lineage).replace(b"QQ", b"Q\xff"),
        15: codec.encode("observation", split).replace(b"\x04aX\x04Yb", b"\x04a\xc3\x04\xa9b"),
    }
    outcome = handler.handle(as_messages([bad.get(i, v) for i, v in enumerate(values)]))

    dead = {int(dict(o.headers or [])["source_offset"]) for o in outcome.outbound if o.topic == settings.topics.dlq}
    assert dead == set(bad)
    kept = [r["event_id"] for i, r in enumerate(good) if i not in bad]
    assert len(stored_metadata(warehouse, kept)) == len(kept)
    assert handler.metrics.decoded_in_python == len(bad)


def test_duplicates_in_one_batch_and_across_batches(handler: IngestHandler, warehouse: Warehouse, codec: Codec) -> None:
    first = build_record("materialization", ["dups"], partition="p", data_version="v1", **HOST)
    same_version = build_record("materialization", ["dups"], partition="p", data_version="v1", **HOST)
    other = build_record("materialization", ["dups"], partition="p", data_version="v2", **HOST)
    batch = [codec.encode("materialization", r) for r in (first, same_version, first, other)]
    handler.handle(as_messages(batch))
    assert (handler.metrics.ingested, handler.metrics.duplicates, handler.metrics.redelivered) == (2, 1, 1)

    again = build_record("materialization", ["dups"], partition="p", data_version="v2", **HOST)
    handler.handle(as_messages([codec.encode("materialization", again), batch[0]], topic="t2"))
    assert (handler.metrics.ingested, handler.metrics.duplicates, handler.metrics.redelivered) == (2, 2, 2)
    rows = warehouse.query(
        f"SELECT data_version, toString(event_id) FROM {warehouse.database}.asset_events "
        "WHERE asset_key = 'dups' ORDER BY data_version"
    ).rows
    assert rows == [("v1", first["event_id"]), ("v2", other["event_id"])]


def test_confluent_framed_events_are_staged_once_their_schema_id_is_known(
    settings: Settings, warehouse: Warehouse
) -> None:
    from confluent_kafka.schema_registry import SchemaRegistryClient

    registry = SchemaRegistryClient.new_client({"url": f"mock://{uuid.uuid4().hex}"})  # one, for both sides
    producer_codec = Codec(registry=registry)
    worker_codec = Codec(registry=registry, timestamp_micros=True)
    own = Warehouse(warehouse.dsn, warehouse.database)
    handler = IngestHandler(own, worker_codec, settings)
    try:
        records = [build_record("materialization", ["registry", str(i)], metadata={"i": i}, **HOST) for i in range(20)]
        values = [producer_codec.encode("materialization", r) for r in records]
        assert values[0][:1] == b"\x00"  # the Confluent wire format
        handler.handle(as_messages(values[:10]))  # the id is new: read in Python, then known
        read_first = handler.metrics.decoded_in_python
        handler.handle(as_messages(values[10:], topic="t2"))
    finally:
        own.close()
    assert read_first == 10 and handler.metrics.decoded_in_python == 10
    assert len(stored_metadata(warehouse, [r["event_id"] for r in records])) == 20


def test_a_topic_created_again_does_not_repeat_the_tokens_of_its_earlier_life(
    handler: IngestHandler, warehouse: Warehouse, codec: Codec
) -> None:
    def batch(life: str) -> tuple[list[Message], list[str]]:
        records = [build_record("materialization", ["reborn", life, str(i)], **HOST) for i in range(30)]
        return as_messages([codec.encode("materialization", r) for r in records], topic="reborn"), [
            r["event_id"] for r in records
        ]

    first, first_ids = batch("one")
    handler.handle(first)
    handler.handle(first)  # redelivered as it was: written once
    second, second_ids = batch("two")  # the same topic, partition and offsets, other events
    handler.handle(second)
    assert len(stored_metadata(warehouse, first_ids + second_ids)) == 60
    assert (handler.metrics.ingested, handler.metrics.redelivered) == (60, 30)


def test_a_session_lost_mid_batch_is_a_retry(settings: Settings, warehouse: Warehouse, codec: Codec) -> None:
    own = Warehouse(warehouse.dsn, warehouse.database)
    handler = IngestHandler(own, codec, settings)
    records = [build_record("materialization", ["session", str(i)], **HOST) for i in range(10)]
    batch = as_messages([codec.encode("materialization", r) for r in records], topic="session")
    query = own.query

    def query_in_a_new_session(sql: str, *args: Any, **kwargs: Any) -> Any:
        if "uniqExact(i)" in sql:  # staged, then the session ends (a reconnect after a network error)
            own.close()
        return query(sql, *args, **kwargs)

    own.query = query_in_a_new_session  # type: ignore[method-assign]
    try:
        with pytest.raises(WarehouseUnavailableError, match="session was lost"):
            handler.handle(batch)  # the loop retries a batch on this error
        own.query = query  # type: ignore[method-assign]
        handler.handle(batch)
    finally:
        own.close()
    assert len(stored_metadata(warehouse, [r["event_id"] for r in records])) == 10


def test_a_worker_of_two_consumers_shares_the_partitions_and_writes_once(
    settings: Settings, warehouse: Warehouse, codec: Codec
) -> None:
    producer = Producer(settings.producer_config())
    records = [build_record("materialization", ["consumers", str(i % 40)], **HOST) for i in range(4000)]
    for record in records:  # 40 asset keys over the topic's partitions
        producer.produce(settings.topics.events, codec.encode("materialization", record), record["asset_key"][1])
    assert producer.flush(30) == 0
    producer.close()

    worker = IngestWorker(settings, consumers=2)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        wait_until(lambda: worker.status()["consumed"] >= len(records), 90, "every event consumed")
    finally:
        stop.set()
        thread.join(60)
    assert [c.loop.metrics.consumed > 0 for c in worker.consumers] == [True, True]
    assert worker.status()["ingested"] == len(records) and worker.status()["consumers"] == 2
    assert len(stored_metadata(warehouse, [r["event_id"] for r in records])) == len(records)


def test_a_run_request_on_the_events_topic_goes_to_the_dlq(
    handler: IngestHandler, settings: Settings, codec: Codec
) -> None:
    """A message framed with another current schema of the contract than an asset event's (a RunRequest
    published to the wrong topic) is read in Python and dead-lettered; the events beside it are ingested."""
    stray = run_request_record(RunRequest(run_key="k"), run_id="r1", job_name="j", code_location="c")
    events = [build_record("materialization", ["stray", f"n{i}"], source="sdk", host="h") for i in range(3)]
    values = [codec.encode("materialization", events[0]), codec.encode("run_request", stray)]
    values += [codec.encode("materialization", e) for e in events[1:]]
    outcome = handler.handle(as_messages(values))
    dead = [o for o in outcome.outbound if o.topic == settings.topics.dlq]
    assert [dict(o.headers or [])["source_offset"] for o in dead] == [b"1"]
    assert handler.metrics.ingested == 3


def test_a_batch_of_history_over_many_months_is_written(
    handler: IngestHandler, warehouse: Warehouse, codec: Codec
) -> None:
    """Backfilled history: one batch whose events fall in more months (``asset_events``' partitions) than a
    ClickHouse insert takes by default (100), on both paths (half the events are rendered in Python)."""
    first = datetime(2000, 1, 15, tzinfo=UTC)
    times = [first + timedelta(days=31 * i) for i in range(300)]  # one a month, 25 years
    records = [
        build_record(
            "materialization",
            ["history", str(i)],
            timestamp_us=int(t.timestamp()) * 1_000_000,
            metadata={"f": 1e22 if i % 2 else 1.5},  # 1e22: rendered in Python
            **HOST,
        )
        for i, t in enumerate(times)
    ]
    handler.handle(as_messages([codec.encode("materialization", r) for r in records], topic="history"))
    assert warehouse.query(
        f"SELECT count(), uniqExact(toYYYYMM(timestamp)) FROM {warehouse.database}.asset_events "
        "WHERE asset_key LIKE 'history/%'"
    ).rows == [(300, len({(t.year, t.month) for t in times}))]
