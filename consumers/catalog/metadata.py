"""Metadata as the catalog shows it: each entry typed (``{"type", "value"}``, the value decoded from the text
``asset_events`` and ``asset_definitions`` store), and the standard entries read for what they mean: the column
schema (a definition's merged with its latest materialization's), column lineage, and code references as
links.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

COLUMN_SCHEMA = "dagster/column_schema"
COLUMN_LINEAGE = "dagster/column_lineage"
CODE_REFERENCES = "dagster/code_references"
_JSON_KINDS = frozenset({"json", "table", "table_schema", "column_lineage", "code_references"})


def typed_value(kind: str, text: str) -> Any:
    """The value of an entry of type ``kind`` stored as ``text``: numbers as numbers (a float that JSON
    cannot hold, NaN or an infinity, as its text), bool as a boolean, timestamp as epoch seconds, null as
    None, structured types and json decoded, every other type (text, url, path, md, asset a/b, ...) as text."""
    try:
        if kind == "int":
            return int(text)
        if kind in ("float", "timestamp"):
            number = float(text)
            return number if math.isfinite(number) else text
        if kind == "bool":
            return text == "true"
        if kind == "null":
            return None
        if kind in _JSON_KINDS:
            return json.loads(text)
    except ValueError:
        return text  # stored by an older writer in another form: shown as it is
    return text


def typed(metadata: Mapping[str, str], types: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Every entry as ``{"type", "value"}``, in key order."""
    return {
        key: {"type": str(types.get(key, "text")), "value": typed_value(str(types.get(key, "text")), text)}
        for key, text in sorted(metadata.items())
    }


def _columns(entry: dict[str, Any] | None) -> list[dict[str, Any]]:
    value = entry["value"] if entry and entry["type"] == "table_schema" else None
    columns = value.get("columns") if isinstance(value, dict) else None
    return [c for c in columns or () if isinstance(c, dict) and isinstance(c.get("name"), str)]


def column_schema(definition: dict[str, Any] | None, materialization: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The definition's ``dagster/column_schema`` merged with the latest materialization's, column by name:
    the definition's order, then columns only the materialization has; where both name a column the
    materialization's non-empty type, description, constraints and tags win. Each column says where it is
    from (``definition``, ``materialization``, ``both``)."""
    merged: dict[str, dict[str, Any]] = {}
    for source, entries in (("definition", definition), ("materialization", materialization)):
        for column in _columns((entries or {}).get(COLUMN_SCHEMA)):
            current = merged.get(column["name"])
            shown = {
                "name": column["name"],
                "type": column.get("type") or "",
                "description": column.get("description"),
                "constraints": column.get("constraints"),
                "tags": column.get("tags") or {},
                "source": source,
            }
            if current is None:
                merged[column["name"]] = shown
                continue
            for field in ("type", "description", "constraints", "tags"):
                if shown[field]:
                    current[field] = shown[field]
            current["source"] = "both"
    return list(merged.values())


def column_lineage(definition: dict[str, Any] | None, materialization: dict[str, Any] | None) -> dict[str, Any]:
    """Column -> the upstream columns it is computed from (``{"asset_key": "a/b", "column_name"}``), from the
    latest materialization's ``dagster/column_lineage``, else the definition's."""
    for entries in (materialization, definition):
        entry = (entries or {}).get(COLUMN_LINEAGE)
        value = entry["value"] if entry and entry["type"] == "column_lineage" else None
        deps = value.get("deps_by_column") if isinstance(value, dict) else None
        if isinstance(deps, dict):
            return {
                column: [
                    {"asset_key": "/".join(d.get("asset_key") or ()), "column_name": d.get("column_name")}
                    for d in upstream
                    if isinstance(d, dict)
                ]
                for column, upstream in deps.items()
                if isinstance(upstream, list)
            }
    return {}


def code_references(definition: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The definition's ``dagster/code_references`` as links: a URL reference as it is (``{"kind": "url",
    "url", "label"}``), a local file as its path and line (``{"kind": "local_file", "file_path",
    "line_number", "label"}``)."""
    entry = (definition or {}).get(CODE_REFERENCES)
    value = entry["value"] if entry and entry["type"] == "code_references" else None
    references = value.get("references") if isinstance(value, dict) else None
    links = []
    for ref in references or ():
        if not isinstance(ref, dict):
            continue
        if ref.get("url"):
            links.append({"kind": "url", "url": ref["url"], "label": ref.get("label")})
        elif ref.get("file_path"):
            links.append(
                {"kind": "local_file", "file_path": ref["file_path"], "line_number": ref.get("line_number"),
                 "label": ref.get("label")}
            )  # fmt: skip
    return links
