"""What a sensor function sees and what it may return: ``SensorEvaluationContext``,
``MultiAssetSensorEvaluationContext``, and ``collect_results``, the rule for what comes back (run
requests, or one skip reason, or nothing).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from assetpipe.definitions.ops import DefinitionError, RunRequest, SkipReason
from assetpipe.schemas.asset_key import AssetKey, CoercibleToAssetKey, coerce_asset_key
from assetpipe.schemas.model import AssetMaterialization


class SensorEvaluationContext:
    """What a sensor function sees: its name, its code location, ``cursor`` and ``log``."""

    def __init__(self, *, sensor_name: str, code_location: str, cursor: str | None, log: logging.Logger) -> None:
        self.sensor_name = sensor_name
        self.code_location = code_location
        self.cursor = cursor
        self.log = log


class MultiAssetSensorEvaluationContext(SensorEvaluationContext):
    """Adds the latest unconsumed materialization per monitored asset, and advancing past them."""

    def __init__(
        self,
        *,
        sensor_name: str,
        code_location: str,
        cursor: str | None,
        log: logging.Logger,
        monitored_assets: Sequence[AssetKey] | Mapping[AssetKey, None],
        unconsumed: Mapping[AssetKey, AssetMaterialization],
    ) -> None:
        super().__init__(sensor_name=sensor_name, code_location=code_location, cursor=cursor, log=log)
        self._monitored = (
            dict(monitored_assets) if isinstance(monitored_assets, Mapping) else dict.fromkeys(monitored_assets)
        )
        self.monitored_assets = tuple(self._monitored)
        self._unconsumed = unconsumed
        self._consumed: set[AssetKey] = set()

    def latest_materialization_records_by_key(
        self, asset_keys: Iterable[CoercibleToAssetKey] | None = None
    ) -> dict[AssetKey, AssetMaterialization | None]:
        """Per monitored asset: its newest materialization not consumed yet, or None."""
        if asset_keys is None:
            latest: dict[AssetKey, AssetMaterialization | None] = dict(self._monitored)
            latest.update(self._unconsumed)
        else:
            keys = [coerce_asset_key(k) for k in asset_keys]
            latest = {key: self._unconsumed.get(key) for key in keys}
        for key in self._consumed:
            if key in latest:
                latest[key] = None
        return latest

    def advance_cursor(self, materialization_records_by_key: Mapping[Any, AssetMaterialization | None]) -> None:
        """Mark the given materializations consumed (a None value leaves that asset as it is)."""
        for raw_key, event in materialization_records_by_key.items():
            key = coerce_asset_key(raw_key)
            if key not in self._monitored:
                raise DefinitionError(f"sensor {self.sensor_name!r} does not monitor asset {key}")
            if event is not None:
                self._consumed.add(key)

    def advance_all_cursors(self) -> None:
        """Mark every unconsumed materialization consumed."""
        self._consumed.update(self._unconsumed)

    @property
    def consumed(self) -> frozenset[AssetKey]:
        return frozenset(self._consumed)


def collect_results(sensor_name: str, value: Any, kind: str = "sensor") -> tuple[list[RunRequest], SkipReason | None]:
    """What a sensor (or a schedule: ``kind``) returned or yielded, as (run requests, skip reason). Mixing
    both is an error."""
    if value is None:
        items: list[Any] = []
    elif isinstance(value, (RunRequest, SkipReason)):
        items = [value]
    elif isinstance(value, Iterable) and not isinstance(value, (str, bytes, Mapping)):
        items = [item for item in value if item is not None]
    else:
        items = [value]
    requests: list[RunRequest] = []
    skips: list[SkipReason] = []
    for item in items:
        if isinstance(item, RunRequest):
            requests.append(item)
        elif isinstance(item, SkipReason):
            skips.append(item)
        else:
            raise DefinitionError(
                f"{kind} {sensor_name!r} returned a {type(item).__name__}: expected RunRequest, SkipReason or None"
            )
    if requests and skips:
        raise DefinitionError("Expected a single SkipReason or one or more RunRequests: received both")
    if len(skips) > 1:
        raise DefinitionError(f"Expected a single SkipReason: received {len(skips)}")
    return requests, skips[0] if skips else None
