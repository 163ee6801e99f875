"""Monitor checks built from parameters, with Dagster's builder names: ``build_last_update_freshness_checks``,
``build_metadata_bounds_checks``, and ``build_metadata_anomaly_checks`` (volume anomalies). Each builder
returns ``AssetChecksDefinition``s for ``Definitions(asset_checks=[...])``; each holds one ``MonitorSpec`` per
asset, the uniform form the registry stores (``asset_monitors``) and the evaluator reads. The decisions
themselves are in ``definitions.checks``.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, get_args

from assetpipe.definitions.assets import as_assets_definition
from assetpipe.definitions.freshness import check_deadlines
from assetpipe.definitions.ops import DefinitionError
from assetpipe.definitions.results import AssetCheckSeverity
from assetpipe.schemas.asset_key import AssetKey

MonitorKind = Literal["last_update", "bounds", "anomaly"]
LAST_UPDATE_CHECK_NAME = "freshness_check"  # Dagster's name for build_last_update_freshness_checks
DEFAULT_ANOMALY_KEY = "dagster/row_count"


@dataclass(frozen=True)
class MonitorSpec:
    """One monitor check of one asset. ``params`` is the kind's JSON object (``docs/assets.md``)."""

    kind: MonitorKind
    asset_key: str
    check_name: str
    severity: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in get_args(MonitorKind):
            raise DefinitionError(f"a monitor's kind is one of {', '.join(get_args(MonitorKind))}, got {self.kind!r}")
        if not isinstance(self.asset_key, str) or not self.asset_key:
            raise DefinitionError(f"a monitor's asset_key is an 'a/b' string, got {self.asset_key!r}")
        if not isinstance(self.check_name, str) or not self.check_name.strip():
            raise DefinitionError(f"a monitor's check_name is a non-empty string, got {self.check_name!r}")
        if self.severity not in ("WARN", "ERROR"):
            raise DefinitionError(f"a monitor's severity is WARN or ERROR, got {self.severity!r}")
        if not isinstance(self.params, Mapping):
            raise DefinitionError(f"a monitor's params are an object, got {self.params!r}")
        normalize = _PARAMS[self.kind]
        names = inspect.signature(normalize).parameters
        required = [n for n, p in names.items() if p.default is inspect.Parameter.empty]
        if any(k not in names for k in self.params) or any(n not in self.params for n in required):
            needed = f" ({', '.join(required)} required)" if required else ""
            raise DefinitionError(
                f"the params of a {self.kind} monitor are {', '.join(names)}{needed}, "
                f"got {', '.join(map(str, self.params)) or 'none'}"
            )
        params = normalize(**self.params)
        object.__setattr__(self, "params", params)

    def params_json(self) -> str:
        """The canonical JSON text of ``params`` (keys sorted, no spaces), as ``asset_monitors`` stores it."""
        return json.dumps(self.params, sort_keys=True, separators=(",", ":"))

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "asset_key": self.asset_key,
            "check_name": self.check_name,
            "severity": self.severity,
            "params": dict(self.params),
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any] | str) -> MonitorSpec:
        data = json.loads(value) if isinstance(value, str) else value
        if not isinstance(data, Mapping):
            raise DefinitionError("a monitor spec is a JSON object")
        try:
            params = data.get("params") or {}
            if isinstance(params, str):
                params = json.loads(params)
            return cls(data["kind"], data["asset_key"], data["check_name"], data["severity"], params)
        except KeyError as exc:
            raise DefinitionError(f"a monitor spec needs {exc.args[0]!r}") from exc


@dataclass(frozen=True)
class AssetChecksDefinition:
    """Checks of assets, as ``Definitions(asset_checks=[...])`` takes them: here, the monitor checks a builder
    made, one per asset."""

    specs: tuple[MonitorSpec, ...]

    @property
    def check_keys(self) -> tuple[tuple[str, str], ...]:
        return tuple((spec.asset_key, spec.check_name) for spec in self.specs)


def build_last_update_freshness_checks(
    *,
    assets: Sequence[Any],
    lower_bound_delta: timedelta,
    deadline_cron: str | None = None,
    timezone: str = "UTC",
    severity: AssetCheckSeverity = AssetCheckSeverity.WARN,
) -> list[AssetChecksDefinition]:
    """``freshness_check`` of each asset: passes when it was updated (materialized or observed) at or after
    ``deadline - lower_bound_delta``, the deadline being the latest tick of ``deadline_cron`` (in
    ``timezone``), or the moment of evaluation without one."""
    if not isinstance(lower_bound_delta, timedelta):
        raise DefinitionError(f"lower_bound_delta must be a timedelta, got {type(lower_bound_delta).__name__}")
    params = _last_update_params(lower_bound_delta.total_seconds(), deadline_cron, timezone)
    return _build(assets, "last_update", lambda key: LAST_UPDATE_CHECK_NAME, severity, params)


def build_metadata_bounds_checks(
    *,
    assets: Sequence[Any],
    severity: AssetCheckSeverity = AssetCheckSeverity.WARN,
    metadata_key: str,
    min_value: float | None = None,
    max_value: float | None = None,
    exclusive_min: bool = False,
    exclusive_max: bool = False,
) -> list[AssetChecksDefinition]:
    """``<metadata_key>_bounds`` of each asset: passes when the metadata value of its latest materialization
    is within the bounds (inclusive unless ``exclusive_min``/``exclusive_max``)."""
    params = _bounds_params(metadata_key, min_value, max_value, exclusive_min, exclusive_max)
    return _build(assets, "bounds", lambda key: f"{metadata_key}_bounds", severity, params)


def build_metadata_anomaly_checks(
    *,
    assets: Sequence[Any],
    metadata_key: str = DEFAULT_ANOMALY_KEY,
    sensitivity: float = 3.0,
    lookback_days: int = 28,
    min_history: int = 14,
    severity: AssetCheckSeverity = AssetCheckSeverity.WARN,
) -> list[AssetChecksDefinition]:
    """``<metadata_key>_anomaly`` of each asset: passes when the value of its latest materialization is
    within ``sensitivity`` robust deviations of the median of its own history over ``lookback_days`` (of the
    same weekday where the history is weekly); passes saying more data is needed below ``min_history``
    values."""
    params = _anomaly_params(metadata_key, sensitivity, lookback_days, min_history)
    return _build(assets, "anomaly", lambda key: f"{metadata_key}_anomaly", severity, params)


def unique_monitors(checks: Iterable[Any]) -> tuple[MonitorSpec, ...]:
    """The monitors of ``Definitions(asset_checks=...)``: an (asset, check name) may appear once."""
    monitors: dict[tuple[str, str], MonitorSpec] = {}
    for entry in checks:
        if not isinstance(entry, AssetChecksDefinition):
            raise DefinitionError(
                f"Definitions: asset_checks must be what build_last_update_freshness_checks, "
                f"build_metadata_bounds_checks or build_metadata_anomaly_checks return, got {type(entry).__name__}"
            )
        for spec in entry.specs:
            if monitors.setdefault((spec.asset_key, spec.check_name), spec) != spec:
                raise DefinitionError(
                    f"Duplicate asset check key: check {spec.check_name!r} of asset '{spec.asset_key}'"
                )
    return tuple(monitors.values())


def _build(
    assets: Sequence[Any],
    kind: MonitorKind,
    name: Callable[[str], str],
    severity: AssetCheckSeverity,
    params: dict[str, Any],
) -> list[AssetChecksDefinition]:
    if isinstance(assets, (str, AssetKey)) or not isinstance(assets, Sequence):
        raise DefinitionError("assets must be a list of assets, specs or asset keys")
    level = _severity(severity)
    keys = [as_assets_definition(a).key.to_user_string() for a in assets]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise DefinitionError(
            f"Found duplicate assets in the provided list of assets: {duplicates}. Please ensure that each asset "
            "is unique."
        )
    return [AssetChecksDefinition(tuple(MonitorSpec(kind, key, name(key), level, params) for key in keys))]


def _severity(severity: Any) -> str:
    try:
        return AssetCheckSeverity(severity).value
    except ValueError as exc:
        raise DefinitionError(f"severity must be AssetCheckSeverity.WARN or .ERROR, got {severity!r}") from exc


def _number(value: Any, name: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DefinitionError(f"{name} must be a finite number, got {value!r}")
    return value


def _key(metadata_key: Any) -> str:
    if not isinstance(metadata_key, str) or not metadata_key:
        raise DefinitionError(f"metadata_key must be a non-empty string, got {metadata_key!r}")
    return metadata_key


def _last_update_params(
    lower_bound_delta_seconds: Any, deadline_cron: Any = None, timezone: Any = "UTC"
) -> dict[str, Any]:
    seconds = _number(lower_bound_delta_seconds, "lower_bound_delta")
    if seconds <= 0:
        raise DefinitionError(f"lower_bound_delta must be positive, was {seconds} seconds")
    check_deadlines("@daily" if deadline_cron is None else deadline_cron, timezone)
    return {"lower_bound_delta_seconds": float(seconds), "deadline_cron": deadline_cron, "timezone": timezone}


def _bounds_params(
    metadata_key: Any,
    min_value: Any = None,
    max_value: Any = None,
    exclusive_min: Any = False,
    exclusive_max: Any = False,
) -> dict[str, Any]:
    low = None if min_value is None else _number(min_value, "min_value")
    high = None if max_value is None else _number(max_value, "max_value")
    if low is None and high is None:
        raise DefinitionError("At least one of `min_value` or `max_value` must be set")
    if low is not None and high is not None and low > high:
        raise DefinitionError("`min_value` may not be greater than `max_value`")
    if not isinstance(exclusive_min, bool) or not isinstance(exclusive_max, bool):
        raise DefinitionError("exclusive_min and exclusive_max must be booleans")
    return {
        "metadata_key": _key(metadata_key),
        "min_value": low,
        "max_value": high,
        "exclusive_min": exclusive_min,
        "exclusive_max": exclusive_max,
    }


def _anomaly_params(
    metadata_key: Any = DEFAULT_ANOMALY_KEY, sensitivity: Any = 3.0, lookback_days: Any = 28, min_history: Any = 14
) -> dict[str, Any]:
    if _number(sensitivity, "sensitivity") <= 0:
        raise DefinitionError(f"sensitivity must be positive, got {sensitivity!r}")
    for name, value in (("lookback_days", lookback_days), ("min_history", min_history)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise DefinitionError(f"{name} must be a positive integer, got {value!r}")
    return {
        "metadata_key": _key(metadata_key),
        "sensitivity": float(sensitivity),
        "lookback_days": lookback_days,
        "min_history": min_history,
    }


_PARAMS: dict[str, Any] = {"last_update": _last_update_params, "bounds": _bounds_params, "anomaly": _anomaly_params}
