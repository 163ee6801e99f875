"""Typed metadata: ``MetadataValue`` and the table, lineage and code-reference types it can carry.

Raw Python values normalize as Dagster does (str -> text, float -> float, bool -> bool, int -> int,
dict/list -> json, None -> null, os.PathLike -> path, AssetKey -> asset, TableSchema -> table_schema,
TableColumnLineage -> column_lineage). On the wire a value is ``{"kind": ..., "value": ...}`` (the Avro
``MetadataEntry``); ``to_wire`` / ``from_wire`` convert, and ``to_text`` / ``from_text`` give the string
form stored in ClickHouse's ``metadata`` map.
"""

from __future__ import annotations

import builtins
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from assetpipe.schemas.asset_key import AssetKey, CoercibleToAssetKey, coerce_asset_key
from assetpipe.schemas.errors import ValidationError

KINDS = (
    "text", "url", "path", "notebook_path", "json", "md", "int", "float", "bool", "timestamp", "null",
    "asset", "table", "table_schema", "column_lineage", "code_references",
)  # fmt: skip
STRING_KINDS = frozenset({"text", "url", "path", "notebook_path", "md"})
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

TableValue = str | int | float | bool | None
WireEntry = dict[str, Any]


class SharedEntry(dict[str, Any]):
    """A wire entry that many events carry as it is: one object, never changed once built (a dataset's
    column schema, sent again with each of its runs). The event writer encodes such an entry once and
    writes its bytes again for the next event holding the same object."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class TableColumnConstraints:
    nullable: bool = True
    unique: bool = False
    other: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TableConstraints:
    other: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TableColumn:
    name: str
    type: str = "string"
    description: str | None = None
    constraints: TableColumnConstraints = TableColumnConstraints()
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TableSchema:
    columns: tuple[TableColumn, ...]
    constraints: TableConstraints = TableConstraints()

    def __init__(self, columns: Sequence[TableColumn], constraints: TableConstraints | None = None) -> None:
        object.__setattr__(self, "columns", tuple(columns))
        object.__setattr__(self, "constraints", constraints or TableConstraints())

    @classmethod
    def from_name_type_dict(cls, name_types: Mapping[str, str]) -> TableSchema:
        return cls([TableColumn(name, type_) for name, type_ in name_types.items()])


@dataclass(frozen=True, slots=True)
class TableRecord:
    data: Mapping[str, TableValue]


@dataclass(frozen=True, slots=True)
class TableColumnDep:
    asset_key: AssetKey
    column_name: str

    def __init__(self, asset_key: CoercibleToAssetKey, column_name: str) -> None:
        object.__setattr__(self, "asset_key", coerce_asset_key(asset_key))
        object.__setattr__(self, "column_name", column_name)


@dataclass(frozen=True, slots=True)
class TableColumnLineage:
    deps_by_column: Mapping[str, tuple[TableColumnDep, ...]]

    def __init__(self, deps_by_column: Mapping[str, Sequence[TableColumnDep]]) -> None:
        normalized: dict[str, tuple[TableColumnDep, ...]] = {}
        for column, deps in deps_by_column.items():
            ordered = sorted(deps, key=lambda d: (d.asset_key.path, d.column_name))
            if len({(d.asset_key, d.column_name) for d in ordered}) != len(ordered):
                raise ValidationError(f"column_lineage.{column}", "deps must be unique by asset key and column name")
            normalized[column] = tuple(ordered)
        object.__setattr__(self, "deps_by_column", normalized)


@dataclass(frozen=True, slots=True)
class LocalFileCodeReference:
    file_path: str
    line_number: int | None = None
    label: str | None = None


@dataclass(frozen=True, slots=True)
class UrlCodeReference:
    url: str
    label: str | None = None


CodeReference = LocalFileCodeReference | UrlCodeReference


@dataclass(frozen=True, slots=True, init=False)
class MetadataValue:
    """One typed metadata value. ``kind`` is one of ``KINDS``; ``value`` is its Python payload."""

    kind: str
    value: Any

    def __init__(self, kind: str, value: Any) -> None:
        # The slots' own setters: a frozen dataclass's generated __init__ goes through object.__setattr__,
        # by name, which made building the value a third slower (a report builds one per typed entry).
        _set_kind(self, kind)
        _set_value(self, value)

    @staticmethod
    def text(value: str) -> MetadataValue:
        return MetadataValue("text", value)

    @staticmethod
    def url(value: str) -> MetadataValue:
        return MetadataValue("url", value)

    @staticmethod
    def path(value: str | os.PathLike[str]) -> MetadataValue:
        return MetadataValue("path", os.fspath(value))

    @staticmethod
    def notebook(value: str | os.PathLike[str]) -> MetadataValue:
        return MetadataValue("notebook_path", os.fspath(value))

    @staticmethod
    def json(value: Any) -> MetadataValue:
        return MetadataValue("json", value)

    @staticmethod
    def md(value: str) -> MetadataValue:
        return MetadataValue("md", value)

    @staticmethod
    def int(value: int) -> MetadataValue:
        return MetadataValue("int", value)

    @staticmethod
    def float(value: float) -> MetadataValue:
        return MetadataValue("float", value)

    @staticmethod
    def bool(value: bool) -> MetadataValue:
        return MetadataValue("bool", value)

    @staticmethod
    def timestamp(value: builtins.float | datetime) -> MetadataValue:
        """Seconds since the epoch, or a timezone-aware datetime."""
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValidationError("timestamp", "datetime must be timezone-aware")
            return MetadataValue("timestamp", value.timestamp())
        return MetadataValue("timestamp", value)

    @staticmethod
    def null() -> MetadataValue:
        return MetadataValue("null", None)

    @staticmethod
    def asset(value: CoercibleToAssetKey) -> MetadataValue:
        return MetadataValue("asset", coerce_asset_key(value))

    @staticmethod
    def table(records: Sequence[TableRecord], schema: TableSchema | None = None) -> MetadataValue:
        """Records must share one key set; without a schema, it is inferred from the first record."""
        records = tuple(records)
        if records:
            fields = set(records[0].data)
            if any(set(r.data) != fields for r in records):
                raise ValidationError("table", "all table records must have the same fields")
            if schema is None:
                schema = TableSchema([TableColumn(k, _infer_type(v)) for k, v in records[0].data.items()])
        elif schema is None:
            raise ValidationError("table", "a table with no records needs a schema")
        return MetadataValue("table", (records, schema))

    @staticmethod
    def table_schema(schema: TableSchema) -> MetadataValue:
        return MetadataValue("table_schema", schema)

    @staticmethod
    def column_lineage(lineage: TableColumnLineage) -> MetadataValue:
        return MetadataValue("column_lineage", lineage)

    @staticmethod
    def code_references(references: Sequence[CodeReference]) -> MetadataValue:
        return MetadataValue("code_references", tuple(references))


_set_kind = vars(MetadataValue)["kind"].__set__  # the slot descriptors
_set_value = vars(MetadataValue)["value"].__set__


def normalize(key: str, raw: Any) -> MetadataValue:
    """Dagster's normalization of a raw metadata value (bool before int: bool is an int)."""
    if isinstance(raw, MetadataValue):
        return raw
    if isinstance(raw, str):
        return MetadataValue.text(raw)
    if isinstance(raw, float):
        return MetadataValue.float(raw)
    if isinstance(raw, bool):
        return MetadataValue.bool(raw)
    if isinstance(raw, int):
        return MetadataValue.int(raw)
    if isinstance(raw, (list, dict)):
        return MetadataValue.json(raw)
    if isinstance(raw, os.PathLike):
        return MetadataValue.path(raw)
    if isinstance(raw, AssetKey):
        return MetadataValue.asset(raw)
    if isinstance(raw, TableSchema):
        return MetadataValue.table_schema(raw)
    if isinstance(raw, TableColumnLineage):
        return MetadataValue.column_lineage(raw)
    if raw is None:
        return MetadataValue.null()
    raise ValidationError(
        f"metadata.{key}",
        f"could not resolve the value to a known type: its type was {type(raw).__name__}; "
        "wrap it with the appropriate MetadataValue type",
    )


_SCALAR_KINDS: dict[type, str] = {str: "text", float: "float", bool: "bool"}


def metadata_to_wire(metadata: Mapping[str, Any] | None) -> dict[str, WireEntry]:
    """Raw or typed metadata -> Avro ``MetadataEntry`` dicts. Plain scalars take a fast path."""
    if not metadata:
        return {}
    out: dict[str, WireEntry] = {}
    scalar_kinds = _SCALAR_KINDS
    for key, raw in metadata.items():
        t = type(raw)
        kind = scalar_kinds.get(t)
        if kind is not None:
            out[key] = {"kind": kind, "value": raw}
        elif t is int and INT64_MIN <= raw <= INT64_MAX:
            out[key] = {"kind": "int", "value": raw}
        elif t is MetadataValue and raw.kind in STRING_KINDS and type(raw.value) is str:
            out[key] = {"kind": raw.kind, "value": raw.value}
        else:
            out[key] = to_wire(key, normalize(key, raw))
    return out


def to_wire(key: str, mv: MetadataValue) -> WireEntry:
    kind, value = mv.kind, mv.value
    where = f"metadata.{key}"
    if kind in STRING_KINDS:
        if not isinstance(value, str):
            raise ValidationError(where, f"{kind} value must be a string, got {type(value).__name__}")
        return {"kind": kind, "value": value}
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(where, f"int value must be an integer, got {type(value).__name__}")
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValidationError(where, "int value is out of range (a 64-bit integer)")
        return {"kind": kind, "value": value}
    if kind in ("float", "timestamp"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError(where, f"{kind} value must be a number, got {type(value).__name__}")
        try:
            number = float(value)
        except OverflowError:  # an integer beyond a double
            raise ValidationError(where, f"{kind} value is out of range (a 64-bit float)") from None
        return {"kind": kind, "value": number}
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValidationError(where, f"bool value must be a boolean, got {type(value).__name__}")
        return {"kind": kind, "value": value}
    if kind == "null":
        return {"kind": kind, "value": None}
    if kind == "json":
        try:
            text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValidationError(where, f"value is not JSON serializable: {exc}") from exc
        return {"kind": kind, "value": text}
    if kind == "asset":
        return {"kind": kind, "value": list(coerce_asset_key(value).path)}
    if kind == "table":
        records, schema = value
        wire = {"records": [dict(r.data) for r in records], "schema": _schema_to_wire(schema)}
        return {"kind": kind, "value": ("assetpipe.Table", wire)}
    if kind == "table_schema":
        return {"kind": kind, "value": ("assetpipe.TableSchema", _schema_to_wire(value))}
    if kind == "column_lineage":
        deps = {
            col: [{"asset_key": list(d.asset_key.path), "column_name": d.column_name} for d in deps]
            for col, deps in value.deps_by_column.items()
        }
        return {"kind": kind, "value": ("assetpipe.TableColumnLineage", {"deps_by_column": deps})}
    if kind == "code_references":
        return {"kind": kind, "value": ("assetpipe.CodeReferences", {"references": [_ref_to_wire(r) for r in value]})}
    raise ValidationError(where, f"unknown metadata type {kind!r}")


def _schema_to_wire(schema: TableSchema) -> dict[str, Any]:
    return {
        "columns": [
            {
                "name": c.name,
                "type": c.type,
                "description": c.description,
                "constraints": {
                    "nullable": c.constraints.nullable,
                    "unique": c.constraints.unique,
                    "other": list(c.constraints.other),
                },
                "tags": dict(c.tags),
            }
            for c in schema.columns
        ],
        "constraints": list(schema.constraints.other),
    }


def _infer_type(value: TableValue) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "string"


def _ref_to_wire(ref: CodeReference) -> dict[str, Any]:
    if isinstance(ref, LocalFileCodeReference):
        return {"file_path": ref.file_path, "line_number": ref.line_number, "url": None, "label": ref.label}
    return {"file_path": None, "line_number": None, "url": ref.url, "label": ref.label}


def from_wire(entry: Mapping[str, Any]) -> MetadataValue:
    kind, value = entry["kind"], entry["value"]
    if isinstance(value, tuple):  # tuple notation of a named record, before encoding
        value = value[1]
    if kind == "json":
        return MetadataValue("json", json.loads(value))
    if kind in ("float", "timestamp"):
        return MetadataValue(kind, float(value))
    if kind == "asset":
        return MetadataValue.asset(value)
    if kind == "table":
        schema = value["schema"]
        return MetadataValue.table(
            [TableRecord(r) for r in value["records"]], _schema_from_wire(schema) if schema else None
        )
    if kind == "table_schema":
        return MetadataValue.table_schema(_schema_from_wire(value))
    if kind == "column_lineage":
        return MetadataValue.column_lineage(
            TableColumnLineage(
                {
                    col: [TableColumnDep(d["asset_key"], d["column_name"]) for d in deps]
                    for col, deps in value["deps_by_column"].items()
                }
            )
        )
    if kind == "code_references":
        return MetadataValue.code_references([_ref_from_wire(r) for r in value["references"]])
    return MetadataValue(kind, value)


def _schema_from_wire(value: Mapping[str, Any]) -> TableSchema:
    return TableSchema(
        [
            TableColumn(
                c["name"],
                c["type"],
                c["description"],
                TableColumnConstraints(
                    c["constraints"]["nullable"], c["constraints"]["unique"], tuple(c["constraints"]["other"])
                ),
                dict(c["tags"]),
            )
            for c in value["columns"]
        ],
        TableConstraints(tuple(value["constraints"])),
    )


def _ref_from_wire(value: Mapping[str, Any]) -> CodeReference:
    if value["url"] is not None:
        return UrlCodeReference(value["url"], value["label"])
    return LocalFileCodeReference(value["file_path"], value["line_number"], value["label"])


def to_text(entry: Mapping[str, Any]) -> str:
    """The string form of a wire entry, as stored in ClickHouse: strings as they are, numbers as
    JSON numbers, ``json`` as its JSON text, ``asset`` as ``a/b``, structured types as JSON."""
    kind, value = entry["kind"], entry["value"]
    if kind in STRING_KINDS or kind == "json":
        return value  # type: ignore[no-any-return]
    if kind == "null":
        return ""
    if kind == "bool":
        return "true" if value else "false"
    if kind in ("int", "float", "timestamp"):
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        return json.dumps(value)
    if kind == "asset":
        return "/".join(value)
    if isinstance(value, tuple):
        value = value[1]
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def from_text(kind: str, text: str) -> MetadataValue:
    """Inverse of ``to_text``: rebuild a typed value from ClickHouse's string form."""
    if kind in STRING_KINDS:
        return MetadataValue(kind, text)
    if kind == "null":
        return MetadataValue.null()
    if kind == "bool":
        return MetadataValue.bool(text == "true")
    if kind == "int":
        return MetadataValue.int(int(text))
    if kind in ("float", "timestamp"):
        return MetadataValue(kind, float(text))
    if kind == "asset":
        return MetadataValue.asset(AssetKey.from_user_string(text))
    if kind == "json":
        return MetadataValue.json(json.loads(text))
    return from_wire({"kind": kind, "value": json.loads(text)})
