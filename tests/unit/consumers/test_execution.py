"""The job executor: ops in order, outputs (several per op) and events, config checked against its schema,
retries and failures (no sockets)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assetpipe import In, OpDefinition, Out, Output, job, op
from assetpipe.consumers.runs.execution import JobExecutor, RunResult
from assetpipe.definitions.loader import Definitions, load_definitions
from assetpipe.schemas.metadata import MetadataValue
from assetpipe.schemas.model import AssetMaterializationFailure, AssetObservation

DEFS = Path(__file__).parents[2] / "integration" / "defs"


@pytest.fixture(scope="module")
def defs() -> Definitions:
    return load_definitions(DEFS / "ops_defs.py")


def run(defs: Definitions, job: str, waits: list[float] | None = None, **config: object) -> RunResult:
    executor = JobExecutor(wait=(waits if waits is not None else []).append)
    definition = defs.job(job)
    assert definition is not None
    return executor.execute(definition, run_id="00000000-0000-4000-8000-000000000001", run_config=config)


def test_ops_pass_outputs_and_record_their_events(defs: Definitions) -> None:
    result = run(defs, "etl")
    assert result.succeeded and result.attempts == 2
    kinds = [(e.event_type, e.op_name) for e in result.events]
    assert kinds == [
        ("asset_observation", "extract"),
        ("step_output", "extract"),
        ("step_success", "extract"),
        ("expectation_result", "check"),
        ("step_output", "check"),
        ("step_success", "check"),
    ]
    expectation = result.events[3]
    assert (expectation.success, expectation.label, expectation.message) == (True, "has_rows", "ensure rows")
    assert result.events[4].metadata == {"total": MetadataValue.int(6),
                                         "dashboard_url": MetadataValue.url("http://example.com/d")}  # fmt: skip
    [observation] = result.asset_events
    assert isinstance(observation, AssetObservation)
    assert observation.run_id == "00000000-0000-4000-8000-000000000001" and observation.event_id
    assert run(defs, "etl").asset_events[0].event_id == observation.event_id  # same run, same event ids


def test_failure_fails_the_run_with_its_metadata(defs: Definitions) -> None:
    result = run(defs, "no_files")
    assert not result.succeeded
    assert (result.error_type, result.error_message) == ("Failure", "op 'no_files' failed: No files to process")
    assert result.error_metadata == {"filepath": MetadataValue.path("/path/to/files"),
                                     "dashboard_url": MetadataValue.url("http://example.com/f")}  # fmt: skip
    assert result.events[-1].event_type == "step_failure" and "raise Failure" in result.events[-1].traceback


def test_retry_requested_runs_the_op_again_after_its_wait(defs: Definitions) -> None:
    waits: list[float] = []
    result = run(defs, "flaky", waits)
    assert result.succeeded and result.attempts == 3 and waits == [0.05, 0.05]
    assert [e.event_type for e in result.events] == ["step_retry", "step_retry", "log", "step_success"]
    assert result.events[2].message == "succeeded on retry 2"

    exhausted = run(defs, "always_flaky")
    assert not exhausted.succeeded and exhausted.attempts == 2
    assert exhausted.error_message == "op 'always_flaky' failed: Exceeded max_retries of 1"


def test_an_exception_fails_the_run_with_its_traceback(defs: Definitions) -> None:
    result = run(defs, "broken")
    assert not result.succeeded and result.error_type == "KeyError"
    assert 'return {}["missing"]' in result.error_traceback and "ops_defs.py" in result.error_traceback


def test_the_job_retry_policy_applies_unless_the_failure_forbids_it(defs: Definitions) -> None:
    waits: list[float] = []
    assert run(defs, "policy_retried", waits).succeeded and waits == [0.01, 0.01]
    forbidden = run(defs, "no_retry_failure")
    assert not forbidden.succeeded and forbidden.attempts == 1 and forbidden.error_message.endswith("fatal")


@op(out={"rows": Out(), "summary": Out()})
def load() -> tuple[Output[list[int]], Output[str]]:
    return Output([1, 2, 3], metadata={"count": 3}), Output("three rows", output_name="summary", metadata={"ok": True})


@op
def count(rows: list[int]) -> int:
    return len(rows)


@op
def shout(text: str) -> str:
    return text.upper()


@job
def fan_out() -> None:
    rows, summary = load()
    count(rows)
    shout(summary)


def test_a_tuple_of_outputs_keeps_each_outputs_metadata_and_feeds_its_own_input() -> None:
    result = JobExecutor().execute(fan_out, run_id="r-1", run_config={})
    assert result.succeeded, result.error_message
    outputs = [(e.op_name, e.output_name, dict(e.metadata)) for e in result.events if e.event_type == "step_output"]
    assert outputs == [
        ("load", "rows", {"count": MetadataValue.int(3)}),
        ("load", "summary", {"ok": MetadataValue.bool(True)}),
        ("count", "result", {}),
        ("shout", "result", {}),
    ]


def values(result: RunResult) -> list[tuple[str, Any]]:
    """(op, message) of each log line: the ops below log the values they received."""
    return [(e.op_name, e.message) for e in result.events if e.event_type == "log"]


@op(out={"a": Out(), "b": Out(is_required=False)})
def yields_named(context: Any) -> Iterator[Output[int]]:
    yield Output(2, output_name="b")
    yield Output(1, output_name="a")


@op(out={"a": Out(), "b": Out(is_required=False)})
def yields_a_only(context: Any) -> Iterator[Output[int]]:
    yield Output(1, output_name="a")


@op(out={"a": Out(), "b": Out()})
def returns_in_order(context: Any) -> tuple[int, int]:
    return 10, 20


@op(ins={"x": In(), "y": In(default_value=5)})
def show(context: Any, x: int, y: int) -> None:
    context.log.info(f"{x} {y}")


@job
def named() -> None:
    a, b = yields_named()
    show(a, b)
    c, d = returns_in_order()
    show(d, c)
    show(x=c)


@job
def optional() -> None:
    a, b = yields_a_only()
    show(a)
    show(b)


def test_outputs_are_filled_by_name_or_in_order_and_wired_per_output() -> None:
    result = JobExecutor().execute(named, run_id="r-2", run_config={})
    assert result.succeeded, result.error_message
    assert values(result) == [("show", "1 2"), ("show_2", "20 10"), ("show_3", "10 5")]
    skipped = JobExecutor().execute(optional, run_id="r-3", run_config={})
    assert skipped.succeeded and values(skipped)[0] == ("show", "1 5")
    assert values(skipped)[1] == (
        "show_2",
        "skipped: input 'x' takes output 'b' of op 'yields_a_only', which was not produced",
    )
    assert "step_success" not in [e.event_type for e in skipped.events if e.op_name == "show_2"]


@op(out={"a": Out(), "b": Out()})
def forgets_b(context: Any) -> Iterator[Output[int]]:
    yield Output(1, output_name="a")


@op(out={"a": Out()})
def undeclared(context: Any) -> Iterator[Output[int]]:
    yield Output(1, output_name="a")
    yield Output(2, output_name="other")


@op(out={"a": Out(int)})
def wrong_type(context: Any) -> str:
    return "one"


@op(out={"a": Out(), "b": Out()})
def too_few(context: Any) -> tuple[int]:
    return (1,)


@op
def many_undeclared(context: Any) -> tuple[Output[int], Output[int]]:
    return Output(1, output_name="a"), Output(2, output_name="b")


@pytest.mark.parametrize(
    ("failing", "message"),
    [
        (many_undeclared, "returned 2 Outputs (a, b) but declares no outputs: declare them in @op(out={...})"),
        (forgets_b, "op 'forgets_b' failed: op 'forgets_b' did not produce its required output 'b'"),
        (undeclared, "which it does not declare (its outputs: a)"),
        (wrong_type, "type check failed for the output 'a' of op 'wrong_type': expected int, got str"),
        (too_few, "returned 1 values for its 2 outputs (a, b)"),
    ],
)
def test_an_output_not_declared_or_a_required_one_missing_fails_the_step(failing: OpDefinition, message: str) -> None:
    result = JobExecutor().execute(job(name=f"{failing.name}_job")(lambda: failing()), run_id="r-4", run_config={})
    assert not result.succeeded and result.error_type == "DefinitionError"
    assert message in result.error_message
    assert result.events[-1].event_type == "step_failure" and result.events[-1].op_name == failing.name


@op(config_schema={"table": str, "limit": int, "ratio": float, "columns": [str], "options": {"dry_run": bool}})
def export(context: Any) -> None:
    context.log.info(f"{context.op_config['table']} {context.op_config['limit']}")


CONFIG = {"table": "orders", "limit": 10, "ratio": 1, "columns": ["id"], "options": {"dry_run": False}}


@job(config={"ops": {"export": {"config": CONFIG}}})
def exporting() -> None:
    export()


def test_op_config_is_checked_against_its_schema_when_the_run_starts() -> None:
    default = JobExecutor().execute(exporting, run_id="r-5", run_config={})  # the job's own config
    assert default.succeeded and values(default) == [("export", "orders 10")]
    given = {"ops": {"export": {"config": {**CONFIG, "limit": 3}}}}
    assert values(JobExecutor().execute(exporting, run_id="r-6", run_config=given)) == [("export", "orders 3")]
    for config, message in [
        ({k: v for k, v in CONFIG.items() if k != "limit"}, "field 'limit' is missing (expected int)"),
        ({**CONFIG, "limit": "10"}, "field 'limit' must be int, got str '10'"),
        ({**CONFIG, "limit": True}, "field 'limit' must be int, got bool True"),
        ({**CONFIG, "columns": ["id", 2]}, "field 'columns[1]' must be str, got int 2"),
        ({**CONFIG, "options": {}}, "field 'options.dry_run' is missing (expected bool)"),
        (
            {**CONFIG, "extra": 1},
            "field 'extra' is not in the config_schema (its fields: ['columns', 'limit', 'options', 'ratio', 'table'])",
        ),
    ]:
        result = JobExecutor().execute(exporting, run_id="r-7", run_config={"ops": {"export": {"config": config}}})
        assert not result.succeeded and result.error_type == "RunConfigError"
        assert result.error_message == f"invalid config for op 'export': {message}"
        assert result.events == [] and result.attempts == 0  # no op ran


@op
def load_or_give_up(context: Any) -> Iterator[Any]:
    yield AssetMaterializationFailure(
        "shop/orders", partition="2024-06-01", reason="UPSTREAM_FAILED_TO_MATERIALIZE", description="raw missing"
    )
    yield Output(None)


@job
def giving_up() -> None:
    load_or_give_up()


def test_an_op_reports_a_materialization_failure_as_an_asset_event_of_its_run() -> None:
    result = JobExecutor().execute(giving_up, run_id="r-8", run_config={})
    assert result.succeeded, result.error_message
    [failure] = result.asset_events
    assert isinstance(failure, AssetMaterializationFailure)
    assert (failure.run_id, failure.reason, failure.partition) == (
        "r-8",
        "UPSTREAM_FAILED_TO_MATERIALIZE",
        "2024-06-01",
    )
    logged = [(e.event_type, e.asset_key, e.asset_event_id, e.message) for e in result.events if e.asset_key]
    assert logged == [("asset_materialization_failure", "shop/orders", failure.event_id, "raw missing")]
