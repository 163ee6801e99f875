"""What the scheduler keeps in ClickHouse, per code location: the registered schedules (``schedules``),
their ticks (``schedule_ticks``, whose run requests views turn into ``run_requests`` and queued ``runs``),
the latest recorded tick of each schedule, which is where a restarted scheduler resumes, and the
schedules switched on or off by hand (``instigator_states``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from assetpipe.consumers.schedules.tick import TICK_COLUMNS, ScheduleTick
from assetpipe.consumers.sensors.store import Override, read_instigator_states
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.definitions.schedules import ScheduleDefinition

_SCHEDULE_COLUMNS = (
    "code_location", "schedule_name", "cron_schedules", "interval_seconds", "execution_timezone", "job_name",
    "status", "tags", "description", "registered_at", "running_since", "updated_at",
)  # fmt: skip


class ScheduleStore:
    def __init__(self, warehouse: Warehouse, code_location: str) -> None:
        self.warehouse = warehouse
        self.location = code_location
        self._db = warehouse.database

    def register(self, schedules: Sequence[ScheduleDefinition], now_us: int) -> dict[str, int]:
        """Record the schedules; returns, for each running one, since when it runs (microseconds): when
        it was first seen running, kept across restarts while it stays running."""
        known = {
            str(name): (int(first), str(status), None if since is None else int(since))
            for name, first, status, since in self.warehouse.query(
                "SELECT schedule_name, toUnixTimestamp64Micro(min(registered_at)), argMax(status, updated_at), "
                f"toUnixTimestamp64Micro(argMax(running_since, updated_at)) FROM {self._db}.schedules "
                "WHERE code_location = %(loc)s GROUP BY schedule_name",
                parameters={"loc": self.location},
            ).rows
        }
        since: dict[str, int] = {}
        rows = []
        for s in schedules:
            first, status, running_since = known.get(s.name, (now_us, "", None))
            if s.running:
                still = status == "running" and running_since is not None
                since[s.name] = running_since if still and running_since is not None else now_us
            rows.append(
                (
                    self.location,
                    s.name,
                    list(s.cron_schedules),
                    s.interval_seconds,
                    s.execution_timezone,
                    s.job_name or "",
                    "running" if s.running else "stopped",
                    dict(s.tags),
                    s.description or "",
                    first,
                    since.get(s.name),
                    now_us,
                )
            )
        if rows:
            self.warehouse.insert("schedules", [list(c) for c in zip(*rows, strict=True)], _SCHEDULE_COLUMNS)
        return since

    def latest_ticks(self, schedule_names: Collection[str]) -> dict[str, int]:
        """The latest scheduled time recorded for each of these schedules (microseconds), by any replica."""
        if not schedule_names:
            return {}
        rows = self.warehouse.query(
            f"SELECT schedule_name, toUnixTimestamp64Micro(max(scheduled_at)) FROM {self._db}.schedule_ticks "
            "WHERE code_location = %(loc)s AND has(%(names)s, schedule_name) GROUP BY schedule_name",
            parameters={"loc": self.location, "names": list(schedule_names)},
        ).rows
        return {str(name): int(latest) for name, latest in rows}

    def overrides(self) -> dict[str, Override]:
        """Schedule name -> its state set by hand (start or stop), for those that have one."""
        return read_instigator_states(self.warehouse, self.location, "schedule")

    def record(self, tick: ScheduleTick, worker_id: str) -> None:
        """Insert the tick, deduplicated by its id: written again (a retry, another replica) it stays one
        row, and its runs are queued once."""
        row = tick.row(worker_id)
        self.warehouse.insert("schedule_ticks", [[value] for value in row], TICK_COLUMNS, dedup_token=tick.tick_id)
