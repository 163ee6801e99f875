"""Reading a request: content type, bounded body, JSON parsing, and the bounds on the JSON's shape.

The body is read chunk by chunk and refused (413) as soon as it passes the limit, before any parsing;
``Content-Length`` is checked first so an oversized upload is refused before it is read (its rest is
then read and dropped, within bounds, so that the client reads the answer: ``endpoint.discard_body``).
Parsed JSON is walked once for nesting depth, string lengths and metadata entries (400 naming the
limit) before any event is built from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from starlette.requests import ClientDisconnect

from assetpipe.producers.http.endpoint import READ, READING, Incoming
from assetpipe.producers.http.exceptions import (
    BodyTooLargeError,
    LimitExceededError,
    MalformedBodyError,
    UnsupportedMediaTypeError,
)
from assetpipe.schemas import jsonform
from assetpipe.schemas.bounds import Bounds, Crossed, nesting
from assetpipe.schemas.jsonform import json_type
from assetpipe.schemas.settings import Settings

BodyKind = Literal["json", "ndjson"]
MAX_IDEMPOTENCY_KEY = 200
JSON_TYPES = frozenset({"application/json"})
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines"})

_JSON_SPACE = b" \t\n\r"  # JSON's whitespace: other control bytes (a vertical tab) make a body malformed


@dataclass(frozen=True, slots=True)
class Limits:
    body_bytes: int
    batch_bytes: int
    depth: int
    metadata_entries: int
    string_chars: int
    bounds: Bounds = field(init=False)  # the shape bounds every producer shares

    def __post_init__(self) -> None:
        object.__setattr__(self, "bounds", Bounds(self.depth, self.string_chars, self.metadata_entries))

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            settings.http_max_body_bytes,
            settings.http_max_batch_bytes,
            settings.http_max_json_depth,
            settings.http_max_metadata_entries,
            settings.http_max_string_chars,
        )


def body_kind(content_type: str | None, *, ndjson: bool = False) -> BodyKind | None:
    """``json``, ``ndjson`` (batch endpoint only), or None when no content type was sent; else 415."""
    if content_type is None:
        return None
    media = content_type.partition(";")[0].strip().lower()
    if media in JSON_TYPES:
        return "json"
    if ndjson and media in NDJSON_TYPES:
        return "ndjson"
    accepted = "application/json or application/x-ndjson" if ndjson else "application/json or no body"
    raise UnsupportedMediaTypeError(f"Unsupported content type '{content_type}': send {accepted}")


async def read_body(request: Incoming, limit: int, setting: str) -> bytes:
    """The whole body, refused with 413 as soon as it is known to pass ``limit`` bytes (the
    ``Content-Length`` header is checked first). ``request.body`` says how far it was read."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise _too_large(int(length), limit, setting)
    receive = request.receive
    request.body = READING
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            request.body = READ  # nothing more will come
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(size, limit, setting, at_least=True)
        chunks.append(chunk)
        if not message.get("more_body", False):
            request.body = READ
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def idempotency_key(headers: Mapping[str, str]) -> str | None:
    key = headers.get("idempotency-key")
    if key is not None and len(key) > MAX_IDEMPOTENCY_KEY:
        raise LimitExceededError(f"Header 'Idempotency-Key' is longer than {MAX_IDEMPOTENCY_KEY} characters")
    return key


def _too_large(size: int, limit: int, setting: str, *, at_least: bool = False) -> BodyTooLargeError:
    more = "more than " if at_least else ""
    return BodyTooLargeError(
        f"Request body is {more}{size} bytes, over the limit of {limit} bytes (ASSETPIPE_{setting.upper()})"
    )


def parse_object(raw: bytes, limits: Limits) -> dict[str, Any]:
    """A report endpoint's body: empty (no fields) or one JSON object within the bounds."""
    if not raw.strip(_JSON_SPACE):
        return {}
    value = _loads(raw, "JSON body")
    if not isinstance(value, dict):
        raise MalformedBodyError(f"Request body must be a JSON object, got {json_type(value)}")
    check_event(value, limits, raw)
    return value


def parse_events(raw: bytes, kind: BodyKind | None, limits: Limits) -> list[Any]:
    """The batch endpoint's events: a JSON array, or NDJSON (one object a line, blank lines skipped),
    each checked against the bounds. An event that is malformed or out of bounds becomes its
    ``RequestError`` in its place, so the others still count."""
    stripped = raw.lstrip(_JSON_SPACE)
    if kind == "json" or (kind is None and stripped[:1] == b"["):
        value = _loads(raw, "JSON body") if stripped else []
        if not isinstance(value, list):
            raise MalformedBodyError(f"Request body must be a JSON array of events or NDJSON, got {json_type(value)}")
        if limits.bounds.shallow(raw, extra=1):  # so is each event's text: only its metadata entries are left
            return [_checked(event, limits, None, within=True) for event in value]
        # Each event's own JSON text, re-serialized at C speed, usually spares it the walk in Python (not
        # when it may hold an integer beyond 64 bits, which orjson does not write).
        exact = jsonform.exact(raw)
        return [_checked(event, limits, orjson.dumps(event) if exact and isinstance(event, dict) else None)
                for event in value]  # fmt: skip
    events: list[Any] = []
    # orjson reads an integer beyond 64 bits as a float: a body with a long run of digits is read exactly
    append, loads = events.append, orjson.loads if jsonform.exact(raw) else jsonform.loads
    max_chars, max_brackets, max_entries = limits.string_chars, limits.depth, limits.metadata_entries
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip(_JSON_SPACE):
            continue
        try:
            event = loads(line)
        except ValueError as exc:
            append(MalformedBodyError(f"Malformed JSON on line {number}: {exc}"))
            continue
        # The common line, checked inline: an object, short and shallow (see ``Bounds.shallow``), within the
        # metadata bound. Anything else takes ``_checked``, which names the bound it breaks.
        if type(event) is dict and len(line) <= max_chars and line.count(b"{") + line.count(b"[") <= max_brackets:
            metadata = event.get("metadata")
            if type(metadata) is not dict or len(metadata) <= max_entries:
                append(event)
                continue
        append(_checked(event, limits, line))
    return events


def _checked(event: Any, limits: Limits, raw: bytes | None, *, within: bool = False) -> Any:
    if not isinstance(event, dict):
        return MalformedBodyError(f"Event must be a JSON object, got {json_type(event)}")
    try:
        check_event(event, limits, raw, within=within)
    except LimitExceededError as exc:
        return exc
    return event


def _loads(raw: bytes, what: str) -> Any:
    try:
        return jsonform.loads(raw)
    except ValueError as exc:
        raise MalformedBodyError(f"Malformed {what}: {exc}") from exc


def check_event(event: Mapping[str, Any], limits: Limits, raw: bytes | None = None, *, within: bool = False) -> None:
    """Bounds of one event object: nesting depth, string lengths, number of metadata entries. ``raw``,
    the JSON text it came from, lets a shallow event skip the walk; ``within``: that text is known to be
    within the depth and string bounds already (the whole body was)."""
    bounds = limits.bounds
    metadata = event.get("metadata")
    if isinstance(metadata, dict):
        _raise(bounds.entries(len(metadata)))
    if within or (raw is not None and bounds.shallow(raw)):
        return
    _raise(bounds.walk(event, 1))


def check_strings(strings: Mapping[str, str], body: Mapping[str, Any], limits: Limits) -> None:
    """Bounds of a query string's values, with its JSON ``metadata``, ``tags`` and ``asset_key`` (a JSON
    list) when the body lacks them: the body's bounds, depth included."""
    bounds = limits.bounds
    for name, value in strings.items():
        if len(value) > bounds.string_chars or len(name) > bounds.string_chars:
            _raise(bounds.crossed("string", [_shown_name(name)]))
        if name in _JSON_PARAMETERS and name not in body:
            if value.count("[") + value.count("{") > bounds.depth and nesting(value) > bounds.depth - 1:
                _raise(bounds.crossed("depth", [name]))
            try:
                parsed = jsonform.loads(value)
            except ValueError:
                continue  # reported, with the field's name, when the event is built
            if name == "metadata" and isinstance(parsed, dict):
                _raise(bounds.entries(len(parsed)))
            _raise(bounds.walk(parsed, 2, within=(name,)))


_JSON_PARAMETERS = frozenset({"metadata", "tags", "asset_key"})


def _shown_name(name: str) -> str:
    return name if len(name) <= 64 else name[:63] + "\u2026"


def _raise(crossed: Crossed | None) -> None:
    if crossed is not None:
        raise LimitExceededError(crossed.message)
