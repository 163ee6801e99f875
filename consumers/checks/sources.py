"""The checks the worker evaluates, as the registry holds them: each asset's freshness policy (check name
``freshness``; of its newest partition for a time-partitioned asset), and the monitors code locations
registered (``build_last_update_freshness_checks``, ``build_metadata_bounds_checks``,
``build_metadata_anomaly_checks``), with the anomaly baselines ClickHouse keeps (``asset_metadata_baselines``).

What updates an asset: its materializations for an ``@asset``, its observations for an observable source,
either for an external asset or one only reported. Bounds and anomaly checks judge the same events.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from assetpipe.consumers.checks.evaluator import FAIL, PASS, WARN, Clock, EventCheck, TimedCheck, Verdict
from assetpipe.consumers.registry.monitors import CurrentPolicy, current_monitors, current_policies
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.definitions.checks import (
    AnomalyBaseline,
    CheckOutcome,
    evaluate_anomaly,
    evaluate_bounds,
    evaluate_last_update,
)
from assetpipe.definitions.freshness import FreshnessResult, evaluate_freshness
from assetpipe.definitions.monitors import MonitorSpec
from assetpipe.definitions.partition_freshness import (
    evaluate_partition_freshness,
    newest_partition,
    partitions_from_description,
)

FRESHNESS = "freshness"
_BY_TYPE = {
    "materialization": frozenset({"materialization"}),
    "observation": frozenset({"observation"}),
}
_EITHER = frozenset({"materialization", "observation"})
_EXECUTION = "SELECT d.asset_key, toString(d.execution_type) FROM {db}.latest_asset_definitions AS d"
_BASELINES = "SELECT b.asset_key, b.label, b.weekday, b.values, b.median, b.mad FROM {db}.asset_metadata_baselines AS b"
# What the checks are built from, summed up: any registration, monitor change or baselines refresh changes it.
_CHANGED = (
    "SELECT (SELECT (count(), sum(revision), max(registered_at)) FROM {db}.asset_definitions_current), "
    "(SELECT (count(), max(registered_at)) FROM {db}.asset_monitors), "
    "(SELECT (count(), max(computed_at)) FROM {db}.asset_metadata_baselines)"
)
WEEKLY_SPREAD = 3.0  # weekday medians further apart than this many of the values' scatter: a weekly pattern


@dataclass(slots=True)
class Baselines:
    """The anomaly baselines of each (asset, label): every day's (weekday 0) and each weekday's."""

    rows: dict[tuple[str, str], dict[int, tuple[int, float, float]]] = field(default_factory=dict)

    @classmethod
    def read(cls, warehouse: Warehouse) -> Baselines:
        found = cls()
        for key, label, weekday, values, median, mad in warehouse.query(_BASELINES.format(db=warehouse.database)).rows:
            found.rows.setdefault((str(key), str(label)), {})[int(weekday)] = (int(values), float(median), float(mad))
        return found

    def weekly(self, asset_key: str, label: str) -> bool:
        """Whether the label's weekday medians differ by more than its values scatter (each of at least five
        weekdays seen twice)."""
        days = self.rows.get((asset_key, label), {})
        if 0 not in days:
            return False
        weekdays = [row for weekday, row in days.items() if weekday and row[0] >= 2]
        if len(weekdays) < 5:
            return False
        medians = [median for _, median, _ in weekdays]
        scatter = max(1.4826 * days[0][2], 0.01 * abs(days[0][1]), 1e-9)
        return max(medians) - min(medians) > WEEKLY_SPREAD * scatter

    def at(self, asset_key: str, label: str, at_us: int) -> AnomalyBaseline | None:
        """The baseline a value of ``at_us`` is judged against: its weekday's under a weekly pattern (with the
        history of every day), else every day's; None without history."""
        days = self.rows.get((asset_key, label))
        if not days or 0 not in days:
            return None
        history, median, mad = days[0]
        if self.weekly(asset_key, label):
            weekday = datetime.fromtimestamp(at_us / 1e6, tz=UTC).isoweekday()
            if weekday in days:
                _, median, mad = days[weekday]
                return AnomalyBaseline(median=median, mad=mad, history=history, weekly=True)
        return AnomalyBaseline(median=median, mad=mad, history=history)


class RegistryChecks:
    """The worker's ``CheckSource``: ``registry_checks``, built again only when what they are built from changed
    since the last build (None until then). The mark is read before the build: a change landing during a
    build is built again at the next call, never missed."""

    def __init__(self, warehouse: Warehouse) -> None:
        self._warehouse = warehouse
        self._built: tuple[Any, ...] | None = None

    def __call__(self) -> tuple[list[TimedCheck], list[EventCheck]] | None:
        mark = tuple(self._warehouse.query(_CHANGED.format(db=self._warehouse.database)).rows[0])
        if mark == self._built:
            return None
        checks = registry_checks(self._warehouse)
        self._built = mark
        return checks


def registry_checks(warehouse: Warehouse) -> tuple[list[TimedCheck], list[EventCheck]]:
    """Every check registered now, built to evaluate (``CheckSource`` of the worker)."""
    kinds = {str(k): str(t) for k, t in warehouse.query(_EXECUTION.format(db=warehouse.database)).rows}
    timed = [policy_check(policy, _updated_by(kinds.get(policy.asset_key))) for policy in current_policies(warehouse)]
    events: list[EventCheck] = []
    monitors = current_monitors(warehouse)
    baselines = Baselines.read(warehouse) if any(m.kind == "anomaly" for m in monitors) else Baselines()
    for spec in monitors:
        updated_by = _updated_by(kinds.get(spec.asset_key))
        if spec.kind == "last_update":
            timed.append(last_update_check(spec, updated_by))
        else:
            events.append(event_check(spec, updated_by, baselines))
    return timed, events


def policy_check(current: CurrentPolicy, updated_by: frozenset[str]) -> TimedCheck:
    policy, partitions_def = current.policy, partitions_from_description(current.partitions or None)
    definition = json.dumps([policy.to_json(), current.partitions], sort_keys=True)

    def evaluate(clock: Clock, now_us: int) -> Verdict:
        if partitions_def is None:
            return _freshness(evaluate_freshness(policy, clock.last(updated_by), now_us))
        last = clock.newest_at if clock.newest_partition is not None else clock.last(updated_by)
        return _freshness(evaluate_partition_freshness(policy, partitions_def, clock.newest_partition, last, now_us))

    def newer(a: str, b: str) -> str:
        return newest_partition(partitions_def, [a, b]) or a

    return TimedCheck(current.asset_key, FRESHNESS, updated_by, evaluate, newer if partitions_def else None, definition)


def last_update_check(spec: MonitorSpec, updated_by: frozenset[str]) -> TimedCheck:
    params = dict(spec.params)

    def evaluate(clock: Clock, now_us: int) -> Verdict:
        return _outcome(evaluate_last_update(params, clock.last(updated_by), now_us), spec.severity)

    return TimedCheck(spec.asset_key, spec.check_name, updated_by, evaluate, None, _definition(spec))


def event_check(spec: MonitorSpec, updated_by: frozenset[str], baselines: Baselines) -> EventCheck:
    params: Mapping[str, Any] = dict(spec.params)
    label = str(params["metadata_key"])

    def evaluate(value: float, at_us: int) -> Verdict | None:
        if spec.kind == "bounds":
            return _outcome(evaluate_bounds(value, params), spec.severity)
        return _outcome(evaluate_anomaly(value, baselines.at(spec.asset_key, label, at_us), params), spec.severity)

    return EventCheck(spec.asset_key, spec.check_name, label, updated_by, evaluate)


def _updated_by(execution_type: str | None) -> frozenset[str]:
    return _BY_TYPE.get(execution_type or "", _EITHER)


def _definition(spec: MonitorSpec) -> str:
    return json.dumps([spec.kind, spec.severity, dict(spec.params)], sort_keys=True)


def _freshness(result: FreshnessResult) -> Verdict:
    return Verdict(result.state, result.passed, result.severity.value, result.metadata, result.description,
                   result.next_change_us)  # fmt: skip


def _outcome(outcome: CheckOutcome, severity: str) -> Verdict:
    state = PASS if outcome.passed else WARN if severity == "WARN" else FAIL
    return Verdict(state, outcome.passed, severity, outcome.metadata, outcome.description, outcome.next_change_us)
