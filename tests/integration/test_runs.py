"""The run worker end to end: run requests -> jobs -> runs, run events and asset events in ClickHouse.
Real broker, real ClickHouse engine."""

from __future__ import annotations

import dataclasses
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import pytest
from confluent_kafka import Producer

from assetpipe import AssetMaterialization, Definitions, Out, Output, Reporter, job, op
from assetpipe.consumers.ingest.worker import IngestWorker
from assetpipe.consumers.runs.worker import RunWorker
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.schemas.settings import Settings
from tests.integration.helpers import read_topic, wait_until
from tests.integration.pipeline import (
    finished_runs,
    location_settings,
    pipeline,
    request_run,
    rows,
    running,
    wait_rows,
)

SettingsFactory = Callable[..., Settings]


def run_events(warehouse: Warehouse, run_id: str) -> list[tuple[Any, ...]]:
    """(event type, op, attempt, message, metadata) of a run, in order."""
    return rows(
        warehouse,
        "SELECT event_type, op_name, attempt, message, metadata FROM {db}.run_events WHERE run_id = %(id)s "
        "ORDER BY seq",
        id=run_id,
    )


def test_a_chain_of_sensors_and_jobs_runs_to_the_end(settings_factory: SettingsFactory, warehouse: Warehouse) -> None:
    settings = location_settings(settings_factory)
    version = uuid.uuid4().hex[:12]
    with pipeline(settings, warehouse, "chain_defs.py"), Reporter(settings=settings) as reporter:
        reporter.report_materialization("chain/a", data_version=version)
        runs = finished_runs(warehouse, settings, 2)
    assert [(r["job_name"], r["sensor_name"], r["status"]) for r in runs] == [
        ("make_b", "a_sensor", "succeeded"),
        ("make_c", "b_sensor", "succeeded"),
    ]
    events = rows(
        warehouse,
        "SELECT asset_key, data_version, source, run_id, metadata FROM {db}.asset_events "
        "WHERE asset_key IN ('chain/b', 'chain/c') AND data_version LIKE %(v)s ORDER BY asset_key",
        v=f"%{version}",
    )
    assert events == [
        ("chain/b", f"b-{version}", "run", str(runs[0]["run_id"]), {"from": version}),
        ("chain/c", f"c-b-{version}", "run", str(runs[1]["run_id"]), {}),
    ]
    b_event = rows(warehouse, "SELECT toString(event_id) FROM {db}.asset_events WHERE data_version = %(v)s",
                   v=f"b-{version}")[0][0]  # fmt: skip
    assert runs[1]["trigger_event_id"] == b_event  # job C was requested by B's materialization


def test_ops_record_outputs_expectations_and_asset_events(
    settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    settings = location_settings(settings_factory)
    with pipeline(settings, warehouse, "ops_defs.py", sensors=False):
        run_id = request_run(settings, "etl")
        [run] = finished_runs(warehouse, settings, 1)
        sql = "SELECT asset_key, metadata, source FROM {db}.asset_events WHERE run_id = %(id)s"
        observed = wait_rows(warehouse, sql, 1, id=run_id)
    assert (run["status"], run["attempts"]) == ("succeeded", 2)
    assert observed == [("ops/source", {"num_rows": "3"}, "run")]
    events = run_events(warehouse, run_id)
    assert [e[:2] for e in events] == [
        ("run_started", ""),
        ("asset_observation", "extract"),
        ("step_output", "extract"),
        ("step_success", "extract"),
        ("expectation_result", "check"),
        ("step_output", "check"),
        ("step_success", "check"),
        ("run_success", ""),
    ]
    expectation = rows(warehouse, "SELECT success, label, message, metadata FROM {db}.run_events "
                       "WHERE run_id = %(id)s AND event_type = 'expectation_result'", id=run_id)  # fmt: skip
    assert expectation == [(True, "has_rows", "ensure rows", {"n": "3"})]
    assert events[5][4] == {"total": "6", "dashboard_url": "http://example.com/d"}


def test_a_failure_fails_the_run_with_its_metadata(settings_factory: SettingsFactory, warehouse: Warehouse) -> None:
    settings = location_settings(settings_factory)
    with pipeline(settings, warehouse, "ops_defs.py", sensors=False):
        run_id = request_run(settings, "no_files")
        [run] = finished_runs(warehouse, settings, 1)
    assert (run["status"], run["error_type"]) == ("failed", "Failure")
    assert run["error_message"] == "op 'no_files' failed: No files to process"
    assert run["error_metadata"] == {"filepath": "/path/to/files", "dashboard_url": "http://example.com/f"}
    failure = [e for e in run_events(warehouse, run_id) if e[0] == "step_failure"]
    assert failure == [("step_failure", "no_files", 0, "No files to process", run["error_metadata"])]


def test_retry_requested_runs_the_op_again_until_it_succeeds(
    settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    settings = location_settings(settings_factory)
    with pipeline(settings, warehouse, "ops_defs.py", sensors=False):
        flaky, exhausted = request_run(settings, "flaky"), request_run(settings, "always_flaky")
        runs = {str(r["run_id"]): r for r in finished_runs(warehouse, settings, 2)}
    assert (runs[flaky]["status"], runs[flaky]["attempts"]) == ("succeeded", 3)
    assert [e[:3] for e in run_events(warehouse, flaky) if e[0] == "step_retry"] == [
        ("step_retry", "flaky", 1),
        ("step_retry", "flaky", 2),
    ]
    assert runs[exhausted]["status"] == "failed"
    assert runs[exhausted]["error_message"] == "op 'always_flaky' failed: Exceeded max_retries of 1"


def test_an_exception_fails_the_run_with_its_traceback(settings_factory: SettingsFactory, warehouse: Warehouse) -> None:
    settings = location_settings(settings_factory)
    with pipeline(settings, warehouse, "ops_defs.py", sensors=False):
        broken, retried = request_run(settings, "broken"), request_run(settings, "policy_retried")
        runs = {str(r["run_id"]): r for r in finished_runs(warehouse, settings, 2)}
    assert (runs[broken]["status"], runs[broken]["error_type"]) == ("failed", "KeyError")
    assert "Traceback (most recent call last)" in runs[broken]["error_traceback"]
    assert 'return {}["missing"]' in runs[broken]["error_traceback"]
    assert (runs[retried]["status"], runs[retried]["attempts"]) == ("succeeded", 3)  # the job's retry policy


def test_a_request_delivered_twice_runs_once(settings_factory: SettingsFactory, warehouse: Warehouse) -> None:
    settings = location_settings(settings_factory)
    with pipeline(settings, warehouse, "ops_defs.py", sensors=False) as p:
        run_id = request_run(settings, "etl")
        finished_runs(warehouse, settings, 1)
        [message] = read_topic(settings, settings.topics.run_requests, 1)
        producer = Producer(settings.producer_config())  # the same message again, as a redelivery brings it
        producer.produce(settings.topics.run_requests, message.value(), message.key())
        assert producer.flush(30) == 0
        runs = p.runs
        assert runs is not None
        wait_until(lambda: runs.status()["skipped"] == 1, 30, "the repeated request skipped")
    assert [e[0] for e in run_events(warehouse, run_id)].count("run_started") == 1


class _Receiver(BaseHTTPRequestHandler):
    """Answers 503 to the first POST, then 200; keeps what it received (a list set per server)."""

    received: ClassVar[list[tuple[dict[str, Any], str]]]

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.append((body, self.headers.get("Idempotency-Key", "")))
        self.send_response(503 if len(self.received) == 1 else 200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, Any], str]]]]:
    received: list[tuple[dict[str, Any], str]] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/runs", received
    server.shutdown()
    server.server_close()


def test_a_job_that_runs_elsewhere_is_posted_to_the_webhook_with_retries(
    settings_factory: SettingsFactory,
    warehouse: Warehouse,
    receiver: tuple[str, list[tuple[dict[str, Any], str]]],
) -> None:
    url, received = receiver
    settings = location_settings(settings_factory, run_webhook_url=url, run_webhook_backoff_s=0.05)
    with pipeline(settings, warehouse, "ops_defs.py", sensors=False):
        run_id = request_run(settings, "refresh_dashboards", {"ops": {"x": {"config": {"y": 1}}}})
        [run] = finished_runs(warehouse, settings, 1)
    assert (run["status"], run["attempts"]) == ("launched", 2)
    assert len(received) == 2 and received[0] == received[1]  # a retry sends the same body
    body, key = received[1]
    assert key == run_id
    assert (body["run_id"], body["job_name"], body["code_location"]) == (run_id, "refresh_dashboards",
                                                                        settings.code_location)  # fmt: skip
    assert body["run_config"] == {"ops": {"x": {"config": {"y": 1}}}}
    assert [e[0] for e in run_events(warehouse, run_id)] == ["run_launched"]


# Dagster code that runs unchanged: an op with two outputs wired to two ops, its config checked against
# its config_schema (the job's own config by default), an event whose data version is the op's tag.


@op(out={"rows": Out(), "summary": Out()}, config_schema={"table": str, "limit": int})
def extract_rows(context: Any) -> tuple[Output[list[int]], Output[str]]:
    table, limit = context.op_config["table"], context.op_config["limit"]
    version = f"{table}-{limit}-{context.run_id}"
    context.log_event(AssetMaterialization(f"compat.{table}", tags={"dagster/data_version": version,
                                                                     "dagster/code_version": "v1"}))  # fmt: skip
    rows_out = Output(list(range(limit)), metadata={"count": limit})
    return rows_out, Output(f"{limit} rows of {table}", output_name="summary", metadata={"table": table})


@op
def count_rows(context: Any, rows: list[int]) -> int:
    context.log.info(f"counted {len(rows)}")
    return len(rows)


@op
def report_summary(context: Any, summary: str) -> None:
    context.log.info(summary)


@job(config={"ops": {"extract_rows": {"config": {"table": "orders", "limit": 3}}}})
def compat_etl() -> None:
    rows, summary = extract_rows()
    count_rows(rows)
    report_summary(summary)


@op(out={"a": Out(), "b": Out()})
def half_done(context: Any) -> Iterator[Output[int]]:
    yield Output(1, output_name="a")


@job
def compat_missing_output() -> None:
    half_done()


COMPAT_DEFS = Definitions(jobs=[compat_etl, compat_missing_output])


@contextmanager
def compat_pipeline(settings: Settings, warehouse: Warehouse) -> Iterator[None]:
    """The ingest and run workers of the jobs above, in the settings' code location."""
    defs = dataclasses.replace(COMPAT_DEFS, location=str(settings.code_location))
    with running(IngestWorker(settings, warehouse), RunWorker(settings, defs, warehouse)):
        yield


def test_an_op_with_two_outputs_feeds_each_to_its_own_op_with_the_jobs_default_config(
    settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    settings = location_settings(settings_factory)
    with compat_pipeline(settings, warehouse):
        run_id = request_run(settings, "compat_etl")  # no run config: the job's own
        [run] = finished_runs(warehouse, settings, 1)
        sql = "SELECT asset_key, data_version, tags FROM {db}.asset_events WHERE run_id = %(id)s"
        stored = wait_rows(warehouse, sql, 1, id=run_id)
    assert run["status"] == "succeeded", run["error_message"]
    events = rows(warehouse, "SELECT event_type, op_name, output_name, message, metadata FROM {db}.run_events "
                  "WHERE run_id = %(id)s AND event_type IN ('step_output', 'log') ORDER BY seq", id=run_id)  # fmt: skip
    assert events == [
        ("step_output", "extract_rows", "rows", "", {"count": "3"}),
        ("step_output", "extract_rows", "summary", "", {"table": "orders"}),
        ("log", "count_rows", "", "counted 3", {}),
        ("step_output", "count_rows", "result", "", {}),
        ("log", "report_summary", "", "3 rows of orders", {}),
    ]
    version = f"orders-3-{run_id}"  # the op's tag is the stored data version, and stays a tag
    assert stored == [("compat/orders", version, {"dagster/data_version": version, "dagster/code_version": "v1"})]


def test_a_runs_own_config_replaces_the_jobs_and_one_that_does_not_fit_fails_the_run(
    settings_factory: SettingsFactory, warehouse: Warehouse
) -> None:
    settings = location_settings(settings_factory)
    with compat_pipeline(settings, warehouse):
        own = request_run(settings, "compat_etl", {"ops": {"extract_rows": {"config": {"table": "items", "limit": 2}}}})
        unfit = request_run(settings, "compat_etl", {"ops": {"extract_rows": {"config": {"table": "items"}}}})
        missing = request_run(settings, "compat_missing_output")
        runs = {str(r["run_id"]): r for r in finished_runs(warehouse, settings, 3)}
    assert runs[own]["status"] == "succeeded"
    logged = rows(warehouse, "SELECT message FROM {db}.run_events WHERE run_id = %(id)s AND event_type = 'log' "
                  "ORDER BY seq", id=own)  # fmt: skip
    assert logged == [("counted 2",), ("2 rows of items",)]
    assert (runs[unfit]["status"], runs[unfit]["error_type"]) == ("failed", "RunConfigError")
    assert (
        runs[unfit]["error_message"] == "invalid config for op 'extract_rows': field 'limit' is missing (expected int)"
    )
    assert [e[0] for e in run_events(warehouse, unfit)] == ["run_started", "run_failure"]  # no op ran
    assert runs[missing]["status"] == "failed"
    assert runs[missing]["error_message"] == (
        "op 'half_done' failed: op 'half_done' did not produce its required output 'b'"
    )
