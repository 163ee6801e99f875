"""The event model: ``AssetMaterialization``, ``AssetObservation``, ``AssetCheckEvaluation``,
``AssetMaterializationFailure``.

Events are built by users (``AssetMaterialization("sales/daily", metadata={...})``) and turned into the
wire record (the Avro dict) by ``build_record``, the one function every producer goes through.
``event_from_record`` rebuilds an event from a decoded record.

A materialization's or observation's data version may come as Dagster code sets it, in the tag
``dagster/data_version`` (or the legacy ``dagster/logical_version``): ``tagged_data_version`` makes it the
event's ``data_version`` in the model and in ``build_record``, so every path stores it alike. A failed
materialization wrote no data: it has no data version (its tags stay tags).

What an event type adds to the common fields is a table entry (``TYPE_FIELDS``): a check's name, result and
severity; a failure's type and reason.
"""

from __future__ import annotations

import binascii
import hashlib
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Self

from assetpipe.schemas.asset_key import AssetKey, coerce_event_asset_key
from assetpipe.schemas.errors import ValidationError
from assetpipe.schemas.metadata import from_wire, metadata_to_wire, normalize
from assetpipe.schemas.validation import UNVERSIONED_TYPES, epoch_us, shown, validate_asset_key

EventType = Literal["materialization", "observation", "check_evaluation", "materialization_failure"]
SourceKind = Literal["sdk", "http", "backfill", "run", "openlineage"]
Severity = Literal["WARN", "ERROR"]
FailureType = Literal["FAILED", "SKIPPED"]  # = validation.FAILURE_TYPES
FailureReason = Literal["FAILED_TO_MATERIALIZE", "UPSTREAM_FAILED_TO_MATERIALIZE", "RUN_TERMINATED", "UNKNOWN"]

SCHEMA_NAMES: dict[str, str] = {
    "materialization": "assetpipe.AssetMaterialization",
    "observation": "assetpipe.AssetObservation",
    "check_evaluation": "assetpipe.AssetCheckEvaluation",
    "materialization_failure": "assetpipe.AssetMaterializationFailure",
    "run_request": "assetpipe.RunRequest",
}
# The fields an event type adds to the common ones (in its schema's order), with their defaults.
TYPE_FIELDS: dict[str, dict[str, Any]] = {
    "check_evaluation": {"check_name": None, "passed": None, "severity": "ERROR"},
    "materialization_failure": {"failure_type": "FAILED", "reason": "UNKNOWN"},
}
# The event types whose data version a ``dagster/data_version`` tag gives (a check's is its own, if any).
TAGGED_VERSION_TYPES = frozenset({"materialization", "observation"})
EVENT_TYPES: dict[str, str] = {name: event_type for event_type, name in SCHEMA_NAMES.items()}
DATA_VERSION_TAG = "dagster/data_version"
LOGICAL_VERSION_TAG = "dagster/logical_version"  # what Dagster called the data version before 1.1
_EVENT_ID_NAMESPACE = uuid.UUID("6d3c2f9e-8b0a-4c8e-9a51-3f1e2b7d4a60")
_NAMESPACE_BYTES = _EVENT_ID_NAMESPACE.bytes
_POOL_IDS = 2048  # random tails made per refill: one system call and a few passes over bytes for that many
# Each tail is 10 random bytes with the version (7) and variant (10) bits forced: "7xxx-Vxxx-xxxxxxxxxxxx".
_TAIL_CLEAR = int.from_bytes(bytes((0x0F, 0xFF, 0x3F, *[0xFF] * 7)) * _POOL_IDS, "big")
_TAIL_SET = int.from_bytes(bytes((0x70, 0x00, 0x80, *[0x00] * 7)) * _POOL_IDS, "big")
# Where each of a tail's 20 hex digits goes in its 23 characters: two dashes, and a space that ends it.
_TAIL_PLACES = tuple(k + (k >= 4) + (k >= 8) for k in range(20))
_TAIL_DASHES = b"-" * _POOL_IDS
_TAILS: list[str] = []  # list.pop is atomic: threads share the pool without a lock
_LAST_MS: tuple[int, str] = (-1, "")  # the last millisecond and its id prefix, swapped whole


def _refill_tails() -> None:
    bits = int.from_bytes(os.urandom(10 * _POOL_IDS), "big") & _TAIL_CLEAR | _TAIL_SET
    digits = binascii.hexlify(bits.to_bytes(10 * _POOL_IDS, "big"))
    # Laid out by strided copies, all tails at once: a slice per tail costs more than the random bytes.
    text = bytearray(b" ") * (23 * _POOL_IDS)
    for digit, place in enumerate(_TAIL_PLACES):
        text[place::23] = digits[digit::20]
    text[4::23] = _TAIL_DASHES
    text[9::23] = _TAIL_DASHES
    _TAILS.extend(text.decode().split())


os.register_at_fork(after_in_child=_TAILS.clear)  # a forked child never hands out its parent's tails


def new_event_id(unix_ms: int | None = None) -> str:
    """A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, the version, then 74 random bits (12, the
    variant, 62). Ids of one period sort and compress together in the warehouse."""
    global _LAST_MS
    ms = time.time_ns() // 1_000_000 if unix_ms is None else unix_ms
    last = _LAST_MS
    if last[0] != ms:
        h = f"{ms & 0xFFFFFFFFFFFF:012x}"
        last = _LAST_MS = (ms, f"{h[:8]}-{h[8:]}-")
    while True:
        try:
            return last[1] + _TAILS.pop()
        except IndexError:
            _refill_tails()


def event_id_for(event_type: str, asset_key: str, idempotency_key: str | None) -> str:
    """A random UUID, or one derived from the idempotency key (UUIDv5) so a retried report is the same event."""
    if idempotency_key is None:
        return new_event_id()
    name = f"{event_type}\x00{asset_key}\x00{idempotency_key}".encode()
    return uuid5_from_hex(hashlib.sha1(_NAMESPACE_BYTES + name, usedforsecurity=False).hexdigest())


# The variant's hex digit (10xx) from the hash's digit at that place.
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def uuid5_from_hex(hexdigest: str) -> str:
    """The UUIDv5 text of ``sha1(namespace.bytes + name).hexdigest()``, as ``uuid.uuid5`` gives it (the
    version and variant set by slicing the text): for callers that keep a hash state per namespace and
    prefix (one per file, one per process) instead of rebuilding it per id."""
    x = hexdigest
    return x[:8] + "-" + x[8:12] + "-5" + x[13:16] + "-" + _VARIANT[x[16]] + x[17:20] + "-" + x[20:32]


def now_us() -> int:
    return time.time_ns() // 1000


def tagged_data_version(data_version: Any, tags: Any) -> Any:
    """The data version of a materialization or observation given ``data_version`` and ``tags``.

    Dagster's events have no data version argument: ops set it in the tag ``dagster/data_version`` (once
    ``dagster/logical_version``), which therefore is the data version when none is given. Both given and
    different is an error naming the field. A tag value that is not a string is left to tag validation,
    which names the tag."""
    if not tags or not isinstance(tags, Mapping):
        return data_version
    name = DATA_VERSION_TAG
    tagged = tags.get(name)
    if tagged is None:
        name = LOGICAL_VERSION_TAG
        tagged = tags.get(name)
    if not isinstance(tagged, str) or data_version == tagged:
        return data_version
    if data_version is None:
        return tagged
    raise ValidationError(
        "data_version", f"{shown(data_version)} differs from the tag {name} ({shown(tagged)}): give one, or both alike"
    )


def build_record(
    event_type: str,
    asset_key: list[str],
    *,
    source: SourceKind,
    host: str,
    partition: str | None = None,
    data_version: str | None = None,
    description: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    event_id: str | None = None,
    idempotency_key: str | None = None,
    timestamp_us: int | None = None,
    run_id: str | None = None,
    check_name: str | None = None,
    passed: bool | None = None,
    severity: str = "ERROR",
    failure_type: str = "FAILED",
    reason: str = "UNKNOWN",
) -> dict[str, Any]:
    """The wire record of one event. ``metadata`` may hold raw or typed values; a data version in
    ``tags`` is the event's (``tagged_data_version``). The arguments of another event type's fields
    (``TYPE_FIELDS``) are left out of the record."""
    validate_asset_key(asset_key)  # checked here, before the parts are joined into the event id
    if tags and event_type in TAGGED_VERSION_TYPES:
        data_version = tagged_data_version(data_version, tags)
    if timestamp_us is None:
        timestamp_us = time.time_ns() // 1000
    if not event_id:
        if idempotency_key is None:
            event_id = new_event_id(timestamp_us // 1000 if type(timestamp_us) is int and timestamp_us >= 0 else None)
        else:
            event_id = event_id_for(event_type, "/".join(asset_key), idempotency_key)
    record: dict[str, Any] = {
        "event_id": event_id,
        "asset_key": asset_key,
        "partition": partition,
        "data_version": data_version,
        "description": description,
        "metadata": metadata_to_wire(metadata),
        "tags": dict(tags) if tags else {},
        "timestamp": timestamp_us,
        "source": {"kind": source, "host": host},
        "run_id": run_id,
    }
    if event_type in UNVERSIONED_TYPES:
        if data_version is not None:
            raise ValidationError("data_version", _NO_DATA_VERSION)
        del record["data_version"]
    extra = TYPE_FIELDS.get(event_type)
    if extra is not None:
        given = {"check_name": check_name, "passed": passed, "severity": severity, "failure_type": failure_type,
                 "reason": reason}  # fmt: skip
        record.update((name, given[name]) for name in extra)
    return record


_NO_DATA_VERSION = "a materialization failure wrote no data, so it has no data version: leave it out"


@dataclass(frozen=True, slots=True)
class _AssetEvent:
    """``asset_key``: an ``AssetKey``, its parts, or a string read as Dagster's events read one (split on
    every character outside ``[A-Za-z0-9_]``: ``"s3.my_asset"`` is ``["s3", "my_asset"]``)."""

    asset_key: AssetKey
    _: KW_ONLY
    partition: str | None = None
    data_version: str | None = None
    description: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)  # raw values normalize to MetadataValue
    tags: Mapping[str, str] = field(default_factory=dict)
    event_id: str | None = None
    timestamp: datetime | None = None
    source: SourceKind = "sdk"
    host: str = ""
    run_id: str | None = None

    event_type: ClassVar[EventType]

    def __post_init__(self) -> None:
        object.__setattr__(self, "asset_key", coerce_event_asset_key(self.asset_key))
        object.__setattr__(self, "metadata", {k: normalize(k, v) for k, v in (self.metadata or {}).items()})
        object.__setattr__(self, "tags", dict(self.tags or {}))
        if self.tags and self.event_type in TAGGED_VERSION_TYPES:
            object.__setattr__(self, "data_version", tagged_data_version(self.data_version, self.tags))
        if self.data_version is not None and self.event_type in UNVERSIONED_TYPES:
            raise ValidationError("data_version", _NO_DATA_VERSION)

    @classmethod
    def stored(cls, *args: Any, data_version: str | None = None, **fields: Any) -> Self:
        """An event rebuilt from a record or a row: its ``data_version`` stands as it was stored, where an
        event written before the tag was read as its data version may have a tag that says otherwise."""
        event = cls(*args, **fields)
        if data_version is not None:
            object.__setattr__(event, "data_version", data_version)
        return event

    def _extra_fields(self) -> dict[str, Any]:
        return {}

    def to_record(self, *, source: SourceKind | None = None, host: str | None = None,
                  idempotency_key: str | None = None) -> dict[str, Any]:  # fmt: skip
        return build_record(
            self.event_type,
            list(self.asset_key.path),
            source=source or self.source,
            host=self.host if host is None else host,
            partition=self.partition,
            data_version=self.data_version,
            description=self.description,
            metadata=self.metadata,
            tags=self.tags,
            event_id=self.event_id,
            idempotency_key=idempotency_key,
            timestamp_us=None if self.timestamp is None else _datetime_to_us(self.timestamp),
            run_id=self.run_id,
            **self._extra_fields(),
        )


@dataclass(frozen=True, slots=True)
class AssetMaterialization(_AssetEvent):
    """An asset was written."""

    event_type: ClassVar[EventType] = "materialization"


@dataclass(frozen=True, slots=True)
class AssetObservation(_AssetEvent):
    """An asset was seen (its metadata or data version) without being changed."""

    event_type: ClassVar[EventType] = "observation"


@dataclass(frozen=True, slots=True)
class AssetCheckEvaluation(_AssetEvent):
    """A data-quality check ran against an asset."""

    _: KW_ONLY
    check_name: str
    passed: bool
    severity: Severity = "ERROR"

    event_type: ClassVar[EventType] = "check_evaluation"

    def _extra_fields(self) -> dict[str, Any]:
        return {"check_name": self.check_name, "passed": self.passed, "severity": self.severity}


@dataclass(frozen=True, slots=True)
class AssetMaterializationFailure(_AssetEvent):
    """An asset was to be materialized and was not (Dagster's ``AssetMaterializationFailure``).

    ``failure_type``: ``"FAILED"`` (its step failed or could not run: the asset, or its partition, is failed
    until it is materialized again) or ``"SKIPPED"`` (not materializing it was expected: an optional asset
    not produced, a run stopped on purpose; its state does not change). ``reason``: ``"FAILED_TO_MATERIALIZE"``,
    ``"UPSTREAM_FAILED_TO_MATERIALIZE"``, ``"RUN_TERMINATED"`` or ``"UNKNOWN"``. ``description`` says what went
    wrong. A failure wrote no data: it has no ``data_version``."""

    _: KW_ONLY
    failure_type: FailureType = "FAILED"
    reason: FailureReason = "UNKNOWN"

    event_type: ClassVar[EventType] = "materialization_failure"

    def _extra_fields(self) -> dict[str, Any]:
        return {"failure_type": self.failure_type, "reason": self.reason}


AssetEvent = AssetMaterialization | AssetObservation | AssetCheckEvaluation | AssetMaterializationFailure
EVENT_CLASSES: dict[str, type[_AssetEvent]] = {
    "materialization": AssetMaterialization,
    "observation": AssetObservation,
    "check_evaluation": AssetCheckEvaluation,
    "materialization_failure": AssetMaterializationFailure,
}


def event_from_record(event_type: str, record: Mapping[str, Any]) -> AssetEvent:
    """Rebuild an event from a decoded wire record."""
    extra = {name: record[name] for name in TYPE_FIELDS.get(event_type, ())}
    timestamp = record["timestamp"]
    if not isinstance(timestamp, datetime):
        timestamp = datetime.fromtimestamp(timestamp / 1e6, tz=UTC)
    event = EVENT_CLASSES[event_type].stored(
        AssetKey(record["asset_key"]),
        partition=record.get("partition"),
        data_version=record.get("data_version"),
        description=record.get("description"),
        metadata={k: from_wire(v) for k, v in (record.get("metadata") or {}).items()},
        tags=record.get("tags") or {},
        event_id=record["event_id"],
        timestamp=timestamp,
        source=record["source"]["kind"],
        host=record["source"]["host"],
        run_id=record.get("run_id"),
        **extra,
    )
    return event  # type: ignore[return-value]


def _datetime_to_us(value: datetime) -> int:
    return epoch_us(value if value.tzinfo is not None else value.replace(tzinfo=UTC))
