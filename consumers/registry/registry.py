"""Registering asset definitions: a code location's whole set, or specs over HTTP or from a file.

A registration reads the latest version of each of its assets in its (code location, source) once,
then writes one insert holding only what changed: an asset whose hash is unchanged writes nothing, and
registering an unchanged set writes no insert at all. A code location's registration is its whole set,
so an asset it no longer has gets one row saying it was removed; specs registered over HTTP or from a
file never remove anything. Two processes registering the same change at once may both write it: the
views read consecutive rows with one hash as one version. A code location's monitor checks are registered
with its assets, alike (``consumers.registry.monitors``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from assetpipe.consumers.registry.definition import (
    DEFINITION_COLUMNS,
    SOURCES,
    Source,
    StoredDefinition,
    removal_row,
)
from assetpipe.consumers.registry.exceptions import SpecError
from assetpipe.consumers.registry.monitors import register_monitors
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.definitions.assets import AssetsDefinition, AssetSpec
from assetpipe.definitions.monitors import MonitorSpec

Outcome = Literal["added", "changed", "unchanged", "removed"]
OUTCOMES: tuple[Outcome, ...] = ("added", "changed", "unchanged", "removed")

_LATEST = (
    "SELECT v.asset_key, argMax(v.definition_hash, v.registered_at), argMax(v.removed, v.registered_at), "
    "max(v.version), argMax(v.asset_key_path, v.registered_at) "
    "FROM {db}.asset_definition_versions AS v "
    "WHERE v.code_location = {{location:String}} AND v.source = {{source:String}}{keys} "
    "GROUP BY v.asset_key"
)
# The current definition of every asset with more versions (and removals) than its row of
# asset_definitions_current read, or with none: the whole set's versions counted once, the ranked rows of those
# assets only.
_REFRESH = (
    "INSERT INTO {db}.asset_definitions_current SELECT * FROM {db}.asset_definitions_ranked AS r "
    "WHERE r.asset_key IN (SELECT v.asset_key FROM (SELECT a.asset_key AS asset_key, count() AS revision "
    "FROM {db}.asset_definition_versions AS a GROUP BY a.asset_key) AS v "
    "LEFT JOIN (SELECT c.asset_key AS asset_key, max(c.revision) AS revision "
    "FROM {db}.asset_definitions_current AS c GROUP BY c.asset_key) AS k ON k.asset_key = v.asset_key "
    "WHERE v.revision > k.revision)"
)


@dataclass(frozen=True, slots=True)
class Registration:
    """What registering did to one asset, and its version in the (code location, source) afterwards."""

    asset_key: str
    outcome: Outcome
    version: int

    @property
    def changed(self) -> bool:
        return self.outcome != "unchanged"


@dataclass(frozen=True, slots=True)
class RegistrationSummary:
    location: str
    source: Source
    registrations: tuple[Registration, ...]

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.registrations if r.outcome == outcome)

    def counts(self) -> dict[str, int]:
        return {outcome: self.count(outcome) for outcome in OUTCOMES}

    def to_json(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "source": self.source,
            "registrations": [
                {"asset_key": r.asset_key, "outcome": r.outcome, "version": r.version} for r in self.registrations
            ],
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> RegistrationSummary:
        registrations = tuple(
            Registration(r["asset_key"], r["outcome"], int(r["version"])) for r in value["registrations"]
        )
        return cls(value["location"], value["source"], registrations)


@dataclass(frozen=True, slots=True)
class _Latest:
    definition_hash: str
    removed: bool
    version: int
    asset_key_path: list[str]


class AssetRegistry:
    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def register_location(
        self,
        location: str,
        assets: Sequence[AssetsDefinition],
        now_us: int,
        monitors: Sequence[MonitorSpec] = (),
    ) -> RegistrationSummary:
        """Register a code location's assets, and its monitor checks (``Definitions.monitors()``), each as its
        whole set: what it no longer has is removed."""
        summary = self._register([StoredDefinition.of(a) for a in assets], "code", location, now_us, complete=True)
        register_monitors(self.warehouse, location, monitors, now_us)
        return summary

    def register_specs(
        self, specs: Sequence[AssetSpec], source: Source, location: str, now_us: int
    ) -> RegistrationSummary:
        """Register specs (external assets) received over HTTP or read from a file; nothing is removed."""
        if source not in ("http", "file"):
            raise ValueError(f"specs are registered from 'http' or 'file', not {source!r}")
        return self._register([StoredDefinition.of(s) for s in specs], source, location, now_us, complete=False)

    def _register(
        self, definitions: list[StoredDefinition], source: Source, location: str, now_us: int, *, complete: bool
    ) -> RegistrationSummary:
        assert source in SOURCES
        keys = [d.asset_key for d in definitions]
        duplicates = sorted(k for k, n in Counter(keys).items() if n > 1)
        if duplicates:
            raise SpecError(f"asset keys registered twice: {', '.join(duplicates[:5])}")
        latest = self._latest(location, source, None if complete else keys)
        rows: list[tuple[Any, ...]] = []
        registrations: list[Registration] = []
        for definition in definitions:
            known = latest.get(definition.asset_key)
            if known is not None and not known.removed and known.definition_hash == definition.definition_hash:
                registrations.append(Registration(definition.asset_key, "unchanged", known.version))
                continue
            outcome: Outcome = "changed" if known is not None and not known.removed else "added"
            version = known.version + 1 if known is not None else 1
            rows.append(definition.row(location, source, now_us))
            registrations.append(Registration(definition.asset_key, outcome, version))
        if complete:
            present = set(keys)
            for key, known in sorted(latest.items()):
                if key in present or known.removed:
                    continue
                rows.append(removal_row(key, known.asset_key_path, known.definition_hash, location, source, now_us))
                registrations.append(Registration(key, "removed", known.version))
        if rows:
            self.warehouse.insert("asset_definitions", [list(c) for c in zip(*rows, strict=True)], DEFINITION_COLUMNS)
        self.refresh()
        return RegistrationSummary(location, source, tuple(registrations))

    def refresh(self) -> None:
        """Bring ``asset_definitions_current`` up to the versions registered: after every registration, so one
        interrupted between its insert and this is caught up by the next (an unchanged registration inserts
        nothing here either)."""
        self.warehouse.command(_REFRESH.format(db=self.warehouse.database))

    def _latest(self, location: str, source: Source, keys: Iterable[str] | None) -> dict[str, _Latest]:
        """The latest version of each asset of (``location``, ``source``), of ``keys`` only when given."""
        parameters: dict[str, Any] = {"location": location, "source": source}
        where = ""
        if keys is not None:
            parameters["keys"] = list(keys)
            where = " AND v.asset_key IN {keys:Array(String)}"
        sql = _LATEST.format(db=self.warehouse.database, keys=where)
        return {
            str(key): _Latest(str(digest), bool(removed), int(version), list(path))
            for key, digest, removed, version, path in self.warehouse.query(sql, parameters=parameters).rows
        }
