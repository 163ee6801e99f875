"""Validation shared by every producer and the consumer, on the wire record (the Avro dict).

Messages name the field. Identifiers (asset key parts, partition, data version, check name, run id) hold
no control characters and no unpaired surrogates (what undecodable bytes become); an asset key is at
most ``ASSET_KEY_MAX_CHARS`` characters written ``a/b``. Tags follow Dagster's asset-event rules: key =
optional ``namespace/`` + name, each segment 1-63 of ``[A-Za-z0-9_.-]``; value 0-63 of the same (empty
value = label); system data-version tags are exempt.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from assetpipe.schemas.errors import EventTooLargeError, ValidationError

TAG_KEY = re.compile(r"^([A-Za-z0-9_.-]{1,63}/|dagster/kind/)?[A-Za-z0-9_.-]{1,63}$")
TAG_VALUE = re.compile(r"^[A-Za-z0-9_.-]{0,63}$")
SYSTEM_TAGS = frozenset(
    {"dagster/code_version", "dagster/data_version", "dagster/logical_version", "dagster/reporting_user"}
)
SYSTEM_TAG_PREFIXES = (
    "dagster/input_data_version/",
    "dagster/input_event_pointer/",
    "dagster/input_logical_version/",
    "dagster/partition/",
)
SEVERITIES = ("WARN", "ERROR")
FAILURE_TYPES = ("FAILED", "SKIPPED")
FAILURE_REASONS = ("FAILED_TO_MATERIALIZE", "UPSTREAM_FAILED_TO_MATERIALIZE", "RUN_TERMINATED", "UNKNOWN")
# An event type's fields that hold one of a few symbols (its schema's enums), and those symbols.
CHOICES: dict[str, dict[str, tuple[str, ...]]] = {
    "check_evaluation": {"severity": SEVERITIES},
    "materialization_failure": {"failure_type": FAILURE_TYPES, "reason": FAILURE_REASONS},
}
UNVERSIONED_TYPES = frozenset({"materialization_failure"})  # event types without a data version
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
# An event's time, in microseconds since the epoch: ClickHouse's DateTime64 range, which every Python
# client can read back (a timestamp in milliseconds or microseconds given as seconds falls far outside).
TIMESTAMP_MIN_US = -2_208_988_800_000_000  # 1900-01-01T00:00:00Z
TIMESTAMP_MAX_US = 10_413_791_999_999_999  # 2299-12-31T23:59:59.999999Z
TIMESTAMP_RANGE = "1900-01-01 to 2299-12-31 UTC"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_OPTIONAL_STRINGS = ("partition", "data_version", "description", "run_id")
_NON_EMPTY = frozenset({"partition", "data_version"})
_IDENTIFIERS = ("partition", "data_version", "run_id")  # description is free text: newlines and tabs welcome
ASSET_KEY_MAX_CHARS = 4096  # the key ``a/b`` (also the message key): far beyond any real one, far below a message
# C0 and C1 controls, DEL, and the surrogates an undecodable byte becomes (``surrogateescape``).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
unprintable = _UNPRINTABLE.search  # for the writers' fast paths: None when the text is fine
SHOWN_CHARS = 200


def validate_record(event_type: str, record: Mapping[str, Any]) -> None:
    """Raise ``ValidationError`` naming the first field that breaks the contract."""
    event_id = record.get("event_id")
    if not isinstance(event_id, str) or not _is_uuid(event_id):
        raise ValidationError("event_id", f"must be a UUID string, got {shown(event_id)}")
    validate_asset_key(record.get("asset_key"))
    validate_fields(event_type, record)


def validate_fields(event_type: str, record: Mapping[str, Any]) -> None:
    """``validate_record`` less the event id and the asset key, for records from ``build_record``,
    which makes the one and checks the other."""
    get = record.get
    for name in _OPTIONAL_STRINGS:
        value = get(name)
        if value is None:
            continue
        if type(value) is not str and not isinstance(value, str):
            raise ValidationError(name, f"must be a string, got {type(value).__name__}")
        if not value and name in _NON_EMPTY:
            raise ValidationError(name, "must be non-empty when given")
        if name in _IDENTIFIERS:
            check_printable(name, value)
    timestamp = get("timestamp")
    if isinstance(timestamp, datetime) and timestamp.tzinfo is not None:
        timestamp = epoch_us(timestamp)
    if type(timestamp) is int and not TIMESTAMP_MIN_US <= timestamp <= TIMESTAMP_MAX_US:
        raise ValidationError("timestamp", f"{timestamp} microseconds since the epoch is outside {TIMESTAMP_RANGE}")
    tags = get("tags")
    if tags:
        validate_tags(tags)
    metadata = get("metadata")
    if metadata:
        if not isinstance(metadata, Mapping):
            raise ValidationError("metadata", f"must be a mapping, got {type(metadata).__name__}")
        for key in metadata:
            if (type(key) is not str and not isinstance(key, str)) or not key:
                raise ValidationError("metadata", f"keys must be non-empty strings, got {shown(key)}")
    if event_type == "check_evaluation":
        check_name = get("check_name")
        if not isinstance(check_name, str) or not check_name:
            raise ValidationError("check_name", "must be a non-empty string")
        check_printable("check_name", check_name)
        if not isinstance(get("passed"), bool):
            raise ValidationError("passed", "must be a boolean")
    elif event_type in UNVERSIONED_TYPES and get("data_version") is not None:
        raise ValidationError("data_version", f"a {event_type} has no data version")
    for name, symbols in CHOICES.get(event_type, {}).items():
        if get(name) not in symbols:
            raise ValidationError(name, invalid_choice(name, get(name), symbols))


def invalid_choice(name: str, value: object, symbols: tuple[str, ...]) -> str:
    """The message for a value of a choice field (``CHOICES``) that is none of its symbols."""
    expected = ", ".join(symbols[:-1]) + " or " + symbols[-1]
    return f"invalid {name.replace('_', ' ')} {shown(value)}: expected {expected}"


def epoch_us(value: datetime) -> int:
    """Microseconds since the epoch of a datetime with a zone, exactly (float seconds lose one now and then)."""
    return (value - _EPOCH) // _MICROSECOND


def validate_asset_key(parts: Any) -> None:
    if not isinstance(parts, (list, tuple)) or not parts:
        raise ValidationError("asset_key", "must be a non-empty list of path parts")
    for i, part in enumerate(parts):
        if not isinstance(part, str) or not part:
            raise ValidationError(f"asset_key[{i}]", f"path parts must be non-empty strings, got {shown(part)}")
        check_printable(f"asset_key[{i}]", part)
    length = sum(map(len, parts)) + len(parts) - 1
    if length > ASSET_KEY_MAX_CHARS:
        raise ValidationError(
            "asset_key", f"is {length} characters long (as a/b), over the limit of {ASSET_KEY_MAX_CHARS}"
        )


def check_printable(name: str, text: str) -> None:
    """``text`` holds no control character and no unpaired surrogate (an undecodable byte)."""
    found = _UNPRINTABLE.search(text)
    if found is not None:
        code = ord(found.group())
        what = "invalid UTF-8 or an unpaired surrogate" if 0xD800 <= code <= 0xDFFF else "a control character"
        raise ValidationError(name, f"contains {what} (U+{code:04X} at position {found.start()}); it is not allowed")


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)`` for a message, cut to ``limit`` characters: an echoed value never floods an answer."""
    try:
        text = repr(value)
    except ValueError:  # an integer too long to print
        return "a very large integer"
    return cut(text, limit)


def cut(text: str, limit: int = SHOWN_CHARS) -> str:
    """``text``, or its first ``limit - 1`` characters and an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def validate_tags(tags: Mapping[Any, Any]) -> None:
    if not isinstance(tags, Mapping):
        raise ValidationError("tags", f"must be a mapping, got {type(tags).__name__}")
    for key, value in tags.items():
        if not isinstance(key, str):
            raise ValidationError("tags", f"keys must be strings, got {shown(key)}")
        if not isinstance(value, str):
            raise ValidationError(f"tags.{cut(key)}", f"values must be strings, got {type(value).__name__}")
        if key in SYSTEM_TAGS or key.startswith(SYSTEM_TAG_PREFIXES):
            continue
        if not TAG_KEY.fullmatch(key):  # fullmatch: `$` alone lets a trailing newline through
            raise ValidationError(
                f"tags.{cut(key)}",
                "invalid tag key: allowed characters are alphanumeric, '_', '-', '.', with an optional "
                "'namespace/' section; each section must have 1-63 characters",
            )
        if not TAG_VALUE.fullmatch(value):
            raise ValidationError(
                f"tags.{cut(key)}",
                f"invalid tag value {shown(value)}: allowed characters are alphanumeric, '_', '-', '.'; "
                "at most 63 characters",
            )


def validate_size(size: int, limit: int) -> None:
    if size > limit:
        raise EventTooLargeError("event", f"encoded event is {size} bytes, over the {limit}-byte limit")


def validate_message_size(key: bytes, value: bytes, limit: int) -> None:
    """The whole message, its key (the asset key) and its value, within ``limit`` bytes: what the broker
    takes is what is checked, so an event that passes is never refused for its size."""
    size = len(key) + len(value)
    if size > limit:
        raise EventTooLargeError(
            "event",
            f"the message is {size} bytes (its key {len(key)}, the encoded event {len(value)}), over "
            f"the {limit}-byte limit (ASSETPIPE_MAX_EVENT_BYTES)",
        )


def _is_uuid(value: str) -> bool:
    return _UUID.match(value) is not None  # canonical form only: ClickHouse's UUID column rejects the rest
