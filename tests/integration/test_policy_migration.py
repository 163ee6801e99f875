"""Upgrading across 0019 on the real ClickHouse engine: definitions stored before read the same, with
``freshness_policy`` '', registering them again writes nothing, and new policies and monitors are stored."""

from __future__ import annotations

from datetime import timedelta

import pytest

from assetpipe import AssetSpec, FreshnessPolicy, build_metadata_bounds_checks
from assetpipe.consumers.registry import AssetRegistry, StoredDefinition
from assetpipe.consumers.registry.definition import DEFINITION_COLUMNS, removal_row
from assetpipe.consumers.registry.monitors import current_monitors
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.definitions.assets import external_assets

BEFORE_0019 = DEFINITION_COLUMNS[:-1]  # freshness_policy is 0019's, the last column
COLUMNS = "asset_key, code_location, toString(source), version, description, owners, shadowed, versions"


@pytest.mark.parametrize("old_warehouse", [19], indirect=True)
def test_definitions_stored_before_0019_read_the_same_with_no_policy(old_warehouse: Warehouse) -> None:
    db = old_warehouse.database
    orders, gone = external_assets(
        [AssetSpec(["shop", "orders"], description="code", owners=["team:shop"]), AssetSpec(["shop", "gone"])]
    )
    rows = [  # as the registry of the earlier version wrote them: shop/gone left its code location
        StoredDefinition.of(orders).row("shop", "code", 1_000),
        (gone_row := StoredDefinition.of(gone).row("shop", "code", 1_000)),
        StoredDefinition.of(AssetSpec(["shop", "orders"], description="http")).row("", "http", 2_000),
        removal_row("shop/gone", ["shop", "gone"], gone_row[4], "shop", "code", 3_000),
    ]
    columns = [list(c) for c in zip(*rows, strict=True)][: len(BEFORE_0019)]
    old_warehouse.insert("asset_definitions", columns, BEFORE_0019)
    AssetRegistry(old_warehouse).refresh()  # as the earlier registry did after its insert
    latest = f"SELECT {COLUMNS} FROM {db}.latest_asset_definitions ORDER BY ALL"
    versions = f"SELECT asset_key, code_location, version, removed FROM {db}.asset_definition_versions ORDER BY ALL"
    current = f"SELECT asset_key, revision, defined FROM {db}.asset_definitions_current FINAL ORDER BY ALL"
    before = {sql: old_warehouse.query(sql).rows for sql in (latest, versions, current)}
    assert before[latest] == [("shop/orders", "shop", "code", 1, "code", ["team:shop"], ["http"], 2)]

    assert old_warehouse.migrate()[0] == "0019_freshness_policies"
    assert {sql: old_warehouse.query(sql).rows for sql in (latest, versions, current)} == before
    assert old_warehouse.query(f"SELECT asset_key, freshness_policy FROM {db}.latest_asset_definitions").rows == [
        ("shop/orders", "")
    ]
    assert old_warehouse.query(
        f"SELECT count() FROM {db}.asset_definition_versions WHERE freshness_policy != ''"
    ).rows == [(0,)]

    registry = AssetRegistry(old_warehouse)
    again = registry.register_location("shop", [orders], 4_000)  # the hash without a policy is the old one
    assert again.counts() == {"added": 0, "changed": 0, "unchanged": 1, "removed": 0}
    assert old_warehouse.query(f"SELECT count() FROM {db}.asset_definitions").rows == [(4,)]

    policy = FreshnessPolicy.time_window(timedelta(hours=1))
    with_policy = orders.with_spec(orders.spec.replace_attributes(freshness_policy=policy))
    checks = build_metadata_bounds_checks(assets=[orders], metadata_key="rows", min_value=1)
    changed = registry.register_location("shop", [with_policy], 5_000, checks[0].specs)
    assert changed.counts()["changed"] == 1
    assert old_warehouse.query(
        f"SELECT asset_key, version, freshness_policy FROM {db}.latest_asset_definitions"
    ).rows == [("shop/orders", 2, policy.to_json_text())]
    assert [m.check_name for m in current_monitors(old_warehouse, "shop")] == ["rows_bounds"]
