"""Runs as the catalog shows them: the list, newest first, filtered by job, status, asset and code location;
one run with everything its ops recorded (``run_events``: logs, step outputs, asset events, expectation
results, retries, failures). Each read is one parameterized read-only query (``web.query``).
"""

from __future__ import annotations

import re
from typing import Any

from assetpipe.web.exceptions import BadQueryError, NotFoundError
from assetpipe.web.query import Query, decode_cursor, iso, limit_of, one_of, page

RUN_STATUSES = ("queued", "started", "launched", "succeeded", "failed")
SCHEDULE_TAG = "dagster/schedule_name"
MAX_EVENTS = 10_000  # events of one run shown; the rest are counted
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

_RUN_FIELDS = (
    "toString(run_id), job_name, code_location, toString(status), run_key, partition_key, sensor_name, "
    f"tags['{SCHEDULE_TAG}'], tick_id, trigger_event_id, trigger_asset_key, asset_selection, "
    "toUnixTimestamp64Micro(requested_at), toUnixTimestamp64Micro(started_at), toUnixTimestamp64Micro(finished_at), "
    "duration_ms, attempts, error_type, error_message"
)
_LIST = (
    f"SELECT {_RUN_FIELDS} FROM runs FINAL "
    "WHERE ({job:String} = '' OR job_name = {job:String}) "
    "AND ({status:String} = '' OR toString(status) = {status:String}) "
    "AND ({loc:String} = '' OR code_location = {loc:String}) "
    "AND ({asset:String} = '' OR trigger_asset_key = {asset:String} OR has(asset_selection, {asset:String}) "
    "OR run_id IN (SELECT run_id FROM run_events WHERE asset_key = {asset:String})) "
    "AND ({before:Int64} = 0 "
    "OR (toUnixTimestamp64Micro(requested_at), toString(run_id)) < ({before:Int64}, {tie:String})) "
    "ORDER BY requested_at DESC, toString(run_id) DESC LIMIT {limit:UInt32}"
)
_ONE = (
    f"SELECT {_RUN_FIELDS}, run_config, tags, error_traceback, error_metadata, worker_host "
    "FROM runs FINAL WHERE run_id = toUUID({id:String})"
)
_EVENTS = (
    "SELECT seq, toUnixTimestamp64Micro(timestamp), toString(event_type), op_name, attempt, level, message, "
    "output_name, asset_key, asset_event_id, success, label, metadata, metadata_types, error_type, traceback "
    "FROM run_events WHERE run_id = toUUID({id:String}) ORDER BY timestamp, seq LIMIT {limit:UInt32}"
)
_EVENT_COUNT = "SELECT count() FROM run_events WHERE run_id = toUUID({id:String})"


def _run(row: tuple[Any, ...]) -> dict[str, Any]:
    (run_id, job, location, status, run_key, partition_key, sensor, schedule, tick_id, trigger_event, trigger_asset,
     selection, requested, started, finished, duration, attempts, error_type, error_message) = row[:19]  # fmt: skip
    return {
        "run_id": run_id,
        "job_name": job,
        "code_location": location,
        "status": status,
        "run_key": run_key or None,
        "partition_key": partition_key or None,
        "sensor_name": sensor or None,
        "schedule_name": schedule or None,
        "tick_id": tick_id or None,
        "trigger": {"event_id": trigger_event, "asset_key": trigger_asset} if trigger_event else None,
        "asset_selection": list(selection),
        "requested_at": iso(requested),
        "started_at": iso(started),
        "finished_at": iso(finished),
        "duration_ms": duration,
        "attempts": int(attempts),
        "error": {"type": error_type or None, "message": error_message} if error_type or error_message else None,
    }


def _event(row: tuple[Any, ...]) -> dict[str, Any]:
    (seq, at, kind, op, attempt, level, message, output, asset, asset_event, success, label, metadata, types,
     error_type, traceback) = row  # fmt: skip
    return {
        "seq": int(seq),
        "timestamp": iso(at),
        "event_type": kind,
        "op_name": op or None,
        "attempt": int(attempt),
        "level": level or None,
        "message": message or None,
        "output_name": output or None,
        "asset_key": asset or None,
        "asset_event_id": asset_event or None,
        "success": success,
        "label": label or None,
        "metadata": [{"key": k, "type": dict(types).get(k, "text"), "value": v} for k, v in dict(metadata).items()],
        "error_type": error_type or None,
        "traceback": traceback or None,
    }


class Runs:
    def __init__(self, query: Query) -> None:
        self._query = query

    def list(self, params: dict[str, str | None]) -> dict[str, Any]:
        """A page of runs, newest requested first (``params``: job, status, asset, location, cursor, limit)."""
        limit = limit_of(params.get("limit"))
        cursor = decode_cursor(params.get("cursor"))
        values = {
            "job": params.get("job") or "",
            "status": one_of("status", params.get("status"), RUN_STATUSES) or "",
            "loc": params.get("location") or "",
            "asset": (params.get("asset") or "").strip("/"),
            "before": cursor[0] if cursor else 0,
            "tie": cursor[1] if cursor else "",
            "limit": limit + 1,
        }
        rows = self._query(_LIST, values).rows
        return page([_run(row) for row in rows], [(int(row[12]), str(row[0])) for row in rows], limit)

    def one(self, run_id: str) -> dict[str, Any]:
        """One run with its events, in the order they happened."""
        if not _UUID.match(run_id):
            raise BadQueryError(f"Run id '{run_id[:64]}' is not a UUID")
        found = self._query(_ONE, {"id": run_id}).rows
        if not found:
            raise NotFoundError(f"Run '{run_id}' not found")
        row = found[0]
        config, tags, traceback, metadata, host = row[19:]
        run = _run(row)
        if run["error"] is not None:
            run["error"].update(traceback=traceback or None, metadata=dict(metadata))
        events = [_event(e) for e in self._query(_EVENTS, {"id": run_id, "limit": MAX_EVENTS}).rows]
        total = len(events)
        if total == MAX_EVENTS:
            total = int(self._query(_EVENT_COUNT, {"id": run_id}).rows[0][0])
        return {
            **run,
            "run_config": config,
            "tags": dict(tags),
            "worker_host": host or None,
            "events": events,
            "events_total": total,
        }
