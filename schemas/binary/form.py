"""An event written from its JSON form: the HTTP API's and the backfill's hot path, with no record in between.

``FormWriter(writer, ...).write(body, parts, host, ...)`` reads a JSON-form body (``schemas.jsonform``:
``partition``, ``data_version``, ``description``, ``metadata`` with plain or typed ``{"type", "value"}``
entries, ``tags``, ``timestamp``, ``event_id``, ``run_id``, and a check's ``check_name``, ``passed``,
``severity``), checks it by the rules of the general path (``jsonform.build_fields``, ``build_record``,
``validate_record``, the codec) and writes the message those would give it, byte for byte. Like
``ReportWriter``, whose caches it shares the layout of, it raises nothing: anything unusual or invalid
returns None, and the caller goes the general way, which raises the same errors as ever.
"""

from __future__ import annotations

import time
from typing import Any

from assetpipe.schemas.binary.event import NONE, EventWriter, array, long, optional, remember, string
from assetpipe.schemas.binary.report import ReportWriter
from assetpipe.schemas.jsonform import event_timestamp_us, typed_value
from assetpipe.schemas.metadata import KINDS, STRING_KINDS, to_wire
from assetpipe.schemas.model import event_id_for, new_event_id
from assetpipe.schemas.validation import _UUID, ASSET_KEY_MAX_CHARS, TIMESTAMP_MAX_US, TIMESTAMP_MIN_US, unprintable

_KINDS = frozenset(KINDS)
# whole seconds within the range an event's time may have (``event_timestamp_us`` checks the rest)
_SECONDS_MIN, _SECONDS_MAX = -(-TIMESTAMP_MIN_US // 1_000_000), TIMESTAMP_MAX_US // 1_000_000

Form = tuple[str, bytes, bytes]  # (event id, message key, message value)


class FormWriter(ReportWriter):
    """Check and write one JSON-form body of ``writer``'s event type in one pass; None where the general
    path must decide. ``source_kind`` is the producer's (``http``, ``backfill``); the host comes per call."""

    __slots__ = ("_last_host", "_parts", "_source_kind", "write")

    def __init__(self, writer: EventWriter, event_type: str, header: bytes, source_kind: str, max_bytes: int) -> None:
        super().__init__(writer, event_type, header, b"", max_bytes)
        self._source_kind = source_kind
        self._parts: dict[tuple[Any, ...], tuple[bytes, bytes, str]] = {}  # parts -> (message key, array, key string)
        self._last_host: tuple[str | None, bytes] = (None, b"")  # the last host and its source, swapped whole
        self.write = self._write

    def _write(
        self,
        body: Any,
        parts: Any,
        host: str,
        default_id: str | None = None,
        idempotency_key: str | None = None,
        extra_tags: dict[str, str] | None = None,
    ) -> Form | None:
        """``body``'s event of asset key ``parts`` from ``host``. Its event id: the body's ``event_id``,
        else ``default_id``, else derived from ``idempotency_key``, else a new one. ``extra_tags`` are
        added to the body's tags (last, as ``{**tags, **extra_tags}``)."""
        try:
            if type(body) is not dict:
                return None
            key = tuple(parts) if type(parts) is list else None
            asset = self._parts.get(key) if key is not None else None
            if asset is None:
                asset = self._asset_parts(parts)
                if asset is None:
                    return None
            get = body.get
            partition = get("partition")
            description = get("description")
            if (partition is not None and (type(partition) is not str or not partition or unprintable(partition))) or (
                description is not None and type(description) is not str
            ):
                return None
            metadata = get("metadata")
            if metadata is None:
                m = NONE
            elif type(metadata) is not dict:
                return None
            elif metadata:
                m = self._metadata(metadata)  # type: ignore[assignment]
                if m is None:
                    return None
            else:
                m = NONE
            tags = get("tags")
            if extra_tags:
                if tags is None:
                    tags = extra_tags
                elif type(tags) is dict:
                    tags = {**tags, **extra_tags}
            if tags is None:
                t = NONE
            elif type(tags) is not dict:
                return None
            elif tags:
                checked = self._tag_map(tags)
                if checked is None:
                    return None
                t = checked
            else:
                t = NONE
            seconds = get("timestamp")
            if seconds is None:
                now = time.time_ns() // 1000
                encoded_time = self._time(now)
            else:
                if type(seconds) is int and _SECONDS_MIN <= seconds <= _SECONDS_MAX:
                    now = seconds * 1_000_000  # = jsonform.event_timestamp_us(seconds), without its checks
                else:
                    now = event_timestamp_us(seconds)
                encoded_time = long(now)  # history: no two alike, unlike the clock readings of ``_time``
            event_id = get("event_id")
            if not event_id:
                if event_id is not None and type(event_id) is not str:
                    return None  # a falsy non-string: the general path refuses its type
                if default_id is not None:
                    event_id = default_id
                elif idempotency_key is None:
                    event_id = new_event_id(now // 1000 if now >= 0 else None)
                elif type(idempotency_key) is str:
                    event_id = event_id_for(self._event_type, asset[2], idempotency_key)
                else:
                    return None
            elif type(event_id) is not str or _UUID.match(event_id) is None:
                return None
            run_id = get("run_id")
            if run_id is not None and (type(run_id) is not str or unprintable(run_id)):
                return None
            if self._check:
                data_version = None  # not a field of a check
                check_name = get("check_name")
                passed = get("passed")
                severity = get("severity")
                if type(check_name) is not str or not check_name or type(passed) is not bool or unprintable(check_name):
                    return None
                if severity is None:
                    severity = "ERROR"
                elif type(severity) is not str:
                    return None
                code = self._severities.get(severity)
                if code is None:
                    return None
                check = (string(check_name), b"\x01" if passed else b"\x00", code)
            else:
                data_version = get("data_version")
                if data_version is not None and (
                    type(data_version) is not str or not data_version or unprintable(data_version)
                ):
                    return None
            last = self._last_host
            source = last[1] if last[0] is host else self._host_source(host)
            out = [
                self._header,
                b"\x48",  # the length of a canonical UUID (36)
                event_id.encode(),
                asset[1],
                NONE if partition is None else optional(partition),
                NONE if data_version is None else optional(data_version),
                NONE if description is None else optional(description),
                m,
                t,
                encoded_time,
                source,
                NONE if run_id is None else optional(run_id),
            ]
            if self._check:
                out += check
            value = b"".join(out)
            if len(value) + len(asset[0]) > self._max:  # the whole message counts: its key too
                return None
            return event_id, asset[0], value
        except Exception:  # off the common shape (the general path names the problem)
            return None

    def _host_source(self, host: str) -> bytes:
        source = self._writer.source(self._source_kind, host)
        self._last_host = (host, source)  # one tuple: threads sharing the writer never see a mixed pair
        return source

    def _asset_parts(self, parts: Any) -> tuple[bytes, bytes, str] | None:
        """Parts that ``validate_asset_key`` accepts (a non-empty list of non-empty strings) -> (message
        key, the array's encoding, the key string)."""
        if type(parts) is not list or not parts or any(type(part) is not str or not part for part in parts):
            return None
        joined = "/".join(parts)
        if len(joined) > ASSET_KEY_MAX_CHARS or unprintable(joined):
            return None
        return remember(self._parts, tuple(parts), (joined.encode(), array(parts), joined))

    def _other(self, key: str, encoded_key: bytes, raw: Any) -> bytes | None:
        """A typed entry (``{"type": kind, "value": ...}``, as ``jsonform`` reads it), else as a report's."""
        if type(raw) is dict and len(raw) == 2 and "type" in raw and "value" in raw:
            kind = raw["type"]
            if isinstance(kind, str) and kind in _KINDS:
                return self._typed(key, encoded_key, kind, raw["value"])
        return super()._other(key, encoded_key, raw)

    def _typed(self, key: str, encoded_key: bytes, kind: str, value: Any) -> bytes | None:
        if kind in STRING_KINDS and type(value) is str:
            cached = self._texts.get(key)
            if cached is not None and cached[1] == value and cached[0] == kind:
                return cached[2]
            return self._text(key, encoded_key, kind, value)
        try:
            return encoded_key + self._writer.entry_writer(to_wire(key, typed_value(key, kind, value)), b"")
        except Exception:  # the general path raises it, with its message
            return None
