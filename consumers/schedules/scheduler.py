"""The scheduler's timer: sleeps until the next tick of any schedule, evaluates the ticks due, publishes
their run requests and records them, in that order.

Where it resumes. Each schedule's last handled tick is the latest recorded in ``schedule_ticks`` (by any
replica), or the time it began to run when it has none: a schedule seen for the first time starts from
now. At any moment the tick due is the latest at or before now that is later than the last handled one,
so after downtime the most recent missed tick runs once (a ``catch_up`` tick) and the others not at all.

Replicas. Before evaluating, one lookup of the latest recorded tick skips a tick another replica has
recorded. Correctness does not rest on it: two replicas firing the same tick derive the same tick and run
ids, the tick is one row, and the run worker runs each run once.

Started and stopped by hand. Each step reads the overrides (``instigator_states``): a schedule switched
off records no ticks, whatever its ``default_status``; switched on, it resumes from then, without catching
up the time it was off. On the system clock the timer wakes at least every ``STATE_POLL_S`` to notice
either; an injected clock (tests that drive time) is not polled between ticks.

Failures. A schedule function that raises gets a ``failure`` tick; the other schedules carry on. When
the broker or ClickHouse cannot take a tick, nothing is recorded and the tick is retried with backoff
(publishing again is harmless: the ids are the same). The clock is injectable, so tests need not sleep.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from assetpipe.consumers.exceptions import WarehouseUnavailableError
from assetpipe.consumers.schedules.store import ScheduleStore
from assetpipe.consumers.schedules.tick import ScheduleTick, evaluate
from assetpipe.consumers.sensors.store import Override
from assetpipe.definitions.schedules import ScheduleDefinition, to_micros
from assetpipe.producers.exceptions import PublishError

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIRST_BACKOFF_S = 0.5
_MAX_BACKOFF_S = 30.0
_MIN_WAIT_S = 0.001
STATE_POLL_S = 1.0  # the longest the timer sleeps: a schedule switched on or off by hand is noticed by then
# what a tick's publish and record may meet: the tick is retried (the warehouse's other errors are bugs)
_RETRIED = (PublishError, WarehouseUnavailableError)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware."""

    def wait(self, stop: threading.Event, seconds: float | None) -> bool:
        """Wait ``seconds`` (None: until ``stop``); True once ``stop`` is set."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def wait(self, stop: threading.Event, seconds: float | None) -> bool:
        return stop.wait(seconds)


@dataclass(slots=True)
class SchedulerMetrics:
    state: str = "starting"
    schedules: int = 0
    ticks: int = 0
    run_requests: int = 0
    skipped: int = 0
    failures: int = 0
    catch_up: int = 0
    recorded_elsewhere: int = 0
    retries: int = 0
    last_error: str | None = None
    next_ticks: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class Scheduler:
    def __init__(
        self,
        schedules: Sequence[ScheduleDefinition],
        *,
        store: ScheduleStore,
        publish: Callable[[list[dict[str, Any]]], None],
        job_exists: Callable[[str], bool],
        clock: Clock | None = None,
    ) -> None:
        self._poll_s = STATE_POLL_S if clock is None else None
        self.metrics = SchedulerMetrics()
        self.worker_id = uuid.uuid4().hex
        self._all = tuple(schedules)
        self._running = [s for s in self._all if s.running]  # as the overrides say, from the first step
        self._store = store
        self._publish = publish
        self._job_exists = job_exists
        self._clock = clock or SystemClock()
        self._handled: dict[str, int] | None = None  # per schedule: the last tick handled (microseconds)
        self._started_us = 0
        self._backoff = 0.0
        self.metrics.schedules = len(self._running)

    def prepare(self) -> None:
        """Apply the DDL, register the schedules, and find where each resumes."""
        if self._handled is not None:
            return
        self._store.warehouse.migrate()
        now_us = to_micros(self._clock.now())
        since = self._store.register(self._all, now_us)
        latest = self._store.latest_ticks([s.name for s in self._all])
        self._started_us = now_us
        self._handled = {
            s.name: max(since.get(s.name, now_us), latest.get(s.name, since.get(s.name, now_us))) for s in self._all
        }

    def run(self, stop: threading.Event) -> None:
        """Tick until ``stop`` is set."""
        backoff = _FIRST_BACKOFF_S
        while not stop.is_set():
            try:
                self.prepare()
                break
            except WarehouseUnavailableError as exc:
                self.metrics.last_error = str(exc)
                log.warning("scheduler waits for ClickHouse (retried in %.1fs): %s", backoff, exc)
                if self._clock.wait(stop, backoff):
                    return
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
        if not self._all:
            log.warning("no schedules in this code location: the scheduler has nothing to do")
        try:
            while not stop.is_set():
                wake = self.step()
                self.metrics.state = "running"  # after the first step: its next ticks are known, as status shows
                timeout = None if wake is None else max(_MIN_WAIT_S, (wake - self._clock.now()).total_seconds())
                if self._poll_s is not None and self._all:
                    timeout = self._poll_s if timeout is None else min(timeout, self._poll_s)
                if self._clock.wait(stop, timeout):
                    break
        finally:
            self.metrics.state = "stopped"

    def step(self) -> datetime | None:
        """Run the ticks due now; returns when to look again (None: never, as nothing runs)."""
        self.prepare()
        assert self._handled is not None
        try:
            self._apply(self._store.overrides())
        except WarehouseUnavailableError as exc:  # the states read last stay in force until ClickHouse answers
            self.metrics.last_error = str(exc)
        now = self._clock.now()
        due = [
            (tick, s)
            for s in self._running
            if (tick := s.due_tick(_EPOCH + timedelta(microseconds=self._handled[s.name]), now)) is not None
        ]
        retry: datetime | None = None
        if due:
            try:
                self._run_due(sorted(due, key=lambda pair: to_micros(pair[0])))
                self._backoff = 0.0
            except _RETRIED as exc:
                self._backoff = min(self._backoff * 2, _MAX_BACKOFF_S) or _FIRST_BACKOFF_S
                self.metrics.retries += 1
                self.metrics.last_error = str(exc)
                log.warning("a tick could not be published or recorded (retried in %.1fs): %s", self._backoff, exc)
                retry = now + timedelta(seconds=self._backoff)
        upcoming = {s.name: s.next_tick_after(now) for s in self._running}
        self.metrics.next_ticks = {name: tick.isoformat() for name, tick in upcoming.items()}
        wakes = [*upcoming.values(), *([retry] if retry is not None else [])]
        return min(wakes, key=to_micros) if wakes else None

    def _apply(self, overrides: dict[str, Override]) -> None:
        """Which schedules run, the overrides winning over ``default_status``; one switched on by hand has
        handled every tick up to then (it does not catch up the time it was off)."""
        assert self._handled is not None
        running = []
        for schedule in self._all:
            override = overrides.get(schedule.name)
            if override is None:
                if schedule.running:
                    running.append(schedule)
                continue
            if override.running:
                self._handled[schedule.name] = max(self._handled[schedule.name], override.since_us)
                running.append(schedule)
        self._running = running
        self.metrics.schedules = len(running)

    def _run_due(self, due: list[tuple[datetime, ScheduleDefinition]]) -> None:
        assert self._handled is not None
        recorded = self._store.latest_ticks([s.name for _, s in due])
        for scheduled_at, schedule in due:
            scheduled_us = to_micros(scheduled_at)
            elsewhere = recorded.get(schedule.name)
            if elsewhere is not None and elsewhere >= scheduled_us:  # another replica has recorded it
                self._handled[schedule.name] = max(self._handled[schedule.name], elsewhere)
                self.metrics.recorded_elsewhere += 1
                continue
            tick = evaluate(
                schedule,
                scheduled_at,
                code_location=self._store.location,
                catch_up=scheduled_us < self._started_us,
                evaluated_at_us=to_micros(self._clock.now()),
                job_exists=self._job_exists,
            )
            self._publish(tick.records)  # acknowledged before the tick is recorded
            self._store.record(tick, self.worker_id)
            self._handled[schedule.name] = scheduled_us
            self._count(tick)

    def _count(self, tick: ScheduleTick) -> None:
        m = self.metrics
        m.ticks += 1
        m.run_requests += len(tick.records)
        m.skipped += tick.status == "skipped"
        m.failures += tick.status == "failure"
        m.catch_up += tick.catch_up
