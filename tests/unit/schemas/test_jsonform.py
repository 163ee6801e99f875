"""The JSON form of events: field sources and precedence, Dagster's coercions, typed metadata."""

from __future__ import annotations

import re
from typing import Any

import pytest

from assetpipe.schemas import jsonform
from assetpipe.schemas.errors import FieldError, ValidationError
from assetpipe.schemas.metadata import MetadataValue, to_wire
from assetpipe.schemas.model import build_record
from assetpipe.schemas.validation import validate_record


def test_asset_key_precedence_path_then_body_then_query() -> None:
    assert jsonform.asset_key("a/b", {"asset_key": ["x"]}, {"asset_key": "q"}) == ["a", "b"]
    assert jsonform.asset_key(None, {"asset_key": ["x", "y"]}, {"asset_key": "q"}) == ["x", "y"]
    assert jsonform.asset_key("", {}, {"asset_key": "warehouse.customers.daily"}) == ["warehouse", "customers", "daily"]
    assert jsonform.asset_key(None, {}, {"asset_key": '["slash/key"]'}) == ["slash/key"]


def test_a_body_string_key_is_one_part() -> None:
    assert jsonform.asset_key(None, {"asset_key": "sales/daily"}) == ["sales/daily"]


@pytest.mark.parametrize("body", [{}, {"asset_key": 5}, {"asset_key": [1]}])
def test_missing_or_malformed_key_names_the_field(body: dict[str, Any]) -> None:
    with pytest.raises(FieldError, match="asset_key") as err:
        jsonform.asset_key(None, body, {})
    assert err.value.field == "asset_key"


def test_body_wins_over_string_form_and_unknown_fields_are_ignored() -> None:
    fields = jsonform.build_fields(
        "materialization", {"partition": "p1", "bogus": 1}, {"partition": "p2", "data_version": "v1"}
    )
    assert fields == {"partition": "p1", "data_version": "v1"}


def test_check_requires_name_and_boolean_passed() -> None:
    with pytest.raises(FieldError, match=r"^Missing required field: check_name$"):
        jsonform.build_fields("check_evaluation", {"passed": True})
    with pytest.raises(FieldError, match=r"^Missing required field: passed$"):
        jsonform.build_fields("check_evaluation", {"check_name": "c"})
    with pytest.raises(FieldError, match=r"^Field 'passed' must be a boolean$"):
        jsonform.build_fields("check_evaluation", {"check_name": "c", "passed": "true"})
    with pytest.raises(FieldError, match=r"^Invalid severity 'warn': expected WARN or ERROR$"):
        jsonform.build_fields("check_evaluation", {"check_name": "c", "passed": True, "severity": "warn"})


def test_string_form_parses_passed_metadata_and_tags() -> None:
    fields = jsonform.build_fields(
        "check_evaluation",
        {},
        {"check_name": "c", "passed": "false", "severity": "WARN", "metadata": '{"n": 3}', "tags": '{"team": "x"}'},
    )
    assert fields["passed"] is False
    assert fields["metadata"] == {"n": MetadataValue.int(3)}
    assert fields["tags"] == {"team": "x"}
    with pytest.raises(FieldError, match="'passed' must be a boolean"):
        jsonform.build_fields("check_evaluation", {}, {"check_name": "c", "passed": "True"})
    with pytest.raises(FieldError, match="'metadata' is not valid JSON"):
        jsonform.build_fields("materialization", {}, {"metadata": "{oops"})


def test_non_string_scalars_are_rejected_with_the_field_name() -> None:
    with pytest.raises(FieldError, match=r"^Field 'partition' must be a string, got number$"):
        jsonform.build_fields("materialization", {"partition": 20240115})


def test_plain_metadata_normalizes_like_the_sdk() -> None:
    got = jsonform.metadata({"s": "x", "i": 3, "f": 1.5, "b": True, "o": {"a": 1}, "l": [1], "n": None})
    assert [v.kind for v in got.values()] == ["text", "int", "float", "bool", "json", "json", "null"]
    with pytest.raises(FieldError, match="'metadata' must be an object, got array"):
        jsonform.metadata([1, 2])


TYPED: list[tuple[str, Any]] = [
    ("url", "https://x.example/a"),
    ("path", "/data/a.parquet"),
    ("notebook_path", "nb.ipynb"),
    ("md", "# hi"),
    ("text", "t"),
    ("json", {"type": "not-a-kind", "value": 1}),
    ("int", 7),
    ("float", 2),
    ("bool", False),
    ("timestamp", "2024-06-01T00:00:00Z"),
    ("null", None),
    ("asset", ["up", "stream"]),
    ("table_schema", {"columns": [{"name": "id", "type": "int", "constraints": {"nullable": False}}]}),
    ("table", {"records": [{"id": 1, "name": "a"}]}),
    ("column_lineage", {"id": [{"asset_key": ["src"], "column_name": "uid"}]}),
    ("code_references", [{"file_path": "/src/a.py", "line_number": 3}, {"url": "https://git.example/a.py"}]),
]


@pytest.mark.parametrize(("kind", "value"), TYPED)
def test_typed_metadata_arrives_typed_and_builds_a_valid_record(kind: str, value: Any) -> None:
    parsed = jsonform.metadata({"m": {"type": kind, "value": value}})["m"]
    assert parsed.kind == kind
    to_wire("m", parsed)
    record = build_record("materialization", ["a"], source="http", host="h", metadata={"m": parsed})
    validate_record("materialization", record)


def test_an_object_with_extra_keys_or_an_unknown_type_stays_json() -> None:
    got = jsonform.metadata({"a": {"type": "url", "value": "x", "more": 1}, "b": {"type": "nope", "value": 1}})
    assert {v.kind for v in got.values()} == {"json"}


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("int", "7", "expected an integer, got string"),
        ("url", 3, "expected a string"),
        ("table", {}, "records"),
        ("code_references", [{"file_path": "a.py", "url": "https://x", "line_number": 2**63}], "not both"),
        ("code_references", [{"url": 3}], r"\[0\]\.url: a string"),
        ("code_references", [{"file_path": "a.py", "line_number": 2**63}], "line_number"),
    ],
)
def test_bad_typed_values_name_the_entry(kind: str, value: Any, message: str) -> None:
    with pytest.raises(FieldError, match=message) as err:
        jsonform.metadata({"m": {"type": kind, "value": value}})
    assert err.value.field == "metadata.m"


def test_timestamps_and_event_types() -> None:
    assert jsonform.timestamp_us("2024-06-01T00:00:00+00:00") == 1_717_200_000_000_000
    assert jsonform.timestamp_us(1.5) == 1_500_000
    assert jsonform.build_fields("observation", {"timestamp": "10"})["timestamp_us"] == 10_000_000
    with pytest.raises(FieldError, match="needs a zone"):
        jsonform.timestamp_us("2024-06-01T00:00:00")
    assert jsonform.event_type("check") == "check_evaluation"
    assert jsonform.event_type("ASSET_MATERIALIZATION") == "materialization"
    with pytest.raises(FieldError, match="Invalid event type"):
        jsonform.event_type("run")


def test_an_event_timestamp_outside_the_range_names_it_and_hints_at_milliseconds() -> None:
    assert jsonform.event_timestamp_us(-2_208_988_800) == -2_208_988_800_000_000  # 1900-01-01
    assert jsonform.event_timestamp_us("2299-12-31T23:59:59.999999Z") == 10_413_791_999_999_999
    with pytest.raises(
        FieldError,
        match=r"Invalid timestamp 1717200000000: outside 1900-01-01 to 2299-12-31 UTC "
        r"\(is it in milliseconds\? expected seconds since the epoch\)",
    ) as err:
        jsonform.build_fields("materialization", {"timestamp": 1_717_200_000_000})
    assert err.value.field == "timestamp"
    with pytest.raises(FieldError, match=r"Invalid timestamp '2400-01-01T00:00:00Z': outside [^(]*$"):
        jsonform.build_fields("observation", {"timestamp": "2400-01-01T00:00:00Z"})
    with pytest.raises(FieldError, match="outside"):
        jsonform.build_fields("observation", {"timestamp": -2_208_988_801})
    with pytest.raises(FieldError, match="out of range"):  # its microseconds overflow a float (found by the fuzzer)
        jsonform.build_fields("check_evaluation", {"timestamp": 1.797693134862316e302})
    # a timestamp metadata entry has the event's range: one rule wherever a timestamp enters
    with pytest.raises(FieldError, match=r"^Invalid timestamp value for metadata entry 't': 1000000000000.0: outside"):
        jsonform.build_fields("materialization", {"metadata": {"t": {"type": "timestamp", "value": 1e12}}})


def test_timestamps_are_exact_to_the_microsecond_and_datetimes_need_a_zone() -> None:
    from datetime import UTC, datetime, timedelta

    # float seconds would give ...455 here: an ISO timestamp converts exactly
    assert jsonform.timestamp_us("2024-06-01T00:00:00.123456+00:00") == 1_717_200_000_123_456
    assert jsonform.timestamp_us("2024-06-01T02:00:00.000001+02:00") == 1_717_200_000_000_001
    moment = datetime(2024, 6, 1, tzinfo=UTC) + timedelta(microseconds=123_457)
    assert jsonform.timestamp_us(moment) == 1_717_200_000_123_457  # Parquet and Avro give datetimes
    with pytest.raises(FieldError, match="needs a zone"):
        jsonform.timestamp_us(datetime(2024, 6, 1))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"x": NaN}', "not valid JSON: unexpected character"),
        ('{"x": -Infinity}', "not valid JSON"),
        ('{"x": 1e999}', "not valid JSON: a number is out of range (a finite 64-bit float)"),
        pytest.param('{"x": ' + "[" * 1100 + "]" * 1100 + "}", "not valid JSON: depth limit exceeded", id="deep"),
    ],
)
def test_string_form_json_has_the_bodys_rules_for_every_producer(text: str, message: str) -> None:
    with pytest.raises(FieldError, match="^" + re.escape(f"Field 'metadata' is {message}")) as err:
        jsonform.build_fields("materialization", {}, {"metadata": text})
    assert err.value.field == "metadata"


def test_integers_are_read_exactly_and_refused_out_of_range() -> None:
    assert jsonform.loads(b'{"n": 12345678901234567890123}') == {"n": 12345678901234567890123}  # not a float
    assert jsonform.loads('{"n": -9223372036854775809, "f": 0.1}') == {"n": -9223372036854775809, "f": 0.1}
    big = {"metadata": '{"n": 123456789012345678901234567890}'}
    with pytest.raises(ValidationError, match=r"^metadata\.n: int value is out of range \(a 64-bit integer\)$"):
        build_record(
            "materialization", ["a"], source="backfill", host="", **jsonform.build_fields("materialization", {}, big)
        )
    assert jsonform.build_fields("materialization", {}, {"metadata": '{"n": 9223372036854775807}'}) == {
        "metadata": {"n": MetadataValue.int(9_223_372_036_854_775_807)}
    }


def test_a_deep_string_form_asset_key_is_no_recursion_error() -> None:
    assert jsonform.asset_key(None, {}, {"asset_key": "[" * 5000 + "]" * 5000}) == []
    assert jsonform.asset_key(None, {}, {"asset_key": '["a", "b.c"]'}) == ["a", "b.c"]
    assert jsonform.asset_key(None, {}, {"asset_key": "[a.b"}) == ["a", "b"]


def test_typed_int_and_float_out_of_range() -> None:
    with pytest.raises(FieldError, match=r"^Invalid int value for metadata entry 'x': 9223372036854775808 is out of"):
        jsonform.typed_value("x", "int", 2**63)
    with pytest.raises(FieldError, match=r"^Invalid float value for metadata entry 'x': .* is out of range"):
        jsonform.typed_value("x", "float", 10**400)
