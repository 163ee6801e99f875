"""Asset specs given as data: the body of ``PUT /api/assets/{asset_key}`` and the entries of a spec file
(``assetpipe assets apply``), read into ``AssetSpec``.

The fields are ``AssetSpec``'s: ``description``, ``deps`` (``"a/b"`` strings or lists of parts),
``owners``, ``tags``, ``kinds``, ``group_name``, ``code_version``, ``metadata`` (plain or typed values,
as the report endpoints take them) and ``freshness_policy`` (``FreshnessPolicy.to_json``'s form). The spec's
own constructor checks them, with Dagster's messages; an unknown field is refused, so a misspelt one is not
silently dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from assetpipe.consumers.registry.exceptions import SpecError
from assetpipe.definitions.assets import AssetSpec
from assetpipe.definitions.freshness import FreshnessPolicy
from assetpipe.definitions.ops import DefinitionError
from assetpipe.schemas import jsonform
from assetpipe.schemas.asset_key import AssetKey
from assetpipe.schemas.errors import ValidationError
from assetpipe.schemas.metadata import metadata_to_wire
from assetpipe.schemas.validation import validate_asset_key

SPEC_FIELDS = (
    "description", "deps", "owners", "tags", "kinds", "group_name", "code_version", "metadata", "freshness_policy",
)  # fmt: skip


def spec_from_json(key: Sequence[str], fields: Mapping[str, Any]) -> AssetSpec:
    """The spec of asset ``key`` (its parts) with ``fields``; ``SpecError`` names the problem."""
    unknown = sorted(str(name) for name in fields if name not in SPEC_FIELDS)
    if unknown:
        raise SpecError(
            f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}: an asset spec has "
            f"{', '.join(SPEC_FIELDS)}"
        )
    try:
        validate_asset_key(list(key))
        metadata = fields.get("metadata")
        spec = AssetSpec(
            AssetKey(key),
            description=_optional_string(fields, "description"),
            deps=_deps(fields.get("deps")),
            owners=_strings(fields, "owners"),
            tags=_mapping(fields, "tags"),
            kinds=_strings(fields, "kinds"),
            group_name=_optional_string(fields, "group_name"),
            code_version=_optional_string(fields, "code_version"),
            metadata=None if metadata is None else jsonform.metadata(metadata),
            freshness_policy=_freshness_policy(fields.get("freshness_policy")),
        )
        metadata_to_wire(spec.metadata)  # a value the registry could not store (YAML's dates in json) fails here
    except (DefinitionError, ValidationError) as exc:
        raise SpecError(str(exc)) from exc
    return spec


def spec_entry(entry: Any, where: str) -> AssetSpec:
    """One entry of a spec file: an object with ``key`` (``"a/b"`` or a list of parts) and the fields."""
    if not isinstance(entry, Mapping):
        raise SpecError(f"{where}: an asset spec must be an object with a key, got {jsonform.json_type(entry)}")
    fields = dict(entry)
    if "key" not in fields:
        raise SpecError(f"{where}: missing required field 'key' (\"a/b\" or a list of parts)")
    try:
        key = _key(fields.pop("key"), "key")
    except SpecError as exc:
        raise SpecError(f"{where}: {exc}") from exc
    try:
        return spec_from_json(key, fields)
    except SpecError as exc:
        raise SpecError(f"{where} ({'/'.join(key)}): {exc}") from exc


def _key(value: Any, name: str) -> list[str]:
    if isinstance(value, str):
        parts = value.split("/")
    elif isinstance(value, list) and all(isinstance(p, str) for p in value):
        parts = list(value)
    else:
        raise SpecError(f"field '{name}' must be an asset key: \"a/b\" or a list of strings")
    try:
        validate_asset_key(parts)
    except ValidationError as exc:
        raise SpecError(f"field '{name}': {exc.reason}") from exc
    return parts


def _deps(value: Any) -> list[AssetKey] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise SpecError(f"field 'deps' must be a list of asset keys, got {jsonform.json_type(value)}")
    return [AssetKey(_key(dep, f"deps[{i}]")) for i, dep in enumerate(value)]


def _freshness_policy(value: Any) -> FreshnessPolicy | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise SpecError(
            f'field \'freshness_policy\' must be an object ("type": "time_window" or "cron"), got '
            f"{jsonform.json_type(value)}"
        )
    try:
        return FreshnessPolicy.from_json(value)
    except DefinitionError as exc:
        message = str(exc)
        raise SpecError(message if message.startswith("freshness_policy") else f"freshness_policy: {message}") from exc


def _optional_string(fields: Mapping[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is not None and not isinstance(value, str):
        raise SpecError(f"field '{name}' must be a string, got {jsonform.json_type(value)}")
    return value


def _strings(fields: Mapping[str, Any], name: str) -> list[str] | None:
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SpecError(f"field '{name}' must be a list of strings")
    return value


def _mapping(fields: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise SpecError(f"field '{name}' must be an object, got {jsonform.json_type(value)}")
    return dict(value)
