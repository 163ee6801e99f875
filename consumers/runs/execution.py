"""Executing a job: its ops in order, each with its context, inputs and config; what they return, yield
and log; retries and failures. Collects what happened as ``RunEvent``s plus the asset events to publish,
and touches neither Kafka nor ClickHouse.

Before any op runs, the run config (the request's, else the job's ``config``) is checked against each
op's ``config_schema``: a run whose config does not fit fails naming the field.

Outputs are per (step, output name). An op with several outputs fills them by a returned tuple (in their
order, ``Output`` objects or plain values) or by ``Output(value, output_name=...)`` objects, returned or
yielded; each is recorded as a ``step_output`` event with its metadata, and a required one not produced
fails the step. A step whose input comes from an optional output that was not produced is skipped (a
log line says so), as are the steps after it on that path. An op that declares no outputs has one,
``result``: whatever it returns, None included.

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from assetpipe.definitions.context import ContextLog
from assetpipe.definitions.jobs import DEFAULT_OUTPUT, JobDefinition, Node, OpExecutionContext, op_config
from assetpipe.definitions.ops import (
    NO_DEFAULT,
    DefinitionError,
    ExpectationResult,
    Failure,
    Output,
    RetryPolicy,
    RetryRequested,
    RunConfigError,
    check_config,
    type_matches,
)
from assetpipe.schemas.metadata import MetadataValue
from assetpipe.schemas.model import (
    EVENT_CLASSES,
    AssetCheckEvaluation,
    AssetEvent,
    AssetMaterialization,
    AssetMaterializationFailure,
    AssetObservation,
    FailureReason,
    event_id_for,
    now_us,
)

_ASSET_EVENT_TYPES = {
    "materialization": "asset_materialization",
    "observation": "asset_observation",
    "check_evaluation": "asset_check_evaluation",
    "materialization_failure": "asset_materialization_failure",
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


@dataclass(slots=True)
class _Run:
    """One execution of a job: what it was asked to do, and what happened so far."""

    job: JobDefinition
    run_id: str
    run_config: Mapping[str, Any]
    tags: Mapping[str, str]
    partition_key: str | None
    result: RunResult = field(default_factory=lambda: RunResult(succeeded=True))
    outputs: dict[tuple[str, str], Any] = field(default_factory=dict)  # (step, output name) -> value

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
        """Run ``job``; ``run_config`` (the request's) replaces the job's ``config`` whole when it has any."""
        run = _Run(job, run_id, run_config or job.config, dict(tags or {}), partition_key)
        try:
            _check_configs(job, run.run_config)
        except RunConfigError as exc:
            run.result.succeeded = False
            run.result.error_type, run.result.error_message = type(exc).__name__, exc.message
            return run.result
        for index, node in enumerate(job.nodes):
            if not self._run_node(run, node):
                run.result.succeeded = False
                self._not_materialized(run, node, job.nodes[index + 1 :])
                break
        return run.result

    def _not_materialized(self, run: _Run, failed: Node, after: Sequence[Node]) -> None:
        """A materialization failure for the asset of the step that failed, and one for each asset of a step
        the failure left unrun (its upstream failed), as Dagster records them: each asset (partition) of the
        run is failed until it is materialized again. An asset the failed step did materialize is not."""
        written = {e.asset_key for e in run.result.asset_events if e.event_type == "materialization"}
        error = run.result.error_message
        steps: list[tuple[Node, FailureReason]] = [(failed, "FAILED_TO_MATERIALIZE")]
        steps += [(node, "UPSTREAM_FAILED_TO_MATERIALIZE") for node in after]
        for node, reason in steps:
            key = run.job.materializes.get(node.name)
            if key is None or key in written:
                continue
            description = error if node is failed else f"not run: {error}"
            self._record(run, node, 0, AssetMaterializationFailure(
                key, partition=run.partition_key, description=description, failure_type="FAILED", reason=reason
            ))  # fmt: skip

    def _run_node(self, run: _Run, node: Node) -> bool:
        """Run one op until it succeeds or may not retry; False if it failed."""
        for name in node.inputs:
            upstream, output = node.source(name)
            if (upstream, output) not in run.outputs:  # an optional output not produced: skip, as Dagster does
                message = f"skipped: input {name!r} takes output {output!r} of op {upstream!r}, which was not produced"
                run.add("log", node, 0, level="INFO", message=message)
                return True
        policy: RetryPolicy | None = node.op.retry_policy or run.job.retry_policy
        retries = 0
        while True:
            run.result.attempts += 1
            try:
                for output, value in self._call(run, node, retries).items():
                    run.outputs[node.name, output] = value
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

    def _call(self, run: _Run, node: Node, attempt: int) -> dict[str, Any]:
        """Call the op's function with its context, inputs and config; handle what it returns or yields.
        Returns its outputs by name."""

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
            log=ContextLog(logging.getLogger(f"assetpipe.run.{run.job.name}"), on_log),
        )
        op = node.op
        signature = op.signature
        args: list[Any] = [context] if signature.takes_context else []
        kwargs: dict[str, Any] = {}
        for name in signature.inputs:
            if name in node.inputs:
                value = run.outputs[node.source(name)]
                declared = op.ins.get(name)
                if declared is not None and not type_matches(declared.dagster_type, value):
                    raise DefinitionError(
                        _type_error(f"input {name!r} of op {node.name!r}", declared.dagster_type, value)
                    )
                kwargs[name] = value
            else:
                default = op.input_default(name)[1]
                if default is not NO_DEFAULT:  # else the function's own default applies
                    kwargs[name] = default
        if signature.config_param is not None:
            raw = context.op_config
            kwargs[signature.config_param] = (
                signature.config_type.model_validate(raw or {}) if signature.config_type is not None else raw
            )
        value = op.fn(*args, **kwargs)
        produced: dict[str, Any] = {}
        if not inspect.isgenerator(value):
            self._returned(run, node, attempt, produced, value)
        else:
            for item in value:
                if isinstance(item, Output):
                    self._output(run, node, attempt, produced, item)
                elif isinstance(item, (ExpectationResult, *EVENT_CLASSES.values())):
                    self._record(run, node, attempt, item)
                else:
                    raise DefinitionError(
                        f"op {node.name!r} yielded a {type(item).__name__}: expected Output, AssetMaterialization, "
                        "AssetObservation, AssetCheckEvaluation, AssetMaterializationFailure or ExpectationResult"
                    )
        if not op.outs_declared:
            produced.setdefault(DEFAULT_OUTPUT, None)  # its one output: None when nothing came, as ever
        missing = [name for name, out in op.outs.items() if out.is_required and name not in produced]
        if missing:
            names = ", ".join(repr(name) for name in missing)
            raise DefinitionError(
                f"op {node.name!r} did not produce its required output{'s' * (len(missing) > 1)} {names}"
            )
        return produced

    def _returned(self, run: _Run, node: Node, attempt: int, produced: dict[str, Any], value: Any) -> None:
        """What the op returned: an ``Output``, a tuple filling its outputs in order (plain values or
        ``Output``s), a tuple of named ``Output``s, or its one output's value."""
        outs = node.op.outs
        if isinstance(value, Output):
            self._output(run, node, attempt, produced, value)
        elif isinstance(value, tuple) and len(outs) > 1:
            if len(value) != len(outs):
                raise DefinitionError(
                    f"op {node.name!r} returned {len(value)} values for its {len(outs)} outputs ({', '.join(outs)})"
                )
            for name, item in zip(outs, value, strict=True):
                if not isinstance(item, Output):
                    self._fill(run, node, attempt, produced, name, item, {})
                elif item.output_name in (name, DEFAULT_OUTPUT):  # unnamed, or named as its place
                    self._fill(run, node, attempt, produced, name, item.value, item.metadata)
                else:
                    raise DefinitionError(
                        f"op {node.name!r} returned Output {item.output_name!r} in the place of its output {name!r}: "
                        "a returned tuple fills the outputs in their declared order"
                    )
        elif isinstance(value, tuple) and value and all(isinstance(item, Output) for item in value):
            if len(value) > 1 and not node.op.outs_declared:
                names = ", ".join(item.output_name for item in value)
                raise DefinitionError(
                    f"op {node.name!r} returned {len(value)} Outputs ({names}) but declares no outputs: declare "
                    "them in @op(out={...}), so each can be wired in a job"
                )
            for item in value:
                self._output(run, node, attempt, produced, item)
        elif len(outs) > 1:
            if value is not None:  # None produces nothing: the missing outputs are named after
                raise DefinitionError(
                    f"op {node.name!r} has outputs {', '.join(outs)}: return a tuple of their values in that order, "
                    "or Output(value, output_name=...) for each"
                )
        elif node.op.outs_declared:
            self._fill(run, node, attempt, produced, next(iter(outs)), value, {})
        else:
            produced[DEFAULT_OUTPUT] = value
            if value is not None:
                run.add("step_output", node, attempt, output_name=DEFAULT_OUTPUT)

    def _output(self, run: _Run, node: Node, attempt: int, produced: dict[str, Any], output: Output[Any]) -> None:
        """An ``Output`` the op returned or yielded, to the output it names. An op that declares no
        outputs has one, whatever name its ``Output`` carries; an unnamed ``Output`` of an op with one
        declared output goes to that one."""
        op = node.op
        if not op.outs_declared:
            produced[DEFAULT_OUTPUT] = output.value
            run.add("step_output", node, attempt, output_name=output.output_name, metadata=output.metadata)
            return
        name = output.output_name
        if name == DEFAULT_OUTPUT and name not in op.outs and len(op.outs) == 1:
            name = next(iter(op.outs))
        self._fill(run, node, attempt, produced, name, output.value, output.metadata)

    def _fill(
        self,
        run: _Run,
        node: Node,
        attempt: int,
        produced: dict[str, Any],
        name: str,
        value: Any,
        metadata: Mapping[str, MetadataValue],
    ) -> None:
        outs = node.op.outs
        declared = outs.get(name)
        if declared is None:
            raise DefinitionError(
                f"op {node.name!r} produced an output named {name!r}, which it does not declare (its outputs: "
                f"{', '.join(outs)}); declare every output in @op(out={{...}})"
            )
        if name in produced:
            raise DefinitionError(f"op {node.name!r} produced its output {name!r} twice")
        if not type_matches(declared.dagster_type, value):
            raise DefinitionError(_type_error(f"output {name!r} of op {node.name!r}", declared.dagster_type, value))
        produced[name] = value
        run.add("step_output", node, attempt, output_name=name, metadata=metadata)

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
        if not isinstance(
            event, (AssetMaterialization, AssetObservation, AssetCheckEvaluation, AssetMaterializationFailure)
        ):
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


def _check_configs(job: JobDefinition, run_config: Mapping[str, Any]) -> None:
    """Raise ``RunConfigError`` naming the op and the field when a step's config does not fit its op's
    ``config_schema``."""
    for node in job.nodes:
        schema = node.op.config_schema
        if schema is None:
            continue
        try:
            check_config(schema, op_config(run_config, node.name))
        except RunConfigError as exc:
            raise RunConfigError(f"invalid config for op {node.name!r}: {exc.message}") from None


def _type_error(what: str, expected: Any, value: Any) -> str:
    expected_name = getattr(expected, "__name__", expected)
    return f"type check failed for the {what}: expected {expected_name}, got {type(value).__name__}"
