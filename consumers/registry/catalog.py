"""Reading the registry: one asset's status, every asset, one asset in full. Each read is a read-only
query with parameters (``Warehouse.read_only_query``, or the same through a running stack's control
socket), so the rows may come as clickhouse-connect gives them or as JSON: times are read as
microseconds and ids as text, so both give the same answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from assetpipe.consumers.warehouse import QueryResult

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Query = Callable[[str, Mapping[str, Any]], QueryResult]

_CAUSE_FIELDS = ("category", "dependency", "reason")
_DEFINITION_FIELDS = (
    "code_location", "source", "version", "registered_at", "description", "owners", "tags", "kinds", "group_name",
    "deps", "code_version", "execution_type", "partitions", "automation_condition", "metadata", "metadata_types",
    "shadowed", "freshness_policy",
)  # fmt: skip
_DEFINITION_COLUMNS = ", ".join(
    f"toUnixTimestamp64Micro(d.{f})" if f == "registered_at" else f"d.{f}" for f in _DEFINITION_FIELDS
)
_STATUS = (
    "SELECT s.status, s.causes, toUnixTimestamp64Micro(s.materialized_at), s.data_version, s.defined, "
    f"{_DEFINITION_COLUMNS} "
    "FROM asset_staleness AS s LEFT JOIN latest_asset_definitions AS d ON d.asset_key = s.asset_key "
    "WHERE s.asset_key = {key:String}"
)
_LIST = (
    "SELECT s.asset_key, s.defined, d.code_location, d.source, s.execution_type, d.kinds, d.group_name, d.owners, "
    "s.status "
    "FROM asset_staleness AS s LEFT JOIN latest_asset_definitions AS d ON d.asset_key = s.asset_key "
    "ORDER BY s.asset_key"
)
LIST_COLUMNS = ("asset_key", "location", "source", "type", "kinds", "group", "owners", "status")
_HISTORY = (
    "SELECT v.code_location, v.source, v.version, toUnixTimestamp64Micro(v.registered_at), v.removed, "
    "v.definition_hash, v.code_version, v.deps, v.execution_type "
    "FROM asset_definition_versions AS v WHERE v.asset_key = {key:String} "
    "ORDER BY v.registered_at, v.code_location, v.source"
)
HISTORY_COLUMNS = (
    "code_location", "source", "version", "registered_at", "removed", "definition_hash", "code_version", "deps",
    "execution_type",
)  # fmt: skip
_LATEST = (
    "WITH CAST(if(argMaxMerge(l.provenance) = '', '([],[])', argMaxMerge(l.provenance)), "
    "'Tuple(Array(String), Array(String))') AS p "
    "SELECT max(l.materialized), toUnixTimestamp64Micro(max(l.materialized_at)), "
    "toString(argMaxMerge(l.materialization_id)), argMaxMerge(l.materialization_version), mapFromArrays(p.1, p.2), "
    "max(l.versioned), toUnixTimestamp64Micro(max(l.versioned_at)), argMaxMerge(l.current_version), "
    "argMaxMerge(l.current_event_type) "
    "FROM asset_latest_state AS l WHERE l.asset_key = {key:String}"
)


def asset_status(query: Query, asset_key: str) -> dict[str, Any] | None:
    """``{asset_key, status, causes, materialized_at, data_version, definition}`` of an asset defined or
    ever reported; None for any other."""
    rows = query(_STATUS, {"key": asset_key}).rows
    if not rows:
        return None
    status, causes, materialized_us, data_version, defined, *definition = rows[0]
    return {
        "asset_key": asset_key,
        "status": status,
        "causes": [_cause(c) for c in causes],
        "materialized_at": _time(materialized_us),
        "data_version": data_version,
        "definition": _definition(definition) if defined else None,
    }


def list_assets(query: Query) -> list[tuple[Any, ...]]:
    """Every asset defined or reported: ``LIST_COLUMNS``."""
    return [
        (key, location, source if defined else "", type_, list(kinds), group, list(owners), status)
        for key, defined, location, source, type_, kinds, group, owners, status in query(_LIST, {}).rows
    ]


def show_asset(query: Query, asset_key: str) -> dict[str, Any] | None:
    """The status, the definition with every version of it, and the latest materialization and
    observation of an asset defined or ever reported; None for any other."""
    shown = asset_status(query, asset_key)
    if shown is None:
        return None
    history = query(_HISTORY, {"key": asset_key}).rows
    shown["history"] = [
        {**dict(zip(HISTORY_COLUMNS, row, strict=True)), "registered_at": _time(row[3]), "deps": list(row[7])}
        for row in history
    ]
    materialized, materialized_us, event_id, version, provenance, versioned, versioned_us, current, kind = query(
        _LATEST, {"key": asset_key}
    ).rows[0]
    shown["latest_materialization"] = (
        {"event_id": event_id, "timestamp": _time(materialized_us), "data_version": version, "provenance": provenance}
        if materialized
        else None
    )
    shown["latest_version_event"] = (
        {"event_type": kind, "timestamp": _time(versioned_us), "data_version": current or "INITIAL"}
        if versioned
        else None
    )
    return shown


def _cause(cause: Any) -> dict[str, str]:
    """A named tuple comes as a dict from clickhouse-connect, and as a list through JSON."""
    if isinstance(cause, Mapping):
        return {name: str(cause[name]) for name in _CAUSE_FIELDS}
    return dict(zip(_CAUSE_FIELDS, map(str, cause), strict=True))


def _definition(values: Sequence[Any]) -> dict[str, Any]:
    definition = dict(zip(_DEFINITION_FIELDS, values, strict=True))
    definition["registered_at"] = _time(definition["registered_at"])
    for name in ("owners", "kinds", "deps", "shadowed"):
        definition[name] = list(definition[name])
    policy = definition["freshness_policy"]
    definition["freshness_policy"] = json.loads(policy) if policy else None
    return definition


def _time(micros: Any) -> str | None:
    if micros is None:
        return None
    return (_EPOCH + timedelta(microseconds=int(micros))).isoformat().replace("+00:00", "Z")
