"""An asset's events, newest first, a page at a time: materializations, observations, check evaluations and
materialization failures, filtered by type, partition and time, each with its typed metadata and its run (with
the run's status when a run made it). A page reads the asset's range of ``asset_events`` (its primary key starts
with the asset key), and a cursor holds the last row's time and id.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from assetpipe.consumers.catalog import cursor
from assetpipe.consumers.catalog.metadata import typed
from assetpipe.consumers.catalog.rows import Query, iso, mapping, micros
from assetpipe.schemas.errors import FieldError

EVENT_TYPES = {"materialization": "materialization", "observation": "observation", "check": "check_evaluation",
               "check_evaluation": "check_evaluation",
               "materialization_failure": "materialization_failure"}  # fmt: skip
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

# The columns of an event as the catalog shows it (``event``), from ``asset_events AS e``.
EVENT_COLUMNS = (
    "toString(e.event_id), toString(e.event_type), toUnixTimestamp64Micro(e.timestamp), e.partition, e.data_version, "
    "e.description, e.metadata, e.metadata_types, e.tags, toString(e.check_name), e.check_passed, "
    "toString(e.check_severity), e.run_id, toString(e.source), toString(e.failure_type), toString(e.failure_reason)"
)
_EVENTS = f"SELECT {EVENT_COLUMNS} FROM asset_events AS e WHERE e.asset_key = {{key:String}}"
_ORDER = " ORDER BY e.timestamp DESC, e.event_id DESC LIMIT {limit:UInt32}"
_CONDITIONS = {
    "type": " AND e.event_type = {type:String}",
    "partition": " AND e.partition = {partition:String}",
    "after": " AND e.timestamp >= fromUnixTimestamp64Micro({after:Int64}, 'UTC')",
    "before": " AND e.timestamp < fromUnixTimestamp64Micro({before:Int64}, 'UTC')",
    "cursor": " AND (e.timestamp, e.event_id) < (fromUnixTimestamp64Micro({at:Int64}, 'UTC'), toUUID({id:String}))",
}
_RUNS = "SELECT toString(r.run_id), toString(r.status) FROM runs AS r FINAL WHERE r.run_id IN {ids:Array(UUID)}"


def event(row: Sequence[Any]) -> dict[str, Any]:
    """One row of ``EVENT_COLUMNS``."""
    (event_id, event_type, at, partition, data_version, description, metadata, types, tags, check_name, passed,
     severity, run_id, source, failure_type, reason) = row  # fmt: skip
    shown: dict[str, Any] = {
        "event_id": event_id,
        "event_type": event_type,
        "timestamp": iso(at),
        "partition": partition or None,
        "data_version": data_version or None,
        "description": description or None,
        "metadata": typed(mapping(metadata), mapping(types)),
        "tags": mapping(tags),
        "source": source,
        "run_id": run_id or None,
    }
    if event_type == "check_evaluation":
        shown.update(check_name=check_name, passed=bool(passed), severity=severity or None)
    elif event_type == "materialization_failure":
        shown.update(failure_type=failure_type, reason=reason)
    return shown


def with_runs(query: Query, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each event with ``run``: its run's id and status (``{"run_id", "status"}``, status None when ``runs``
    does not know it: a run id reported from outside), or None when no run made it."""
    ids = sorted({e["run_id"] for e in events if e["run_id"] and _UUID.match(e["run_id"])})
    statuses = dict(query(_RUNS, {"ids": ids}).rows) if ids else {}
    for e in events:
        e["run"] = {"run_id": e["run_id"], "status": statuses.get(e["run_id"])} if e["run_id"] else None
    return events


def time_parameter(name: str, text: str | None) -> int | None:
    """A time given in the query string (ISO 8601, or epoch seconds) as microseconds."""
    if not text:
        return None
    try:
        return micros(text)
    except ValueError:
        raise FieldError(name, f"Query parameter '{name}' must be an ISO 8601 time or epoch seconds") from None


@dataclass(frozen=True, slots=True)
class EventQuery:
    """A page of one asset's events: filters (``type``: materialization, observation, check,
    materialization_failure; ``partition``;
    ``after`` inclusive and ``before`` exclusive, in microseconds), ``cursor`` and ``limit``."""

    type: str | None = None
    partition: str | None = None
    after: int | None = None
    before: int | None = None
    cursor: str | None = None
    limit: int = DEFAULT_LIMIT

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> EventQuery:
        kind = params.get("type") or None
        if kind is not None and kind not in EVENT_TYPES:
            raise FieldError(
                "type",
                "Query parameter 'type' must be one of materialization, observation, check, materialization_failure",
            )
        return cls(
            EVENT_TYPES[kind] if kind else None,
            params.get("partition"),
            time_parameter("after", params.get("after")),
            time_parameter("before", params.get("before")),
            params.get("cursor") or None,
            cursor.limit(params.get("limit"), DEFAULT_LIMIT, MAX_LIMIT),
        )


def asset_events(query: Query, asset_key: str, wanted: EventQuery) -> dict[str, Any]:
    """A page of the asset's events, newest first (``{"items", "next_cursor"}``)."""
    position = cursor.decode(wanted.cursor, "events", (int, str))
    values: dict[str, Any] = {"key": asset_key, "limit": wanted.limit + 1}
    sql = _EVENTS
    for name, value in (("type", wanted.type), ("partition", wanted.partition), ("after", wanted.after),
                        ("before", wanted.before)):  # fmt: skip
        if value is not None:
            sql += _CONDITIONS[name]
            values[name] = value
    if position is not None:
        sql += _CONDITIONS["cursor"]
        values["at"], values["id"] = position
        if not _UUID.match(values["id"]):
            raise FieldError("cursor", "Query parameter 'cursor' is not a cursor of this list (use next_cursor)")
    rows = query(sql + _ORDER, values).rows
    events = [event(row) for row in rows]
    page = cursor.page(events, [cursor.encode("events", int(row[2]), str(row[0])) for row in rows], wanted.limit)
    with_runs(query, page["items"])
    return page
