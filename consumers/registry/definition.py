"""An asset definition as the registry stores it: one row of ``asset_definitions`` and its hash.

The hash is sha256 of a canonical JSON of every stored field (keys sorted, no spaces), so it is the same
in every process and for every source: a definition is unchanged when its hash is. The freshness policy
is in it only when there is one, so a definition stored before policies existed keeps its hash. Dependencies and
kinds are sets, so they are sorted; owners keep their order. Metadata is stored as ``asset_events``
stores event metadata, through the ingest worker's own encoder.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from assetpipe.consumers.ingest.rows import metadata_maps
from assetpipe.definitions.assets import AssetsDefinition, AssetSpec, ExecutionType
from assetpipe.schemas.metadata import metadata_to_wire

Source = Literal["code", "http", "file"]
SOURCES: tuple[Source, ...] = ("code", "http", "file")

DEFINITION_COLUMNS = (
    "asset_key", "asset_key_path", "code_location", "source", "definition_hash", "registered_at", "removed",
    "description", "owners", "tags", "kinds", "group_name", "deps", "code_version", "execution_type", "partitions",
    "automation_condition", "metadata", "metadata_types", "freshness_policy",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class StoredDefinition:
    """The stored fields of one asset's definition (the columns after ``removed``) and their hash."""

    asset_key: str
    asset_key_path: tuple[str, ...]
    description: str
    owners: tuple[str, ...]
    tags: Mapping[str, str]
    kinds: tuple[str, ...]
    group_name: str
    deps: tuple[str, ...]
    code_version: str
    execution_type: ExecutionType
    partitions: str
    automation_condition: str
    metadata: Mapping[str, str]
    metadata_types: Mapping[str, str]
    definition_hash: str
    freshness_policy: str = ""

    @classmethod
    def of(cls, asset: AssetsDefinition | AssetSpec) -> StoredDefinition:
        """An ``@asset``, an ``@observable_source_asset``, or a spec (an external asset)."""
        execution_type: ExecutionType = "external"
        if isinstance(asset, AssetSpec):
            spec = asset
        else:
            spec, execution_type = asset.spec, asset.execution_type
        texts, types = metadata_maps(metadata_to_wire(spec.metadata))
        fields: dict[str, Any] = {
            "asset_key_path": list(spec.key.path),
            "description": spec.description or "",
            "owners": list(spec.owners),
            "tags": dict(spec.tags),
            "kinds": sorted(spec.kinds),
            "group_name": spec.group_name or "",
            "deps": sorted(dep.to_user_string() for dep in spec.deps),
            "code_version": spec.code_version or "",
            "execution_type": execution_type,
            "partitions": _canonical(spec.partitions_def.describe()) if spec.partitions_def is not None else "",
            "automation_condition": spec.automation_condition.name if spec.automation_condition is not None else "",
            "metadata": texts,
            "metadata_types": types,
        }
        policy = spec.freshness_policy.to_json_text() if spec.freshness_policy is not None else ""
        if policy:
            fields["freshness_policy"] = policy
        digest = hashlib.sha256(_canonical(fields).encode()).hexdigest()
        return cls(
            asset_key=spec.key.to_user_string(),
            asset_key_path=tuple(fields["asset_key_path"]),
            description=fields["description"],
            owners=tuple(fields["owners"]),
            tags=fields["tags"],
            kinds=tuple(fields["kinds"]),
            group_name=fields["group_name"],
            deps=tuple(fields["deps"]),
            code_version=fields["code_version"],
            execution_type=execution_type,
            partitions=fields["partitions"],
            automation_condition=fields["automation_condition"],
            metadata=texts,
            metadata_types=types,
            definition_hash=digest,
            freshness_policy=policy,
        )

    def row(self, location: str, source: Source, registered_at_us: int) -> tuple[Any, ...]:
        """The row of ``asset_definitions`` (``DEFINITION_COLUMNS``) registering this definition."""
        return (
            self.asset_key, list(self.asset_key_path), location, source, self.definition_hash, registered_at_us,
            False, self.description, list(self.owners), dict(self.tags), list(self.kinds), self.group_name,
            list(self.deps), self.code_version, self.execution_type, self.partitions, self.automation_condition,
            dict(self.metadata), dict(self.metadata_types), self.freshness_policy,
        )  # fmt: skip


def removal_row(
    asset_key: str, asset_key_path: list[str], definition_hash: str, location: str, source: Source, at_us: int
) -> tuple[Any, ...]:
    """The row saying that ``asset_key`` left ``location``: the hash of what was removed, nothing else."""
    return (
        asset_key, asset_key_path, location, source, definition_hash, at_us, True, "", [], {}, [], "", [], "",
        "external", "", "", {}, {}, "",
    )  # fmt: skip


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
