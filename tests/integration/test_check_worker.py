"""The check worker on the real broker and ClickHouse engine: freshness policies fail at their deadline and
pass again at the next update, for a defined asset and for one only reported over HTTP; bounds judge each
materialization; a restart publishes nothing twice."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from helpers import wait_until
from pipeline import rows, running, wait_rows

from assetpipe.consumers.catalog import asset_detail
from assetpipe.consumers.checks.sources import RegistryChecks, registry_checks
from assetpipe.consumers.checks.worker import CheckWorker
from assetpipe.consumers.ingest.worker import IngestWorker
from assetpipe.consumers.registry import AssetRegistry
from assetpipe.consumers.registry.monitors import register_monitors
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.definitions.assets import AssetSpec, asset
from assetpipe.definitions.freshness import FreshnessPolicy
from assetpipe.definitions.monitors import build_metadata_anomaly_checks, build_metadata_bounds_checks
from assetpipe.producers.publisher import Publisher
from assetpipe.producers.reporter import Reporter
from assetpipe.schemas.asset_key import AssetKey
from assetpipe.schemas.codec import Codec
from assetpipe.schemas.encoder import EventEncoder
from assetpipe.schemas.model import AssetMaterialization, now_us

EVALUATIONS = (
    "SELECT check_name, check_passed, toString(check_severity), metadata['freshness_state'], "
    "toUnixTimestamp64Micro(timestamp) FROM {db}.asset_events WHERE event_type = 'check_evaluation' "
    "AND asset_key = {key:String} ORDER BY timestamp"
)

MATERIALIZED = (
    "SELECT toUnixTimestamp64Micro(min(timestamp)) FROM {db}.asset_events WHERE event_type = 'materialization' "
    "AND asset_key = {key:String}"
)


def evaluations(warehouse: Warehouse, key: str, count: int, timeout: float = 30.0) -> list[tuple[Any, ...]]:
    return wait_rows(warehouse, EVALUATIONS, count, timeout, key=key)


def worker(settings: Any, warehouse: Warehouse) -> CheckWorker:
    return CheckWorker(settings, RegistryChecks(warehouse), warehouse)


def ready(checks: CheckWorker, *keys: str) -> None:
    """Wait until ``checks`` owns the partitions of ``keys`` and has read their checks: an event it reads later
    than a window after it happened is judged late at once."""
    wait_until(lambda: all(checks.evaluator.owns(k) for k in keys) and checks.evaluator.checked_assets() >= len(keys),
               20, "the check worker owns its partitions")  # fmt: skip


def test_a_time_window_policy_fails_at_its_deadline_and_passes_at_the_next_update(
    settings_factory: Any, warehouse: Warehouse
) -> None:
    prefix = f"f{uuid.uuid4().hex[:8]}"
    settings = settings_factory(check_group_id=f"c{uuid.uuid4().hex[:8]}", check_refresh_seconds=0.2)
    policy = FreshnessPolicy.time_window(fail_window=timedelta(seconds=2))
    defined, reported = f"{prefix}/defined", f"{prefix}/reported"
    specs = [AssetSpec([prefix, name], freshness_policy=policy) for name in ("defined", "reported")]
    AssetRegistry(warehouse).register_specs(specs, "http", "", now_us())
    shown = asset_detail(warehouse.own_read_only_query, defined)
    assert shown is not None and shown["definition"]["freshness_policy"] == {
        "type": "time_window", "fail_window_seconds": 2, "warn_window_seconds": None
    }  # fmt: skip
    checks = worker(settings, warehouse)
    with running(IngestWorker(settings, warehouse), checks), Reporter(settings=settings) as sdk:
        ready(checks, defined, reported)
        for key in (defined, reported):
            sdk.report_materialization(key.split("/"), metadata={"rows": 1})
        sdk.flush()
        passed = {k: evaluations(warehouse, k, 1)[0] for k in (defined, reported)}
        assert all(p[:4] == ("freshness", True, "WARN", "PASS") for p in passed.values()), passed
        failed = {k: evaluations(warehouse, k, 2, timeout=15)[1] for k in (defined, reported)}
        for key, row in failed.items():
            assert row[:4] == ("freshness", False, "ERROR", "FAIL"), row
            (materialized,) = rows(warehouse, MATERIALIZED, key=key)[0]
            late_by_us = row[4] - materialized
            assert 2_000_000 <= late_by_us < 3_000_000, late_by_us  # at the deadline, by the timer
        sdk.report_materialization(defined.split("/"))
        sdk.flush()
        assert evaluations(warehouse, defined, 3)[2][:4] == ("freshness", True, "WARN", "PASS")
    # nothing more was published for the reported asset: FAIL holds until its next update
    assert len(rows(warehouse, EVALUATIONS, key=reported)) == 2


def test_a_restarted_worker_publishes_no_state_twice(settings_factory: Any, warehouse: Warehouse) -> None:
    prefix = f"r{uuid.uuid4().hex[:8]}"
    settings = settings_factory(check_group_id=f"c{uuid.uuid4().hex[:8]}", check_refresh_seconds=0.2)
    policy = FreshnessPolicy.time_window(fail_window=timedelta(seconds=3))
    AssetRegistry(warehouse).register_specs([AssetSpec([prefix, "a"], freshness_policy=policy)], "http", "", now_us())
    key = f"{prefix}/a"
    ingest = IngestWorker(settings, warehouse)
    with running(ingest), Reporter(settings=settings) as sdk:
        first = worker(settings, warehouse)
        with running(first):
            ready(first, key)
            sdk.report_materialization(key.split("/"))
            sdk.flush()
            evaluations(warehouse, key, 1)
        with running(worker(settings, warehouse)):  # the same group, after a restart: PASS is stored
            (fail,) = evaluations(warehouse, key, 2, timeout=20)[1:]
            assert fail[:4] == ("freshness", False, "ERROR", "FAIL")
            time.sleep(1.5)
    assert [r[3] for r in rows(warehouse, EVALUATIONS, key=key)] == ["PASS", "FAIL"]


def test_bounds_judge_every_materialization(settings_factory: Any, warehouse: Warehouse) -> None:
    prefix = f"b{uuid.uuid4().hex[:8]}"
    settings = settings_factory(check_group_id=f"c{uuid.uuid4().hex[:8]}", check_refresh_seconds=0.2)
    (checks,) = build_metadata_bounds_checks(assets=[[prefix, "t"]], metadata_key="dagster/row_count", min_value=10)
    register_monitors(warehouse, f"loc_{prefix}", list(checks.specs), now_us())
    key = f"{prefix}/t"
    checks = worker(settings, warehouse)
    with running(IngestWorker(settings, warehouse), checks), Reporter(settings=settings) as sdk:
        ready(checks, key)
        for count in (50, 5):
            sdk.report_materialization(key.split("/"), metadata={"dagster/row_count": count})
        sdk.flush()
        evaluations(warehouse, key, 2)
    judged = "SELECT check_name, check_passed, metadata['value'] FROM {db}.asset_events WHERE asset_key = {key:String} "
    found = rows(warehouse, judged + "AND event_type = 'check_evaluation' ORDER BY ALL", key=key)
    assert found == [("dagster/row_count_bounds", False, "5"), ("dagster/row_count_bounds", True, "50")]


def test_an_anomaly_check_fires_on_a_90_percent_drop_and_not_on_a_weekly_pattern(
    settings_factory: Any, warehouse: Warehouse
) -> None:
    prefix = f"v{uuid.uuid4().hex[:8]}"
    settings = settings_factory(check_group_id=f"c{uuid.uuid4().hex[:8]}", check_refresh_seconds=0.2)
    key = f"{prefix}/orders"
    (checks,) = build_metadata_anomaly_checks(assets=[[prefix, "orders"]])
    register_monitors(warehouse, f"loc_{prefix}", list(checks.specs), now_us())
    today = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0)
    history = [today - timedelta(days=d) for d in range(30, 0, -1)]  # a weekly pattern: weekends a third

    def rows_on(day: datetime) -> int:
        return (1_000_000 if day.isoweekday() < 6 else 330_000) + (day.day * 7919) % 20_000

    encoder = EventEncoder(Codec(), source="backfill")

    def publish(days: list[tuple[datetime, int]]) -> None:
        producer = Publisher.from_settings(settings, receipts=False)
        for day, count in days:
            event = AssetMaterialization(AssetKey([prefix, "orders"]), metadata={"dagster/row_count": count},
                                         timestamp=day)  # fmt: skip
            _, message_key, value = encoder.encode_event(event)
            producer.send(settings.topics.events, message_key, value)
        producer.close(30)

    publish([(day, rows_on(day)) for day in history])
    with running(IngestWorker(settings, warehouse)):
        wait_rows(warehouse, "SELECT 1 FROM {db}.asset_metadata_points WHERE asset_key = {key:String}", 30, key=key)
    warehouse.command(f"SYSTEM REFRESH VIEW {warehouse.database}.asset_metadata_baselines_mv")
    warehouse.command(f"SYSTEM WAIT VIEW {warehouse.database}.asset_metadata_baselines_mv")

    saturday = next(d for d in reversed(history) if d.isoweekday() == 6) + timedelta(hours=6)
    wednesday = next(d for d in reversed(history) if d.isoweekday() == 3) + timedelta(hours=6)
    judged = (
        "SELECT metadata['value'], check_passed, metadata['weekly'] FROM {db}.asset_events WHERE asset_key = "
        "{key:String} AND check_name = 'dagster/row_count_anomaly' AND metadata['value'] IN ('331000', '1005000', "
        "'100000') ORDER BY ALL"
    )
    checks = worker(settings, warehouse)
    with running(IngestWorker(settings, warehouse), checks):
        ready(checks, key)
        publish([(saturday, 331_000), (wednesday, 1_005_000), (wednesday, 100_000)])
        found = wait_rows(warehouse, judged, 3, key=key)
    # judged against their weekdays: a weekend's third is normal, a weekday's 90% drop is not
    assert found == [("100000", False, "true"), ("1005000", True, "true"), ("331000", True, "true")]


def test_two_replicas_evaluate_each_asset_once(settings_factory: Any, warehouse: Warehouse) -> None:
    prefix = f"two{uuid.uuid4().hex[:8]}"
    settings = settings_factory(check_group_id=f"c{uuid.uuid4().hex[:8]}", check_refresh_seconds=0.2)
    policy = FreshnessPolicy.time_window(fail_window=timedelta(seconds=2))
    keys = [f"{prefix}/a{i}" for i in range(8)]
    specs = [AssetSpec(key.split("/"), freshness_policy=policy) for key in keys]
    AssetRegistry(warehouse).register_specs(specs, "http", "", now_us())
    first, second = worker(settings, warehouse), worker(settings, warehouse)
    with running(IngestWorker(settings, warehouse), first, second), Reporter(settings=settings) as sdk:
        wait_until(lambda: all(first.evaluator.owns(k) != second.evaluator.owns(k) for k in keys), 30, "split")
        assert any(first.evaluator.owns(k) for k in keys) and any(second.evaluator.owns(k) for k in keys)
        for key in keys:
            sdk.report_materialization(key.split("/"))
        sdk.flush()
        for key in keys:
            evaluations(warehouse, key, 2, timeout=20)
        time.sleep(1)
    for key in keys:  # each state once, by whichever replica owns the asset
        assert [r[3] for r in rows(warehouse, EVALUATIONS, key=key)] == ["PASS", "FAIL"], key


def test_a_policy_on_an_asset_defined_in_code_is_evaluated_too(settings_factory: Any, warehouse: Warehouse) -> None:
    prefix = f"code{uuid.uuid4().hex[:8]}"
    settings = settings_factory(check_group_id=f"c{uuid.uuid4().hex[:8]}", check_refresh_seconds=0.2)

    @asset(key=[prefix, "daily"], freshness_policy=FreshnessPolicy.time_window(fail_window=timedelta(seconds=2)))
    def daily() -> None: ...

    AssetRegistry(warehouse).register_location(f"loc_{prefix}", [daily], now_us())
    key = f"{prefix}/daily"
    checks = worker(settings, warehouse)
    with running(IngestWorker(settings, warehouse), checks), Reporter(settings=settings) as sdk:
        ready(checks, key)
        sdk.report_materialization(key.split("/"))
        sdk.flush()
        found = evaluations(warehouse, key, 2, timeout=20)
    assert [r[3] for r in found] == ["PASS", "FAIL"]


def test_a_cron_policy_fails_at_its_deadline_when_the_last_update_is_older_than_its_bound(
    settings_factory: Any, warehouse: Warehouse
) -> None:
    """Every minute the asset must have been updated in the 30 s before. The worker's clock runs ahead so that
    its next minute comes 6 s into the test; the events carry times on that clock."""
    prefix = f"cron{uuid.uuid4().hex[:8]}"
    settings = settings_factory(check_group_id=f"c{uuid.uuid4().hex[:8]}", check_refresh_seconds=0.2)
    policy = FreshnessPolicy.cron(deadline_cron="* * * * *", lower_bound_delta=timedelta(seconds=30))
    key = f"{prefix}/daily"
    AssetRegistry(warehouse).register_specs([AssetSpec(key.split("/"), freshness_policy=policy)], "http", "", now_us())
    real = now_us()
    deadline = (real // 60_000_000 + 2) * 60_000_000  # a minute on the worker's clock, 6 s of real time away
    offset = deadline - 6_000_000 - real
    encoder = EventEncoder(Codec(), source="sdk")

    def materialize(at_us: int) -> None:
        producer = Publisher.from_settings(settings, receipts=False)
        when = datetime.fromtimestamp(at_us / 1e6, tz=UTC)
        _, message_key, value = encoder.encode_event(AssetMaterialization(AssetKey(key.split("/")), timestamp=when))
        producer.send(settings.topics.events, message_key, value)
        producer.close(30)

    checks = CheckWorker(settings, RegistryChecks(warehouse), warehouse, now=lambda: now_us() + offset)
    with running(IngestWorker(settings, warehouse), checks):
        ready(checks, key)
        assert now_us() + offset < deadline - 2_000_000, "the worker took 4 s to start"
        materialize(deadline - 40_000_000)  # after the minute before's bound, before this one's
        (passed,) = evaluations(warehouse, key, 1)
        assert passed[:4] == ("freshness", True, "WARN", "PASS"), passed
        failed = evaluations(warehouse, key, 2, timeout=20)[1]
        assert failed[:4] == ("freshness", False, "ERROR", "FAIL"), failed
        assert 0 <= failed[4] - deadline < 1_000_000, (failed, deadline)  # at the deadline, by the timer
        overdue = rows(warehouse, "SELECT metadata['dagster/overdue_deadline_timestamp'], "
                       "metadata['dagster/overdue_seconds'] FROM {db}.asset_events WHERE asset_key = {key:String} "
                       "AND NOT check_passed", key=key)  # fmt: skip
        assert overdue and float(overdue[0][0]) == deadline / 1e6, overdue
        materialize(now_us() + offset)  # updated after the deadline: fresh until the next minute's
        assert evaluations(warehouse, key, 3)[2][:4] == ("freshness", True, "WARN", "PASS")


def test_the_checks_are_built_again_only_when_the_registry_changed(warehouse: Warehouse) -> None:
    prefix = f"reb{uuid.uuid4().hex[:8]}"
    source = RegistryChecks(warehouse)
    first = source()
    assert first is not None and source() is None  # nothing registered since
    policy = FreshnessPolicy.time_window(fail_window=timedelta(minutes=5))
    AssetRegistry(warehouse).register_specs([AssetSpec([prefix, "a"], freshness_policy=policy)], "http", "", now_us())
    built = source()
    assert built is not None and f"{prefix}/a" in {c.asset_key for c in built[0]}
    assert source() is None
    (bounds,) = build_metadata_bounds_checks(assets=[[prefix, "a"]], metadata_key="rows", min_value=1)
    register_monitors(warehouse, f"loc_{prefix}", list(bounds.specs), now_us())
    built = source()
    assert built is not None and (f"{prefix}/a", "rows_bounds") in {(c.asset_key, c.check_name) for c in built[1]}
    assert built[0] == registry_checks(warehouse)[0]
