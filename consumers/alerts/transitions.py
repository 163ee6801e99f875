"""When an alert is due: the state of each (policy, asset, check) and the evaluations that change it.

A check evaluation has a level for a policy: 0 when it passed (or failed with a severity the policy does not
watch), 1 for WARN and 2 for ERROR. An evaluation that raises the level triggers an alert; one that brings
it back to 0 resolves it; any other (the same failure again, a WARN after an ERROR) says nothing, so the
level only falls when the check passes again. A freshness evaluation whose ``dagster/freshness_state`` is
UNKNOWN leaves the state as it is. Evaluations are taken in the order of their time (then their id): one
not newer than the last one taken (a late report of an older evaluation, or one handled before a restart)
changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from assetpipe.consumers.alerts.alert import Change, Kind
from assetpipe.definitions.alerts import AlertPolicy, Transition
from assetpipe.schemas.metadata import to_text

FRESHNESS_CHECK = "freshness"
ANOMALY_SUFFIX = "_anomaly"
FRESHNESS_STATE = "dagster/freshness_state"
LEVELS = {"WARN": 1, "ERROR": 2}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# what a policy must watch for a failure of each kind and severity to count
_WATCHED: dict[str, dict[str, Transition]] = {
    "freshness": {"WARN": "freshness_warn", "ERROR": "freshness_fail"},
    "check": {"WARN": "check_warn", "ERROR": "check_error"},
    "anomaly": {"WARN": "anomaly", "ERROR": "anomaly"},
    "materialization": {"ERROR": "materialization_failed"},
}
MATERIALIZATION = "materialization"  # the subject of an asset's materialization alerts (then [partition])


def check_kind(check_name: str) -> Kind:
    if check_name == FRESHNESS_CHECK:
        return "freshness"
    return "anomaly" if check_name.endswith(ANOMALY_SUFFIX) else "check"


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A check evaluation as the alert worker reads it off the accepted stream."""

    asset_key: str
    check_name: str
    passed: bool
    severity: str
    event_id: str
    event_us: int
    partition: str | None = None
    description: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    materialization: bool = False  # a materialization (passed) or its failure, not a check

    @classmethod
    def outcome(cls, event_type: str, record: Mapping[str, Any]) -> Evaluation:
        """A materialization, or a failure to materialize, as the evaluation of the asset's (partition's)
        materialization: it failed with severity ERROR, or it passed."""
        failed = event_type == "materialization_failure"
        partition = record.get("partition")
        reason = [str(record[k]) for k in ("failure_type", "reason") if failed and record.get(k)]
        cause = record.get("description") or ""
        return cls(
            asset_key="/".join(record["asset_key"]),
            check_name=MATERIALIZATION + (f"[{partition}]" if partition else ""),
            passed=not failed,
            severity="ERROR",
            event_id=str(record["event_id"]),
            event_us=_micros(record["timestamp"]),
            partition=partition,
            description=(f"{cause} ({', '.join(reason)})" if cause else ", ".join(reason)) if failed else None,
            metadata={key: to_text(entry) for key, entry in (record.get("metadata") or {}).items()} if failed else {},
            materialization=True,
        )

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> Evaluation:
        return cls(
            asset_key="/".join(record["asset_key"]),
            check_name=str(record["check_name"]),
            passed=bool(record["passed"]),
            severity=str(record.get("severity") or "ERROR"),
            event_id=str(record["event_id"]),
            event_us=_micros(record["timestamp"]),
            partition=record.get("partition"),
            description=record.get("description"),
            metadata={key: to_text(entry) for key, entry in (record.get("metadata") or {}).items()},
        )

    @property
    def kind(self) -> Kind:
        return "materialization" if self.materialization else check_kind(self.check_name)

    @property
    def freshness_state(self) -> str | None:
        return self.metadata.get(FRESHNESS_STATE) if self.kind == "freshness" else None

    @property
    def state(self) -> str:
        """PASS, WARN, FAIL (or UNKNOWN) for freshness; PASSED or FAILED for any other check."""
        if self.kind == "freshness":
            return self.freshness_state or ("PASS" if self.passed else "WARN" if self.severity == "WARN" else "FAIL")
        if self.materialization:
            return "MATERIALIZED" if self.passed else "FAILED"
        return "PASSED" if self.passed else "FAILED"


def _micros(value: Any) -> int:
    """An event's time as decoded (a datetime, or microseconds) in microseconds since the epoch."""
    if isinstance(value, datetime):
        return ((value if value.tzinfo else value.replace(tzinfo=UTC)) - _EPOCH) // timedelta(microseconds=1)
    return int(value)


def watches(policy: AlertPolicy, kind: Kind) -> bool:
    return kind in _WATCHED and policy.watches(*_WATCHED[kind].values())


def level_of(policy: AlertPolicy, evaluation: Evaluation) -> int | None:
    """The evaluation's level for ``policy``: 0, 1 (WARN) or 2 (ERROR); None: unknown, the state stays."""
    kind = evaluation.kind
    passed, severity = evaluation.passed, evaluation.severity
    state = evaluation.freshness_state
    if state == "UNKNOWN":
        return None
    if state in ("PASS", "WARN", "FAIL"):  # the evaluator's own word, as passed and severity say it
        passed, severity = state == "PASS", "WARN" if state == "WARN" else "ERROR"
    if passed or severity not in _WATCHED[kind]:
        return 0
    return LEVELS[severity] if _WATCHED[kind][severity] in policy.on else 0


@dataclass(slots=True)
class State:
    """Of one (policy, asset, check): its level and the (time, id) of the last evaluation taken."""

    level: int = 0
    at: tuple[int, str] = (0, "")


def step(state: State, level: int | None, at: tuple[int, str]) -> Change | None:
    """Take an evaluation of ``level`` made at ``at`` (time in microseconds, event id): the change to alert
    on, if any. ``state`` is updated."""
    if at <= state.at:
        return None
    state.at = at
    if level is None:
        return None
    previous = state.level
    if level > previous:
        state.level = level
        return "triggered"
    if level == 0 and previous > 0:
        state.level = 0
        return "resolved"
    return None


def level_after(change: str, severity: str) -> int:
    """The level an alert recorded in the ``alerts`` table left its (policy, asset, check) at."""
    return LEVELS.get(severity, 2) if change == "triggered" else 0
