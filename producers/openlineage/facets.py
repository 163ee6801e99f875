"""OpenLineage facets read as Dagster's metadata, partitions, checks and specs.

Metadata comes out in its wire form (the Avro ``MetadataEntry`` dicts, which the encoder checks as it writes
them): built directly, a 30-column schema costs a tenth of building its ``MetadataValue`` first. Each
function takes a facet the schema check has passed (``producers.openlineage.spec``), so its modelled
fields have their types; a facet the package does not model (``partitioning``) is checked here and refused
with the field named.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from assetpipe.schemas.errors import FieldError
from assetpipe.schemas.metadata import WireEntry

KeyOf = Callable[[str, str, str], list[str]]  # (namespace, name, field) -> asset key parts
_TAG_TEXT = re.compile(r"[^A-Za-z0-9_.-]")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ROW_COUNT = "dagster/row_count"
COLUMN_SCHEMA = "dagster/column_schema"
COLUMN_LINEAGE = "dagster/column_lineage"
URI = "dagster/uri"


def tag_text(value: str) -> str:
    """``value`` as a tag value can hold it: characters outside ``[A-Za-z0-9_.-]`` become ``_``, at most 63."""
    return _TAG_TEXT.sub("_", value)[:63]


def parse_time(text: str, field: str) -> datetime:
    """An OpenLineage date-time (ISO 8601 with a time; without a zone it is UTC)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise FieldError(field, f"Field '{field}' is not an ISO 8601 date-time: {text[:80]!r}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def nominal_partition(facet: Mapping[str, Any]) -> str:
    """A run's nominal time as a Dagster time partition key: ``2024-05-01`` for a day starting at midnight,
    ``2024-05-01-10:00`` for an hour, else the start time in ISO form."""
    start = parse_time(facet["nominalStartTime"], "run.facets.nominalTime.nominalStartTime").astimezone(UTC)
    end_text = facet.get("nominalEndTime")
    span = None
    if end_text:
        span = parse_time(end_text, "run.facets.nominalTime.nominalEndTime").astimezone(UTC) - start
    if span == timedelta(days=1) and (start.hour, start.minute, start.second) == (0, 0, 0):
        return start.strftime("%Y-%m-%d")
    if span == timedelta(hours=1) and (start.minute, start.second) == (0, 0):
        return start.strftime("%Y-%m-%d-%H:%M")
    if span is None and (start.hour, start.minute, start.second, start.microsecond) == (0, 0, 0, 0):
        return start.strftime("%Y-%m-%d")
    return start.isoformat().replace("+00:00", "Z")


def partitions(facet: Any, field: str) -> list[str]:
    """The partitions a ``partitioning`` facet lists: each identifier's values joined with ``|`` (Dagster's
    multi-partition key, dimensions ordered by column name)."""
    if not isinstance(facet, dict) or not isinstance(facet.get("partitions", []), list):
        raise FieldError(field, f"Field '{field}.partitions' must be a list of partitions")
    keys = []
    for i, partition in enumerate(facet.get("partitions", [])):
        where = f"{field}.partitions[{i}].identifier"
        identifier = partition.get("identifier") if isinstance(partition, dict) else None
        if not isinstance(identifier, list) or not identifier:
            raise FieldError(where, f"Field '{where}' must be a non-empty list of {{column, value}}")
        pairs = []
        for j, item in enumerate(identifier):
            ok = isinstance(item, dict) and isinstance(item.get("column"), str) and isinstance(item.get("value"), str)
            if not ok or not item["value"]:
                raise FieldError(f"{where}[{j}]", f"Field '{where}[{j}]' must have a column and a non-empty value")
            pairs.append((item["column"], item["value"]))
        keys.append("|".join(value for _, value in sorted(pairs)))
    return keys


def _columns(facet: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A schema facet's fields as columns (name, type, description); a nested field is ``parent.child``."""
    columns: list[dict[str, Any]] = []

    def add(fields: list[dict[str, Any]], prefix: str) -> None:
        for f in fields:
            name = prefix + f["name"]
            columns.append({"name": name, "type": f.get("type") or "unknown", "description": f.get("description")})
            if f.get("fields"):
                add(f["fields"], name + ".")

    add(facet.get("fields") or [], "")
    return columns


def table_schema(facet: Mapping[str, Any]) -> WireEntry:
    """A schema facet as a ``table_schema`` metadata entry, in its wire form."""
    columns = [{**c, "constraints": _NO_CONSTRAINTS, "tags": {}} for c in _columns(facet)]
    return {"kind": "table_schema", "value": ("assetpipe.TableSchema", {"columns": columns, "constraints": []})}


_NO_CONSTRAINTS = {"nullable": True, "unique": False, "other": []}


def schema_json(facet: Mapping[str, Any]) -> dict[str, Any]:
    """A schema facet in the JSON form of a ``table_schema`` metadata entry (for a spec)."""
    columns = [{k: v for k, v in c.items() if v is not None} for c in _columns(facet)]
    return {"type": "table_schema", "value": {"columns": columns}}


def column_lineage(facet: Mapping[str, Any], key_of: KeyOf, field: str) -> WireEntry:
    """A column lineage facet as a ``column_lineage`` entry in its wire form: each column's inputs, once
    each, ordered by asset key and column (as ``TableColumnLineage`` orders them)."""
    deps: dict[str, list[dict[str, Any]]] = {}
    for column, entry in facet["fields"].items():
        found: dict[tuple[tuple[str, ...], str], None] = {}
        for i, source in enumerate(entry["inputFields"]):
            parts = key_of(source["namespace"], source["name"], f"{field}.fields.{column}.inputFields[{i}]")
            found[(tuple(parts), source["field"])] = None
        deps[column] = [{"asset_key": list(parts), "column_name": name} for parts, name in sorted(found)]
    return {"kind": "column_lineage", "value": ("assetpipe.TableColumnLineage", {"deps_by_column": deps})}


def _int(value: int) -> WireEntry:
    return {"kind": "int", "value": value}


def output_statistics(facet: Mapping[str, Any], metadata: dict[str, WireEntry]) -> None:
    for name, key in (("rowCount", ROW_COUNT), ("size", "size_bytes"), ("fileCount", "file_count")):
        value = facet.get(name)
        if value is not None:
            metadata[key] = _int(value)


def quality_metrics(facet: Mapping[str, Any]) -> dict[str, WireEntry]:
    """A ``dataQualityMetrics`` input facet as numeric metadata: row count, bytes, files, and per column
    its null and distinct counts, sum, count, min and max (``<column>/null_count``...)."""
    metadata: dict[str, WireEntry] = {}
    for name, key in (("rowCount", ROW_COUNT), ("bytes", "size_bytes"), ("fileCount", "file_count")):
        if facet.get(name) is not None:
            metadata[key] = _int(facet[name])
    for column, metrics in (facet.get("columnMetrics") or {}).items():
        for name, key in (("nullCount", "null_count"), ("distinctCount", "distinct_count")):
            if metrics.get(name) is not None:
                metadata[f"{column}/{key}"] = _int(metrics[name])
        for name in ("sum", "count", "min", "max"):
            if metrics.get(name) is not None:
                metadata[f"{column}/{name}"] = {"kind": "float", "value": float(metrics[name])}
    return metadata


def check_name(assertion: Mapping[str, Any]) -> str:
    """The assertion's own name, else its assertion and column (``not_null_id``), else its assertion."""
    if assertion.get("name"):
        return str(assertion["name"])
    column = assertion.get("column")
    return f"{assertion['assertion']}_{column}" if column else str(assertion["assertion"])


def assertion_metadata(assertion: Mapping[str, Any]) -> dict[str, WireEntry]:
    metadata: dict[str, WireEntry] = {"openlineage/assertion": {"kind": "text", "value": assertion["assertion"]}}
    for name in ("column", "expected", "actual"):
        if assertion.get(name) is not None:
            metadata[name] = {"kind": "text", "value": assertion[name]}
    return metadata


def owners(facet: Mapping[str, Any]) -> list[str]:
    """Dagster's owners: an e-mail address (``user:bob@x.com`` -> ``bob@x.com``), else ``team:<name>``."""
    found = []
    for owner in facet.get("owners") or []:
        name = owner["name"]
        plain = name.split(":", 1)[1] if ":" in name else name
        found.append(plain if _EMAIL.match(plain) else name if name.startswith("team:") else f"team:{name}")
    return list(dict.fromkeys(found))


def dataset_tags(facet: Mapping[str, Any]) -> dict[str, str]:
    """A dataset's tags (those of a whole dataset, not of one field), as Dagster's tags can hold them."""
    return {
        tag_text(tag["key"]) or "_": tag_text(tag["value"]) for tag in facet.get("tags") or [] if not tag.get("field")
    }
