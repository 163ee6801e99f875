"""Partitions definitions: ``StaticPartitionsDefinition`` and the time-window ones (``Daily``, ``Hourly``,
``Weekly``, ``Monthly``), with Dagster's names and key formats.

A partitions definition says which partition keys an asset has: a run of a partitioned asset needs one
of them, and the registry stores the definition (``describe()``) so the catalog can count what is
materialized. Reported events are never checked against it, as in Dagster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from assetpipe.definitions.ops import DefinitionError


class PartitionsDefinition:
    """What every partitions definition offers."""

    def get_partition_keys(self, current_time: datetime | None = None) -> list[str]:
        raise NotImplementedError

    def has_partition_key(self, partition_key: str, current_time: datetime | None = None) -> bool:
        return partition_key in self.get_partition_keys(current_time)

    def validate_key(self, partition_key: str) -> None:
        """Raise ``DefinitionError`` unless ``partition_key`` is one of this definition's keys."""
        if not self.has_partition_key(partition_key):
            raise DefinitionError(f"partition {partition_key!r} is not a partition of {self.describe()['type']}")

    def describe(self) -> dict[str, Any]:
        """The definition as JSON, as the registry stores it."""
        raise NotImplementedError


@dataclass(frozen=True)
class StaticPartitionsDefinition(PartitionsDefinition):
    partition_keys: tuple[str, ...]

    def __init__(self, partition_keys: Sequence[str]) -> None:
        keys = tuple(partition_keys)
        if not all(isinstance(k, str) and k for k in keys):
            raise DefinitionError("StaticPartitionsDefinition: partition keys must be non-empty strings")
        if len(set(keys)) != len(keys):
            duplicates = sorted({k for k in keys if keys.count(k) > 1})
            raise DefinitionError(f"Duplicate instances of partition keys: {duplicates}")
        object.__setattr__(self, "partition_keys", keys)

    def get_partition_keys(self, current_time: datetime | None = None) -> list[str]:
        return list(self.partition_keys)

    def has_partition_key(self, partition_key: str, current_time: datetime | None = None) -> bool:
        return partition_key in self.partition_keys

    def describe(self) -> dict[str, Any]:
        return {"type": "static", "partition_keys": list(self.partition_keys)}


_STEPS = {"hourly": timedelta(hours=1), "daily": timedelta(days=1), "weekly": timedelta(weeks=1)}
_FORMATS = {"hourly": "%Y-%m-%d-%H:%M", "daily": "%Y-%m-%d", "weekly": "%Y-%m-%d", "monthly": "%Y-%m-%d"}


@dataclass(frozen=True)
class TimeWindowPartitionsDefinition(PartitionsDefinition):
    """Partitions of fixed windows from ``start``; a window's key is its start, formatted by ``fmt``. A
    window exists once it has ended (Dagster's default, ``end_offset=0``)."""

    cadence: str
    start: datetime
    end: datetime | None
    timezone: str
    fmt: str
    end_offset: int = 0

    def __post_init__(self) -> None:
        if self.cadence not in (*_STEPS, "monthly"):
            raise DefinitionError(f"unknown partition cadence {self.cadence!r}")

    def _advance(self, moment: datetime, steps: int = 1) -> datetime:
        if self.cadence == "monthly":
            month = moment.month - 1 + steps
            return moment.replace(year=moment.year + month // 12, month=month % 12 + 1)
        return moment + _STEPS[self.cadence] * steps

    def _limit(self, current_time: datetime | None) -> datetime:
        """Windows ending at or before this moment exist."""
        now = (current_time or datetime.now(UTC)).astimezone(ZoneInfo(self.timezone))
        last = now if self.end is None else min(now, self.end)
        return self._advance(last, self.end_offset) if self.end_offset else last

    def get_partition_keys(self, current_time: datetime | None = None) -> list[str]:
        limit = self._limit(current_time)
        keys: list[str] = []
        window = self.start
        while self._advance(window) <= limit:
            keys.append(window.strftime(self.fmt))
            window = self._advance(window)
        return keys

    def has_partition_key(self, partition_key: str, current_time: datetime | None = None) -> bool:
        try:
            moment = datetime.strptime(partition_key, self.fmt).replace(tzinfo=ZoneInfo(self.timezone))
        except ValueError:
            return False
        if moment < self.start or moment.strftime(self.fmt) != partition_key:
            return False
        if self.cadence == "monthly":
            start = self.start
            if (moment.day, moment.hour, moment.minute) != (start.day, start.hour, start.minute):
                return False
        elif (moment - self.start) % _STEPS[self.cadence]:
            return False
        return self._advance(moment) <= self._limit(current_time)

    def describe(self) -> dict[str, Any]:
        return {
            "type": self.cadence,
            "start": self.start.isoformat(),
            "end": None if self.end is None else self.end.isoformat(),
            "timezone": self.timezone,
            "fmt": self.fmt,
            "end_offset": self.end_offset,
        }


def _window_fields(
    cadence: str,
    start_date: str | datetime,
    end_date: str | datetime | None,
    timezone: str | None,
    fmt: str | None,
    end_offset: int,
    **aligned: int,
) -> dict[str, Any]:
    tz = timezone or "UTC"
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise DefinitionError(f"unknown timezone {tz!r}") from exc
    form = fmt or _FORMATS[cadence]

    def moment(value: str | datetime) -> datetime:
        if isinstance(value, datetime):
            return value if value.tzinfo is not None else value.replace(tzinfo=zone)
        for pattern in (form, "%Y-%m-%d", "%Y-%m-%d-%H:%M"):
            try:
                return datetime.strptime(value, pattern).replace(tzinfo=zone)
            except ValueError:
                continue
        raise DefinitionError(f"{cadence} partitions: start/end date {value!r} does not match the format {form!r}")

    start = moment(start_date).replace(**aligned)  # type: ignore[arg-type]
    end = None if end_date is None else moment(end_date)
    return {"cadence": cadence, "start": start, "end": end, "timezone": tz, "fmt": form, "end_offset": end_offset}


class _Cadenced(TimeWindowPartitionsDefinition):
    """A time-window definition of one cadence: Dagster's constructor arguments, each window aligned on the
    start's minute and hour offsets."""

    cadence_name: ClassVar[str] = ""
    aligned_on: ClassVar[dict[str, int]] = {}

    def __init__(
        self,
        start_date: str | datetime,
        end_date: str | datetime | None = None,
        timezone: str | None = None,
        fmt: str | None = None,
        end_offset: int = 0,
        minute_offset: int = 0,
        hour_offset: int = 0,
    ) -> None:
        offsets = {"minute": minute_offset, "hour": hour_offset}
        aligned = {"second": 0, "microsecond": 0, **self.aligned_on}
        aligned.update({k: v for k, v in offsets.items() if k in self.aligned_on})
        fields = _window_fields(self.cadence_name, start_date, end_date, timezone, fmt, end_offset, **aligned)
        super().__init__(**fields)


class DailyPartitionsDefinition(_Cadenced):
    cadence_name, aligned_on = "daily", {"minute": 0, "hour": 0}


class HourlyPartitionsDefinition(_Cadenced):
    cadence_name, aligned_on = "hourly", {"minute": 0}


class WeeklyPartitionsDefinition(_Cadenced):
    cadence_name, aligned_on = "weekly", {}


class MonthlyPartitionsDefinition(_Cadenced):
    cadence_name, aligned_on = "monthly", {"day": 1}
