"""The freshness of a time-partitioned asset, judged by its latest expected partition.

A partition is expected once its window exists by the definition's own rule (``get_partition_keys``: its
window has ended, or with ``end_offset`` the windows ahead of it). The asset is updated up to the newest
partition materialized (by window, not by when); the partitions before it may have gaps. Then:

- **time window**: PASS while the latest expected partition is materialized. Otherwise the clock starts
  when the first partition after the newest materialized one became expected: WARN once that is
  ``warn_window`` ago, FAIL once it is ``fail_window`` ago. A new partition becoming expected never makes
  a late asset look fresh again; only materializing makes it PASS.
- **cron**: at each deadline the partition expected at that deadline must be materialized (whenever it
  was: a partition is known by its key, so ``lower_bound_delta`` does not apply); between deadlines the state
  is that of the latest passed one, and materializing that partition makes it PASS at once.
- UNKNOWN while no partition was ever materialized. An asset with static partitions, or none, is judged
  by its latest update of any partition (``evaluate_freshness``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from assetpipe.definitions.freshness import (
    FRESHNESS_PARAMS,
    LAST_UPDATED,
    LATEST_CRON_TICK,
    STATE,
    CronFreshnessPolicy,
    FreshnessPolicy,
    FreshnessResult,
    TimeWindowFreshnessPolicy,
    deadlines,
    evaluate_freshness,
    in_words,
    latest_tick,
    micros,
    moment,
    next_tick_where,
    result_of,
    timestamp,
    window_result,
)
from assetpipe.definitions.ops import DefinitionError
from assetpipe.definitions.partitions import (
    PartitionsDefinition,
    StaticPartitionsDefinition,
    TimeWindowPartitionsDefinition,
)
from assetpipe.schemas.metadata import MetadataValue

EXPECTED_PARTITION = "expected_partition"
NEWEST_PARTITION = "newest_partition"
_STEPS = {"hourly": timedelta(hours=1), "daily": timedelta(days=1), "weekly": timedelta(weeks=1)}
_SEARCH_US = 2 * 3_600_000_000  # around a wall time: wider than any clock change


def evaluate_partition_freshness(
    policy: FreshnessPolicy,
    partitions_def: PartitionsDefinition | None,
    newest_partition: str | None,
    last_updated_us: int | None,
    now_us: int,
) -> FreshnessResult:
    """The state of a partitioned asset at ``now_us``: ``newest_partition`` is its newest partition
    materialized (``newest_partition()`` picks it; None: none), ``last_updated_us`` when that partition
    was, or for static partitions when any was."""
    if not isinstance(partitions_def, TimeWindowPartitionsDefinition):
        return evaluate_freshness(policy, last_updated_us, now_us)
    windows = _Windows(partitions_def)
    newest = None if newest_partition is None else windows.index(newest_partition)
    metadata: dict[str, MetadataValue] = {FRESHNESS_PARAMS: MetadataValue.json(policy.to_json())}
    if newest is None:
        metadata[STATE] = MetadataValue.text("UNKNOWN")
        return FreshnessResult("UNKNOWN", metadata, "No partition of the asset was ever materialized.", None)
    metadata[NEWEST_PARTITION] = MetadataValue.text(windows.key(newest))
    if last_updated_us is not None:
        metadata[LAST_UPDATED] = timestamp(last_updated_us)
    if isinstance(policy, TimeWindowFreshnessPolicy):
        return _time_window(policy, windows, newest, now_us, metadata)
    if isinstance(policy, CronFreshnessPolicy):
        return _cron(policy, windows, newest, now_us, metadata)
    raise DefinitionError(f"not a freshness policy: {policy!r}")


def expected_partition(policy: FreshnessPolicy, partitions_def: PartitionsDefinition | None, now_us: int) -> str | None:
    """The partition whose materialization the policy asks for at ``now_us``: the latest expected now (time
    window) or at the latest deadline passed (cron); None without time windows or before the first."""
    if not isinstance(partitions_def, TimeWindowPartitionsDefinition):
        return None
    windows = _Windows(partitions_def)
    at = now_us
    if isinstance(policy, CronFreshnessPolicy):
        at = latest_tick(deadlines(policy.deadline_cron, policy.timezone), now_us)
    count = windows.count(at)
    return windows.key(count - 1) if count else None


def newest_partition(partitions_def: PartitionsDefinition | None, keys: Iterable[str]) -> str | None:
    """Of ``keys``, the partition with the latest window; keys that are not partitions of the definition
    are ignored. None for static partitions, which have no order in time."""
    if not isinstance(partitions_def, TimeWindowPartitionsDefinition):
        return None
    windows = _Windows(partitions_def)
    best: tuple[int, str] | None = None
    for key in keys:
        index = windows.index(key)
        if index is not None and (best is None or index > best[0]):
            best = (index, key)
    return None if best is None else best[1]


def partitions_from_description(value: str | Mapping[str, Any] | None) -> PartitionsDefinition | None:
    """A partitions definition from what the registry stores (``describe()``, as JSON); None for ''."""
    if not value:
        return None
    data = json.loads(value) if isinstance(value, str) else value
    if data.get("type") == "static":
        return StaticPartitionsDefinition(data["partition_keys"])
    zone = ZoneInfo(data["timezone"])
    end = data.get("end")
    return TimeWindowPartitionsDefinition(
        cadence=data["type"],
        start=datetime.fromisoformat(data["start"]).astimezone(zone),
        end=None if end is None else datetime.fromisoformat(end).astimezone(zone),
        timezone=data["timezone"],
        fmt=data["fmt"],
        end_offset=int(data.get("end_offset", 0)),
    )


def _time_window(
    policy: TimeWindowFreshnessPolicy, windows: _Windows, newest: int, now: int, metadata: dict[str, MetadataValue]
) -> FreshnessResult:
    fail, warn = micros(policy.fail_window), None if policy.warn_window is None else micros(policy.warn_window)
    count = windows.count(now)
    if count:
        metadata[EXPECTED_PARTITION] = MetadataValue.text(windows.key(count - 1))
    missing = newest + 1
    since = windows.expected_at(missing)
    if since is None or since > now:
        change = None if since is None else since + (fail if warn is None else warn)
        description = f"Asset is fresh: partition {windows.key(newest)}, the latest expected, is materialized."
        return result_of("PASS", metadata, description, change, now, None)
    what = f"partition {windows.key(missing)} was expected {{age}} ago and is not materialized"
    return window_result(now - since, now, fail, warn, metadata, what)


def _cron(
    policy: CronFreshnessPolicy, windows: _Windows, newest: int, now: int, metadata: dict[str, MetadataValue]
) -> FreshnessResult:
    ticks = deadlines(policy.deadline_cron, policy.timezone)
    tick = latest_tick(ticks, now)
    metadata[LATEST_CRON_TICK] = timestamp(tick)
    needed = windows.count(tick) - 1
    if needed >= 0:
        metadata[EXPECTED_PARTITION] = MetadataValue.text(windows.key(needed))
    if newest >= needed:
        change = next_tick_where(ticks, now, lambda t: windows.count(t) - 1 > newest)
        description = f"Asset is fresh: partition {windows.key(newest)} is materialized, as the latest deadline asks."
        return result_of("PASS", metadata, description, change, now, None)
    description = (
        f"Partition {windows.key(needed)} is overdue: expected by the deadline {in_words(now - tick)} ago; the "
        f"newest partition materialized is {windows.key(newest)}."
    )
    return result_of("FAIL", metadata, description, None, now, tick)


class _Windows:
    """A time-window definition's windows by index (0 from ``start``), as ``get_partition_keys`` counts them
    (its own arithmetic and comparisons), without listing them all."""

    def __init__(self, definition: TimeWindowPartitionsDefinition) -> None:
        self.definition = definition
        self.zone = ZoneInfo(definition.timezone)

    def start(self, index: int) -> datetime:
        return self.definition._advance(self.definition.start, index)

    def key(self, index: int) -> str:
        return self.start(index).strftime(self.definition.fmt)

    def index(self, key: str) -> int | None:
        """The index of partition ``key``; None if it is not one of the definition's windows."""
        d = self.definition
        try:
            moment_ = datetime.strptime(key, d.fmt).replace(tzinfo=self.zone)
        except ValueError:
            return None
        if moment_ < d.start or moment_.strftime(d.fmt) != key:
            return None
        estimate = self._estimate(moment_)
        return next((i for i in (estimate, estimate - 1, estimate + 1) if i >= 0 and self.start(i) == moment_), None)

    def count(self, at_us: int) -> int:
        """How many windows exist at ``at_us``: the latest expected partition is ``count - 1``."""
        limit = self.definition._limit(moment(at_us))
        count = max(self._estimate(limit), 0)
        while count > 0 and self.start(count) > limit:
            count -= 1
        while self.start(count + 1) <= limit:
            count += 1
        return count

    def expected_at(self, index: int) -> int | None:
        """The first instant at which window ``index`` exists; None if it never does (past ``end``)."""
        d = self.definition
        if d.end is not None:
            last = d._advance(d.end, d.end_offset) if d.end_offset else d.end
            if self.start(index + 1) > last:
                return None
        wall = self.start(index + 1 - d.end_offset)
        guess = micros(wall - moment(0))
        low, high = guess - _SEARCH_US, guess + _SEARCH_US
        while self.count(low) > index:
            low -= _SEARCH_US
        while self.count(high) <= index:
            high += _SEARCH_US
        while high - low > 1:  # the first instant with the window: low never has it, high always does
            middle = (low + high) // 2
            if self.count(middle) > index:
                high = middle
            else:
                low = middle
        return high

    def _estimate(self, moment_: datetime) -> int:
        """Whole windows from ``start`` to ``moment_`` (the index of the window holding it), near enough."""
        d = self.definition
        if d.cadence == "monthly":
            return (moment_.year - d.start.year) * 12 + moment_.month - d.start.month
        return (moment_ - d.start) // _STEPS[d.cadence]
