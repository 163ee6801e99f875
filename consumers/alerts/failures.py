"""Run and tick failures, as the alert worker reads them. The run worker records a failed run only in
``runs``, and the sensor and schedule workers a failed tick only in ``sensor_ticks`` and ``schedule_ticks``:
no topic carries them, so the alert worker reads those tables, at most once a second, for the failures
recorded since a time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from assetpipe.consumers.warehouse import Warehouse

FailureKind = Literal["run", "sensor_tick", "schedule_tick"]

_RUNS = (
    "SELECT toString(run_id), job_name, code_location, trigger_asset_key, asset_selection, error_type, "
    "error_message, toUnixTimestamp64Micro(coalesce(finished_at, updated_at)) FROM {db}.runs FINAL "
    "WHERE status = 'failed' AND coalesce(finished_at, updated_at) >= fromUnixTimestamp64Micro({after:Int64}) "
    "ORDER BY finished_at"
)
_TICKS = (
    "SELECT toString(tick_id), any({name}), any(code_location), any({asset}), any(error), "
    "toUnixTimestamp64Micro(min(evaluated_at)) FROM {db}.{table} "
    "WHERE status = 'failure' AND evaluated_at >= fromUnixTimestamp64Micro({after:Int64}) "
    "GROUP BY tick_id ORDER BY min(evaluated_at)"
)


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed run (``event_id`` its id, ``subject`` its job) or tick (its id, its sensor or schedule)."""

    kind: FailureKind
    event_id: str
    subject: str
    location: str
    asset_keys: tuple[str, ...]
    error: str
    at_us: int


class FailureReader:
    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def since(self, after_us: int) -> list[Failure]:
        """Every failure recorded at or after ``after_us`` (microseconds), oldest first within each kind."""
        db = self.warehouse.database
        params = {"after": after_us}
        found = []
        for run_id, job, location, trigger, selection, error_type, message, at in self.warehouse.query(
            _RUNS.replace("{db}", db), parameters=params
        ).rows:
            keys = tuple(dict.fromkeys(k for k in (trigger, *selection) if k))
            error = f"{error_type}: {message}" if error_type and message else error_type or message
            found.append(Failure("run", run_id, job, location, keys, error, int(at)))
        sources: tuple[tuple[FailureKind, str, str, str], ...] = (
            ("sensor_tick", "sensor_ticks", "sensor_name", "asset_key"),
            ("schedule_tick", "schedule_ticks", "schedule_name", "''"),
        )
        for kind, table, name, asset in sources:
            sql = _TICKS.replace("{db}", db).replace("{table}", table).replace("{name}", name).replace("{asset}", asset)
            for tick_id, instigator, location, key, error, at in self.warehouse.query(sql, parameters=params).rows:
                found.append(Failure(kind, tick_id, instigator, location, (key,) if key else (), error, int(at)))
        return found
