"""What the HTTP API refuses, and how it says so: no 5xx, no value silently changed, and messages that
name the field and what was expected (in-process app, no broker: a request that passes every check is
answered 503 "not connected", so a 400 here is a refusal before publishing)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from assetpipe import AssetKey, AssetMaterialization
from assetpipe.producers.http import create_app, hash_key
from assetpipe.schemas.codec import Codec
from assetpipe.schemas.encoder import EventEncoder
from assetpipe.schemas.errors import EventTooLargeError, ValidationError
from assetpipe.schemas.settings import Settings

MAT, CHECK = "/report_asset_materialization", "/report_asset_check"
NOT_CONNECTED = "Event not stored: the HTTP API is not connected to the broker"
DEEP = "[" * 1100 + "]" * 1100


@pytest.fixture
def client() -> Iterator[TestClient]:
    yield TestClient(create_app(Settings()), raise_server_exceptions=False)


def _error(response: Any, status: int = 400) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "error" and set(body) == {"status", "error"}, body
    return str(body["error"])


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        (f"{MAT}/a", {"metadata": '{"x": ' + DEEP + "}"}, "metadata"),
        (f"{MAT}/a", {"tags": '{"x": ' + DEEP + "}"}, "tags"),
        (MAT, {"asset_key": DEEP}, "asset_key"),
        (f"{MAT}/a", {"metadata": '{"x": ' + "[" * 40 + "]" * 40 + "}"}, "metadata"),  # parseable, still too deep
    ],
)
def test_the_depth_limit_applies_to_query_string_json(
    client: TestClient, path: str, params: dict[str, str], field: str
) -> None:
    assert _error(client.post(path, params=params)) == (
        f"Field '{field}' nests deeper than 32 levels (ASSETPIPE_HTTP_MAX_JSON_DEPTH)"
    )


def test_an_asset_key_too_long_for_a_message_is_a_400_never_a_retry(client: TestClient) -> None:
    parts = ["k" * 60_000] * 16  # each part within the string limit; ~960 KB together
    error = _error(client.post(MAT, json={"asset_key": parts}))
    assert error == "asset_key: is 960015 characters long (as a/b), over the limit of 4096"
    assert _error(client.post(f"{MAT}/" + "/".join(["k" * 1000] * 5))).startswith("asset_key: is 5004 characters")
    assert _error(client.post(f"{MAT}/" + "k" * 4096), 503) == NOT_CONNECTED  # the limit itself passes


def test_echoed_values_are_cut_short(client: TestClient) -> None:
    error = _error(client.post(f"{MAT}/a", json={"event_id": "x" * 50_000}))
    assert len(error) < 300 and error.endswith("\u2026")
    tag = _error(client.post(f"{MAT}/a", json={"tags": {"t" * 50_000: "v" * 50_000}}))
    assert len(tag) < 400 and "\u2026" in tag


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_the_query_string_refuses_what_the_body_refuses(client: TestClient, text: str) -> None:
    assert "Malformed JSON body" in _error(
        client.post(f"{MAT}/a", content=b'{"metadata": {"x": ' + text.encode() + b"}}")
    )
    assert _error(client.post(f"{MAT}/a", params={"metadata": '{"x": ' + text + "}"})).startswith(
        "Field 'metadata' is not valid JSON"
    )


@pytest.mark.parametrize("number", ["123456789012345678901234567890", "-9223372036854775809", "18446744073709551616"])
def test_integers_beyond_64_bits_are_out_of_range_never_floats(client: TestClient, number: str) -> None:
    plain = "metadata.x: int value is out of range (a 64-bit integer)"
    assert _error(client.post(f"{MAT}/a", content=b'{"metadata": {"x": ' + number.encode() + b"}}")) == plain
    assert _error(client.post(f"{MAT}/a", params={"metadata": '{"x": ' + number + "}"})) == plain
    ndjson = ('{"type": "materialization", "asset_key": ["a"], "metadata": {"x": ' + number + "}}").encode()
    batch = client.post("/report_asset_events", content=ndjson, headers={"content-type": "application/x-ndjson"})
    assert batch.json()["results"] == [{"status": "error", "error": plain, "code": 400}]
    typed = b'{"metadata": {"x": {"type": "int", "value": ' + number.encode() + b"}}}"
    assert _error(client.post(f"{MAT}/a", content=typed)) == (
        f"Invalid int value for metadata entry 'x': {number} is out of range (a 64-bit integer)"
    )
    beyond_a_double = b'{"metadata": {"x": {"type": "float", "value": 1' + b"0" * 400 + b"}}}"
    assert "a number is out of range (a finite 64-bit float)" in _error(
        client.post(f"{MAT}/a", content=beyond_a_double)
    )


def test_long_digit_strings_still_take_the_exact_path(client: TestClient) -> None:
    body = {"metadata": {"id": "1234567890123456789012345", "n": 9_223_372_036_854_775_807, "f": 1.5}}
    assert _error(client.post(f"{MAT}/a", json=body), 503) == NOT_CONNECTED


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (f"{MAT}/a%00b", {}, "asset_key[0]: contains a control character (U+0000 at position 1)"),
        (f"{MAT}/ok/a%0Ab", {}, "asset_key[1]: contains a control character (U+000A at position 1)"),
        (MAT, {"asset_key": ["a", "b\x7f"]}, "asset_key[1]: contains a control character (U+007F at position 1)"),
        (f"{MAT}/a", {"partition": "2024\x00"}, "partition: contains a control character (U+0000 at position 4)"),
        (f"{MAT}/a", {"data_version": "\x1b[31m"}, "data_version: contains a control character (U+001B"),
        (f"{MAT}/a", {"run_id": "r\r"}, "run_id: contains a control character (U+000D"),
        (f"{CHECK}/a", {"check_name": "c\x85", "passed": True}, "check_name: contains a control character (U+0085"),
    ],
)
def test_control_characters_are_refused_naming_the_part(
    client: TestClient, path: str, body: dict[str, Any], message: str
) -> None:
    assert _error(client.post(path, json=body)).startswith(message)


def test_a_description_keeps_its_newlines(client: TestClient) -> None:
    assert _error(client.post(f"{MAT}/a", json={"description": "line 1\nline 2\ttab"}), 503) == NOT_CONNECTED


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (f"{MAT}/a%FFb", "The asset key in the URL path is not valid UTF-8 (byte FF)"),
        (f"{MAT}/a%C0%AFb", "The asset key in the URL path is not valid UTF-8 (byte C0)"),
        (f"{MAT}?asset_key=a%FFb", "Query parameter 'asset_key' is not valid UTF-8 (byte FF)"),
        (f"{MAT}/a?partition=%ED%A0%80", "Query parameter 'partition' is not valid UTF-8 (byte ED)"),
        (f"{MAT}/a?%FF=1", "A query parameter name is not valid UTF-8 (byte FF)"),
    ],
)
def test_invalid_utf8_is_refused_never_replaced(client: TestClient, url: str, message: str) -> None:
    assert _error(client.post(url)).startswith(message)


def test_valid_utf8_and_a_literal_replacement_character_pass(client: TestClient) -> None:
    assert _error(client.post(f"{MAT}/caf%C3%A9/%EF%BF%BD"), 503) == NOT_CONNECTED
    assert _error(client.post(f"{MAT}/a", params={"partition": "été", "description": "a+b c"}), 503) == NOT_CONNECTED


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (1e300, "1e+300: outside 1900-01-01 to 2299-12-31 UTC"),
        (-62_135_596_800, "-62135596800: outside 1900-01-01 to 2299-12-31 UTC"),
        ("9999-01-01T00:00:00Z", "'9999-01-01T00:00:00Z': outside 1900-01-01 to 2299-12-31 UTC"),
        ("0001-01-01T00:00:00+00:00", "'0001-01-01T00:00:00+00:00': outside 1900-01-01 to 2299-12-31 UTC"),
    ],
)
def test_typed_timestamps_have_the_events_range(client: TestClient, value: Any, reason: str) -> None:
    body = {"metadata": {"t": {"type": "timestamp", "value": value}}}
    assert _error(client.post(f"{MAT}/a", json=body)).startswith(
        f"Invalid timestamp value for metadata entry 't': {reason}"
    )
    ok = {"metadata": {"t": {"type": "timestamp", "value": "2299-12-31T23:59:59Z"}}}
    assert _error(client.post(f"{MAT}/a", json=ok), 503) == NOT_CONNECTED


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("table", "x", 'expected an object with "records", got string'),
        ("table", {"records": "x"}, "expected records: a list of objects, got string"),
        ("table", {"records": [1]}, "expected records[0]: an object, got number"),
        ("table", {"records": [{"a": 1}], "schema": 1}, 'expected schema: an object with "columns": [...], got number'),
        ("table_schema", "x", 'expected an object with "columns": [...], got string'),
        ("table_schema", {"columns": [1]}, 'expected columns[0]: an object with a string "name", got number'),
        ("table_schema", {"columns": [{"name": "a", "constraints": 1}]}, "expected columns[0].constraints: an object"),
        ("column_lineage", "x", 'expected an object of column -> [{"asset_key", "column_name"}], got string'),
        ("column_lineage", {"a": [1]}, 'expected a[0]: {"asset_key": [...], "column_name": "..."}, got number'),
        ("column_lineage", {"a": 1}, "expected a: a list of dependencies, got number"),
        ("code_references", "x", "expected a list of references, got string"),
        ("code_references", [1], 'expected [0]: {"file_path": "...", "line_number"?, "label"?} or {"url"'),
        ("code_references", [{"file_path": "f", "line_number": "x"}], "expected [0].line_number: an integer"),
        ("asset", 7, "expected a list of strings or an a/b string, got number"),
    ],
)
def test_malformed_structured_metadata_names_the_field_and_the_shape(
    client: TestClient, kind: str, value: Any, expected: str
) -> None:
    error = _error(client.post(f"{MAT}/a", json={"metadata": {"m": {"type": kind, "value": value}}}))
    assert error.startswith(f"Invalid {kind} value for metadata entry 'm': {expected}"), error
    assert "object has no attribute" not in error and "indices" not in error


def test_every_producer_refuses_control_characters_and_long_keys(codec: Codec) -> None:
    sdk = EventEncoder(codec, host="h")
    for asset_key, field in (("a\x00b", "asset_key[0]"), (["ok", "b\x1f"], "asset_key[1]"), ("k" * 5000, "asset_key")):
        with pytest.raises(ValidationError) as exc:
            sdk.encode("materialization", asset_key)
        assert exc.value.field == field
    with pytest.raises(ValidationError, match=r"^partition: contains a control character"):
        sdk.encode("materialization", "a", partition="p\x00")
    with pytest.raises(ValidationError, match=r"^check_name: contains a control character"):
        sdk.encode("check_evaluation", "a", check_name="c\x00", passed=True)
    with pytest.raises(ValidationError, match=r"^data_version: contains invalid UTF-8"):
        sdk.encode("materialization", "a", data_version="v\udcff")  # a byte decoded with surrogateescape


def test_the_size_check_counts_the_whole_message_key_included(codec: Codec) -> None:
    limit, key = 4096, "k" * 1500
    small = Codec(codec.schemas, max_event_bytes=limit)
    sdk = EventEncoder(small, host="h")
    base = len(sdk.encode("materialization", key, description="").value)
    description = "d" * (limit - base - 8)  # the value alone fits; with its 1,500-byte key the message does not
    event = sdk.encode("materialization", key, description=description[:-1600])
    assert len(event.value) + len(event.key) <= limit
    with pytest.raises(EventTooLargeError, match=r"\(its key 1500, the encoded event 40\d\d\), over the 4096-byte"):
        sdk.encode("materialization", key, description=description)
    record = AssetMaterialization(AssetKey(key), description=description).to_record()
    with pytest.raises(EventTooLargeError, match="its key 1500"):
        sdk.encode_record("materialization", record)
    app = TestClient(create_app(Settings(max_event_bytes=limit)), raise_server_exceptions=False)
    refused = app.post(f"{MAT}/{key}", json={"description": description[:-60]})  # the http source is longer
    assert _error(refused, 413).startswith("event: the message is ")
    assert "(ASSETPIPE_MAX_EVENT_BYTES)" in refused.json()["error"]


def test_only_the_server_sets_the_reporting_user_tag(client: TestClient) -> None:
    claim = {"tags": {"dagster/reporting_user": "alice"}}
    refused = "Tag 'dagster/reporting_user' is set by the server, to the name of a named API key: remove it"
    assert _error(client.post(f"{MAT}/a", json=claim)).startswith(refused)  # the open API
    assert _error(client.post(f"{MAT}/a", params={"tags": json.dumps(claim["tags"])})).startswith(refused)
    batch = client.post("/report_asset_events", json=[{"type": "materialization", "asset_key": ["a"], **claim}])
    assert batch.json()["results"][0]["error"].startswith(refused)
    keys = f"{hash_key('k1')}:name=etl\n{hash_key('k2')}"
    keyed = TestClient(create_app(Settings(api_keys=keys)), raise_server_exceptions=False)
    named, unnamed = {"x-api-key": "k1"}, {"x-api-key": "k2"}
    assert _error(keyed.post(f"{MAT}/a", json=claim, headers=named)).startswith(
        "Tag 'dagster/reporting_user' is set by the server, to the name of the request's API key ('etl')"
    )
    assert _error(keyed.post(f"{MAT}/a", json=claim, headers=unnamed)).startswith(refused)
    same = {"tags": {"dagster/reporting_user": "etl", "team": "data"}}
    assert _error(keyed.post(f"{MAT}/a", json=same, headers=named), 503) == NOT_CONNECTED  # what it would set anyway


@pytest.mark.parametrize(
    ("url", "body", "message"),
    [
        (f"{MAT}/a", {"timestamp": ""}, "Invalid timestamp '': expected ISO 8601 or seconds"),
        (f"{MAT}/a", {"asset_key": 5}, "Field 'asset_key' must be a list of strings or a string"),
        (f"{MAT}/a", {"asset_key": ["x", ""]}, "asset_key[1]: path parts must be non-empty strings, got ''"),
        (f"{CHECK}/a?severity=BAD", {"check_name": "c", "passed": True, "severity": "WARN"}, "Invalid severity 'BAD'"),
        (f"{CHECK}/a?passed=", {"check_name": "c", "passed": True}, "Field 'passed' must be a boolean (true or false)"),
        (f"{MAT}/a?partition=%C2%84", {"partition": "p"}, "partition: contains a control character (U+0084"),
    ],
)
def test_documented_rules_hold_even_for_values_another_source_overrides(
    client: TestClient, url: str, body: dict[str, Any], message: str
) -> None:
    assert _error(client.post(url, json=body)).startswith(message)


def test_what_the_document_allows_is_accepted(client: TestClient) -> None:
    for url, body in [
        (f"{CHECK}/a?passed=true", {"check_name": "c", "passed": None}),  # null is no value: the query's counts
        (f"{MAT}/a", {"metadata": {"n": {"type": "int", "value": -312.0}}}),  # an integer, as JSON Schema has it
        (
            f"{MAT}/a",
            {"metadata": {"c": {"type": "code_references", "value": [{"file_path": "f", "line_number": 3.0}]}}},
        ),
        (f"{MAT}/a", {"event_id": None, "run_id": ""}),
        (f"{MAT}/a", {"event_id": ""}),  # documented: empty is the default, as in the backfill
    ]:
        assert _error(client.post(url, json=body), 503) == NOT_CONNECTED, (url, body)
    batch = b'[{"type": "materialization", "asset_key": ["a"], "unknown": -2748614652349312401408}]'
    response = client.post("/report_asset_events", content=batch, headers={"content-type": "application/json"})
    assert response.json()["results"] == [{"status": "error", "error": NOT_CONNECTED, "code": 503}]
