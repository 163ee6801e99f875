"""The monitor checks and freshness policies in the registry: registering a code location's monitors
(``asset_monitors``, its whole set, as its assets are registered), and the reads the evaluator starts from.

Registering reads the latest row of each of the location's checks once and writes one insert holding only
what changed: a new check, one whose kind, severity or params changed, and a removal row for each check the
location no longer has. Registering an unchanged set writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from assetpipe.consumers.warehouse import Warehouse
from assetpipe.definitions.freshness import FreshnessPolicy
from assetpipe.definitions.monitors import MonitorSpec

MONITOR_COLUMNS = ("code_location", "asset_key", "check_name", "kind", "severity", "params", "registered_at", "removed")

_LATEST = (
    "SELECT m.asset_key, m.check_name, argMax(m.kind, m.registered_at), argMax(m.severity, m.registered_at), "
    "argMax(m.params, m.registered_at), argMax(m.removed, m.registered_at) "
    "FROM {db}.asset_monitors AS m WHERE m.code_location = {{location:String}} "
    "GROUP BY m.asset_key, m.check_name"
)
_CURRENT = (
    "SELECT m.code_location, m.asset_key, m.check_name, toString(m.kind), toString(m.severity), m.params "
    "FROM {db}.current_asset_monitors AS m{where} ORDER BY m.asset_key, m.check_name, m.code_location"
)
_POLICIES = (
    "SELECT d.asset_key, d.freshness_policy, d.partitions FROM {db}.latest_asset_definitions AS d "
    "WHERE d.freshness_policy != ''{keys} ORDER BY d.asset_key"
)


@dataclass(frozen=True, slots=True)
class MonitorRegistration:
    """What registering a location's monitors did: how many were added, changed, unchanged, removed."""

    added: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0

    def counts(self) -> dict[str, int]:
        return {"added": self.added, "changed": self.changed, "unchanged": self.unchanged, "removed": self.removed}


@dataclass(frozen=True, slots=True)
class CurrentPolicy:
    """An asset's current freshness policy and its partitions (``describe()`` as JSON; '' for none)."""

    asset_key: str
    policy: FreshnessPolicy
    partitions: str


def register_monitors(
    warehouse: Warehouse, location: str, monitors: Sequence[MonitorSpec], now_us: int
) -> MonitorRegistration:
    """Register ``monitors`` as the whole set of ``location``'s monitor checks."""
    latest = _latest(warehouse, location)
    rows: list[tuple[Any, ...]] = []
    added = changed = unchanged = removed = 0
    present: set[tuple[str, str]] = set()
    for spec in monitors:
        key = (spec.asset_key, spec.check_name)
        if key in present:
            raise ValueError(f"check {spec.check_name!r} of asset '{spec.asset_key}' is registered twice")
        present.add(key)
        stored = (spec.kind, spec.severity, spec.params_json())
        known = latest.get(key)
        if known is not None and not known[3] and known[:3] == stored:
            unchanged += 1
            continue
        if known is not None and not known[3]:
            changed += 1
        else:
            added += 1
        rows.append((location, *key, *stored, now_us, False))
    for key, (kind, severity, params, was_removed) in sorted(latest.items()):
        if key not in present and not was_removed:
            rows.append((location, *key, kind, severity, params, now_us, True))
            removed += 1
    if rows:
        warehouse.insert("asset_monitors", [list(c) for c in zip(*rows, strict=True)], MONITOR_COLUMNS)
    return MonitorRegistration(added, changed, unchanged, removed)


def current_monitors(warehouse: Warehouse, location: str | None = None) -> list[MonitorSpec]:
    """Every monitor check registered now (of ``location`` only, when given), by asset and check name."""
    where = "" if location is None else " WHERE m.code_location = {location:String}"
    sql = _CURRENT.format(db=warehouse.database, where=where)
    rows = warehouse.query(sql, parameters=None if location is None else {"location": location}).rows
    return [
        MonitorSpec.from_json(
            {"kind": kind, "asset_key": key, "check_name": name, "severity": severity, "params": params}
        )
        for _, key, name, kind, severity, params in rows
    ]


def current_policies(warehouse: Warehouse, asset_keys: Iterable[str] | None = None) -> list[CurrentPolicy]:
    """The freshness policy of every asset whose current definition has one (of ``asset_keys`` only, when
    given), with its partitions: what the evaluator evaluates."""
    parameters: dict[str, Any] | None = None
    keys = ""
    if asset_keys is not None:
        parameters = {"keys": list(asset_keys)}
        keys = " AND d.asset_key IN {keys:Array(String)}"
    rows = warehouse.query(_POLICIES.format(db=warehouse.database, keys=keys), parameters=parameters).rows
    return [
        CurrentPolicy(str(key), FreshnessPolicy.from_json(str(text)), str(partitions)) for key, text, partitions in rows
    ]


def _latest(warehouse: Warehouse, location: str) -> dict[tuple[str, str], tuple[str, str, str, bool]]:
    """The latest row of each check of ``location``: (kind, severity, params, removed)."""
    result = warehouse.query(_LATEST.format(db=warehouse.database), parameters={"location": location})
    return {
        (str(key), str(name)): (str(kind), str(severity), str(params), bool(removed))
        for key, name, kind, severity, params, removed in result.rows
    }
