"""The asset registry on the real ClickHouse engine: a code location's versions and removals, specs over
HTTP (``PUT /api/assets/...``) and from a file (``assetpipe assets apply``), which definition wins, and the
HTTP API taking observations of defined assets. Asset keys carry a random prefix: the database is the
session's."""

from __future__ import annotations

import json
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from assetpipe.broker import free_port
from assetpipe.consumers.registry import AssetRegistry, StoredDefinition
from assetpipe.consumers.registry.definition import DEFINITION_COLUMNS
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.definitions.assets import AssetSpec, asset, external_assets, observable_source_asset
from assetpipe.producers.http import hash_key
from assetpipe.schemas.settings import Settings
from tests.integration.helpers import run_cli, running_up, start_cli, up_env, wait_until
from tests.integration.http_server import serving_stack_api, wait_known_assets_loaded

SettingsFactory = Callable[..., Settings]


@pytest.fixture
def prefix() -> str:
    return f"r{uuid.uuid4().hex[:8]}"


def count(warehouse: Warehouse, sql: str, **params: Any) -> int:
    return int(warehouse.query(sql.format(db=warehouse.database), parameters=params).rows[0][0])


def versions(warehouse: Warehouse, key: str) -> list[tuple[Any, ...]]:
    return warehouse.query(
        f"SELECT code_location, toString(source), version, removed FROM {warehouse.database}.asset_definition_versions "
        "WHERE asset_key = {k:String} ORDER BY registered_at, code_location, source",
        parameters={"k": key},
    ).rows


def latest(warehouse: Warehouse, key: str) -> dict[str, Any] | None:
    result = warehouse.query(
        f"SELECT * FROM {warehouse.database}.latest_asset_definitions WHERE asset_key = {{k:String}}",
        parameters={"k": key},
    )
    return dict(zip(result.column_names, result.rows[0], strict=True)) if result.rows else None


def parts(warehouse: Warehouse) -> int:
    """Active parts of asset_definitions: an insert, even of rows seen before, adds one."""
    sql = "SELECT count() FROM system.parts WHERE database = {db:String} AND table = 'asset_definitions' AND active"
    return int(warehouse.query(sql, parameters={"db": warehouse.database}).rows[0][0])


def location_assets(prefix: str, code_version: str = "1", with_report: bool = True) -> list[Any]:
    @observable_source_asset(key=[prefix, "raw"], owners=["team:ingest"], kinds=["csv"])
    def raw() -> None: ...

    @asset(key=[prefix, "clean"], deps=[raw], code_version=code_version, metadata={"rows": 10, "doc": "x"})
    def clean() -> None: ...

    @asset(key=[prefix, "report"], deps=[clean], group_name="finance")
    def report() -> None: ...

    ledger = AssetSpec([prefix, "ledger"], owners=["ana@example.com"], description="kept elsewhere")
    return [raw, clean, *([report] if with_report else []), *external_assets([ledger])]


def test_a_code_location_keeps_every_version_and_writes_nothing_when_unchanged(
    warehouse: Warehouse, prefix: str
) -> None:
    registry = AssetRegistry(warehouse)
    location = f"loc_{prefix}"
    total = f"SELECT count() FROM {{db}}.asset_definitions WHERE code_location = '{location}'"

    first = registry.register_location(location, location_assets(prefix), 1_000)
    assert first.counts() == {"added": 4, "changed": 0, "unchanged": 0, "removed": 0}
    stored = latest(warehouse, f"{prefix}/clean")
    assert stored is not None
    assert (stored["execution_type"], stored["deps"], stored["code_version"]) == (
        "materialization",
        [f"{prefix}/raw"],
        "1",
    )
    assert (stored["metadata"], stored["metadata_types"]) == (
        {"rows": "10", "doc": "x"},
        {"rows": "int", "doc": "text"},
    )
    assert latest(warehouse, f"{prefix}/raw")["execution_type"] == "observation"  # type: ignore[index]
    assert latest(warehouse, f"{prefix}/raw")["kinds"] == ["csv"]  # type: ignore[index]
    assert latest(warehouse, f"{prefix}/ledger")["execution_type"] == "external"  # type: ignore[index]

    changed = registry.register_location(location, location_assets(prefix, code_version="2"), 2_000)
    assert changed.counts() == {"added": 0, "changed": 1, "unchanged": 3, "removed": 0}
    assert versions(warehouse, f"{prefix}/clean") == [(location, "code", 1, False), (location, "code", 2, False)]
    assert latest(warehouse, f"{prefix}/clean")["version"] == 2  # type: ignore[index]

    removed = registry.register_location(location, location_assets(prefix, "2", with_report=False), 3_000)
    assert removed.counts() == {"added": 0, "changed": 0, "unchanged": 3, "removed": 1}
    assert versions(warehouse, f"{prefix}/report") == [(location, "code", 1, False), (location, "code", 1, True)]
    assert latest(warehouse, f"{prefix}/report") is None

    rows, inserts = count(warehouse, total), parts(warehouse)
    again = registry.register_location(location, location_assets(prefix, "2", with_report=False), 4_000)
    assert again.counts() == {"added": 0, "changed": 0, "unchanged": 3, "removed": 0}
    assert (count(warehouse, total), parts(warehouse)) == (rows, inserts)  # no row, no insert at all

    back = registry.register_location(location, location_assets(prefix, "2"), 5_000)
    assert back.counts()["added"] == 1
    assert versions(warehouse, f"{prefix}/report")[-1] == (location, "code", 2, False)


def test_two_replicas_registering_one_change_make_one_version(warehouse: Warehouse, prefix: str) -> None:
    location = f"replicated_{prefix}"
    (first,) = external_assets([AssetSpec([prefix, "twice"], code_version="1")])
    AssetRegistry(warehouse).register_location(location, [first], 1_000)
    second = first.with_spec(first.spec.replace_attributes(code_version="2"))
    changed = StoredDefinition.of(second)
    rows = [changed.row(location, "code", at) for at in (2_000, 2_001)]  # both read version 1, both wrote 2
    warehouse.insert("asset_definitions", [list(c) for c in zip(*rows, strict=True)], DEFINITION_COLUMNS)
    AssetRegistry(warehouse).refresh()  # as each replica does after its insert
    revision = f"SELECT revision FROM {warehouse.database}.asset_definitions_current FINAL"
    assert warehouse.query(f"{revision} WHERE asset_key = {{k:String}}", parameters={"k": f"{prefix}/twice"}).rows == [
        (2,)  # two versions read: the second row is the same version
    ]
    assert versions(warehouse, f"{prefix}/twice") == [(location, "code", 1, False), (location, "code", 2, False)]
    assert latest(warehouse, f"{prefix}/twice")["version"] == 2  # type: ignore[index]
    assert AssetRegistry(warehouse).register_location(location, [second], 3_000).counts()["unchanged"] == 1


def test_a_registration_interrupted_before_its_refresh_is_caught_up_by_the_next(
    warehouse: Warehouse, prefix: str
) -> None:
    location = f"interrupted_{prefix}"
    (first,) = external_assets([AssetSpec([prefix, "late"], code_version="1")])
    AssetRegistry(warehouse).register_location(location, [first], 1_000)
    second = first.with_spec(first.spec.replace_attributes(code_version="2"))
    row = StoredDefinition.of(second).row(location, "code", 2_000)  # written, then the process died
    warehouse.insert("asset_definitions", [[c] for c in row], DEFINITION_COLUMNS)
    assert latest(warehouse, f"{prefix}/late")["code_version"] == "1"  # type: ignore[index]
    summary = AssetRegistry(warehouse).register_location(location, [second], 3_000)  # its restart: unchanged
    assert summary.counts()["unchanged"] == 1
    assert latest(warehouse, f"{prefix}/late")["code_version"] == "2"  # type: ignore[index]
    AssetRegistry(warehouse).register_location(location, [], 4_000)  # the asset leaves its code location
    assert latest(warehouse, f"{prefix}/late") is None


def test_put_registers_a_spec_once_and_the_code_location_wins(
    settings_factory: SettingsFactory, warehouse: Warehouse, prefix: str
) -> None:
    settings = settings_factory(http_port=free_port())
    key = f"{prefix}/orders"
    body = {
        "description": "orders, from the shop",
        "deps": [f"{prefix}/raw", [prefix, "customers"]],
        "owners": ["ana@example.com", "team:sales"],
        "tags": {"domain": "sales", "pii": ""},
        "kinds": ["duckdb"],
        "group_name": "sales",
        "code_version": "7",
        "metadata": {"rows": 12, "runbook": {"type": "url", "value": "https://wiki/orders"}},
    }
    with serving_stack_api(settings, warehouse) as client:
        first = client.put(f"/api/assets/{key}", json=body)
        again = client.put(f"/api/assets/{key}", json=body)
        assert (first.status_code, first.json()) == (200, {"asset_key": key, "version": 1, "changed": True})
        assert (again.status_code, again.json()) == (200, {"asset_key": key, "version": 1, "changed": False})
        moved = client.put(f"/api/assets/{key}", json={**body, "code_version": "8"})
        assert moved.json() == {"asset_key": key, "version": 2, "changed": True}

        bad_owner = client.put(f"/api/assets/{key}", json={"owners": ["bob"]})
        assert bad_owner.status_code == 400
        assert bad_owner.json()["error"] == (
            f"Invalid owner 'bob' for asset '{key}'. Owner must be an email address or a team name prefixed with "
            "'team:'."
        )
        assert "unknown field 'owner'" in client.put(f"/api/assets/{key}", json={"owner": ["a@b.co"]}).json()["error"]
        assert client.put(f"/api/assets/{key}", json={"tags": {"a": 1}}).json()["error"] == (
            "Tag values must be strings, got type <class 'int'> at key a."
        )
        assert client.put(f"/api/assets/{key}", json={"kinds": [str(i) for i in range(11)]}).json()["error"] == (
            "Assets can have at most ten kinds currently."
        )
        assert client.put(f"/api/assets/{key}", content=b"[1]").status_code == 400
        assert client.put(f"/api/assets/{key}", content=b"x", headers={"content-type": "text/plain"}).status_code == 415
        assert client.put(f"/api/assets/{key}", json={"code_location": "a b"}).status_code == 400
        assert client.put(f"/api/assets/{prefix}/a%0Ab", json={}).status_code == 400  # a control character
        on_status = client.put(f"/api/assets/{key}/status", json={})  # the path of the status of `key`
        assert (on_status.status_code, on_status.headers["allow"]) == (405, "GET")

    stored = latest(warehouse, key)
    assert stored is not None
    assert (stored["source"], stored["code_location"], stored["version"], stored["code_version"]) == (
        "http",
        "",
        2,
        "8",
    )
    assert stored["deps"] == [f"{prefix}/customers", f"{prefix}/raw"]
    assert stored["tags"] == {"domain": "sales", "pii": "", "dagster/kind/duckdb": ""}
    assert stored["metadata_types"] == {"rows": "int", "runbook": "url"}

    (orders,) = external_assets([AssetSpec(key, owners=["team:shop"])])
    AssetRegistry(warehouse).register_location(f"shop_{prefix}", [orders], 1_000)  # older, and still the winner
    won = latest(warehouse, key)
    assert won is not None
    assert (won["source"], won["code_location"], won["owners"]) == ("code", f"shop_{prefix}", ["team:shop"])
    assert won["shadowed"] == ["http"]


def test_the_define_scope_and_a_missing_registry(
    settings_factory: SettingsFactory, warehouse: Warehouse, prefix: str
) -> None:
    keys = f"{hash_key('k-report')}:name=etl;{hash_key('k-define')}:name=catalog:types=define:prefixes={prefix}/"
    settings = settings_factory(http_port=free_port(), api_keys=keys)
    with serving_stack_api(settings, warehouse) as client:
        assert client.put(f"/api/assets/{prefix}/a", json={}).status_code == 401
        report_key = client.put(f"/api/assets/{prefix}/a", json={}, headers={"X-API-Key": "k-report"})
        assert report_key.status_code == 403
        assert report_key.json()["error"] == "API key 'etl' may not define assets: its types must include define"
        outside = client.put("/api/assets/elsewhere/a", json={}, headers={"X-API-Key": "k-define"})
        assert outside.status_code == 403 and "allowed prefixes" in outside.json()["error"]
        defined = client.put(f"/api/assets/{prefix}/a", json={}, headers={"X-API-Key": "k-define"})
        assert defined.json() == {"asset_key": f"{prefix}/a", "version": 1, "changed": True}
        reporting = client.post(f"/report_asset_materialization/{prefix}/a", headers={"X-API-Key": "k-define"})
        assert reporting.status_code == 403  # a define key reports nothing
        assert client.get(f"/api/assets/{prefix}/a/status").status_code == 401
        assert client.get(f"/api/assets/{prefix}/a/status", headers={"X-API-Key": "k-report"}).status_code == 200

    # `assetpipe serve` against an embedded engine that no running stack holds: nowhere to register
    alone = settings_factory(http_port=free_port(), clickhouse_url=None)
    with serving_stack_api(alone, None) as client:
        refused = client.put(f"/api/assets/{prefix}/b", json={"description": "x"})
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert "no stack is running with this data directory" in refused.json()["error"]
        assert client.put(f"/api/assets/{prefix}/b", json={"owners": ["bob"]}).status_code == 400  # checked first
        assert client.get(f"/api/assets/{prefix}/b/status").status_code == 503
        document = client.get("/openapi.json").json()
        assert {"/api/assets/{asset_key}", "/api/assets/{asset_key}/status"} <= set(document["paths"])


def test_defined_assets_take_observations_before_their_first_materialization(
    settings_factory: SettingsFactory, warehouse: Warehouse, prefix: str
) -> None:
    AssetRegistry(warehouse).register_location(f"obs_{prefix}", location_assets(prefix), 1_000)
    settings = settings_factory(http_port=free_port())
    with serving_stack_api(settings, warehouse) as client:
        wait_known_assets_loaded(client)
        assert client.post(f"/report_asset_observation/{prefix}/raw", json={"data_version": "r1"}).status_code == 200
        assert client.post(f"/report_asset_observation/{prefix}/clean").status_code == 200
        assert client.post(f"/report_asset_observation/{prefix}/undefined").status_code == 404
        assert client.put(f"/api/assets/{prefix}/undefined", json={}).status_code == 200
        assert client.post(f"/report_asset_observation/{prefix}/undefined").status_code == 200  # known once defined
        check = {"check_name": "rows", "passed": True}
        assert client.post(f"/report_asset_check/{prefix}/ledger", json=check).status_code == 200
        status = client.get(f"/api/assets/{prefix}/clean/status")
        assert status.status_code == 200
        assert status.json()["status"] == "MISSING"
        assert status.json()["definition"]["code_location"] == f"obs_{prefix}"
        unknown = client.get(f"/api/assets/{prefix}/nothing/status")
        assert (unknown.status_code, unknown.json()["error"]) == (404, f"Asset key '{prefix}/nothing' not found")


# -- the command line and `assetpipe serve` beside a running stack ---------------------------------------


@pytest.fixture(scope="module")
def stack_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """An ``assetpipe up`` of its own: the CLI and ``serve`` reach its embedded engine through its socket."""
    directory = tmp_path_factory.mktemp("registry_up")
    env = up_env(directory / "data")
    with running_up([], env, directory / "up.log"):
        yield env


def assets(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(["assets", *args], env)


def test_assets_apply_list_and_show_through_a_running_stack(stack_env: dict[str, str], tmp_path: Path) -> None:
    specs = tmp_path / "specs.yaml"
    specs.write_text(
        "code_location: warehouse\n"
        "assets:\n"
        "  - key: sales/orders\n"
        "    description: every order\n"
        "    owners: [ana@example.com]\n"
        "    kinds: [snowflake]\n"
        "    group_name: sales\n"
        "    deps: [sales/raw]\n"
        "    metadata: {rows: 3, dashboard: {type: url, value: 'https://bi/orders'}}\n"
        "  - key: [sales, raw]\n"
        "    tags: {tier: gold}\n"
    )
    first = assets(stack_env, "apply", str(specs))
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "added      sales/orders (version 1)",
        "added      sales/raw (version 1)",
        "2 added, 0 changed, 0 unchanged (code location 'warehouse')",
    ]
    again = assets(stack_env, "apply", str(specs))
    assert again.stdout.splitlines()[:2] == ["unchanged  sales/orders (version 1)", "unchanged  sales/raw (version 1)"]

    bad = tmp_path / "bad.yaml"
    bad.write_text("- key: sales/fine\n- key: sales/broken\n  owners: [bob]\n")
    refused = assets(stack_env, "apply", str(bad))
    assert refused.returncode == 2
    assert f"{bad}: entry 2 (sales/broken): Invalid owner 'bob'" in refused.stderr

    listed = assets(stack_env, "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["asset_key"]: row for row in json.loads(listed.stdout)}
    assert "sales/fine" not in rows  # nothing of a refused file is registered
    assert rows["sales/orders"] == {
        "asset_key": "sales/orders", "location": "warehouse", "source": "file", "type": "external",
        "kinds": ["snowflake"], "group": "sales", "owners": ["ana@example.com"], "status": "FRESH",
    }  # fmt: skip
    table = [line.split() for line in assets(stack_env, "list").stdout.splitlines()]
    assert ["sales/orders", "warehouse", "file", "external", "snowflake", "sales", "ana@example.com", "FRESH"] in table

    shown = assets(stack_env, "show", "sales/orders", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert detail["status"] == "FRESH" and detail["definition"]["metadata_types"] == {"rows": "int", "dashboard": "url"}
    assert [v["version"] for v in detail["history"]] == [1]
    assert "status    FRESH" in assets(stack_env, "show", "sales/orders").stdout
    missing = assets(stack_env, "show", "sales/none")
    assert missing.returncode == 2 and "neither defined nor ever reported" in missing.stderr


def test_serve_defines_assets_through_the_running_stack(stack_env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    serve = start_cli(
        ["serve", "--port", str(port)], {**stack_env, "ASSETPIPE_HTTP_PORT": str(port)}, tmp_path / "s.log"
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            wait_until(lambda: _answers(client), 60, "assetpipe serve answering")
            put = client.put("/api/assets/served/spec", json={"owners": ["team:web"]})
            assert put.json() == {"asset_key": "served/spec", "version": 1, "changed": True}
            status = client.get("/api/assets/served/spec/status").json()
            assert status["status"] == "FRESH" and status["definition"]["source"] == "http"
    finally:
        serve.send_signal(signal.SIGINT)
        serve.wait(30)
    shown = assets(stack_env, "show", "served/spec", "--format", "json")
    assert json.loads(shown.stdout)["definition"]["owners"] == ["team:web"]


def _answers(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.HTTPError:
        return False


# -- the document of the routes ------------------------------------------------------------------------


@pytest.fixture
def asset_api_schema(settings_factory: SettingsFactory, warehouse: Warehouse) -> Iterator[schemathesis.BaseSchema]:
    with serving_stack_api(settings_factory(http_port=free_port()), warehouse) as client:
        yield schemathesis.openapi.from_url(f"{client.base_url}/openapi.json")


# the filter goes on the lazy schema: one set inside the fixture does not reach the tests it parametrizes
asset_schema = schemathesis.pytest.from_fixture("asset_api_schema").include(
    operation_id=["put_asset", "get_asset_status"]
)


@asset_schema.parametrize()
@settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_the_asset_routes_do_what_their_document_says(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
    """Requests generated from ``/openapi.json``, valid and invalid, against the routes with a registry: no
    5xx, documented statuses and bodies, schema-invalid specs refused (a valid one may still be refused by
    a rule no schema states, such as the types of the standard metadata keys)."""
    case.call_and_validate(timeout=30, excluded_checks=[positive_data_acceptance])
