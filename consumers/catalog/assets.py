"""The catalog's assets: the list (every asset defined or ever reported, filtered, sorted by key or last update,
a cursor page at a time) and one asset in full.

The list joins the current definitions (``latest_asset_definitions``) with the assets reported
(``asset_latest_state``), so an asset only reported and one only defined both appear; the rows of a page then
get their latest materialization, observation and failure and their checks from ``asset_partition_state`` and
their status from ``asset_staleness``, for that page's keys only. A failed materialization never counts as one:
an asset's ``failed`` says its latest attempt to materialize (in some partition) failed.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from assetpipe.consumers.catalog import cursor, reports, status
from assetpipe.consumers.catalog.events import EVENT_COLUMNS, event
from assetpipe.consumers.catalog.metadata import code_references, column_lineage, column_schema, typed
from assetpipe.consumers.catalog.rows import Query, iso, mapping, strings, together
from assetpipe.schemas.errors import FieldError

SORTS = ("key", "updated")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
KIND_TAG = "dagster/kind/"

_LIST = (
    "SELECT a.key, a.defined, a.description, a.owners, a.kinds, a.group_name, a.code_location, a.tags, "
    "a.execution_type, a.updated_us FROM ("
    "SELECT if(d.asset_key != '', d.asset_key, toString(s.asset_key)) AS key, d.asset_key != '' AS defined, "
    "d.description AS description, d.owners AS owners, d.kinds AS kinds, d.group_name AS group_name, "
    "d.code_location AS code_location, d.tags AS tags, "
    "if(d.asset_key != '', toString(d.execution_type), 'external') AS execution_type, "
    "toUnixTimestamp64Micro(s.updated) AS updated_us "
    "FROM (SELECT l.asset_key AS asset_key, l.description AS description, l.owners AS owners, l.kinds AS kinds, "
    "l.group_name AS group_name, l.code_location AS code_location, l.tags AS tags, "
    "l.execution_type AS execution_type FROM latest_asset_definitions AS l) AS d "
    "FULL OUTER JOIN (SELECT t.asset_key AS asset_key, max(t.reported_at) AS updated FROM asset_latest_state AS t "
    "GROUP BY t.asset_key) AS s ON s.asset_key = d.asset_key"
    ") AS a WHERE 1"
)
_FILTERS = {
    "prefix": " AND (a.key = {prefix:String} OR startsWith(a.key, concat({prefix:String}, '/')))",
    "search": " AND (positionCaseInsensitiveUTF8(a.key, {search:String}) > 0 "
    "OR positionCaseInsensitiveUTF8(a.description, {search:String}) > 0)",
    "tag": " AND mapContains(a.tags, {tag:String})",
    "tag_value": " AND a.tags[{tag:String}] = {tag_value:String}",
    "owner": " AND has(a.owners, {owner:String})",
    "group": " AND a.group_name = {group:String}",
    "kind": " AND has(a.kinds, {kind:String})",
    "location": " AND a.code_location = {location:String}",
    "defined": " AND a.defined = {defined:Bool}",
}
_ORDER = {
    "key": " ORDER BY a.key LIMIT {limit:UInt32}",
    "updated": " ORDER BY a.updated_us DESC, a.key DESC LIMIT {limit:UInt32}",
}
_AFTER = {
    "key": " AND a.key > {after_key:String}",
    "updated": " AND (a.updated_us, a.key) < ({after_us:Int64}, {after_key:String})",
}
# The latest materialization, observation and failure of each asset (any partition), and the latest evaluation of
# each of its checks, in one read of the latest-state table.
_LATEST = (
    "SELECT p.asset_key, toString(p.event_type), toString(p.check_name), toUnixTimestamp64Micro(max(p.timestamp)), "
    "argMax(p.partition, p.timestamp), argMax(p.data_version, p.timestamp), toString(argMax(p.event_id, p.timestamp)), "
    "argMax(p.run_id, p.timestamp), argMax(p.check_passed, p.timestamp), "
    "toString(argMax(p.check_severity, p.timestamp)), toString(argMax(p.failure_reason, p.timestamp)) "
    "FROM asset_partition_state AS p WHERE p.asset_key IN {keys:Array(String)} "
    "GROUP BY p.asset_key, p.event_type, p.check_name"
)
_DEFINITION_FIELDS = (
    "code_location", "source", "registered_at", "description", "owners", "tags", "kinds", "group_name", "deps",
    "code_version", "execution_type", "partitions", "automation_condition", "metadata", "metadata_types",
    "freshness_policy",
)  # fmt: skip
# The asset's current definition, with its version, the definitions it shadows and how many versions it has.
_DEFINITION = (
    "SELECT "
    + ", ".join(
        "toUnixTimestamp64Micro(d.registered_at)" if f == "registered_at"
        else f"toString(d.{f})" if f in ("source", "execution_type")
        else f"d.{f}"
        for f in (*_DEFINITION_FIELDS, "version", "shadowed", "versions")
    )
    + " FROM latest_asset_definitions AS d WHERE d.asset_key = {key:String}"
)  # fmt: skip
# The assets whose current definitions depend on it.
_DOWNSTREAM = (
    "SELECT d.asset_key FROM latest_asset_definitions AS d WHERE has(d.deps, {key:String}) ORDER BY d.asset_key"
)
# The latest materialization, observation, failure and evaluation of each check (their ids and partitions), with the
# partitions of each (so the partitions materialized and observed) and the latest of them that is one: a few rows of
# asset_event_summary, however many partitions the asset has.
_LATEST_IDS = (
    "SELECT l.1, toString(l.2), s.partitions, s.latest_partition, toString(s.event_type), toString(s.check_name), "
    "toUnixTimestamp64Micro(s.at), l.3, l.4, l.5, toString(l.6), toString(l.7) FROM ("
    "SELECT a.event_type AS event_type, a.check_name AS check_name, max(a.timestamp) AS at, "
    "argMaxMerge(a.latest) AS l, uniqExactMerge(a.partitions) AS partitions, "
    "argMaxMerge(a.latest_partition) AS latest_partition "
    "FROM asset_event_summary AS a WHERE a.asset_key = {key:String} GROUP BY a.event_type, a.check_name) AS s"
)
_REPORTED = "SELECT count() FROM asset_latest_state AS s WHERE s.asset_key = {key:String}"
# Their rows, with metadata, from asset_events by its primary key (a row past the raw window, ASSETPIPE_RETENTION_DAYS,
# is gone: the event is shown from the latest-state table, ``expired``).
_LATEST_EVENTS = (
    f"SELECT {EVENT_COLUMNS} FROM asset_events AS e WHERE e.asset_key = {{key:String}} "
    "AND e.partition IN {partitions:Array(String)} AND e.event_id IN {ids:Array(UUID)} "
    "ORDER BY e.timestamp DESC LIMIT 1 BY e.event_id"
)


@dataclass(frozen=True, slots=True)
class AssetQuery:
    """The list's filters, sort, cursor and page size, as the query string gives them: ``prefix`` (whole parts:
    ``sales`` is ``sales`` and ``sales/...``), ``search`` (in the key and the description, any case), ``tag``
    (``k=v``, or ``k`` for any value: a label), ``owner``, ``group``, ``kind``, ``location``, ``status``
    (``FRESH``, ``STALE``, ``MISSING``, ``FAILED_CHECK``, ``FAILED``: a failed materialization), ``defined``
    (true: only defined; false: only reported), ``sort`` (``key``, or ``updated``: the latest event first)."""

    filters: dict[str, Any] = field(default_factory=dict)
    status: str | None = None
    sort: str = "key"
    cursor: str | None = None
    limit: int = DEFAULT_LIMIT

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> AssetQuery:
        filters: dict[str, Any] = {}
        for name in ("search", "owner", "group", "kind", "location"):
            if params.get(name):
                filters[name] = params[name]
        if params.get("prefix", "").strip("/"):
            filters["prefix"] = params["prefix"].strip("/")
        if params.get("tag"):
            tag, sep, value = params["tag"].partition("=")
            filters["tag"] = tag
            if sep:
                filters["tag_value"] = value
        defined = params.get("defined")
        if defined:
            if defined not in ("true", "false"):
                raise FieldError("defined", "Query parameter 'defined' must be true or false")
            filters["defined"] = defined == "true"
        state = params.get("status") or None
        if state is not None:
            state = state.upper()
            if state not in status.FILTERS:
                raise FieldError("status", f"Query parameter 'status' must be one of {', '.join(status.FILTERS)}")
        sort = params.get("sort") or "key"
        if sort not in SORTS:
            raise FieldError("sort", "Query parameter 'sort' must be key or updated")
        size = cursor.limit(params.get("limit"), DEFAULT_LIMIT, MAX_LIMIT)
        return cls(filters, state, sort, params.get("cursor") or None, size)


Latest = dict[str, dict[str, dict[str, Any]]]  # key -> event type -> its latest event
Checks = dict[str, list[dict[str, Any]]]  # key -> the latest result of each check


def latest(query: Query, keys: Sequence[str]) -> tuple[Latest, Checks]:
    """Each asset's latest materialization, observation and failure (time, partition, data version, id, run; a
    failure's ``reason``), and the latest result of each of its checks (``check_name``, ``passed``, ``severity``,
    ``timestamp``, ``partition``)."""
    events: Latest = {}
    checks: Checks = {}
    if not keys:
        return events, checks
    for key, kind, name, at, partition, version, event_id, run_id, passed, severity, reason in query(
        _LATEST, {"keys": list(keys)}
    ).rows:
        if kind == "check_evaluation":
            result = {"check_name": name, "passed": bool(passed), "severity": severity or None, "timestamp": iso(at),
                      "partition": partition or None}  # fmt: skip
            checks.setdefault(str(key), []).append(result)
            continue
        events.setdefault(str(key), {})[kind] = {
            "timestamp": iso(at),
            "partition": partition or None,
            "data_version": version or None,
            "event_id": event_id,
            "run_id": run_id or None,
        }
        if kind == "materialization_failure":
            events[str(key)][kind]["reason"] = reason
    return events, checks


def _tags(tags: Any) -> dict[str, str]:
    return {k: v for k, v in mapping(tags).items() if not k.startswith(KIND_TAG)}


def list_assets(query: Query, wanted: AssetQuery, statuses: status.Statuses | None = None) -> dict[str, Any]:
    """A page of assets (``{"items", "next_cursor"}``); ``statuses`` (default: ``asset_staleness`` for the page's
    keys) gives their status, e.g. a ``StalenessSnapshot``."""
    sql, values = _LIST, {**wanted.filters, "limit": wanted.limit + 1}
    sql += "".join(_FILTERS[name] for name in wanted.filters)
    if wanted.status == status.FAILED_CHECK:
        sql += " AND " + status.FAILED_CHECK_FILTER
    elif wanted.status == status.FAILED:
        sql += " AND " + status.FAILED_FILTER
    elif wanted.status is not None:
        sql += " AND " + status.STALENESS_FILTER
        values["status"] = wanted.status
    if wanted.sort == "key":
        position = cursor.decode(wanted.cursor, "assets:key", (str,))
        if position is not None:
            sql += _AFTER["key"]
            values["after_key"] = position[0]
    else:
        position = cursor.decode(wanted.cursor, "assets:updated", (int, str))
        if position is not None:
            sql += _AFTER["updated"]
            values["after_us"], values["after_key"] = position
    rows = query(sql + _ORDER[wanted.sort], values).rows
    if wanted.sort == "key":
        positions = [cursor.encode("assets:key", row[0]) for row in rows]
    else:
        positions = [cursor.encode("assets:updated", int(row[9]), row[0]) for row in rows]
    keys = [str(row[0]) for row in rows[: wanted.limit]]
    states, (events, checks), failed = together(
        lambda: (statuses or functools.partial(status.staleness, query))(keys),
        lambda: latest(query, keys),
        lambda: status.failures(query, keys),
    )
    items = []
    for key, defined, description, owners, kinds, group, location, tags, execution_type, updated in rows:
        key = str(key)
        state = states.get(key, {"status": None})
        items.append(
            {
                "asset_key": key,
                "defined": bool(defined),
                "description": description or None,
                "owners": strings(owners),
                "kinds": strings(kinds),
                "group": group or None,
                "code_location": location if defined else None,
                "tags": _tags(tags),
                "execution_type": execution_type,
                "last_updated": iso(updated),
                "latest_materialization": events.get(key, {}).get("materialization"),
                "latest_observation": events.get(key, {}).get("observation"),
                "latest_failure": events.get(key, {}).get("materialization_failure"),
                "failed": key in failed,
                "checks": status.check_summary(checks.get(key, [])),
                "status": state["status"],
            }
        )
    return cursor.page(items, positions, wanted.limit)


def _definition(row: Sequence[Any]) -> dict[str, Any]:
    definition = dict(zip((*_DEFINITION_FIELDS, "version", "shadowed", "versions"), row, strict=True))
    metadata = typed(mapping(definition.pop("metadata")), mapping(definition.pop("metadata_types")))
    partitions = definition["partitions"]
    return {
        **definition,
        "version": int(definition["version"]),
        "versions": int(definition["versions"]),
        "registered_at": iso(definition["registered_at"]),
        "owners": strings(definition["owners"]),
        "kinds": strings(definition["kinds"]),
        "deps": strings(definition["deps"]),
        "shadowed": strings(definition["shadowed"]),
        "tags": _tags(definition["tags"]),
        "group_name": definition["group_name"] or None,
        "code_version": definition["code_version"] or None,
        "automation_condition": definition["automation_condition"] or None,
        "freshness_policy": json.loads(definition["freshness_policy"]) if definition["freshness_policy"] else None,
        "partitions": json.loads(partitions) if partitions else None,
        "metadata": metadata,
    }


def _expired(row: Sequence[Any]) -> dict[str, Any]:
    """A latest event whose raw row is past the raw window, as the latest-state table keeps it (a row of
    ``_LATEST_IDS``): its time, partition, data version, run and check result, without metadata, tags, description
    or source. The state keeps failures of type FAILED only."""
    partition, event_id, _, _, event_type, check_name, at, data_version, run_id, passed, severity, reason = row
    kept: tuple[Any, ...] = (event_id, event_type, at, partition, data_version, "", {}, {}, {}, check_name, passed,
            severity, run_id, None, "FAILED", reason)  # fmt: skip
    return {**event(kept), "expired": True}


def asset_detail(query: Query, asset_key: str, statuses: status.Statuses | None = None) -> dict[str, Any] | None:
    """Everything the catalog shows of one asset; None for an asset neither defined nor ever reported.
    ``statuses`` as for ``list_assets``. Its reads run side by side (``together``): the definition, the assets
    depending on it, its latest events' ids, its failures, its failed checks and its status; then the latest
    events' rows and when their identities were reported."""
    key = {"key": asset_key}
    definitions, dependents, latest_ids, failed, failed_checks, state = together(
        lambda: query(_DEFINITION, key).rows,
        lambda: query(_DOWNSTREAM, key).rows,
        lambda: query(_LATEST_IDS, key).rows,
        lambda: status.failures(query, [asset_key]),
        lambda: status.failed_check_partitions(query, asset_key),
        lambda: (statuses or functools.partial(status.staleness, query))([asset_key]),
    )
    definition = _definition(definitions[0]) if definitions else None
    downstream = [str(dependent) for (dependent,) in dependents]
    identities = [(str(row[4]), str(row[0]), str(row[7])) for row in latest_ids
                  if row[4] in ("materialization", "observation") and row[7]]  # fmt: skip
    rows, reported = together(
        lambda: query(_LATEST_EVENTS, {**key, "partitions": sorted({r[0] for r in latest_ids}),
                                       "ids": [r[1] for r in latest_ids]}).rows if latest_ids else [],
        lambda: reports.seen(query, asset_key, identities),
    )  # fmt: skip
    latest_events = [event(row) for row in rows]
    stored = {e["event_id"] for e in latest_events}
    latest_events += [_expired(row) for row in latest_ids if row[1] not in stored]
    # skipped failures leave no latest state: an asset reported with those alone is known all the same
    if definition is None and not latest_events and not query(_REPORTED, key).rows[0][0]:
        return None
    by_type = {e["event_type"]: e for e in latest_events if e["event_type"] != "check_evaluation"}
    checks = sorted((e for e in latest_events if e["event_type"] == "check_evaluation"), key=lambda e: e["check_name"])
    materialization, observation = by_type.get("materialization"), by_type.get("observation")
    for shown in (materialization, observation):
        if shown and shown["data_version"]:
            shown.update(reported.get((shown["event_type"], shown["partition"] or "", shown["data_version"]), {}))
    partitions = {str(row[4]): (int(row[2]), row[3]) for row in latest_ids}
    materialized, latest_partition = partitions.get("materialization", (0, ""))
    observed, _ = partitions.get("observation", (0, ""))
    state = state.get(asset_key, {"status": None, "causes": []})
    defined_metadata = definition["metadata"] if definition else None
    materialized_metadata = materialization["metadata"] if materialization else None
    return {
        "asset_key": asset_key,
        "defined": definition is not None,
        "definition": definition,
        "status": state["status"],
        "causes": state["causes"],
        "latest_materialization": materialization,
        "latest_observation": observation,
        "latest_failure": by_type.get("materialization_failure"),
        "failed": asset_key in failed,
        "column_schema": column_schema(defined_metadata, materialized_metadata),
        "column_lineage": column_lineage(defined_metadata, materialized_metadata),
        "code_references": code_references(defined_metadata),
        "upstream": definition["deps"] if definition else [],
        "downstream": downstream,
        "checks": checks,
        "check_summary": status.check_summary(checks),
        "partitions": {
            "partitioned": bool(
                materialized
                or observed
                or failed_checks
                or failed.get(asset_key)
                or (definition and definition["partitions"])
            ),
            "materialized": int(materialized),
            "observed": int(observed),
            "failed": failed.get(asset_key, 0),
            "failed_checks": int(failed_checks),
            "latest": latest_partition or None,
        },
    }
