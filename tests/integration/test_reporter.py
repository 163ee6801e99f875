"""The SDK against a real broker: what ``Reporter`` publishes is what lands on the events topic.

Each test reads the topic back with a fresh consumer group and decodes with the ``Codec``; the last test
points a reporter at a port where nothing listens.
"""

from __future__ import annotations

import socket
import time
import uuid
from typing import Any

import pytest
from confluent_kafka import Consumer, Message

from assetpipe import (
    AssetCheckEvaluation,
    AssetMaterialization,
    AssetMaterializationFailure,
    DeliveryError,
    LocalFileCodeReference,
    MetadataValue,
    PublishTimeoutError,
    Reporter,
    TableColumn,
    TableColumnConstraints,
    TableColumnDep,
    TableColumnLineage,
    TableConstraints,
    TableRecord,
    TableSchema,
    UrlCodeReference,
)
from assetpipe.broker import free_port
from assetpipe.producers.publisher import Publisher
from assetpipe.schemas.codec import Codec
from assetpipe.schemas.errors import ValidationError
from assetpipe.schemas.metadata import normalize
from assetpipe.schemas.model import AssetEvent, event_from_record
from assetpipe.schemas.settings import Settings

EVERY_KIND: dict[str, Any] = {
    "rows": 1204,
    "ratio": 0.25,
    "owner": "finance",
    "fresh": True,
    "config": {"mode": "full", "days": [1, 2]},
    "nothing": None,
    "dashboard": MetadataValue.url("https://dash.example/sales"),
    "file": MetadataValue.path("/data/sales/2024-06-01.parquet"),
    "notebook": MetadataValue.notebook("notebooks/sales.ipynb"),
    "notes": MetadataValue.md("# Sales\nloaded"),
    "loaded_at": MetadataValue.timestamp(1717243200.5),
    "upstream": MetadataValue.asset("raw/orders"),
    "sample": MetadataValue.table(
        [
            TableRecord({"id": 1, "name": "a", "ok": True, "score": 0.5, "note": None}),
            TableRecord({"id": 2, "name": "b", "ok": False, "score": 1.5, "note": "late"}),
        ]
    ),
    "schema": TableSchema(
        [
            TableColumn("id", "int", "order id", TableColumnConstraints(nullable=False, unique=True), {"pii": "no"}),
            TableColumn("amount", "float"),
        ],
        TableConstraints(("amount >= 0",)),
    ),
    "lineage": TableColumnLineage({"id": [TableColumnDep("raw/orders", "order_id")]}),
    "code": MetadataValue.code_references(
        [LocalFileCodeReference("etl/sales.py", 12, "load"), UrlCodeReference("https://git.example/etl/sales.py")]
    ),
}


def read_events(settings: Settings, expected: int, *, linger: float = 0.0, timeout: float = 20.0) -> list[Message]:
    """Every message on the events topic: waits for ``expected``, then ``linger`` seconds for extras."""
    consumer = Consumer(settings.consumer_config(f"g{uuid.uuid4().hex[:10]}"))
    consumer.subscribe([settings.topics.events])
    messages: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while len(messages) < expected and time.monotonic() < deadline:
            messages.extend(consumer.consume(num_messages=1000, timeout=0.2))
        end = time.monotonic() + linger
        while time.monotonic() < end:
            messages.extend(consumer.consume(num_messages=1000, timeout=0.1))
    finally:
        consumer.close()
    errors = [m.error() for m in messages if m.error()]
    assert not errors, errors
    return messages


def decode(codec: Codec, message: Message) -> AssetEvent:
    value = message.value()
    assert value is not None
    return event_from_record(*codec.decode(value))


def test_reported_events_arrive_keyed_by_asset_and_decode_to_what_was_reported(
    settings: Settings, codec: Codec
) -> None:
    with Reporter(settings=settings) as reporter:
        receipts = [
            reporter.report_materialization(
                "sales/daily",
                partition="2024-06-01",
                data_version="v7",
                description="nightly load",
                metadata=EVERY_KIND,
                tags={"team": "finance", "dagster/kind/table": ""},
            ),
            reporter.report_observation(["sales", "daily"], data_version="v7", metadata={"rows": 1204}),
            reporter.report_check("sales/daily", check_name="rows_positive", passed=False, severity="WARN"),
        ]
        for receipt in receipts:
            receipt.result(timeout=10)

    messages = read_events(settings, 3)
    assert [m.key() for m in messages] == [b"sales/daily"] * 3
    assert len({m.partition() for m in messages}) == 1
    assert {m.topic() for m in messages} == {settings.topics.events}
    materialization, observation, check = (decode(codec, m) for m in messages)
    assert [e.event_id for e in (materialization, observation, check)] == [r.event_id for r in receipts]

    assert isinstance(materialization, AssetMaterialization)
    assert materialization.asset_key.path == ("sales", "daily")
    assert (materialization.partition, materialization.data_version) == ("2024-06-01", "v7")
    assert materialization.description == "nightly load"
    assert materialization.metadata == {key: normalize(key, value) for key, value in EVERY_KIND.items()}
    assert materialization.tags == {"team": "finance", "dagster/kind/table": ""}
    assert (materialization.source, materialization.host) == ("sdk", socket.gethostname())
    assert observation.event_type == "observation" and observation.metadata == {"rows": MetadataValue.int(1204)}
    assert isinstance(check, AssetCheckEvaluation)
    assert (check.check_name, check.passed, check.severity) == ("rows_positive", False, "WARN")


def test_each_assets_events_stay_in_order_on_one_partition(settings: Settings, codec: Codec) -> None:
    assets = ["a/one", "b/two", "c/three", "d/four"]
    with Reporter(settings=settings) as reporter:  # fire and forget: leaving the block flushes
        for i in range(40):
            reporter.report_materialization(assets[i % 4], data_version=f"{i:03d}")

    messages = read_events(settings, 40)
    assert len(messages) == 40
    for asset in assets:
        mine = [m for m in messages if m.key() == asset.encode()]
        assert len({m.partition() for m in mine}) == 1
        versions = [decode(codec, m).data_version or "" for m in mine]
        assert versions == sorted(versions) and len(versions) == 10


def test_event_objects_keep_their_id_and_timestamp(settings: Settings, codec: Codec) -> None:
    event = AssetMaterialization("sales/daily", event_id=str(uuid.uuid4()), metadata={"rows": 3})
    with Reporter(settings=settings) as reporter:
        reporter.report(event).result(timeout=10)
        reporter.report(AssetCheckEvaluation("sales/daily", check_name="fresh", passed=True)).result(timeout=10)

    first, second = (decode(codec, m) for m in read_events(settings, 2))
    assert first.event_id == event.event_id and first.metadata == event.metadata
    assert isinstance(second, AssetCheckEvaluation) and second.check_name == "fresh"


def test_idempotency_key_gives_the_same_event_id_twice(settings: Settings, codec: Codec) -> None:
    with Reporter(settings=settings) as reporter:
        first = reporter.report_materialization("sales/daily", partition="p1", idempotency_key="run-42/step-1")
        again = reporter.report_materialization("sales/daily", partition="p1", idempotency_key="run-42/step-1")
    assert first.event_id == again.event_id

    ids = [decode(codec, m).event_id for m in read_events(settings, 2)]
    assert ids == [first.event_id, first.event_id]  # both published: the warehouse keeps one


def test_a_reporter_without_receipts_returns_event_ids_and_publishes_the_same(settings: Settings, codec: Codec) -> None:
    with Reporter(settings=settings, receipts=False) as reporter:
        ids = [
            reporter.report_materialization("sales/daily", partition="2024-06-01", metadata=EVERY_KIND),
            reporter.report_observation("sales/daily", data_version="v7"),
            reporter.report_check("sales/daily", check_name="rows_positive", passed=True),
            reporter.report(AssetMaterialization("sales/weekly", metadata={"rows": 3})),
        ]
        with pytest.raises(ValidationError):  # invalid events raise as ever, and nothing is published
            reporter.report_materialization("sales/daily", tags={"bad key!": "x"})
        reporter.flush(10)
        assert reporter.pending == 0

    assert all(type(event_id) is str and uuid.UUID(event_id).version == 7 for event_id in ids)
    events = {e.event_id: e for e in (decode(codec, m) for m in read_events(settings, 4, linger=0.5))}
    assert sorted(events) == sorted(ids)  # two assets: two partitions, read in either order
    types = [events[i].event_type for i in ids]
    assert types == ["materialization", "observation", "check_evaluation", "materialization"]
    assert events[ids[0]].metadata == {key: normalize(key, value) for key, value in EVERY_KIND.items()}


def test_invalid_tag_raises_naming_the_field_and_publishes_nothing(settings: Settings, codec: Codec) -> None:
    with Reporter(settings=settings) as reporter:
        with pytest.raises(ValidationError) as raised:
            reporter.report_materialization("sales/daily", tags={"bad key!": "x"})
        assert raised.value.field == "tags.bad key!"
        assert reporter.pending == 0
        sentinel = reporter.report_observation("sales/daily")

    messages = read_events(settings, 1, linger=1.0)
    assert [decode(codec, m).event_id for m in messages] == [sentinel.event_id]


def test_a_materialization_failure_is_published_as_reported(settings: Settings, codec: Codec) -> None:
    with Reporter(settings=settings, host="etl-1") as reporter:
        with pytest.raises(ValidationError) as raised:  # refused before anything is published
            reporter.report_materialization_failure("sales/daily", reason="OOM")  # type: ignore[arg-type]
        assert raised.value.field == "reason" and reporter.pending == 0
        receipt = reporter.report_materialization_failure(
            "sales/daily", partition="p1", failure_type="SKIPPED", reason="RUN_TERMINATED", description="cancelled",
            metadata={"attempt": 2}, tags={"team": "sales"}, run_id="run-5", idempotency_key="run-5/sales",
        )  # fmt: skip
        receipt.result(timeout=10)

    (event,) = (decode(codec, m) for m in read_events(settings, 1, linger=0.5))
    assert event == AssetMaterializationFailure(
        ["sales", "daily"], partition="p1", failure_type="SKIPPED", reason="RUN_TERMINATED", description="cancelled",
        metadata={"attempt": 2}, tags={"team": "sales"}, run_id="run-5", event_id=receipt.event_id,
        timestamp=event.timestamp, source="sdk", host="etl-1",
    )  # fmt: skip


def test_publisher_passes_headers_through(settings: Settings) -> None:
    with Publisher.from_settings(settings) as publisher:
        publisher.publish(settings.topics.events, b"k", b"raw", {"trace": b"t-1"}, event_id="e1").result(10)

    [message] = read_events(settings, 1)
    assert (message.key(), message.value(), message.headers()) == (b"k", b"raw", [("trace", b"t-1")])


def test_unreachable_broker_surfaces_through_receipt_and_flush() -> None:
    settings = Settings.model_validate({"kafka_bootstrap_servers": f"127.0.0.1:{free_port()}"})
    reporter = Reporter(settings=settings, producer_overrides={"message.timeout.ms": 1000})
    awaited = reporter.report_materialization("sales/daily")
    with pytest.raises(PublishTimeoutError, match=r"not acknowledged within 0\.1s"):
        awaited.result(timeout=0.1)
    forgotten = reporter.report_materialization("sales/weekly")

    with pytest.raises(DeliveryError, match="1 event was not delivered") as raised:
        awaited.result(timeout=10)
    assert raised.value.event_ids == (awaited.event_id,)
    with pytest.raises(DeliveryError) as raised:
        reporter.close(timeout=10)
    assert raised.value.event_ids == (forgotten.event_id,)
    assert raised.value.code == "delivery_failed"
    assert reporter.failed == ()


def test_without_receipts_a_failed_delivery_is_raised_by_flush_naming_the_events() -> None:
    settings = Settings.model_validate({"kafka_bootstrap_servers": f"127.0.0.1:{free_port()}"})
    reporter = Reporter(settings=settings, producer_overrides={"message.timeout.ms": 1000}, receipts=False)
    ids = [reporter.report_materialization("sales/daily", partition=f"p{i}") for i in range(3)]
    ids.append(reporter.report_check("sales/daily", check_name="fresh", passed=False))

    with pytest.raises(DeliveryError, match="4 events were not delivered") as raised:
        reporter.flush(timeout=10)
    assert sorted(raised.value.event_ids) == sorted(ids)
    assert reporter.failed == ()
    reporter.close(timeout=1)  # nothing left: the failures were raised once
