"""The JSON form of an asset event: what HTTP requests, backfill files and the shell send.

Field names are those of Dagster's asset-reporting REST API (``asset_key``, ``partition``,
``data_version``, ``description``, ``metadata``, ``check_name``, ``passed``, ``severity``) plus
``tags``, ``type``, ``timestamp``, ``event_id``, ``run_id``, and a materialization failure's
``failure_type`` and ``reason`` (Dagster's enum names). A field comes from the JSON body or, as
Dagster allows, from a string form (an HTTP query string, a CSV row); the body wins where both give one.
In string form every value is a string, except ``metadata`` and ``tags`` (JSON text) and ``passed``
(``true`` / ``false``).

Metadata: plain JSON values normalize as the SDK's (string -> text, integer -> int, number -> float,
boolean -> bool, object/array -> json, null -> null). A value can also be sent typed, as an object with
exactly the keys ``type`` and ``value``, where ``type`` is a metadata kind: ``{"type": "url", "value":
"https://..."}``. See ``typed_value`` for each kind's value.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from assetpipe.schemas.errors import FieldError, ValidationError
from assetpipe.schemas.metadata import (
    INT64_MAX,
    INT64_MIN,
    KINDS,
    STRING_KINDS,
    LocalFileCodeReference,
    MetadataValue,
    TableColumn,
    TableColumnConstraints,
    TableColumnDep,
    TableColumnLineage,
    TableConstraints,
    TableRecord,
    TableSchema,
    UrlCodeReference,
    normalize,
)
from assetpipe.schemas.model import EventType
from assetpipe.schemas.validation import (
    CHOICES,
    TIMESTAMP_MAX_US,
    TIMESTAMP_MIN_US,
    TIMESTAMP_RANGE,
    check_printable,
    epoch_us,
    invalid_choice,
    shown,
    validate_asset_key,
)

EVENT_TYPE_NAMES: dict[str, EventType] = {
    "materialization": "materialization",
    "asset_materialization": "materialization",
    "observation": "observation",
    "asset_observation": "observation",
    "check": "check_evaluation",
    "check_evaluation": "check_evaluation",
    "asset_check": "check_evaluation",
    "asset_check_evaluation": "check_evaluation",
    "materialization_failure": "materialization_failure",
    "asset_materialization_failure": "materialization_failure",
}
COMMON_FIELDS = ("partition", "description", "metadata", "tags", "timestamp", "event_id", "run_id")
FIELDS: dict[EventType, tuple[str, ...]] = {
    "materialization": (*COMMON_FIELDS, "data_version"),
    "observation": (*COMMON_FIELDS, "data_version"),
    "check_evaluation": (*COMMON_FIELDS, "check_name", "passed", "severity"),
    "materialization_failure": (*COMMON_FIELDS, "failure_type", "reason"),
}
REQUIRED: dict[EventType, tuple[str, ...]] = {"check_evaluation": ("check_name", "passed")}
_FIELD_SETS: dict[EventType, frozenset[str]] = {kind: frozenset(names) for kind, names in FIELDS.items()}
_STRING_FIELDS = frozenset(
    {"partition", "data_version", "description", "check_name", "event_id", "run_id", "failure_type", "reason"}
)
_MISSING = object()
_PRINTABLE_STRINGS = ("partition", "data_version", "check_name", "run_id")
# A run of 19 digits may be an integer orjson reads as a float (below -2**63, above 2**64 - 1).
_LONG_DIGITS = re.compile(r"\d{19}")
_LONG_DIGITS_BYTES = re.compile(rb"\d{19}")
_NOT_WORD = re.compile(r"[^A-Za-z0-9_]")  # what a string-form asset key is split on (``AssetKey.from_query_string``)


def exact(text: str | bytes) -> bool:
    """orjson reads ``text`` exactly: it holds no run of digits that may be an integer beyond 64 bits."""
    found = _LONG_DIGITS_BYTES.search(text) if isinstance(text, bytes) else _LONG_DIGITS.search(text)
    return found is None


def loads(text: str | bytes) -> Any:
    """JSON text as every producer reads it: strict JSON (no ``NaN`` or ``Infinity``, no number that
    overflows a double, at most 1,024 levels deep), integers exact. orjson reads integers beyond 64 bits
    as floats, so text with a long run of digits is read again by ``json``: such an integer is then
    refused as out of range where it is used, never stored as a float. Raises ``ValueError``."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("number is infinity"):  # 1e999: as an integer too long for a double
            raise ValueError(f"a number is out of range (a finite 64-bit float): {exc}") from None
        raise
    if not exact(text):
        try:
            value = json.loads(text)
        except RecursionError:
            raise ValueError("depth limit exceeded") from None
    return value


def event_type(value: Any) -> EventType:
    """``materialization``, ``observation``, ``check`` or ``materialization_failure`` (Dagster's longer names
    are accepted too)."""
    if isinstance(value, str) and value.lower() in EVENT_TYPE_NAMES:
        return EVENT_TYPE_NAMES[value.lower()]
    raise FieldError(
        "type", f"Invalid event type {value!r}: expected materialization, observation, check or materialization_failure"
    )


def asset_key(path: str | None, body: Mapping[str, Any], strings: Mapping[str, str] | None = None) -> list[str]:
    """The asset key from a URL path (split on ``/``), else the body (a list of parts; a string is one
    part), else the string form (a JSON list, or split on characters outside ``[A-Za-z0-9_]``)."""
    if path:
        if "asset_key" in body:  # the path's key wins, but a malformed field is still an error
            validate_asset_key(asset_key(None, body))
        return path.split("/")
    if "asset_key" in body:
        value = body["asset_key"]
        if isinstance(value, str):
            return [value]
        if isinstance(value, list):
            for part in value:
                if not isinstance(part, str):
                    break
            else:
                return value
        raise FieldError("asset_key", "Field 'asset_key' must be a list of strings or a string")
    text = (strings or {}).get("asset_key")
    if text:
        if text.startswith("["):
            try:
                parsed = loads(text)
            except ValueError:
                parsed = None
            if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed):
                return parsed
        return [part for part in _NOT_WORD.split(text) if part]
    raise FieldError("asset_key", "Missing required field: asset_key (in the URL path, the body or the query)")


def build_fields(
    kind: EventType,
    body: Mapping[str, Any],
    strings: Mapping[str, str] | None = None,
    *,
    plain_metadata: bool = False,
) -> dict[str, Any]:
    """Keyword arguments for ``schemas.model.build_record`` from a JSON body and a string form.
    ``plain_metadata``: leave plain metadata values as they are (``record_metadata``)."""
    if strings:  # a query value is checked even where the body's wins: its rules are documented
        _check_strings(kind, strings)
    fields = None if strings else _body_fields(kind, body)
    if fields is None:  # a string form, or a field to refuse: field by field, in order (the first error wins)
        fields = {}
        strings = strings or {}
        for name in FIELDS[kind]:
            if name in body or name in strings:  # most fields are absent: skip them cheaply (backfills)
                value = _value(name, body, strings)
                if value is not _MISSING and value is not None:
                    fields[name] = value
    if "metadata" in fields:
        fields["metadata"] = (record_metadata if plain_metadata else metadata)(fields["metadata"])
    if "timestamp" in fields:
        fields["timestamp_us"] = event_timestamp_us(fields.pop("timestamp"))
    for name in REQUIRED.get(kind, ()):
        if name not in fields:
            raise FieldError(name, f"Missing required field: {name}")
    _check_choices(kind, fields)
    return fields


def _check_choices(kind: EventType, given: Mapping[str, Any]) -> None:
    """Each choice field given (``validation.CHOICES``) holds one of its symbols, in their exact case."""
    for name, symbols in CHOICES.get(kind, {}).items():
        value = given.get(name)
        if value is not None and value not in symbols:
            raise FieldError(name, "I" + invalid_choice(name, value, symbols)[1:])


def _check_strings(kind: EventType, strings: Mapping[str, str]) -> None:
    for name in _PRINTABLE_STRINGS:
        text = strings.get(name)
        if text:
            check_printable(name, text)
    passed = strings.get("passed") if kind == "check_evaluation" else None
    if passed is not None and passed not in ("true", "false"):
        raise FieldError("passed", f"Field 'passed' must be a boolean (true or false), got {shown(passed)}")
    _check_choices(kind, strings)


def _body_fields(kind: EventType, body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The fields of a body of plain well-typed values, in one pass over it; None if a field needs a
    closer look (a wrong type: ``build_fields`` then reports the first one in field order)."""
    names = _FIELD_SETS[kind]
    fields: dict[str, Any] = {}
    for name, value in body.items():
        if value is None or name not in names:
            continue
        if name in _STRING_FIELDS:
            if type(value) is not str:
                return None
        elif name == "passed":
            if type(value) is not bool:
                return None
        elif name == "tags" and type(value) is not dict:
            return None
        fields[name] = value
    return fields


def _value(name: str, body: Mapping[str, Any], strings: Mapping[str, str]) -> Any:
    if name in body and body[name] is not None:  # null is no value: the string form may give one
        value = body[name]
        if name in _STRING_FIELDS and not isinstance(value, str):
            raise FieldError(name, f"Field '{name}' must be a string, got {json_type(value)}")
        if name == "passed" and not isinstance(value, bool):
            raise FieldError(name, "Field 'passed' must be a boolean")
        if name == "tags" and not isinstance(value, Mapping):
            raise FieldError(name, f"Field 'tags' must be an object, got {json_type(value)}")
        return value
    text = strings.get(name)
    if text is None or (text == "" and name != "description"):
        return _MISSING
    if name == "passed":
        if text not in ("true", "false"):
            raise FieldError(name, f"Field 'passed' must be a boolean (true or false), got {text!r}")
        return text == "true"
    if name in ("metadata", "tags"):
        try:
            parsed = loads(text)
        except ValueError as exc:
            raise FieldError(name, f"Field '{name}' is not valid JSON: {exc}") from exc
        if name == "tags" and not isinstance(parsed, Mapping):
            raise FieldError(name, f"Field 'tags' must be a JSON object, got {json_type(parsed)}")
        return parsed
    return text


def metadata(value: Any) -> dict[str, MetadataValue]:
    """A JSON object of metadata entries -> typed values."""
    if not isinstance(value, Mapping):
        raise FieldError("metadata", f"Field 'metadata' must be an object, got {json_type(value)}")
    out: dict[str, MetadataValue] = {}
    for key, raw in value.items():
        out[key] = typed_value(key, raw["type"], raw["value"]) if _is_typed(raw) else normalize(key, raw)
    return out


def record_metadata(value: Any) -> dict[str, Any]:
    """``metadata`` for ``build_record``: the typed entries typed, every plain value left as it is (the
    builder normalizes plain values exactly as ``metadata`` does, without a ``MetadataValue`` each)."""
    if type(value) is not dict and not isinstance(value, Mapping):
        raise FieldError("metadata", f"Field 'metadata' must be an object, got {json_type(value)}")
    out = dict(value)
    for key, raw in value.items():
        t = type(raw)
        if t is str or t is int or t is float or t is bool or raw is None:
            continue
        if _is_typed(raw):
            kind, typed = raw["type"], raw["value"]
            if kind in STRING_KINDS and type(typed) is str:  # a constant url, path, ...: one value, built once
                out[key] = _typed_string(kind, typed)
            else:
                out[key] = typed_value(key, kind, typed)
    return out


def _is_typed(raw: Any) -> bool:
    if type(raw) is dict:  # JSON's objects: two keys, both present, is the key set
        return (
            len(raw) == 2
            and "type" in raw
            and "value" in raw
            and isinstance(raw["type"], str)
            and raw["type"] in _KINDS
        )
    return isinstance(raw, Mapping) and raw.keys() == {"type", "value"} and raw["type"] in KINDS


_KINDS = frozenset(KINDS)


@functools.lru_cache(maxsize=4096)  # a constant url, path, ...: built once (values are immutable)
def _typed_string(kind: str, text: str) -> MetadataValue:
    return MetadataValue(kind, text)


def typed_value(key: str, kind: str, value: Any) -> MetadataValue:
    """One ``{"type": kind, "value": value}`` entry. Values by kind: text/url/path/notebook_path/md a
    string; json anything; int a 64-bit integer; float a number; bool a boolean; timestamp seconds since
    the epoch or an ISO 8601 string with a zone, within an event's range; null null; asset a list of parts
    or ``"a/b"``; table_schema ``{"columns": [{"name", "type", "description"?, "constraints"?: {"nullable",
    "unique", "other"}, "tags"?}], "constraints"?: {"other": [...]}}``; table ``{"records": [{...}],
    "schema"?: ...}``; column_lineage ``{"column": [{"asset_key", "column_name"}]}``; code_references
    ``[{"file_path", "line_number"?, "label"?} | {"url", "label"?}]``."""
    where = f"metadata.{key}"
    try:
        return _typed(kind, value)
    except _Shape as exc:
        raise FieldError(where, f"Invalid {kind} value for metadata entry '{key}': {exc}") from None
    except FieldError as exc:
        if exc.field == "timestamp":  # the event's rule, told about this entry
            reason = exc.reason.removeprefix("Invalid timestamp ")
            raise FieldError(where, f"Invalid timestamp value for metadata entry '{key}': {reason}") from None
        raise
    except ValidationError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as exc:  # a shape the checks above missed
        raise FieldError(where, f"Invalid {kind} value for metadata entry '{key}': not a {kind} value") from exc


class _Shape(Exception):
    """A typed value off its kind's shape: the message says what was expected (``typed_value`` names the entry)."""


def _typed(kind: str, value: Any) -> MetadataValue:
    if kind in STRING_KINDS:
        _expect(isinstance(value, str), "a string", value)
        return MetadataValue(kind, value)
    if kind == "int":
        if type(value) is float and value.is_integer():  # 3.0 is an integer in JSON (and JSON Schema)
            value = int(value)
        _expect(isinstance(value, int) and not isinstance(value, bool), "an integer", value)
        if not INT64_MIN <= value <= INT64_MAX:
            raise _Shape(f"{shown(value)} is out of range (a 64-bit integer)")
        return MetadataValue.int(value)
    if kind == "float":
        _expect(isinstance(value, (int, float)) and not isinstance(value, bool), "a number", value)
        number = _finite(value)
        if number is None:
            raise _Shape(f"{shown(value)} is out of range (a finite 64-bit float)")
        return MetadataValue.float(number)
    if kind == "bool":
        _expect(isinstance(value, bool), "a boolean", value)
        return MetadataValue.bool(value)
    if kind == "timestamp":
        return MetadataValue.timestamp(event_timestamp_us(value) / 1e6)
    if kind == "null":
        return MetadataValue.null()
    if kind == "json":
        return MetadataValue.json(value)
    if kind == "asset":
        _expect(isinstance(value, str) or _strings(value), "a list of strings or an a/b string", value)
        return MetadataValue.asset(value)
    if kind == "table_schema":
        return MetadataValue.table_schema(_schema(value, ""))
    if kind == "table":
        _expect(isinstance(value, Mapping) and "records" in value, 'an object with "records"', value)
        records = value["records"]
        _expect(isinstance(records, list), "records: a list of objects", records)
        for i, record in enumerate(records):
            _expect(isinstance(record, Mapping), f"records[{i}]: an object", record)
        schema = _schema(value["schema"], "schema.") if value.get("schema") is not None else None
        return MetadataValue.table([TableRecord(dict(r)) for r in records], schema)
    if kind == "column_lineage":
        _expect(isinstance(value, Mapping), 'an object of column -> [{"asset_key", "column_name"}]', value)
        deps = value.get("deps_by_column", value)
        _expect(isinstance(deps, Mapping), "deps_by_column: an object", deps)
        lineage: dict[str, list[TableColumnDep]] = {}
        for column, items in deps.items():
            _expect(isinstance(items, list), f"{column}: a list of dependencies", items)
            for i, dep in enumerate(items):
                asset = dep.get("asset_key") if isinstance(dep, Mapping) else None
                ok = (isinstance(asset, str) or _strings(asset)) and isinstance(dep.get("column_name"), str)
                _expect(ok, f'{column}[{i}]: {{"asset_key": [...], "column_name": "..."}}', dep)
            lineage[column] = [TableColumnDep(d["asset_key"], d["column_name"]) for d in items]
        return MetadataValue.column_lineage(TableColumnLineage(lineage))
    if kind == "code_references":
        refs = value.get("code_references", value) if isinstance(value, Mapping) else value
        _expect(isinstance(refs, list), "a list of references", refs)
        return MetadataValue.code_references([_reference(r, i) for i, r in enumerate(refs)])
    raise _Shape(f"unknown metadata type {kind!r}")


def _finite(value: int | float) -> float | None:
    try:
        number = float(value)
    except OverflowError:  # an integer beyond a double
        return None
    return number if math.isfinite(number) else None


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(part, str) for part in value)


def _schema(value: Any, where: str) -> TableSchema:
    """A table schema; ``where``: the path to it, as a prefix of the names in messages."""
    expected = 'an object with "columns": [...]'
    ok = isinstance(value, Mapping) and isinstance(value.get("columns"), list)
    _expect(ok, f"{where[:-1]}: {expected}" if where else expected, value)
    columns = []
    for i, col in enumerate(value["columns"]):
        _expect(isinstance(col, Mapping) and isinstance(col.get("name"), str),
                f'{where}columns[{i}]: an object with a string "name"', col)  # fmt: skip
        c = col.get("constraints") or {}
        _expect(isinstance(c, Mapping), f"{where}columns[{i}].constraints: an object", c)
        other = c.get("other", ())
        _expect(other == () or _strings(other), f"{where}columns[{i}].constraints.other: a list of strings", other)
        tags = col.get("tags") or {}
        _expect(isinstance(tags, Mapping) and all(isinstance(v, str) for v in tags.values()),
                f"{where}columns[{i}].tags: an object of strings", tags)  # fmt: skip
        _expect(isinstance(col.get("type", ""), str), f"{where}columns[{i}].type: a string", col.get("type"))
        description = col.get("description")
        _expect(description is None or isinstance(description, str), f"{where}columns[{i}].description: a string",
                description)  # fmt: skip
        for flag in ("nullable", "unique"):
            _expect(isinstance(c.get(flag, False), bool), f"{where}columns[{i}].constraints.{flag}: a boolean",
                    c.get(flag))  # fmt: skip
        constraints = TableColumnConstraints(
            nullable=bool(c.get("nullable", True)), unique=bool(c.get("unique", False)), other=tuple(other)
        )
        columns.append(TableColumn(col["name"], str(col.get("type", "string")), col.get("description"),
                                   constraints, dict(tags)))  # fmt: skip
    table_constraints = value.get("constraints") or {}
    _expect(isinstance(table_constraints, Mapping), f"{where}constraints: an object", table_constraints)
    other = table_constraints.get("other", ())
    _expect(other == () or _strings(other), f"{where}constraints.other: a list of strings", other)
    return TableSchema(columns, TableConstraints(tuple(other)))


def _reference(value: Any, i: int) -> LocalFileCodeReference | UrlCodeReference:
    shape = f'[{i}]: {{"file_path": "...", "line_number"?, "label"?}} or {{"url": "...", "label"?}}, not both'
    _expect(isinstance(value, Mapping) and ("url" in value) != ("file_path" in value), shape, value)
    label = value.get("label")
    _expect(label is None or isinstance(label, str), f"[{i}].label: a string", label)
    if "url" in value:
        _expect(isinstance(value["url"], str), f"[{i}].url: a string", value["url"])
        return UrlCodeReference(value["url"], label)
    _expect(isinstance(value["file_path"], str), f"[{i}].file_path: a string", value["file_path"])
    line = value.get("line_number")
    if type(line) is float and line.is_integer():
        line = int(line)
    _expect(line is None or (type(line) is int and 0 <= line <= INT64_MAX), f"[{i}].line_number: an integer", line)
    return LocalFileCodeReference(value["file_path"], line, label)


def timestamp_us(value: Any) -> int:
    """Seconds since the epoch (a number, or a numeric string), an ISO 8601 string with a zone, or a
    datetime with a zone (as Parquet and Avro files hold them) -> microseconds since the epoch."""
    if isinstance(value, str):
        return _iso_or_seconds_us(value)
    if isinstance(value, datetime):
        return _datetime_us(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FieldError("timestamp", f"Invalid timestamp {value!r}: expected ISO 8601 or seconds since the epoch")
    us = value * 1_000_000
    if not math.isfinite(us):  # a float near the largest: its microseconds overflow
        raise FieldError("timestamp", f"Invalid timestamp {value!r}: out of range")
    return round(us)


def event_timestamp_us(value: Any) -> int:
    """An event's ``timestamp`` as ``timestamp_us`` reads it, within the range an event may have
    (``schemas.validation.TIMESTAMP_RANGE``)."""
    us = timestamp_us(value)
    if not TIMESTAMP_MIN_US <= us <= TIMESTAMP_MAX_US:
        hint = ""
        if us > TIMESTAMP_MAX_US and not isinstance(value, (str, datetime)):
            hint = " (is it in milliseconds? expected seconds since the epoch)"
        raise FieldError("timestamp", f"Invalid timestamp {value!r}: outside {TIMESTAMP_RANGE}{hint}")
    return us


def _iso_or_seconds_us(text: str) -> int:
    try:
        return timestamp_us(float(text))
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise FieldError("timestamp", f"Invalid timestamp {text!r}: expected ISO 8601 or seconds") from exc
    if parsed.tzinfo is None:
        raise FieldError("timestamp", f"Invalid timestamp {text!r}: an ISO 8601 timestamp needs a zone")
    return _datetime_us(parsed)


def _datetime_us(value: datetime) -> int:
    if value.tzinfo is None:
        raise FieldError("timestamp", f"Invalid timestamp {value.isoformat()}: a datetime needs a zone")
    return epoch_us(value)


def _expect(ok: bool, expected: str, value: Any) -> None:
    if not ok:
        raise _Shape(f"expected {expected}, got {json_type(value)}")


def json_type(value: Any) -> str:
    """The JSON name of a value's type, for messages: null, boolean, number, string, array, object."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    return "object" if isinstance(value, Mapping) else type(value).__name__
