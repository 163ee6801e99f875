"""File records -> encoded events: derived event ids, the JSON form of each format, --type and --map."""

from __future__ import annotations

import contextlib
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assetpipe.producers.backfill.records import (
    BACKFILL_NAMESPACE,
    EventIds,
    RecordConverter,
    derived_event_id,
    parse_mapping,
)
from assetpipe.producers.backfill.sources import Source, open_source
from assetpipe.producers.exceptions import BackfillError
from assetpipe.schemas import jsonform
from assetpipe.schemas.codec import Codec
from assetpipe.schemas.encoder import EventEncoder
from assetpipe.schemas.errors import FieldError, ValidationError
from assetpipe.schemas.model import build_record

HASH = "ab" * 32
EVENT: dict[str, Any] = {
    "type": "materialization",
    "asset_key": ["sales", "daily"],
    "partition": "2024-06-01",
    "description": "nightly load",
    "timestamp": "2024-06-01T00:00:00.123456Z",
    "metadata": {"rows": 12, "size": 1.5, "owner": "x", "fresh": True, "dash": {"type": "url", "value": "https://d"}},
    "tags": {"team": "sales"},
}


def decoded(codec: Codec, value: bytes) -> tuple[str, dict[str, Any]]:
    return codec.decode(value)


def converter(source: Source, codec: Codec, **kwargs: Any) -> RecordConverter:
    return RecordConverter(source, EventEncoder(codec, source="backfill", host="h"), HASH, **kwargs)


def jsonl(tmp_path: Path, *records: dict[str, Any], name: str = "e.jsonl") -> Source:
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return open_source(path)


def convert_all(conv: RecordConverter, source: Source) -> list[Any]:
    with contextlib.closing(source.records()) as records:  # the file closes even when a record raises
        return [conv.convert(position, payload) for position, _, payload in records]


def test_event_ids_are_uuid5_of_the_content_hash_and_position() -> None:
    ids = EventIds(HASH)
    assert ids(1) == derived_event_id(HASH, 1) == str(uuid.uuid5(BACKFILL_NAMESPACE, f"{HASH}:1"))
    assert ids(1_000_000) == str(uuid.uuid5(BACKFILL_NAMESPACE, f"{HASH}:1000000"))
    assert ids(1) != ids(2) != EventIds("cd" * 32)(2)


def test_a_record_becomes_the_event_the_http_api_would_build(tmp_path: Path, codec: Codec) -> None:
    source = jsonl(tmp_path, EVENT, {**EVENT, "event_id": "6d3c2f9e-8b0a-4c8e-9a51-3f1e2b7d4a60"})
    first, second = convert_all(converter(source, codec), source)
    assert first.event_id == derived_event_id(HASH, 1) and first.key == b"sales/daily"
    assert second.event_id == "6d3c2f9e-8b0a-4c8e-9a51-3f1e2b7d4a60"  # the record's own id wins
    kind, record = decoded(codec, first.value)
    fields = jsonform.build_fields("materialization", EVENT)  # the slow, general path
    expected = build_record(kind, EVENT["asset_key"], source="backfill", host="h", event_id=first.event_id, **fields)
    assert decoded(codec, codec.encode(kind, expected))[1] == record
    assert record["timestamp"] == datetime(2024, 6, 1, 0, 0, 0, 123_456, tzinfo=UTC)  # the record's own time
    assert record["metadata"]["dash"] == {"kind": "url", "value": "https://d"}
    assert record["source"] == {"kind": "backfill", "host": "h"}


def test_a_csv_row_gives_the_same_event_as_its_json_line(tmp_path: Path, codec: Codec) -> None:
    csv_path = tmp_path / "e.csv"
    csv_path.write_text(
        "type,asset_key,partition,description,timestamp,metadata,tags\n"
        'materialization,sales/daily,2024-06-01,nightly load,2024-06-01T00:00:00.123456Z,"'
        + orjson.dumps(EVENT["metadata"]).decode().replace('"', '""')
        + '","{""team"": ""sales""}"\n'
    )
    csv_source, json_source = open_source(csv_path), jsonl(tmp_path, EVENT)
    (from_csv,) = convert_all(converter(csv_source, codec), csv_source)
    (from_json,) = convert_all(converter(json_source, codec), json_source)
    assert from_csv.value == from_json.value  # same content hash given, same position: same bytes


def test_materialization_failures_are_backfilled_from_lines_and_rows(tmp_path: Path, codec: Codec) -> None:
    line = {"type": "materialization_failure", "asset_key": ["sales", "daily"], "partition": "2024-06-01",
            "run_id": "r-1", "reason": "UPSTREAM_FAILED_TO_MATERIALIZE", "description": "raw failed"}  # fmt: skip
    csv_path = tmp_path / "failures.csv"
    csv_path.write_text("asset_key,failure_type,reason\nsales/daily,SKIPPED,RUN_TERMINATED\nsales/daily,SKIPPD,\n")
    json_source, csv_source = jsonl(tmp_path, line), open_source(csv_path)

    (from_json,) = convert_all(converter(json_source, codec), json_source)
    csv_records = csv_source.records()
    conv = converter(csv_source, codec, default_type="materialization_failure")
    from_csv = conv.convert(*next(csv_records)[::2])

    kind, record = decoded(codec, from_json.value)
    assert kind == "materialization_failure"
    assert (record["partition"], record["run_id"], record["failure_type"], record["reason"], record["description"]) == (
        "2024-06-01", "r-1", "FAILED", "UPSTREAM_FAILED_TO_MATERIALIZE", "raw failed")  # fmt: skip
    kind, record = decoded(codec, from_csv.value)
    assert (kind, record["failure_type"], record["reason"]) == ("materialization_failure", "SKIPPED", "RUN_TERMINATED")
    with pytest.raises(FieldError, match=r"^Invalid failure type 'SKIPPD': expected FAILED or SKIPPED$"):
        conv.convert(*next(csv_records)[::2])


def test_parquet_json_text_columns_read_as_objects(tmp_path: Path, codec: Codec) -> None:
    path = tmp_path / "e.parquet"
    table = pa.table({"asset_key": [["sales", "daily"]], "metadata": [orjson.dumps(EVENT["metadata"]).decode()]})
    pq.write_table(table, path)
    source = open_source(path)
    (encoded,) = convert_all(converter(source, codec, default_type="observation"), source)
    kind, record = decoded(codec, encoded.value)
    assert kind == "observation"
    assert record["metadata"]["rows"] == {"kind": "int", "value": 12}


def test_a_null_column_is_an_absent_field(tmp_path: Path, codec: Codec) -> None:
    path = tmp_path / "nulls.parquet"
    pq.write_table(
        pa.table({"asset_key": pa.array([None, ["a"]], pa.list_(pa.string())), "partition": [None, None]}), path
    )
    source = open_source(path)
    records = source.records()
    conv = converter(source, codec, default_type="materialization")
    with pytest.raises(FieldError, match=r"^Missing required field: asset_key$"):
        conv.convert(*next(records)[::2])
    assert decoded(codec, conv.convert(*next(records)[::2]).value)[1]["partition"] is None


def test_the_type_comes_from_the_record_else_from_the_option(tmp_path: Path, codec: Codec) -> None:
    check = {"asset_key": ["a"], "type": "check", "check_name": "c", "passed": False}
    source = jsonl(tmp_path, {"asset_key": ["a"]}, check)
    plain, checked = convert_all(converter(source, codec, default_type="observation"), source)
    assert decoded(codec, plain.value)[0] == "observation"
    assert decoded(codec, checked.value)[0] == "check_evaluation"
    source = jsonl(tmp_path, {"asset_key": ["a"]}, name="untyped.jsonl")
    with pytest.raises(FieldError, match="Missing required field: type"):
        convert_all(converter(source, codec), source)


@pytest.mark.parametrize(
    ("record", "field", "message"),
    [
        ({"type": "materialization"}, "asset_key", "^Missing required field: asset_key$"),
        ({"type": "run", "asset_key": ["a"]}, "type", "Invalid event type"),
        ({"type": "check", "asset_key": ["a"], "passed": True}, "check_name", "Missing required field: check_name"),
        ({"type": "materialization", "asset_key": ["a"], "partition": 5}, "partition", "must be a string"),
        ({"type": "materialization", "asset_key": ["a"], "metadata": {"n": 2**63}}, "metadata.n", "64-bit"),
        ({"type": "materialization", "asset_key": ["a"], "event_id": "nope"}, "event_id", "UUID"),
        ({"type": "materialization", "asset_key": ["a"], "tags": {"bad key": "x"}}, "tags.bad key", "tag key"),
        ({"type": "materialization", "asset_key": ["a"], "timestamp": 1_717_200_000_000}, "timestamp", "milliseconds"),
        ({"type": "observation", "asset_key": ["a"], "timestamp": "1066-10-14T09:00:00Z"}, "timestamp", "outside"),
    ],
)
def test_a_bad_record_names_the_field(
    tmp_path: Path, codec: Codec, record: dict[str, Any], field: str, message: str
) -> None:
    source = jsonl(tmp_path, record)
    with pytest.raises(ValidationError, match=message) as err:
        convert_all(converter(source, codec), source)
    assert err.value.field == field


def test_map_renames_source_columns_to_fields(tmp_path: Path, codec: Codec) -> None:
    mapping = parse_mapping(["asset = asset_key", "day=partition", "kind=type"])
    assert mapping == {"asset": "asset_key", "day": "partition", "kind": "type"}
    source = jsonl(tmp_path, {"asset": ["x", "y"], "day": "2024-01-01", "kind": "observation"})
    (encoded,) = convert_all(converter(source, codec, mapping=mapping), source)
    kind, record = decoded(codec, encoded.value)
    assert (kind, record["asset_key"], record["partition"]) == ("observation", ["x", "y"], "2024-01-01")
    with pytest.raises(BackfillError, match="expected SOURCE=FIELD"):
        parse_mapping(["asset"])
    with pytest.raises(BackfillError, match="'asset_keys' is not a field"):
        parse_mapping(["asset=asset_keys"])
