"""Contract validation of wire records: asset keys, Dagster's tag rules, checks, ids, size."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from assetpipe import AssetCheckEvaluation, AssetMaterialization, AssetpipeError, ValidationError
from assetpipe.schemas.codec import Codec
from assetpipe.schemas.errors import EventTooLargeError
from assetpipe.schemas.validation import TIMESTAMP_MAX_US, TIMESTAMP_MIN_US, validate_record

Record = dict[str, Any]


def _materialization(**changes: Any) -> Record:
    record = AssetMaterialization("sales/daily", metadata={"rows": 10}).to_record()
    record.update(changes)
    return record


def _check(**changes: Any) -> Record:
    record = AssetCheckEvaluation("sales/daily", check_name="row_count", passed=True).to_record()
    record.update(changes)
    return record


def _field_of_error(event_type: str, record: Record) -> str:
    with pytest.raises(ValidationError) as exc:
        validate_record(event_type, record)
    return exc.value.field


def test_valid_records_pass() -> None:
    validate_record("materialization", _materialization())
    validate_record("observation", AssetMaterialization("a").to_record())
    validate_record("check_evaluation", _check())


# -- asset key --


@pytest.mark.parametrize(
    ("asset_key", "field"),
    [
        ([], "asset_key"),
        ("sales", "asset_key"),
        (None, "asset_key"),
        ([""], "asset_key[0]"),
        (["sales", ""], "asset_key[1]"),
        (["sales", 7], "asset_key[1]"),
        (["sales", None], "asset_key[1]"),
    ],
)
def test_bad_asset_key_is_rejected(asset_key: Any, field: str) -> None:
    assert _field_of_error("materialization", _materialization(asset_key=asset_key)) == field


# -- tags (Dagster's strict asset-event rules) --


@pytest.mark.parametrize(
    "tags",
    [
        {"team": "data"},
        {"ns/name": "value"},
        {"a.b-c_d": "x.Y-z_0"},
        {"label": ""},
        {"a" * 63: "v"},
        {"n" * 63 + "/" + "k" * 63: "v" * 63},
        {"dagster/kind/python": ""},
        {"owner": "team-data", "tier": "1", "pii": ""},
    ],
    ids=["plain", "namespaced", "all-allowed-chars", "label", "63-char key", "63-char segments", "kind", "many"],
)
def test_valid_tags_pass(tags: dict[str, str]) -> None:
    validate_record("materialization", _materialization(tags=tags))


@pytest.mark.parametrize(
    ("tags", "field"),
    [
        ({"k" * 64: "v"}, "tags." + "k" * 64),
        ({"ns/" + "k" * 64: "v"}, "tags.ns/" + "k" * 64),
        ({"a/b/c": "v"}, "tags.a/b/c"),
        ({"bad key": "v"}, "tags.bad key"),
        ({"emoji✓": "v"}, "tags.emoji✓"),
        ({"ns/": "v"}, "tags.ns/"),
        ({"/name": "v"}, "tags./name"),
        ({"": "v"}, "tags."),
        ({"team\n": "v"}, "tags.team\n"),
        ({"team": "has space"}, "tags.team"),
        ({"team": "a/b"}, "tags.team"),
        ({"team": "v" * 64}, "tags.team"),
        ({"team": "data\n"}, "tags.team"),
        ({"team": 1}, "tags.team"),
        ({"team": None}, "tags.team"),
        ({1: "v"}, "tags"),
    ],
    ids=[
        "64-char key",
        "64-char name segment",
        "two namespaces",
        "space in key",
        "non-ascii key",
        "empty name",
        "empty namespace",
        "empty key",
        "trailing newline in key",
        "space in value",
        "slash in value",
        "64-char value",
        "trailing newline in value",
        "int value",
        "None value",
        "non-string key",
    ],
)
def test_invalid_tags_are_rejected_naming_the_tag(tags: dict[Any, Any], field: str) -> None:
    assert _field_of_error("materialization", _materialization(tags=tags)) == field


@pytest.mark.parametrize(
    "tags",
    [
        {"dagster/data_version": "any value: spaces, slashes/and more than sixty-three characters .........."},
        {"dagster/input_data_version/upstream/asset": "v 1"},
        {"dagster/input_event_pointer/x/y": "123 456"},
        {"dagster/code_version": "git sha 1a2b"},
        {"dagster/partition/date": "2024-01-01 00:00"},
    ],
    ids=["data_version", "input_data_version", "input_event_pointer", "code_version", "partition dimension"],
)
def test_system_data_version_tags_are_exempt(tags: dict[str, str]) -> None:
    validate_record("materialization", _materialization(tags=tags))


def test_system_tags_still_need_string_values() -> None:
    assert _field_of_error("materialization", _materialization(tags={"dagster/data_version": 3})) == (
        "tags.dagster/data_version"
    )


def test_non_mapping_tags_are_rejected() -> None:
    assert _field_of_error("materialization", _materialization(tags=["team"])) == "tags"


# -- metadata keys --


@pytest.mark.parametrize("key", ["", 1, None], ids=["empty", "int", "None"])
def test_metadata_keys_must_be_non_empty_strings(key: Any) -> None:
    record = AssetMaterialization("a", metadata={key: "x"}).to_record()
    assert _field_of_error("materialization", record) == "metadata"


# -- checks --


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"check_name": None}, "check_name"),
        ({"check_name": ""}, "check_name"),
        ({"check_name": 5}, "check_name"),
        ({"passed": None}, "passed"),
        ({"passed": "true"}, "passed"),
        ({"passed": 1}, "passed"),
        ({"severity": "warn"}, "severity"),
        ({"severity": "INFO"}, "severity"),
        ({"severity": None}, "severity"),
    ],
)
def test_bad_check_evaluation_is_rejected(changes: Record, field: str) -> None:
    assert _field_of_error("check_evaluation", _check(**changes)) == field


def test_lowercase_severity_message_names_severity_and_the_choices() -> None:
    record = AssetCheckEvaluation("a", check_name="c", passed=False, severity="warn").to_record()  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as exc:
        validate_record("check_evaluation", record)
    assert "severity" in str(exc.value)
    assert "'warn'" in str(exc.value)
    assert "WARN" in str(exc.value) and "ERROR" in str(exc.value)


@pytest.mark.parametrize("severity", ["WARN", "ERROR"])
def test_both_severities_pass(severity: str) -> None:
    validate_record("check_evaluation", _check(severity=severity))


# -- ids and optional strings --


@pytest.mark.parametrize(
    "event_id",
    [
        None,
        123,
        "",
        "not-a-uuid",
        "0d4f5f5e8e634f0e9a3c0f8c2a1b7e11",
        "{0d4f5f5e-8e63-4f0e-9a3c-0f8c2a1b7e11}",
        "urn:0d4f5f5e8e634f0e9a3c0f8c2a1b7e11",
        "----0d4f5f5e8e634f0e9a3c0f8c2a1b7e11",
        "0d4f5f5e-8e63-4f0e-9a3c-0f8c2a1b7e1z",
    ],
    ids=["None", "int", "empty", "word", "no hyphens", "braces", "urn", "misplaced hyphens", "non-hex"],
)
def test_event_id_must_be_a_uuid(event_id: Any) -> None:
    assert _field_of_error("materialization", _materialization(event_id=event_id)) == "event_id"


@pytest.mark.parametrize(
    "event_id",
    [str(uuid.uuid4()), str(uuid.uuid4()).upper(), str(uuid.uuid5(uuid.NAMESPACE_URL, "x"))],
    ids=["uuid4", "uuid4 upper case", "uuid5"],  # the same on every collection (pytest-xdist compares them)
)
def test_uuid_event_ids_pass(event_id: str) -> None:
    validate_record("materialization", _materialization(event_id=event_id))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"partition": ""}, "partition"),
        ({"partition": 2024}, "partition"),
        ({"data_version": ""}, "data_version"),
        ({"description": 1}, "description"),
        ({"run_id": 1}, "run_id"),
        ({"metadata": ["rows"]}, "metadata"),
    ],
)
def test_bad_optional_fields_are_rejected(changes: Record, field: str) -> None:
    assert _field_of_error("materialization", _materialization(**changes)) == field


def test_empty_description_is_allowed() -> None:
    validate_record("materialization", _materialization(description=""))


# -- every error names its field --

_BREAKERS: list[tuple[str, Callable[[], Record]]] = [
    ("event_id", lambda: _materialization(event_id="x")),
    ("asset_key", lambda: _materialization(asset_key=[])),
    ("partition", lambda: _materialization(partition="")),
    ("tags.bad key", lambda: _materialization(tags={"bad key": ""})),
    ("metadata", lambda: _materialization(metadata={"": {"kind": "text", "value": "x"}})),
    ("check_name", lambda: _check(check_name="")),
    ("passed", lambda: _check(passed="yes")),
    ("severity", lambda: _check(severity="warn")),
]


@pytest.mark.parametrize(("field", "build"), _BREAKERS, ids=[f for f, _ in _BREAKERS])
def test_every_validation_error_is_an_assetpipe_error_that_names_its_field(
    field: str, build: Callable[[], Record]
) -> None:
    event_type = "check_evaluation" if field in ("check_name", "passed", "severity") else "materialization"
    with pytest.raises(ValidationError) as exc:
        validate_record(event_type, build())
    assert isinstance(exc.value, AssetpipeError)
    assert exc.value.code == "invalid_event"
    assert exc.value.field == field
    assert str(exc.value).startswith(f"{field}: ")


# -- size --


def test_event_over_max_event_bytes_is_rejected_at_the_exact_limit() -> None:
    record = AssetMaterialization("a", description="x" * 4000).to_record()
    size = len(Codec().encode("materialization", record))

    assert len(Codec(max_event_bytes=size).encode("materialization", record)) == size
    with pytest.raises(EventTooLargeError) as exc:
        Codec(max_event_bytes=size - 1).encode("materialization", record)
    assert exc.value.code == "event_too_large"
    assert exc.value.field == "event"
    assert str(size) in str(exc.value)
    assert isinstance(exc.value, ValidationError)


@pytest.mark.parametrize(
    "timestamp",
    [
        TIMESTAMP_MIN_US - 1,
        TIMESTAMP_MAX_US + 1,
        1_717_200_000_000 * 1_000_000,  # milliseconds taken for seconds
        datetime(2300, 1, 1, tzinfo=UTC),
        datetime(1899, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_a_timestamp_outside_1900_to_2299_is_rejected(timestamp: Any) -> None:
    assert _field_of_error("materialization", _materialization(timestamp=timestamp)) == "timestamp"
    assert _field_of_error("check_evaluation", _check(timestamp=timestamp)) == "timestamp"


def test_the_timestamp_range_bounds_pass() -> None:
    for timestamp in (TIMESTAMP_MIN_US, TIMESTAMP_MAX_US, 0, -1):
        validate_record("materialization", _materialization(timestamp=timestamp))
    assert (datetime(1900, 1, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
        microseconds=1
    ) == TIMESTAMP_MIN_US
    validate_record("observation", _materialization(timestamp=datetime(2299, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)))
