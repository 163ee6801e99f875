"""Alerts on the real broker and ClickHouse engine, to real receivers on loopback: check evaluations reported
over the SDK become one webhook call, one Slack message and one email to the owner, recorded in ``alerts``;
repeats say nothing; a pass resolves; a webhook answering 500 twice is retried with backoff and recorded
once; two replicas send each alert once; a run failure and a sensor tick failure alert once each."""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from assetpipe import AlertPolicy, AssetSpec, EmailChannel, Reporter, SlackChannel, WebhookChannel
from assetpipe.consumers.alerts import AlertWorker
from assetpipe.consumers.registry.registry import AssetRegistry
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.schemas.codec import Codec
from assetpipe.schemas.model import build_record
from assetpipe.schemas.settings import Settings
from tests.integration.helpers import cli_env, run_cli, running, running_worker, start_cli, wait_until
from tests.integration.pipeline import location_settings, pipeline, rows
from tests.integration.receivers import HttpReceiver, SmtpReceiver, http_receiver, smtp_receiver

OWNER = "ana@example.com"


@pytest.fixture
def hooks() -> Iterator[HttpReceiver]:
    with http_receiver() as receiver:
        yield receiver


@pytest.fixture
def mail() -> Iterator[SmtpReceiver]:
    with smtp_receiver() as receiver:
        yield receiver


@pytest.fixture
def alert_settings(settings_factory: Callable[..., Settings], mail: SmtpReceiver) -> Settings:
    return settings_factory(
        alert_group_id=f"alerts-{uuid.uuid4().hex[:8]}",
        smtp_host=mail.host,
        smtp_port=mail.port,
        smtp_from="assetpipe@example.com",
        public_url="http://catalog.example:3000",
        alert_delivery_backoff_s=0.2,
    )


def prefix() -> str:
    return f"al{uuid.uuid4().hex[:8]}"


def alert_rows(warehouse: Warehouse, where: str, **params: Any) -> list[tuple[Any, ...]]:
    return rows(
        warehouse,
        "SELECT toString(transition), toString(channel_kind), recipient, toString(status), attempts, check_name, "
        "message, toString(kind) FROM {db}.alerts FINAL WHERE " + where + " ORDER BY transition, channel, recipient",
        **params,
    )


@contextmanager
def alerting(
    settings: Settings, warehouse: Warehouse, *policies: AlertPolicy, replicas: int = 1
) -> Iterator[list[AlertWorker]]:
    workers = [AlertWorker(settings, policies, warehouse) for _ in range(replicas)]
    with ExitStack() as stack:
        for i, worker in enumerate(workers):
            stack.enter_context(running(worker.run, f"alerts-{i}"))
        yield workers


def test_a_failing_check_alerts_each_channel_once_and_a_pass_resolves(
    alert_settings: Settings, warehouse: Warehouse, hooks: HttpReceiver, mail: SmtpReceiver
) -> None:
    root = prefix()
    key = f"{root}/orders"
    AssetRegistry(warehouse).register_specs(
        [AssetSpec(key, owners=[OWNER, "team:sales"], group_name="sales")], "http", "", time.time_ns() // 1000
    )
    policy = AlertPolicy(
        "sales",
        [WebhookChannel(hooks.url + "/hook"), SlackChannel(hooks.url + "/slack"), EmailChannel(to=[])],
        on=["check_error"],
        groups=["sales"],
    )
    with running_worker(alert_settings, warehouse), alerting(alert_settings, warehouse, policy) as (worker,):
        with Reporter(settings=alert_settings) as reporter:
            reporter.report_check(key, check_name="row_count_positive", passed=False, description="0 rows <b>")
        wait_until(lambda: len(mail.messages) == 1 and len(hooks.on("/hook")) == len(hooks.on("/slack")) == 1, 30,
                   "one webhook call, one Slack message, one email")  # fmt: skip
        (body,) = [r.body for r in hooks.on("/hook")]
        assert body["asset_key"] == key and body["transition"] == "triggered" and body["severity"] == "ERROR"
        assert body["owners"] == [OWNER, "team:sales"] and body["cause"] == "0 rows <b>"
        assert body["link"] == f"http://catalog.example:3000/assets/{root}/orders"
        text = hooks.on("/slack")[0].body["text"]
        assert f"{key}: check row_count_positive failed (ERROR)" in text and f"Owners: {OWNER}, team:sales" in text
        assert f"<http://catalog.example:3000/assets/{root}/orders|Open in assetpipe>" in text
        assert "0 rows &lt;b&gt;" in text
        (recipients, message), = mail.messages  # fmt: skip
        assert (
            recipients == [OWNER]
            and message["Subject"].strip() == f"[assetpipe] {key}: check row_count_positive failed (ERROR)"
        )
        wait_until(lambda: len(alert_rows(warehouse, "asset_key = %(k)s", k=key)) == 3, 10, "3 deliveries recorded")
        assert alert_rows(warehouse, "asset_key = %(k)s", k=key) == [
            ("triggered", "email", OWNER, "sent", 1, "row_count_positive", f"{key}: check row_count_positive failed "
             "(ERROR): 0 rows <b>", "check"),
            ("triggered", "slack", "slack", "sent", 1, "row_count_positive", f"{key}: check row_count_positive failed "
             "(ERROR): 0 rows <b>", "check"),
            ("triggered", "webhook", "webhook", "sent", 1, "row_count_positive", f"{key}: check row_count_positive "
             "failed (ERROR): 0 rows <b>", "check"),
        ]  # fmt: skip

        with Reporter(settings=alert_settings) as reporter:  # the same failure again: nothing
            reporter.report_check(key, check_name="row_count_positive", passed=False)
        wait_until(lambda: worker.handler.metrics.evaluations == 2, 30, "the second evaluation handled")
        assert len(hooks.requests) == 2 and len(mail.messages) == 1

        with Reporter(settings=alert_settings) as reporter:
            reporter.report_check(key, check_name="row_count_positive", passed=True)
        wait_until(lambda: len(mail.messages) == 2 and len(hooks.requests) == 4, 30, "one resolved on each channel")
        assert hooks.on("/hook")[1].body["transition"] == "resolved"
        assert f"{key}: check row_count_positive passes again" in hooks.on("/slack")[1].body["text"]
        assert mail.messages[1][1]["Subject"].strip() == f"[assetpipe] {key}: check row_count_positive passes again"
        resolved = alert_rows(warehouse, "asset_key = %(k)s AND transition = 'resolved'", k=key)
        assert [(r[0], r[1], r[3]) for r in resolved] == [
            ("resolved", c, "sent") for c in ("email", "slack", "webhook")
        ]
        time.sleep(1.5)
        assert len(hooks.requests) == 4 and len(mail.messages) == 2


def test_a_reported_only_asset_is_selected_by_prefix_and_freshness_alerts_on_its_state(
    alert_settings: Settings, warehouse: Warehouse, hooks: HttpReceiver
) -> None:
    root = prefix()
    policy = AlertPolicy("late", [WebhookChannel(hooks.url + "/late")], on=["freshness_fail"], prefixes=[root])
    other = AlertPolicy("owned", [WebhookChannel(hooks.url + "/owned")], owners=[OWNER])  # needs a definition
    states = [("WARN", False, "WARN"), ("FAIL", False, "ERROR"), ("FAIL", False, "ERROR"), ("PASS", True, "ERROR")]
    with running_worker(alert_settings, warehouse), alerting(alert_settings, warehouse, policy, other):
        with Reporter(settings=alert_settings) as reporter:
            for state, passed, severity in states:
                reporter.report_check(f"{root}/raw", check_name="freshness", passed=passed, severity=severity,
                                      metadata={"dagster/freshness_state": state})  # fmt: skip
        wait_until(lambda: len(hooks.requests) == 2, 30, "FAIL, then fresh again")
        time.sleep(1.0)
    assert [(r.body["transition"], r.body["state"]) for r in hooks.on("/late")] == [
        ("triggered", "FAIL"),
        ("resolved", "PASS"),
    ]
    assert hooks.on("/late")[0].body["title"] == f"{root}/raw is late (FAIL)"
    assert hooks.on("/owned") == []


def test_a_webhook_answering_500_twice_is_retried_with_backoff_and_recorded_once(
    alert_settings: Settings, warehouse: Warehouse, hooks: HttpReceiver
) -> None:
    root = prefix()
    key = f"{root}/flaky"
    hooks.answers = [500, 500]
    # this test's assets only: a policy of every asset also alerts on the runs and ticks that failed in other tests
    policy = AlertPolicy("retry", [WebhookChannel(hooks.url + "/retry")], prefixes=[root])
    with running_worker(alert_settings, warehouse), alerting(alert_settings, warehouse, policy):
        with Reporter(settings=alert_settings) as reporter:
            reporter.report_check(key, check_name="no_nulls", passed=False)
        wait_until(lambda: len(alert_rows(warehouse, "asset_key = %(k)s", k=key)) == 1, 30, "the alert recorded")
    calls = hooks.on("/retry")
    assert [c.status for c in calls] == [500, 500, 200]
    assert len({c.headers["Idempotency-Key"] for c in calls}) == 1
    assert calls[1].at - calls[0].at >= 0.19 and calls[2].at - calls[1].at >= 0.39  # 0.2 s, then doubled
    ((transition, kind, _, status, attempts, *_),) = alert_rows(warehouse, "asset_key = %(k)s", k=key)
    assert (transition, kind, status, attempts) == ("triggered", "webhook", "sent", 3)


def test_a_failure_to_materialize_alerts_once_and_the_next_materialization_resolves_it(
    alert_settings: Settings, warehouse: Warehouse, hooks: HttpReceiver
) -> None:
    root = prefix()
    orders, daily, other = f"{root}/orders", f"{root}/daily", f"{root}/other"
    policy = AlertPolicy(
        "loads", [WebhookChannel(hooks.url + "/loads")], on=["materialization_failed"], prefixes=[root]
    )
    with running_worker(alert_settings, warehouse), alerting(alert_settings, warehouse, policy) as (worker,):
        with Reporter(settings=alert_settings) as reporter:
            reporter.report_materialization(other)  # materialized, never failed: nothing
            reporter.report_materialization_failure(orders, reason="UPSTREAM_FAILED_TO_MATERIALIZE",
                                                    description="upstream raw/orders failed", run_id="r1")  # fmt: skip
            reporter.report_materialization_failure(daily, partition="2026-12-03", failure_type="FAILED")
            reporter.report_materialization_failure(other, failure_type="SKIPPED")  # expected: nothing
            reporter.report_materialization_failure(orders, description="again", run_id="r2")  # still open: nothing
        wait_until(lambda: len(hooks.on("/loads")) == 2 and worker.handler.metrics.evaluations >= 3, 30, "2 alerts")
        with Reporter(settings=alert_settings) as reporter:
            reporter.report_materialization(daily, partition="2026-12-02")  # another partition: still failed
            reporter.report_materialization(orders)
            reporter.report_materialization(daily, partition="2026-12-03")
        wait_until(lambda: len(hooks.on("/loads")) == 4, 30, "two resolved")
        time.sleep(1.0)  # nothing more comes
    bodies = [r.body for r in hooks.on("/loads")]
    assert sorted((b["asset_key"], b["transition"], b["partition"] or "", b["kind"]) for b in bodies) == [
        (daily, "resolved", "2026-12-03", "materialization"),
        (daily, "triggered", "2026-12-03", "materialization"),
        (orders, "resolved", "", "materialization"),
        (orders, "triggered", "", "materialization"),
    ]
    titles = {(b["asset_key"], b["transition"]): b["title"] for b in bodies}
    assert titles[(orders, "triggered")] == f"{orders} failed to materialize"
    assert titles[(daily, "triggered")] == f"{daily} failed to materialize (partition 2026-12-03)"
    assert titles[(orders, "resolved")] == f"{orders} materialized again"
    cause = next(b["cause"] for b in bodies if b["asset_key"] == orders and b["transition"] == "triggered")
    assert cause == "upstream raw/orders failed (FAILED, UPSTREAM_FAILED_TO_MATERIALIZE)"
    recorded = alert_rows(warehouse, "asset_key IN {k:Array(String)}", k=[orders, daily, other])
    assert len(recorded) == 4 and {r[7] for r in recorded} == {"materialization"}


def test_two_replicas_send_each_alert_once(alert_settings: Settings, warehouse: Warehouse, hooks: HttpReceiver) -> None:
    root = prefix()
    keys = [f"{root}/t{i}" for i in range(24)]
    policy = AlertPolicy("pair", [WebhookChannel(hooks.url + "/pair")], prefixes=[root])
    with running_worker(alert_settings, warehouse), ExitStack() as stack:
        first = AlertWorker(alert_settings, [policy], warehouse)
        stack.enter_context(running(first.run, "alerts-a"))
        with Reporter(settings=alert_settings) as reporter:
            for key in keys[:12]:
                reporter.report_check(key, check_name="rows", passed=False)
        second = AlertWorker(alert_settings, [policy], warehouse)  # joins mid-stream: partitions move
        stack.enter_context(running(second.run, "alerts-b"))
        wait_until(
            lambda: second.handler.metrics.evaluations + first.handler.metrics.evaluations >= 12, 30, "first half"
        )
        with Reporter(settings=alert_settings) as reporter:
            for key in keys[12:]:
                reporter.report_check(key, check_name="rows", passed=False)
            for key in keys:
                reporter.report_check(key, check_name="rows", passed=True)
        wait_until(lambda: len(hooks.delivered("/pair")) >= 48, 60, "48 alerts")
        time.sleep(1.5)
        assert first.handler.metrics.sent > 0 and second.handler.metrics.sent > 0
    delivered = hooks.delivered("/pair")
    assert len(delivered) == 48 and len({r.headers["Idempotency-Key"] for r in delivered}) == 48
    assert sorted((r.body["asset_key"], r.body["transition"]) for r in delivered) == sorted(
        (k, t) for k in keys for t in ("triggered", "resolved")
    )
    for key in keys:  # each asset's alerts in order: triggered before resolved
        assert [r.body["transition"] for r in delivered if r.body["asset_key"] == key] == ["triggered", "resolved"]


def test_a_run_failure_and_a_sensor_tick_failure_alert_once_each(
    settings_factory: Callable[..., Settings], warehouse: Warehouse, hooks: HttpReceiver
) -> None:
    settings = location_settings(settings_factory, alert_group_id=f"alerts-{uuid.uuid4().hex[:8]}",
                                 public_url="http://catalog.example:3000")  # fmt: skip
    policy = AlertPolicy("ops", [WebhookChannel(hooks.url + "/ops")], on=["run_failed", "sensor_tick_failed"],
                         prefixes=["alerting"])  # fmt: skip
    with pipeline(settings, warehouse, "alerts_defs.py"), alerting(settings, warehouse, policy, replicas=2):
        with Reporter(settings=settings) as reporter:
            reporter.report_materialization("alerting/orders", data_version=uuid.uuid4().hex)
            reporter.report_materialization("alerting/inventory", data_version=uuid.uuid4().hex)
        wait_until(lambda: len(hooks.requests) >= 2, 60, "two alerts")
        time.sleep(3.0)  # three more rounds of the failure poll: nothing again
    bodies = sorted((r.body for r in hooks.on("/ops")), key=lambda b: b["kind"])
    assert [(b["kind"], b["subject"], b["asset_key"]) for b in bodies] == [
        ("run", "load_orders", "alerting/orders"),
        ("sensor_tick", "broken_inventory", "alerting/inventory"),
    ]
    assert "the source is empty" in bodies[0]["cause"] and "cannot read inventory" in bodies[1]["cause"]
    assert bodies[0]["code_location"] == settings.code_location


def publish_accepted(settings: Settings, evaluations: list[tuple[str, bool, int]]) -> None:
    """Check evaluations (asset, passed, time in µs) straight onto the accepted stream, as the ingest worker
    forwards them, keyed by asset key."""
    codec = Codec()
    producer = Producer(settings.producer_config())
    for key, passed, at in evaluations:
        record = build_record("check_evaluation", key.split("/"), source="sdk", host="test", timestamp_us=at,
                              check_name="rows", passed=passed, severity="ERROR")  # fmt: skip
        producer.produce(settings.topics.accepted, codec.encode("check_evaluation", record), key.encode())
    assert producer.flush(30) == 0


@pytest.mark.parametrize("concurrency", [1, 16])
def test_the_worker_killed_mid_way_and_restarted_loses_nothing_and_sends_again_only_what_was_in_flight(
    settings_factory: Callable[..., Settings], tmp_path: Path, hooks: HttpReceiver, concurrency: int
) -> None:
    """One at a time, nothing is sent twice; ``concurrency`` at a time, only deliveries in flight when the
    worker died (sent, not yet recorded) go again, with the Idempotency-Key they had."""
    settings = settings_factory(clickhouse_url=f"chdb://{tmp_path / 'clickhouse'}", data_dir=tmp_path,
                                alert_group_id=f"alerts-{uuid.uuid4().hex[:8]}",
                                alert_send_concurrency=concurrency)  # fmt: skip
    if not settings.uses_embedded_clickhouse:
        pytest.skip("the worker process needs an embedded ClickHouse directory of its own")
    policies = tmp_path / "policies.json"
    policies.write_text(json.dumps([{"name": "kill", "channels": [{"type": "webhook", "url": hooks.url + "/kill"}]}]))
    root, start = prefix(), time.time_ns() // 1000
    keys = [f"{root}/k{i}" for i in range(30)]
    publish_accepted(settings, [(k, False, start + i) for i, k in enumerate(keys)])
    publish_accepted(settings, [(k, True, start + 100 + i) for i, k in enumerate(keys)])
    env = cli_env(settings, ASSETPIPE_ALERT_POLICIES_FILE=str(policies))
    log = tmp_path / "alerts.log"
    hooks.hold_from = 25  # the 25th POST is held until the worker is killed in the middle of it
    worker = start_cli(["worker", "alerts"], env, log)
    try:
        wait_until(lambda: hooks.held >= 1 or worker.poll() is not None, 60, "the worker mid-way")
        assert worker.poll() is None, log.read_text()
        worker.kill()  # SIGKILL: no commit, nothing recorded of the POST in flight
        worker.wait()
        hooks.hold.set()
        wait_until(lambda: len(hooks.delivered("/kill")) == 24, 10, "the 24 answered before the kill")
        worker = start_cli(["worker", "alerts"], env, log)
        wait_until(lambda: len(hooks.delivered("/kill")) >= 60, 60, "every alert delivered")
        time.sleep(1.5)  # anything sent twice would come now
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0, log.read_text()[-3000:]
    delivered = hooks.delivered("/kill")
    assert len({r.headers["Idempotency-Key"] for r in delivered}) == 60
    assert len(delivered) == 60 if concurrency == 1 else 60 <= len(delivered) <= 60 + concurrency
    assert sorted({(r.body["asset_key"], r.body["transition"]) for r in delivered}) == sorted(
        (k, t) for k in keys for t in ("triggered", "resolved")
    )
    for key in keys:  # each asset's in order, a delivery sent again coming right after itself
        assert list(dict.fromkeys(r.body["transition"] for r in delivered if r.body["asset_key"] == key)) == [
            "triggered", "resolved"
        ]  # fmt: skip
    result = run_cli(["sql", "SELECT toString(status), count(), uniqExact(delivery_id) FROM alerts FINAL "
                      "GROUP BY status", "--format", "json"], env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"toString(status)": "sent", "count()": 60, "uniqExact(delivery_id)": 60}]
