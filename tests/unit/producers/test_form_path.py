"""The producers that start from the JSON form (a backfill's records, the HTTP API's bodies) write it straight
to the message, and give the event, its id and its key that building the record field by field gives."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from assetpipe.producers.backfill.records import BACKFILL_NAMESPACE, EventIds, RecordConverter
from assetpipe.producers.backfill.sources import open_source
from assetpipe.producers.http.app import REPORTING_USER_TAG, Api
from assetpipe.producers.http.auth import ApiKey
from assetpipe.schemas import jsonform
from assetpipe.schemas.codec import Codec
from assetpipe.schemas.encoder import Encoded, EventEncoder
from assetpipe.schemas.model import build_record
from assetpipe.schemas.settings import Settings

HASH = "cd" * 32
METADATA = {
    "rows": 1204, "big": 2**40, "ratio": 0.25, "owner": "finance", "fresh": True, "none": None, "doc": [1, {"a": 2}],
    "dash": {"type": "url", "value": "https://d"}, "count": {"type": "int", "value": 7},
    "at": {"type": "timestamp", "value": "2024-01-15T23:45:00Z"},
    "schema": {"type": "table_schema", "value": {"columns": [{"name": "id", "type": "int"}]}},
}  # fmt: skip
RECORDS: list[dict[str, Any]] = [
    {"type": "materialization", "asset_key": ["sales", "daily"], "partition": "2024-06-01", "metadata": METADATA,
     "timestamp": 1_717_208_000, "tags": {"team": "sales"}, "data_version": "v1", "description": "nightly"},
    {"type": "observation", "asset_key": "one part", "timestamp": "2024-06-01T02:10:00.5+02:00", "run_id": "r-1"},
    {"type": "check", "asset_key": ["sales", "daily"], "check_name": "rows", "passed": False, "severity": "WARN",
     "timestamp": 1_717_208_000.25, "metadata": {"nulls": 3}},
    {"type": "Asset_Materialization", "asset_key": ["a"], "timestamp": -5, "event_id": ""},
    {"type": "materialization", "asset_key": ["a"], "timestamp": 7, "event_id": "6d3c2f9e-8b0a-4c8e-9a51-3f1e2b7d4a60"},
]  # fmt: skip


def test_derived_event_ids_are_the_uuid5_of_every_position() -> None:
    ids = EventIds(HASH)
    for position in [*range(1, 3000), 10**6, 10**12]:
        assert ids(position) == str(uuid.uuid5(BACKFILL_NAMESPACE, f"{HASH}:{position}"))


def test_backfill_records_give_the_events_of_the_general_path(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    source = open_source(path)
    encoder = EventEncoder(Codec(), source="backfill", host="h")
    converter = RecordConverter(source, encoder, HASH)
    for position, _, line in source.records():
        record = dict(source.parse(line))
        kind = jsonform.event_type(record["type"])
        form = encoder._form(kind)
        parts = jsonform.asset_key(None, record)
        assert form is not None and form.write(record, parts, "h", EventIds(HASH)(position)) is not None
        fused = converter.convert(position, line)
        assert type(fused) is Encoded
        fields = jsonform.build_fields(kind, record, None, plain_metadata=True)  # field by field, as before
        event_id = fields.pop("event_id", None) or EventIds(HASH)(position)
        general = build_record(kind, parts, source="backfill", host="h", event_id=event_id, **fields)
        assert fused == encoder.encode_record(kind, general)
        own = record.get("event_id")
        assert fused.event_id == (own or str(uuid.uuid5(BACKFILL_NAMESPACE, f"{HASH}:{position}")))


@pytest.mark.parametrize("name", [None, "etl"])
def test_http_bodies_give_the_events_of_the_general_path(name: str | None) -> None:
    api = Api(Settings(http_require_known_assets=False))
    key = ApiKey(b"", name) if name else None
    codec = api.encoder.codec
    for i, record in enumerate(RECORDS):
        body = {k: v for k, v in record.items() if k != "type"}
        event_type = jsonform.event_type(record["type"])
        form = api.encoder._form(event_type)
        assert form is not None and form.write(body, jsonform.asset_key(None, body), "10.0.0.1", None, "k") is not None
        encoded, asset_key = api._encode(event_type, body, api_key=key, idempotency_key=f"k/{i}", host="10.0.0.1")
        fields = jsonform.build_fields(event_type, body, None, plain_metadata=True)
        if name:
            fields["tags"] = {**fields.get("tags", {}), REPORTING_USER_TAG: name}
        parts = jsonform.asset_key(None, body)
        general = build_record(event_type, parts, source="http", host="10.0.0.1", idempotency_key=f"k/{i}", **fields)
        assert encoded == api.encoder.encode_record(event_type, general)
        assert asset_key == "/".join(parts)
        decoded = codec.decode(encoded.value)[1]
        assert decoded["source"] == {"kind": "http", "host": "10.0.0.1"}
        assert (REPORTING_USER_TAG in decoded["tags"]) == bool(name)
