"""Dagster code that runs unchanged: what sensor functions receive (``EventLogEntry``, ``EventLogRecord``),
``In``/``Out`` and multi-output ops in a job body, ``config_schema``, ``@job(config=...)``, and
``RunRequest(asset_selection=...)`` (no sockets)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from assetpipe import (
    AssetCheckEvaluation,
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    Config,
    DefinitionError,
    EventLogEntry,
    In,
    MetadataValue,
    MultiAssetSensorEvaluationContext,
    Out,
    RunConfig,
    RunRequest,
    job,
    op,
)
from assetpipe.definitions.context import ContextLog, EventLogRecord

WHEN = datetime(2024, 6, 3, 12, 0, 30, 250000, tzinfo=UTC)


def test_an_asset_sensor_event_has_dagsters_event_log_entry_shape() -> None:
    event = AssetMaterialization(
        "sales/daily", partition="2024-06-03", data_version="v1", metadata={"rows": 3}, tags={"team": "s"},
        event_id="6d3c2f9e-8b0a-4c8e-9a51-3f1e2b7d4a60", timestamp=WHEN, run_id="run-1",
    )  # fmt: skip
    entry = EventLogEntry(event)
    dagster_event = entry.dagster_event
    assert dagster_event.event_specific_data.materialization is event  # type: ignore[union-attr]
    assert dagster_event.asset_key == AssetKey(["sales", "daily"]) and dagster_event.partition == "2024-06-03"
    assert dagster_event.event_type_value == "ASSET_MATERIALIZATION" and dagster_event.is_step_materialization
    assert entry.asset_materialization is event and entry.asset_observation is None
    assert entry.timestamp == WHEN.timestamp() and isinstance(entry.timestamp, float)
    assert entry.run_id == "run-1" and entry.is_dagster_event and entry.level == logging.INFO
    # assetpipe's sensors read the event's own fields, as before
    assert entry.metadata == {"rows": MetadataValue.int(3)} and entry.data_version == "v1"
    assert (entry.partition, entry.asset_key, entry.tags) == ("2024-06-03", event.asset_key, {"team": "s"})
    assert entry.event_id == event.event_id and entry.description is None and entry.event_type == "materialization"
    assert entry == EventLogEntry(event) and not hasattr(entry, "storage_id")


def test_observations_and_check_evaluations_take_dagsters_attribute_names() -> None:
    observation = AssetObservation("raw/source", data_version="v2")
    entry = EventLogEntry(observation)
    assert entry.dagster_event.event_specific_data.asset_observation is observation  # type: ignore[union-attr]
    assert entry.dagster_event.event_type_value == "ASSET_OBSERVATION" and entry.dagster_event.is_asset_observation
    assert entry.asset_observation is observation and entry.asset_materialization is None
    assert entry.run_id == "" and entry.timestamp == 0.0  # reported outside a run, built without a time

    check = AssetCheckEvaluation("orders", check_name="rows", passed=False, severity="WARN")
    checked = EventLogEntry(check)
    assert checked.dagster_event.event_specific_data is check  # Dagster's: the evaluation itself
    assert checked.dagster_event.event_type_value == "ASSET_CHECK_EVALUATION"
    assert (checked.check_name, checked.passed, checked.severity) == ("rows", False, "WARN")
    assert checked.asset_materialization is None and checked.asset_observation is None


def test_multi_asset_records_offer_dagsters_attributes_and_stay_the_materialization() -> None:
    a, b = AssetKey("a"), AssetKey("b")
    event = AssetMaterialization("a", data_version="1", timestamp=WHEN)
    context = MultiAssetSensorEvaluationContext(
        sensor_name="s", code_location="loc", cursor=None, log=logging.getLogger("t"),
        monitored_assets=[a, b], unconsumed={a: event},
    )  # fmt: skip
    latest = context.latest_materialization_records_by_key()
    record = latest[a]
    assert latest == {a: event, b: None} and event == record  # usable as before: equal, and truthy
    assert isinstance(record, AssetMaterialization) and record is not None and record.data_version == "1"
    assert record.event_log_entry.dagster_event.event_specific_data.materialization == event  # type: ignore[union-attr]
    assert record.asset_materialization == event and record.event_log_entry.timestamp == WHEN.timestamp()
    assert record.partition_key is None
    assert EventLogRecord.of(event) == record and EventLogRecord.of(record) is record
    assert record != AssetMaterialization("a", data_version="2", timestamp=WHEN)
    context.advance_cursor({"a": record})
    assert context.consumed == {a}


def test_context_log_keeps_each_line_of_its_own_context(caplog: pytest.LogCaptureFixture) -> None:
    lines: list[tuple[int, str]] = []
    other: list[tuple[int, str]] = []
    caplog.set_level(logging.INFO, "assetpipe.test")  # kept on the tick whatever the level the logger emits
    log = ContextLog(logging.getLogger("assetpipe.test"), lambda level, message: lines.append((level, message)))
    ContextLog(logging.getLogger("assetpipe.test"), lambda level, message: other.append((level, message)))
    log.info("x")
    log.warning("%d rows in %s", 3, "orders")
    log.error("%(n)s failed", {"n": "load"})
    log.debug("%d", "not a number")  # a line that does not format is kept, not raised in the sensor
    assert lines == [
        (logging.INFO, "x"),
        (logging.WARNING, "3 rows in orders"),
        (logging.ERROR, "load failed"),
        (logging.DEBUG, "%d ('not a number',)"),
    ]
    assert other == []
    assert {record.filename for record in caplog.records} == {"test_ops_compat.py"}  # the caller's line, logged


def test_ops_declare_ins_and_outs_and_a_job_body_wires_each_output() -> None:
    @op(out={"evens": Out(description="even numbers"), "odds": Out(is_required=False)})
    def split() -> tuple[list[int], list[int]]:
        return [2], [1]

    @op(ins={"numbers": In(description="to add"), "offset": In(default_value=10)})
    def total(numbers: list[int], offset: int) -> int:
        return sum(numbers) + offset

    @job
    def numbers() -> None:
        evens, odds = split()
        total(odds)
        total(numbers=evens, offset=split().evens)

    assert [(n.name, dict(n.inputs), dict(n.sources)) for n in numbers.nodes] == [
        ("split", {}, {}),
        ("total", {"numbers": "split"}, {"numbers": "odds"}),
        ("split_2", {}, {}),
        ("total_2", {"numbers": "split", "offset": "split_2"}, {"numbers": "evens", "offset": "evens"}),
    ]
    assert list(split.outs) == ["evens", "odds"] and not split.outs["odds"].is_required
    assert total.input_default("offset") == (True, 10) and total.input_default("numbers")[0] is False
    assert In().default_value is not None and not In().has_default  # "no default" is not None


def test_multi_output_mistakes_are_definition_errors_with_clear_messages() -> None:
    @op(out={"a": Out(), "b": Out()})
    def two() -> tuple[int, int]:
        return 1, 2

    @op
    def one(value: int) -> int:
        return value

    with pytest.raises(DefinitionError, match=r"given every output of op 'two' \(a, b\): unpack them"):

        @job
        def whole() -> None:
            one(two())

    with pytest.raises(DefinitionError, match="ins names 'missing', which its function does not take"):
        op(name="x", ins={"missing": In()})(lambda value: value)
    with pytest.raises(DefinitionError, match="must be an Out"):
        op(name="x", out={"a": "int"})(lambda: 1)  # type: ignore[dict-item]
    with pytest.raises(DefinitionError, match="must match"):
        op(name="x", out={"not valid": Out()})(lambda: 1)


def test_config_schema_and_a_jobs_default_config_are_checked_at_definition() -> None:
    @op(config_schema={"n": int, "names": [str], "nested": {"flag": bool}})
    def configured(context: object) -> None: ...

    @op(config_schema=str)
    def plain(context: object) -> None: ...

    class Params(Config):
        n: int

    @job(config=RunConfig(ops={"configured": Params(n=1)}))
    def typed() -> None:
        configured()
        plain()

    assert configured.config_schema == {"n": int, "names": [str], "nested": {"flag": bool}}
    assert typed.config == {"ops": {"configured": {"config": {"n": 1}}}}
    with pytest.raises(DefinitionError, match="config_schema must be a Python type"):
        op(name="x", config_schema={"n": "int"})(lambda context: None)
    with pytest.raises(DefinitionError, match="JSON-serializable"):
        job(name="x", config={"ops": object()})(lambda: plain())


def test_run_request_takes_an_asset_selection() -> None:
    request = RunRequest(asset_selection=["a/b", AssetKey(["c"]), ["d", "e"]], stale_assets_only=True)
    assert request.asset_selection == (AssetKey(["a", "b"]), AssetKey("c"), AssetKey(["d", "e"]))
    assert request.stale_assets_only
    assert RunRequest().asset_selection is None and RunRequest().stale_assets_only is False
    assert RunRequest(asset_selection=[]).asset_selection == ()
    with pytest.raises(DefinitionError, match="must be a list of asset keys"):
        RunRequest(asset_selection="a/b")  # type: ignore[arg-type]
    with pytest.raises(DefinitionError, match="no asset key"):
        RunRequest(asset_selection=[5])  # type: ignore[list-item]
