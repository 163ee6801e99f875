"""The materialization failure in the contract: the model, its wire record, validation, the JSON form and
the codec."""

from __future__ import annotations

import struct
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from assetpipe import AssetMaterializationFailure, MetadataValue
from assetpipe.schemas import jsonform
from assetpipe.schemas.codec import Codec
from assetpipe.schemas.encoder import EventEncoder
from assetpipe.schemas.errors import FieldError, ValidationError
from assetpipe.schemas.model import build_record, event_from_record
from assetpipe.schemas.validation import validate_record

WHEN = datetime(2024, 3, 4, 5, 6, 7, 890_123, tzinfo=UTC)
HOST: dict[str, Any] = {"source": "http", "host": "10.0.0.7"}


def _failure(**fields: Any) -> AssetMaterializationFailure:
    values: dict[str, Any] = {
        "partition": "2024-03-04",
        "description": "step failed: KeyError 'id'",
        "metadata": {"attempt": 3, "log": MetadataValue.url("https://logs/1")},
        "tags": {"team": "data"},
        "event_id": str(uuid.uuid4()),
        "timestamp": WHEN,
        "run_id": "run-9",
        "reason": "UPSTREAM_FAILED_TO_MATERIALIZE",
        **fields,
    }
    return AssetMaterializationFailure("sales/daily", **values)


def test_a_failure_is_failed_for_an_unknown_reason_unless_told_otherwise() -> None:
    record = AssetMaterializationFailure("a/b").to_record()
    assert (record["failure_type"], record["reason"]) == ("FAILED", "UNKNOWN")
    assert "data_version" not in record and "check_name" not in record


def test_the_record_has_the_schema_fields_and_decodes_to_the_same_event(codec: Codec) -> None:
    event = _failure(failure_type="SKIPPED", reason="RUN_TERMINATED")
    record = event.to_record()
    assert set(record) == {f["name"] for f in codec.schemas.current["materialization_failure"]["fields"]}

    event_type, decoded = codec.decode(codec.encode("materialization_failure", record))

    assert event_type == "materialization_failure"
    assert decoded["failure_type"] == "SKIPPED" and decoded["reason"] == "RUN_TERMINATED"
    assert event_from_record(event_type, decoded) == event


def test_a_failure_through_a_schema_registry_decodes_the_same() -> None:
    registry = SchemaRegistryClient.new_client({"url": f"mock://{uuid.uuid4().hex}"})
    codec = Codec(registry=registry)
    event = _failure()

    data = codec.encode("materialization_failure", event.to_record())

    assert data[:1] == b"\x00"
    schema_id = struct.unpack(">I", data[1:5])[0]
    assert "AssetMaterializationFailure" in registry.get_schema(schema_id).schema_str
    assert event_from_record(*Codec(registry=registry).decode(data)) == event


def test_a_failure_has_no_data_version_and_its_version_tag_stays_a_tag() -> None:
    with pytest.raises(ValidationError) as err:
        AssetMaterializationFailure("a", data_version="v1")
    assert err.value.field == "data_version"
    with pytest.raises(ValidationError) as err:
        build_record("materialization_failure", ["a"], data_version="v1", **HOST)
    assert err.value.field == "data_version"
    tagged = AssetMaterializationFailure("a", tags={"dagster/data_version": "v1"})
    assert tagged.data_version is None and tagged.to_record()["tags"] == {"dagster/data_version": "v1"}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("failure_type", "failed", "invalid failure type 'failed': expected FAILED or SKIPPED"),
        ("reason", "COMPUTE_FAILED", "invalid reason 'COMPUTE_FAILED': expected FAILED_TO_MATERIALIZE, "
         "UPSTREAM_FAILED_TO_MATERIALIZE, RUN_TERMINATED or UNKNOWN"),
        ("reason", None, "invalid reason None"),
    ],
)  # fmt: skip
def test_validation_names_a_choice_field_that_is_none_of_its_symbols(field: str, value: Any, message: str) -> None:
    record = {**build_record("materialization_failure", ["a"], **HOST), field: value}
    with pytest.raises(ValidationError) as err:
        validate_record("materialization_failure", record)
    assert err.value.field == field
    assert message in str(err.value)


def test_the_check_fields_are_not_a_failures_and_the_failure_fields_not_a_checks() -> None:
    check = build_record("check_evaluation", ["a"], check_name="c", passed=True, reason="RUN_TERMINATED", **HOST)
    failure = build_record("materialization_failure", ["a"], check_name="c", passed=True, **HOST)
    assert "reason" not in check and "failure_type" not in check
    assert "check_name" not in failure and "passed" not in failure and "severity" not in failure


def test_the_json_form_reads_type_and_reason_from_the_body_or_the_query_string() -> None:
    assert jsonform.event_type("asset_materialization_failure") == "materialization_failure"
    body = {"failure_type": "SKIPPED", "reason": "RUN_TERMINATED", "data_version": "ignored", "run_id": "r"}
    assert jsonform.build_fields("materialization_failure", body) == {
        "failure_type": "SKIPPED",
        "reason": "RUN_TERMINATED",
        "run_id": "r",
    }
    assert jsonform.build_fields("materialization_failure", {}, {"reason": "FAILED_TO_MATERIALIZE"}) == {
        "reason": "FAILED_TO_MATERIALIZE"
    }
    assert jsonform.build_fields("materialization_failure", {}) == {}  # FAILED, UNKNOWN: build_record's defaults


@pytest.mark.parametrize(
    ("body", "strings", "field", "message"),
    [
        ({"failure_type": "skipped"}, None, "failure_type",
         "Invalid failure type 'skipped': expected FAILED or SKIPPED"),
        ({"reason": 3}, None, "reason", "Field 'reason' must be a string, got number"),
        ({}, {"reason": "OOM"}, "reason", "Invalid reason 'OOM': expected FAILED_TO_MATERIALIZE, "
         "UPSTREAM_FAILED_TO_MATERIALIZE, RUN_TERMINATED or UNKNOWN"),
    ],
)  # fmt: skip
def test_the_json_form_refuses_an_unknown_type_or_reason_naming_the_field(
    body: dict[str, Any], strings: dict[str, str] | None, field: str, message: str
) -> None:
    with pytest.raises(FieldError) as err:
        jsonform.build_fields("materialization_failure", body, strings)
    assert (err.value.field, err.value.reason) == (field, message)


def test_a_json_form_failure_is_encoded_as_the_model_would(codec: Codec) -> None:
    encoder = EventEncoder(codec, source="http", host="")
    body = {"partition": "p", "description": "boom", "reason": "FAILED_TO_MATERIALIZE", "metadata": {"rows": 0}}

    encoded = encoder.encode_form("materialization_failure", body, ["a", "b"], host="10.0.0.7", strings={})

    event = event_from_record(*codec.decode(encoded.value))
    assert isinstance(event, AssetMaterializationFailure)
    assert (event.asset_key.path, event.partition, event.description) == (("a", "b"), "p", "boom")
    assert (event.failure_type, event.reason, event.metadata) == ("FAILED", "FAILED_TO_MATERIALIZE",
                                                                  {"rows": MetadataValue.int(0)})  # fmt: skip
    assert (event.source, event.host) == ("http", "10.0.0.7")
