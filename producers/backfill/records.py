"""File records -> encoded events: the per-record work of a backfill.

A record is read in the JSON form of ``schemas.jsonform`` (the HTTP API's field names), renamed first by
the ``--map`` options; JSON Lines, Parquet and Avro records are bodies, CSV rows string forms. Its event
id is the record's own ``event_id`` if it has one, else derived from (the file's content hash, the
record's position): the same file backfilled twice yields the same ids, which the ingest worker keeps
once. A body (JSON Lines, Parquet, Avro) is written straight to the message by the encoder's form path
where it can be; the rest is built field by field. Everything a bad record can break raises
``ValidationError`` (naming the field) or ``MalformedRecordError``; the caller rejects that record and
goes on.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

from assetpipe.producers.backfill.bounds import RecordBounds
from assetpipe.producers.backfill.sources import Source
from assetpipe.producers.exceptions import BackfillError
from assetpipe.schemas import jsonform
from assetpipe.schemas.bounds import Bounds
from assetpipe.schemas.encoder import Encoded, EventEncoder
from assetpipe.schemas.errors import FieldError
from assetpipe.schemas.model import EventType, uuid5_from_hex

BACKFILL_NAMESPACE = uuid.UUID("3b6f1e52-7c1d-4f0a-9d47-2a8e5c9b1f30")
FIELD_NAMES = frozenset({"type", "asset_key"} | {name for names in jsonform.FIELDS.values() for name in names})
_JSON_TEXT_FIELDS = ("metadata", "tags")


def derived_event_id(content_hash: str, position: int) -> str:
    """``uuid5(BACKFILL_NAMESPACE, f"{content_hash}:{position}")``."""
    return str(uuid.uuid5(BACKFILL_NAMESPACE, f"{content_hash}:{position}"))


class EventIds:
    """``derived_event_id`` for one file, without rebuilding the hash state per record."""

    __slots__ = ("_copy",)

    def __init__(self, content_hash: str) -> None:
        prefix = hashlib.sha1(BACKFILL_NAMESPACE.bytes + f"{content_hash}:".encode(), usedforsecurity=False)
        self._copy = prefix.copy

    def __call__(self, position: int) -> str:
        h = self._copy()
        h.update(b"%d" % position)
        return uuid5_from_hex(h.hexdigest())


def parse_mapping(items: list[str]) -> dict[str, str]:
    """``--map SRC=DEST`` options -> {source name: field name}. DEST must be a field of the JSON form."""
    mapping: dict[str, str] = {}
    for item in items:
        source, sep, dest = item.partition("=")
        source, dest = source.strip(), dest.strip()
        if not sep or not source or not dest:
            raise BackfillError(f"--map {item!r}: expected SOURCE=FIELD, e.g. --map asset=asset_key")
        if dest not in FIELD_NAMES:
            raise BackfillError(f"--map {item!r}: {dest!r} is not a field; fields: {', '.join(sorted(FIELD_NAMES))}")
        mapping[source] = dest
    return mapping


class RecordConverter:
    """Turns one file's records into encoded events, ready for ``Publisher.publish``."""

    def __init__(
        self,
        source: Source,
        encoder: EventEncoder,
        content_hash: str,
        *,
        default_type: EventType | None = None,
        mapping: Mapping[str, str] | None = None,
        bounds: RecordBounds | None = None,
    ) -> None:
        self._parse = source.parse
        self._strings = source.form == "strings"
        self._json_text = source.json_text
        self._encoder = encoder
        self._host = encoder.host
        self._ids = EventIds(content_hash)
        self._default_type = default_type
        self._mapping = dict(mapping or {})
        self._bounds = bounds or RecordBounds(Bounds())

    def convert(self, position: int, payload: Any) -> Encoded:
        obj = self._parse(payload)
        if self._mapping:
            obj = {self._mapping.get(name, name): value for name, value in obj.items()}
        if self._strings:
            self._bounds.check_strings(obj)
            body = self._json_cells(obj)
            strings = {name: value for name, value in obj.items() if name not in body} if body else obj
            return self._build(position, obj, body, strings)
        if self._json_text and any(type(obj.get(name)) is str for name in _JSON_TEXT_FIELDS):
            obj = {**obj, **self._json_cells(obj)}
            for name in _JSON_TEXT_FIELDS:
                if obj.get(name) == "":  # an empty cell is absent, as in a CSV row
                    del obj[name]
        self._bounds.check(obj, payload if type(payload) is bytes else None, strict=self._json_text)
        # A body: written straight to the message where it is plain (the encoder decides), else built field
        # by field, which raises what it always has.
        kind_name = obj.get("type")
        kind = jsonform.EVENT_TYPE_NAMES.get(kind_name) if type(kind_name) is str else None
        return self._build(position, obj, obj, None, kind)

    def _json_cells(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON text fields of ``obj`` parsed, as the HTTP body is parsed (``producers.bounds``)."""
        return {
            name: self._bounds.json_cell(name, obj[name])
            for name in _JSON_TEXT_FIELDS
            if type(obj.get(name)) is str and obj[name] != ""
        }

    def _build(
        self,
        position: int,
        obj: Mapping[str, Any],
        body: Mapping[str, Any],
        strings: Mapping[str, str] | None,
        kind: EventType | None = None,
    ) -> Encoded:
        kind = kind or self._kind(obj.get("type"))
        if body.get("asset_key") is None and not (strings or {}).get("asset_key"):  # absent, or a null column
            raise FieldError("asset_key", "Missing required field: asset_key")
        parts = jsonform.asset_key(None, body, strings)
        event_id = None if body.get("event_id") or (strings or {}).get("event_id") else self._ids(position)
        return self._encoder.encode_form(kind, body, parts, host=self._host, strings=strings, event_id=event_id)

    def _kind(self, value: Any) -> EventType:
        if value is None or value == "":
            if self._default_type is None:
                raise FieldError("type", "Missing required field: type (give it in the file or pass --type)")
            return self._default_type
        return jsonform.event_type(value)
