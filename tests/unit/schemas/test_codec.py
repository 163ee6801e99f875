"""The codec: Avro single-object framing, Confluent wire format, decode errors and schema evolution."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import struct
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form
from hypothesis import given, settings
from hypothesis import strategies as st

from assetpipe import AssetCheckEvaluation, AssetMaterialization, AssetObservation, ValidationError
from assetpipe.schemas.codec import AVRO_DIR, HISTORY_DIR, Codec, SchemaSet
from assetpipe.schemas.errors import DecodeError, UnknownSchemaError
from assetpipe.schemas.model import AssetEvent, event_from_record

FIXTURES = Path(__file__).parent / "fixtures"
V1_MATERIALIZATION = FIXTURES / "assetpipe.AssetMaterialization.v1.avsc"
WHEN = datetime(2024, 3, 4, 5, 6, 7, 890_123, tzinfo=UTC)


def _events() -> list[AssetEvent]:
    common: dict[str, Any] = {
        "partition": "2024-03-04",
        "data_version": "v7",
        "description": "nightly load",
        "metadata": {"rows": 1200, "ratio": 0.5, "ok": True, "owner": "data", "cfg": {"a": [1]}},
        "tags": {"team": "data", "dagster/data_version": "v7"},
        "timestamp": WHEN,
        "source": "backfill",
        "host": "worker-3",
        "run_id": "run-42",
    }
    return [
        AssetMaterialization("sales/daily", event_id=str(uuid.uuid4()), **common),
        AssetObservation("sales/daily", event_id=str(uuid.uuid4()), **common),
        AssetCheckEvaluation(
            "sales/daily", event_id=str(uuid.uuid4()), check_name="rows>0", passed=False, severity="WARN", **common
        ),
    ]


EVENTS = [pytest.param(e, id=e.event_type) for e in _events()]


def _mock_registry() -> Any:
    return SchemaRegistryClient.new_client({"url": f"mock://{uuid.uuid4().hex}"})


def _crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO (Rabin) exactly as the Avro specification writes it out."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


def _avro_body(schema: Any, record: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, record)
    return buf.getvalue()


# -- single-object framing --


@pytest.mark.parametrize("event", EVENTS)
def test_round_trip_rebuilds_the_event(codec: Codec, event: AssetEvent) -> None:
    event_type, record = codec.decode(codec.encode(event.event_type, event.to_record()))
    assert event_type == event.event_type
    assert event_from_record(event_type, record) == event


@pytest.mark.parametrize("event", EVENTS)
def test_single_object_header_is_marker_then_fingerprint(
    codec: Codec, schema_set: SchemaSet, event: AssetEvent
) -> None:
    data = codec.encode(event.event_type, event.to_record())
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == schema_set.fingerprints[event.event_type]


def test_crc64_avro_implementation_matches_the_spec_test_vector() -> None:
    assert _crc64_avro(b'"int"') == 8247732601305521295  # Avro's published fingerprint of "int"


@pytest.mark.parametrize("event_type", ["materialization", "observation", "check_evaluation"])
def test_fingerprint_is_little_endian_crc64_of_the_canonical_form(schema_set: SchemaSet, event_type: str) -> None:
    canonical = to_parsing_canonical_form(schema_set.current[event_type])

    assert schema_set.fingerprints[event_type] == struct.pack("<Q", _crc64_avro(canonical.encode()))
    assert schema_set.fingerprints[event_type] == bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))


def test_event_types_have_distinct_fingerprints(schema_set: SchemaSet) -> None:
    assert len(set(schema_set.fingerprints.values())) == len(schema_set.fingerprints)


def test_encoding_a_record_that_breaks_the_schema_is_a_validation_error(codec: Codec) -> None:
    record = AssetMaterialization("a").to_record()
    del record["source"]
    with pytest.raises(ValidationError) as exc:
        codec.encode("materialization", record)
    assert exc.value.field == "event"
    assert "source" in str(exc.value)


@pytest.mark.parametrize("registry", [None, "mock"])
def test_unknown_event_type_is_a_validation_error(registry: str | None) -> None:
    codec = Codec(registry=_mock_registry() if registry else None)
    with pytest.raises(ValidationError) as exc:
        codec.encode("lineage", AssetMaterialization("a").to_record())
    assert exc.value.field == "event_type"


# -- bytes that are not an event --


def _valid_bytes() -> bytes:
    return Codec().encode("materialization", AssetMaterialization("a", metadata={"n": 1}).to_record())


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"hello world", id="garbage"),
        pytest.param(b'{"asset_key": ["a"]}', id="json"),
        pytest.param(b"\xc3\x01\x00", id="marker without fingerprint"),
        pytest.param(b"\x00\x00\x00", id="short confluent header"),
        pytest.param(_valid_bytes()[:10], id="header only"),
        pytest.param(_valid_bytes()[:-1], id="truncated body"),
        pytest.param(_valid_bytes()[:30], id="truncated mid-string"),
        pytest.param(_valid_bytes() + b"\x00", id="one trailing byte"),
        pytest.param(_valid_bytes() + _valid_bytes(), id="two events concatenated"),
    ],
)
def test_undecodable_bytes_raise_decode_error(codec: Codec, data: bytes) -> None:
    with pytest.raises(DecodeError) as exc:
        codec.decode(data)
    assert exc.value.code in ("undecodable", "unknown_schema")


def test_trailing_bytes_are_reported(codec: Codec) -> None:
    with pytest.raises(DecodeError, match="2 trailing bytes"):
        codec.decode(_valid_bytes() + b"\x00\x00")


def test_unknown_fingerprint_is_unknown_schema_error(codec: Codec) -> None:
    data = b"\xc3\x01" + b"\x01" * 8 + _valid_bytes()[10:]
    with pytest.raises(UnknownSchemaError) as exc:
        codec.decode(data)
    assert exc.value.code == "unknown_schema"
    assert "0101010101010101" in str(exc.value)


def test_confluent_framing_without_registry_is_unknown_schema_error(codec: Codec) -> None:
    with pytest.raises(UnknownSchemaError, match="schema id 7"):
        codec.decode(b"\x00" + struct.pack(">I", 7) + _valid_bytes()[10:])


def _decode_or_decode_error(codec: Codec, data: bytes) -> None:
    try:
        event_type, record = codec.decode(data)
    except DecodeError:
        return
    assert event_type in ("materialization", "observation", "check_evaluation")
    assert isinstance(record, dict)


# Built once: decoding keeps no state without a registry, and the registry codec only caches lookups.
_PLAIN = Codec()
_VALID = _valid_bytes()
_REGISTRY = _mock_registry()
Codec(registry=_REGISTRY).encode("observation", AssetObservation("a").to_record())  # schema id 1
_REGISTRY.register_schema("keys", Schema('"string"', "AVRO"))  # schema id 2
_WITH_REGISTRY = Codec(registry=_REGISTRY)


@settings(deadline=None, max_examples=500)
@given(data=st.binary(max_size=200))
def test_random_bytes_only_ever_raise_decode_error(data: bytes) -> None:
    _decode_or_decode_error(_PLAIN, data)


@settings(deadline=None, max_examples=500)
@given(fp=st.sampled_from(sorted(_PLAIN.schemas.writers)), body=st.binary(max_size=200))
def test_random_body_after_a_known_fingerprint_only_raises_decode_error(fp: bytes, body: bytes) -> None:
    _decode_or_decode_error(_PLAIN, b"\xc3\x01" + fp + body)


@settings(deadline=None, max_examples=500)
@given(st.data())
def test_corrupted_valid_event_only_raises_decode_error(data: st.DataObject) -> None:
    corrupted = bytearray(_VALID)
    for _ in range(data.draw(st.integers(1, 4))):
        corrupted[data.draw(st.integers(10, len(corrupted) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(corrupted)))
    _decode_or_decode_error(_PLAIN, bytes(corrupted[:cut]))


@settings(deadline=None, max_examples=300)
@given(schema_id=st.one_of(st.integers(0, 3), st.integers(0, 2**32 - 1)), body=st.binary(max_size=100))
def test_random_confluent_frames_only_raise_decode_error(schema_id: int, body: bytes) -> None:
    _decode_or_decode_error(_WITH_REGISTRY, b"\x00" + struct.pack(">I", schema_id) + body)


# -- Confluent wire format through a schema registry --


@pytest.mark.parametrize("event", EVENTS)
def test_registry_framing_is_magic_zero_and_big_endian_schema_id(schema_set: SchemaSet, event: AssetEvent) -> None:
    registry = _mock_registry()
    data = Codec(registry=registry).encode(event.event_type, event.to_record())

    assert data[0] == 0
    (schema_id,) = struct.unpack(">I", data[1:5])
    subject = f"asset_events-assetpipe.{type(event).__name__}"
    assert registry.get_latest_version(subject).schema_id == schema_id
    registered = parse_schema(json.loads(registry.get_schema(schema_id).schema_str))
    assert to_parsing_canonical_form(registered) == to_parsing_canonical_form(schema_set.current[event.event_type])


@pytest.mark.parametrize("event", EVENTS)
def test_registry_framed_event_decodes_with_the_same_and_another_codec(event: AssetEvent) -> None:
    registry = _mock_registry()
    producer_side = Codec(registry=registry)
    data = producer_side.encode(event.event_type, event.to_record())

    for codec in (producer_side, Codec(registry=registry)):
        event_type, record = codec.decode(data)
        assert event_from_record(event_type, record) == event


def test_subject_prefix_names_the_registry_subject() -> None:
    registry = _mock_registry()
    Codec(registry=registry, subject_prefix="prod.events").encode("observation", AssetObservation("a").to_record())
    assert registry.get_subjects() == ["prod.events-assetpipe.AssetObservation"]


def test_registry_codec_still_reads_single_object_framing(codec: Codec) -> None:
    event = _events()[0]
    data = codec.encode(event.event_type, event.to_record())
    event_type, record = Codec(registry=_mock_registry()).decode(data)
    assert event_from_record(event_type, record) == event


def test_schema_id_missing_from_the_registry_is_unknown_schema_error() -> None:
    with pytest.raises(UnknownSchemaError, match="schema id 99"):
        Codec(registry=_mock_registry()).decode(b"\x00" + struct.pack(">I", 99) + b"\x02a")


@pytest.mark.parametrize(
    ("schema_str", "schema_type"),
    [
        ('"string"', "AVRO"),
        ('{"type": "record", "name": "other.Order", "fields": [{"name": "id", "type": "long"}]}', "AVRO"),
        ('{"type": "object", "properties": {"id": {"type": "integer"}}}', "JSON"),
        ('syntax = "proto3"; message Order { int64 id = 1; }', "PROTOBUF"),
    ],
    ids=["avro primitive", "another record", "json schema", "protobuf"],
)
def test_schema_id_of_a_foreign_schema_is_unknown_schema_error(schema_str: str, schema_type: str) -> None:
    registry = _mock_registry()
    schema_id = registry.register_schema("orders-value", Schema(schema_str, schema_type))
    with pytest.raises(UnknownSchemaError):
        Codec(registry=registry).decode(b"\x00" + struct.pack(">I", schema_id) + b"\x02")


def test_registry_registers_the_schema_the_codec_writes_with(tmp_path: Path) -> None:
    """A SchemaSet read from another directory (a schema under development) registers that schema."""
    avro_dir = tmp_path / "avro"
    shutil.copytree(AVRO_DIR, avro_dir, ignore=shutil.ignore_patterns("history"))
    path = avro_dir / "assetpipe.AssetMaterialization.avsc"
    schema = json.loads(path.read_text())
    schema["fields"].append({"name": "owner", "type": "string", "default": ""})
    path.write_text(json.dumps(schema))
    registry = _mock_registry()
    record = AssetMaterialization("a", timestamp=WHEN).to_record() | {"owner": "team-data"}

    data = Codec(SchemaSet(avro_dir, HISTORY_DIR), registry=registry).encode("materialization", record)
    event_type, decoded = Codec(registry=registry).decode(data)  # the released schema reads it

    assert event_type == "materialization"
    assert "owner" not in decoded
    assert decoded["event_id"] == record["event_id"]


# -- schema evolution: v1 writers (no run_id) --

V1_FILES = {
    "materialization": V1_MATERIALIZATION,
    "observation": HISTORY_DIR / "assetpipe.AssetObservation.v1.avsc",
    "check_evaluation": HISTORY_DIR / "assetpipe.AssetCheckEvaluation.v1.avsc",
}


def test_v1_fixture_is_the_shipped_history_schema() -> None:
    fixture = json.loads(V1_MATERIALIZATION.read_text())
    shipped = json.loads((HISTORY_DIR / "assetpipe.AssetMaterialization.v1.avsc").read_text())
    assert fixture == shipped
    assert to_parsing_canonical_form(parse_schema(fixture)) == to_parsing_canonical_form(parse_schema(shipped))


def test_v1_differs_from_v2_only_by_run_id() -> None:
    """v2 added run_id (v3, the current schema, added a source kind: test_source_kind_evolution)."""
    v1 = parse_schema(json.loads(V1_MATERIALIZATION.read_text()))
    v2 = json.loads((HISTORY_DIR / "assetpipe.AssetMaterialization.v2.avsc").read_text())
    v1_names = {f["name"] for f in v1["fields"]}
    assert [f["name"] for f in v2["fields"] if f["name"] not in v1_names] == ["run_id"]
    without_run_id = {**v2, "fields": [f for f in v2["fields"] if f["name"] != "run_id"]}
    assert to_parsing_canonical_form(parse_schema(without_run_id)) == to_parsing_canonical_form(v1)


def _v1_event(event_type: str) -> AssetEvent:
    return next(e for e in _events() if e.event_type == event_type)


def _v1_record(event: AssetEvent) -> dict[str, Any]:
    record = event.to_record()
    del record["run_id"]
    return record


@pytest.mark.parametrize("event_type", list(V1_FILES))
def test_v1_single_object_message_decodes_with_run_id_none(schema_set: SchemaSet, event_type: str) -> None:
    v1 = parse_schema(json.loads(V1_FILES[event_type].read_text()))
    v1_fingerprint = struct.pack("<Q", _crc64_avro(to_parsing_canonical_form(v1).encode()))
    assert v1_fingerprint != schema_set.fingerprints[event_type]
    event = _v1_event(event_type)
    data = b"\xc3\x01" + v1_fingerprint + _avro_body(v1, _v1_record(event))

    decoded_type, record = Codec(schema_set).decode(data)

    assert decoded_type == event_type
    assert record["run_id"] is None
    decoded = event_from_record(decoded_type, record)
    assert decoded.run_id is None
    assert decoded == dataclasses.replace(event, run_id=None)


def test_v1_message_framed_by_a_registry_id_decodes_with_run_id_none() -> None:
    registry = _mock_registry()
    v1_text = V1_MATERIALIZATION.read_text()
    schema_id = registry.register_schema("asset_events-assetpipe.AssetMaterialization", Schema(v1_text, "AVRO"))
    event = _v1_event("materialization")
    body = _avro_body(parse_schema(json.loads(v1_text)), _v1_record(event))
    data = b"\x00" + struct.pack(">I", schema_id) + body

    codec = Codec(registry=registry)
    for _ in range(2):  # the second decode uses the cached writer
        event_type, record = codec.decode(data)
        assert event_type == "materialization"
        assert record["run_id"] is None
        assert record["metadata"] == event.to_record()["metadata"]


def test_current_messages_carry_run_id(codec: Codec) -> None:
    event = _v1_event("materialization")
    _, record = codec.decode(codec.encode("materialization", event.to_record()))
    assert record["run_id"] == "run-42"


def test_v1_reader_can_read_current_messages(codec: Codec) -> None:
    """Full compatibility: a consumer still on v1 skips the new field during a rolling upgrade."""
    event = _v1_event("materialization")
    data = codec.encode("materialization", event.to_record())
    v1 = parse_schema(json.loads(V1_MATERIALIZATION.read_text()))
    current = codec.schemas.current["materialization"]

    record = fastavro.schemaless_reader(io.BytesIO(data[10:]), current, v1)

    assert "run_id" not in record
    assert record["event_id"] == event.event_id
