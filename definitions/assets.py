"""Asset definitions: ``AssetSpec`` (an asset computed elsewhere), ``@asset`` (an asset and the function
that computes it), ``@observable_source_asset`` (a source whose data version a function observes), and
the rules Dagster applies to them at load: owners, strict tags, kinds, group names, typed standard
metadata keys.

An ``AssetsDefinition`` holds one asset's spec, its function, and whether running it materializes or
observes; ``definitions.materialize`` runs it.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from assetpipe.definitions.freshness import FreshnessPolicy
from assetpipe.definitions.jobs import OpExecutionContext
from assetpipe.definitions.ops import Config, DefinitionError, RetryPolicy
from assetpipe.definitions.partitions import PartitionsDefinition
from assetpipe.definitions.results import AutomationCondition
from assetpipe.schemas.asset_key import AssetKey, CoercibleToAssetKey, coerce_asset_key
from assetpipe.schemas.metadata import MetadataValue, normalize
from assetpipe.schemas.validation import TAG_KEY, TAG_VALUE

ExecutionType = Literal["materialization", "observation", "external"]

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,7}")
_GROUP = re.compile(r"^[A-Za-z0-9_]+(/[A-Za-z0-9_]+)*$")
KIND_TAG_PREFIX = "dagster/kind/"
MAX_KINDS = 10
_CONTEXT_NAMES = ("context", "_context", "_")

# The standard keys whose values have one type wherever they are set (Dagster's metadata sets).
STANDARD_METADATA_KINDS: dict[str, tuple[str, ...]] = {
    "dagster/code_references": ("code_references",),
    "dagster/column_schema": ("table_schema",),
    "dagster/column_lineage": ("column_lineage",),
    "dagster/row_count": ("int",),
    "dagster/partition_row_count": ("int",),
    "dagster/table_name": ("text",),
    "dagster/relation_identifier": ("text",),
    "dagster/uri": ("text", "url"),
    "dagster/storage_kind": ("text",),
}


def validate_owners(owners: Iterable[Any] | None, key: AssetKey) -> tuple[str, ...]:
    """Owners are email addresses or ``team:<name>``, as in Dagster."""
    if owners is None:
        return ()
    if isinstance(owners, str):
        raise DefinitionError(f"owners of asset '{key}' must be a list of strings, got a string")
    checked = []
    for owner in owners:
        valid = isinstance(owner, str) and (
            _EMAIL.fullmatch(owner) is not None or (owner.startswith("team:") and len(owner) > 5)
        )
        if not valid:
            raise DefinitionError(
                f"Invalid owner '{owner}' for asset '{key}'. Owner must be an email address or a team name "
                "prefixed with 'team:'."
            )
        checked.append(owner)
    return tuple(checked)


def validate_definition_tags(tags: Mapping[Any, Any] | None) -> dict[str, str]:
    """Asset definition tags: strict, with Dagster's messages; ``dagster/`` keys are allowed."""
    out: dict[str, str] = {}
    bad_keys: list[str] = []
    for key, value in (tags or {}).items():
        if not isinstance(key, str) or not TAG_KEY.fullmatch(key):
            bad_keys.append(repr(key))
            continue
        if not isinstance(value, str):
            raise DefinitionError(f"Tag values must be strings, got type {type(value)} at key {key}.")
        if not TAG_VALUE.fullmatch(value):
            raise DefinitionError(
                f"Invalid tag value: {value}, for key: {key}. Allowed characters: alpha-numeric, '_', '-', '.'. "
                "Must have <= 63 characters."
            )
        out[key] = value
    if bad_keys:
        raise DefinitionError(
            f"Found invalid tag keys: [{', '.join(bad_keys[:5])}]. Allowed characters: alpha-numeric, '_', '-', "
            "'.'. Tag keys can also contain a namespace section, separated by a '/'. Each section must have <= "
            "63 characters."
        )
    return out


def validate_metadata(metadata: Mapping[str, Any] | None, key: AssetKey) -> dict[str, MetadataValue]:
    """Definition metadata, normalized; the standard ``dagster/`` keys must have their types."""
    out: dict[str, MetadataValue] = {}
    for label, raw in (metadata or {}).items():
        if not isinstance(label, str) or not label:
            raise DefinitionError(f"metadata keys of asset '{key}' must be non-empty strings, got {label!r}")
        try:
            value = normalize(label, raw)
        except Exception as exc:
            raise DefinitionError(f"metadata {label!r} of asset '{key}': {exc}") from exc
        expected = STANDARD_METADATA_KINDS.get(label)
        if expected is not None and value.kind not in expected:
            raise DefinitionError(
                f"metadata {label!r} of asset '{key}' must be of type {' or '.join(expected)}, got {value.kind}"
            )
        out[label] = value
    return out


def _coerce_dep(dep: Any) -> AssetKey:
    if isinstance(dep, AssetSpec):
        return dep.key
    if isinstance(dep, AssetsDefinition):
        return dep.key
    if isinstance(dep, AssetDep):
        return dep.asset_key
    if isinstance(dep, (AssetKey, str)) or (isinstance(dep, Sequence) and all(isinstance(p, str) for p in dep)):
        return coerce_asset_key(dep)
    raise DefinitionError(f"deps must be asset keys, AssetSpecs or assets, got {type(dep).__name__}")


@dataclass(frozen=True, slots=True)
class AssetDep:
    """A dependency on an asset (Dagster's ``AssetDep``; partition mappings are not supported)."""

    asset_key: AssetKey

    def __init__(self, asset: CoercibleToAssetKey | AssetSpec | AssetsDefinition) -> None:
        object.__setattr__(self, "asset_key", _coerce_dep(asset))


@dataclass(frozen=True, slots=True)
class AssetIn:
    """Where an ``@asset`` function parameter's value comes from: the asset ``key``."""

    key: AssetKey | None = None

    def __init__(self, key: CoercibleToAssetKey | None = None, **_ignored: Any) -> None:
        object.__setattr__(self, "key", None if key is None else coerce_asset_key(key))


@dataclass(frozen=True, eq=True)
class AssetSpec:
    """An asset's definition: what the catalog shows and what staleness is computed from. On its own, an
    asset computed elsewhere (reported through the SDK, the HTTP API or a backfill)."""

    key: AssetKey
    deps: tuple[AssetKey, ...] = ()
    description: str | None = None
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict)
    skippable: bool = False
    group_name: str | None = None
    code_version: str | None = None
    automation_condition: AutomationCondition | None = None
    owners: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    partitions_def: PartitionsDefinition | None = None
    freshness_policy: FreshnessPolicy | None = None

    def __init__(
        self,
        key: CoercibleToAssetKey,
        *,
        deps: Iterable[Any] | None = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        skippable: bool = False,
        group_name: str | None = None,
        code_version: str | None = None,
        automation_condition: AutomationCondition | None = None,
        owners: Iterable[str] | None = None,
        tags: Mapping[str, str] | None = None,
        kinds: Iterable[str] | None = None,
        partitions_def: PartitionsDefinition | None = None,
        freshness_policy: FreshnessPolicy | None = None,
    ) -> None:
        asset_key = coerce_asset_key(key)
        if not asset_key.path or not all(isinstance(p, str) and p for p in asset_key.path):
            raise DefinitionError(f"asset key {key!r} must have non-empty string parts")
        checked_tags = validate_definition_tags(tags)
        for kind in kinds or ():
            if not isinstance(kind, str) or not kind:
                raise DefinitionError(f"kinds of asset '{asset_key}' must be non-empty strings, got {kind!r}")
            checked_tags[f"{KIND_TAG_PREFIX}{kind}"] = ""
        if sum(t.startswith(KIND_TAG_PREFIX) for t in checked_tags) > MAX_KINDS:
            raise DefinitionError("Assets can have at most ten kinds currently.")
        if group_name is not None and (not isinstance(group_name, str) or not _GROUP.fullmatch(group_name)):
            raise DefinitionError(
                f"Group name \"{group_name}\" of asset '{asset_key}' is not valid: use letters, digits and "
                "underscores (and '/' between levels)"
            )
        if code_version is not None and not isinstance(code_version, str):
            raise DefinitionError(f"code_version of asset '{asset_key}' must be a string")
        if description is not None and not isinstance(description, str):
            raise DefinitionError(f"description of asset '{asset_key}' must be a string")
        if automation_condition is not None and not isinstance(automation_condition, AutomationCondition):
            raise DefinitionError(f"automation_condition of asset '{asset_key}' must be an AutomationCondition")
        if partitions_def is not None and not isinstance(partitions_def, PartitionsDefinition):
            raise DefinitionError(f"partitions_def of asset '{asset_key}' must be a partitions definition")
        if freshness_policy is not None and not isinstance(freshness_policy, FreshnessPolicy):
            raise DefinitionError(
                f"freshness_policy of asset '{asset_key}' must be FreshnessPolicy.time_window(...) or "
                "FreshnessPolicy.cron(...)"
            )
        dep_keys: dict[AssetKey, None] = {}
        for dep in deps or ():
            dep_keys[_coerce_dep(dep)] = None
        set_ = object.__setattr__
        set_(self, "key", asset_key)
        set_(self, "deps", tuple(dep_keys))
        set_(self, "description", description)
        set_(self, "metadata", validate_metadata(metadata, asset_key))
        set_(self, "skippable", skippable)
        set_(self, "group_name", group_name)
        set_(self, "code_version", code_version)
        set_(self, "automation_condition", automation_condition)
        set_(self, "owners", validate_owners(owners, asset_key))
        set_(self, "tags", checked_tags)
        set_(self, "partitions_def", partitions_def)
        set_(self, "freshness_policy", freshness_policy)

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(t[len(KIND_TAG_PREFIX) :] for t in self.tags if t.startswith(KIND_TAG_PREFIX))

    def _attributes(self) -> dict[str, Any]:
        return {
            "deps": self.deps,
            "description": self.description,
            "metadata": self.metadata,
            "skippable": self.skippable,
            "group_name": self.group_name,
            "code_version": self.code_version,
            "automation_condition": self.automation_condition,
            "owners": self.owners,
            "tags": self.tags,
            "partitions_def": self.partitions_def,
            "freshness_policy": self.freshness_policy,
        }

    def replace_attributes(self, **changes: Any) -> AssetSpec:
        """A copy with these attributes replaced (``key`` too)."""
        attributes = {**self._attributes(), **changes}
        return AssetSpec(attributes.pop("key", self.key), **attributes)

    def merge_attributes(
        self,
        *,
        deps: Iterable[Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        owners: Iterable[str] | None = None,
        tags: Mapping[str, str] | None = None,
        kinds: Iterable[str] | None = None,
    ) -> AssetSpec:
        """A copy with these added to the existing ones."""
        return AssetSpec(
            self.key,
            **{
                **self._attributes(),
                "deps": [*self.deps, *(deps or ())],
                "metadata": {**self.metadata, **(metadata or {})},
                "owners": [*self.owners, *(o for o in owners or () if o not in self.owners)],
                "tags": {**self.tags, **(tags or {})},
                "kinds": kinds,
            },
        )


@dataclass(frozen=True, slots=True)
class AssetSignature:
    """How to call an asset's function: with a context first or not, which parameter takes config, and
    which parameters take the values of upstream assets."""

    takes_context: bool
    config_param: str | None
    config_type: type[Config] | None
    inputs: Mapping[str, AssetKey]

    @classmethod
    def of(cls, fn: Callable[..., Any], ins: Mapping[str, AssetIn], key_prefix: Sequence[str]) -> AssetSignature:
        try:
            params = list(inspect.signature(fn, eval_str=True).parameters.values())
        except (NameError, TypeError):
            params = list(inspect.signature(fn).parameters.values())
        params = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        takes_context = bool(params) and (
            params[0].name in _CONTEXT_NAMES or params[0].annotation in (AssetExecutionContext, OpExecutionContext)
        )
        config_param: str | None = None
        config_type: type[Config] | None = None
        inputs: dict[str, AssetKey] = {}
        for param in params[1:] if takes_context else params:
            annotation = param.annotation
            if isinstance(annotation, type) and issubclass(annotation, Config):
                config_param, config_type = param.name, annotation
            elif param.name == "config":
                config_param = param.name
            elif param.default is not inspect.Parameter.empty:
                continue
            else:
                given = ins.get(param.name)
                key = given.key if given is not None and given.key is not None else None
                inputs[param.name] = key or AssetKey([*key_prefix, param.name])
        unknown = set(ins) - set(inputs)
        if unknown:
            raise DefinitionError(f"ins {sorted(unknown)} name no parameter of {fn.__name__!r}")
        return cls(takes_context, config_param, config_type, inputs)


class AssetExecutionContext:
    """What an asset function sees of its run: ``log``, ``log_event``, ``partition_key``, ``run_config``,
    ``run_id``, ``asset_key``, and ``add_output_metadata`` for the materialization it records."""

    def __init__(self, op_context: OpExecutionContext, asset_key: AssetKey) -> None:
        self.op_execution_context = op_context
        self.asset_key = asset_key
        self.log = op_context.log
        self.run_id = op_context.run_id
        self.run_config = op_context.run_config
        self.job_name = op_context.job_name
        self.output_metadata: dict[str, MetadataValue] = {}

    @property
    def has_partition_key(self) -> bool:
        return self.op_execution_context.partition_key is not None

    @property
    def partition_key(self) -> str:
        key = self.op_execution_context.partition_key
        if key is None:
            raise DefinitionError(f"Cannot access partition_key for a non-partitioned run (asset '{self.asset_key}')")
        return key

    @property
    def op_config(self) -> Any:
        return self.op_execution_context.op_config

    def log_event(self, event: Any) -> None:
        """Record an ``AssetMaterialization``, ``AssetObservation`` or ``AssetCheckEvaluation`` of this run."""
        self.op_execution_context.log_event(event)

    def add_output_metadata(self, metadata: Mapping[str, Any]) -> None:
        self.output_metadata.update({k: normalize(k, v) for k, v in metadata.items()})


@dataclass(frozen=True, eq=False)
class AssetsDefinition:
    """One asset and the function that materializes or observes it (None for an external asset)."""

    spec: AssetSpec
    execution_type: ExecutionType
    fn: Callable[..., Any] | None = None
    signature: AssetSignature | None = None
    op_name: str = ""
    retry_policy: RetryPolicy | None = None
    op_tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> AssetKey:
        return self.spec.key

    @property
    def keys(self) -> frozenset[AssetKey]:
        return frozenset({self.spec.key})

    @property
    def specs(self) -> tuple[AssetSpec, ...]:
        return (self.spec,)

    @property
    def is_executable(self) -> bool:
        return self.fn is not None

    def with_spec(self, spec: AssetSpec) -> AssetsDefinition:
        return replace(self, spec=spec)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function directly, as a unit test does."""
        if self.fn is None:
            raise DefinitionError(f"asset '{self.key}' has no function")
        return self.fn(*args, **kwargs)


def _asset_key(
    fn: Callable[..., Any], key: CoercibleToAssetKey | None, name: str | None, key_prefix: str | Sequence[str] | None
) -> tuple[AssetKey, tuple[str, ...]]:
    if key is not None:
        if name is not None or key_prefix is not None:
            raise DefinitionError("Cannot specify a name or key prefix for @asset when the key argument is provided.")
        asset_key = coerce_asset_key(key)
        return asset_key, asset_key.path[:-1]
    prefix = (key_prefix,) if isinstance(key_prefix, str) else tuple(key_prefix or ())
    return AssetKey([*prefix, name or fn.__name__]), prefix


def _op_name(key: AssetKey) -> str:
    return "__".join(re.sub(r"[^A-Za-z0-9_]", "_", part) for part in key.path)


def asset(
    compute_fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    key_prefix: str | Sequence[str] | None = None,
    key: CoercibleToAssetKey | None = None,
    ins: Mapping[str, AssetIn] | None = None,
    deps: Iterable[Any] | None = None,
    description: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    owners: Iterable[str] | None = None,
    tags: Mapping[str, str] | None = None,
    kinds: Iterable[str] | None = None,
    compute_kind: str | None = None,
    group_name: str | None = None,
    code_version: str | None = None,
    partitions_def: PartitionsDefinition | None = None,
    automation_condition: AutomationCondition | None = None,
    retry_policy: RetryPolicy | None = None,
    op_tags: Mapping[str, str] | None = None,
    freshness_policy: FreshnessPolicy | None = None,
) -> Any:
    """``@asset`` or ``@asset(...)``: the function computes the asset when a run materializes it.
    Parameters named after upstream assets (or given in ``ins``) are dependencies too, and get their values
    when the same run materializes them."""

    def make(fn: Callable[..., Any]) -> AssetsDefinition:
        asset_key, prefix = _asset_key(fn, key, name, key_prefix)
        signature = AssetSignature.of(fn, ins or {}, prefix)
        spec = AssetSpec(
            asset_key,
            deps=[*signature.inputs.values(), *(deps or ())],
            description=description if description is not None else inspect.getdoc(fn),
            metadata=metadata,
            owners=owners,
            tags=tags,
            kinds=[*(kinds or ()), *([compute_kind] if compute_kind else [])],
            group_name=group_name,
            code_version=code_version,
            partitions_def=partitions_def,
            automation_condition=automation_condition,
            freshness_policy=freshness_policy,
        )
        return AssetsDefinition(
            spec, "materialization", fn, signature, _op_name(asset_key), retry_policy, dict(op_tags or {})
        )

    return make(compute_fn) if compute_fn is not None else make


def observable_source_asset(
    observe_fn: Callable[..., Any] | None = None,
    *,
    key: CoercibleToAssetKey | None = None,
    name: str | None = None,
    key_prefix: str | Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    description: str | None = None,
    group_name: str | None = None,
    partitions_def: PartitionsDefinition | None = None,
    tags: Mapping[str, str] | None = None,
    owners: Iterable[str] | None = None,
    kinds: Iterable[str] | None = None,
    automation_condition: AutomationCondition | None = None,
    auto_observe_interval_minutes: float | None = None,
    freshness_policy: FreshnessPolicy | None = None,
) -> Any:
    """``@observable_source_asset``: the function returns the source's ``DataVersion`` (or an
    ``ObserveResult``, or ``DataVersionsByPartition``); each run records an observation with it."""

    def make(fn: Callable[..., Any]) -> AssetsDefinition:
        asset_key, prefix = _asset_key(fn, key, name, key_prefix)
        signature = AssetSignature.of(fn, {}, prefix)
        if signature.inputs:
            raise DefinitionError(
                f"observable source asset '{asset_key}' takes unknown parameters {sorted(signature.inputs)}"
            )
        extra = {} if auto_observe_interval_minutes is None else {
            "dagster/auto_observe_interval_minutes": float(auto_observe_interval_minutes)
        }  # fmt: skip
        spec = AssetSpec(
            asset_key,
            description=description if description is not None else inspect.getdoc(fn),
            metadata={**(metadata or {}), **extra},
            owners=owners,
            tags=tags,
            kinds=kinds,
            group_name=group_name,
            partitions_def=partitions_def,
            automation_condition=automation_condition,
            freshness_policy=freshness_policy,
        )
        return AssetsDefinition(spec, "observation", fn, signature, _op_name(asset_key))

    return make(observe_fn) if observe_fn is not None else make


def external_assets(specs: Iterable[AssetSpec]) -> list[AssetsDefinition]:
    return [AssetsDefinition(spec, "external") for spec in specs]


def as_assets_definition(value: Any) -> AssetsDefinition:
    """A ``Definitions(assets=...)`` entry: an asset, a spec, or an asset key (an external asset)."""
    if isinstance(value, AssetsDefinition):
        return value
    if isinstance(value, AssetSpec):
        return AssetsDefinition(value, "external")
    if isinstance(value, (AssetKey, str)):
        return AssetsDefinition(AssetSpec(value), "external")
    if isinstance(value, (list, tuple)) and value and all(isinstance(p, str) for p in value):
        return AssetsDefinition(AssetSpec(value), "external")
    raise DefinitionError(
        f"Definitions: assets must be @asset or @observable_source_asset definitions, AssetSpecs or asset keys, "
        f"got {type(value).__name__}: {value!r:.80}"
    )
