"""EventEncoder: the record each report becomes, its key, its event id, and what it rejects."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from assetpipe import AssetCheckEvaluation, AssetKey, AssetMaterialization, MetadataValue
from assetpipe.schemas.codec import Codec
from assetpipe.schemas.encoder import EventEncoder
from assetpipe.schemas.errors import ConfigError, EventTooLargeError, ValidationError
from assetpipe.schemas.model import AssetObservation


@pytest.fixture
def encoder(codec: Codec) -> EventEncoder:
    return EventEncoder(codec, host="worker-1")


def decoded(codec: Codec, value: bytes) -> tuple[str, dict[str, Any]]:
    return codec.decode(value)


@pytest.mark.parametrize(
    ("asset_key", "parts", "key"),
    [
        ("sales/daily", ["sales", "daily"], b"sales/daily"),
        ("orders", ["orders"], b"orders"),
        (["raw", "s3/bucket"], ["raw", "s3/bucket"], b"raw/s3/bucket"),
        (("a", "b"), ["a", "b"], b"a/b"),
        (AssetKey(["warehouse", "orders"]), ["warehouse", "orders"], b"warehouse/orders"),
    ],
)
def test_asset_key_is_coerced_and_its_string_is_the_message_key(
    encoder: EventEncoder, codec: Codec, asset_key: Any, parts: list[str], key: bytes
) -> None:
    encoded = encoder.encode("materialization", asset_key)
    assert encoded.key == key
    assert decoded(codec, encoded.value)[1]["asset_key"] == parts


def test_materialization_fields_reach_the_wire_record(encoder: EventEncoder, codec: Codec) -> None:
    encoded = encoder.encode(
        "materialization",
        "sales/daily",
        partition="2024-06-01",
        data_version="v7",
        description="nightly load",
        metadata={
            "rows": 1204,
            "ratio": 0.25,
            "owner": "finance",
            "fresh": True,
            "dash": MetadataValue.url("https://d/1"),
        },
        tags={"team": "finance", "dagster/kind/table": ""},
    )
    event_type, record = decoded(codec, encoded.value)
    assert event_type == "materialization"
    assert record["event_id"] == encoded.event_id
    assert (record["partition"], record["data_version"], record["description"]) == ("2024-06-01", "v7", "nightly load")
    assert record["metadata"] == {
        "rows": {"kind": "int", "value": 1204},
        "ratio": {"kind": "float", "value": 0.25},
        "owner": {"kind": "text", "value": "finance"},
        "fresh": {"kind": "bool", "value": True},
        "dash": {"kind": "url", "value": "https://d/1"},
    }
    assert record["tags"] == {"team": "finance", "dagster/kind/table": ""}
    assert record["source"] == {"kind": "sdk", "host": "worker-1"}


def test_check_fields_reach_the_wire_record(encoder: EventEncoder, codec: Codec) -> None:
    encoded = encoder.encode("check_evaluation", "sales/daily", check_name="not_null", passed=False, severity="WARN")
    event_type, record = decoded(codec, encoded.value)
    assert event_type == "check_evaluation"
    assert (record["check_name"], record["passed"], record["severity"]) == ("not_null", False, "WARN")


def test_host_defaults_to_this_machine(codec: Codec) -> None:
    import socket

    assert EventEncoder(codec).host == socket.gethostname()


def test_idempotency_key_gives_the_same_event_id(encoder: EventEncoder) -> None:
    first = encoder.encode("materialization", "sales/daily", idempotency_key="run-42")
    again = encoder.encode("materialization", ["sales", "daily"], idempotency_key="run-42")
    assert first.event_id == again.event_id
    assert encoder.encode("observation", "sales/daily", idempotency_key="run-42").event_id != first.event_id
    assert encoder.encode("materialization", "sales/weekly", idempotency_key="run-42").event_id != first.event_id
    assert (
        encoder.encode("materialization", "sales/daily").event_id
        != encoder.encode("materialization", "sales/daily").event_id
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"asset_key": "sales//daily"}, "asset_key[1]"),
        ({"asset_key": ""}, "asset_key[0]"),
        ({"asset_key": []}, "asset_key"),
        ({"asset_key": None}, "asset_key"),
        ({"asset_key": ["a", 3]}, "asset_key[1]"),
        ({"tags": {"bad key": "x"}}, "tags.bad key"),
        ({"tags": {"team": "has space"}}, "tags.team"),
        ({"tags": {"n": 1}}, "tags.n"),
        ({"metadata": {"blob": object()}}, "metadata.blob"),
        ({"metadata": {"big": 2**70}}, "metadata.big"),
        ({"partition": ""}, "partition"),
        ({"data_version": 7}, "data_version"),
    ],
)
def test_invalid_event_raises_validation_error_naming_the_field(
    encoder: EventEncoder, kwargs: dict[str, Any], field: str
) -> None:
    args: dict[str, Any] = {"asset_key": "sales/daily", **kwargs}
    asset_key = args.pop("asset_key")
    with pytest.raises(ValidationError) as raised:
        encoder.encode("materialization", asset_key, **args)
    assert raised.value.field == field
    assert raised.value.code == "invalid_event"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"check_name": "", "passed": True}, "check_name"),
        ({"check_name": "c", "passed": "yes"}, "passed"),
        ({"check_name": "c", "passed": True, "severity": "INFO"}, "severity"),
    ],
)
def test_invalid_check_names_the_field(encoder: EventEncoder, kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        encoder.encode("check_evaluation", "sales/daily", **kwargs)
    assert raised.value.field == field


def test_oversized_event_is_rejected_before_publishing(codec: Codec) -> None:
    small = EventEncoder(Codec(codec.schemas, max_event_bytes=1024), host="h")
    with pytest.raises(EventTooLargeError) as raised:
        small.encode("materialization", "a", description="x" * 2000)
    assert raised.value.code == "event_too_large"


def test_unknown_source_is_a_config_error(codec: Codec) -> None:
    with pytest.raises(ConfigError, match="unknown event source 'cli'"):
        EventEncoder(codec, source="cli")  # type: ignore[arg-type]


def test_event_objects_keep_their_id_and_timestamp(encoder: EventEncoder, codec: Codec) -> None:
    when = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    event = AssetMaterialization(
        "sales/daily", event_id="0b5e1f7a-4a53-4e0b-9a9c-2f7c3b1d6e10", timestamp=when, metadata={"rows": 3}
    )
    encoded = encoder.encode_event(event)
    _, record = decoded(codec, encoded.value)
    assert encoded.event_id == record["event_id"] == "0b5e1f7a-4a53-4e0b-9a9c-2f7c3b1d6e10"
    assert encoded.key == b"sales/daily"
    assert record["timestamp"] == when
    assert record["source"] == {"kind": "sdk", "host": "worker-1"}


def test_an_event_object_timestamp_outside_the_range_is_refused(encoder: EventEncoder) -> None:
    for when in (datetime(2300, 1, 1, tzinfo=UTC), datetime(1899, 12, 31, tzinfo=UTC)):
        with pytest.raises(ValidationError, match="outside 1900-01-01 to 2299-12-31 UTC") as err:
            encoder.encode_event(AssetMaterialization("sales/daily", timestamp=when))
        assert err.value.field == "timestamp"


def test_event_objects_of_each_type(encoder: EventEncoder, codec: Codec) -> None:
    check = AssetCheckEvaluation(["a", "b"], check_name="fresh", passed=True, severity="WARN")
    assert decoded(codec, encoder.encode_event(check).value)[0] == "check_evaluation"
    observation = AssetObservation("a/b", data_version="v1")
    first = encoder.encode_event(observation, idempotency_key="k")
    assert first.event_id == encoder.encode_event(observation, idempotency_key="k").event_id
    assert decoded(codec, first.value)[1]["data_version"] == "v1"


def test_invalid_event_object_tag_names_the_field(encoder: EventEncoder) -> None:
    with pytest.raises(ValidationError) as raised:
        encoder.encode_event(AssetMaterialization("a", tags={"": "x"}))
    assert raised.value.field == "tags."


def test_invalid_event_object_asset_key_names_the_part(encoder: EventEncoder) -> None:
    with pytest.raises(ValidationError) as raised:
        encoder.encode_event(AssetMaterialization(["a", 3]))  # type: ignore[arg-type]
    assert raised.value.field == "asset_key[1]"


def test_encode_record_validates_records_built_elsewhere(encoder: EventEncoder) -> None:
    with pytest.raises(ValidationError) as raised:
        encoder.encode_record("materialization", {"event_id": "not-a-uuid", "asset_key": ["a"]})
    assert raised.value.field == "event_id"
