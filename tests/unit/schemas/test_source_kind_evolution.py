"""The source kind gained ``openlineage`` (schema version 3 of the three first event types): events written
by version 2 still decode, and a reader still on version 2 reads an openlineage event as its enum's default,
``sdk`` (a rolling upgrade). The materialization failure's enums have defaults too, so a later writer's
reason or type that this build does not know reads as ``UNKNOWN`` or ``FAILED``."""

from __future__ import annotations

import copy
import io
import json
from typing import Any

import fastavro
import pytest
from fastavro.schema import load_schema, parse_schema, to_parsing_canonical_form

from assetpipe.schemas.codec import AVRO_DIR, HISTORY_DIR, SINGLE_OBJECT_MARKER, Codec, schema_fingerprint
from assetpipe.schemas.model import SCHEMA_NAMES, build_record, event_from_record

V2_TYPES = ("materialization", "observation", "check_evaluation")
CHECK = {"check_name": "rows", "passed": False, "severity": "WARN"}


def _v2(event_type: str) -> Any:
    name = SCHEMA_NAMES[event_type].removeprefix("assetpipe.")
    return parse_schema(json.loads((HISTORY_DIR / f"assetpipe.{name}.v2.avsc").read_text()))


def _record(event_type: str, source: str) -> dict[str, Any]:
    extra = CHECK if event_type == "check_evaluation" else {"data_version": "v1"}
    return build_record(event_type, ["lineage", "orders"], source=source, host="marquez", partition="p",  # type: ignore[arg-type]
                        run_id="r-1", timestamp_us=1_700_000_000_000_000, metadata={"rows": 3}, **extra)  # fmt: skip


def _body(schema: Any, record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, schema, record)
    return out.getvalue()


def _without_openlineage(schema: Any) -> Any:
    """``schema`` with the source kind of version 2: the same, less the symbol ``openlineage``."""
    old = copy.deepcopy(schema)
    source = next(f for f in old["fields"] if f["name"] == "source")["type"]
    source["fields"][0]["type"]["symbols"].remove("openlineage")
    return old


@pytest.mark.parametrize("event_type", V2_TYPES)
def test_version_2_is_the_current_schema_without_the_openlineage_source(event_type: str) -> None:
    name = SCHEMA_NAMES[event_type]
    current = load_schema(str(AVRO_DIR / f"{name}.avsc"), _write_hint=False)
    assert to_parsing_canonical_form(parse_schema(_without_openlineage(current))) == to_parsing_canonical_form(
        _v2(event_type)
    )


@pytest.mark.parametrize("event_type", V2_TYPES)
def test_an_event_written_by_version_2_decodes_with_the_current_schema(codec: Codec, event_type: str) -> None:
    v2 = _v2(event_type)
    assert schema_fingerprint(v2) != codec.schemas.fingerprints[event_type]
    record = _record(event_type, "http")
    data = SINGLE_OBJECT_MARKER + schema_fingerprint(v2) + _body(v2, record)

    decoded_type, decoded = codec.decode(data)

    assert decoded_type == event_type
    assert decoded["source"] == {"kind": "http", "host": "marquez"}
    assert event_from_record(decoded_type, decoded) == event_from_record(event_type, record)


@pytest.mark.parametrize("event_type", V2_TYPES)
def test_a_reader_on_version_2_reads_an_openlineage_event_as_sdk(codec: Codec, event_type: str) -> None:
    data = codec.encode(event_type, _record(event_type, "openlineage"))
    assert codec.decode(data)[1]["source"]["kind"] == "openlineage"

    old = fastavro.schemaless_reader(io.BytesIO(data[10:]), codec.schemas.current[event_type], _v2(event_type))

    assert old["source"] == {"kind": "sdk", "host": "marquez"}
    assert old["event_id"] == codec.decode(data)[1]["event_id"] and old["partition"] == "p"


def test_a_later_writers_unknown_failure_reason_and_type_read_as_the_defaults() -> None:
    codec = Codec()  # its own schema set: the writer added below stays in this test
    later = load_schema(str(AVRO_DIR / "assetpipe.AssetMaterializationFailure.avsc"), _write_hint=False)
    fields = {f["name"]: f for f in later["fields"]}
    fields["reason"]["type"]["symbols"].append("OUT_OF_MEMORY")
    fields["failure_type"]["type"]["symbols"].append("DEFERRED")
    writer = codec.schemas.add_writer(later)
    assert writer.resolve  # not the current schema: read through Avro's schema resolution
    record = {
        **build_record("materialization_failure", ["a"], source="sdk", host="h", timestamp_us=1_700_000_000_000_000),
        "reason": "OUT_OF_MEMORY",
        "failure_type": "DEFERRED",
    }
    data = SINGLE_OBJECT_MARKER + writer.fingerprint + _body(writer.schema, record)

    event_type, decoded = codec.decode(data)

    assert event_type == "materialization_failure"
    assert (decoded["failure_type"], decoded["reason"]) == ("FAILED", "UNKNOWN")
