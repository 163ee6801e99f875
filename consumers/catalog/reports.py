"""When an asset's identities were reported: for each (event type, partition, data version) of its events
with a data version, the first and last report and how many there were, from ``asset_report_state`` (one
row per identity once parts merge, whatever the number of reports). A report that repeats a stored identity
is not stored in ``asset_events`` (its metadata is dropped) but its time counts here, so the catalog can say
"unchanged since 10:02, last seen 10:58". Events without a data version have no row: each is one report,
read from ``asset_events``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from assetpipe.consumers.catalog.events import EVENT_TYPES
from assetpipe.consumers.catalog.rows import Query, iso
from assetpipe.schemas.errors import FieldError

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_NONE = "00000000-0000-0000-0000-000000000000"

_STATE = (
    "SELECT toString(r.event_type), r.partition, r.data_version, toUnixTimestamp64Micro(min(r.first_reported_at)), "
    "toUnixTimestamp64Micro(max(r.last_reported_at)) AS last_us, sum(r.repeats), "
    "toUnixTimestamp64Micro(max(r.last_repeat_at)), toString(argMaxMerge(r.last_repeat_id)), "
    "toString(max(r.stored_event_id)) "
    "FROM asset_report_state AS r WHERE r.asset_key = {key:String}"
)
_CONDITIONS = {
    "type": " AND r.event_type = {type:String}",
    "partition": " AND r.partition = {partition:String}",
    "data_version": " AND r.data_version = {data_version:String}",
}
_ORDER = (
    " GROUP BY r.event_type, r.partition, r.data_version "
    "ORDER BY last_us DESC, r.partition, r.data_version, r.event_type LIMIT {limit:UInt32}"
)


def report_state(
    query: Query,
    asset_key: str,
    *,
    event_type: str | None = None,
    partition: str | None = None,
    data_version: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[dict[str, Any]]:
    """The asset's identities, the most recently reported first, at most ``limit`` (1 to ``MAX_LIMIT``),
    filtered by ``event_type`` (materialization, observation, check), ``partition`` (``""``: none) and
    ``data_version``. Each: ``event_type``, ``partition`` (None when none), ``data_version``,
    ``first_reported_at`` and ``last_reported_at`` (ISO 8601), ``reports`` (1 + ``repeats``, the reports
    after the stored one), ``stored_event_id`` (the event in ``asset_events``) and ``last_event_id`` (the
    latest report's id: a repeat's, whose metadata was not stored, or the stored event's)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise FieldError("limit", f"Query parameter 'limit' must be an integer from 1 to {MAX_LIMIT}")
    if event_type is not None and event_type not in EVENT_TYPES:
        raise FieldError("type", "Query parameter 'type' must be one of materialization, observation, check")
    values: dict[str, Any] = {"key": asset_key, "limit": limit}
    sql = _STATE
    wanted = (("type", EVENT_TYPES[event_type] if event_type else None), ("partition", partition),
              ("data_version", data_version))  # fmt: skip
    for name, value in wanted:
        if value is not None:
            sql += _CONDITIONS[name]
            values[name] = value
    return [identity(row) for row in query(sql + _ORDER, values).rows]


def identity(row: Sequence[Any]) -> dict[str, Any]:
    """One row of ``_STATE`` (clickhouse-connect's or JSON: times in microseconds, ids as text)."""
    event_type, partition, data_version, first_us, last_us, repeats, repeat_us, repeat_id, stored_id = row
    stored = None if stored_id == _NONE else str(stored_id)
    repeated = repeat_us is not None and repeat_id != _NONE
    latest = str(repeat_id) if repeated and int(repeat_us) >= int(last_us) else stored
    return {
        "event_type": event_type,
        "partition": partition or None,
        "data_version": data_version,
        "first_reported_at": iso(first_us),
        "last_reported_at": iso(last_us),
        "reports": 1 + int(repeats),
        "repeats": int(repeats),
        "stored_event_id": stored,
        "last_event_id": latest,
    }


_SEEN = (
    "SELECT toString(r.event_type), r.partition, r.data_version, toUnixTimestamp64Micro(min(r.first_reported_at)), "
    "toUnixTimestamp64Micro(max(r.last_reported_at)), sum(r.repeats) FROM asset_report_state AS r "
    "WHERE r.asset_key = {key:String} AND (toString(r.event_type), r.partition, r.data_version) IN "
    "{identities:Array(Tuple(String, String, String))} GROUP BY r.event_type, r.partition, r.data_version"
)


Identity = tuple[str, str, str]  # event type, partition ("": none), data version


def seen(query: Query, asset_key: str, identities: Sequence[Identity]) -> dict[Identity, dict[str, Any]]:
    """Of each of ``identities`` (the asset's latest events with a data version) its ``first_reported_at``,
    ``last_reported_at`` and ``reports``, in one read: "unchanged since 10:02, last seen 10:58"."""
    if not identities:
        return {}
    rows = query(_SEEN, {"key": asset_key, "identities": list(identities)}).rows
    return {
        (str(kind), str(partition), str(version)): {
            "first_reported_at": iso(first_us), "last_reported_at": iso(last_us), "reports": 1 + int(repeats)
        }
        for kind, partition, version, first_us, last_us, repeats in rows
    }  # fmt: skip
