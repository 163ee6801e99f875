"""The bounds on an event's shape in its JSON form, the same for every producer that reads one (an HTTP
body or query string, a backfill record): nesting depth, string length and metadata entries, set by
``ASSETPIPE_HTTP_MAX_JSON_DEPTH``, ``ASSETPIPE_HTTP_MAX_STRING_CHARS`` and
``ASSETPIPE_HTTP_MAX_METADATA_ENTRIES``.

The checks answer what crossed a bound (``Crossed``: the field and the message naming it), None within
them; each producer raises it as its own error (a 400 of the HTTP API, a rejected backfill record).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from assetpipe.schemas.settings import Settings

Kind = Literal["depth", "string", "number"]
_DEFAULTS = Settings.model_fields
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[][{}]")
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')  # deleted by bytes.translate
_ONE_BRACKET = bytes.maketrans(b"[]", b"{}")
_COUNTED_BYTES = 4096  # longer text seldom holds few enough brackets for the count alone to say "within"
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_QUOTED = re.compile(rb'"[^"]*"')


class Crossed(NamedTuple):
    """A bound crossed: the field (dotted path) and the message naming it and the setting."""

    field: str
    message: str


@dataclass(frozen=True, slots=True)
class Bounds:
    depth: int = _DEFAULTS["http_max_json_depth"].default
    string_chars: int = _DEFAULTS["http_max_string_chars"].default
    metadata_entries: int = _DEFAULTS["http_max_metadata_entries"].default

    @classmethod
    def from_settings(cls, settings: Settings) -> Bounds:
        return cls(settings.http_max_json_depth, settings.http_max_string_chars, settings.http_max_metadata_entries)

    def shallow(self, raw: bytes, extra: int = 0) -> bool:
        """No string in ``raw`` (JSON text that parsed) can be too long, nor any nesting too deep, when the
        whole text is short enough and holds few enough brackets, or nests few enough levels
        (``nests_within``): C-speed passes over the text instead of a walk in Python over what it parsed to."""
        if len(raw) > self.string_chars:
            return False
        limit = self.depth + extra
        if len(raw) <= _COUNTED_BYTES and raw.count(b"{") + raw.count(b"[") <= limit:
            return True
        return nests_within(raw, limit)

    def walk(
        self, value: Any, level: int = 1, *, finite: bool = False, whole: str = "(body)", within: Sequence[str] = ()
    ) -> Crossed | None:
        """The first bound that ``value`` (at nesting ``level``: an event object is level 1, the value of
        the field ``within``, level 2) crosses; None within the bounds. ``finite``: a number that is not
        finite crosses one too (JSON cannot hold it; a Parquet or Avro column can)."""
        try:
            _walk(value, level, self.depth, self.string_chars, finite)
        except _Bound as bound:
            return self.crossed(bound.kind, [*within, *bound.path], whole)
        return None

    def entries(self, count: int) -> Crossed | None:
        """A metadata map of ``count`` entries over the bound; None within it."""
        if count <= self.metadata_entries:
            return None
        message = (
            f"Field 'metadata' has {count} entries, over the limit of {self.metadata_entries} "
            "(ASSETPIPE_HTTP_MAX_METADATA_ENTRIES)"
        )
        return Crossed("metadata", message)

    def crossed(self, kind: Kind, path: Sequence[str], whole: str = "(body)") -> Crossed:
        where = ".".join(path) or whole
        if kind == "depth":
            message = f"Field '{where}' nests deeper than {self.depth} levels (ASSETPIPE_HTTP_MAX_JSON_DEPTH)"
        elif kind == "string":
            message = f"Field '{where}' is longer than {self.string_chars} characters (ASSETPIPE_HTTP_MAX_STRING_CHARS)"
        else:
            message = f"Field '{where}' is a number out of range (NaN and infinities have no JSON form)"
        return Crossed(where, message)


def nesting(text: str | bytes) -> int:
    """The deepest nesting of brackets in JSON text, strings left out: for text that may be too deep to
    parse at all."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    deepest = level = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub(b"", raw)):
        level += 1 if bracket in b"[{" else -1
        deepest = max(deepest, level)
    return deepest


def nests_within(raw: bytes, limit: int) -> bool:
    """True when the brackets of ``raw``, JSON text that parsed, nest at most ``limit`` levels (strings
    left out); False when deeper. The text is cut down to its quotes and brackets, its strings dropped,
    then each pass removes every innermost pair: the passes it takes to empty are its depth. Every step
    is a C-speed pass over bytes, most over its few hundred brackets alone."""
    if b"\\" in raw:
        raw = _ESCAPE.sub(b"", raw)  # an escape is a backslash and one character: \" never ends a string
    # '""' is a string without brackets, or the end of one and the start of the next with nothing between:
    # dropped or joined, the brackets outside strings stay as they were
    text = raw.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    brackets = (_QUOTED.sub(b"", text) if b'"' in text else text).translate(_ONE_BRACKET)
    for _ in range(max(limit, 0)):
        if not brackets:
            return True
        inner = brackets.replace(b"{}", b"")  # scans the text as it was: one level a pass
        if len(inner) == len(brackets):
            return False  # brackets that do not pair up (not JSON)
        brackets = inner
    return not brackets


class _Bound(Exception):
    """Raised deep in the walk; each level on the way out adds its key, so the message names the field."""

    def __init__(self, kind: Kind) -> None:
        super().__init__(kind)
        self.kind: Kind = kind
        self.path: list[str] = []


def _walk(value: Any, level: int, max_depth: int, max_chars: int, finite: bool) -> None:
    if level > max_depth:
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
                if finite and not math.isfinite(item):
                    raise _Bound("number")
            elif isinstance(item, Mapping) or _is_list(item):
                _walk(item, level + 1, max_depth, max_chars, finite)
        except _Bound as bound:
            bound.path.insert(0, str(key))
            raise


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray))
