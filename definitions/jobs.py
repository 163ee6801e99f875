"""Jobs and ops: ``@op``, ``@job``, ``webhook_job``, and the ``OpExecutionContext`` an op receives.

A ``@job`` is either a function that takes a context (run as the job's one step), or, as in Dagster, a
function without parameters whose body calls ops: ``transform(load())``. The body is called once, at
definition time, to record which op feeds which (so it must only call ops). A ``webhook_job`` has no
body: its runs are POSTed to a URL for a system elsewhere to execute.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from assetpipe.definitions.ops import Config, DefinitionError, ExpectationResult, RetryPolicy
from assetpipe.schemas.model import AssetEvent

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CONTEXT_NAMES = ("context", "_context", "_")


def check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise DefinitionError(f"{kind} name {name!r} must match {NAME.pattern}")
    return name


class OpExecutionContext:
    """What an op sees of its run: ``run_config``, ``op_config``, ``log``, ``log_event(...)``."""

    def __init__(
        self,
        *,
        run_id: str,
        job_name: str,
        op_name: str,
        run_config: Mapping[str, Any],
        tags: Mapping[str, str],
        partition_key: str | None,
        retry_number: int,
        log: logging.Logger | logging.LoggerAdapter[logging.Logger],
        on_event: Callable[[AssetEvent | ExpectationResult], None],
    ) -> None:
        self.run_id = run_id
        self.job_name = job_name
        self.op_name = op_name
        self.run_config = run_config
        self.tags = tags
        self.partition_key = partition_key
        self.retry_number = retry_number
        self.log = log
        self._on_event = on_event

    @property
    def op_config(self) -> Any:
        """``run_config["ops"][op_name]["config"]`` (None when absent)."""
        ops = self.run_config.get("ops") or {}
        return (ops.get(self.op_name) or {}).get("config")

    @property
    def has_partition_key(self) -> bool:
        return self.partition_key is not None

    def log_event(self, event: AssetEvent | ExpectationResult) -> None:
        """Record an ``AssetMaterialization``, ``AssetObservation``, ``AssetCheckEvaluation`` (published
        as asset events, with this run's id) or an ``ExpectationResult`` (recorded on the run)."""
        self._on_event(event)


@dataclass(frozen=True, slots=True)
class OpSignature:
    """How to call an op's function: with a context first or not, which parameter takes config, and the
    names of the inputs fed by upstream ops."""

    takes_context: bool
    config_param: str | None
    config_type: type[Config] | None
    inputs: tuple[str, ...]

    @classmethod
    def of(cls, fn: Callable[..., Any]) -> OpSignature:
        try:
            params = list(inspect.signature(fn, eval_str=True).parameters.values())
        except (NameError, TypeError):  # an annotation that does not resolve: read the names only
            params = list(inspect.signature(fn).parameters.values())
        takes_context = bool(params) and (
            params[0].name in _CONTEXT_NAMES or params[0].annotation is OpExecutionContext
        )
        rest = params[1:] if takes_context else params
        config_param: str | None = None
        config_type: type[Config] | None = None
        inputs: list[str] = []
        for param in rest:
            annotation = param.annotation
            if isinstance(annotation, type) and issubclass(annotation, Config):
                config_param, config_type = param.name, annotation
            elif param.name == "config":
                config_param = param.name
            else:
                inputs.append(param.name)
        return cls(takes_context, config_param, config_type, tuple(inputs))


@dataclass(frozen=True, slots=True)
class OutputHandle:
    """What calling an op inside a ``@job`` body returns: the output of that step, to pass on."""

    node: str


@dataclass(frozen=True, eq=False)
class OpDefinition:
    name: str
    fn: Callable[..., Any]
    signature: OpSignature
    retry_policy: RetryPolicy | None = None
    description: str | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        composition = _COMPOSING.get()
        if composition is not None:
            return composition.invoke(self, args, kwargs)
        return self.fn(*args, **kwargs)  # called directly, e.g. from a unit test


@dataclass(frozen=True, slots=True)
class Node:
    """One step of a job: an op, and the upstream step feeding each of its inputs."""

    name: str
    op: OpDefinition
    inputs: Mapping[str, str]


class _Composition:
    def __init__(self) -> None:
        self.nodes: list[Node] = []

    def invoke(self, op: OpDefinition, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> OutputHandle:
        names = op.signature.inputs
        if len(args) > len(names):
            raise DefinitionError(f"op {op.name!r} takes {len(names)} inputs, got {len(args)}")
        given = {**dict(zip(names, args, strict=False)), **kwargs}
        inputs: dict[str, str] = {}
        for name in names:
            handle = given.pop(name, None)
            if not isinstance(handle, OutputHandle):
                raise DefinitionError(f"input {name!r} of op {op.name!r} must be the output of another op")
            inputs[name] = handle.node
        if given:
            raise DefinitionError(f"op {op.name!r} has no inputs named {sorted(given)}")
        used = {node.name for node in self.nodes}
        node_name, n = op.name, 1
        while node_name in used:  # the same op twice in one job: op, op_2, op_3
            n += 1
            node_name = f"{op.name}_{n}"
        self.nodes.append(Node(node_name, op, inputs))
        return OutputHandle(node_name)


_COMPOSING: ContextVar[_Composition | None] = ContextVar("assetpipe_job_composition", default=None)


@dataclass(frozen=True, eq=False)
class JobDefinition:
    name: str
    nodes: tuple[Node, ...]
    retry_policy: RetryPolicy | None = None
    description: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    webhook_url: str | None = None
    webhook_headers: Mapping[str, str] = field(default_factory=dict)


def op(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    retry_policy: RetryPolicy | None = None,
    description: str | None = None,
) -> Any:
    """``@op`` or ``@op(name=..., retry_policy=...)``."""

    def make(fn: Callable[..., Any]) -> OpDefinition:
        op_name = check_name("op", name or fn.__name__)
        return OpDefinition(op_name, fn, OpSignature.of(fn), retry_policy, description or inspect.getdoc(fn))

    return make(fn) if fn is not None else make


def job(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    retry_policy: RetryPolicy | None = None,
    op_retry_policy: RetryPolicy | None = None,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> Any:
    """``@job`` or ``@job(name=..., retry_policy=...)``. ``retry_policy`` applies to every op without
    its own (Dagster calls it ``op_retry_policy``, also accepted)."""

    def make(fn: Callable[..., Any]) -> JobDefinition:
        job_name = check_name("job", name or fn.__name__)
        signature = OpSignature.of(fn)
        if signature.takes_context or signature.config_param or signature.inputs:
            if signature.inputs:
                raise DefinitionError(f"job {job_name!r} takes unknown parameters {list(signature.inputs)}")
            nodes: tuple[Node, ...] = (Node(job_name, OpDefinition(job_name, fn, signature), {}),)
        else:
            composition = _Composition()
            token = _COMPOSING.set(composition)
            try:
                fn()
            finally:
                _COMPOSING.reset(token)
            if not composition.nodes:
                raise DefinitionError(
                    f"job {job_name!r} calls no ops: call ops in its body, or take a context parameter "
                    "to run the function itself"
                )
            nodes = tuple(composition.nodes)
        return JobDefinition(
            job_name,
            nodes,
            retry_policy or op_retry_policy,
            description or inspect.getdoc(fn),
            dict(tags or {}),
        )

    return make(fn) if fn is not None else make


def webhook_job(
    name: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> JobDefinition:
    """A job that runs elsewhere: each run request is POSTed as JSON to ``url``."""
    if not url.startswith(("http://", "https://")):
        raise DefinitionError(f"webhook_job {name!r}: url must start with http:// or https://")
    return JobDefinition(check_name("job", name), (), None, description, dict(tags or {}), url, dict(headers or {}))
