"""What an asset function hands back: ``MaterializeResult``, ``ObserveResult``, ``DataVersion``,
``DataVersionsByPartition``, ``AssetCheckResult``; and the ``AutomationCondition`` an asset may carry.
Dagster's names and fields.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from assetpipe.definitions.ops import DefinitionError
from assetpipe.schemas.asset_key import AssetKey, CoercibleToAssetKey, coerce_asset_key
from assetpipe.schemas.metadata import MetadataValue, normalize

DEFAULT_DATA_VERSION = "INITIAL"
NULL_DATA_VERSION = "NULL"
UNKNOWN_DATA_VERSION = "UNKNOWN"


def _metadata(metadata: Mapping[str, Any] | None) -> dict[str, MetadataValue]:
    return {k: normalize(k, v) for k, v in (metadata or {}).items()}


@dataclass(frozen=True, slots=True)
class DataVersion:
    """The version of an asset's data: equal versions mean equal data."""

    value: str

    def __post_init__(self) -> None:
        if not isinstance(self.value, str) or not self.value:
            raise DefinitionError(f"DataVersion: value must be a non-empty string, got {self.value!r}")


class DataVersionsByPartition(dict[str, DataVersion]):
    """An observation function's answer for a partitioned asset: one data version per partition."""

    def __init__(self, data_versions_by_partition: Mapping[str, str | DataVersion]) -> None:
        super().__init__(
            {
                str(partition): version if isinstance(version, DataVersion) else DataVersion(version)
                for partition, version in data_versions_by_partition.items()
            }
        )


class AssetCheckSeverity(enum.Enum):
    WARN = "WARN"
    ERROR = "ERROR"


@dataclass(frozen=True, slots=True)
class AssetCheckResult:
    """The outcome of a check, returned with an asset's result: recorded as an ``AssetCheckEvaluation``."""

    passed: bool
    asset_key: AssetKey | None = None
    check_name: str | None = None
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict)
    severity: AssetCheckSeverity = AssetCheckSeverity.ERROR
    description: str | None = None

    def __init__(
        self,
        *,
        passed: bool,
        asset_key: CoercibleToAssetKey | None = None,
        check_name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        severity: AssetCheckSeverity = AssetCheckSeverity.ERROR,
        description: str | None = None,
    ) -> None:
        if not isinstance(passed, bool):
            raise DefinitionError(f'Param "passed" is not a bool. Got {passed!r} which is type {type(passed)}.')
        object.__setattr__(self, "passed", passed)
        object.__setattr__(self, "asset_key", None if asset_key is None else coerce_asset_key(asset_key))
        object.__setattr__(self, "check_name", check_name)
        object.__setattr__(self, "metadata", _metadata(metadata))
        object.__setattr__(self, "severity", AssetCheckSeverity(severity))
        object.__setattr__(self, "description", description)


@dataclass(frozen=True, slots=True)
class _AssetResult:
    asset_key: AssetKey | None = None
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict)
    check_results: tuple[AssetCheckResult, ...] = ()
    data_version: DataVersion | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    def __init__(
        self,
        *,
        asset_key: CoercibleToAssetKey | None = None,
        metadata: Mapping[str, Any] | None = None,
        check_results: Sequence[AssetCheckResult] | None = None,
        data_version: DataVersion | str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        object.__setattr__(self, "asset_key", None if asset_key is None else coerce_asset_key(asset_key))
        object.__setattr__(self, "metadata", _metadata(metadata))
        object.__setattr__(self, "check_results", tuple(check_results or ()))
        if isinstance(data_version, str):
            data_version = DataVersion(data_version)
        object.__setattr__(self, "data_version", data_version)
        object.__setattr__(self, "tags", dict(tags or {}))


class MaterializeResult(_AssetResult):
    """Returned by an ``@asset`` function: the materialization's metadata, data version, tags and checks."""


class ObserveResult(_AssetResult):
    """Returned by an ``@observable_source_asset`` function: the observation's data version and metadata."""


@dataclass(frozen=True, slots=True)
class AutomationCondition:
    """When assetpipe requests a run of an asset by itself. ``eager()``: whenever an upstream asset's data
    version changes (a new materialization or a newly observed version), once per change."""

    name: str

    @classmethod
    def eager(cls) -> AutomationCondition:
        return cls("eager")
