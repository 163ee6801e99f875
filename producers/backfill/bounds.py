"""The bounds on a file record's shape: the HTTP API's limits, applied to every backfill record.

One set of rules for every producer: a record of a backfill file is held to the bounds an HTTP body is
held to (``ASSETPIPE_HTTP_MAX_JSON_DEPTH``, ``ASSETPIPE_HTTP_MAX_STRING_CHARS``,
``ASSETPIPE_HTTP_MAX_METADATA_ENTRIES``), and JSON text in a cell (CSV ``metadata`` and ``tags``, a
string ``metadata`` or ``tags`` column of Parquet or Avro) is parsed as the HTTP body is
(``schemas.jsonform.loads``: strict JSON, no ``NaN`` or ``Infinity``, integers exact). A record out of
bounds raises ``RecordLimitError`` naming the field, and is rejected on its own.

Numbers that are not finite cannot be written in JSON; Parquet and Avro columns can hold them, and the
walk refuses them as the body's parser refuses ``NaN``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from assetpipe.producers.exceptions import RecordLimitError
from assetpipe.schemas import jsonform
from assetpipe.schemas.bounds import Bounds, Crossed, nesting
from assetpipe.schemas.errors import FieldError
from assetpipe.schemas.settings import Settings

_JSON_TEXT = frozenset({"metadata", "tags"})
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 19  # 19 digits in a row may be an integer orjson would read as a float


def loads(raw: bytes) -> Any:
    """``schemas.jsonform.loads`` (JSON as an HTTP body is read), with its check for integers beyond
    64 bits made by a byte translation: its regular expression is several times the cost of the parse,
    and every line of a JSON Lines file pays it. Raises ``ValueError``."""
    if _LONG_RUN not in raw.translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # jsonform says why, in its words
    return jsonform.loads(raw)


class RecordBounds:
    """The bounds (``schemas.bounds``) applied to file records: a record out of bounds raises
    ``RecordLimitError`` naming the field."""

    def __init__(self, bounds: Bounds) -> None:
        self.bounds = bounds

    @classmethod
    def from_settings(cls, settings: Settings) -> RecordBounds:
        return cls(Bounds.from_settings(settings))

    def check(self, record: Mapping[str, Any], raw: bytes | None = None, *, strict: bool = False) -> None:
        """The bounds of one record (the event object is level 1). ``raw``, the JSON text it came from,
        lets a short, shallow record skip the walk. ``strict``: also refuse values JSON cannot hold
        (numbers that are not finite), for records that did not come from JSON text."""
        metadata = record.get("metadata")
        if type(metadata) is dict:
            self._entries(len(metadata))
        if raw is not None and not strict and self.bounds.shallow(raw):
            return
        self._raise(self.bounds.walk(record, 1, finite=True, whole="(record)"))

    def check_strings(self, cells: Mapping[str, str]) -> None:
        """Every cell of a string-form record (a CSV row) within the string bound, its name too. JSON text
        (``metadata``, ``tags``) is held to the bounds of what it holds instead, by ``json_cell``."""
        limit = self.bounds.string_chars
        for name, value in cells.items():
            if (len(value) > limit and name not in _JSON_TEXT) or len(name) > limit:
                self._raise(self.bounds.crossed("string", [name]))
        key = cells.get("asset_key")
        if key and key[0] == "[" and nesting(key) + 1 > self.bounds.depth:
            # a JSON list of parts, as the HTTP query has it
            self._raise(self.bounds.crossed("depth", ["asset_key"]))

    def json_cell(self, name: str, text: str) -> Any:
        """A field's JSON text (``metadata``, ``tags``) parsed as an HTTP body is, within the bounds."""
        raw = text.encode("utf-8", "surrogatepass")
        try:
            value = loads(raw)
        except ValueError as exc:
            if nesting(raw) + 1 > self.bounds.depth:  # the parser's own depth limit is far above ours
                self._raise(self.bounds.crossed("depth", [name]))
            raise FieldError(name, f"Field '{name}' is not valid JSON: {exc}") from None
        if name == "metadata" and type(value) is dict:
            self._entries(len(value))
        if not self.bounds.shallow(raw, -1):
            self._raise(self.bounds.walk(value, 2, finite=True, within=(name,)))
        return value

    def _entries(self, count: int) -> None:
        self._raise(self.bounds.entries(count))

    @staticmethod
    def _raise(crossed: Crossed | None) -> None:
        if crossed is not None:
            raise RecordLimitError(crossed.field, crossed.message)
