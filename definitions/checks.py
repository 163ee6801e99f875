"""The pure decisions of the monitor checks (``definitions.monitors``), given what the evaluator read: an
asset's last update (``evaluate_last_update``), the value of a metadata label on its latest materialization
(``evaluate_bounds``), and that value against its baseline (``evaluate_anomaly``).

Each returns a ``CheckOutcome``: passed or not, the metadata and description of the
``AssetCheckEvaluation``, and for the last-update check when the outcome changes if nothing new arrives.
The messages of the first two are Dagster's.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from assetpipe.definitions.freshness import (
    FRESH_UNTIL,
    FRESHNESS_PARAMS,
    LAST_UPDATED,
    LATEST_CRON_TICK,
    LOWER_BOUND,
    OVERDUE_DEADLINE,
    OVERDUE_SECONDS,
    deadlines,
    in_words,
    latest_tick,
    next_tick_where,
    timestamp,
)
from assetpipe.schemas.metadata import MetadataValue

MAD_TO_SIGMA = 1.4826  # a normal distribution's standard deviation is 1.4826 median absolute deviations
# A median of 4 values (a weekday's, over 28 days) is itself noisy: with a spread of at least 5% of the median per
# unit of sensitivity, 3% noise stays quiet (0 false alarms in 1,400 simulated days; 14% at a floor of 1%) and a
# drop of 90% always fires.
MIN_RELATIVE_SPREAD = 0.05
WEEKLY_RATIO = 0.5  # weekly when the weekday medians halve the deviations (or better)
_NUMERIC_KINDS = ("int", "float", "timestamp", "bool")


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    passed: bool
    metadata: dict[str, MetadataValue]
    description: str
    next_change_us: int | None = None


@dataclass(frozen=True, slots=True)
class AnomalyBaseline:
    """What the evaluator computes of a label's history over the monitor's ``lookback_days`` (before the value
    judged): ``history`` values; ``median``, of those values, or of those of the judged value's weekday when
    ``weekly``; ``mad``, the median absolute deviation of the values from their median (from their weekday's
    median when ``weekly``)."""

    median: float
    mad: float
    history: int
    weekly: bool = False


def anomaly_baseline(history: Sequence[tuple[int, float]], weekday: int) -> AnomalyBaseline | None:
    """The baseline of ``history`` (each value with its weekday, 0 Monday to 6 Sunday) for a value of
    ``weekday``, by the rule the evaluator follows in ClickHouse: weekly when every weekday has at least two
    values and the deviations from each weekday's median are at most half those from the overall median."""
    if not history:
        return None
    values = [value for _, value in history]
    median = statistics.median(values)
    flat_mad = statistics.median(abs(value - median) for value in values)
    by_day: dict[int, list[float]] = {}
    for day, value in history:
        by_day.setdefault(day, []).append(value)
    if len(by_day) == 7 and all(len(v) >= 2 for v in by_day.values()):
        centers = {day: statistics.median(v) for day, v in by_day.items()}
        weekly_mad = statistics.median(abs(value - centers[day]) for day, value in history)
        if weekly_mad <= WEEKLY_RATIO * flat_mad:
            return AnomalyBaseline(centers[weekday], weekly_mad, len(history), weekly=True)
    return AnomalyBaseline(median, flat_mad, len(history))


def evaluate_last_update(params: Mapping[str, Any], last_updated_us: int | None, now_us: int) -> CheckOutcome:
    """``freshness_check`` (``build_last_update_freshness_checks``): passes when the asset was updated at or
    after ``deadline - lower_bound_delta``; the deadline is the latest tick of ``deadline_cron`` at or before
    now, or now without one. Once passing it fails at ``next_change_us``: the first deadline whose window the
    update is before, or without a cron the microsecond after ``last update + lower_bound_delta``."""
    lower_bound_delta = round(float(params["lower_bound_delta_seconds"]) * 1_000_000)
    cron = params.get("deadline_cron")
    timezone = params.get("timezone") or "UTC"
    metadata: dict[str, MetadataValue] = {FRESHNESS_PARAMS: MetadataValue.json(dict(params))}
    ticks = deadlines(cron, timezone) if cron else None
    deadline = now_us if ticks is None else latest_tick(ticks, now_us)
    if ticks is not None:
        metadata[LATEST_CRON_TICK] = timestamp(deadline)
    lower_bound = deadline - lower_bound_delta
    metadata[LOWER_BOUND] = timestamp(lower_bound)
    allowed = in_words(now_us - lower_bound)
    if last_updated_us is None:
        return CheckOutcome(False, metadata, "Asset has never been observed/materialized.")
    metadata[LAST_UPDATED] = timestamp(last_updated_us)
    actual = in_words(now_us - last_updated_us)
    if last_updated_us >= lower_bound:
        if ticks is not None:
            change = next_tick_where(ticks, now_us, lambda t: last_updated_us < t - lower_bound_delta)
            fresh_until = change
        else:
            fresh_until = last_updated_us + lower_bound_delta
            change = fresh_until + 1
        if fresh_until is not None:
            metadata[FRESH_UNTIL] = timestamp(fresh_until)
        description = (
            f"Asset is currently fresh. The last update was {actual} ago, within the allowed time range of {allowed}."
        )
        return CheckOutcome(True, metadata, description, change)
    overdue_since = deadline if ticks is not None else last_updated_us + lower_bound_delta
    metadata[OVERDUE_DEADLINE] = timestamp(overdue_since)
    metadata[OVERDUE_SECONDS] = MetadataValue.float((now_us - overdue_since) / 1_000_000)
    description = (
        f"Asset is overdue for an update. The last update was {actual} ago, which is past the allowed distance of "
        f"{allowed} ago."
    )
    return CheckOutcome(False, metadata, description)


def evaluate_bounds(value: Any, params: Mapping[str, Any]) -> CheckOutcome:
    """``<metadata_key>_bounds``: ``value`` is the label's value on the latest materialization (a
    ``MetadataValue`` or a plain number; None when the materialization does not have the label)."""
    key = params["metadata_key"]
    low, high = params.get("min_value"), params.get("max_value")
    exclusive_min, exclusive_max = bool(params.get("exclusive_min")), bool(params.get("exclusive_max"))
    number, refusal = _number(value, key)
    if number is None:
        return CheckOutcome(False, {}, refusal)
    metadata = {"value": _shown(number)}
    if low is not None:
        metadata["min_value"] = _shown(low)
        if number <= low if exclusive_min else number < low:
            return CheckOutcome(
                False, metadata, f"Value `{number}` is less than {'or equal to ' if exclusive_min else ''}{low}"
            )
    if high is not None:
        metadata["max_value"] = _shown(high)
        if number >= high if exclusive_max else number > high:
            description = f"Value `{number}` is greater than {'or equal to ' if exclusive_max else ''}{high}"
            return CheckOutcome(False, metadata, description)
    return CheckOutcome(True, metadata, f"Value `{number}` is within range")


def evaluate_anomaly(value: Any, baseline: AnomalyBaseline | None, params: Mapping[str, Any]) -> CheckOutcome:
    """``<metadata_key>_anomaly``: passes when ``value`` is within ``[median - s * spread, median + s * spread]``
    (bounds included), s the sensitivity and spread the larger of 1.4826 MAD (a standard deviation, for
    normal data) and 5% of the median's magnitude. Below ``min_history`` values it passes saying more data is
    needed. ``baseline`` None: no history at all."""
    key, sensitivity = params["metadata_key"], float(params["sensitivity"])
    min_history, lookback_days = int(params["min_history"]), int(params["lookback_days"])
    number, refusal = _number(value, key)
    if number is None:
        return CheckOutcome(False, {}, refusal)
    history = 0 if baseline is None else baseline.history
    metadata = {
        "value": _shown(number),
        "history_size": MetadataValue.int(history),
        "min_history": MetadataValue.int(min_history),
    }
    if baseline is None or history < min_history:
        description = (
            f"Not enough history to judge `{key}`: {history} value{'s' if history != 1 else ''} in the last "
            f"{lookback_days} days, {min_history} needed. Passing until more data is collected."
        )
        return CheckOutcome(True, metadata, description)
    spread = max(MAD_TO_SIGMA * baseline.mad, MIN_RELATIVE_SPREAD * abs(baseline.median))
    lower, upper = baseline.median - sensitivity * spread, baseline.median + sensitivity * spread
    metadata.update(
        median=MetadataValue.float(float(baseline.median)),
        spread=MetadataValue.float(spread),
        lower_bound=MetadataValue.float(lower),
        upper_bound=MetadataValue.float(upper),
        sensitivity=MetadataValue.float(sensitivity),
        weekly=MetadataValue.bool(baseline.weekly),
    )
    of = " of the same weekday" if baseline.weekly else ""
    if lower <= number <= upper:
        description = (
            f"Value `{_text(number)}` is within the expected range [{_text(lower)}, {_text(upper)}] "
            f"(median {_text(baseline.median)}{of} over {history} values)."
        )
        return CheckOutcome(True, metadata, description)
    direction = "below" if number < lower else "above"
    description = (
        f"Value `{_text(number)}` is an anomaly: {direction} the expected range [{_text(lower)}, {_text(upper)}] "
        f"(median {_text(baseline.median)}{of} over {history} values, sensitivity {sensitivity:g})."
    )
    return CheckOutcome(False, metadata, description)


def _number(value: Any, key: str) -> tuple[float | int | None, str]:
    """The value as a number, or None and Dagster's reason."""
    if value is None:
        return None, f"Metadata key `{key}` not found"
    if isinstance(value, MetadataValue):
        if value.kind not in _NUMERIC_KINDS:
            return None, f"Value `{value.value}` is not a number"
        value = value.value
    if not isinstance(value, (int, float)) or (isinstance(value, float) and not math.isfinite(value)):
        return None, f"Value `{value}` is not a number"
    return value, ""


def _shown(number: float | int) -> MetadataValue:
    if isinstance(number, int) and not isinstance(number, bool):
        return MetadataValue.int(number)
    return MetadataValue.float(float(number))


def _text(number: float | int) -> str:
    return f"{number:.12g}" if isinstance(number, float) else str(number)
