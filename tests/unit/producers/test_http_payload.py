"""Reading requests: content types, JSON bodies and batches, and the bounds on their shape."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from assetpipe.producers.http.exceptions import LimitExceededError, MalformedBodyError, UnsupportedMediaTypeError
from assetpipe.producers.http.payload import (
    Limits,
    body_kind,
    check_strings,
    idempotency_key,
    parse_events,
    parse_object,
)

LIMITS = Limits(body_bytes=1024, batch_bytes=4096, depth=4, metadata_entries=3, string_chars=100)


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [(None, None), ("application/json", "json"), ("application/json; charset=utf-8", "json"),
     ("Application/JSON", "json")],
)  # fmt: skip
def test_json_or_no_content_type_is_accepted(content_type: str | None, kind: str | None) -> None:
    assert body_kind(content_type) == kind


def test_other_content_types_are_refused_by_name() -> None:
    with pytest.raises(UnsupportedMediaTypeError, match="'text/plain': send application/json or no body"):
        body_kind("text/plain")
    with pytest.raises(UnsupportedMediaTypeError):
        body_kind("application/x-ndjson")
    assert body_kind("application/x-ndjson", ndjson=True) == "ndjson"


def test_bodies_empty_object_malformed_or_not_an_object() -> None:
    assert parse_object(b"", LIMITS) == {}
    assert parse_object(b"  \n", LIMITS) == {}
    assert parse_object(b'{"partition": "p"}', LIMITS) == {"partition": "p"}
    with pytest.raises(MalformedBodyError, match="Malformed JSON body"):
        parse_object(b'{"metadata": {},\n}', LIMITS)
    with pytest.raises(MalformedBodyError, match="must be a JSON object, got array"):
        parse_object(b"[1]", LIMITS)
    with pytest.raises(MalformedBodyError, match="got string"):
        parse_object(b'"asset_key"', LIMITS)


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"k": value}
    return value


@pytest.mark.parametrize("padding", [0, 200], ids=["short body", "long body"])
def test_depth_string_and_entry_limits_name_the_field_and_the_setting(padding: int) -> None:
    pad = {"pad": "p" * padding} if padding else {}  # a long body takes the walk, a short one the fast count
    ok = orjson.dumps({"metadata": {"a": _deep(2)}, **({"pad": "p" * 99} if padding else {})})
    parse_object(ok, LIMITS)
    with pytest.raises(LimitExceededError, match=r"'metadata\.a\.k\.k' nests deeper than 4 levels.*MAX_JSON_DEPTH"):
        parse_object(orjson.dumps({"metadata": {"a": _deep(3)}, **pad}), LIMITS)
    with pytest.raises(LimitExceededError, match=r"'metadata\.s' is longer than 100 characters.*MAX_STRING_CHARS"):
        parse_object(orjson.dumps({"metadata": {"s": "x" * 101}}), LIMITS)
    with pytest.raises(LimitExceededError, match=r"'tags\.1' is longer"):
        parse_object(orjson.dumps({"tags": ["a", "x" * 101]}), LIMITS)
    with pytest.raises(LimitExceededError, match=r"'metadata' has 4 entries, over the limit of 3"):
        parse_object(orjson.dumps({"metadata": {str(i): i for i in range(4)}, **pad}), LIMITS)


def test_query_strings_are_bounded_too() -> None:
    check_strings({"metadata": '{"a": 1}', "description": "d"}, {}, LIMITS)
    with pytest.raises(LimitExceededError, match="'description' is longer"):
        check_strings({"description": "x" * 101}, {}, LIMITS)
    with pytest.raises(LimitExceededError, match="'metadata' has 4 entries"):
        check_strings({"metadata": orjson.dumps({str(i): i for i in range(4)}).decode()}, {}, LIMITS)
    with pytest.raises(LimitExceededError, match=r"'metadata\.a\.k\.k' nests deeper"):
        check_strings({"metadata": orjson.dumps({"a": _deep(3)}).decode()}, {}, LIMITS)
    check_strings({"metadata": "{not json"}, {}, LIMITS)  # reported later, naming the field
    check_strings({"metadata": orjson.dumps({str(i): i for i in range(4)}).decode()}, {"metadata": {}}, LIMITS)


def test_batches_as_array_or_ndjson_keep_bad_events_in_place() -> None:
    assert parse_events(b'[{"type": "observation"}]', "json", LIMITS) == [{"type": "observation"}]
    assert parse_events(b'[{"a": 1}]', None, LIMITS) == [{"a": 1}]
    events = parse_events(b'{"a": 1}\n\n{oops\n[1]\n{"metadata": {"s": "%s"}}\n' % (b"x" * 101), None, LIMITS)
    assert events[0] == {"a": 1}
    assert isinstance(events[1], MalformedBodyError) and "line 3" in str(events[1])
    assert isinstance(events[2], MalformedBodyError) and "Event must be a JSON object, got array" in str(events[2])
    assert isinstance(events[3], LimitExceededError)
    assert parse_events(b"", None, LIMITS) == []
    with pytest.raises(MalformedBodyError, match="JSON array of events or NDJSON, got object"):
        parse_events(b'{"a": 1}', "json", LIMITS)
    with pytest.raises(MalformedBodyError, match="Malformed JSON body"):
        parse_events(b"[{", "json", LIMITS)


def test_idempotency_keys_are_bounded() -> None:
    assert idempotency_key({"idempotency-key": "run-42"}) == "run-42"
    assert idempotency_key({}) is None
    with pytest.raises(LimitExceededError, match="'Idempotency-Key' is longer than 200 characters"):
        idempotency_key({"idempotency-key": "k" * 201})


@pytest.mark.parametrize("body", [b"\x0b", b"\x0b\r", b"\x0c\n", b" \x1c "])
def test_only_json_whitespace_makes_a_body_empty(body: bytes) -> None:
    """A vertical tab or another control byte is no JSON whitespace: such a body is malformed, not empty."""
    with pytest.raises(MalformedBodyError):
        parse_object(body, LIMITS)
    with pytest.raises(MalformedBodyError):
        parse_events(body, "json", LIMITS)
    [line] = parse_events(body, "ndjson", LIMITS)
    assert isinstance(line, MalformedBodyError)
    assert parse_events(b" \t\r\n", "json", LIMITS) == []
    assert parse_events(b"\n \r\n", "ndjson", LIMITS) == []
