"""What user code hands back to assetpipe: a sensor's ``RunRequest`` or ``SkipReason``; an op's ``Output``
and ``ExpectationResult``; the ``Failure`` and ``RetryRequested`` an op raises; ``RetryPolicy``; an op's
declared inputs and outputs (``In``, ``Out``); run config, typed (``Config``, ``RunConfig``) or checked
against an op's ``config_schema`` (``check_config``). Dagster's names and fields, so Dagster code reads
the same.

``DefinitionError`` is raised when definitions or what a sensor returns break these rules;
``RunConfigError`` when a run's config does not fit an op's ``config_schema``.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pydantic

from assetpipe.schemas.asset_key import AssetKey, CoercibleToAssetKey, coerce_asset_key
from assetpipe.schemas.errors import AssetpipeError
from assetpipe.schemas.metadata import MetadataValue, normalize

T = TypeVar("T")


class DefinitionError(AssetpipeError):
    """A job, op or sensor definition (or what a sensor returned) is invalid."""

    code = "invalid_definition"


class RunConfigError(DefinitionError):
    """A run's config does not fit an op's ``config_schema``: the run fails before any op runs."""

    code = "invalid_run_config"


class Failure(AssetpipeError):
    """Raised in an op: the run fails, with ``metadata`` recorded. ``allow_retries=False`` bypasses the
    retry policy. (Dagster's name, so without the ``Error`` suffix.)"""

    code = "op_failure"

    def __init__(
        self,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        allow_retries: bool = True,
    ) -> None:
        super().__init__(description or "op failed")
        self.description = description
        self.metadata: dict[str, MetadataValue] = {k: normalize(k, v) for k, v in (metadata or {}).items()}
        self.allow_retries = allow_retries


class RetryRequested(AssetpipeError):
    """Raised in an op: run the op again after ``seconds_to_wait``, at most ``max_retries`` times."""

    code = "retry_requested"

    def __init__(self, max_retries: int = 1, seconds_to_wait: float | None = None) -> None:
        if max_retries < 0:
            raise DefinitionError(f"RetryRequested: max_retries must be >= 0, got {max_retries}")
        if seconds_to_wait is not None and seconds_to_wait < 0:
            raise DefinitionError(f"RetryRequested: seconds_to_wait must be >= 0, got {seconds_to_wait}")
        super().__init__(f"retry requested (max_retries={max_retries})")
        self.max_retries = max_retries
        self.seconds_to_wait = seconds_to_wait


class Backoff(enum.Enum):
    LINEAR = "LINEAR"
    EXPONENTIAL = "EXPONENTIAL"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often an op that raised is run again, and how long to wait between attempts."""

    max_retries: int = 1
    delay: float | None = None
    backoff: Backoff | None = None

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise DefinitionError(f"RetryPolicy: max_retries must be >= 0, got {self.max_retries}")
        if self.delay is not None and self.delay < 0:
            raise DefinitionError(f"RetryPolicy: delay must be >= 0, got {self.delay}")

    def wait_before(self, retry_number: int) -> float:
        """Seconds to wait before retry ``retry_number`` (1 for the first retry)."""
        delay = self.delay or 0.0
        if self.backoff is Backoff.EXPONENTIAL:
            return delay * float(2 ** (retry_number - 1))
        if self.backoff is Backoff.LINEAR:
            return delay * retry_number
        return delay


class Config(pydantic.BaseModel):
    """Typed config of an op: an op parameter annotated with a ``Config`` subclass receives its
    ``run_config["ops"][op_name]["config"]`` validated into that class."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True, slots=True)
class RunConfig:
    """``RunConfig(ops={"op_name": MyConfig(...)})``: the run config dict built from ``Config`` objects."""

    ops: Mapping[str, Config | Mapping[str, Any]] = field(default_factory=dict)

    def to_config_dict(self) -> dict[str, Any]:
        ops: dict[str, Any] = {}
        for name, config in self.ops.items():
            ops[name] = {"config": config.model_dump(mode="json") if isinstance(config, Config) else dict(config)}
        return {"ops": ops} if ops else {}


# A config_schema leaf: a Python type; a dict of field -> schema; [schema], a list of such values.
ConfigSchema = type | Mapping[str, Any] | list[Any]


def check_config_schema(schema: Any, where: str) -> None:
    """Raise ``DefinitionError`` unless ``schema`` is a config schema Dagster takes: a Python type (``str``,
    ``int``, ``float``, ``bool``, ``list``, ``dict``, ...), a dict of field name -> schema, or ``[schema]``."""
    if isinstance(schema, type):
        return
    if isinstance(schema, Mapping):
        for name, inner in schema.items():
            if not isinstance(name, str) or not name:
                raise DefinitionError(f"{where}: config_schema field names must be non-empty strings, got {name!r}")
            check_config_schema(inner, f"{where}, field {name!r}")
        return
    if isinstance(schema, list) and len(schema) == 1:
        check_config_schema(schema[0], where)
        return
    raise DefinitionError(
        f"{where}: config_schema must be a Python type, a dict of field name -> type, or [type]; got {schema!r}"
    )


def check_config(schema: ConfigSchema, value: Any, path: str = "") -> None:
    """Raise ``RunConfigError`` naming the first field of ``value`` that ``schema`` refuses: a field
    missing, one not in the schema, or a value of another type (an int is a float; a bool is no int)."""
    here = f"field {path!r}" if path else "the config"
    if isinstance(schema, Mapping):
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise RunConfigError(f"{here} must be a dict of {sorted(schema)}, got {type(value).__name__}")
        for name, inner in schema.items():
            inner_path = f"{path}.{name}" if path else name
            if name not in value:
                raise RunConfigError(f"field {inner_path!r} is missing (expected {_schema_text(inner)})")
            check_config(inner, value[name], inner_path)
        unknown = sorted(str(name) for name in value if name not in schema)
        if unknown:
            first = f"{path}.{unknown[0]}" if path else unknown[0]
            raise RunConfigError(f"field {first!r} is not in the config_schema (its fields: {sorted(schema)})")
        return
    if isinstance(schema, list):
        if not isinstance(value, list):
            raise RunConfigError(f"{here} must be a list, got {type(value).__name__}")
        for i, item in enumerate(value):
            check_config(schema[0], item, f"{path}[{i}]")
        return
    if value is None:
        raise RunConfigError(f"{here} is missing (expected {_schema_text(schema)})")
    if not type_matches(schema, value):
        raise RunConfigError(f"{here} must be {_schema_text(schema)}, got {type(value).__name__} {value!r}")


def type_matches(expected: Any, value: Any) -> bool:
    """Whether ``value`` is of ``expected``, a Python type, as Dagster's built-in types check: an int
    passes as a float, a bool passes as no int. Anything but a class (``None``, ``typing.Any``, a
    generic alias) is not checked."""
    if not isinstance(expected, type) or expected is object:
        return True
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def _schema_text(schema: Any) -> str:
    if isinstance(schema, type):
        return schema.__name__
    if isinstance(schema, list):
        return f"[{_schema_text(schema[0])}]"
    return "a dict of " + ", ".join(f"{k}: {_schema_text(v)}" for k, v in schema.items())


def run_config_dict(run_config: RunConfig | Mapping[str, Any] | None) -> dict[str, Any]:
    """A run config as a JSON-serializable dict (it travels as JSON text)."""
    if run_config is None:
        return {}
    value = run_config.to_config_dict() if isinstance(run_config, RunConfig) else dict(run_config)
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise DefinitionError(f"run_config must be JSON-serializable: {exc}") from exc
    return value


def run_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    """Run tags as Dagster takes them: strings as they are; other values that survive a JSON round trip
    are stored as their JSON text."""
    out: dict[str, str] = {}
    for key, value in (tags or {}).items():
        if not isinstance(key, str) or not key:
            raise DefinitionError(f"run tag keys must be non-empty strings, got {key!r}")
        if isinstance(value, str):
            out[key] = value
            continue
        try:
            text = json.dumps(value)
            ok = json.loads(text) == value
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise DefinitionError(
                f'invalid value for tag "{key}": tag values must be strings or meet the constraint that '
                "json.loads(json.dumps(value)) == value"
            )
        out[key] = text
    return out


@dataclass(frozen=True, slots=True)
class RunRequest:
    """Returned or yielded by a sensor: run ``job_name`` (default: the sensor's job) with ``run_config``.
    A ``run_key`` already requested by the same sensor is never requested again. ``asset_selection``
    (asset keys; a string is a user string, ``a/b``) narrows an asset job's run to those assets, None for
    all; ``stale_assets_only`` narrows it further to the stale ones, as Dagster's daemon does."""

    run_key: str | None = None
    run_config: Mapping[str, Any] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    job_name: str | None = None
    partition_key: str | None = None
    asset_selection: tuple[AssetKey, ...] | None = None
    stale_assets_only: bool = False

    def __init__(
        self,
        run_key: str | None = None,
        run_config: RunConfig | Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        job_name: str | None = None,
        partition_key: str | None = None,
        asset_selection: Sequence[CoercibleToAssetKey] | None = None,
        stale_assets_only: bool = False,
    ) -> None:
        if run_key is not None and not isinstance(run_key, str):
            raise DefinitionError(f"RunRequest: run_key must be a string or None, got {type(run_key).__name__}")
        if partition_key is not None and (not isinstance(partition_key, str) or not partition_key):
            raise DefinitionError("RunRequest: partition_key must be a non-empty string or None")
        if not isinstance(stale_assets_only, bool):
            raise DefinitionError(
                f"RunRequest: stale_assets_only must be a bool, got {type(stale_assets_only).__name__}"
            )
        object.__setattr__(self, "run_key", run_key)
        object.__setattr__(self, "run_config", run_config_dict(run_config))
        object.__setattr__(self, "tags", run_tags(tags))
        object.__setattr__(self, "job_name", job_name)
        object.__setattr__(self, "partition_key", partition_key)
        object.__setattr__(self, "asset_selection", _asset_selection(asset_selection))
        object.__setattr__(self, "stale_assets_only", stale_assets_only)


def _asset_selection(keys: Sequence[CoercibleToAssetKey] | None) -> tuple[AssetKey, ...] | None:
    if keys is None:
        return None
    if isinstance(keys, (str, AssetKey)):  # one key where a list of them belongs: refused, not split in chars
        raise DefinitionError(f"RunRequest: asset_selection must be a list of asset keys, got {keys!r}")
    selected = []
    for key in keys:
        try:
            selected.append(coerce_asset_key(key))
        except TypeError as exc:
            raise DefinitionError(f"RunRequest: asset_selection holds {key!r}, which is no asset key") from exc
        if not selected[-1].path or not all(isinstance(p, str) and p for p in selected[-1].path):
            raise DefinitionError(f"RunRequest: asset_selection holds {key!r}, which is no asset key")
    return tuple(selected)


@dataclass(frozen=True, slots=True)
class SkipReason:
    """Returned or yielded by a sensor: no run this time, and why (recorded on the tick)."""

    skip_message: str | None = None


class _NoDefault(enum.Enum):
    NO_DEFAULT = "NO_DEFAULT"


NO_DEFAULT = _NoDefault.NO_DEFAULT  # an ``In`` without a default value


@dataclass(frozen=True, slots=True)
class In:
    """An op's input, declared as Dagster declares one: ``@op(ins={"rows": In(description="...")})``. An
    input with a ``default_value`` may be left unwired in a job. A ``dagster_type`` that is a Python
    class is checked against the value the input receives (as ``type_matches``)."""

    dagster_type: Any = None
    description: str | None = None
    default_value: Any = NO_DEFAULT

    @property
    def has_default(self) -> bool:
        return self.default_value is not NO_DEFAULT


@dataclass(frozen=True, slots=True)
class Out:
    """An op's output: ``@op(out={"a": Out(), "b": Out(is_required=False)})``. A required output the op
    does not produce fails its step; a ``dagster_type`` that is a Python class is checked against the value."""

    dagster_type: Any = None
    description: str | None = None
    is_required: bool = True


@dataclass(frozen=True, slots=True)
class Output(Generic[T]):
    """An op's output value, with metadata recorded on the run."""

    value: T
    output_name: str = "result"
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict)

    def __init__(self, value: T, output_name: str = "result", metadata: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "output_name", output_name)
        object.__setattr__(self, "metadata", {k: normalize(k, v) for k, v in (metadata or {}).items()})


@dataclass(frozen=True, slots=True)
class ExpectationResult:
    """The result of a data-quality test inside an op, recorded on the run."""

    success: bool
    label: str | None = "result"
    description: str | None = None
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict)

    def __init__(
        self,
        success: bool,
        label: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(success, bool):
            raise DefinitionError(f"ExpectationResult: success must be a bool, got {type(success).__name__}")
        object.__setattr__(self, "success", success)
        object.__setattr__(self, "label", label or "result")
        object.__setattr__(self, "description", description)
        object.__setattr__(self, "metadata", {k: normalize(k, v) for k, v in (metadata or {}).items()})
