"""Freshness policies and monitor checks in the registry on the real ClickHouse engine: a policy from code and
one over HTTP (``PUT /api/assets/...``, for an asset only reported) land in ``latest_asset_definitions``, a changed
policy is a new version; a code location's monitors are registered as its whole set (unchanged: nothing
written; removed: a removal row), as the run worker registers them; and the reads the check worker starts
from. Asset keys carry a random prefix: the database is the session's."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from assetpipe import (
    AssetCheckSeverity,
    AssetSpec,
    Definitions,
    FreshnessPolicy,
    asset,
    build_last_update_freshness_checks,
    build_metadata_anomaly_checks,
    build_metadata_bounds_checks,
    observable_source_asset,
)
from assetpipe.broker import free_port
from assetpipe.consumers.registry import AssetRegistry
from assetpipe.consumers.registry.monitors import CurrentPolicy, current_monitors, current_policies
from assetpipe.consumers.runs.worker import RunHandler
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.schemas.settings import Settings
from tests.integration.http_server import serving_stack_api

HOURLY = FreshnessPolicy.time_window(timedelta(hours=1), timedelta(minutes=30))
DAILY = FreshnessPolicy.cron("0 9 * * *", timedelta(hours=1), "Europe/Paris")


@pytest.fixture
def prefix() -> str:
    return f"f{uuid.uuid4().hex[:8]}"


def definition(warehouse: Warehouse, key: str) -> dict[str, Any] | None:
    result = warehouse.query(
        f"SELECT * FROM {warehouse.database}.latest_asset_definitions WHERE asset_key = {{k:String}}",
        parameters={"k": key},
    )
    return dict(zip(result.column_names, result.rows[0], strict=True)) if result.rows else None


def rows_and_parts(warehouse: Warehouse, table: str, location: str) -> tuple[int, int]:
    """Rows of ``location`` in ``table``, and the table's active parts: an insert adds one."""
    db = warehouse.database
    rows = warehouse.query(
        f"SELECT count() FROM {db}.{table} WHERE code_location = {{l:String}}", parameters={"l": location}
    )
    parts = warehouse.query(
        "SELECT count() FROM system.parts WHERE database = {db:String} AND table = {t:String} AND active",
        parameters={"db": db, "t": table},
    )
    return int(rows.rows[0][0]), int(parts.rows[0][0])


def assets_with(prefix: str, policy: FreshnessPolicy | None) -> list[Any]:
    @asset(key=[prefix, "orders"], freshness_policy=policy)
    def orders() -> None: ...

    @observable_source_asset(key=[prefix, "raw"], freshness_policy=DAILY)
    def raw() -> None: ...

    return [orders, raw]


def test_a_policy_from_code_is_stored_and_a_changed_policy_is_a_new_version(warehouse: Warehouse, prefix: str) -> None:
    registry = AssetRegistry(warehouse)
    location = f"code_{prefix}"
    key = f"{prefix}/orders"
    assert registry.register_location(location, assets_with(prefix, HOURLY), 1_000).counts()["added"] == 2
    stored = definition(warehouse, key)
    assert stored is not None
    assert stored["freshness_policy"] == '{"fail_window_seconds":3600,"type":"time_window","warn_window_seconds":1800}'
    assert list(stored)[-1] == "freshness_policy"  # the new column comes last: readers of the others see them as before
    assert current_policies(warehouse, [key, f"{prefix}/raw"]) == [
        CurrentPolicy(key, HOURLY, ""),
        CurrentPolicy(f"{prefix}/raw", DAILY, ""),
    ]

    before = rows_and_parts(warehouse, "asset_definitions", location)
    assert registry.register_location(location, assets_with(prefix, HOURLY), 2_000).counts()["unchanged"] == 2
    assert rows_and_parts(warehouse, "asset_definitions", location) == before  # nothing written at all

    stricter = FreshnessPolicy.time_window(timedelta(minutes=20))
    changed = registry.register_location(location, assets_with(prefix, stricter), 3_000)
    assert changed.counts() == {"added": 0, "changed": 1, "unchanged": 1, "removed": 0}
    assert (definition(warehouse, key) or {})["version"] == 2
    assert current_policies(warehouse, [key]) == [CurrentPolicy(key, stricter, "")]
    dropped = registry.register_location(location, assets_with(prefix, None), 4_000)
    assert dropped.counts()["changed"] == 1
    assert ((definition(warehouse, key) or {})["version"], (definition(warehouse, key) or {})["freshness_policy"]) == (
        3,
        "",
    )
    assert current_policies(warehouse, [key]) == []


def test_a_policy_over_http_for_an_asset_only_reported(
    settings_factory: Callable[..., Settings], warehouse: Warehouse, prefix: str
) -> None:
    settings = settings_factory(http_port=free_port())
    key = f"{prefix}/reported"
    body = {"freshness_policy": {"type": "time_window", "fail_window_seconds": 2}}
    with serving_stack_api(settings, warehouse) as client:
        first = client.put(f"/api/assets/{key}", json=body)
        again = client.put(f"/api/assets/{key}", json=body)
        assert (first.status_code, first.json()) == (200, {"asset_key": key, "version": 1, "changed": True})
        assert again.json() == {"asset_key": key, "version": 1, "changed": False}
        cron = {"type": "cron", "deadline_cron": "*/5 * * * *", "lower_bound_delta_seconds": 300}
        moved = client.put(f"/api/assets/{key}", json={"freshness_policy": cron})
        assert moved.json() == {"asset_key": key, "version": 2, "changed": True}

        refused = client.put(f"/api/assets/{key}", json={"freshness_policy": {"type": "time_window"}})
        assert (refused.status_code, refused.json()["error"]) == (
            400,
            "freshness_policy.fail_window_seconds is required",
        )
        too_wide = client.put(
            f"/api/assets/{key}", json={"freshness_policy": {**cron, "lower_bound_delta_seconds": 301}}
        )
        assert too_wide.status_code == 400
        assert too_wide.json()["error"].startswith(
            "freshness_policy: lower_bound_delta must be less than or equal to the smallest cron interval of "
            "(300.0 seconds for deadline_cron */5 * * * *)"
        )
        assert client.put(f"/api/assets/{key}", json={"freshness_policy": []}).status_code == 400

    stored = definition(warehouse, key)
    assert stored is not None and (stored["source"], stored["version"]) == ("http", 2)
    assert stored["freshness_policy"] == (
        '{"deadline_cron":"*/5 * * * *","lower_bound_delta_seconds":300,"timezone":"UTC","type":"cron"}'
    )
    assert current_policies(warehouse, [key]) == [
        CurrentPolicy(key, FreshnessPolicy.cron("*/5 * * * *", timedelta(minutes=5)), "")
    ]


def monitors(prefix: str, severity: AssetCheckSeverity = AssetCheckSeverity.WARN, bounds: bool = True) -> Definitions:
    orders = AssetSpec([prefix, "orders"])
    checks = [
        *build_last_update_freshness_checks(
            assets=[orders, f"{prefix}/reported"], lower_bound_delta=timedelta(hours=2)
        ),
        *build_metadata_anomaly_checks(assets=[orders], severity=severity),
        *(build_metadata_bounds_checks(assets=[orders], metadata_key="rows", min_value=1) if bounds else []),
    ]
    return Definitions(assets=[orders], asset_checks=checks)


def current(warehouse: Warehouse, location: str) -> list[tuple[Any, ...]]:
    return warehouse.query(
        f"SELECT asset_key, check_name, toString(kind), toString(severity), params FROM {warehouse.database}"
        ".current_asset_monitors WHERE code_location = {l:String} ORDER BY asset_key, check_name",
        parameters={"l": location},
    ).rows


def test_a_locations_monitors_are_registered_as_its_whole_set(warehouse: Warehouse, prefix: str) -> None:
    registry = AssetRegistry(warehouse)
    location = f"monitored_{prefix}"
    defs = monitors(prefix)
    registry.register_location(location, defs.assets, 1_000, defs.monitors())
    assert current(warehouse, location) == [
        (f"{prefix}/orders", "dagster/row_count_anomaly", "anomaly", "WARN",
         '{"lookback_days":28,"metadata_key":"dagster/row_count","min_history":14,"sensitivity":3.0}'),
        (f"{prefix}/orders", "freshness_check", "last_update", "WARN",
         '{"deadline_cron":null,"lower_bound_delta_seconds":7200.0,"timezone":"UTC"}'),
        (f"{prefix}/orders", "rows_bounds", "bounds", "WARN",
         '{"exclusive_max":false,"exclusive_min":false,"max_value":null,"metadata_key":"rows","min_value":1}'),
        (f"{prefix}/reported", "freshness_check", "last_update", "WARN",
         '{"deadline_cron":null,"lower_bound_delta_seconds":7200.0,"timezone":"UTC"}'),
    ]  # fmt: skip
    assert current_monitors(warehouse, location) == sorted(defs.monitors(), key=lambda m: (m.asset_key, m.check_name))

    before = rows_and_parts(warehouse, "asset_monitors", location)
    registry.register_location(location, defs.assets, 2_000, defs.monitors())
    assert rows_and_parts(warehouse, "asset_monitors", location) == before  # unchanged: no row, no insert

    stricter = monitors(prefix, AssetCheckSeverity.ERROR, bounds=False)
    registry.register_location(location, stricter.assets, 3_000, stricter.monitors())
    assert rows_and_parts(warehouse, "asset_monitors", location)[0] == before[0] + 2  # one changed, one removed
    history = warehouse.query(
        f"SELECT check_name, toString(severity), removed, toUnixTimestamp64Micro(registered_at) FROM "
        f"{warehouse.database}.asset_monitors WHERE code_location = {{l:String}} AND asset_key = {{k:String}} "
        "ORDER BY check_name, registered_at",
        parameters={"l": location, "k": f"{prefix}/orders"},
    ).rows
    assert history == [
        ("dagster/row_count_anomaly", "WARN", False, 1_000),
        ("dagster/row_count_anomaly", "ERROR", False, 3_000),
        ("freshness_check", "WARN", False, 1_000),
        ("rows_bounds", "WARN", False, 1_000),
        ("rows_bounds", "WARN", True, 3_000),  # the removal row keeps what was removed
    ]
    assert [(key, name, severity) for key, name, _, severity, _ in current(warehouse, location)] == [
        (f"{prefix}/orders", "dagster/row_count_anomaly", "ERROR"),
        (f"{prefix}/orders", "freshness_check", "WARN"),
        (f"{prefix}/reported", "freshness_check", "WARN"),
    ]
    registry.register_location(location, [], 4_000)  # the location has nothing left
    assert current(warehouse, location) == []
    assert current_monitors(warehouse, location) == []


def test_the_run_worker_registers_its_locations_monitors(settings: Settings, warehouse: Warehouse, prefix: str) -> None:
    defs = monitors(prefix)
    location = f"worker_{prefix}"
    handler = RunHandler(
        Definitions(assets=defs.assets, asset_checks=defs.asset_checks, location=location),
        warehouse,
        settings,
        None,  # type: ignore[arg-type]  # registering publishes nothing
        None,  # type: ignore[arg-type]
    )
    handler.prepare()
    assert len(current(warehouse, location)) == 4
    assert {m.check_name for m in current_monitors(warehouse)} >= {"freshness_check", "rows_bounds"}
