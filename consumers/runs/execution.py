"""Executing a job: its ops in order, each with its context, inputs and config; what they return, yield
and log; retries and failures. Collects what happened as ``RunEvent``s plus the asset events to publish,
and touches neither Kafka nor ClickHouse.

Retries are per op, as in Dagster: ``RetryRequested`` runs the op again after its wait, up to its
``max_retries``; any other exception, and a ``Failure`` that allows retries, follow the op's retry policy
(else the job's). A ``Failure(allow_retries=False)`` fails at once. Asset events an op emits keep this
run's id and get an id derived from (run, sequence), so a run executed again after a crash reports the
same events and the ingest worker keeps them once.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from assetpipe.definitions.jobs import JobDefinition, Node, OpExecutionContext
from assetpipe.definitions.ops import DefinitionError, ExpectationResult, Failure, Output, RetryPolicy, RetryRequested
from assetpipe.schemas.metadata import MetadataValue
from assetpipe.schemas.model import (
    EVENT_CLASSES,
    AssetCheckEvaluation,
    AssetEvent,
    AssetMaterialization,
    AssetObservation,
    event_id_for,
    now_us,
)

_ASSET_EVENT_TYPES = {
    "materialization": "asset_materialization",
    "observation": "asset_observation",
    "check_evaluation": "asset_check_evaluation",
}


@dataclass(slots=True)
class RunEvent:
    """One entry of a run's event log (a ``run_events`` row)."""

    event_type: str
    op_name: str = ""
    attempt: int = 0
    level: str = ""
    message: str = ""
    output_name: str = ""
    asset_key: str = ""
    asset_event_id: str = ""
    success: bool | None = None
    label: str = ""
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict)
    error_type: str = ""
    traceback: str = ""
    timestamp_us: int = field(default_factory=now_us)


@dataclass(slots=True)
class RunResult:
    succeeded: bool
    events: list[RunEvent] = field(default_factory=list)
    asset_events: list[AssetEvent] = field(default_factory=list)
    attempts: int = 0
    error_type: str = ""
    error_message: str = ""
    error_traceback: str = ""
    error_metadata: Mapping[str, MetadataValue] = field(default_factory=dict)


class _RunLog(logging.LoggerAdapter[logging.Logger]):
    """``context.log``: logs through ``assetpipe.run.<job>`` and records each message on the run."""

    def __init__(self, logger: logging.Logger, record: Callable[[int, str], None]) -> None:
        super().__init__(logger, {})
        self._record = record

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        self._record(level, str(msg) % args if args else str(msg))
        super().log(level, msg, *args, **kwargs)


@dataclass(slots=True)
class _Run:
    """One execution of a job: what it was asked to do, and what happened so far."""

    job: JobDefinition
    run_id: str
    run_config: Mapping[str, Any]
    tags: Mapping[str, str]
    partition_key: str | None
    result: RunResult = field(default_factory=lambda: RunResult(succeeded=True))
    outputs: dict[str, Any] = field(default_factory=dict)

    def add(self, event_type: str, node: Node, attempt: int, **fields: Any) -> None:
        self.result.events.append(RunEvent(event_type, node.name, attempt, **fields))


class JobExecutor:
    def __init__(self, *, wait: Callable[[float], object] = time.sleep) -> None:
        self._wait = wait

    def execute(
        self,
        job: JobDefinition,
        *,
        run_id: str,
        run_config: Mapping[str, Any],
        tags: Mapping[str, str] | None = None,
        partition_key: str | None = None,
    ) -> RunResult:
        run = _Run(job, run_id, run_config, dict(tags or {}), partition_key)
        for node in job.nodes:
            if not self._run_node(run, node):
                run.result.succeeded = False
                break
        return run.result

    def _run_node(self, run: _Run, node: Node) -> bool:
        """Run one op until it succeeds or may not retry; False if it failed."""
        policy: RetryPolicy | None = node.op.retry_policy or run.job.retry_policy
        retries = 0
        while True:
            run.result.attempts += 1
            try:
                run.outputs[node.name] = self._call(run, node, retries)
                run.add("step_success", node, retries)
                return True
            except RetryRequested as exc:
                limit, wait, reason = (
                    exc.max_retries,
                    exc.seconds_to_wait or 0.0,
                    f"Exceeded max_retries of {exc.max_retries}",
                )
                failure: Exception = exc
            except Failure as exc:
                limit = policy.max_retries if policy and exc.allow_retries else 0
                wait, reason, failure = (policy.wait_before(retries + 1) if policy else 0.0), exc.message, exc
            except Exception as exc:  # user code: any error fails the op, with its traceback
                limit = policy.max_retries if policy else 0
                wait, reason, failure = (policy.wait_before(retries + 1) if policy else 0.0), str(exc), exc
            trace = "".join(traceback.format_exception(failure))
            error_type = type(failure).__name__
            if retries < limit:
                retries += 1
                message = f"{error_type}: {reason}; retry {retries} of {limit} in {wait:g}s"
                run.add("step_retry", node, retries, message=message, traceback=trace)
                self._wait(wait)
                continue
            metadata = failure.metadata if isinstance(failure, Failure) else {}
            run.add(
                "step_failure", node, retries, message=reason, metadata=metadata, error_type=error_type, traceback=trace
            )
            result = run.result
            result.error_type, result.error_message = error_type, f"op {node.name!r} failed: {reason}"
            result.error_traceback, result.error_metadata = trace, metadata
            return False

    def _call(self, run: _Run, node: Node, attempt: int) -> Any:
        """Call the op's function with its context, inputs and config; handle what it returns or yields."""

        def on_log(level: int, message: str) -> None:
            run.add("log", node, attempt, level=logging.getLevelName(level), message=message)

        context = OpExecutionContext(
            run_id=run.run_id,
            job_name=run.job.name,
            op_name=node.name,
            run_config=run.run_config,
            tags=run.tags,
            partition_key=run.partition_key,
            retry_number=attempt,
            on_event=lambda event: self._record(run, node, attempt, event),
            log=_RunLog(logging.getLogger(f"assetpipe.run.{run.job.name}"), on_log),
        )
        signature = node.op.signature
        args: list[Any] = [context] if signature.takes_context else []
        kwargs = {name: run.outputs[upstream] for name, upstream in node.inputs.items()}
        if signature.config_param is not None:
            raw = context.op_config
            kwargs[signature.config_param] = (
                signature.config_type.model_validate(raw or {}) if signature.config_type is not None else raw
            )
        value = node.op.fn(*args, **kwargs)
        if not inspect.isgenerator(value):
            return self._output(run, node, attempt, value)
        returned: Any = None
        for item in value:
            if isinstance(item, Output):
                returned = self._output(run, node, attempt, item)
            elif isinstance(item, (ExpectationResult, *EVENT_CLASSES.values())):
                self._record(run, node, attempt, item)
            else:
                raise DefinitionError(
                    f"op {node.name!r} yielded a {type(item).__name__}: expected Output, "
                    "AssetMaterialization, AssetObservation or ExpectationResult"
                )
        return returned

    def _output(self, run: _Run, node: Node, attempt: int, value: Any) -> Any:
        if isinstance(value, Output):
            run.add("step_output", node, attempt, output_name=value.output_name, metadata=value.metadata)
            return value.value
        if value is not None:
            run.add("step_output", node, attempt, output_name="result")
        return value

    def _record(self, run: _Run, node: Node, attempt: int, event: Any) -> None:
        if isinstance(event, ExpectationResult):
            run.add(
                "expectation_result",
                node,
                attempt,
                message=event.description or "",
                success=event.success,
                label=event.label or "",
                metadata=event.metadata,
            )
            return
        if not isinstance(event, (AssetMaterialization, AssetObservation, AssetCheckEvaluation)):
            raise DefinitionError(f"log_event takes asset events and ExpectationResult, not {type(event).__name__}")
        key = str(event.asset_key)
        sequence = len(run.result.asset_events)
        event_id = event.event_id or event_id_for(event.event_type, key, f"{run.run_id}:{sequence}")
        run.result.asset_events.append(dataclasses.replace(event, run_id=run.run_id, event_id=event_id))
        run.add(
            _ASSET_EVENT_TYPES[event.event_type],
            node,
            attempt,
            asset_key=key,
            asset_event_id=event_id,
            message=event.description or "",
            metadata=event.metadata,
        )
