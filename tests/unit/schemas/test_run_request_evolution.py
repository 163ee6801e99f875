"""The run request gained ``asset_selection``: requests written by the previous schema still decode (with
an empty selection) and a reader on the previous schema still reads new ones (a rolling upgrade)."""

from __future__ import annotations

import io
import json

import fastavro
from fastavro.schema import parse_schema, to_parsing_canonical_form

from assetpipe.schemas.codec import AVRO_DIR, SINGLE_OBJECT_MARKER, Codec, schema_fingerprint

V1 = AVRO_DIR / "history" / "assetpipe.RunRequest.v1.avsc"
RECORD = {"run_id": "r-1", "job_name": "etl", "code_location": "loc", "requested_at": 1_700_000_000_000_000}


def _body(schema: object, record: dict[str, object]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, schema, record)
    return out.getvalue()


def test_a_request_written_before_asset_selection_decodes_with_an_empty_selection() -> None:
    v1 = parse_schema(json.loads(V1.read_text()))
    codec = Codec()
    assert schema_fingerprint(v1) != codec.schemas.fingerprints["run_request"]
    data = SINGLE_OBJECT_MARKER + schema_fingerprint(v1) + _body(v1, dict(RECORD))

    kind, record = codec.decode(data)

    assert kind == "run_request"
    assert record["asset_selection"] == []
    assert record["job_name"] == "etl"


def test_a_reader_on_the_previous_schema_reads_a_request_with_a_selection() -> None:
    codec = Codec()
    data = codec.encode("run_request", {**RECORD, "asset_selection": ["a/b", "c"]})
    v1 = parse_schema(json.loads(V1.read_text()))
    current = codec.schemas.current["run_request"]
    assert to_parsing_canonical_form(v1) != to_parsing_canonical_form(current)

    record = fastavro.schemaless_reader(io.BytesIO(data[10:]), current, v1)

    assert "asset_selection" not in record
    assert record["run_id"] == "r-1"
    assert codec.decode(data)[1]["asset_selection"] == ["a/b", "c"]
