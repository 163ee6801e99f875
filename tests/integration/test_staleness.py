"""Staleness on the real broker and ClickHouse engine: events reported through the SDK with the provenance
tags a run records (``dagster/code_version``, ``dagster/input_data_version/<dep>``), ingested by the
ingest worker, read back from ``asset_staleness`` as Dagster's rules say (MISSING, FRESH, STALE and its
causes), and through ``GET /api/assets/{key}/status``. Asset keys carry a random prefix: the database is
the session's."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from assetpipe import Reporter
from assetpipe.api import build_app
from assetpipe.broker import free_port
from assetpipe.consumers.ingest.rows import EventColumns
from assetpipe.consumers.registry import AssetRegistry, asset_status
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.definitions.assets import AssetSpec, asset, external_assets, observable_source_asset
from assetpipe.definitions.partitions import StaticPartitionsDefinition
from assetpipe.producers.http import ApiServer
from assetpipe.schemas.model import build_record
from assetpipe.schemas.settings import Settings
from tests.integration.helpers import insert_event_rows, running_worker, wait_until

CODE, INPUT = "dagster/code_version", "dagster/input_data_version/"


def definitions(p: str, clean_code: str = "1", report_deps: tuple[str, ...] = ("clean",)) -> list[Any]:
    """A source, two chained assets, an asset reported without provenance, a partitioned asset, and an
    external asset, all under the prefix ``p``."""

    @observable_source_asset(key=[p, "raw"])
    def raw() -> None: ...

    @asset(key=[p, "clean"], deps=[raw], code_version=clean_code)
    def clean() -> None: ...

    @asset(key=[p, "report"], deps=[[p, dep] for dep in report_deps], code_version="1")
    def report() -> None: ...

    @asset(key=[p, "fed"], deps=[raw], code_version="1")
    def fed() -> None: ...

    @asset(key=[p, "daily"], deps=[raw], code_version="1", partitions_def=StaticPartitionsDefinition(["a", "b"]))
    def daily() -> None: ...

    ledger = AssetSpec([p, "ledger"], deps=[[p, "raw"]], code_version="9")
    return [raw, clean, report, fed, daily, *external_assets([ledger])]


class Statuses:
    """Each asset's status as ``asset_staleness`` gives it, waited for while the ingest worker catches up."""

    def __init__(self, warehouse: Warehouse, prefix: str) -> None:
        self.warehouse = warehouse
        self.prefix = prefix

    def of(self, name: str) -> dict[str, Any]:
        found = asset_status(self.warehouse.read_only_query, f"{self.prefix}/{name}")
        assert found is not None, name
        return found

    def causes(self, name: str) -> list[tuple[str, str, str]]:
        return [(c["category"], c["dependency"], c["reason"]) for c in self.of(name)["causes"]]

    def wait(self, name: str, status: str, causes: list[tuple[str, str, str]] | None = None) -> None:
        def reached() -> bool:
            found = self.of(name)
            return found["status"] == status and (causes is None or self.causes(name) == causes)

        wait_until(reached, 60, f"{name} {status} {causes or ''} (now {self.of(name)})")


def test_status_follows_materializations_provenance_and_definitions(
    settings_factory: Callable[..., Settings], warehouse: Warehouse
) -> None:
    settings = settings_factory(http_port=free_port())
    p = f"s{uuid.uuid4().hex[:8]}"
    registry = AssetRegistry(warehouse)
    location = f"stale_{p}"
    registry.register_location(location, definitions(p), 1_000)
    status = Statuses(warehouse, p)
    raw, clean = f"{p}/raw", f"{p}/clean"
    assert [status.of(n)["status"] for n in ("raw", "clean", "report", "fed", "daily", "ledger")] == [
        "FRESH", "MISSING", "MISSING", "MISSING", "MISSING", "FRESH",
    ]  # fmt: skip

    with Reporter(settings=settings) as reporter, running_worker(settings, warehouse):
        reporter.report_observation(raw, data_version="r1")
        reporter.report_materialization(clean, data_version="c1", tags={CODE: "1", INPUT + raw: "r1"})
        reporter.report_materialization(f"{p}/report", data_version="p1", tags={CODE: "1", INPUT + clean: "c1"})
        reporter.report_materialization(f"{p}/fed", data_version="f1")  # no provenance: reported from elsewhere
        reporter.report_materialization(f"{p}/daily", partition="a", tags={CODE: "0", INPUT + raw: "r0"})
        reporter.report_materialization(f"{p}/ledger", tags={CODE: "0", INPUT + raw: "r0"})  # external: no rules
        reporter.report_materialization(f"{p}/only/reported", data_version="o1")
        reporter.flush()
        for name in ("clean", "report", "fed", "daily", "ledger"):
            status.wait(name, "FRESH", [])
        reported = status.of("only/reported")
        assert (reported["status"], reported["definition"], reported["data_version"]) == ("FRESH", None, "o1")

        reporter.report_observation(raw, data_version="r2")  # the source changed
        reporter.flush()
        status.wait("clean", "STALE", [("DATA", raw, "upstream data has changed")])
        status.wait("fed", "STALE", [("DATA", raw, "upstream materialized after it")])
        for name in ("report", "daily", "ledger", "raw"):
            assert status.of(name)["status"] == "FRESH", name

        registry.register_location(location, definitions(p, clean_code="2"), 2_000)  # clean's code changed
        assert status.causes("clean") == [
            ("CODE", "", "has a new code version"), ("DATA", raw, "upstream data has changed"),
        ]  # fmt: skip

        reporter.report_materialization(clean, data_version="c2", tags={CODE: "2", INPUT + raw: "r2"})  # a run
        reporter.flush()
        status.wait("clean", "FRESH", [])
        status.wait("report", "STALE", [("DATA", clean, "upstream data has changed")])

        registry.register_location(location, definitions(p, "2", report_deps=("raw",)), 3_000)
        assert status.causes("report") == [
            ("DEPENDENCIES", clean, f"removed dependency on {clean}"),
            ("DEPENDENCIES", raw, f"has a new dependency on {raw}"),
        ]

    server = ApiServer(build_app(settings, warehouse), settings)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            answer = client.get(f"/api/assets/{p}/report/status")
            unknown = client.get(f"/api/assets/{p}/unknown/status")
    finally:
        server.stop()
    assert answer.status_code == 200
    body = answer.json()
    assert (body["asset_key"], body["status"]) == (f"{p}/report", "STALE")
    assert body["causes"][0] == {
        "category": "DEPENDENCIES",
        "dependency": clean,
        "reason": f"removed dependency on {clean}",
    }
    assert (body["definition"]["code_location"], body["definition"]["version"]) == (location, 2)
    assert body["definition"]["deps"] == [raw]
    assert unknown.status_code == 404


@pytest.mark.parametrize("old_warehouse", [10], indirect=True)  # as a version before the registry left it
def test_an_upgraded_warehouse_knows_the_state_of_the_events_stored_before(
    old_warehouse: Warehouse,
) -> None:
    warehouse = old_warehouse
    rows = EventColumns()
    stored = [
        ("observation", "raw", "r1", {}),
        ("materialization", "clean", "c1", {CODE: "1", INPUT + "raw": "r1"}),
        ("materialization", "report", "p1", {CODE: "1", INPUT + "clean": "c0"}),
    ]
    for i, (event_type, key, version, tags) in enumerate(stored):
        record = build_record(event_type, [key], source="sdk", host="test", data_version=version, tags=tags)
        rows.append(event_type, record, i, 0, i)
    insert_event_rows(warehouse, rows)
    warehouse.migrate()

    @observable_source_asset(key="raw")
    def raw() -> None: ...

    @asset(key="clean", deps=[raw], code_version="1")
    def clean() -> None: ...

    @asset(key="report", deps=[clean], code_version="1")
    def report() -> None: ...

    AssetRegistry(warehouse).register_location("upgraded", [raw, clean, report], 1_000)
    found = {key: asset_status(warehouse.read_only_query, key) for key in ("raw", "clean", "report")}
    assert {key: s["status"] for key, s in found.items() if s is not None} == {
        "raw": "FRESH", "clean": "FRESH", "report": "STALE",
    }  # fmt: skip
    assert found["report"] is not None and found["report"]["causes"] == [
        {"category": "DATA", "dependency": "clean", "reason": "upstream data has changed"}
    ]
