"""The encoder: one reported event in, the Kafka message out (event id, key, value).

Owns the per-event work before publishing: coerce the asset key, build the wire record with
``schemas.model.build_record`` (the one shared builder), validate it with
``schemas.validation.validate_record`` (``validate_fields`` for records the builder made, whose event id
and asset key it guarantees), encode it with the ``Codec``. An invalid event raises
``schemas.errors.ValidationError`` naming the field, before anything reaches Kafka.

The fast writers of ``binary`` (a report, a JSON form written straight to the message) are private to
the encoder, which chooses when they apply: every method answers the message or raises, never "take the
other path".

The message key is the asset key string (``sales/daily``): Kafka's partitioner then keeps every event
of one asset in one partition, in the order it was reported.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, cast, get_args

from assetpipe.schemas import jsonform
from assetpipe.schemas.asset_key import CoercibleToAssetKey, coerce_asset_key
from assetpipe.schemas.binary.event import EventWriter
from assetpipe.schemas.binary.form import FormWriter
from assetpipe.schemas.binary.report import ReportWriter
from assetpipe.schemas.codec import Codec
from assetpipe.schemas.errors import ConfigError, ValidationError
from assetpipe.schemas.model import AssetEvent, EventType, Severity, SourceKind, build_record
from assetpipe.schemas.validation import validate_fields, validate_message_size, validate_record

SOURCE_KINDS: tuple[str, ...] = get_args(SourceKind)


# The arguments of ``EventEncoder.encode`` by position -> (event id, key, value); it raises, never answers None.
Report = Callable[..., tuple[str, bytes, bytes]]


def asset_parts(asset_key: CoercibleToAssetKey) -> list[str]:
    """An asset key as the SDK reads one: ``"a/b"`` is two parts (and its own message key), a list or an
    ``AssetKey`` is taken as it is. Anything else raises ``ValidationError``."""
    if type(asset_key) is str:
        return asset_key.split("/")
    try:
        return list(coerce_asset_key(asset_key).path)
    except TypeError as exc:
        raise ValidationError("asset_key", f"must be a string, a list of strings or an AssetKey: {exc}") from exc


class Encoded(NamedTuple):
    """A validated, encoded event, ready for ``Publisher.publish``."""

    event_id: str
    key: bytes
    value: bytes


class EventEncoder:
    """Builds, validates and encodes events reported from one ``source`` on one ``host``.

    ``host`` defaults to ``socket.gethostname()``, computed once. The encoder holds no per-event state,
    so threads may share it.
    """

    def __init__(self, codec: Codec, *, source: SourceKind = "sdk", host: str | None = None) -> None:
        if source not in SOURCE_KINDS:
            raise ConfigError(f"unknown event source {source!r}: expected one of {', '.join(SOURCE_KINDS)}")
        self.codec = codec
        self.source: SourceKind = source
        self.host = socket.gethostname() if host is None else host
        self._reports: dict[str, Report] = {}  # event type -> its report path, made on first use
        self._forms: dict[str, FormWriter | None] = {}  # event type -> its JSON-form path, made on first use

    def reporter(self, event_type: EventType) -> Report:
        """The SDK's path for ``event_type``: the arguments of ``encode`` in its order, positionally ->
        (event id, key, value). A report of the common shape is built, checked and written in one pass
        (``binary.report``); the rest takes the general path, which raises ``ValidationError`` naming the
        field. Never None."""
        report = self._reports.get(event_type)
        if report is not None:
            return report
        general: Report = functools.partial(self.encode_general, event_type)
        writer = self.codec.schemas.compiled.get(event_type)
        if isinstance(writer, EventWriter) and type(self.host) is str:
            source = writer.source(self.source, self.host)
            header = self.codec.header(event_type)
            fused = ReportWriter(writer, event_type, header, source, self.codec.max_event_bytes, general)
            report = cast("Report", fused.report)  # with a fallback it never answers None
        else:
            report = general
        self._reports[event_type] = report
        return report

    def encode_form(
        self,
        event_type: EventType,
        body: Mapping[str, Any],
        parts: Sequence[str],
        *,
        host: str,
        strings: Mapping[str, str] | None = None,
        event_id: str | None = None,
        idempotency_key: str | None = None,
        server_tags: Mapping[str, str] | None = None,
        check_fields: Callable[[dict[str, Any]], None] | None = None,
    ) -> Encoded:
        """An event in its JSON form (an HTTP body and query string, a file's record) -> the message.
        ``strings``: fields given as text (a query string, a CSV row), read by ``jsonform``; ``event_id``:
        the id unless the body gives one; ``server_tags``: tags the server sets over the body's. A plain
        body is written straight to the message (``binary.form``); the rest is built field by field
        (``jsonform.build_fields``, then ``check_fields`` on the fields, ``build_record``), which names
        what is wrong."""
        if not strings:
            form = self._form(event_type)
            if form is not None:
                done = form.write(
                    body, parts, host, event_id, idempotency_key, dict(server_tags) if server_tags else None
                )
                if done is not None:
                    return Encoded._make(done)
        fields = jsonform.build_fields(event_type, body, strings, plain_metadata=True)
        if check_fields is not None:
            check_fields(fields)
        if server_tags:
            fields["tags"] = {**fields.get("tags", {}), **server_tags}
        given = fields.pop("event_id", None)
        record = build_record(event_type, list(parts), source=self.source, host=host,
                              event_id=given or event_id, idempotency_key=idempotency_key, **fields)  # fmt: skip
        return self.encode_record(event_type, record)

    def _form(self, event_type: str) -> FormWriter | None:
        """The JSON-form writer of ``event_type``, where the codec writes it with an ``EventWriter``."""
        if event_type in self._forms:
            return self._forms[event_type]
        writer = self.codec.schemas.compiled.get(event_type)
        form = None
        if isinstance(writer, EventWriter):
            header = self.codec.header(event_type)
            form = FormWriter(writer, event_type, header, self.source, self.codec.max_event_bytes)
        self._forms[event_type] = form
        return form

    def encode(
        self,
        event_type: EventType,
        asset_key: CoercibleToAssetKey,
        *,
        partition: str | None = None,
        data_version: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        check_name: str | None = None,
        passed: bool | None = None,
        severity: Severity = "ERROR",
    ) -> Encoded:
        """One event from its fields. ``asset_key``: ``"a/b"`` is two parts, a list is taken verbatim.

        With ``idempotency_key`` the event id is derived from (event type, asset key, idempotency key),
        so a retried report carries the same id and the warehouse keeps it once.
        """
        return Encoded(*self.encode_args(event_type, asset_key, partition, data_version, description, metadata,
                                         tags, idempotency_key, check_name, passed, severity))  # fmt: skip

    def encode_args(
        self,
        event_type: EventType,
        asset_key: CoercibleToAssetKey,
        partition: str | None = None,
        data_version: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        check_name: str | None = None,
        passed: bool | None = None,
        severity: Severity = "ERROR",
    ) -> tuple[str, bytes, bytes]:
        """``encode``, its arguments by position and its answer a plain (event id, key, value): the SDK's
        per-event call (see ``reporter``)."""
        report = self._reports.get(event_type) or self.reporter(event_type)
        return report(asset_key, partition, data_version, description, metadata, tags, idempotency_key, check_name,
                      passed, severity)  # fmt: skip

    def encode_general(
        self,
        event_type: EventType,
        asset_key: CoercibleToAssetKey,
        partition: str | None = None,
        data_version: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        check_name: str | None = None,
        passed: bool | None = None,
        severity: Severity = "ERROR",
    ) -> tuple[str, bytes, bytes]:
        """``encode_args`` by the general path alone: build the record, check it, encode it (raising
        ``ValidationError`` naming the field). For what the fused path (``reporter``) leaves to it."""
        parts = asset_parts(asset_key)
        record = build_record(
            event_type,
            parts,
            source=self.source,
            host=self.host,
            partition=partition,
            data_version=data_version,
            description=description,
            metadata=metadata,
            tags=tags,
            idempotency_key=idempotency_key,
            check_name=check_name,
            passed=passed,
            severity=severity,
        )
        validate_fields(event_type, record)  # build_record made the event id and checked the asset key
        key, value = "/".join(parts).encode(), self.codec.encode(event_type, record)
        validate_message_size(key, value, self.codec.max_event_bytes)
        return record["event_id"], key, value

    def encode_event(self, event: AssetEvent, *, idempotency_key: str | None = None) -> Encoded:
        """An event object. Its ``event_id``, ``timestamp`` and ``run_id`` are kept when set; the source
        is this encoder's, the host the event's if set, else this encoder's."""
        record = event.to_record(source=self.source, host=event.host or self.host, idempotency_key=idempotency_key)
        return self.encode_record(event.event_type, record)

    def encode_record(self, event_type: str, record: dict[str, Any]) -> Encoded:
        """A wire record built elsewhere (the HTTP API's body, a backfill line): validate and encode."""
        writer = self.codec.schemas.compiled.get(event_type)
        if isinstance(writer, EventWriter):  # validation and writing in one pass, where the record allows
            done = writer.checked(record)
            if done is not None:
                value = self.codec.header(event_type) + done[1]
                if len(value) + len(done[0]) <= self.codec.max_event_bytes:  # the whole message counts
                    return Encoded(record["event_id"], done[0], value)
        validate_record(event_type, record)
        value = self.codec.encode(event_type, record)
        key = "/".join(record["asset_key"]).encode()
        validate_message_size(key, value, self.codec.max_event_bytes)
        return Encoded(record["event_id"], key, value)
