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

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from assetpipe.producers.exceptions import RecordLimitError
from assetpipe.schemas import jsonform
from assetpipe.schemas.errors import FieldError
from assetpipe.schemas.settings import Settings

_DEFAULTS = Settings.model_fields
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[][{}]")
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


@dataclass(frozen=True, slots=True)
class Bounds:
    depth: int = _DEFAULTS["http_max_json_depth"].default
    string_chars: int = _DEFAULTS["http_max_string_chars"].default
    metadata_entries: int = _DEFAULTS["http_max_metadata_entries"].default

    @classmethod
    def from_settings(cls, settings: Settings) -> Bounds:
        return cls(settings.http_max_json_depth, settings.http_max_string_chars, settings.http_max_metadata_entries)

    def check(self, record: Mapping[str, Any], raw: bytes | None = None, *, strict: bool = False) -> None:
        """The bounds of one record (the event object is level 1). ``raw``, the JSON text it came from,
        lets a short, shallow record skip the walk. ``strict``: also refuse values JSON cannot hold
        (numbers that are not finite), for records that did not come from JSON text."""
        metadata = record.get("metadata")
        if type(metadata) is dict and len(metadata) > self.metadata_entries:
            raise self._entries(len(metadata))
        if raw is not None and not strict and self._shallow(raw):
            return
        try:
            _walk(record, 1, self.depth, self.string_chars)
        except _Bound as bound:
            raise bound.error(self) from None

    def check_strings(self, cells: Mapping[str, str]) -> None:
        """Every cell of a string-form record (a CSV row) within the string bound, its name too. JSON text
        (``metadata``, ``tags``) is held to the bounds of what it holds instead, by ``json_cell``."""
        limit = self.string_chars
        for name, value in cells.items():
            if (len(value) > limit and name not in _JSON_TEXT) or len(name) > limit:
                raise _Bound("string", [name]).error(self)
        key = cells.get("asset_key")
        if key and key[0] == "[" and _depth(key.encode("utf-8", "surrogatepass")) + 1 > self.depth:
            raise _Bound("depth", ["asset_key"]).error(self)  # a JSON list of parts, as the HTTP query has it

    def json_cell(self, name: str, text: str) -> Any:
        """A field's JSON text (``metadata``, ``tags``) parsed as an HTTP body is, within the bounds."""
        raw = text.encode("utf-8", "surrogatepass")
        try:
            value = loads(raw)
        except ValueError as exc:
            if _depth(raw) + 1 > self.depth:  # the parser's own depth limit is far above ours
                raise _Bound("depth", [name]).error(self) from None
            raise FieldError(name, f"Field '{name}' is not valid JSON: {exc}") from None
        if name == "metadata" and type(value) is dict and len(value) > self.metadata_entries:
            raise self._entries(len(value))
        if not self._shallow(raw, levels=1):
            try:
                _walk(value, 2, self.depth, self.string_chars)
            except _Bound as bound:
                bound.path.insert(0, name)
                raise bound.error(self) from None
        return value

    def _shallow(self, raw: bytes, levels: int = 0) -> bool:
        """No string in ``raw`` can be too long nor any nesting too deep when the whole text is short
        enough and holds few enough brackets (a count at C speed instead of a walk)."""
        return len(raw) <= self.string_chars and raw.count(b"{") + raw.count(b"[") + levels <= self.depth

    def _entries(self, count: int) -> RecordLimitError:
        return RecordLimitError(
            "metadata",
            f"Field 'metadata' has {count} entries, over the limit of {self.metadata_entries} "
            "(ASSETPIPE_HTTP_MAX_METADATA_ENTRIES)",
        )


def _depth(raw: bytes) -> int:
    """The deepest nesting of brackets in JSON text, strings left out (for the message of a refusal)."""
    deepest = level = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub(b"", raw)):
        level += 1 if bracket in b"[{" else -1
        deepest = max(deepest, level)
    return deepest


class _Bound(Exception):
    """Raised deep in the walk; each level on the way out adds its key, so the message names the field."""

    def __init__(self, kind: Literal["depth", "string", "number"], path: list[str] | None = None) -> None:
        super().__init__(kind)
        self.kind = kind
        self.path: list[str] = path or []

    def error(self, bounds: Bounds) -> RecordLimitError:
        where = ".".join(self.path) or "(record)"
        if self.kind == "depth":
            message = f"Field '{where}' nests deeper than {bounds.depth} levels (ASSETPIPE_HTTP_MAX_JSON_DEPTH)"
        elif self.kind == "string":
            message = (
                f"Field '{where}' is longer than {bounds.string_chars} characters (ASSETPIPE_HTTP_MAX_STRING_CHARS)"
            )
        else:
            message = f"Field '{where}' is a number out of range (NaN and infinities have no JSON form)"
        return RecordLimitError(where, message)


def _walk(value: Any, depth: int, max_depth: int, max_chars: int) -> None:
    if depth > max_depth:
        raise _Bound("depth")
    items: Any = value.items() if isinstance(value, Mapping) else enumerate(value) if _is_list(value) else ()
    for key, item in items:
        try:
            if type(key) is str and len(key) > max_chars:
                raise _Bound("string")
            t = type(item)
            if t is str:
                if len(item) > max_chars:
                    raise _Bound("string")
            elif t is float:
                if not math.isfinite(item):
                    raise _Bound("number")
            elif isinstance(item, Mapping) or _is_list(item):
                _walk(item, depth + 1, max_depth, max_chars)
        except _Bound as bound:
            bound.path.insert(0, str(key))
            raise


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray))
