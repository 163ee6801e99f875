"""Sensors: ``@asset_sensor`` (and ``@observation_sensor``, ``@asset_check_sensor``,
``@materialization_failure_sensor`` for the other event types) and ``@multi_asset_sensor``, and the
``SensorDefinition`` they make (``definitions.context`` holds what the functions receive and may return).

Unlike Dagster, which hands an asset sensor only the newest event per tick, every accepted event is
evaluated, in order per asset. ``context.cursor`` is the id of the event being evaluated, stable across
redelivery, so ``RunRequest(run_key=context.cursor)`` means one run per event.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from assetpipe.definitions.jobs import JobDefinition, check_name
from assetpipe.definitions.ops import DefinitionError
from assetpipe.schemas.asset_key import AssetKey, CoercibleToAssetKey, coerce_asset_key
from assetpipe.schemas.model import AssetEvent, EventType, FailureReason, FailureType

SensorKind = Literal["asset", "multi_asset"]
StartAt = Literal["latest", "earliest"]


class DefaultSensorStatus(enum.Enum):
    """RUNNING (the default here, so a definitions file works once loaded) or STOPPED (not evaluated until
    started from the web pages or the API)."""

    RUNNING = "RUNNING"
    STOPPED = "STOPPED"


@dataclass(frozen=True, eq=False)
class SensorDefinition:
    name: str
    fn: Callable[..., Any]
    kind: SensorKind
    event_type: EventType
    asset_keys: tuple[AssetKey, ...]
    job: JobDefinition | None
    job_name: str | None
    default_status: DefaultSensorStatus
    start_at: StartAt
    description: str | None
    arity: int
    filters: Mapping[str, Any] = field(default_factory=dict)  # event field -> the value it must have
    event_types: tuple[EventType, ...] = ()  # the event types it is evaluated on; default: (event_type,)
    monitored: Mapping[AssetKey, None] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.event_types:
            object.__setattr__(self, "event_types", (self.event_type,))
        # the monitored keys as a dict, hashed once: copying it is far cheaper than hashing 100 keys a tick
        object.__setattr__(self, "monitored", dict.fromkeys(self.asset_keys))

    @property
    def target(self) -> str | None:
        """The name of the job a ``RunRequest`` without ``job_name`` runs."""
        return self.job.name if self.job is not None else self.job_name

    @property
    def running(self) -> bool:
        return self.default_status is DefaultSensorStatus.RUNNING

    def accepts(self, event: AssetEvent) -> bool:
        """The filters of an ``asset_check_sensor`` (check name, result, severity) or a
        ``materialization_failure_sensor`` (type, reason); other sensors accept every event they watch."""
        return all(getattr(event, name, None) == value for name, value in self.filters.items())


def _arity(fn: Callable[..., Any], allowed: Sequence[int], what: str) -> int:
    params = [
        p for p in inspect.signature(fn).parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(params) not in allowed:
        raise DefinitionError(f"{what} {fn.__name__!r} must take {' or '.join(map(str, allowed))} parameters")
    return len(params)


def _target(job: JobDefinition | None, job_name: str | None, sensor: str) -> None:
    if job is not None and job_name is not None:
        raise DefinitionError(f"sensor {sensor!r}: pass job or job_name, not both")
    if job is not None and not isinstance(job, JobDefinition):
        raise DefinitionError(f"sensor {sensor!r}: job must be a @job, got {type(job).__name__}")


def _event_sensor(event_type: EventType, asset_key: CoercibleToAssetKey, **kw: Any) -> Callable[..., SensorDefinition]:
    def make(fn: Callable[..., Any]) -> SensorDefinition:
        name = check_name("sensor", kw.get("name") or fn.__name__)
        _target(kw.get("job"), kw.get("job_name"), name)
        return SensorDefinition(
            name=name,
            fn=fn,
            kind="asset",
            event_type=event_type,
            asset_keys=(coerce_asset_key(asset_key),),
            job=kw.get("job"),
            job_name=kw.get("job_name"),
            default_status=kw.get("default_status") or DefaultSensorStatus.RUNNING,
            start_at=kw.get("start_at") or "latest",
            description=kw.get("description") or inspect.getdoc(fn),
            arity=_arity(fn, (0, 1, 2), "an asset sensor"),
            filters={k: v for k, v in (kw.get("filters") or {}).items() if v is not None},
        )

    return make


def asset_sensor(
    asset_key: CoercibleToAssetKey,
    *,
    job: JobDefinition | None = None,
    job_name: str | None = None,
    name: str | None = None,
    default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING,
    description: str | None = None,
    start_at: StartAt = "latest",
    minimum_interval_seconds: float | None = None,
) -> Callable[..., SensorDefinition]:
    """Evaluate ``fn(context, event)`` for every accepted materialization of ``asset_key``.

    ``start_at="latest"``: a sensor seen for the first time ignores events accepted before it was
    registered; ``"earliest"`` evaluates everything its worker group still reads.
    ``minimum_interval_seconds`` is accepted for Dagster code and has no effect: every event is evaluated.
    """
    return _event_sensor(
        "materialization",
        asset_key,
        job=job,
        job_name=job_name,
        name=name,
        default_status=default_status,
        description=description,
        start_at=start_at,
    )


def observation_sensor(
    asset_key: CoercibleToAssetKey,
    *,
    job: JobDefinition | None = None,
    job_name: str | None = None,
    name: str | None = None,
    default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING,
    description: str | None = None,
    start_at: StartAt = "latest",
) -> Callable[..., SensorDefinition]:
    """Like ``asset_sensor``, for observations: an accepted observation carries a data version not seen
    before (or none), so this fires when a source asset's data version changed."""
    return _event_sensor(
        "observation",
        asset_key,
        job=job,
        job_name=job_name,
        name=name,
        default_status=default_status,
        description=description,
        start_at=start_at,
    )


def asset_check_sensor(
    asset_key: CoercibleToAssetKey,
    *,
    check_name: str | None = None,
    passed: bool | None = None,
    severity: Literal["WARN", "ERROR"] | None = None,
    job: JobDefinition | None = None,
    job_name: str | None = None,
    name: str | None = None,
    default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING,
    description: str | None = None,
    start_at: StartAt = "latest",
) -> Callable[..., SensorDefinition]:
    """Like ``asset_sensor``, for check evaluations of ``asset_key``, filtered by check name, result and
    severity: ``asset_check_sensor("orders", passed=False, severity="ERROR", job=alert)``."""
    return _event_sensor(
        "check_evaluation",
        asset_key,
        job=job,
        job_name=job_name,
        name=name,
        default_status=default_status,
        description=description,
        start_at=start_at,
        filters={"check_name": check_name, "passed": passed, "severity": severity},
    )


def materialization_failure_sensor(
    asset_key: CoercibleToAssetKey,
    *,
    failure_type: FailureType | None = None,
    reason: FailureReason | None = None,
    job: JobDefinition | None = None,
    job_name: str | None = None,
    name: str | None = None,
    default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING,
    description: str | None = None,
    start_at: StartAt = "latest",
) -> Callable[..., SensorDefinition]:
    """Like ``asset_sensor``, for failures to materialize ``asset_key`` (Dagster's
    ``AssetMaterializationFailure``), filtered by type and reason:
    ``materialization_failure_sensor("orders", failure_type="FAILED", job=retry)``. The event is an
    ``EventLogEntry`` whose ``asset_materialization_failure`` is the failure (``reason``, ``description``,
    ``run_id``, ...)."""
    return _event_sensor(
        "materialization_failure",
        asset_key,
        job=job,
        job_name=job_name,
        name=name,
        default_status=default_status,
        description=description,
        start_at=start_at,
        filters={"failure_type": failure_type, "reason": reason},
    )


def multi_asset_sensor(
    monitored_assets: Sequence[CoercibleToAssetKey],
    *,
    job: JobDefinition | None = None,
    job_name: str | None = None,
    name: str | None = None,
    default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING,
    description: str | None = None,
    start_at: StartAt = "latest",
    minimum_interval_seconds: float | None = None,
) -> Callable[..., SensorDefinition]:
    """Evaluate ``fn(context)`` on every accepted materialization of any monitored asset; the context
    holds the latest unconsumed materialization per asset. A function that requests a run must advance
    the cursor (``context.advance_all_cursors()``), as in Dagster."""
    keys = tuple(coerce_asset_key(k) for k in monitored_assets)
    if not keys:
        raise DefinitionError("multi_asset_sensor: monitored_assets must not be empty")

    def make(fn: Callable[..., Any]) -> SensorDefinition:
        sensor_name = check_name("sensor", name or fn.__name__)
        _target(job, job_name, sensor_name)
        return SensorDefinition(
            sensor_name,
            fn,
            "multi_asset",
            "materialization",
            keys,
            job,
            job_name,
            default_status,
            start_at,
            description or inspect.getdoc(fn),
            _arity(fn, (1,), "a multi-asset sensor"),
        )

    return make
