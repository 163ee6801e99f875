"""Materialization failures through the ingest worker, on the real broker and engine: stored with their type
and reason, once per (run, asset, partition), each partition's state failed by a FAILED failure only."""

from __future__ import annotations

import uuid

from assetpipe import AssetMaterialization, AssetMaterializationFailure, Reporter
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.schemas.metadata import TableColumn, TableSchema
from assetpipe.schemas.settings import Settings
from tests.integration.helpers import running_worker, wait_until

EVENTS = (
    "SELECT partition, run_id, toString(source), toString(failure_type), toString(failure_reason), data_version, "
    "description, metadata_types FROM {db}.asset_events WHERE asset_key = %(key)s "
    "AND event_type = 'materialization_failure' ORDER BY partition, run_id, timestamp"
)
STATE = (
    "SELECT partition, toString(event_type), run_id, toString(failure_reason) FROM {db}.asset_partition_state FINAL "
    "WHERE asset_key = %(key)s ORDER BY partition, event_type"
)


def test_failures_are_stored_once_per_run_asset_and_partition(settings: Settings, warehouse: Warehouse) -> None:
    key = f"ops/load_{uuid.uuid4().hex[:8]}"
    db = warehouse.database
    failed = AssetMaterializationFailure(
        key, partition="p1", run_id="run-1", reason="FAILED_TO_MATERIALIZE", description="OOM", metadata={"try": 1}
    )
    with Reporter(settings=settings) as reporter:
        reporter.report(AssetMaterialization(key, partition="p1", run_id="run-0"))
        reporter.report(failed)
        reporter.report(AssetMaterializationFailure(key, partition="p1", run_id="run-1", metadata={"try": 2}))
        reporter.report_materialization_failure(key, partition="p2", run_id="run-1", failure_type="SKIPPED")
        # no run id: each report is a failure of its own; a table schema is rendered by Python, not ClickHouse
        columns = TableSchema([TableColumn("id", "int")])
        reporter.report(AssetMaterializationFailure(key, partition="p3", metadata={"columns": columns}))
        reporter.report(AssetMaterializationFailure(key, partition="p3"))
    with Reporter(settings=settings, source="openlineage", host="marquez") as lineage:
        lineage.report_materialization_failure(key.split("/"), partition="p4", run_id="ol-run", reason="RUN_TERMINATED")
    with running_worker(settings, warehouse) as worker:
        wait_until(lambda: worker.status()["consumed"] >= 7, 60, "seven events consumed")
        status = worker.status()

    assert (status["ingested"], status["duplicates"], status["invalid"]) == (6, 1, 0)
    rows = warehouse.query(EVENTS.format(db=db), parameters={"key": key}).rows
    assert rows == [
        ("p1", "run-1", "sdk", "FAILED", "FAILED_TO_MATERIALIZE", "", "OOM", {"try": "int"}),  # the first report
        ("p2", "run-1", "sdk", "SKIPPED", "UNKNOWN", "", "", {}),
        ("p3", "", "sdk", "FAILED", "UNKNOWN", "", "", {"columns": "table_schema"}),
        ("p3", "", "sdk", "FAILED", "UNKNOWN", "", "", {}),
        ("p4", "ol-run", "openlineage", "FAILED", "RUN_TERMINATED", "", "", {}),
    ]
    # p1 keeps its materialization and has a failure after it; p2's skip changed nothing
    assert warehouse.query(STATE.format(db=db), parameters={"key": key}).rows == [
        ("p1", "materialization", "run-0", None),
        ("p1", "materialization_failure", "run-1", "FAILED_TO_MATERIALIZE"),
        ("p3", "materialization_failure", "", "UNKNOWN"),
        ("p4", "materialization_failure", "ol-run", "RUN_TERMINATED"),
    ]
