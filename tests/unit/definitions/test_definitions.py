"""Definitions: the decorators, loading a definitions file, and what sensors may return (no sockets)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from assetpipe import (
    AssetKey,
    AssetMaterialization,
    AssetMaterializationFailure,
    Backoff,
    Config,
    DefaultSensorStatus,
    DefinitionError,
    Definitions,
    EventLogEntry,
    Failure,
    MetadataValue,
    MultiAssetSensorEvaluationContext,
    Output,
    RetryPolicy,
    RetryRequested,
    RunConfig,
    RunRequest,
    SkipReason,
    asset_check_sensor,
    asset_sensor,
    job,
    load_definitions,
    materialization_failure_sensor,
    multi_asset_sensor,
    observation_sensor,
    op,
    webhook_job,
)
from assetpipe.definitions.context import collect_results
from assetpipe.schemas.model import AssetCheckEvaluation

DEFS = Path(__file__).parents[2] / "integration" / "defs"


@job
def target(context: object) -> None:
    pass


def test_asset_sensor_takes_dagster_arguments_and_defaults_to_running() -> None:
    @asset_sensor(asset_key=AssetKey("daily_sales_data"), job=target)
    def daily_sales_data_sensor() -> RunRequest:
        return RunRequest()

    assert daily_sales_data_sensor.name == "daily_sales_data_sensor"
    assert daily_sales_data_sensor.asset_keys == (AssetKey("daily_sales_data"),)
    assert daily_sales_data_sensor.event_type == "materialization"
    assert daily_sales_data_sensor.target == "target"
    assert daily_sales_data_sensor.running and daily_sales_data_sensor.start_at == "latest"
    assert daily_sales_data_sensor.arity == 0


def test_sensor_names_targets_and_signatures_are_checked() -> None:
    with pytest.raises(DefinitionError, match="job or job_name, not both"):
        asset_sensor("a", job=target, job_name="target", name="s")(lambda: None)
    with pytest.raises(DefinitionError, match="must take 0 or 1 or 2 parameters"):

        @asset_sensor("a", job=target)
        def three(a: object, b: object, c: object) -> None: ...

    with pytest.raises(DefinitionError, match="must take 1 parameters"):

        @multi_asset_sensor(["a", "b"], job=target)
        def none() -> None: ...

    with pytest.raises(DefinitionError, match="must match"):
        asset_sensor("a", job=target, name="has space")(lambda: None)
    with pytest.raises(DefinitionError, match="must not be empty"):
        multi_asset_sensor([], job=target)


def test_observation_and_check_sensors_watch_their_event_type_and_filter_checks() -> None:
    @observation_sensor("raw/source", job_name="refresh")
    def changed(context: object, event: object) -> None: ...

    @asset_check_sensor("orders", passed=False, severity="ERROR", job=target)
    def failed(context: object, event: object) -> None: ...

    assert changed.event_type == "observation" and changed.asset_keys == (AssetKey(["raw", "source"]),)
    assert failed.event_type == "check_evaluation"
    error = AssetCheckEvaluation("orders", check_name="rows", passed=False, severity="ERROR")
    assert failed.accepts(error)
    assert not failed.accepts(AssetCheckEvaluation("orders", check_name="rows", passed=True))
    assert not failed.accepts(AssetCheckEvaluation("orders", check_name="rows", passed=False, severity="WARN"))


def test_a_materialization_failure_sensor_filters_by_type_and_reason_and_sees_dagsters_shape() -> None:
    @materialization_failure_sensor("orders", failure_type="FAILED", job=target)
    def failed(context: object, event: object) -> None: ...

    @materialization_failure_sensor("orders", reason="RUN_TERMINATED", job=target)
    def terminated(context: object, event: object) -> None: ...

    upstream = AssetMaterializationFailure("orders", reason="UPSTREAM_FAILED_TO_MATERIALIZE", run_id="r-1")
    cancelled = AssetMaterializationFailure("orders", failure_type="SKIPPED", reason="RUN_TERMINATED")
    assert failed.event_type == "materialization_failure" and failed.asset_keys == (AssetKey(["orders"]),)
    assert failed.accepts(upstream) and not failed.accepts(cancelled)
    assert terminated.accepts(cancelled) and not terminated.accepts(upstream)
    entry = EventLogEntry(upstream)
    assert entry.asset_materialization_failure is upstream and entry.asset_materialization is None
    assert entry.dagster_event.event_type_value == "ASSET_FAILED_TO_MATERIALIZE"
    assert entry.dagster_event.is_asset_failed_to_materialize and not entry.dagster_event.is_step_materialization
    data = entry.dagster_event.asset_failed_to_materialize_data
    assert data is not None and data.asset_materialization_failure is upstream
    assert (entry.reason, entry.run_id, entry.data_version) == ("UPSTREAM_FAILED_TO_MATERIALIZE", "r-1", None)


def test_run_request_normalizes_config_and_tags_as_dagster_does() -> None:
    request = RunRequest(run_key="k", run_config=RunConfig(ops={"report": Params(n=1)}), tags={"n": 3})
    assert request.run_config == {"ops": {"report": {"config": {"n": 1}}}}
    assert request.tags == {"n": "3"}
    assert RunRequest().run_config == {} and RunRequest().run_key is None
    with pytest.raises(DefinitionError, match="json"):
        RunRequest(tags={"bad": object()})
    with pytest.raises(DefinitionError, match="JSON-serializable"):
        RunRequest(run_config={"ops": object()})
    with pytest.raises(DefinitionError, match="run_key must be a string"):
        RunRequest(run_key=5)  # type: ignore[arg-type]


def test_sensor_results_are_run_requests_or_one_skip_reason() -> None:
    assert collect_results("s", None) == ([], None)
    assert collect_results("s", RunRequest("a")) == ([RunRequest("a")], None)
    assert collect_results("s", iter([RunRequest("a"), None, RunRequest("b")])) == (
        [RunRequest("a"), RunRequest("b")],
        None,
    )
    assert collect_results("s", [SkipReason("holiday")]) == ([], SkipReason("holiday"))
    with pytest.raises(DefinitionError, match="received both"):
        collect_results("s", [RunRequest(), SkipReason()])
    with pytest.raises(DefinitionError, match="single SkipReason"):
        collect_results("s", [SkipReason(), SkipReason()])
    with pytest.raises(DefinitionError, match="returned a dict"):
        collect_results("s", {"run": True})


def test_multi_asset_context_gives_the_latest_unconsumed_event_per_asset() -> None:
    a, b = AssetKey("a"), AssetKey("b")
    event = AssetMaterialization("a", data_version="1")
    context = MultiAssetSensorEvaluationContext(
        sensor_name="s", code_location="loc", cursor=None, log=logging.getLogger("t"),
        monitored_assets=[a, b], unconsumed={a: event},
    )  # fmt: skip
    assert context.latest_materialization_records_by_key() == {a: event, b: None}
    assert not all(context.latest_materialization_records_by_key().values())
    context.advance_cursor({"b": None})
    assert context.consumed == frozenset()
    context.advance_all_cursors()
    assert context.consumed == {a}
    assert context.latest_materialization_records_by_key(["a"]) == {a: None}
    with pytest.raises(DefinitionError, match="does not monitor"):
        context.advance_cursor({"c": event})


def test_a_job_composes_ops_in_order_with_their_inputs() -> None:
    @op
    def load() -> int:
        return 1

    @op(retry_policy=RetryPolicy(max_retries=2))
    def add(context: object, value: int) -> int:
        return value + 1

    @job
    def pipeline() -> None:
        add(add(load()))

    assert [(n.name, dict(n.inputs)) for n in pipeline.nodes] == [
        ("load", {}),
        ("add", {"value": "load"}),
        ("add_2", {"value": "add"}),
    ]
    assert pipeline.nodes[1].op.signature.takes_context
    assert load() == 1  # outside a job body an op is a plain function
    with pytest.raises(DefinitionError, match="calls no ops"):

        @job
        def empty() -> None:
            pass

    with pytest.raises(DefinitionError, match="must be the output of another op"):

        @job
        def constant() -> None:
            add(5)


class Params(Config):
    n: int


def test_a_job_taking_a_context_is_its_own_single_op_with_typed_config() -> None:
    @job(name="single", retry_policy=RetryPolicy(max_retries=1, delay=0.5, backoff=Backoff.EXPONENTIAL))
    def anything(context: object, config: Params) -> None: ...

    assert anything.name == "single" and [n.name for n in anything.nodes] == ["single"]
    signature = anything.nodes[0].op.signature
    assert signature.config_param == "config" and signature.config_type is Params
    assert [anything.retry_policy.wait_before(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]  # type: ignore[union-attr]
    assert webhook_job("remote", "https://jobs.example.com/run").webhook_url == "https://jobs.example.com/run"
    with pytest.raises(DefinitionError, match="http"):
        webhook_job("remote", "ftp://x")


def test_op_events_and_exceptions_carry_dagster_fields() -> None:
    output = Output(5, metadata={"rows": 3, "url": MetadataValue.url("http://x")})
    assert output.output_name == "result" and output.metadata["rows"] == MetadataValue.int(3)
    failure = Failure(description="No files to process", metadata={"filepath": MetadataValue.path("/p")})
    assert failure.allow_retries and failure.metadata["filepath"].kind == "path" and failure.code == "op_failure"
    retry = RetryRequested()
    assert (retry.max_retries, retry.seconds_to_wait) == (1, None)
    with pytest.raises(DefinitionError):
        RetryRequested(max_retries=-1)


def test_loading_a_definitions_file_collects_its_jobs_and_sensors() -> None:
    defs = load_definitions(DEFS / "sales_defs.py")
    assert defs.location == "sales_defs"
    assert {j.name for j in defs.jobs} == {"weekly_report_job", "my_job"}
    assert defs.sensor("asset_a_and_b_sensor") is not None
    assert defs.sensor("stopped_sensor").default_status is DefaultSensorStatus.STOPPED  # type: ignore[union-attr]
    assert load_definitions(DEFS / "sales_defs.py", "team_a").location == "team_a"


def test_definitions_reject_two_things_of_one_name(tmp_path: Path) -> None:
    @job(name="target")
    def other(context: object) -> None: ...

    with pytest.raises(DefinitionError, match="two different jobs"):
        Definitions(jobs=[target, other])
    broken = tmp_path / "broken_defs.py"
    broken.write_text("import nowhere_to_be_found\n")
    with pytest.raises(DefinitionError, match="cannot load definitions"):
        load_definitions(broken)
    with pytest.raises(DefinitionError, match="does not exist"):
        load_definitions(tmp_path / "missing.py")


def test_declared_and_watched_assets_are_the_locations_asset_keys() -> None:
    @asset_sensor("watched/by_sensor", job=target)
    def watcher(context: object, event: object) -> None: ...

    defs = Definitions(sensors=[watcher], assets=["raw/orders", ["warehouse", "daily"], AssetKey("one")])
    assert defs.asset_keys() == {"raw/orders", "warehouse/daily", "one", "watched/by_sensor"}
    with pytest.raises(DefinitionError, match="AssetSpecs or asset keys, got int"):
        Definitions(assets=[3])  # type: ignore[list-item]
