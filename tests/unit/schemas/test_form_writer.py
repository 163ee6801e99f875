"""FormWriter: a JSON-form body written straight to the message accepts exactly what the general path
(jsonform.build_fields, build_record, EventEncoder.encode_record) accepts, to the same bytes and event id."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assetpipe.schemas import jsonform
from assetpipe.schemas.binary.event import long
from assetpipe.schemas.binary.form import FormWriter
from assetpipe.schemas.binary.writer import encode_long
from assetpipe.schemas.codec import Codec
from assetpipe.schemas.encoder import EventEncoder
from assetpipe.schemas.model import EventType, build_record, event_id_for

EVENT_TYPES: list[EventType] = ["materialization", "observation", "check_evaluation"]
HOST = "h-1"
DEFAULT_ID = "3b6f1e52-7c1d-5f0a-9d47-2a8e5c9b1f30"
USER = {"dagster/reporting_user": "etl"}
DATA_VERSION_TAGS = {"dagster/data_version", "dagster/logical_version"}
_ENCODER = EventEncoder(Codec(), source="http", host="")
_READER = Codec(timestamp_micros=True)


def _form(event_type: str) -> FormWriter:
    form = _ENCODER._form(event_type)
    assert form is not None
    return form


def _general(
    event_type: EventType, body: dict[str, Any], default_id: str | None, idempotency_key: str | None,
    extra_tags: dict[str, str] | None, timestamp_us: int | None = None, event_id: str | None = None,
) -> tuple[str, bytes, bytes]:  # fmt: skip
    """What the HTTP API and the backfill did before the form path: build the record, check, encode."""
    parts = jsonform.asset_key(None, body)
    fields = jsonform.build_fields(event_type, body, None, plain_metadata=True)
    if extra_tags is not None:
        fields["tags"] = {**fields.get("tags", {}), **extra_tags}
    if timestamp_us is not None and "timestamp_us" not in fields:
        fields["timestamp_us"] = timestamp_us
    own = fields.pop("event_id", None) or default_id or (event_id if idempotency_key is None else None)
    record = build_record(event_type, parts, source="http", host=HOST, event_id=own,
                          idempotency_key=idempotency_key, **fields)  # fmt: skip
    return tuple(_ENCODER.encode_record(event_type, record))  # type: ignore[return-value]


_text = st.text(max_size=40)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)
_TYPED: dict[str, st.SearchStrategy[Any]] = {
    "text": st.one_of(st.sampled_from(["a", "b"]), _text, st.just(5)),
    "url": st.one_of(st.sampled_from(["https://d/1", "https://d/2"]), st.just(None)),
    "path": st.just("/data/x.parquet"),
    "notebook_path": st.just("/n.ipynb"),
    "md": st.just("# Loaded\nAll good"),
    "json": _json,
    "int": st.one_of(st.integers(-(2**64), 2**64), st.just(True), st.just(1.5)),
    "float": st.one_of(st.floats(allow_nan=False), st.integers(-(2**40), 2**40), st.just(False), st.just("1")),
    "bool": st.one_of(st.booleans(), st.just(1)),
    "timestamp": st.one_of(
        st.floats(-1e10, 1e10), st.integers(-(2**40), 2**40), st.sampled_from(["2024-01-15T23:45:00Z", "x", "7.5"])
    ),
    "null": st.one_of(st.none(), st.just(3)),
    "asset": st.sampled_from([["raw", "orders"], "raw/orders", 5, []]),
    "table_schema": st.sampled_from([
        {"columns": [{"name": "id", "type": "int"}]},
        {"columns": [{"name": "id", "constraints": {"nullable": False, "other": ["pk"]}, "tags": {"a": "b"}}],
         "constraints": {"other": ["x"]}},
        {},
    ]),
    "table": st.sampled_from([
        {"records": [{"id": 1, "name": "x"}]},
        {"records": [], "schema": {"columns": [{"name": "id"}]}},
        {"records": []},
        {"records": [{"id": 1}, {"other": 2}]},
    ]),
    "column_lineage": st.sampled_from([
        {"id": [{"asset_key": ["raw", "orders"], "column_name": "order_id"}]},
        {"deps_by_column": {"id": [{"asset_key": "raw/orders", "column_name": "a"}]}},
        {"id": [{"asset_key": ["a"], "column_name": "c"}, {"asset_key": ["a"], "column_name": "c"}]},
        [],
    ]),
    "code_references": st.sampled_from([
        [{"file_path": "/src/etl.py", "line_number": 12}],
        {"code_references": [{"url": "https://git/x", "label": "here"}]},
        [{"nothing": 1}],
    ]),
}  # fmt: skip
_typed = st.sampled_from(sorted(_TYPED)).flatmap(
    lambda kind: st.builds(lambda value: {"type": kind, "value": value}, _TYPED[kind])
)
_metadata_value = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(), _text,
    st.sampled_from(["finance", "sales"]),  # repeated text: the caches are hit, by a text or a typed string
    st.builds(lambda kind: {"type": kind, "value": "finance"}, st.sampled_from(["text", "url", "md", "json"])),
    _typed, _typed, _typed, _typed, _json,
)  # fmt: skip
_metadata = st.dictionaries(
    st.sampled_from(["rows", "owner", "x", "dash", "url"]), _metadata_value, min_size=1, max_size=4
)
_metadata_refused = st.sampled_from([[], "x", 0, {"": 1}, {"big": 2**64}, {"t": {"type": "int", "value": "1"}}])
_MISSING = object()


_tag_text = st.sampled_from(["team", "ns/key", "dagster/data_version", "v1", "a.b-c_d"])
_absent = st.sampled_from([_MISSING, None])
# Each field: (what the general path accepts, what it refuses); a body draws a refused value now and then.
_FIELDS: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
    "asset_key": (
        st.one_of(st.lists(st.sampled_from(["sales", "daily", "a/b", "té"]), min_size=1, max_size=3),
                  st.just("sales")),
        st.sampled_from([[], "", 5, ["a", 1], ["a", ""]]),
    ),
    "partition": (_absent | st.sampled_from(["2024-06-01", "pé"]), st.sampled_from(["", 3])),
    "data_version": (_absent | st.just("v7"), st.sampled_from(["", 1.5])),
    "description": (_absent | st.sampled_from(["", "nightly", "x" * 200]), st.just(0)),
    "metadata": (
        _absent | st.just({}) | _metadata | _metadata | _metadata,
        _metadata_refused | st.dictionaries(st.just("x"), _metadata_value | _metadata_refused, max_size=2),
    ),
    "tags": (
        _absent | st.just({}) | st.dictionaries(_tag_text, _tag_text, max_size=3),
        st.sampled_from(["x", [], {"bad key": "v"}, {"team": "x" * 64}, {"": ""}, {"team": 1}]),
    ),
    "timestamp": (
        _absent | st.integers(-2_208_988_800, 10_413_791_999) | st.floats(-2.2e9, 1.04e10)
        | st.sampled_from([10_413_791_999, -2_208_988_800, 2_199_023, 2_199_024, 0, -1])  # bounds of the paths
        | st.sampled_from([2_199_023.255552, 2_199_023.255551, 0.008191, 0.008192, -0.5])
        | st.sampled_from(["2024-06-01T00:00:00.123456Z", "2024-06-01T02:10:00+02:00", "1717208000.5", "1717208000"])
        | st.datetimes(min_value=datetime(1901, 1, 1), max_value=datetime(2298, 12, 31),
                       timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))])),
        st.floats()
        | st.sampled_from([10**20, 2**53, 9_223_372_036_855, "2024-06-01T00:00:00", "nan", "inf", "yesterday", ""])
        | st.sampled_from([10_413_792_000, -2_208_988_801, 1_717_200_000_000, 1.04e13, "2400-01-01T00:00:00Z"])
        | st.just(True)
        | st.datetimes(),
    ),
    "event_id": (
        _absent | st.sampled_from(["", "6d3c2f9e-8b0a-4c8e-9a51-3f1e2b7d4a60", "6D3C2F9E-8B0A-4C8E-9A51-3F1E2B7D4A60"]),
        st.sampled_from(["not-a-uuid", 0, 5]),
    ),
    "run_id": (_absent | st.sampled_from(["", "run-1"]), st.just(7)),
    "check_name": (st.sampled_from(["rows", "nulls"]), _absent | st.sampled_from(["", 1])),
    "passed": (st.booleans(), _absent | st.sampled_from([0, "true"])),
    "severity": (_absent | st.sampled_from(["WARN", "ERROR"]), st.sampled_from(["INFO", "warn", 1])),
    "other": (_absent | st.just("ignored"), st.just(1)),
}  # fmt: skip


@st.composite
def _bodies(draw: st.DrawFn) -> dict[str, Any]:
    """Every field valid, or one refused (half the time): each refusal is met on its own."""
    refused = draw(st.sampled_from([None] * len(_FIELDS) + list(_FIELDS)))
    body = {}
    for name, (valid, refusals) in _FIELDS.items():
        value = draw(refusals if name == refused else valid)
        if value is not _MISSING:
            body[name] = value
    return body


@settings(deadline=None, max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(
    event_type=st.sampled_from(EVENT_TYPES),
    body=_bodies(),
    default_id=st.sampled_from([None, DEFAULT_ID]),
    idempotency_key=st.sampled_from([None, "nightly/3"]),
    extra_tags=st.sampled_from([None, USER]),
)
def test_the_form_path_matches_the_general_path(
    event_type: EventType, body: dict[str, Any], default_id: str | None, idempotency_key: str | None,
    extra_tags: dict[str, str] | None,
) -> None:  # fmt: skip
    raw_parts = body.get("asset_key")
    parts = [raw_parts] if type(raw_parts) is str else raw_parts
    done = _form(event_type).write(body, parts, HOST, default_id, idempotency_key, extra_tags)
    try:
        _general(event_type, body, default_id, idempotency_key, extra_tags)
    except Exception:  # whatever the general path raises, the form path leaves to it
        assert done is None
        return
    if DATA_VERSION_TAGS & set(body.get("tags") or ()):
        assert done is None  # the general path makes the tag the event's data version
        return
    assert done is not None  # any other valid body of JSON values takes the form path
    event_id, key, value = done
    _, decoded = _READER.decode(value)
    assert decoded["event_id"] == event_id
    if (own := body.get("event_id")) and isinstance(own, str):
        assert event_id == own
    elif default_id is not None:
        assert event_id == default_id
    elif idempotency_key is not None:
        assert event_id == event_id_for(event_type, key.decode(), idempotency_key)
    else:  # a UUIDv7 of the event's own time
        assert uuid.UUID(event_id).version == 7
        if decoded["timestamp"] >= 0:
            assert int(event_id.replace("-", "")[:12], 16) == decoded["timestamp"] // 1000 % 2**48
    general = _general(event_type, body, default_id, idempotency_key, extra_tags, decoded["timestamp"], event_id)
    assert (event_id, key, value) == general


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_typed_metadata_kind_takes_the_form_path(event_type: EventType) -> None:
    metadata = {
        "rows": 1204, "ratio": 0.25, "owner": "finance", "fresh": True, "none": None, "list": [1, {"a": 2}],
        "dashboard": {"type": "url", "value": "https://dash.example/sales"},
        "file": {"type": "path", "value": "/data/sales.parquet"},
        "nb": {"type": "notebook_path", "value": "/n.ipynb"},
        "notes": {"type": "md", "value": "# Loaded\nAll good"},
        "text": {"type": "text", "value": "t"},
        "doc": {"type": "json", "value": {"a": [1, 2]}},
        "count": {"type": "int", "value": 7},
        "share": {"type": "float", "value": 1},
        "ok": {"type": "bool", "value": False},
        "loaded_at": {"type": "timestamp", "value": "2024-01-15T23:45:00Z"},
        "nothing": {"type": "null", "value": None},
        "upstream": {"type": "asset", "value": ["raw", "orders"]},
        "schema": {"type": "table_schema", "value": {"columns": [{"name": "id", "type": "int"}]}},
        "sample": {"type": "table", "value": {"records": [{"id": 1}]}},
        "lineage": {"type": "column_lineage",
                    "value": {"id": [{"asset_key": ["raw", "orders"], "column_name": "order_id"}]}},
        "code": {"type": "code_references", "value": [{"file_path": "/src/etl.py", "line_number": 12}]},
    }  # fmt: skip
    body: dict[str, Any] = {"asset_key": ["sales", "daily"], "partition": "2024-01-15", "metadata": metadata,
                            "tags": {"team": "sales"}, "timestamp": "2024-06-01T02:10:00Z", "check_name": "rows",
                            "passed": True, "severity": "WARN", "data_version": "v1"}  # fmt: skip
    done = _form(event_type).write(body, body["asset_key"], HOST, DEFAULT_ID)
    assert done is not None
    assert done == _general(event_type, body, DEFAULT_ID, None, None)
    _, decoded = _READER.decode(done[2])
    assert decoded["timestamp"] == int(datetime(2024, 6, 1, 2, 10, tzinfo=UTC).timestamp()) * 1_000_000
    assert decoded["metadata"]["dashboard"] == {"kind": "url", "value": "https://dash.example/sales"}
    assert decoded["metadata"]["share"] == {"kind": "float", "value": 1.0}


def test_a_body_over_the_size_limit_is_left_to_the_general_path() -> None:
    body = {"asset_key": ["a"], "description": "x" * 2_000_000}
    assert _form("materialization").write(body, ["a"], HOST) is None


def test_the_source_is_the_hosts_of_each_event() -> None:
    form = _form("materialization")
    body = {"asset_key": ["a"], "timestamp": 1}
    for host in ["10.0.0.1", "10.0.0.2", "10.0.0.1", "".join(["10.0.0.", "2"])]:
        done = form.write(body, ["a"], host, DEFAULT_ID)
        assert done is not None
        assert _READER.decode(done[2])[1]["source"] == {"kind": "http", "host": host}


@given(st.integers(-(2**63), 2**63 - 1) | st.sampled_from([2**k + d for k in range(63) for d in (-1, 0)]))
def test_long_is_encode_long(n: int) -> None:
    assert long(n) == encode_long(n)
    assert long(-n - 1) == encode_long(-n - 1)


@pytest.mark.parametrize("n", [2**63, -(2**63) - 1, 10**30])
def test_long_refuses_what_a_64_bit_long_cannot_hold(n: int) -> None:
    with pytest.raises(OverflowError):
        long(n)
