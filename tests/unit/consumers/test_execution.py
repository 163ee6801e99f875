"""The job executor: ops in order, outputs and events, retries and failures (no sockets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assetpipe.consumers.runs.execution import JobExecutor, RunResult
from assetpipe.definitions.loader import Definitions, load_definitions
from assetpipe.schemas.metadata import MetadataValue
from assetpipe.schemas.model import AssetObservation

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
