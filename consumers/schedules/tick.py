"""Ticks: one schedule evaluated for one scheduled time, what came of it as wire records ready to publish
on ``run_requests``, and its ``schedule_ticks`` row.

Ids are derived from (code location, schedule, scheduled time), so replicas that fire the same tick write
the same row and request the same runs, which the run worker runs once. The user's function may raise:
the tick is then a ``failure`` with the traceback, and requests nothing.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from assetpipe.consumers.sensors.run_keys import run_request_record
from assetpipe.consumers.sensors.ticks import request_arrays
from assetpipe.definitions.ops import DefinitionError
from assetpipe.definitions.schedules import ScheduleDefinition, ScheduleEvaluationContext, to_micros
from assetpipe.schemas.run_request import schedule_run_id_for, schedule_tick_id_for

log = logging.getLogger(__name__)

TICK_COLUMNS = (
    "tick_id", "code_location", "schedule_name", "status", "scheduled_at", "execution_timezone", "catch_up",
    "run_ids", "run_keys", "job_names", "run_configs", "run_tags", "partition_keys", "skip_reason", "error",
    "traceback", "worker_id", "evaluated_at", "duration_ms",
)  # fmt: skip
SCHEDULE_TAG = "dagster/schedule_name"
SCHEDULED_TIME_TAG = "dagster/scheduled_execution_time"


@dataclass(slots=True)
class ScheduleTick:
    schedule: ScheduleDefinition
    scheduled_at: datetime  # in the schedule's time zone
    code_location: str
    catch_up: bool  # missed while no scheduler ran, and run once at start
    evaluated_at_us: int
    records: list[dict[str, Any]] = field(default_factory=list)
    skip_reason: str | None = None
    error: str | None = None
    traceback: str | None = None
    duration_ms: float = 0.0

    @property
    def scheduled_us(self) -> int:
        return to_micros(self.scheduled_at)

    @property
    def tick_id(self) -> str:
        return schedule_tick_id_for(self.code_location, self.schedule.name, self.scheduled_us)

    @property
    def status(self) -> str:
        if self.error is not None:
            return "failure"
        return "success" if self.records else "skipped"

    def row(self, worker_id: str) -> tuple[Any, ...]:
        """The ``schedule_ticks`` row, in ``TICK_COLUMNS`` order."""
        records = self.records
        return (
            self.tick_id,
            self.code_location,
            self.schedule.name,
            self.status,
            self.scheduled_us,
            self.schedule.execution_timezone,
            self.catch_up,
            *request_arrays(records),
            self.skip_reason or "",
            self.error or "",
            self.traceback or "",
            worker_id,
            self.evaluated_at_us,
            self.duration_ms,
        )


def evaluate(
    schedule: ScheduleDefinition,
    scheduled_at: datetime,
    *,
    code_location: str,
    catch_up: bool,
    evaluated_at_us: int,
    job_exists: Callable[[str], bool],
) -> ScheduleTick:
    """Evaluate ``schedule`` for ``scheduled_at``: the tick, with its requests as wire records. A request
    for a job that ``job_exists`` denies fails the tick (nothing is requested)."""
    tick = ScheduleTick(schedule, scheduled_at, code_location, catch_up, evaluated_at_us)
    context = ScheduleEvaluationContext(
        schedule_name=schedule.name,
        code_location=code_location,
        scheduled_execution_time=scheduled_at,
        log=logging.getLogger(f"assetpipe.schedule.{schedule.name}"),
    )
    started = time.perf_counter()
    try:
        requests, skip = schedule.evaluate(context)
        records = []
        system_tags = {SCHEDULE_TAG: schedule.name, SCHEDULED_TIME_TAG: scheduled_at.isoformat()}
        for index, request in enumerate(requests):
            job_name = request.job_name or schedule.job_name
            if job_name is None:
                raise DefinitionError(
                    f"schedule {schedule.name!r} targets no job: pass job= or RunRequest(job_name=...)"
                )
            if not job_exists(job_name):
                raise DefinitionError(
                    f"job {job_name!r} is not defined in code location {code_location!r} "
                    "(and no ASSETPIPE_RUN_WEBHOOK_URL is set to run it elsewhere)"
                )
            record = run_request_record(
                request,
                run_id=schedule_run_id_for(code_location, schedule.name, tick.scheduled_us, request.run_key, index),
                job_name=job_name,
                code_location=code_location,
                tick_id=tick.tick_id,
                requested_at_us=evaluated_at_us,
            )
            record["tags"].update(system_tags)
            records.append(record)
        tick.records = records
        tick.skip_reason = None if skip is None else skip.skip_message or ""
    except Exception as exc:  # user code: any error becomes a failure tick
        tick.error = f"{type(exc).__name__}: {exc}"
        tick.traceback = traceback.format_exc()
        log.warning("schedule %s failed for %s: %s", schedule.name, scheduled_at.isoformat(), tick.error)
    tick.duration_ms = (time.perf_counter() - started) * 1000
    return tick
