"""Running an asset's function inside a run: the ``AssetExecutionContext`` it gets, what it returns, and
the event it records with its provenance, as Dagster records it.

A materialization made by a run carries ``dagster/code_version`` (the asset's code version, else the run
id) and ``dagster/input_data_version/<upstream>`` for each dependency (its current data version, or
``INITIAL`` when it has none). Its data version is the function's own (``MaterializeResult(data_version=
...)``, tagged ``dagster/data_version_is_user_provided``) or, as Dagster computes it, the SHA-256 of the code
version followed by the input versions in the order of their keys (``UNKNOWN`` if an input's is unknown).

Current data versions come from a ``DataVersionSource`` the run worker installs for the run
(``data_versions(...)``); an asset materialized earlier in the same run counts with its new version.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

from assetpipe.definitions.assets import AssetExecutionContext, AssetsDefinition
from assetpipe.definitions.jobs import OpExecutionContext
from assetpipe.definitions.ops import DefinitionError, Output
from assetpipe.definitions.results import (
    DEFAULT_DATA_VERSION,
    UNKNOWN_DATA_VERSION,
    AssetCheckResult,
    DataVersion,
    DataVersionsByPartition,
    MaterializeResult,
    ObserveResult,
)
from assetpipe.schemas.asset_key import AssetKey
from assetpipe.schemas.metadata import MetadataValue
from assetpipe.schemas.model import AssetCheckEvaluation, AssetMaterialization, AssetObservation

CODE_VERSION_TAG = "dagster/code_version"
DATA_VERSION_TAG = "dagster/data_version"
USER_PROVIDED_TAG = "dagster/data_version_is_user_provided"
INPUT_VERSION_PREFIX = "dagster/input_data_version/"


class DataVersionSource(Protocol):
    def current_data_versions(self, keys: Sequence[AssetKey]) -> Mapping[AssetKey, str]:
        """Each asset's current data version (from its latest materialization or observation); an asset
        with none is left out."""
        ...


class _RunVersions:
    """The data versions one run sees: what it produced itself, else what the source says."""

    def __init__(self, source: DataVersionSource | None) -> None:
        self._source = source
        self.produced: dict[AssetKey, str] = {}

    def of(self, keys: Sequence[AssetKey]) -> dict[AssetKey, str]:
        missing = [key for key in keys if key not in self.produced]
        found = dict(self._source.current_data_versions(missing)) if missing and self._source is not None else {}
        return {key: self.produced.get(key) or found.get(key) or DEFAULT_DATA_VERSION for key in keys}


_VERSIONS: ContextVar[_RunVersions | None] = ContextVar("assetpipe_run_data_versions", default=None)


@contextmanager
def data_versions(source: DataVersionSource | None) -> Iterator[None]:
    """Within the block, asset steps read upstream data versions from ``source``."""
    token = _VERSIONS.set(_RunVersions(source))
    try:
        yield
    finally:
        _VERSIONS.reset(token)


def _versions() -> _RunVersions:
    versions = _VERSIONS.get()
    if versions is None:  # a step run outside a run worker (a unit test): no stored versions
        versions = _RunVersions(None)
        _VERSIONS.set(versions)
    return versions


def logical_data_version(code_version: str, inputs: Mapping[AssetKey, str]) -> str:
    """Dagster's data version of a computation: code version and input versions, hashed."""
    ordered = [inputs[key] for key in sorted(inputs, key=str)]
    if UNKNOWN_DATA_VERSION in ordered:
        return UNKNOWN_DATA_VERSION
    return hashlib.sha256("".join([code_version, *ordered]).encode()).hexdigest()


def _call(assets_def: AssetsDefinition, op_context: OpExecutionContext, inputs: Mapping[str, Any]) -> tuple[
    AssetExecutionContext, Any
]:  # fmt: skip
    signature = assets_def.signature
    fn = assets_def.fn
    if signature is None or fn is None:
        raise DefinitionError(f"asset '{assets_def.key}' has no function to run")
    partitions = assets_def.spec.partitions_def
    partition = op_context.partition_key
    if partitions is not None and partition is None and assets_def.execution_type == "materialization":
        raise DefinitionError(f"asset '{assets_def.key}' is partitioned: a run of it needs a partition key")
    if partitions is not None and partition is not None and not partitions.has_partition_key(partition):
        raise DefinitionError(f"partition {partition!r} is not a partition of asset '{assets_def.key}'")
    context = AssetExecutionContext(op_context, assets_def.key)
    args: list[Any] = [context] if signature.takes_context else []
    kwargs: dict[str, Any] = {}
    for param, upstream in signature.inputs.items():
        if param not in inputs:
            raise DefinitionError(
                f"asset '{assets_def.key}': parameter {param!r} takes the value of asset '{upstream}', which this "
                "run does not materialize; assetpipe keeps no asset values between runs: declare it in "
                "deps=[...] and read the data from where the upstream asset wrote it"
            )
        kwargs[param] = inputs[param]
    if signature.config_param is not None:
        raw = op_context.op_config
        kwargs[signature.config_param] = (
            signature.config_type.model_validate(raw or {}) if signature.config_type is not None else raw
        )
    return context, fn(*args, **kwargs)


def materialize_step(assets_def: AssetsDefinition) -> Callable[..., Any]:
    """The op function of an ``@asset`` in an asset job."""

    def step(context: OpExecutionContext, **inputs: Any) -> Any:
        asset_context, returned = _call(assets_def, context, inputs)
        results: list[Any] = list(returned) if inspect.isgenerator(returned) else [returned]
        value: Any = None
        result: MaterializeResult | Output[Any] | None = None
        checks: list[AssetCheckResult] = []
        for item in results:
            if isinstance(item, (MaterializeResult, Output)):
                result = item
                value = item.value if isinstance(item, Output) else None
                if isinstance(item, MaterializeResult):
                    checks.extend(item.check_results)
            elif isinstance(item, AssetCheckResult):
                checks.append(item)
            elif isinstance(item, (AssetMaterialization, AssetObservation, AssetCheckEvaluation)):
                asset_context.log_event(item)
            else:
                value = item
        _record_materialization(assets_def, context, asset_context, result)
        for check in checks:
            _record_check(assets_def, context, check)
        return value

    return step


def _record_materialization(
    assets_def: AssetsDefinition,
    context: OpExecutionContext,
    asset_context: AssetExecutionContext,
    result: MaterializeResult | Output[Any] | None,
) -> None:
    spec = assets_def.spec
    versions = _versions()
    code_version = spec.code_version or context.run_id
    inputs = versions.of(list(spec.deps))
    metadata: dict[str, MetadataValue] = {**asset_context.output_metadata, **(result.metadata if result else {})}
    tags: dict[str, str] = dict(result.tags) if isinstance(result, MaterializeResult) else {}
    given: DataVersion | str | None = getattr(result, "data_version", None)
    tags[CODE_VERSION_TAG] = code_version
    for key, version in inputs.items():
        tags[f"{INPUT_VERSION_PREFIX}{key.to_user_string()}"] = version
    if given is not None:
        data_version = given.value if isinstance(given, DataVersion) else str(given)
        tags[USER_PROVIDED_TAG] = "true"
    else:
        data_version = logical_data_version(code_version, inputs)
    tags[DATA_VERSION_TAG] = data_version
    context.log_event(
        AssetMaterialization(
            spec.key,
            partition=context.partition_key,
            data_version=data_version,
            metadata=metadata,
            tags=tags,
        )
    )
    versions.produced[spec.key] = data_version


def _record_check(assets_def: AssetsDefinition, context: OpExecutionContext, check: AssetCheckResult) -> None:
    key = check.asset_key or assets_def.key
    if key != assets_def.key:
        raise DefinitionError(
            f"Received unexpected AssetCheckResult for asset '{key}' in the step of '{assets_def.key}'"
        )
    context.log_event(
        AssetCheckEvaluation(
            key,
            check_name=check.check_name or "check",
            passed=check.passed,
            severity=check.severity.value,
            metadata=check.metadata,
            description=check.description,
            partition=context.partition_key,
        )
    )


def observe_step(assets_def: AssetsDefinition) -> Callable[..., Any]:
    """The op function of an ``@observable_source_asset`` in an observation job."""

    def step(context: OpExecutionContext, **inputs: Any) -> None:
        _asset_context, returned = _call(assets_def, context, inputs)
        key = assets_def.key
        if isinstance(returned, DataVersionsByPartition):
            if assets_def.spec.partitions_def is None:
                raise DefinitionError(f"asset '{key}' is not partitioned: it cannot return DataVersionsByPartition")
            for partition, version in returned.items():
                _observe(context, assets_def, version, {}, {}, partition)
            return
        if isinstance(returned, DataVersion):
            _observe(context, assets_def, returned, {}, {}, context.partition_key)
        elif isinstance(returned, ObserveResult):
            _observe(
                context, assets_def, returned.data_version, returned.metadata, returned.tags, context.partition_key
            )
            for check in returned.check_results:
                _record_check(assets_def, context, check)
        else:
            raise DefinitionError(
                f"observable source asset '{key}' returned a {type(returned).__name__}: expected DataVersion, "
                "ObserveResult or DataVersionsByPartition"
            )

    return step


def _observe(
    context: OpExecutionContext,
    assets_def: AssetsDefinition,
    version: DataVersion | None,
    metadata: Mapping[str, MetadataValue],
    tags: Mapping[str, str],
    partition: str | None,
) -> None:
    all_tags = dict(tags)
    if version is not None:
        all_tags[DATA_VERSION_TAG] = version.value
        all_tags[USER_PROVIDED_TAG] = "true"
    context.log_event(
        AssetObservation(
            assets_def.key,
            partition=partition,
            data_version=None if version is None else version.value,
            metadata=metadata,
            tags=all_tags,
        )
    )
    if version is not None:
        _versions().produced[assets_def.key] = version.value
