"""A numeric metadata label of one asset as a series over its whole history, downsampled in ClickHouse to at
most ``points``: raw rows never leave the warehouse.

- ``x=time``: every materialization and observation with a numeric entry of the label (int, float, bool as
  1/0, timestamp as epoch seconds), read as a primary-key range of ``asset_metadata_points`` and reduced with
  ``largestTriangleThreeBuckets(points)(time, value)``, which keeps the points that shape the curve; each point
  then gets the id and partition of its event (one read of the asset's event times).
- ``x=partition``: the latest value of each partition, partitions in key order, cut into ``points`` buckets of
  consecutive partitions, each with its first and last partition, min, max, average and last value (and the
  event of the last).

``after`` and ``before`` narrow the range (times for ``x=time``, partition keys for ``x=partition``), and the
narrower range is downsampled again: that is zooming.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from assetpipe.consumers.catalog.events import time_parameter
from assetpipe.consumers.catalog.rows import Query, iso
from assetpipe.schemas.errors import FieldError

DEFAULT_POINTS = 1000
MAX_POINTS = 10_000
AXES = ("time", "partition")

# The entry's value as a number, as asset_metadata_points reads it (numbers are stored as JSON numbers, bool as
# true/false); an entry of another type is NULL.
_VALUE = (
    "multiIf(e.metadata_types[{label:String}] NOT IN ('int', 'float', 'bool', 'timestamp'), NULL, "
    "e.metadata_types[{label:String}] = 'bool', toFloat64(e.metadata[{label:String}] = 'true'), "
    "toFloat64OrNull(e.metadata[{label:String}]))"
)
_ROWS = "FROM asset_events AS e WHERE e.asset_key = {key:String} AND e.event_type IN ('materialization', 'observation')"
_BY_TIME = (
    "SELECT count(), min(s.t), max(s.t), largestTriangleThreeBuckets({points:UInt64})(s.t, s.y) FROM ("
    "SELECT toUnixTimestamp64Micro(p.timestamp) AS t, p.value AS y FROM asset_metadata_points AS p "
    "WHERE p.asset_key = {key:String} AND p.label = {label:String}{range}) AS s"
)
_TIME_RANGE = {
    "after": " AND p.timestamp >= fromUnixTimestamp64Micro({after:Int64}, 'UTC')",
    "before": " AND p.timestamp < fromUnixTimestamp64Micro({before:Int64}, 'UTC')",
}
_EVENTS_AT = (
    "SELECT toUnixTimestamp64Micro(e.timestamp) AS t, toString(e.event_id), e.partition "
    f"{_ROWS} AND t IN {{times:Array(Int64)}} ORDER BY t LIMIT 1 BY t"
)
_BY_PARTITION = (
    "SELECT b.bucket, min(b.p), max(b.p), count(), min(b.y), max(b.y), avg(b.y), argMax(b.y, b.p), argMax(b.id, b.p), "
    "any(b.total) FROM ("
    "SELECT v.p AS p, v.y AS y, v.id AS id, count() OVER () AS total, "
    "intDiv((row_number() OVER (ORDER BY v.p) - 1) * {points:UInt64}, count() OVER ()) AS bucket FROM ("
    f"SELECT e.partition AS p, argMax({_VALUE}, e.timestamp) AS y, toString(argMax(e.event_id, e.timestamp)) AS id "
    f"{_ROWS} AND e.partition != '' {{range}} AND isNotNull({_VALUE}) GROUP BY e.partition) AS v"
    ") AS b GROUP BY b.bucket ORDER BY b.bucket"
)
_PARTITION_RANGE = {"after": " AND e.partition >= {after:String}", "before": " AND e.partition <= {before:String}"}


_LABELS = (
    "SELECT p.label FROM asset_metadata_points AS p WHERE p.asset_key = {key:String} GROUP BY p.label ORDER BY p.label"
)


def series_labels(query: Query, asset_key: str) -> list[str]:
    """Every label with a numeric entry in any materialization or observation of the asset, in its whole history."""
    return [str(label) for (label,) in query(_LABELS, {"key": asset_key}).rows]


@dataclass(frozen=True, slots=True)
class SeriesQuery:
    """``x`` (time or partition), the range (``after``, ``before``: times in microseconds, or partition keys,
    inclusive), and ``points``."""

    x: str = "time"
    after: int | str | None = None
    before: int | str | None = None
    points: int = DEFAULT_POINTS

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> SeriesQuery:
        x = params.get("x") or "time"
        if x not in AXES:
            raise FieldError("x", "Query parameter 'x' must be time or partition")
        text = params.get("points") or str(DEFAULT_POINTS)
        if not text.isdigit() or not 3 <= int(text) <= MAX_POINTS:
            raise FieldError("points", f"Query parameter 'points' must be an integer from 3 to {MAX_POINTS}")
        if x == "time":
            return cls(x, time_parameter("after", params.get("after")), time_parameter("before", params.get("before")),
                       int(text))  # fmt: skip
        return cls(x, params.get("after") or None, params.get("before") or None, int(text))


def series(query: Query, asset_key: str, label: str, wanted: SeriesQuery) -> dict[str, Any]:
    """``{"asset_key", "label", "x", "count", "points", "downsampled", ...}``: ``count`` values in the range,
    at most ``points`` of them shown."""
    values: dict[str, Any] = {"key": asset_key, "label": label, "points": wanted.points}
    limits = _TIME_RANGE if wanted.x == "time" else _PARTITION_RANGE
    condition = ""
    for name, value in (("after", wanted.after), ("before", wanted.before)):
        if value is not None:
            condition += limits[name]
            values[name] = value
    shown: dict[str, Any] = {"asset_key": asset_key, "label": label, "x": wanted.x}
    if wanted.x == "time":
        return {**shown, **_by_time(query, values, condition)}
    return {**shown, **_by_partition(query, values, condition)}


def _by_time(query: Query, values: dict[str, Any], condition: str) -> dict[str, Any]:
    count, first, last, reduced = query(_BY_TIME.replace("{range}", condition), values).rows[0]
    points = [(int(x), float(y)) for x, y in reduced]
    found = {}
    if points:
        at = {"key": values["key"], "times": [x for x, _ in points]}
        found = {int(t): (event_id, partition) for t, event_id, partition in query(_EVENTS_AT, at).rows}
    return {
        "count": int(count),
        "first": iso(first) if count else None,
        "last": iso(last) if count else None,
        "downsampled": int(count) > len(points),
        "points": [_point(x, y, *found.get(x, (None, ""))) for x, y in points],
    }


def _point(x: int, y: float, event_id: str | None, partition: str) -> dict[str, Any]:
    return {"x": iso(x), "y": y, "event_id": event_id, "partition": partition or None}


def _by_partition(query: Query, values: dict[str, Any], condition: str) -> dict[str, Any]:
    rows = query(_BY_PARTITION.replace("{range}", condition), values).rows
    total = int(rows[0][9]) if rows else 0
    return {
        "count": total,
        "first": rows[0][1] if rows else None,
        "last": rows[-1][2] if rows else None,
        "downsampled": total > len(rows),
        "points": [
            {
                "first_partition": first,
                "last_partition": last,
                "partitions": int(n),
                "min": low,
                "max": high,
                "avg": mean,
                "last": value,
                "event_id": event_id,
            }
            for _, first, last, n, low, high, mean, value, event_id, _ in rows
        ],
    }
