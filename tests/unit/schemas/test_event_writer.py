"""EventWriter and ReportWriter: the asset events' own writer gives fastavro's bytes, and the report path accepts
exactly what the general path (build_record, validate_fields, the codec) accepts, to the same bytes."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assetpipe import (
    AssetKey,
    LocalFileCodeReference,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    ValidationError,
)
from assetpipe.schemas import model
from assetpipe.schemas.binary.event import CACHE_MAX, SHARED_MAX, EventWriter, event_writer
from assetpipe.schemas.binary.report import ReportWriter
from assetpipe.schemas.codec import Codec, SchemaSet
from assetpipe.schemas.metadata import SharedEntry
from assetpipe.schemas.model import build_record, new_event_id
from assetpipe.schemas.validation import validate_fields, validate_record

EVENT_TYPES = ["materialization", "observation", "check_evaluation"]
_SCHEMAS = SchemaSet()
_CODEC = Codec(_SCHEMAS, timestamp_micros=True)
METADATA: dict[str, Any] = {
    "text": "hello, wörld ✓",
    "empty": "",
    "long text": "x" * 300,
    "url": MetadataValue.url("https://example.com/d?q=1"),
    "path": MetadataValue.path(Path("/data/x.parquet")),
    "json": {"rows": [1, 2.5, None, True, "x"]},
    "list": [1, 2],
    "int": -42,
    "big": 2**40,
    "int_max": 2**63 - 1,
    "int_min": -(2**63),
    "float": 0.1,
    "inf": float("-inf"),
    "bool": True,
    "timestamp": MetadataValue.timestamp(1_700_000_000.5),
    "null": None,
    "asset": MetadataValue.asset(["warehouse", "sales"]),
    "table": MetadataValue.table([TableRecord({"id": 1})]),
    "table_schema": TableSchema([TableColumn("id", "int")]),
    "refs": MetadataValue.code_references([LocalFileCodeReference("/a.py", 3)]),
    "asset_key": AssetKey(["a", "b"]),
    "pathlike": Path("/tmp/x"),
}


def _fastavro(event_type: str, record: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, _SCHEMAS.current[event_type], record)
    return buf.getvalue()


def _record(event_type: str, **fields: Any) -> dict[str, Any]:
    extra = {"check_name": "rows", "passed": True, "severity": "WARN"} if event_type == "check_evaluation" else {}
    args: dict[str, Any] = {"source": "http", "host": "h-1", "timestamp_us": 1_709_528_767_890_123, **extra, **fields}
    return build_record(event_type, ["sales", "daily"], **args)


def _writer(event_type: str) -> EventWriter:
    writer = _SCHEMAS.compiled[event_type]
    assert isinstance(writer, EventWriter)
    return writer


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_metadata_kind_is_written_as_fastavro_writes_it(event_type: str) -> None:
    record = _record(event_type, metadata=METADATA, tags={"team": "data"}, partition="p", run_id="r")
    writer = _writer(event_type)
    assert writer._record(record, False) is not None  # written here, not handed to the compiled writer
    assert writer(record) == _fastavro(event_type, record)
    assert writer(record) == writer.generic(record)  # and again, from its caches
    checked = writer.checked(record)
    assert checked is not None
    assert checked == (b"sales/daily", _fastavro(event_type, record))


def test_records_off_the_common_shape_go_to_the_compiled_writer() -> None:
    record = _record("observation")
    for name in ("partition", "metadata", "tags", "run_id"):
        del record[name]
    writer = _writer("observation")
    assert writer(record, b"h") == b"h" + _fastavro("observation", record)
    assert writer.checked(record) is not None  # defaults, as validate_record reads them
    with pytest.raises(Exception):  # noqa: B017 - the codec lets fastavro name the problem
        writer({**record, "timestamp": "soon"})


def test_other_schemas_keep_the_compiled_writer() -> None:
    assert not isinstance(event_writer(_SCHEMAS.current["run_request"]), EventWriter)


@pytest.mark.parametrize(
    "change",
    [
        {"event_id": "not-a-uuid"},
        {"asset_key": []},
        {"asset_key": ["a", ""]},
        {"asset_key": "sales/daily"},
        {"partition": ""},
        {"data_version": 5},
        {"tags": {"bad key": "x"}},
        {"metadata": {"": {"kind": "int", "value": 1}}},
        {"passed": 1},
        {"check_name": ""},
        {"severity": "INFO"},
    ],
)
def test_checked_refuses_what_validate_record_refuses(change: dict[str, Any]) -> None:
    record = {**_record("check_evaluation"), **change}
    with pytest.raises(ValidationError):
        validate_record("check_evaluation", record)
    assert _writer("check_evaluation").checked(record) is None


def test_caches_stay_bounded() -> None:
    writer = _writer("materialization")
    for i in range(CACHE_MAX + 10):
        record = _record("materialization", metadata={f"k{i}": f"v{i}", f"n{i}": i}, tags={f"t{i}": "x"})
        record["asset_key"] = ["a", str(i)]
        assert writer(record) == _fastavro("materialization", record)
    caches = [writer._keys, writer._texts, writer._numbers, writer._asset_arrays, writer._tags]
    assert all(len(cache) <= CACHE_MAX for cache in caches)


def test_a_shared_entry_is_written_once_and_as_fastavro_writes_it() -> None:
    writer = _writer("materialization")

    def record_with(metadata: dict[str, Any]) -> dict[str, Any]:
        record = _record("materialization")
        record["metadata"] = metadata  # in the wire form already, as the OpenLineage translation builds it
        return record

    columns = [TableColumn(f"c{i}", "int") for i in range(30)]
    wire = model.metadata_to_wire({"schema": TableSchema(columns)})["schema"]
    shared = SharedEntry(wire)
    for rows in range(3):  # one object in every event: encoded the first time, its bytes kept
        record = record_with({"schema": shared, "rows": {"kind": "int", "value": rows}})
        assert writer(record) == _fastavro("materialization", record)
        assert writer.checked(record) == (b"sales/daily", _fastavro("materialization", record))
    assert writer._shared[id(shared)] == (shared, writer.entry_writer(wire, b""))
    # another shared entry, of other content, is written as its own
    other = SharedEntry(model.metadata_to_wire({"schema": TableSchema(columns[:2])})["schema"])
    record = record_with({"schema": other})
    assert writer(record) == _fastavro("materialization", record)
    for i in range(SHARED_MAX + 5):
        entry = SharedEntry(model.metadata_to_wire({"schema": TableSchema([TableColumn(f"x{i}")])})["schema"])
        record = record_with({"schema": entry})
        assert writer(record) == _fastavro("materialization", record)
    assert len(writer._shared) <= SHARED_MAX


_text = st.text(max_size=70)
_raw = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.floats(allow_nan=False),
    _text,
    st.sampled_from(["finance", "sales"]),  # repeated text: the cache is hit
    st.lists(_text, max_size=2),
    st.builds(MetadataValue.url, st.sampled_from(["https://a", "https://b"])),
    st.builds(MetadataValue.md, _text),
    st.builds(MetadataValue, st.sampled_from(["url", "int", "bogus"]), st.one_of(_text, st.integers())),
    st.just(MetadataValue.table_schema(TableSchema([TableColumn("id")]))),
    st.just(object()),
)
_tag_text = st.one_of(st.sampled_from(["team", "ns/key", "dagster/data_version", "v1", "", "bad key"]), _text)
_asset_key = st.one_of(
    st.sampled_from(["sales/daily", "a", "a//b", "/a", ""]),
    st.lists(st.sampled_from(["a", "b/c", "", "sales"]), max_size=3),
    st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=3).map(tuple),
    st.builds(AssetKey, st.lists(st.sampled_from(["x", "y"]), min_size=1, max_size=2)),
    st.just(5),
)
_optional = st.one_of(st.none(), st.sampled_from(["", "2024-06-01", "v7"]), _text, st.just(3))


@settings(deadline=None, max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    event_type=st.sampled_from(EVENT_TYPES),
    asset_key=_asset_key,
    partition=_optional,
    data_version=_optional,
    description=_optional,
    metadata=st.one_of(st.none(), st.dictionaries(st.sampled_from(["rows", "owner", "", "x"]), _raw, max_size=4)),
    tags=st.one_of(st.none(), st.dictionaries(_tag_text, _tag_text, max_size=3)),
    idempotency_key=st.one_of(st.none(), st.sampled_from(["retry-1", "k"])),
    check_name=st.one_of(st.none(), st.sampled_from(["rows", ""])),
    passed=st.one_of(st.booleans(), st.none(), st.just(1)),
    severity=st.sampled_from(["WARN", "ERROR", "INFO"]),
)
def test_fused_report_matches_the_general_path(
    event_type: str,
    asset_key: Any,
    partition: Any,
    data_version: Any,
    description: Any,
    metadata: Any,
    tags: Any,
    idempotency_key: Any,
    check_name: Any,
    passed: Any,
    severity: Any,
) -> None:
    header = _CODEC.header(event_type)
    writer = _writer(event_type)
    report = ReportWriter(writer, event_type, header, writer.source("sdk", "host-1"), 1_048_576).report
    done = report(
        asset_key, partition, data_version, description, metadata, tags, idempotency_key, check_name, passed, severity
    )
    parts = asset_key.split("/") if isinstance(asset_key, str) else getattr(asset_key, "path", asset_key)
    fields: dict[str, Any] = {
        "source": "sdk", "host": "host-1", "partition": partition, "data_version": data_version,
        "description": description, "metadata": metadata, "tags": tags, "idempotency_key": idempotency_key,
        "check_name": check_name, "passed": passed, "severity": severity,
    }  # fmt: skip
    try:
        record = build_record(event_type, list(parts) if isinstance(parts, (list, tuple)) else parts, **fields)
        validate_fields(event_type, record)
        general = _CODEC.encode(event_type, record)
    except (ValidationError, TypeError):
        assert done is None  # the general path raises: the fused one leaves it to it
        return
    if done is None:  # it may leave valid reports to the general path, never the reverse
        return
    event_id, key, value = done
    _, decoded = _CODEC.decode(value)
    assert decoded["event_id"] == event_id
    if idempotency_key is not None:
        assert event_id == record["event_id"]
    assert key == "/".join(record["asset_key"]).encode()
    same = build_record(event_type, record["asset_key"], **{**fields, "event_id": event_id,
                        "timestamp_us": decoded["timestamp"]})  # fmt: skip
    assert value == header + _fastavro(event_type, same)
    assert len(general) == len(value)


def test_a_forked_child_never_hands_out_its_parents_next_event_id() -> None:
    new_event_id()  # fills the pool of random tails
    parents_next = model._TAILS[-1]
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads alive: the child only writes
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, new_event_id()[14:].encode())
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 64).decode() != parents_next
    assert new_event_id()[14:] == parents_next


def test_the_reference_report_takes_the_fused_path() -> None:
    writer = _writer("materialization")
    report = ReportWriter(writer, "materialization", b"", writer.source("sdk", "h"), 1_048_576).report
    metadata = {"rows": 1204, "ratio": 0.25, "owner": "finance", "fresh": True, "dash": MetadataValue.url("https://d")}
    assert report("sales/daily", "2024-06-01", "v7", None, metadata, {"team": "sales"}) is not None


@settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    keys=st.lists(st.sampled_from(["rows", "ratio", "owner", "fresh", "x"]), min_size=1, max_size=5, unique=True),
    rows=st.lists(st.lists(_raw, min_size=5, max_size=5), min_size=2, max_size=8),
)
def test_metadata_of_a_repeated_shape_is_written_as_entry_by_entry(keys: list[str], rows: list[list[Any]]) -> None:
    """The second report of a set of keys makes a writer for its keys and value types; any later values,
    of those types or not, give the bytes the entry-by-entry path gives (itself checked above)."""
    writer = _writer("materialization")
    report = ReportWriter(writer, "materialization", b"", writer.source("sdk", "h"), 1_048_576)
    reference = ReportWriter(writer, "materialization", b"", writer.source("sdk", "h"), 1_048_576)
    for values in [rows[0], rows[0], *rows]:
        metadata = dict(zip(keys, values, strict=False))
        assert report._metadata(metadata) == reference._entries(metadata)


def test_the_reference_metadata_gets_a_writer_of_its_shape() -> None:
    writer = _writer("materialization")
    report = ReportWriter(writer, "materialization", b"", writer.source("sdk", "h"), 1_048_576)
    reference = ReportWriter(writer, "materialization", b"", writer.source("sdk", "h"), 1_048_576)
    rows = [1000, 0, -1, 63, -64, 8191, -8192, 8192, 2**27 - 1, -(2**27), 2**27, 2**40, 2**63 - 1, -(2**63)]
    for i, n in enumerate(rows):  # every length of varint
        metadata = {"rows": n, "ratio": i / 7, "owner": ["finance", "sales"][i % 2], "fresh": i % 3 != 0,
                    "dash": MetadataValue.url(f"https://d/{i // 2}")}  # fmt: skip
        assert report._metadata(metadata) == reference._entries(metadata)
    assert list(report._shapes) == [("rows", "ratio", "owner", "fresh", "dash")]


_name = st.text("abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=12)
_plain_value = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.text(st.characters(codec="utf-8", categories=["L", "N", "P", "Zs"]), max_size=40),
)


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    event_type=st.sampled_from(EVENT_TYPES),
    parts=st.lists(_name, min_size=1, max_size=3),
    partition=st.one_of(st.none(), _name),
    data_version=st.one_of(st.none(), _name),
    description=st.one_of(st.none(), st.text(max_size=60)),
    metadata=st.one_of(st.none(), st.dictionaries(_name, _plain_value, max_size=6)),
    tags=st.one_of(st.none(), st.dictionaries(_name, _name, max_size=3)),
    idempotency_key=st.one_of(st.none(), _name),
    check_name=_name,
    passed=st.booleans(),
    severity=st.sampled_from(["WARN", "ERROR"]),
)
def test_plain_valid_reports_take_the_fused_path(
    event_type: str, parts: list[str], partition: str | None, data_version: str | None, description: str | None,
    metadata: dict[str, Any] | None, tags: dict[str, str] | None, idempotency_key: str | None, check_name: str,
    passed: bool, severity: str,
) -> None:  # fmt: skip
    """What services report day to day (an asset key of plain names, scalar metadata, simple tags) is written
    by the fused path, not left to the general one."""
    writer = _writer(event_type)
    report = ReportWriter(writer, event_type, _CODEC.header(event_type), writer.source("sdk", "h"), 1_048_576).report
    is_check = event_type == "check_evaluation"
    done = report(
        "/".join(parts), partition, None if is_check else data_version, description, metadata,
        None if is_check else tags, idempotency_key, check_name if is_check else None,
        passed if is_check else None, severity,
    )  # fmt: skip
    assert done is not None
