"""Lateness end to end, as a user meets it: a 2-second freshness policy registered over HTTP on an asset only
reported over HTTP (no definition), the ingest, check and alert workers on the real broker and ClickHouse
engine, a webhook receiver on loopback. No report for 2 s gives one FAIL evaluation and one alert soon after
the deadline; a report then gives PASS and one "resolved"."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from helpers import wait_until
from http_server import serving_stack_api
from pipeline import rows, running, wait_rows
from receivers import http_receiver

from assetpipe.broker import free_port
from assetpipe.consumers.alerts import AlertWorker
from assetpipe.consumers.checks.sources import registry_checks
from assetpipe.consumers.checks.worker import CheckWorker
from assetpipe.consumers.ingest.worker import IngestWorker
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.definitions.alerts import AlertPolicy, WebhookChannel
from assetpipe.schemas.settings import Settings

FRESHNESS = (
    "SELECT metadata['freshness_state'], toUnixTimestamp64Micro(timestamp), "
    "metadata['dagster/overdue_deadline_timestamp'] FROM {db}.asset_events WHERE asset_key = {key:String} "
    "AND check_name = 'freshness' ORDER BY timestamp"
)


def test_an_asset_reported_over_http_is_late_alerted_and_resolved(
    settings_factory: Callable[..., Settings], warehouse: Warehouse
) -> None:
    key = f"late{uuid.uuid4().hex[:8]}/orders"
    settings = settings_factory(
        http_port=free_port(),
        check_group_id=f"c{uuid.uuid4().hex[:8]}",
        alert_group_id=f"a{uuid.uuid4().hex[:8]}",
        check_refresh_seconds=0.2,
        alert_delivery_backoff_s=0.2,
    )
    with http_receiver() as hooks, serving_stack_api(settings, warehouse) as api:
        spec = {"freshness_policy": {"type": "time_window", "fail_window_seconds": 2}}
        assert api.put(f"/api/assets/{key}", json=spec).status_code in (200, 201)
        policy = AlertPolicy("late-orders", [WebhookChannel(hooks.url)], prefixes=[key.split("/")[0]])
        checks = CheckWorker(settings, lambda: registry_checks(warehouse), warehouse)
        alerts = AlertWorker(settings, [policy], warehouse)
        with running(IngestWorker(settings, warehouse), checks, alerts):
            wait_until(lambda: checks.evaluator.owns(key) and checks.evaluator.checked_assets() >= 1, 20, "checks")
            wait_until(lambda: alerts.loop.metrics.state == "running", 20, "alerts")
            time.sleep(1)  # the alert worker's group has its partitions
            reported = api.post(f"/report_asset_materialization/{key}", json={"metadata": {"rows": 1}})
            assert reported.status_code == 200, reported.text
            passed, failed = wait_rows(warehouse, FRESHNESS, 2, timeout=20, key=key)
            assert (passed[0], failed[0]) == ("PASS", "FAIL")
            wait_until(lambda: len(hooks.requests) >= 1, 10, "the FAIL alert")
            deadline_s = float(failed[2])
            (alert,) = hooks.requests
            assert (alert.body["transition"], alert.body["asset_key"], alert.body["check_name"]) == (
                "triggered",
                key,
                "freshness",
            ), alert.body
            late_by = time.time() - (time.monotonic() - alert.at) - deadline_s  # the alert's arrival, wall clock
            assert 0 <= late_by < 5, late_by  # seconds after the deadline (figures: bench/bench_checks.py)

            assert api.post(f"/report_asset_materialization/{key}").status_code == 200
            wait_rows(warehouse, FRESHNESS, 3, timeout=20, key=key)
            wait_until(lambda: len(hooks.requests) >= 2, 10, "the resolved alert")
            resolved = hooks.requests[1]
        # each state once (2 s later it is late again: a FAIL and an alert of its own may follow)
        assert [r[0] for r in rows(warehouse, FRESHNESS, key=key)][:3] == ["PASS", "FAIL", "PASS"]
        assert (resolved.body["transition"], resolved.body["check_name"]) == ("resolved", "freshness")
        assert [r.body["transition"] for r in hooks.requests][:2] == ["triggered", "resolved"]
