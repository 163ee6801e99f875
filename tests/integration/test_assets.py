"""Software-defined assets end to end on the real broker and ClickHouse engine: observing a source,
eager automation downstream of it, runs of selected assets, provenance on the stored events."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer

from assetpipe import Reporter, RunRequest
from assetpipe.consumers.sensors.run_keys import run_request_record
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.schemas.codec import Codec
from assetpipe.schemas.settings import Settings
from tests.integration.pipeline import finished_runs, location_settings, pipeline, rows, wait_rows

SettingsFactory = Callable[..., Settings]


@pytest.fixture
def source_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "raw.csv"
    path.write_text("a\nb\n")
    monkeypatch.setenv("ASSETS_DEFS_SOURCE_FILE", str(path))  # read by the user's definitions file
    yield path


def request_assets(settings: Settings, selection: list[str], job_name: str = "__ASSET_JOB") -> str:
    """Publish a run request for assets of the settings' code location, as `assetpipe assets` does."""
    run_id = str(uuid.uuid4())
    record = run_request_record(
        RunRequest(asset_selection=selection),
        run_id=run_id,
        job_name=job_name,
        code_location=str(settings.code_location),
    )
    producer = Producer(settings.producer_config())
    producer.produce(settings.topics.run_requests, Codec().encode("run_request", record), run_id.encode())
    assert producer.flush(30) == 0
    return run_id


def materializations(warehouse: Warehouse, key: str, run_id: str | None = None) -> list[tuple[str, dict[str, str]]]:
    """The asset's materializations in time order: all of them, or those of one run (other tests of the session
    may materialize the same asset)."""
    return rows(
        warehouse,
        "SELECT data_version, tags FROM {db}.asset_events WHERE asset_key = %(k)s AND event_type = 'materialization' "
        "AND (%(run)s = '' OR run_id = %(run)s) ORDER BY timestamp",
        k=key,
        run=run_id or "",
    )


def test_a_changed_source_re_materializes_its_eager_downstream_once_per_change(
    settings_factory: SettingsFactory, warehouse: Warehouse, source_file: Path
) -> None:
    settings = location_settings(settings_factory)
    first_hash = hashlib.sha256(source_file.read_bytes()).hexdigest()
    with pipeline(settings, warehouse, "assets_defs.py"):
        request_assets(settings, ["source_file"])
        [(version, tags)] = wait_rows(
            warehouse,
            "SELECT data_version, tags FROM {db}.asset_events WHERE asset_key = 'parsed' ORDER BY timestamp",
            1,
        )
        assert tags["dagster/input_data_version/source_file"] == first_hash
        assert tags["dagster/code_version"] == "1"
        assert version == hashlib.sha256(("1" + first_hash).encode()).hexdigest()

        source_file.write_text("a\nb\nc\n")
        second_hash = hashlib.sha256(source_file.read_bytes()).hexdigest()
        request_assets(settings, ["source_file"])
        wait_rows(warehouse, "SELECT 1 FROM {db}.asset_events WHERE asset_key = 'parsed'", 2)
        request_assets(settings, ["source_file"])  # unchanged: the observation is a duplicate, nothing runs
        runs = finished_runs(warehouse, settings, 5)

    observed = rows(
        warehouse,
        "SELECT data_version FROM {db}.asset_events WHERE asset_key = 'source_file' ORDER BY timestamp",
    )
    assert observed == [(first_hash,), (second_hash,)]
    parsed = materializations(warehouse, "parsed")
    assert [tags["dagster/input_data_version/source_file"] for _, tags in parsed] == [first_hash, second_hash]
    eager = [r for r in runs if r["tags"].get("dagster/automation_condition") == "eager"]
    assert [(r["status"], r["sensor_name"]) for r in eager] == [
        ("succeeded", "default_automation_condition_sensor")
    ] * 2
    assert sum(r["status"] == "succeeded" for r in runs) == 5  # 3 observation runs, 2 eager runs


def test_a_sensor_requests_a_run_of_selected_assets(settings_factory: SettingsFactory, warehouse: Warehouse) -> None:
    settings = location_settings(settings_factory)
    with pipeline(settings, warehouse, "assets_defs.py"), Reporter(settings=settings) as reporter:
        reporter.report_materialization("trigger/selection")
        [run] = finished_runs(warehouse, settings, 1)
        wait_rows(warehouse, "SELECT 1 FROM {db}.asset_events WHERE asset_key = 'sel/second'", 1)
    assert run["status"] == "succeeded", run["error_message"]
    [(_, first_tags)] = materializations(warehouse, "sel/first", run["run_id"])
    [(_, second_tags)] = materializations(warehouse, "sel/second", run["run_id"])
    assert second_tags["dagster/input_data_version/sel/first"] == first_tags["dagster/data_version"]
    for table in ("runs", "run_requests"):  # the request as recorded with its tick is what a restart republishes
        selection = rows(warehouse, f"SELECT asset_selection FROM {{db}}.{table} FINAL WHERE run_id = %(id)s",
                         id=run["run_id"])  # fmt: skip
        assert selection == [(["sel/first", "sel/second"],)], table


def test_a_selection_that_is_not_an_asset_of_the_location_fails_the_run(
    settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    settings = location_settings(settings_factory)
    with pipeline(settings, warehouse, "assets_defs.py", sensors=False):
        request_assets(settings, ["nowhere"])
        request_assets(settings, ["external/table"])
        request_assets(settings, ["source_file", "parsed"])
        runs = finished_runs(warehouse, settings, 3)
    assert sorted(r["error_message"] for r in runs) == sorted(
        [
            "job '__ASSET_JOB' selects asset 'nowhere', which is not defined in this code location",
            "job '__ASSET_JOB' selects asset 'external/table', an external asset: it has no function to run",
            "Asset selection specified both regular assets and source assets. This is not currently supported. "
            "Selections must be all regular assets or all source assets.",
        ]
    )
