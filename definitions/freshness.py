"""Freshness policies with Dagster's names (``FreshnessPolicy.time_window``, ``FreshnessPolicy.cron``), their
JSON form as the registry stores it, and ``evaluate_freshness``: the pure decision, at one instant, of an
asset's freshness state from the time it was last updated.

Dagster's rules, in microseconds: a time-window policy is FAIL once the last update is ``fail_window`` old
or older, WARN once it is ``warn_window`` old, else PASS; a cron policy is PASS when the asset was updated at
or after ``deadline - lower_bound_delta`` for the latest deadline passed (a tick at the instant itself has
passed), else FAIL; both are UNKNOWN for an asset never updated. Unlike Dagster, windows below one minute
are allowed. Cron deadlines tick as schedules tick (``definitions.schedules``), daylight-saving changes
included. ``next_change_us`` is the first instant at which the state changes if no update arrives: the
evaluator arms its timer there.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from assetpipe.definitions.ops import DefinitionError
from assetpipe.definitions.results import AssetCheckSeverity
from assetpipe.schemas.metadata import MetadataValue

if TYPE_CHECKING:
    from assetpipe.definitions.schedules import ScheduleDefinition

FreshnessState = Literal["PASS", "WARN", "FAIL", "UNKNOWN"]
FRESHNESS_CHECK_NAME = "freshness"

LAST_UPDATED = "dagster/last_updated_timestamp"
FRESH_UNTIL = "dagster/fresh_until_timestamp"
OVERDUE_SECONDS = "dagster/overdue_seconds"
OVERDUE_DEADLINE = "dagster/overdue_deadline_timestamp"
FRESHNESS_PARAMS = "dagster/freshness_params"
LOWER_BOUND = "dagster/freshness_lower_bound_timestamp"
LATEST_CRON_TICK = "dagster/latest_cron_tick_timestamp"
STATE = "freshness_state"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SAMPLE_START = datetime(2000, 1, 1, tzinfo=UTC)  # a leap year, then three that are not
_SAMPLED_TICKS = 1000
_MAX_TICKS = 1000  # ticks looked at for the next deadline that fails: two suffice unless clocks change


class FreshnessPolicy:
    """How fresh an asset is expected to be: ``FreshnessPolicy.time_window(...)`` or ``.cron(...)``."""

    @staticmethod
    def time_window(fail_window: timedelta, warn_window: timedelta | None = None) -> TimeWindowFreshnessPolicy:
        """FAIL once the last update is ``fail_window`` old, WARN once it is ``warn_window`` old."""
        return TimeWindowFreshnessPolicy(fail_window, warn_window)

    @staticmethod
    def cron(deadline_cron: str, lower_bound_delta: timedelta, timezone: str = "UTC") -> CronFreshnessPolicy:
        """At each tick of ``deadline_cron`` the asset must have been updated within ``lower_bound_delta``
        before it."""
        return CronFreshnessPolicy(deadline_cron, lower_bound_delta, timezone)

    def to_json(self) -> dict[str, Any]:
        """The JSON form, the same as specs registered over HTTP or from a file take."""
        raise NotImplementedError

    def to_json_text(self) -> str:
        """The canonical JSON text (keys sorted, no spaces): what ``asset_definitions.freshness_policy`` holds."""
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))

    @staticmethod
    def from_json(value: Mapping[str, Any] | str) -> TimeWindowFreshnessPolicy | CronFreshnessPolicy:
        """A policy from its JSON form (an object or its text); ``DefinitionError`` names the field."""
        data = json.loads(value) if isinstance(value, str) else value
        if not isinstance(data, Mapping):
            raise DefinitionError("freshness_policy must be an object with a 'type': 'time_window' or 'cron'")
        kind = data.get("type")
        fields = _JSON_FIELDS.get(kind) if isinstance(kind, str) else None
        if fields is None:
            raise DefinitionError(f"freshness_policy.type must be 'time_window' or 'cron', got {kind!r}")
        unknown = sorted(str(k) for k in data if k != "type" and k not in fields)
        if unknown:
            raise DefinitionError(
                f"freshness_policy has unknown field{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}: "
                f"a {kind} policy has {', '.join(fields)}"
            )
        if kind == "time_window":
            warn = data.get("warn_window_seconds")
            return TimeWindowFreshnessPolicy(
                _seconds(data, "fail_window_seconds"),
                None if warn is None else _seconds(data, "warn_window_seconds"),
            )
        timezone = data.get("timezone", "UTC")
        if not isinstance(timezone, str):
            raise DefinitionError(f"freshness_policy.timezone must be a string, got {timezone!r}")
        cron = data.get("deadline_cron")
        if cron is None:
            raise DefinitionError("freshness_policy.deadline_cron is required")
        if not isinstance(cron, str):
            raise DefinitionError(f"freshness_policy.deadline_cron must be a string, got {cron!r}")
        return CronFreshnessPolicy(cron, _seconds(data, "lower_bound_delta_seconds"), timezone)


_JSON_FIELDS = {
    "time_window": ("fail_window_seconds", "warn_window_seconds"),
    "cron": ("deadline_cron", "lower_bound_delta_seconds", "timezone"),
}


@dataclass(frozen=True, slots=True)
class TimeWindowFreshnessPolicy(FreshnessPolicy):
    fail_window: timedelta
    warn_window: timedelta | None = None

    def __post_init__(self) -> None:
        _positive(self.fail_window, "fail_window")
        if self.warn_window is not None:
            _positive(self.warn_window, "warn_window")
            if not self.warn_window < self.fail_window:
                raise DefinitionError("warn_window must be less than fail_window")

    def to_json(self) -> dict[str, Any]:
        warn = None if self.warn_window is None else _json_seconds(self.warn_window)
        return {
            "type": "time_window",
            "fail_window_seconds": _json_seconds(self.fail_window),
            "warn_window_seconds": warn,
        }


@dataclass(frozen=True, slots=True)
class CronFreshnessPolicy(FreshnessPolicy):
    deadline_cron: str
    lower_bound_delta: timedelta
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        check_deadlines(self.deadline_cron, self.timezone)
        _positive(self.lower_bound_delta, "lower_bound_delta")
        smallest = smallest_cron_interval(self.deadline_cron)
        if self.lower_bound_delta > smallest:
            raise DefinitionError(
                f"lower_bound_delta must be less than or equal to the smallest cron interval of "
                f"({smallest.total_seconds()} seconds for deadline_cron {self.deadline_cron}). Provided "
                f"lower_bound_delta is {self.lower_bound_delta.total_seconds()} seconds"
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "cron",
            "deadline_cron": self.deadline_cron,
            "lower_bound_delta_seconds": _json_seconds(self.lower_bound_delta),
            "timezone": self.timezone,
        }


@dataclass(frozen=True, slots=True)
class FreshnessResult:
    """One evaluation: the state, the metadata and description of its ``AssetCheckEvaluation`` (check name
    ``freshness``), and when the state changes if nothing new arrives (None: only an update changes it)."""

    state: FreshnessState
    metadata: dict[str, MetadataValue]
    description: str
    next_change_us: int | None

    @property
    def passed(self) -> bool:
        return self.state == "PASS"

    @property
    def severity(self) -> AssetCheckSeverity:
        """ERROR for FAIL; WARN otherwise (WARN, and UNKNOWN should the evaluator record it)."""
        return AssetCheckSeverity.ERROR if self.state == "FAIL" else AssetCheckSeverity.WARN


def evaluate_freshness(policy: FreshnessPolicy, last_updated_us: int | None, now_us: int) -> FreshnessResult:
    """The state of an asset last updated at ``last_updated_us`` (None: never), at ``now_us``."""
    metadata: dict[str, MetadataValue] = {FRESHNESS_PARAMS: MetadataValue.json(policy.to_json())}
    if last_updated_us is None:
        metadata[STATE] = MetadataValue.text("UNKNOWN")
        return FreshnessResult("UNKNOWN", metadata, "Asset has never been observed/materialized.", None)
    metadata[LAST_UPDATED] = timestamp(last_updated_us)
    if isinstance(policy, TimeWindowFreshnessPolicy):
        return _time_window(policy, last_updated_us, now_us, metadata)
    if isinstance(policy, CronFreshnessPolicy):
        return _cron(policy, last_updated_us, now_us, metadata)
    raise DefinitionError(f"not a freshness policy: {policy!r}")


def _time_window(
    policy: TimeWindowFreshnessPolicy, last: int, now: int, metadata: dict[str, MetadataValue]
) -> FreshnessResult:
    fail, warn = micros(policy.fail_window), None if policy.warn_window is None else micros(policy.warn_window)
    return window_result(now - last, now, fail, warn, metadata, "the last update was {age} ago")


def window_result(
    age: int, now: int, fail: int, warn: int | None, metadata: dict[str, MetadataValue], what: str
) -> FreshnessResult:
    """The time-window rule for something ``age`` old at ``now`` (its clock started at ``now - age``);
    ``what`` says what is that old, with ``{age}`` in it."""
    start, said = now - age, what.format(age=in_words(age))
    if age >= fail:
        state: FreshnessState = "FAIL"
        description = f"Asset is overdue: {said}, past the fail window of {in_words(fail)}."
        deadline, change = start + fail, None
    elif warn is not None and age >= warn:
        state = "WARN"
        description = (
            f"Asset is late: {said}, past the warn window of {in_words(warn)} (it fails once {in_words(fail)} old)."
        )
        deadline, change = start + warn, start + fail
    else:
        state = "PASS"
        window = fail if warn is None else warn
        description = f"Asset is fresh: {said}, within the window of {in_words(window)}."
        deadline, change = None, start + window
    return result_of(state, metadata, description, change, now, deadline)


def _cron(policy: CronFreshnessPolicy, last: int, now: int, metadata: dict[str, MetadataValue]) -> FreshnessResult:
    ticks = deadlines(policy.deadline_cron, policy.timezone)
    lower_bound = micros(policy.lower_bound_delta)
    tick = latest_tick(ticks, now)
    metadata[LATEST_CRON_TICK] = timestamp(tick)
    metadata[LOWER_BOUND] = timestamp(tick - lower_bound)
    if last >= tick - lower_bound:
        change = next_tick_where(ticks, now, lambda t: last < t - lower_bound)
        description = (
            f"Asset is fresh: updated {in_words(now - last)} ago, no earlier than {in_words(lower_bound)} before "
            f"the deadline of {_iso(tick, policy.timezone)}."
        )
        return result_of("PASS", metadata, description, change, now, None)
    description = (
        f"Asset is overdue: the deadline of {_iso(tick, policy.timezone)} passed {in_words(now - tick)} ago "
        f"without an update in the {in_words(lower_bound)} before it; the last update was {in_words(now - last)} ago."
    )
    return result_of("FAIL", metadata, description, None, now, tick)


def result_of(
    state: FreshnessState,
    metadata: dict[str, MetadataValue],
    description: str,
    change: int | None,
    now: int,
    deadline: int | None,
) -> FreshnessResult:
    """The result in ``state``, its metadata completed: when a PASS ends, and by how much a WARN or FAIL is
    past its ``deadline``."""
    metadata[STATE] = MetadataValue.text(state)
    if state == "PASS" and change is not None:
        metadata[FRESH_UNTIL] = timestamp(change)
    if deadline is not None:
        metadata[OVERDUE_DEADLINE] = timestamp(deadline)
        metadata[OVERDUE_SECONDS] = MetadataValue.float((now - deadline) / 1_000_000)
    return FreshnessResult(state, metadata, description, change)


# -- cron deadlines ------------------------------------------------------------------------------------


def check_deadlines(deadline_cron: Any, timezone: Any) -> None:
    """``DefinitionError`` with Dagster's message unless ``timezone`` is an IANA zone and ``deadline_cron`` a
    cron string as schedules take it."""
    if not isinstance(timezone, str):
        raise DefinitionError(f"Invalid IANA timezone: {timezone}")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise DefinitionError(f"Invalid IANA timezone: {timezone}") from exc
    if not isinstance(deadline_cron, str):
        raise DefinitionError(f"Invalid cron string. deadline_cron must be a string, got {deadline_cron!r}")
    deadlines(deadline_cron, timezone)


@functools.lru_cache(maxsize=1024)
def deadlines(deadline_cron: str, timezone: str = "UTC") -> ScheduleDefinition:
    """The ticks of ``deadline_cron`` in ``timezone``, as a schedule's: one per (expression, zone), shared."""
    from assetpipe.definitions.schedules import ScheduleDefinition  # schedules import assets, which import us

    if isinstance(deadline_cron, str):
        try:
            return ScheduleDefinition(
                "freshness_deadline", cron_schedule=deadline_cron, job_name="freshness", execution_timezone=timezone
            )
        except DefinitionError:
            pass
    raise DefinitionError(
        f"Invalid cron string. deadline_cron {deadline_cron!r} must have five fields (minute hour day month weekday), "
        "such as '0 9 * * *', or be @hourly, @daily, @weekly, @monthly or @yearly, and must fire"
    )


@functools.lru_cache(maxsize=1024)
def smallest_cron_interval(deadline_cron: str) -> timedelta:
    """The shortest time between two consecutive ticks of ``deadline_cron`` in UTC, as Dagster samples it
    (1,000 ticks), from a fixed start so that the answer never depends on the day it is asked."""
    from croniter import croniter

    it = croniter(deadline_cron, _SAMPLE_START)
    previous: datetime = it.get_next(datetime)
    smallest: timedelta | None = None
    for _ in range(_SAMPLED_TICKS):
        tick: datetime = it.get_next(datetime)
        gap = tick - previous
        smallest = gap if smallest is None else min(smallest, gap)
        previous = tick
    assert smallest is not None
    return smallest


def latest_tick(ticks: ScheduleDefinition, now_us: int) -> int:
    """The latest tick at or before ``now_us``."""
    from assetpipe.definitions.schedules import to_micros

    return to_micros(ticks.latest_tick_at_or_before(moment(now_us)))


def next_tick_where(ticks: ScheduleDefinition, now_us: int, fails: Callable[[int], bool]) -> int | None:
    """The first tick after ``now_us`` at which ``fails(tick_us)`` holds."""
    from assetpipe.definitions.schedules import to_micros

    tick = moment(now_us)
    for _ in range(_MAX_TICKS):
        tick = ticks.next_tick_after(tick)
        tick_us = to_micros(tick)
        if fails(tick_us):
            return tick_us
    return None


# -- small things --------------------------------------------------------------------------------------


def micros(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def moment(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def timestamp(us: int) -> MetadataValue:
    return MetadataValue.timestamp(us / 1_000_000)


def _iso(us: int, timezone: str) -> str:
    return moment(us).astimezone(ZoneInfo(timezone)).isoformat()


def in_words(us: int) -> str:
    """A duration as Dagster writes one ("1 day, 2 hours, 3 minutes, 4 seconds"), with milliseconds kept
    when under a minute."""
    if us < 0:
        return f"-{in_words(-us)}"
    seconds = us / 1_000_000
    days, rest = divmod(int(seconds), 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, whole = divmod(rest, 60)
    units = ((days, "day"), (hours, "hour"), (minutes, "minute"))
    parts = [f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in units if n]
    if days or hours or minutes:
        if whole:
            parts.append(f"{whole} second{'s' if whole != 1 else ''}")
    else:
        exact = round(seconds, 3)
        parts.append(f"{exact:g} second{'s' if exact != 1 else ''}")
    return ", ".join(parts)


def _positive(value: Any, name: str) -> None:
    if not isinstance(value, timedelta):
        raise DefinitionError(f"{name} must be a timedelta, got {type(value).__name__}")
    if value <= timedelta(0):
        raise DefinitionError(f"{name} must be positive, was {value.total_seconds()} seconds")


def _seconds(data: Mapping[str, Any], name: str) -> timedelta:
    if name not in data:
        raise DefinitionError(f"freshness_policy.{name} is required")
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DefinitionError(f"freshness_policy.{name} must be a number of seconds, got {value!r}")
    try:
        return timedelta(seconds=value)
    except (OverflowError, ValueError) as exc:
        raise DefinitionError(f"freshness_policy.{name} is out of range: {value!r}") from exc


def _json_seconds(delta: timedelta) -> int | float:
    us = micros(delta)
    return us // 1_000_000 if us % 1_000_000 == 0 else us / 1_000_000
