"""A numeric metadata label of one asset as a series over its whole history, downsampled in ClickHouse to at most
``points``: raw rows never leave the warehouse.

- ``x=time`` at one of three grains (``grain`` in the answer, docs/retention.md):
  - ``raw``: every materialization and observation with a numeric entry of the label (int, float, bool as 1/0,
    timestamp as epoch seconds), read as a primary-key range of ``asset_metadata_points`` and reduced with
    ``largestTriangleThreeBuckets(points)(time, value)``, which keeps the points that shape the curve; each point
    then gets the id and partition of its event (one read of the asset's event times).
  - ``hour``, ``day``: the buckets of ``asset_metadata_hourly`` or ``asset_metadata_daily``, merged into at most
    ``points`` groups of consecutive buckets, each with its values' count, min, max, average and last value.
  By default (``grain=auto``) a range of at most ``RAW_MAX_VALUES`` values whose raw points are all kept
  (``ASSETPIPE_RETENTION_DAYS``) is read raw; any other at the coarsest grain that still holds ``points`` buckets in
  the range: hours for one shorter than ``points`` days, days beyond. ``grain=raw|hour|day`` asks for one.
- ``x=partition``: the latest value of each partition, partitions in key order, cut into ``points`` buckets of
  consecutive partitions, each with its first and last partition, min, max, average and last value (and the
  event of the last), from ``asset_partition_metadata``: a row per partition, kept whatever the retention.

``after`` and ``before`` narrow the range (times for ``x=time``, partition keys for ``x=partition``), and the
narrower range is downsampled again: that is zooming.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from assetpipe.consumers.catalog import cursor
from assetpipe.consumers.catalog.events import time_parameter
from assetpipe.consumers.catalog.rows import Query, iso
from assetpipe.consumers.retention import POINTS_TTL_DAYS
from assetpipe.schemas.errors import FieldError

DEFAULT_POINTS = 1000
MAX_POINTS = 10_000
AXES = ("time", "partition")
GRAINS = ("auto", "raw", "hour", "day")
HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
# The most raw points a plot reduces by default: beyond, it reads the rollups (docs/benchmarks.md, bench_retention)
RAW_MAX_VALUES = 100_000
# Each rollup's table, the length of its buckets and the function that starts one
_ROLLUPS = {"hour": ("asset_metadata_hourly", HOUR_US, "toStartOfHour"),
            "day": ("asset_metadata_daily", DAY_US, "toStartOfDay")}  # fmt: skip

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
# The warehouse's time and the days of the raw window (0: everything is kept)
_WINDOW = f"toUnixTimestamp64Micro(now64(6)), {POINTS_TTL_DAYS}"
# What the daily rollup (a row a day at most) holds of the label in the days the range touches: its values, the
# first and the last time, and the raw window: enough to pick the grain
_EXTENT = (
    "SELECT sum(d.values), toUnixTimestamp64Micro(min(d.first_at)), "
    f"toUnixTimestamp64Micro(tupleElement(max(d.last), 'at')), {_WINDOW} FROM asset_metadata_daily AS d "
    "WHERE d.asset_key = {key:String} AND d.label = {label:String}{range}"
)
_EXTENT_RANGE = {
    "after": " AND d.bucket >= toStartOfDay(fromUnixTimestamp64Micro({after:Int64}, 'UTC'))",
    "before": " AND d.bucket < fromUnixTimestamp64Micro({before:Int64}, 'UTC')",
}
# The buckets of a rollup in the range, merged into groups of consecutive buckets ({width} seconds from {origin})
_BY_BUCKET = (
    "SELECT toInt64(toUnixTimestamp(min(b.bucket))) * 1000000 AS x, sum(b.values), min(b.low), max(b.high), "
    "sum(b.total) / sum(b.values), tupleElement(max(b.last), 'value'), toUnixTimestamp64Micro(min(b.first_at)), "
    "toUnixTimestamp64Micro(tupleElement(max(b.last), 'at')) FROM {table} AS b "
    "WHERE b.asset_key = {key:String} AND b.label = {label:String}{range} "
    "GROUP BY intDiv(toInt64(toUnixTimestamp(b.bucket)) - {origin:Int64}, {width:Int64}) ORDER BY x"
)
_BUCKET_RANGE = {
    "after": " AND b.bucket >= {start}(fromUnixTimestamp64Micro({after:Int64}, 'UTC'))",
    "before": " AND b.bucket < fromUnixTimestamp64Micro({before:Int64}, 'UTC')",
}
# The latest value of each partition in the range (value and event taken from one row, also where two share a time),
# numbered in key order and cut into {points} buckets of consecutive partitions
_BY_PARTITION = (
    "SELECT b.bucket, min(b.p), max(b.p), count(), min(b.y), max(b.y), avg(b.y), argMax(b.y, b.p), argMax(b.id, b.p), "
    "any(b.total) FROM ("
    "SELECT v.p AS p, tupleElement(v.latest, 1) AS y, toString(tupleElement(v.latest, 2)) AS id, "
    "count() OVER () AS total, "
    "intDiv((row_number() OVER (ORDER BY v.p) - 1) * {points:UInt64}, count() OVER ()) AS bucket FROM ("
    "SELECT m.partition AS p, argMax((m.value, m.event_id), m.timestamp) AS latest FROM asset_partition_metadata AS m "
    "WHERE m.asset_key = {key:String} AND m.label = {label:String}{range} GROUP BY m.partition) AS v"
    ") AS b GROUP BY b.bucket ORDER BY b.bucket"
)
_PARTITION_RANGE = {"after": " AND m.partition >= {after:String}", "before": " AND m.partition <= {before:String}"}

# Every label ever plotted: the daily rollup keeps them all, also once their raw points are dropped
_LABELS = (
    "SELECT d.label FROM asset_metadata_daily AS d WHERE d.asset_key = {key:String} GROUP BY d.label ORDER BY d.label"
)


def series_labels(query: Query, asset_key: str) -> list[str]:
    """Every label with a numeric entry in any materialization or observation of the asset, in its whole history."""
    return [str(label) for (label,) in query(_LABELS, {"key": asset_key}).rows]


def grain_for(values: int, span_us: int, start_us: int, raw_since_us: int | None, points: int) -> str:
    """The grain of a range of ``span_us`` from ``start_us`` holding about ``values`` values: its raw points when
    there are at most ``RAW_MAX_VALUES`` and none was dropped (the range starts at ``raw_since_us`` or later), else
    the coarsest rollup that still has ``points`` buckets in the range: hours below ``points`` days, days beyond."""
    if values <= RAW_MAX_VALUES and (raw_since_us is None or start_us >= raw_since_us):
        return "raw"
    return "hour" if span_us < points * DAY_US else "day"


@dataclass(frozen=True, slots=True)
class SeriesQuery:
    """``x`` (time or partition), the range (``after``, ``before``: times in microseconds, or partition keys,
    inclusive), ``points``, and ``grain`` (x=time: auto, raw, hour or day)."""

    x: str = "time"
    after: int | str | None = None
    before: int | str | None = None
    points: int = DEFAULT_POINTS
    grain: str = "auto"

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> SeriesQuery:
        x = params.get("x") or "time"
        if x not in AXES:
            raise FieldError("x", "Query parameter 'x' must be time or partition")
        points = cursor.count("points", params.get("points"), DEFAULT_POINTS, 3, MAX_POINTS)
        grain = params.get("grain") or "auto"
        if grain not in GRAINS:
            raise FieldError("grain", "Query parameter 'grain' must be auto, raw, hour or day")
        if x == "time":
            return cls(x, time_parameter("after", params.get("after")), time_parameter("before", params.get("before")),
                       points, grain)  # fmt: skip
        if grain not in ("auto", "raw"):
            raise FieldError("grain", "Query parameter 'grain' must be auto or raw with x=partition (raw values)")
        return cls(x, params.get("after") or None, params.get("before") or None, points, "raw")


def series(query: Query, asset_key: str, label: str, wanted: SeriesQuery) -> dict[str, Any]:
    """``{"asset_key", "label", "x", "grain", "raw_since", "count", "points", "downsampled", ...}``: ``count`` values
    in the range, at most ``points`` of them shown, at ``grain``; ``raw_since``: the time from which every raw point
    is kept (None: all of them)."""
    values: dict[str, Any] = {"key": asset_key, "label": label, "points": wanted.points}
    bounds = {name: value for name, value in (("after", wanted.after), ("before", wanted.before)) if value is not None}
    values.update(bounds)
    shown: dict[str, Any] = {"asset_key": asset_key, "label": label, "x": wanted.x}
    if wanted.x == "time":
        return {**shown, **_by_time(query, values, wanted)}
    condition = "".join(_PARTITION_RANGE[name] for name in bounds)
    now, days = query(f"SELECT {_WINDOW}", {}).rows[0]
    window = {"grain": "raw", "raw_since": iso(_raw_since(now, days))}
    return {**shown, **window, **_by_partition(query, values, condition)}


def _raw_since(now: Any, days: Any) -> int | None:
    return int(now) - int(days) * DAY_US if days else None


def _by_time(query: Query, values: dict[str, Any], wanted: SeriesQuery) -> dict[str, Any]:
    names = [name for name in ("after", "before") if name in values]
    extent = _EXTENT.replace("{range}", "".join(_EXTENT_RANGE[name] for name in names))
    total, first, last, now, days = query(extent, values).rows[0]
    raw_since = _raw_since(now, days)
    if not total:  # the rollups hold every value there is: nothing in the range
        grain = "raw" if wanted.grain == "auto" else wanted.grain
        return {"grain": grain, "raw_since": iso(raw_since), "count": 0, "first": None, "last": None,
                "downsampled": False, "points": []}  # fmt: skip
    start = max(int(values.get("after", first)), int(first))
    end = min(int(values.get("before", int(last) + 1)), int(last) + 1)
    grain = wanted.grain
    if grain == "auto":
        grain = grain_for(int(total), end - start, start, raw_since, wanted.points)
    shown = {"grain": grain, "raw_since": iso(raw_since)}
    if grain == "raw":
        condition = "".join(_TIME_RANGE[name] for name in names)
        return {**shown, **_raw_points(query, values, condition)}
    return {**shown, **_buckets(query, values, names, grain, start, end)}


def _raw_points(query: Query, values: dict[str, Any], condition: str) -> dict[str, Any]:
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


def _buckets(
    query: Query, values: dict[str, Any], names: Sequence[str], grain: str, start: int, end: int
) -> dict[str, Any]:
    """The rollup's buckets from ``start`` to ``end``, merged into at most ``points`` groups of equal length."""
    table, length, starts = _ROLLUPS[grain]
    origin = start // length * length
    per_group = max(1, _ceil_div(_ceil_div(end - origin, length), values["points"]))
    condition = "".join(_BUCKET_RANGE[name].replace("{start}", starts) for name in names)
    sql = _BY_BUCKET.replace("{table}", table).replace("{range}", condition)
    rows = query(sql, {**values, "origin": origin // 1_000_000, "width": per_group * length // 1_000_000}).rows
    count = sum(int(row[1]) for row in rows)
    return {
        "count": count,
        "first": iso(min(int(row[6]) for row in rows)) if rows else None,
        "last": iso(max(int(row[7]) for row in rows)) if rows else None,
        "downsampled": count > len(rows),
        "points": [
            {
                "x": iso(x),
                "y": mean,
                "min": low,
                "max": high,
                "last": latest,
                "count": int(n),
                "event_id": None,
                "partition": None,
            }
            for x, n, low, high, mean, latest, _, _ in rows
        ],
    }


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


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
