"""Schedules: ``ScheduleDefinition`` and ``@schedule``, the ``ScheduleEvaluationContext`` a schedule's
function receives, and when a schedule ticks.

A schedule ticks on a cron expression (or several) read in its ``execution_timezone``, or, as assetpipe's
extension, every ``interval_seconds`` counted from the Unix epoch. Cron times follow Dagster across
daylight-saving changes: a time skipped when clocks go forward runs at the next time that exists; a time
that happens twice when they go back runs once, the second time, unless the expression fires every hour,
which then fires in both hours.

At each tick a plain ``ScheduleDefinition`` requests one run of its job with its ``run_config`` and
``tags``; a decorated function returns a ``RunRequest``, a list of them, a ``SkipReason``, a run config,
or None (one run with the schedule's run config), as in Dagster.
"""

from __future__ import annotations

import enum
import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from assetpipe.definitions.asset_jobs import UnresolvedAssetJobDefinition
from assetpipe.definitions.context import collect_results
from assetpipe.definitions.jobs import JobDefinition, check_name
from assetpipe.definitions.ops import DefinitionError, RunConfig, RunRequest, SkipReason, run_config_dict, run_tags

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


class DefaultScheduleStatus(enum.Enum):
    """RUNNING (the default here, so a definitions file works once loaded) or STOPPED (not evaluated until
    started from the web pages or the API)."""

    RUNNING = "RUNNING"
    STOPPED = "STOPPED"


class ScheduleEvaluationContext:
    """What a schedule function sees: ``scheduled_execution_time`` (in the schedule's timezone), ``log``,
    its name and its code location."""

    def __init__(
        self, *, schedule_name: str, code_location: str, scheduled_execution_time: datetime, log: logging.Logger
    ) -> None:
        self.schedule_name = schedule_name
        self.code_location = code_location
        self.scheduled_execution_time = scheduled_execution_time
        self.log = log


class ScheduleDefinition:
    """A job run on a cron schedule (``cron_schedule``, a string or a list of them) in
    ``execution_timezone`` (an IANA name, default UTC), or every ``interval_seconds``.

    ``name`` defaults to ``<job name>_schedule``. ``execution_fn`` is what ``@schedule`` passes: without it
    each tick requests one run with ``run_config`` and ``tags``.
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        cron_schedule: str | Sequence[str] | None = None,
        job: JobDefinition | UnresolvedAssetJobDefinition | None = None,
        job_name: str | None = None,
        run_config: RunConfig | Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        execution_timezone: str | None = None,
        description: str | None = None,
        default_status: DefaultScheduleStatus = DefaultScheduleStatus.RUNNING,
        interval_seconds: float | None = None,
        execution_fn: Callable[..., Any] | None = None,
    ) -> None:
        if job is not None and job_name is not None:
            raise DefinitionError(f"schedule {name!r}: pass job or job_name, not both")
        if job is not None and not isinstance(job, (JobDefinition, UnresolvedAssetJobDefinition)):
            raise DefinitionError(
                f"schedule {name!r}: job must be a @job or define_asset_job(...), got {type(job).__name__}"
            )
        target = job.name if job is not None else job_name
        if name is None:
            if target is None:
                raise DefinitionError("a schedule needs a name, or a job to name it after")
            name = f"{target}_schedule"
        self.name = check_name("schedule", name)
        self.job = job
        self.job_name = target
        self.run_config = run_config_dict(run_config)
        self.tags = run_tags(tags)
        self.description = description
        if not isinstance(default_status, DefaultScheduleStatus):
            raise DefinitionError(f"schedule {name!r}: default_status must be a DefaultScheduleStatus")
        self.default_status = default_status
        self.execution_timezone = execution_timezone or "UTC"
        self.timezone = _zone(self.name, self.execution_timezone)
        self.cron_schedules = _crons(self.name, cron_schedule, interval_seconds)
        self.cron_schedule = cron_schedule if isinstance(cron_schedule, str) else self.cron_schedules or None
        self.interval_seconds = interval_seconds
        self._interval_us = 0 if interval_seconds is None else _interval_us(self.name, interval_seconds)
        self.execution_fn = execution_fn
        self._arity = 0 if execution_fn is None else _arity(self.name, execution_fn)
        self._every_hour = [_fires_every_hour(expr) for expr in self.cron_schedules]
        try:
            self.next_tick_after(datetime.now(UTC))
        except CroniterError as exc:  # a valid expression that never fires, such as "0 0 30 2 *"
            raise DefinitionError(f"schedule {self.name!r}: cron_schedule never fires: {exc}") from exc

    def __repr__(self) -> str:
        cadence = f"interval_seconds={self.interval_seconds}" if self._interval_us else f"cron={self.cron_schedule!r}"
        return f"ScheduleDefinition({self.name!r}, {cadence}, job={self.job_name!r})"

    @property
    def running(self) -> bool:
        return self.default_status is DefaultScheduleStatus.RUNNING

    # -- when it ticks ----------------------------------------------------------------------------
    def next_tick_after(self, moment: datetime) -> datetime:
        """The first tick strictly after ``moment`` (a timezone-aware datetime), in the execution timezone."""
        moment = _aware(moment)
        if self._interval_us:
            return self._from_us((_us(moment) // self._interval_us + 1) * self._interval_us)
        local = moment.astimezone(self.timezone)
        return min((self._cron_next(expr, every, local) for expr, every in self._crons()), key=_us)

    def latest_tick_at_or_before(self, moment: datetime) -> datetime:
        """The last tick at or before ``moment``, in the execution timezone."""
        moment = _aware(moment)
        if self._interval_us:
            return self._from_us(_us(moment) // self._interval_us * self._interval_us)
        # croniter's previous time is strictly before its start; the microsecond is added in UTC, as
        # arithmetic on local times loses which of two repeated wall-clock hours a time is in
        local = (moment.astimezone(UTC) + _MICRO).astimezone(self.timezone)
        return max((self._cron_prev(expr, every, local) for expr, every in self._crons()), key=_us)

    def due_tick(self, handled: datetime, now: datetime) -> datetime | None:
        """The tick to run at ``now`` when every tick up to ``handled`` was run (or is not to be): the
        latest tick at or before ``now``, if it is later than ``handled``. Ticks missed before it are not
        run: after a pause, only the most recent runs, once."""
        tick = self.latest_tick_at_or_before(now)
        return tick if _us(tick) > to_micros(handled) else None  # compared as instants, not wall times

    def _crons(self) -> list[tuple[str, bool]]:
        return list(zip(self.cron_schedules, self._every_hour, strict=True))

    def _cron_next(self, expr: str, every_hour: bool, local: datetime) -> datetime:
        it = croniter(expr, local)
        while True:
            tick: datetime = it.get_next(datetime)
            if every_hour or not self._first_of_two(tick):
                return tick

    def _cron_prev(self, expr: str, every_hour: bool, local: datetime) -> datetime:
        it = croniter(expr, local)
        while True:
            tick: datetime = it.get_prev(datetime)
            if every_hour or not self._first_of_two(tick):
                return tick

    def _first_of_two(self, tick: datetime) -> bool:
        """Whether ``tick``'s wall-clock time happens twice (clocks went back) and this is the first time."""
        wall = tick.replace(tzinfo=None)
        first, second = wall.replace(tzinfo=self.timezone, fold=0), wall.replace(tzinfo=self.timezone, fold=1)
        if first.utcoffset() == second.utcoffset() or tick.utcoffset() != first.utcoffset():
            return False
        # a wall time skipped when clocks go forward also has two offsets, but exists at neither
        return first.astimezone(UTC).astimezone(self.timezone).replace(tzinfo=None) == wall

    def _from_us(self, micros: int) -> datetime:
        return (_EPOCH + timedelta(microseconds=micros)).astimezone(self.timezone)

    # -- what it requests -------------------------------------------------------------------------
    def evaluate(self, context: ScheduleEvaluationContext) -> tuple[list[RunRequest], SkipReason | None]:
        """Call the function (if any) and read what it returned: (run requests, skip reason)."""
        if self.execution_fn is None:
            return [self._default_request()], None
        value = self.execution_fn(*(context,)[: self._arity])
        if value is None:
            return [self._default_request()], None
        if isinstance(value, (RunConfig, Mapping)):
            return [RunRequest(run_config=value, tags=self.tags)], None
        return collect_results(self.name, value, kind="schedule")

    def _default_request(self) -> RunRequest:
        return RunRequest(run_config=self.run_config, tags=self.tags)


def schedule(
    cron_schedule: str | Sequence[str] | None = None,
    *,
    job: JobDefinition | UnresolvedAssetJobDefinition | None = None,
    job_name: str | None = None,
    name: str | None = None,
    run_config: RunConfig | Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    execution_timezone: str | None = None,
    description: str | None = None,
    default_status: DefaultScheduleStatus = DefaultScheduleStatus.RUNNING,
    interval_seconds: float | None = None,
) -> Callable[[Callable[..., Any]], ScheduleDefinition]:
    """``@schedule(cron_schedule="0 9 * * *", job=my_job, execution_timezone="Europe/Paris")`` on a function
    taking a ``ScheduleEvaluationContext`` (or nothing). It is named after the function unless ``name``."""

    def make(fn: Callable[..., Any]) -> ScheduleDefinition:
        return ScheduleDefinition(
            name or fn.__name__,
            cron_schedule=cron_schedule,
            job=job,
            job_name=job_name,
            run_config=run_config,
            tags=tags,
            execution_timezone=execution_timezone,
            description=description or inspect.getdoc(fn),
            default_status=default_status,
            interval_seconds=interval_seconds,
            execution_fn=fn,
        )

    return make


def _zone(name: str, timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise DefinitionError(
            f"schedule {name!r}: execution_timezone {timezone!r} is not an IANA time zone (e.g. 'Europe/Paris')"
        ) from exc


def _crons(name: str, cron_schedule: str | Sequence[str] | None, interval_seconds: float | None) -> tuple[str, ...]:
    if (cron_schedule is None) == (interval_seconds is None):
        raise DefinitionError(f"schedule {name!r}: pass cron_schedule or interval_seconds (one of them)")
    if cron_schedule is None:
        return ()
    exprs = [cron_schedule] if isinstance(cron_schedule, str) else list(cron_schedule)
    if not exprs:
        raise DefinitionError(f"schedule {name!r}: cron_schedule is an empty list")
    for expr in exprs:
        if not isinstance(expr, str) or not croniter.is_valid(expr) or len(croniter.expand(expr)[0]) != 5:
            raise DefinitionError(
                f"schedule {name!r}: {expr!r} is not a valid cron string: five fields (minute hour day month "
                "weekday) such as '0 9 * * 1-5', or @hourly, @daily, @weekly, @monthly, @yearly"
            )
    return tuple(exprs)


def _interval_us(name: str, seconds: float) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise DefinitionError(f"schedule {name!r}: interval_seconds must be a positive number, got {seconds!r}")
    micros = round(seconds * 1_000_000)
    if micros < 1000:
        raise DefinitionError(f"schedule {name!r}: interval_seconds must be at least 0.001, got {seconds!r}")
    return micros


def _fires_every_hour(expr: str) -> bool:
    hours = croniter.expand(expr)[0][1]
    return hours == ["*"]


def _arity(name: str, fn: Callable[..., Any]) -> int:
    params = [
        p for p in inspect.signature(fn).parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(params) > 1:
        raise DefinitionError(f"schedule {name!r}: its function must take a context or nothing")
    return len(params)


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise DefinitionError(f"a schedule's times are timezone-aware datetimes, got {moment!r}")
    return moment


def _us(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def to_micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch of a timezone-aware datetime."""
    return _us(_aware(moment))
