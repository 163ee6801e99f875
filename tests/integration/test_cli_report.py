"""``assetpipe report`` from the shell: the event whose id it prints lands in ClickHouse as given."""

from __future__ import annotations

import json

from assetpipe.consumers.warehouse import Warehouse
from assetpipe.schemas.settings import Settings
from tests.integration.helpers import cli_env, count_rows, run_cli, running_worker, wait_until


def test_reported_events_land_with_typed_metadata(settings: Settings, warehouse: Warehouse) -> None:
    env = cli_env(settings)
    metadata = {"rows": 12, "dashboard": {"type": "url", "value": "https://dash.example/x"}}
    mat = run_cli(
        ["report", "materialization", "cli/orders", "--partition", "2024-06-01", "--data-version", "v3",
         "--metadata", json.dumps(metadata), "--tag", "team=ops"],
        env,
    )  # fmt: skip
    assert mat.returncode == 0, mat.stderr
    check = run_cli(["report", "check", "cli/orders", "--check-name", "fresh", "--failed", "--severity", "WARN"], env)
    assert check.returncode == 0, check.stderr
    failure = run_cli(
        ["report", "materialization_failure", "cli/orders", "--partition", "2024-06-02", "--reason", "RUN_TERMINATED",
         "--failure-type", "SKIPPED", "--run-id", "r-9", "--description", "cancelled", "--tag", "team=ops"],
        env,
    )  # fmt: skip
    assert failure.returncode == 0, failure.stderr
    ids = [mat.stdout.strip(), check.stdout.strip(), failure.stdout.strip()]

    table, where = f"{settings.clickhouse_database}.asset_events", "event_id IN {ids:Array(UUID)}"
    with running_worker(settings, warehouse):
        wait_until(lambda: count_rows(warehouse, f"SELECT count() FROM {table} WHERE {where}", ids=ids) == 3, 60,
                   "the reported events in ClickHouse")  # fmt: skip
    rows = warehouse.query(
        "SELECT event_type, partition, data_version, metadata, metadata_types, tags, check_passed, check_severity "
        f"FROM {table} WHERE {where} ORDER BY event_type",
        parameters={"ids": ids},
    ).rows
    mat_row, check_row, failure_row = rows
    assert failure_row[:3] == ("materialization_failure", "2024-06-02", "") and failure_row[5] == {"team": "ops"}
    assert warehouse.query(
        f"SELECT failure_type, failure_reason, run_id, description FROM {table} WHERE event_id = {{id:UUID}}",
        parameters={"id": ids[2]},
    ).rows == [("SKIPPED", "RUN_TERMINATED", "r-9", "cancelled")]
    assert mat_row[:3] == ("materialization", "2024-06-01", "v3")
    assert mat_row[3] == {"rows": "12", "dashboard": "https://dash.example/x"}
    assert mat_row[4] == {"rows": "int", "dashboard": "url"}
    assert mat_row[5] == {"team": "ops"}
    assert check_row[0] == "check_evaluation" and check_row[6:] == (False, "WARN")


def test_bad_input_is_a_clear_error_and_publishes_nothing(settings: Settings) -> None:
    env = cli_env(settings)
    bad_metadata = run_cli(
        ["report", "materialization", "a", "--metadata", '{"n": {"type": "int", "value": "x"}}'], env
    )
    assert bad_metadata.returncode == 2
    assert "Invalid int value for metadata entry 'n'" in bad_metadata.stderr
    no_check_name = run_cli(["report", "check", "a", "--passed"], env)
    assert no_check_name.returncode == 2 and "--check-name" in no_check_name.stderr
    check_tag = run_cli(["report", "check", "a", "--check-name", "c", "--passed", "--tag", "k=v"], env)
    assert check_tag.returncode == 2 and "do not apply to a check" in check_tag.stderr
    bad_tag = run_cli(["report", "observation", "a", "--tag", "bad key=x"], env)
    assert bad_tag.returncode == 2 and "tags.bad key" in bad_tag.stderr
    versioned_failure = run_cli(["report", "materialization_failure", "a", "--data-version", "v1"], env)
    assert versioned_failure.returncode == 2 and "do not apply to a failure" in versioned_failure.stderr
    reason_elsewhere = run_cli(["report", "materialization", "a", "--reason", "UNKNOWN"], env)
    assert reason_elsewhere.returncode == 2 and "apply to a materialization_failure only" in reason_elsewhere.stderr
