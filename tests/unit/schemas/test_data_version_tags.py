"""Dagster's ops set an event's data version in the tag ``dagster/data_version`` (once
``dagster/logical_version``): on every path the tag is the event's data version, and stays a tag."""

from __future__ import annotations

import json
from typing import Any

import pytest

from assetpipe import AssetCheckEvaluation, AssetMaterialization, AssetObservation, ValidationError
from assetpipe.schemas.codec import Codec
from assetpipe.schemas.encoder import EventEncoder
from assetpipe.schemas.model import EventType, build_record, event_from_record

TAGGED = {"dagster/data_version": "v7", "team": "sales"}
PROVENANCE = {
    "dagster/code_version": "3f2a-1",
    "dagster/input_data_version/raw/orders": "a" * 64,  # a sha256: longer than a tag value may be
    "dagster/input_logical_version/raw/items": "INITIAL",
    "dagster/data_version": "v7",
}


def wire(codec: Codec, value: bytes) -> dict[str, Any]:
    return codec.decode(value)[1]


@pytest.mark.parametrize("event_class", [AssetMaterialization, AssetObservation])
def test_the_tag_is_the_data_version_of_an_event_and_stays_a_tag(event_class: type[AssetMaterialization]) -> None:
    event = event_class("orders", tags=TAGGED)
    assert event.data_version == "v7" and event.tags == TAGGED
    assert event.to_record()["data_version"] == "v7" and event.to_record()["tags"] == TAGGED
    legacy = event_class("orders", tags={"dagster/logical_version": "old"})
    assert legacy.data_version == "old"
    assert event_class("orders", data_version="v7", tags=TAGGED).data_version == "v7"  # both, alike


@pytest.mark.parametrize("event_class", [AssetMaterialization, AssetObservation])
def test_a_data_version_and_a_different_tag_are_refused_naming_the_field(
    event_class: type[AssetMaterialization],
) -> None:
    with pytest.raises(ValidationError) as raised:
        event_class("orders", data_version="v8", tags=TAGGED)
    assert raised.value.field == "data_version" and "dagster/data_version" in raised.value.message
    with pytest.raises(ValidationError, match="data_version"):
        build_record("materialization", ["orders"], source="sdk", host="h", data_version="v8", tags=TAGGED)


def test_a_check_evaluation_carries_no_data_version() -> None:
    check = AssetCheckEvaluation("orders", check_name="rows", passed=True, tags=TAGGED)
    assert check.data_version is None


@pytest.mark.parametrize("event_type", ["materialization", "observation"])
def test_the_sdk_path_stores_the_tag_as_the_data_version(event_type: EventType, codec: Codec) -> None:
    report = EventEncoder(codec, host="h").reporter(event_type)  # what Reporter.report_* call
    _, key, value = report("sales/daily", None, None, None, {"rows": 3}, PROVENANCE)
    record = wire(codec, value)
    assert key == b"sales/daily" and record["data_version"] == "v7"
    assert record["tags"] == PROVENANCE  # provenance tags pass validation and are kept verbatim
    untagged = wire(codec, report("sales/daily", None, "v1", None, None, {"team": "x"})[2])
    assert untagged["data_version"] == "v1" and untagged["tags"] == {"team": "x"}  # the fast path, as ever
    with pytest.raises(ValidationError) as raised:
        report("sales/daily", None, "v8", None, None, TAGGED)
    assert raised.value.field == "data_version"


@pytest.mark.parametrize("strings", [None, {"tags": json.dumps(PROVENANCE)}])
def test_an_http_body_or_a_backfill_line_with_the_tag_gets_its_data_version(
    strings: dict[str, str] | None, codec: Codec
) -> None:
    encoder = EventEncoder(codec, source="http", host="h")
    body: dict[str, Any] = {} if strings else {"tags": PROVENANCE, "metadata": {"rows": 3}}
    encoded = encoder.encode_form("materialization", body, ["sales", "daily"], host="api-1", strings=strings)
    record = wire(codec, encoded.value)
    assert record["data_version"] == "v7" and record["tags"] == PROVENANCE
    legacy = encoder.encode_form("observation", {"tags": {"dagster/logical_version": "L1"}}, ["s"], host="api-1")
    assert wire(codec, legacy.value)["data_version"] == "L1"
    with pytest.raises(ValidationError, match="data_version"):
        encoder.encode_form("materialization", {"data_version": "v8", "tags": TAGGED}, ["s"], host="api-1")


def test_an_event_logged_by_an_op_is_encoded_with_the_tag_as_its_data_version(codec: Codec) -> None:
    encoded = EventEncoder(codec, source="run").encode_event(AssetObservation("raw/source", tags=TAGGED))
    assert wire(codec, encoded.value)["data_version"] == "v7"


def test_a_stored_event_keeps_its_data_version_where_an_older_tag_differs() -> None:
    """Events written before the tag was read may disagree with it: a worker rebuilding one must not fail."""
    record = build_record("materialization", ["orders"], source="sdk", host="h", data_version="v7", tags=TAGGED)
    record["data_version"] = "stored"
    event = event_from_record("materialization", record)
    assert event.data_version == "stored" and event.tags == TAGGED
