"""Sensors and schedules as the catalog shows them: each one of each code location with its status (its
definition's default, or an override set by hand), its last tick and its counts; its ticks, newest first;
and switching it on or off (``instigator_states``, which the sensor worker and the scheduler read).

Every read is one parameterized read-only query (``web.query``); a start or stop is written where the
registry is (``StateWriter``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from assetpipe.consumers.sensors.store import InstigatorKind, InstigatorStatus
from assetpipe.definitions.schedules import ScheduleDefinition
from assetpipe.schemas.errors import AssetpipeError
from assetpipe.web.exceptions import BadQueryError, NotFoundError
from assetpipe.web.query import Query, decode_cursor, iso, limit_of, one_of, page

# (location, kind, name, status, who, at_us): writes one override
StateWriter = Callable[[str, InstigatorKind, str, InstigatorStatus, str, int], None]
TICK_STATUSES = ("success", "skipped", "failure")
_DAY = "now64(6) - toIntervalDay(1)"

_OVERRIDES = (
    "SELECT code_location, name, toString(status) AS status, updated_by, toUnixTimestamp64Micro(updated_at) AS at "
    "FROM instigator_states FINAL WHERE kind = '{kind}'"
)
_COUNTS = (
    "SELECT code_location, {name} AS name, countIf(status = 'success') AS success, "
    "countIf(status = 'skipped') AS skipped, countIf(status = 'failure') AS failure "
    "FROM {table} FINAL WHERE {time} >= " + _DAY + " GROUP BY code_location, name"
)
_LAST = (
    "SELECT code_location, {name} AS name, toUnixTimestamp64Micro(max({time})) AS last_at, "
    "toString(argMax(status, {time})) AS last_status, count() AS ticks FROM {table} GROUP BY code_location, name"
)


def _joined(select: str, table: str, name: str, time: str, kind: str) -> str:
    """``select`` (of ``{table} AS s FINAL``) with each row's override, 24-hour counts and last tick."""
    counts = _COUNTS.format(name=name, table=f"{table[:-1]}_ticks", time=time)
    last = _LAST.format(name=name, table=f"{table[:-1]}_ticks", time=time)
    return (
        f"SELECT {select}, o.status, o.updated_by, o.at, c.success, c.skipped, c.failure, l.last_at, l.last_status, "
        f"l.ticks FROM {table} AS s FINAL "
        f"LEFT JOIN ({_OVERRIDES.format(kind=kind)}) AS o "
        f"ON o.code_location = s.code_location AND o.name = s.{name} "
        f"LEFT JOIN ({counts}) AS c ON c.code_location = s.code_location AND c.name = s.{name} "
        f"LEFT JOIN ({last}) AS l ON l.code_location = s.code_location AND l.name = s.{name} "
        "WHERE ({loc:String} = '' OR s.code_location = {loc:String}) "
        f"AND ({{name:String}} = '' OR s.{name} = {{name:String}}) ORDER BY s.code_location, s.{name}"
    )


_SENSORS = _joined(
    "s.code_location, s.sensor_name, toString(s.sensor_type), toString(s.event_type), s.asset_keys, s.job_name, "
    "toString(s.status), toString(s.start_at), s.description, toUnixTimestamp64Micro(s.registered_at)",
    "sensors",
    "sensor_name",
    "evaluated_at",
    "sensor",
)
_SCHEDULES = _joined(
    "s.code_location, s.schedule_name, s.cron_schedules, s.interval_seconds, s.execution_timezone, s.job_name, "
    "toString(s.status), s.description, s.tags, toUnixTimestamp64Micro(s.registered_at)",
    "schedules",
    "schedule_name",
    "scheduled_at",
    "schedule",
)
_SENSOR_TICKS = (
    "SELECT toString(tick_id), toString(status), toUnixTimestamp64Micro(evaluated_at), toString(trigger_event_id), "
    "toString(trigger_event_type), asset_key, partition, data_version, toUnixTimestamp64Micro(event_timestamp), "
    "arrayMap(x -> toString(x), run_ids), run_keys, job_names, skipped_run_keys, skip_reason, error, traceback, "
    "arrayMap(l -> (toUnixTimestamp64Micro(l.1), l.2, l.3), logs), duration_ms "
    "FROM sensor_ticks FINAL WHERE code_location = {loc:String} AND sensor_name = {name:String} "
    "AND ({status:String} = '' OR toString(status) = {status:String}) "
    "AND ({before:Int64} = 0 "
    "OR (toUnixTimestamp64Micro(evaluated_at), toString(tick_id)) < ({before:Int64}, {tie:String})) "
    "ORDER BY evaluated_at DESC, toString(tick_id) DESC LIMIT {limit:UInt32}"
)
_SCHEDULE_TICKS = (
    "SELECT toString(tick_id), toString(status), toUnixTimestamp64Micro(scheduled_at), catch_up, "
    "arrayMap(x -> toString(x), run_ids), run_keys, job_names, partition_keys, skip_reason, error, traceback, "
    "toUnixTimestamp64Micro(evaluated_at), duration_ms "
    "FROM schedule_ticks FINAL WHERE code_location = {loc:String} AND schedule_name = {name:String} "
    "AND ({status:String} = '' OR toString(status) = {status:String}) "
    "AND ({before:Int64} = 0 OR toUnixTimestamp64Micro(scheduled_at) < {before:Int64}) "
    "ORDER BY scheduled_at DESC LIMIT {limit:UInt32}"
)

Kind = Literal["sensor", "schedule"]


def _state(row: tuple[Any, ...], default: str) -> dict[str, Any]:
    """status, whether by default or by an override, and the override; then counts and the last tick."""
    status, by, at, success, skipped, failure, last_at, last_status, ticks = row
    override = {"status": status, "by": by, "at": iso(at)} if status else None
    return {
        "status": status or default,
        "status_source": "override" if override else "default",
        "default_status": default,
        "override": override,
        "last_tick": {"at": iso(last_at), "status": last_status} if last_at else None,
        "ticks": int(ticks or 0),
        "ticks_24h": {"success": int(success or 0), "skipped": int(skipped or 0), "failure": int(failure or 0)},
    }


def _sensor(row: tuple[Any, ...]) -> dict[str, Any]:
    location, name, kind, event_type, assets, job, default, start_at, description, registered = row[:10]
    return {
        "code_location": location,
        "name": name,
        "type": kind,
        "event_type": event_type,
        "asset_keys": list(assets),
        "job_name": job or None,
        "start_at": start_at,
        "description": description or None,
        "registered_at": iso(registered),
        **_state(row[10:], default),
    }


def _schedule(row: tuple[Any, ...]) -> dict[str, Any]:
    location, name, crons, interval, zone, job, default, description, tags, registered = row[:10]
    item = {
        "code_location": location,
        "name": name,
        "cron_schedules": list(crons),
        "interval_seconds": interval,
        "execution_timezone": zone,
        "job_name": job or None,
        "description": description or None,
        "tags": dict(tags),
        "registered_at": iso(registered),
        **_state(row[10:], default),
    }
    item["next_tick"] = _next_tick(item) if item["status"] == "running" else None
    return item


def _next_tick(item: Mapping[str, Any]) -> str | None:
    """When the schedule ticks next, by its registered cron or interval (None if they no longer parse)."""
    try:
        schedule = ScheduleDefinition(
            item["name"],
            cron_schedule=item["cron_schedules"] or None,
            interval_seconds=item["interval_seconds"],
            execution_timezone=item["execution_timezone"],
            job_name=item["job_name"] or "job",
        )
        return schedule.next_tick_after(datetime.now(UTC)).astimezone(UTC).isoformat().replace("+00:00", "Z")
    except AssetpipeError:
        return None


class Instigators:
    """Sensors and schedules of every code location, read through ``query``, switched by ``write``."""

    def __init__(self, query: Query, write: StateWriter, now_us: Callable[[], int]) -> None:
        self._query = query
        self._write = write
        self._now_us = now_us

    def sensors(self, location: str | None = None, name: str | None = None) -> list[dict[str, Any]]:
        rows = self._query(_SENSORS, {"loc": location or "", "name": name or ""}).rows
        return [_sensor(row) for row in rows]

    def schedules(self, location: str | None = None, name: str | None = None) -> list[dict[str, Any]]:
        rows = self._query(_SCHEDULES, {"loc": location or "", "name": name or ""}).rows
        return [_schedule(row) for row in rows]

    def one(self, kind: Kind, name: str, location: str | None) -> dict[str, Any]:
        """The sensor or schedule ``name``; ``location`` may be left out when only one location has it."""
        found = (self.sensors if kind == "sensor" else self.schedules)(location, name)
        if not found:
            where = f" in code location '{location}'" if location else ""
            raise NotFoundError(f"{kind.capitalize()} '{name}' not found{where}")
        if len(found) > 1:
            locations = ", ".join(item["code_location"] for item in found)
            raise BadQueryError(
                f"{kind.capitalize()} '{name}' is in several code locations ({locations}): pass location=<one of them>"
            )
        return found[0]

    def ticks(self, kind: Kind, name: str, params: Mapping[str, str | None]) -> dict[str, Any]:
        """A page of the ticks of one sensor or schedule, newest first (``params``: location, status,
        cursor, limit)."""
        limit = limit_of(params.get("limit"))
        status = one_of("status", params.get("status"), TICK_STATUSES) or ""
        cursor = decode_cursor(params.get("cursor"))
        item = self.one(kind, name, params.get("location"))
        values = {
            "loc": item["code_location"],
            "name": name,
            "status": status,
            "before": cursor[0] if cursor else 0,
            "tie": cursor[1] if cursor else "",
            "limit": limit + 1,
        }
        if kind == "sensor":
            rows = self._query(_SENSOR_TICKS, values).rows
            ticks = [_sensor_tick(row) for row in rows]
            positions = [(int(row[2]), str(row[0])) for row in rows]
        else:
            rows = self._query(_SCHEDULE_TICKS, values).rows
            ticks = [_schedule_tick(row) for row in rows]
            positions = [(int(row[2]), "") for row in rows]
        return {"code_location": item["code_location"], "name": name, **page(ticks, positions, limit)}

    def switch(self, kind: Kind, name: str, location: str | None, status: InstigatorStatus, by: str) -> dict[str, Any]:
        """Switch a sensor or schedule on or off; nothing is written when it already is (``changed``)."""
        item = self.one(kind, name, location)
        if item["status"] == status:
            return {**item, "changed": False}
        self._write(item["code_location"], kind, name, status, by, self._now_us())
        return {**self.one(kind, name, item["code_location"]), "changed": True}


def _sensor_tick(row: tuple[Any, ...]) -> dict[str, Any]:
    (tick_id, status, at, event_id, event_type, asset, partition, version, event_at, run_ids, run_keys, jobs,
     skipped_keys, skip_reason, error, traceback, logs, duration) = row  # fmt: skip
    return {
        "tick_id": tick_id,
        "status": status,
        "evaluated_at": iso(at),
        "trigger": {
            "event_id": event_id,
            "event_type": event_type,
            "asset_key": asset,
            "partition": partition or None,
            "data_version": version or None,
            "timestamp": iso(event_at),
        },
        "runs": [
            {"run_id": r, "run_key": k or None, "job_name": j} for r, k, j in zip(run_ids, run_keys, jobs, strict=True)
        ],
        "skipped_run_keys": list(skipped_keys),
        "skip_reason": skip_reason or None,
        "error": error or None,
        "traceback": traceback or None,
        "logs": [{"time": iso(t), "level": level, "message": message} for t, level, message in logs],
        "duration_ms": duration,
    }


def _schedule_tick(row: tuple[Any, ...]) -> dict[str, Any]:
    (tick_id, status, at, catch_up, run_ids, run_keys, jobs, partitions, skip_reason, error, traceback, evaluated,
     duration) = row  # fmt: skip
    return {
        "tick_id": tick_id,
        "status": status,
        "scheduled_at": iso(at),
        "catch_up": bool(catch_up),
        "runs": [
            {"run_id": r, "run_key": k or None, "job_name": j, "partition_key": p or None}
            for r, k, j, p in zip(run_ids, run_keys, jobs, partitions, strict=True)
        ],
        "skip_reason": skip_reason or None,
        "error": error or None,
        "traceback": traceback or None,
        "evaluated_at": iso(evaluated),
        "duration_ms": duration,
    }
