"""The compiled Avro writer and reader: the same bytes and the same records as fastavro."""

from __future__ import annotations

import io
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.schema import parse_schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assetpipe import (
    AssetCheckEvaluation,
    AssetMaterialization,
    AssetObservation,
    LocalFileCodeReference,
    MetadataValue,
    TableColumn,
    TableColumnDep,
    TableColumnLineage,
    TableRecord,
    TableSchema,
    UrlCodeReference,
    ValidationError,
)
from assetpipe.schemas.binary.reader import compile_reader
from assetpipe.schemas.binary.writer import UnsupportedSchemaError, compile_writer, decode_long, encode_long
from assetpipe.schemas.codec import HISTORY_DIR, Codec, SchemaSet
from assetpipe.schemas.model import build_record

WHEN = datetime(2024, 3, 4, 5, 6, 7, 890_123, tzinfo=UTC)
SCHEMA = TableSchema([TableColumn("id", "int", "key", tags={"pii": "no"}), TableColumn("email")])
METADATA: dict[str, Any] = {
    "text": "hello, wörld ✓",
    "empty": "",
    "url": MetadataValue.url("https://example.com/d?q=1"),
    "path": MetadataValue.path(Path("/data/x.parquet")),
    "notebook": MetadataValue.notebook("nb/explore.ipynb"),
    "json": {"rows": [1, 2.5, None, True, "x"]},
    "md": MetadataValue.md("# Title"),
    "int": -42,
    "int_max": 2**63 - 1,
    "int_min": -(2**63),
    "float": 0.1,
    "inf": float("-inf"),
    "bool": True,
    "timestamp": MetadataValue.timestamp(1_700_000_000.5),
    "null": None,
    "asset": MetadataValue.asset(["warehouse", "sales"]),
    "table": MetadataValue.table([TableRecord({"id": 1, "email": None}), TableRecord({"id": 2, "email": "a"})]),
    "table_schema": MetadataValue.table_schema(SCHEMA),
    "lineage": MetadataValue.column_lineage(TableColumnLineage({"id": [TableColumnDep("crm/users", "uid")]})),
    "refs": MetadataValue.code_references([LocalFileCodeReference("/a.py", 3), UrlCodeReference("https://x")]),
}
EVENT_TYPES = ["materialization", "observation", "check_evaluation"]
_SCHEMAS = SchemaSet()


def _record(event_type: str, **overrides: Any) -> dict[str, Any]:
    extra = {"check_name": "rows>0", "passed": False, "severity": "WARN"} if event_type == "check_evaluation" else {}
    fields: dict[str, Any] = {
        "source": "http",
        "host": "h-1",
        "partition": "2024-03-04",
        "data_version": "v7",
        "description": "nightly",
        "metadata": METADATA,
        "tags": {"team": "data", "dagster/data_version": "v7"},
        "timestamp_us": 1_709_528_767_890_123,
        "run_id": "run-42",
        **extra,
        **overrides,
    }
    return build_record(event_type, ["sales", "daily"], **fields)


def _fastavro_bytes(schema: Any, record: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, record)
    return buf.getvalue()


def _fastavro_record(schema: Any, data: bytes) -> Any:
    return fastavro.schemaless_reader(io.BytesIO(data), schema, None)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_writer_bytes_equal_fastavro_for_every_metadata_kind(event_type: str) -> None:
    schema = _SCHEMAS.current[event_type]
    record = _record(event_type)
    assert compile_writer(schema)(record) == _fastavro_bytes(schema, record)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_reader_record_equals_fastavro_for_every_metadata_kind(event_type: str) -> None:
    schema = _SCHEMAS.current[event_type]
    data = _fastavro_bytes(schema, _record(event_type))
    expected = _fastavro_record(schema, data)

    record, end = compile_reader(schema)(data, 0)

    assert end == len(data)
    assert json.dumps(record, default=str, sort_keys=True) == json.dumps(expected, default=str, sort_keys=True)
    assert record["timestamp"] == WHEN


def test_reader_gives_integer_micros_when_asked() -> None:
    schema = _SCHEMAS.current["materialization"]
    data = _fastavro_bytes(schema, _record("materialization"))
    record, _ = compile_reader(schema, micros_as_int=True)(data, 0)
    assert record["timestamp"] == 1_709_528_767_890_123


def test_writer_takes_a_datetime_timestamp_as_fastavro_does() -> None:
    schema = _SCHEMAS.current["observation"]
    record = _record("observation") | {"timestamp": WHEN}
    assert compile_writer(schema)(record) == _fastavro_bytes(schema, record)


def test_writer_fills_fields_with_defaults_as_fastavro_does() -> None:
    schema = _SCHEMAS.current["materialization"]
    record = _record("materialization")
    for name in ("partition", "data_version", "description", "run_id", "metadata", "tags"):
        del record[name]
    assert compile_writer(schema)(record) == _fastavro_bytes(schema, record)


_text = st.text(max_size=80)
_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    _text,
    st.lists(_text, max_size=3).map(MetadataValue.json),
    st.lists(st.text(min_size=1, max_size=10), min_size=1, max_size=3).map(MetadataValue.asset),
)


@settings(deadline=None, max_examples=300)
@given(
    event_type=st.sampled_from(EVENT_TYPES),
    metadata=st.dictionaries(st.text(min_size=1, max_size=20), _scalar, max_size=8),
    tags=st.dictionaries(_text, _text, max_size=4),
    description=st.one_of(st.none(), _text),
    timestamp=st.integers(-(2**63), 2**63 - 1),
)
def test_random_records_encode_and_decode_as_with_fastavro(
    event_type: str, metadata: dict[str, Any], tags: dict[str, str], description: str | None, timestamp: int
) -> None:
    schema = _SCHEMAS.current[event_type]
    record = _record(event_type, metadata=metadata, tags=tags, description=description, timestamp_us=timestamp)
    data = compile_writer(schema)(record)
    assert data == _fastavro_bytes(schema, record)
    decoded, end = compile_reader(schema, micros_as_int=True)(data, 0)
    assert end == len(data)
    assert decoded["timestamp"] == timestamp
    assert decoded["tags"] == tags
    assert decoded["metadata"].keys() == metadata.keys()


@settings(max_examples=500)
@given(st.integers(-(2**63), 2**63 - 1))
def test_long_varint_matches_fastavro(n: int) -> None:
    schema = parse_schema({"type": "record", "name": "L", "fields": [{"name": "n", "type": "long"}]})
    data = _fastavro_bytes(schema, {"n": n})
    assert encode_long(n) == data
    assert decode_long(data, 0) == (n, len(data))


def test_long_outside_64_bits_is_refused() -> None:
    with pytest.raises(OverflowError):
        encode_long(2**63)


def test_unsupported_logical_type_is_left_to_fastavro() -> None:
    schema = parse_schema(
        {"type": "record", "name": "D", "fields": [{"name": "d", "type": {"type": "int", "logicalType": "date"}}]}
    )
    with pytest.raises(UnsupportedSchemaError):
        compile_writer(schema)
    with pytest.raises(UnsupportedSchemaError):
        compile_reader(schema)


def test_ambiguous_union_value_goes_to_fastavro_with_the_same_bytes() -> None:
    """A dict in a union of a map and a record: only fastavro's rules pick the branch."""
    schema = parse_schema(
        {
            "type": "record",
            "name": "U",
            "fields": [
                {
                    "name": "u",
                    "type": [
                        "null",
                        {"type": "record", "name": "P", "fields": [{"name": "x", "type": "long"}]},
                        {"type": "map", "values": "long"},
                    ],
                }
            ],
        }
    )
    with pytest.raises(TypeError):  # the codec then lets fastavro encode it
        compile_writer(schema)({"u": {"x": 1}})
    assert compile_writer(schema)({"u": ("P", {"x": 1})}) == _fastavro_bytes(schema, {"u": ("P", {"x": 1})})


@pytest.mark.parametrize("event", [AssetMaterialization("a"), AssetObservation("a"),
                                   AssetCheckEvaluation("a", check_name="c", passed=True)])  # fmt: skip
def test_codec_output_is_fastavro_output_behind_the_header(codec: Codec, event: Any) -> None:
    record = event.to_record()
    data = codec.encode(event.event_type, record)
    assert data[10:] == _fastavro_bytes(codec.schemas.current[event.event_type], record)


def test_codec_falls_back_to_fastavro_for_its_error_message(codec: Codec) -> None:
    record = _record("materialization") | {"source": {"kind": "carrier-pigeon", "host": "h"}}
    with pytest.raises(ValidationError, match="materialization schema"):
        codec.encode("materialization", record)


def test_codec_decodes_timestamps_as_micros_when_asked(codec: Codec) -> None:
    data = codec.encode("materialization", _record("materialization"))
    _, record = Codec(timestamp_micros=True).decode(data)
    assert record["timestamp"] == 1_709_528_767_890_123
    assert codec.decode(data)[1]["timestamp"] == WHEN


def test_v1_message_decodes_with_micros_through_schema_resolution() -> None:
    v1 = parse_schema(json.loads((HISTORY_DIR / "assetpipe.AssetMaterialization.v1.avsc").read_text()))
    record = _record("materialization")
    del record["run_id"]
    codec = Codec(timestamp_micros=True)
    fingerprint = next(fp for fp, w in codec.schemas.writers.items() if w.resolve and w.event_type == "materialization")

    _, decoded = codec.decode(b"\xc3\x01" + fingerprint + _fastavro_bytes(v1, record))

    assert decoded["timestamp"] == 1_709_528_767_890_123
    assert decoded["run_id"] is None


def test_non_finite_floats_round_trip() -> None:
    schema = _SCHEMAS.current["materialization"]
    record = _record("materialization", metadata={"nan": math.nan, "inf": math.inf})
    data = compile_writer(schema)(record)
    assert data == _fastavro_bytes(schema, record)
    decoded, _ = compile_reader(schema)(data, 0)
    assert math.isnan(decoded["metadata"]["nan"]["value"])
    assert decoded["metadata"]["inf"]["value"] == math.inf


def test_recursive_records_compile_to_functions_that_call_themselves() -> None:
    schema = parse_schema(
        {
            "type": "record",
            "name": "Node",
            "fields": [{"name": "value", "type": "long"}, {"name": "next", "type": ["null", "Node"]}],
        }
    )
    chain = {"value": 1, "next": {"value": 2, "next": {"value": 3, "next": None}}}
    data = compile_writer(schema)(chain)
    assert data == _fastavro_bytes(schema, chain)
    assert compile_reader(schema)(data, 0) == (chain, len(data))


def _values(schema: Any, named: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Any value of a parsed Avro schema, in the Python form fastavro writes (tuple notation for
    named branches of a union, so both writers pick the same branch)."""
    if isinstance(schema, str) and schema in named:
        return _values(named[schema], named)
    if isinstance(schema, list):
        branches = []
        for branch in schema:
            resolved = named.get(branch, branch) if isinstance(branch, str) else branch
            name = resolved["name"] if isinstance(resolved, dict) and "name" in resolved else None
            values = _values(branch, named)
            branches.append(values.map(lambda v, n=name: (n, v)) if name else values)
        return st.one_of(branches)
    kind = schema if isinstance(schema, str) else schema["type"]
    if isinstance(schema, dict) and schema.get("logicalType") == "timestamp-micros":
        return st.integers(-62_135_596_800_000_000, 253_402_300_799_999_999)  # datetimes of years 1-9999
    primitives: dict[str, st.SearchStrategy[Any]] = {
        "null": st.none(), "boolean": st.booleans(), "int": st.integers(-(2**31), 2**31 - 1),
        "long": st.integers(-(2**63), 2**63 - 1), "float": st.floats(width=32, allow_nan=False),
        "double": st.floats(allow_nan=False), "string": st.text(max_size=10), "bytes": st.binary(max_size=10),
    }  # fmt: skip
    if kind in primitives:
        return primitives[kind]
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "array":
        return st.lists(_values(schema["items"], named), max_size=2)
    if kind == "map":
        return st.dictionaries(st.text(max_size=8), _values(schema["values"], named), max_size=2)
    if kind == "record":
        return st.fixed_dictionaries({f["name"]: _values(f["type"], named) for f in schema["fields"]})
    return _values(kind, named)  # {"type": "some.Named"}


@pytest.mark.parametrize("event_type", list(_SCHEMAS.current))
@settings(deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_every_current_schema_writes_and_reads_as_fastavro_does(event_type: str, data: st.DataObject) -> None:
    """Every schema the codec serves (new ones included): random records, byte for byte."""
    schema = _SCHEMAS.current[event_type]
    record = data.draw(_values(schema, schema["__named_schemas"]))
    encoded = compile_writer(schema)(record)
    assert encoded == _fastavro_bytes(schema, record)
    decoded, end = compile_reader(schema)(encoded, 0)
    assert end == len(encoded)
    assert decoded == _fastavro_record(schema, encoded)


def test_every_current_schema_takes_the_compiled_path(schema_set: SchemaSet) -> None:
    # The codec falls back to fastavro without a word when a schema does not compile: correct, but slow.
    # A schema change that loses the compiled path must show up here, not only in a benchmark.
    assert set(schema_set.compiled) == set(schema_set.current)
    for fp in schema_set.fingerprints.values():
        assert schema_set.writers[fp].reader(True) is not None
        assert schema_set.writers[fp].reader(False) is not None
