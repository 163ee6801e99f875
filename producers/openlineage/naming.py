"""OpenLineage dataset names -> asset keys: the default rule, and the prefixes of a mapping file.

The default rule (docs/openlineage.md#asset-keys):

- namespace ``dagster`` (Dagster's own OpenLineage emitter writes an asset ``a/b/c`` so): the name split on
  ``/``: ``["a", "b", "c"]``;
- a file or object store (``s3://bucket``, ``gs://``, ``abfss://``, ``hdfs://``, ``file``...): the scheme,
  the bucket or host, then the path's parts: ``s3://bucket`` + ``raw/orders`` -> ``["s3", "bucket", "raw",
  "orders"]``;
- any other namespace (a database ``postgres://h:5432``, ``bigquery``, ``snowflake://account``,
  ``kafka://broker:9092``): its scheme, then the name split on ``.`` (``/`` when it has one): ``postgres://h:5432``
  + ``db.schema.table`` -> ``["postgres", "db", "schema", "table"]``. The host and port say where the database
  runs, not what the data is: the same table behind two addresses is one asset.

A mapping file overrides it for the datasets it names: a list of rules (YAML or JSON) with ``namespace`` (a
prefix of the dataset's namespace), an optional ``name`` (a prefix of its name) and ``asset_key_prefix`` (a
list of parts, or ``"a/b"``). The rule with the longest matching namespace, then name, wins: the key is its
prefix followed by the rest of the name, split as above.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from assetpipe.producers.openlineage.exceptions import MappingFileError
from assetpipe.schemas.errors import FieldError

DAGSTER_NAMESPACE = "dagster"
FILE_SCHEMES = frozenset(
    {"s3", "s3a", "s3n", "gs", "gcs", "abfs", "abfss", "wasb", "wasbs", "adl", "hdfs", "file", "dbfs", "oss", "r2"}
)


@dataclass(frozen=True, slots=True)
class Rule:
    namespace: str
    name: str
    prefix: tuple[str, ...]


def _split_name(name: str) -> list[str]:
    separator = "/" if "/" in name else "."
    return [part for part in name.split(separator) if part]


def default_key(namespace: str, name: str) -> list[str]:
    """The asset key of dataset (``namespace``, ``name``) by the default rule."""
    if namespace == DAGSTER_NAMESPACE:
        return [part for part in name.split("/") if part]
    scheme, sep, authority = namespace.partition("://")
    if not sep:  # "bigquery", "file", "kafka": a scheme alone
        scheme, authority = namespace, ""
    scheme = scheme.lower()
    if scheme in FILE_SCHEMES:
        host = authority.split("/", 1)
        parts = [p for p in host[1].split("/") if p] if len(host) > 1 else []
        return [scheme, *([host[0]] if host[0] else []), *parts, *(p for p in name.split("/") if p)]
    return [scheme, *_split_name(name)]


class AssetNaming:
    """Dataset -> asset key: the mapping file's rules first, then the default rule. Answers are cached (a
    stream names the same datasets again and again)."""

    def __init__(self, rules: Sequence[Rule] = ()) -> None:
        self.rules = sorted(rules, key=lambda r: (len(r.namespace), len(r.name)), reverse=True)
        self._cache: dict[tuple[str, str], list[str]] = {}

    @classmethod
    def from_file(cls, path: Path | None) -> AssetNaming:
        return cls(read_rules(path) if path is not None else ())

    def key(self, namespace: str, name: str, field: str) -> list[str]:
        """The asset key's parts; ``FieldError`` naming ``field`` when the dataset names no asset."""
        cached = self._cache.get((namespace, name))
        if cached is not None:
            return cached
        parts = self._key(namespace, name)
        if not parts:
            raise FieldError(field, f"Dataset '{namespace}' '{name}' names no asset: its name has no part")
        if len(self._cache) >= 100_000:
            self._cache.clear()
        self._cache[(namespace, name)] = parts
        return parts

    def _key(self, namespace: str, name: str) -> list[str]:
        for rule in self.rules:
            if namespace.startswith(rule.namespace) and name.startswith(rule.name):
                return [*rule.prefix, *_split_name(name[len(rule.name) :])]
        return default_key(namespace, name)


def read_rules(path: Path) -> list[Rule]:
    """The rules of a mapping file; ``MappingFileError`` says what is wrong, and where."""
    try:
        loaded = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise MappingFileError(f"OpenLineage mapping file {path}: {exc}") from exc
    if loaded is None:
        return []
    if not isinstance(loaded, list):
        raise MappingFileError(
            f"OpenLineage mapping file {path}: expected a list of rules, got {type(loaded).__name__}"
        )
    return [_rule(entry, f"{path}: rule {i}") for i, entry in enumerate(loaded, 1)]


def _rule(entry: Any, where: str) -> Rule:
    if not isinstance(entry, dict):
        raise MappingFileError(f"{where}: a rule is an object with namespace, name and asset_key_prefix")
    unknown = sorted(set(entry) - {"namespace", "name", "asset_key_prefix"})
    if unknown:
        raise MappingFileError(f"{where}: unknown field {', '.join(map(repr, unknown))}")
    namespace, name, prefix = entry.get("namespace"), entry.get("name", ""), entry.get("asset_key_prefix")
    if not isinstance(namespace, str) or not namespace:
        raise MappingFileError(f"{where}: 'namespace' must be a non-empty string (a prefix of datasets' namespaces)")
    if not isinstance(name, str):
        raise MappingFileError(f"{where}: 'name' must be a string (a prefix of datasets' names)")
    if isinstance(prefix, str):
        prefix = [p for p in prefix.split("/") if p]
    if not isinstance(prefix, list) or not all(isinstance(p, str) and p for p in prefix):
        raise MappingFileError(f"{where}: 'asset_key_prefix' must be a list of non-empty strings, or \"a/b\"")
    return Rule(namespace, name, tuple(prefix))
