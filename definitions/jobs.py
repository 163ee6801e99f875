"""Jobs and ops: ``@op``, ``@job``, ``webhook_job``, and the ``OpExecutionContext`` an op receives.

A ``@job`` is either a function that takes a context (run as the job's one step), or, as in Dagster, a
function without parameters whose body calls ops: ``transform(load())``. The body is called once, at
definition time, to record which op feeds which (so it must only call ops). An op declared with several
outputs (``@op(out={"a": Out(), "b": Out()})``) gives one handle per output there: ``a, b = split()``.
A ``webhook_job`` has no body: its runs are POSTed to a URL for a system elsewhere to execute.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections import namedtuple
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from assetpipe.definitions.ops import (
    NO_DEFAULT,
    Config,
    DefinitionError,
    ExpectationResult,
    In,
    Out,
    RetryPolicy,
    RunConfig,
    check_config_schema,
    run_config_dict,
)
from assetpipe.schemas.asset_key import AssetKey
from assetpipe.schemas.model import AssetEvent

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CONTEXT_NAMES = ("context", "_context", "_")


def check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise DefinitionError(f"{kind} name {name!r} must match {NAME.pattern}")
    return name


def op_config(run_config: Mapping[str, Any], op_name: str) -> Any:
    """The config of step ``op_name`` in ``run_config``: ``run_config["ops"][op_name]["config"]``, or None."""
    ops = run_config.get("ops") or {}
    return (ops.get(op_name) or {}).get("config")


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
        return op_config(self.run_config, self.op_name)

    @property
    def has_partition_key(self) -> bool:
        return self.partition_key is not None

    def log_event(self, event: AssetEvent | ExpectationResult) -> None:
        """Record an ``AssetMaterialization``, ``AssetObservation``, ``AssetCheckEvaluation`` (published
        as asset events, with this run's id) or an ``ExpectationResult`` (recorded on the run)."""
        self._on_event(event)


@dataclass(frozen=True, slots=True)
class OpSignature:
    """How to call an op's function: with a context first or not, which parameter takes config, the
    names of the inputs fed by upstream ops, and those of them with a default of their own."""

    takes_context: bool
    config_param: str | None
    config_type: type[Config] | None
    inputs: tuple[str, ...]
    defaults: frozenset[str] = frozenset()

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
        defaults = frozenset(p.name for p in rest if p.name in inputs and p.default is not p.empty)
        return cls(takes_context, config_param, config_type, tuple(inputs), defaults)


DEFAULT_OUTPUT = "result"  # the name of an op's one output when it declares none, as in Dagster


@dataclass(frozen=True, slots=True)
class OutputHandle:
    """What calling an op inside a ``@job`` body returns (one per output): that output of the step, to
    pass on."""

    node: str
    output: str = DEFAULT_OUTPUT


@dataclass(frozen=True, eq=False)
class OpDefinition:
    """``outs``: the declared outputs, in order (``{"result": Out()}`` when ``out=`` was not given:
    ``outs_declared`` is then False, and the op's one output is whatever it returns, None included)."""

    name: str
    fn: Callable[..., Any]
    signature: OpSignature
    retry_policy: RetryPolicy | None = None
    description: str | None = None
    ins: Mapping[str, In] = field(default_factory=dict)
    outs: Mapping[str, Out] = field(default_factory=lambda: {DEFAULT_OUTPUT: Out()})
    outs_declared: bool = False
    config_schema: Any = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        composition = _COMPOSING.get()
        if composition is not None:
            return composition.invoke(self, args, kwargs)
        return self.fn(*args, **kwargs)  # called directly, e.g. from a unit test

    def input_default(self, name: str) -> tuple[bool, Any]:
        """(whether input ``name`` may be left unwired, the value it then takes: its ``In``'s default, or
        ``NO_DEFAULT`` where the function's own default applies)."""
        declared = self.ins.get(name)
        if declared is not None and declared.has_default:
            return True, declared.default_value
        return name in self.signature.defaults, NO_DEFAULT


@dataclass(frozen=True, slots=True)
class Node:
    """One step of a job: an op, the upstream step feeding each of its inputs, and which output of that
    step (``sources``; an input not listed there takes the upstream's ``result``)."""

    name: str
    op: OpDefinition
    inputs: Mapping[str, str]
    sources: Mapping[str, str] = field(default_factory=dict)

    def source(self, input_name: str) -> tuple[str, str]:
        """(upstream step, its output) feeding ``input_name``."""
        return self.inputs[input_name], self.sources.get(input_name, DEFAULT_OUTPUT)


class _Composition:
    def __init__(self) -> None:
        self.nodes: list[Node] = []

    def invoke(self, op: OpDefinition, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
        names = op.signature.inputs
        if len(args) > len(names):
            raise DefinitionError(f"op {op.name!r} takes {len(names)} inputs, got {len(args)}")
        given = {**dict(zip(names, args, strict=False)), **kwargs}
        inputs: dict[str, str] = {}
        sources: dict[str, str] = {}
        for name in names:
            if name not in given and op.input_default(name)[0]:
                continue  # left unwired: it takes its default
            handle = given.pop(name, None)
            if isinstance(handle, tuple) and handle and all(isinstance(h, OutputHandle) for h in handle):
                outputs = ", ".join(h.output for h in handle)
                raise DefinitionError(
                    f"input {name!r} of op {op.name!r} is given every output of op {handle[0].node!r} "
                    f"({outputs}): unpack them (a, b = {handle[0].node}()) and pass one"
                )
            if not isinstance(handle, OutputHandle):
                raise DefinitionError(f"input {name!r} of op {op.name!r} must be the output of another op")
            inputs[name] = handle.node
            sources[name] = handle.output
        if given:
            raise DefinitionError(f"op {op.name!r} has no inputs named {sorted(given)}")
        used = {node.name for node in self.nodes}
        node_name, n = op.name, 1
        while node_name in used:  # the same op twice in one job: op, op_2, op_3
            n += 1
            node_name = f"{op.name}_{n}"
        self.nodes.append(Node(node_name, op, inputs, sources))
        handles = [OutputHandle(node_name, output) for output in op.outs]
        if len(handles) == 1:
            return handles[0]
        return _handles_type(tuple(op.outs))(*handles)


_COMPOSING: ContextVar[_Composition | None] = ContextVar("assetpipe_job_composition", default=None)


def _handles_type(outputs: tuple[str, ...]) -> Callable[..., tuple[OutputHandle, ...]]:
    """The tuple of a multi-output op's handles: unpacked in order (``a, b = split()``) or read by name
    (``split().a``), as Dagster's. A name a namedtuple cannot hold (``_x``) leaves a plain tuple."""
    try:
        return namedtuple("OutputHandles", outputs)
    except ValueError:
        return lambda *handles: tuple(handles)


@dataclass(frozen=True, eq=False)
class JobDefinition:
    """``config``: the run config of a run whose request brings none (Dagster's ``@job(config=...)``)."""

    name: str
    nodes: tuple[Node, ...]
    retry_policy: RetryPolicy | None = None
    description: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    webhook_url: str | None = None
    webhook_headers: Mapping[str, str] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)
    materializes: Mapping[str, AssetKey] = field(default_factory=dict)  # node name -> the asset its step writes


def op(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    retry_policy: RetryPolicy | None = None,
    description: str | None = None,
    ins: Mapping[str, In] | None = None,
    out: Out | Mapping[str, Out] | None = None,
    config_schema: Any = None,
) -> Any:
    """``@op`` or ``@op(name=..., retry_policy=..., ins=..., out=..., config_schema=...)``. ``out``: one
    ``Out`` (the output ``result``) or a dict of output name -> ``Out``, in the order a returned tuple
    fills them. ``config_schema``: a Python type, or a dict of field name -> type, checked against the
    op's config when a run starts."""

    def make(fn: Callable[..., Any]) -> OpDefinition:
        op_name = check_name("op", name or fn.__name__)
        signature = OpSignature.of(fn)
        declared_ins = dict(ins or {})
        for input_name, declared in declared_ins.items():
            if not isinstance(declared, In):
                raise DefinitionError(
                    f"op {op_name!r}: ins[{input_name!r}] must be an In, got {type(declared).__name__}"
                )
            if input_name not in signature.inputs:
                raise DefinitionError(
                    f"op {op_name!r}: ins names {input_name!r}, which its function does not take as an input "
                    f"(its inputs: {list(signature.inputs)})"
                )
        if config_schema is not None:
            check_config_schema(config_schema, f"op {op_name!r}")
        return OpDefinition(op_name, fn, signature, retry_policy, description or inspect.getdoc(fn), declared_ins,
                            *_outs(op_name, out), config_schema)  # fmt: skip

    return make(fn) if fn is not None else make


def _outs(op_name: str, out: Out | Mapping[str, Out] | None) -> tuple[dict[str, Out], bool]:
    """(the declared outputs, whether ``out=`` declared them)."""
    if out is None:
        return {DEFAULT_OUTPUT: Out()}, False
    if isinstance(out, Out):
        return {DEFAULT_OUTPUT: out}, True
    if not isinstance(out, Mapping) or not out:
        raise DefinitionError(f"op {op_name!r}: out must be an Out or a non-empty dict of output name -> Out")
    for output_name, declared in out.items():
        check_name(f"op {op_name!r}: output", output_name)
        if not isinstance(declared, Out):
            raise DefinitionError(f"op {op_name!r}: out[{output_name!r}] must be an Out, got {type(declared).__name__}")
    return dict(out), True


def job(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    retry_policy: RetryPolicy | None = None,
    op_retry_policy: RetryPolicy | None = None,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
    config: RunConfig | Mapping[str, Any] | None = None,
) -> Any:
    """``@job`` or ``@job(name=..., retry_policy=..., config=...)``. ``retry_policy`` applies to every op
    without its own (Dagster calls it ``op_retry_policy``, also accepted). ``config`` (a dict or a
    ``RunConfig``) is the run config of a run whose request brings none; a request's own replaces it whole."""

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
            config=run_config_dict(config),
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
