"""What the sensor worker keeps in ClickHouse, per code location: registered sensors, ticks (with their
cursors and run requests), and the lookups that make evaluation safe to repeat: events already
evaluated, run keys already requested, requests to publish again after a crash. Also the sensors and
schedules switched on or off by hand (``instigator_states``), which the sensor worker and the scheduler
read while they run (``InstigatorStates``) and the web API writes (``write_instigator_state``).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from assetpipe.consumers.sensors.ticks import TICK_COLUMNS, Tick, TickColumns
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.definitions.context import EventLogRecord
from assetpipe.definitions.sensors import SensorDefinition
from assetpipe.schemas.asset_key import AssetKey
from assetpipe.schemas.metadata import from_text

_SENSOR_COLUMNS = (
    "code_location", "sensor_name", "sensor_type", "event_type", "asset_keys", "job_name", "status", "start_at",
    "description", "registered_at", "updated_at",
)  # fmt: skip
_REQUEST_FIELDS = (
    "toString(run_id)", "job_name", "run_key", "run_config", "tags", "partition_key", "sensor_name", "tick_id",
    "trigger_event_id", "trigger_event_type", "trigger_asset_key", "trigger_partition", "trigger_data_version",
    "toUnixTimestamp64Micro(trigger_timestamp)", "toUnixTimestamp64Micro(requested_at)", "asset_selection",
)  # fmt: skip
_CHUNK = 5_000  # ids per lookup query
_STATE_COLUMNS = ("code_location", "kind", "name", "status", "updated_by", "updated_at")
InstigatorKind = Literal["sensor", "schedule"]
InstigatorStatus = Literal["running", "stopped"]


class SensorStore:
    def __init__(self, warehouse: Warehouse, code_location: str) -> None:
        self.warehouse = warehouse
        self.location = code_location
        self._db = warehouse.database

    def register(self, sensors: Sequence[SensorDefinition], now_us: int) -> dict[str, int]:
        """Record the sensors; returns when each was first registered (microseconds)."""
        known = {
            name: int(first)
            for name, first in self.warehouse.query(
                f"SELECT sensor_name, toUnixTimestamp64Micro(min(registered_at)) FROM {self._db}.sensors "
                "WHERE code_location = %(loc)s GROUP BY sensor_name",
                parameters={"loc": self.location},
            ).rows
        }
        registered = {s.name: known.get(s.name, now_us) for s in sensors}
        rows = [
            (
                self.location,
                s.name,
                s.kind,
                s.event_type,
                [str(k) for k in s.asset_keys],
                s.target or "",
                "running" if s.running else "stopped",
                s.start_at,
                s.description or "",
                registered[s.name],
                now_us,
            )
            for s in sensors
        ]
        if rows:
            self.warehouse.insert("sensors", [list(c) for c in zip(*rows, strict=True)], _SENSOR_COLUMNS)
        return registered

    def record(self, ticks: Iterable[Tick], worker_id: str, dedup_token: str) -> None:
        columns = TickColumns()
        for tick in ticks:
            columns.append(tick, self.location, worker_id)
        if len(columns):
            self.warehouse.insert("sensor_ticks", columns.columns, TICK_COLUMNS, dedup_token=dedup_token)

    def evaluated(self, event_ids: Collection[str]) -> set[str]:
        """Which of these events this code location's sensors have already evaluated."""
        if not event_ids:
            return set()
        rows = self._query_in(
            f"SELECT DISTINCT toString(trigger_event_id) FROM {self._db}.sensor_ticks "
            "WHERE code_location = %(loc)s AND has(%(ids)s, toString(trigger_event_id))",
            "ids",
            event_ids,
        )
        return {row[0] for row in rows}

    def requested(self, sensor_names: Collection[str], run_keys: Collection[str]) -> dict[tuple[str, str], str]:
        """(sensor, run key) -> the event whose evaluation first requested it, for keys already requested."""
        if not run_keys:
            return {}
        rows = self._query_in(
            f"SELECT sensor_name, run_key, any(trigger_event_id) FROM {self._db}.run_requests "
            "WHERE code_location = %(loc)s AND has(%(sensors)s, sensor_name) AND has(%(keys)s, run_key) "
            "GROUP BY sensor_name, run_key",
            "keys",
            run_keys,
            sensors=list(sensor_names),
        )
        return {(sensor, key): event_id for sensor, key, event_id in rows}

    def recorded_requests(self, event_ids: Collection[str]) -> list[dict[str, Any]]:
        """The run requests already recorded for these events, as wire records (to publish again)."""
        if not event_ids:
            return []
        rows = self._query_in(
            f"SELECT {', '.join(_REQUEST_FIELDS)} FROM {self._db}.run_requests FINAL "
            "WHERE code_location = %(loc)s AND has(%(ids)s, trigger_event_id)",
            "ids",
            event_ids,
        )
        records = []
        for (
            run_id,
            job,
            key,
            config,
            tags,
            partition_key,
            sensor,
            tick,
            event_id,
            event_type,
            asset,
            partition,
            version,
            event_ts,
            requested_at,
            selection,
        ) in rows:
            trigger = {
                "event_id": event_id,
                "event_type": event_type,
                "asset_key": asset.split("/"),
                "partition": partition or None,
                "data_version": version or None,
                "timestamp": event_ts,
            }
            records.append(
                {
                    "run_id": run_id,
                    "job_name": job,
                    "code_location": self.location,
                    "run_key": key or None,
                    "run_config": config,
                    "tags": dict(tags),
                    "partition_key": partition_key or None,
                    "sensor_name": sensor,
                    "tick_id": tick,
                    "trigger": trigger,
                    "requested_at": requested_at,
                    "asset_selection": list(selection),
                }
            )
        return records

    def cursor_changes(
        self, sensor_names: Collection[str], since_us: int, exclude_worker: str
    ) -> list[tuple[str, str]]:
        """(sensor, cursor change) of ticks that other workers than ``exclude_worker`` evaluated after
        ``since_us``, oldest first."""
        if not sensor_names:
            return []
        rows = self.warehouse.query(
            f"SELECT sensor_name, cursor FROM {self._db}.sensor_ticks WHERE code_location = %(loc)s "
            "AND has(%(names)s, sensor_name) AND worker_id != %(me)s "
            "AND evaluated_at > fromUnixTimestamp64Micro(%(since)s) ORDER BY evaluated_at",
            parameters={"loc": self.location, "names": list(sensor_names), "since": since_us, "me": exclude_worker},
        ).rows
        return [(str(name), str(cursor)) for name, cursor in rows]

    def multi_asset_cursors(self, sensor_names: Collection[str]) -> list[tuple[str, str, str, bool, int]]:
        """(sensor, asset, event id, consumed, updated_us) of every monitored asset seen so far."""
        if not sensor_names:
            return []
        rows = self.warehouse.query(
            f"SELECT sensor_name, asset_key, event_id, consumed, toUnixTimestamp64Micro(updated_at) "
            f"FROM {self._db}.multi_asset_cursors WHERE code_location = %(loc)s AND has(%(names)s, sensor_name)",
            parameters={"loc": self.location, "names": list(sensor_names)},
        ).rows
        return [(str(s), str(a), str(e), bool(c), int(u)) for s, a, e, c, u in rows]

    def materializations(self, event_ids: Collection[str]) -> dict[str, EventLogRecord]:
        """Accepted materializations by event id, rebuilt from ``asset_events`` as the records a
        multi-asset sensor reads."""
        if not event_ids:
            return {}
        rows = self._query_in(
            "SELECT toString(event_id), asset_key_path, partition, data_version, description, metadata, "
            f"metadata_types, tags, toUnixTimestamp64Micro(timestamp), run_id, source, producer_host "
            f"FROM {self._db}.asset_events WHERE event_type = 'materialization' AND has(%(ids)s, toString(event_id))",
            "ids",
            event_ids,
        )
        events = {}
        for event_id, path, partition, version, description, metadata, types, tags, ts, run_id, source, host in rows:
            events[event_id] = EventLogRecord.stored(
                AssetKey(path),
                partition=partition or None,
                data_version=version or None,
                description=description or None,
                metadata={k: from_text(types.get(k, "text"), v) for k, v in metadata.items()},
                tags=dict(tags),
                event_id=event_id,
                timestamp=datetime.fromtimestamp(ts / 1e6, tz=UTC),
                source=source,
                host=host,
                run_id=run_id or None,
            )
        return events

    def _query_in(self, sql: str, name: str, values: Collection[str], **params: Any) -> list[tuple[Any, ...]]:
        """``sql`` with the array parameter ``name`` bound to ``values``, a chunk at a time: a query's
        text is bounded in size."""
        ordered = list(values)
        rows: list[tuple[Any, ...]] = []
        for start in range(0, len(ordered), _CHUNK):
            parameters = {"loc": self.location, **params, name: ordered[start : start + _CHUNK]}
            rows += self.warehouse.query(sql, parameters=parameters, settings={"max_query_size": 2_000_000}).rows
        return rows


def cursor_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


@dataclass(frozen=True, slots=True)
class Override:
    """A sensor or schedule switched on or off by hand: since when (microseconds), and by whom."""

    status: InstigatorStatus
    since_us: int
    by: str = ""

    @property
    def running(self) -> bool:
        return self.status == "running"


class InstigatorStates:
    """The overrides of one code location's sensors or schedules, read again once ``every_s`` has passed
    since the last read (``current``): one small query, so that a worker honours a start or a stop within
    about that long without asking ClickHouse on every event."""

    def __init__(self, warehouse: Warehouse, code_location: str, kind: InstigatorKind, every_s: float = 0.5) -> None:
        self.warehouse = warehouse
        self.location = code_location
        self.kind = kind
        self.every_s = every_s
        self._read_at = float("-inf")
        self._states: dict[str, Override] = {}

    def current(self, *, fresh: bool = False) -> dict[str, Override]:
        """name -> its override (a name without one follows its definition's default status)."""
        if fresh or time.monotonic() - self._read_at >= self.every_s:
            self._states = read_instigator_states(self.warehouse, self.location, self.kind)
            self._read_at = time.monotonic()
        return self._states


def read_instigator_states(warehouse: Warehouse, location: str, kind: InstigatorKind) -> dict[str, Override]:
    rows = warehouse.query(
        "SELECT name, toString(status), toUnixTimestamp64Micro(updated_at), updated_by "
        f"FROM {warehouse.database}.instigator_states FINAL WHERE code_location = %(loc)s AND kind = %(kind)s",
        parameters={"loc": location, "kind": kind},
    ).rows
    return {str(name): Override("running" if status == "running" else "stopped", int(at), str(by))
            for name, status, at, by in rows}  # fmt: skip


def write_instigator_state(
    warehouse: Warehouse,
    location: str,
    kind: InstigatorKind,
    name: str,
    status: InstigatorStatus,
    by: str,
    at_us: int,
) -> None:
    """Switch a sensor or schedule on or off by hand: the newest row wins (``ReplacingMergeTree(updated_at)``)."""
    row = (location, kind, name, status, by, at_us)
    warehouse.insert("instigator_states", [[value] for value in row], _STATE_COLUMNS)
