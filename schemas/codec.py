"""The codec: asset events <-> bytes on a Kafka topic.

Default: Avro single-object encoding (``C3 01`` + 8-byte little-endian CRC-64-AVRO fingerprint of the
writer schema + Avro body), self-describing without a registry service. With a schema registry: the
Confluent wire format (``00`` + 4-byte big-endian schema id + body). Decoding accepts both, finds the
writer schema by fingerprint or id, and reads with the current reader schema. Schemas are parsed once
(``SchemaSet``) and compiled once (``schemas.binary``): the hot path runs the compiled writer and
reader. fastavro parses the schemas, reads data of an older writer schema (schema resolution), and
encodes what the compiled writer refuses, so its rules and error messages decide those cases.
"""

from __future__ import annotations

import contextlib
import io
import json
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import fastavro
from fastavro.schema import fingerprint, load_schema, parse_schema, to_parsing_canonical_form

from assetpipe.schemas.binary.event import event_writer
from assetpipe.schemas.binary.reader import compile_reader
from assetpipe.schemas.binary.writer import Reader, UnsupportedSchemaError, Writer, encode_long
from assetpipe.schemas.errors import DecodeError, SchemaRegistryError, UnknownSchemaError, ValidationError
from assetpipe.schemas.model import EVENT_TYPES, SCHEMA_NAMES
from assetpipe.schemas.settings import Settings
from assetpipe.schemas.validation import validate_size

# Avro's zig-zag varint, for what frames Avro data itself (the ingest worker's staging container)
avro_long = encode_long

AVRO_DIR = Path(__file__).parent / "avro"
HISTORY_DIR = AVRO_DIR / "history"
SINGLE_OBJECT_MARKER = b"\xc3\x01"
CONFLUENT_MAGIC = 0
_FP = struct.Struct("<Q")


@dataclass(frozen=True, slots=True)
class WriterSchema:
    event_type: str
    schema: Any  # a parsed fastavro schema
    resolve: bool  # differs from the current reader schema, so fastavro must resolve
    fingerprint: bytes = b""
    # Compiled readers by ``micros_as_int``, built on first use; None where fastavro reads.
    readers: dict[bool, Reader | None] = field(default_factory=dict, compare=False, repr=False)

    def reader(self, micros_as_int: bool) -> Reader | None:
        if micros_as_int not in self.readers:
            compiled = None
            if not self.resolve:
                with contextlib.suppress(UnsupportedSchemaError):  # fastavro reads it
                    compiled = compile_reader(self.schema, micros_as_int=micros_as_int)
            self.readers[micros_as_int] = compiled
        return self.readers[micros_as_int]


def schema_fingerprint(parsed: Any) -> bytes:
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))


class SchemaSet:
    """The current schema of each event type, and every writer schema this build can read."""

    def __init__(self, avro_dir: Path = AVRO_DIR, history_dir: Path = HISTORY_DIR) -> None:
        self.avro_dir = avro_dir
        self.current: dict[str, Any] = {}
        self.fingerprints: dict[str, bytes] = {}
        self.writers: dict[bytes, WriterSchema] = {}
        self.compiled: dict[str, Writer] = {}  # event type -> compiled writer of its current schema
        for event_type, name in SCHEMA_NAMES.items():
            parsed: Any = load_schema(str(avro_dir / f"{name}.avsc"))
            fp = schema_fingerprint(parsed)
            self.current[event_type] = parsed
            self.fingerprints[event_type] = fp
            self.writers[fp] = WriterSchema(event_type, parsed, resolve=False, fingerprint=fp)
            with contextlib.suppress(UnsupportedSchemaError):  # fastavro writes it
                self.compiled[event_type] = event_writer(parsed)
        for path in sorted(history_dir.glob("*.avsc")) if history_dir.is_dir() else ():
            self.add_writer(json.loads(path.read_text()))

    def add_writer(self, schema: Any) -> WriterSchema:
        """Register a past writer schema (self-contained JSON) so its messages decode."""
        parsed: Any = parse_schema(schema)
        event_type = EVENT_TYPES.get(parsed["name"])
        if event_type is None:
            raise UnknownSchemaError(f"writer schema {parsed['name']!r} is not an asset event")
        fp = schema_fingerprint(parsed)
        known = self.writers.get(fp)
        if known is None:
            known = WriterSchema(event_type, parsed, resolve=fp != self.fingerprints[event_type], fingerprint=fp)
            self.writers[fp] = known
        return known

    def schema_json(self, event_type: str) -> str:
        """The full schema text (references inlined), as registered with a schema registry."""
        return json.dumps(load_schema(str(self.avro_dir / f"{SCHEMA_NAMES[event_type]}.avsc"), _write_hint=False))


class Codec:
    """Encode and decode events. ``registry`` (a confluent ``SchemaRegistryClient``) switches the
    encoding to the Confluent wire format; decoding reads either format.

    ``timestamp_micros``: decode ``timestamp-micros`` fields as integer microseconds (what the
    warehouse stores) instead of UTC datetimes. Encoding takes either.
    """

    def __init__(
        self,
        schemas: SchemaSet | None = None,
        *,
        max_event_bytes: int = 1_048_576,
        registry: Any = None,
        subject_prefix: str = "asset_events",
        timestamp_micros: bool = False,
    ) -> None:
        self.schemas = schemas or SchemaSet()
        self.max_event_bytes = max_event_bytes
        self.timestamp_micros = timestamp_micros
        self._registry = registry
        self._subject_prefix = subject_prefix
        self._headers: dict[str, bytes] = (
            {} if registry else {t: SINGLE_OBJECT_MARKER + fp for t, fp in self.schemas.fingerprints.items()}
        )
        self._by_id: dict[int, WriterSchema] = {}
        self._micros_fields = {t: _micros_fields(schema) for t, schema in self.schemas.current.items()}

    def header(self, event_type: str) -> bytes:
        """The framing that starts every message of ``event_type`` (registers its schema if need be)."""
        return self._headers.get(event_type) or self._registry_header(event_type)

    def encode(self, event_type: str, record: dict[str, Any]) -> bytes:
        header = self._headers.get(event_type) or self._registry_header(event_type)
        data = self._write(event_type, record, header)
        if len(data) > self.max_event_bytes:
            validate_size(len(data), self.max_event_bytes)
        return data

    def decode(self, data: bytes) -> tuple[str, dict[str, Any]]:
        """-> (event type, record). Raises ``DecodeError`` for bytes that are not an event."""
        if data[:2] == SINGLE_OBJECT_MARKER and len(data) >= 10:
            writer = self.schemas.writers.get(data[2:10])
            if writer is None:
                raise UnknownSchemaError(f"unknown writer schema fingerprint {data[2:10].hex()}")
            body = 10
        elif data[:1] == b"\x00" and len(data) >= 5:
            writer = self._writer_by_id(struct.unpack(">I", data[1:5])[0])
            body = 5
        else:
            raise DecodeError("not an Avro single-object or Confluent-framed message")
        read = writer.readers.get(self.timestamp_micros, _UNCOMPILED)
        if read is _UNCOMPILED:
            read = writer.reader(self.timestamp_micros)
        if read is not None:
            try:
                record, end = read(data, body)
                if end == len(data):
                    return writer.event_type, record
            except Exception:  # corrupt: fastavro below names what is wrong with the bytes
                pass
        return writer.event_type, self._fastavro_decode(writer, data, body)

    def current_headers(self) -> dict[bytes, tuple[str, int]]:
        """Message headers of the current schemas -> (event type, where the body starts). A message with
        one of these headers has a body that the current schema of its type reads as it is. With a
        registry, the ids this codec has met for the current schemas (registered or read)."""
        found = {SINGLE_OBJECT_MARKER + fp: (t, 10) for t, fp in self.schemas.fingerprints.items()}
        for schema_id, writer in self._by_id.items():
            if not writer.resolve:
                found[struct.pack(">bI", CONFLUENT_MAGIC, schema_id)] = (writer.event_type, 5)
        return found

    def encode_body(self, event_type: str, record: dict[str, Any]) -> bytes:
        """The Avro body alone (no header), written with the current schema of ``event_type``."""
        return self._write(event_type, record, b"")

    def _write(self, event_type: str, record: dict[str, Any], prefix: bytes) -> bytes:
        """``prefix`` + the body: the compiled writer, else fastavro (whose rules and messages decide)."""
        write = self.schemas.compiled.get(event_type)
        if write is not None:
            try:  # not contextlib.suppress: a context manager costs more than this whole line
                return write(record, prefix)
            except Exception:  # fastavro below decides, with its own error message
                pass
        return prefix + self._fastavro_encode(event_type, record)

    def _fastavro_encode(self, event_type: str, record: dict[str, Any]) -> bytes:
        buf = io.BytesIO()
        try:
            fastavro.schemaless_writer(buf, self.schemas.current[event_type], record)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            raise ValidationError("event", f"does not match the {event_type} schema: {exc}") from exc
        return buf.getvalue()

    def _fastavro_decode(self, writer: WriterSchema, data: bytes, body: int) -> dict[str, Any]:
        reader = self.schemas.current[writer.event_type] if writer.resolve else None
        buf = io.BytesIO(data)
        buf.seek(body)
        try:
            record = cast("dict[str, Any]", fastavro.schemaless_reader(buf, writer.schema, reader))
        except Exception as exc:  # fastavro raises many types on corrupt input
            raise DecodeError(f"corrupt Avro body: {type(exc).__name__}: {exc}") from exc
        if buf.tell() != len(data):
            raise DecodeError(f"{len(data) - buf.tell()} trailing bytes after the Avro body")
        if self.timestamp_micros:
            for name in self._micros_fields[writer.event_type]:
                value = record.get(name)
                if isinstance(value, datetime):
                    record[name] = _datetime_to_micros(value)
        return record

    def _registry_header(self, event_type: str) -> bytes:
        if self._registry is None or event_type not in SCHEMA_NAMES:
            raise ValidationError("event_type", f"unknown event type {event_type!r}")
        from confluent_kafka.schema_registry import Schema

        subject = f"{self._subject_prefix}-{SCHEMA_NAMES[event_type]}"
        try:
            schema_id = self._registry.register_schema(subject, Schema(self.schemas.schema_json(event_type), "AVRO"))
        except Exception as exc:
            raise SchemaRegistryError(f"cannot register {subject}: {exc}") from exc
        header = struct.pack(">bI", CONFLUENT_MAGIC, schema_id)
        self._headers[event_type] = header
        self._by_id[schema_id] = self.schemas.writers[self.schemas.fingerprints[event_type]]
        return header

    def _writer_by_id(self, schema_id: int) -> WriterSchema:
        writer = self._by_id.get(schema_id)
        if writer is not None:
            return writer
        if self._registry is None:
            raise UnknownSchemaError(f"Confluent-framed message (schema id {schema_id}) but no schema registry")
        try:
            schema_str = self._registry.get_schema(schema_id).schema_str
        except Exception as exc:
            raise UnknownSchemaError(f"schema id {schema_id} not found in the registry: {exc}") from exc
        try:
            writer = self.schemas.add_writer(json.loads(schema_str))
        except UnknownSchemaError:
            raise
        except Exception as exc:  # not JSON, not Avro, or not a record: no event schema of ours
            raise UnknownSchemaError(f"schema id {schema_id} is not an asset event schema: {exc}") from exc
        self._by_id[schema_id] = writer
        return writer


def make_codec(
    schema_registry_url: str | None, *, max_event_bytes: int, subject_prefix: str, timestamp_micros: bool = False
) -> Codec:
    """The codec the settings ask for: single-object, or Confluent framing with a registry client."""
    registry = None
    if schema_registry_url:
        from confluent_kafka.schema_registry import SchemaRegistryClient

        registry = SchemaRegistryClient.new_client({"url": schema_registry_url})
    return Codec(
        max_event_bytes=max_event_bytes,
        registry=registry,
        subject_prefix=subject_prefix,
        timestamp_micros=timestamp_micros,
    )


_UNCOMPILED: Any = object()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros_fields(schema: Any) -> tuple[str, ...]:
    """Top-level fields of a record schema typed ``timestamp-micros``."""
    return tuple(
        f["name"]
        for f in schema.get("fields", ())
        if isinstance(f["type"], dict) and f["type"].get("logicalType") == "timestamp-micros"
    )


def _datetime_to_micros(value: datetime) -> int:
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def codec_for(settings: Settings, topic: str, *, timestamp_micros: bool = False) -> Codec:
    """The codec of ``topic`` as the settings configure it (registry, size limit); ``topic`` names the
    registry subjects."""
    return make_codec(
        settings.schema_registry_url,
        max_event_bytes=settings.max_event_bytes,
        subject_prefix=topic,
        timestamp_micros=timestamp_micros,
    )
