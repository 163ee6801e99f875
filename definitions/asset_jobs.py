"""Jobs made of assets: ``define_asset_job`` and the implicit job that a run of selected assets uses
(``__ASSET_JOB``, as in Dagster), built as ordinary ``JobDefinition``s: one step per asset, upstream first.

A job materializes assets or observes source assets, never both (Dagster's rule). Within one run an
``@asset`` parameter named after an upstream asset of the same run gets its value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from assetpipe.definitions.assets import AssetsDefinition
from assetpipe.definitions.jobs import JobDefinition, Node, OpDefinition, OpSignature, check_name
from assetpipe.definitions.materialize import materialize_step, observe_step
from assetpipe.definitions.ops import DefinitionError, RunConfig, run_config_dict
from assetpipe.definitions.partitions import PartitionsDefinition
from assetpipe.schemas.asset_key import AssetKey, CoercibleToAssetKey, coerce_asset_key

IMPLICIT_ASSET_JOB = "__ASSET_JOB"
_MIXED = (
    "Asset selection specified both regular assets and source assets. This is not currently supported. "
    "Selections must be all regular assets or all source assets."
)


@dataclass(frozen=True, eq=False)
class UnresolvedAssetJobDefinition:
    """What ``define_asset_job`` returns: a job whose assets are found when ``Definitions`` is built."""

    name: str
    selection: tuple[Any, ...] | None
    config: Mapping[str, Any] = field(default_factory=dict)
    description: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    partitions_def: PartitionsDefinition | None = None
    _resolved: dict[tuple[int, ...], JobDefinition] = field(default_factory=dict, init=False, repr=False, compare=False)

    def resolve(self, assets: Mapping[AssetKey, AssetsDefinition]) -> JobDefinition:
        """The job of the selected assets; the same object for the same assets (a job both listed and targeted
        by a schedule is one job)."""
        keys = resolve_selection(self.selection, assets, self.name)
        selected = [assets[key] for key in keys]
        identity = tuple(id(a) for a in assets.values())
        if identity not in self._resolved:
            self._resolved[identity] = self._build(selected, assets)
        return self._resolved[identity]

    def _build(self, selected: list[AssetsDefinition], assets: Mapping[AssetKey, AssetsDefinition]) -> JobDefinition:
        job = asset_job(self.name, selected, assets)
        changes: dict[str, Any] = {"description": self.description, "tags": dict(self.tags)}
        if self.config and "config" in {f.name for f in dataclasses.fields(JobDefinition)}:
            changes["config"] = dict(self.config)
        return dataclasses.replace(job, **changes)


def define_asset_job(
    name: str,
    selection: str | Sequence[Any] | None = None,
    config: RunConfig | Mapping[str, Any] | None = None,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
    partitions_def: PartitionsDefinition | None = None,
) -> UnresolvedAssetJobDefinition:
    """A job that materializes (or observes) the selected assets: keys, asset definitions, ``"*"`` or
    None for all of them, ``"group:<name>"`` for a group's."""
    if isinstance(selection, (str, AssetKey, AssetsDefinition)):
        selection = [selection]
    return UnresolvedAssetJobDefinition(
        check_name("job", name),
        None if selection is None else tuple(selection),
        run_config_dict(config),
        description,
        dict(tags or {}),
        partitions_def,
    )


def resolve_selection(
    selection: Iterable[Any] | None, assets: Mapping[AssetKey, AssetsDefinition], job: str
) -> list[AssetKey]:
    """The asset keys a selection names; each must be an asset of this code location with a function."""
    executable = {key: a for key, a in assets.items() if a.is_executable}
    if selection is None:
        return [key for key, a in executable.items() if a.execution_type == "materialization"]
    keys: dict[AssetKey, None] = {}
    for item in selection:
        if item == "*":
            keys.update(dict.fromkeys(k for k, a in executable.items() if a.execution_type == "materialization"))
        elif isinstance(item, str) and item.startswith("group:"):
            group = item.removeprefix("group:")
            keys.update(dict.fromkeys(k for k, a in executable.items() if a.spec.group_name == group))
        elif isinstance(item, AssetsDefinition):
            keys[item.key] = None
        else:
            keys[coerce_asset_key(item)] = None
    for key in keys:
        if key not in assets:
            raise DefinitionError(f"job {job!r} selects asset '{key}', which is not defined in this code location")
        if key not in executable:
            raise DefinitionError(f"job {job!r} selects asset '{key}', an external asset: it has no function to run")
    return list(keys)


def asset_job(
    name: str, selected: Sequence[AssetsDefinition], assets: Mapping[AssetKey, AssetsDefinition]
) -> JobDefinition:
    """A job with one step per selected asset, each after the selected assets it depends on."""
    if not selected:
        raise DefinitionError(f"job {name!r} selects no assets")
    kinds = {a.execution_type for a in selected}
    if len(kinds) > 1:
        raise DefinitionError(_MIXED)
    chosen = {a.key: a for a in selected}
    ordered: list[AssetsDefinition] = []
    state: dict[AssetKey, str] = {}

    def visit(key: AssetKey, path: tuple[AssetKey, ...]) -> None:
        if state.get(key) == "done":
            return
        if state.get(key) == "visiting":
            cycle = " -> ".join(str(k) for k in (*path, key))
            raise DefinitionError(f"assets depend on each other in a cycle: {cycle}")
        state[key] = "visiting"
        for dep in chosen[key].spec.deps:
            if dep in chosen:
                visit(dep, (*path, key))
        state[key] = "done"
        ordered.append(chosen[key])

    for key in chosen:
        visit(key, ())
    nodes = []
    for assets_def in ordered:
        signature = assets_def.signature
        wired = {
            param: assets[upstream].op_name
            for param, upstream in (signature.inputs.items() if signature is not None else ())
            if upstream in chosen
        }
        fn = (
            materialize_step(assets_def) if assets_def.execution_type == "materialization" else observe_step(assets_def)
        )
        op_signature = dataclasses.replace(OpSignature.of(fn), inputs=tuple(wired))
        op = OpDefinition(assets_def.op_name, fn, op_signature, assets_def.retry_policy, assets_def.spec.description)
        nodes.append(Node(assets_def.op_name, op, wired))
    materializes = {a.op_name: a.key for a in ordered if a.execution_type == "materialization"}
    return JobDefinition(name, tuple(nodes), materializes=materializes)


def selection_keys(selection: Iterable[CoercibleToAssetKey]) -> tuple[AssetKey, ...]:
    return tuple(coerce_asset_key(key) for key in selection)
