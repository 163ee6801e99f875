"""Staging a batch in ClickHouse: the messages' Avro bodies, framed as one Avro object container per
event type, parsed by ClickHouse itself into a session-scoped temporary table.

A message written with the current schema of its event type is a single-object (or Confluent) header
followed by an Avro body that the current schema reads, so the body can go to ClickHouse as it is: the
worker only frames bodies (no decoding in Python) and ClickHouse's Avro reader does the parsing in
native code. Each body gets a trailer, written as one extra field of the staged schema, ``_x``:
``fixed(25)`` = batch nonce (8 bytes) + position in the batch (u32) + Kafka partition (u32) + offset
(u64) + event type code (u8). A body that is not exactly one record shifts every field read after it,
so its trailer (and those after it) stop carrying the nonce: ``check_framing`` then reports the batch
as misframed and the worker decodes it in Python instead.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping, Sequence
from typing import Any

from assetpipe.schemas.codec import avro_long as encode_long

TRAILER_FIELD = "_x"
TRAILER = struct.Struct("<8sIIQB")
# = asset_events' Enum8
EVENT_TYPE_CODES = {"materialization": 1, "observation": 2, "check_evaluation": 3, "materialization_failure": 4}
# Read from the trailer when a row is loaded.
DERIVED_COLUMNS = (
    "i UInt32 MATERIALIZED reinterpretAsUInt32(substring(_x, 9, 4))",
    "kafka_partition UInt32 MATERIALIZED reinterpretAsUInt32(substring(_x, 13, 4))",
    "kafka_offset UInt64 MATERIALIZED reinterpretAsUInt64(substring(_x, 17, 8))",
    "code UInt8 MATERIALIZED reinterpretAsUInt8(substring(_x, 25, 1))",
)
STAGE = "assetpipe_stage"
VERDICTS = "assetpipe_stage_verdicts"
FLAGS = "assetpipe_stage_flags"
LOOKUP = "assetpipe_stage_lookup"  # the batch's keys that the key filter could not rule out


def clickhouse_type(schema: Any, names: dict[str, Any] | None = None) -> str:
    """The ClickHouse column type that ClickHouse's Avro reader fills from a parsed Avro schema.
    ``names``: the named types met so far (a later use of a named type is its name alone)."""
    names = {} if names is None else names
    if isinstance(schema, list):
        branches = [b for b in schema if b != "null"]
        if len(branches) == 1 and len(schema) == 2:
            return f"Nullable({clickhouse_type(branches[0], names)})"
        return f"Variant({', '.join(clickhouse_type(b, names) for b in branches)})"
    if isinstance(schema, str):
        return _PRIMITIVES[schema] if schema in _PRIMITIVES else clickhouse_type(names[schema], names)
    kind = schema["type"]
    if "name" in schema and kind in ("record", "enum", "fixed"):
        name = schema["name"]
        names.setdefault(name if "." in name else f"{schema.get('namespace', '')}.{name}".lstrip("."), schema)
    if schema.get("logicalType") == "timestamp-micros":
        return "DateTime64(6, 'UTC')"
    if kind == "record":
        fields = ", ".join(f"{field['name']} {clickhouse_type(field['type'], names)}" for field in schema["fields"])
        return f"Tuple({fields})"
    if kind == "enum":
        return f"Enum8({', '.join(f'{sql_string(s)} = {i}' for i, s in enumerate(schema['symbols']))})"
    if kind == "array":
        return f"Array({clickhouse_type(schema['items'], names)})"
    if kind == "map":
        return f"Map(String, {clickhouse_type(schema['values'], names)})"
    if kind == "fixed":
        return f"FixedString({schema['size']})"
    return clickhouse_type(kind, names)


_PRIMITIVES = {
    "string": "String",
    "bytes": "String",
    "long": "Int64",
    "int": "Int32",
    "double": "Float64",
    "float": "Float32",
    "boolean": "Bool",
}


def sql_string(text: str) -> str:
    """A ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Staging:
    """The staged schemas (current schema + trailer) of every event type, their container headers,
    and the temporary table they load into."""

    def __init__(
        self, current: Mapping[str, Any], schema_json: Mapping[str, str], computed: Sequence[str] = ()
    ) -> None:
        """``computed``: more MATERIALIZED column definitions, computed once as a row is loaded."""
        self._sync = os.urandom(16)
        self.columns: dict[str, list[str]] = {}
        self._headers: dict[str, bytes] = {}
        types: dict[str, str] = {}
        for event_type in EVENT_TYPE_CODES:
            staged = json.loads(schema_json[event_type])
            staged["fields"].append({"name": TRAILER_FIELD, "type": {"type": "fixed", "name": "Trailer", "size": 25}})
            self._headers[event_type] = self._container_header(json.dumps(staged))
            names: dict[str, Any] = {}
            for field in current[event_type]["fields"]:
                types.setdefault(field["name"], clickhouse_type(field["type"], names))
            self.columns[event_type] = [f["name"] for f in current[event_type]["fields"]] + [TRAILER_FIELD]
        types[TRAILER_FIELD] = "FixedString(25)"
        column_list = ", ".join([f"`{name}` {kind}" for name, kind in types.items()] + [*DERIVED_COLUMNS, *computed])
        self.ddl = (
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGE} ({column_list}) ENGINE = Memory",
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {VERDICTS} (i UInt32, dedup_key UInt64, verdict UInt8) "
            "ENGINE = Memory",
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {FLAGS} (i UInt32, rejected Bool) ENGINE = Memory",
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {LOOKUP} (dk UInt64) ENGINE = Memory",
        )
        self.truncate = tuple(f"TRUNCATE TABLE {t}" for t in (STAGE, VERDICTS, FLAGS, LOOKUP))

    def _container_header(self, schema_text: str) -> bytes:
        meta = {b"avro.schema": schema_text.encode(), b"avro.codec": b"null"}
        out = bytearray(b"Obj\x01")
        out += encode_long(len(meta))
        for key, value in meta.items():
            out += encode_long(len(key)) + key + encode_long(len(value)) + value
        out += b"\x00" + self._sync
        return bytes(out)

    def container(self, event_type: str, pieces: Sequence[bytes], count: int) -> bytes:
        """One Avro object container of ``count`` records whose bytes are ``pieces`` joined."""
        body = b"".join(pieces)
        return b"".join((self._headers[event_type], encode_long(count), encode_long(len(body)), body, self._sync))


def new_nonce() -> bytes:
    return os.urandom(8)
