"""AssetKey: the path that names an asset (``sales/daily_summary`` is ``["sales", "daily_summary"]``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

_DB_STRING_SPLIT = re.compile(r"[^A-Za-z0-9_]")


@dataclass(frozen=True, slots=True, order=True)
class AssetKey:
    path: tuple[str, ...]

    def __init__(self, path: str | Sequence[str]) -> None:
        parts = (path,) if isinstance(path, str) else tuple(path)
        object.__setattr__(self, "path", parts)

    @classmethod
    def from_user_string(cls, value: str) -> AssetKey:
        """``a/b/c`` -> ``["a", "b", "c"]``."""
        return cls(value.split("/"))

    @classmethod
    def from_query_string(cls, value: str) -> AssetKey:
        """A JSON list, or a string split on every character outside ``[A-Za-z0-9_]``."""
        if value.startswith("["):
            try:
                parsed = orjson.loads(value)  # its nesting is bounded: deep text is an error, no recursion
            except orjson.JSONDecodeError:
                parsed = None
            if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed):
                return cls(parsed)
        return cls.from_event_string(value)

    @classmethod
    def from_event_string(cls, value: str) -> AssetKey:
        """Split on every character outside ``[A-Za-z0-9_]``, empty parts dropped: ``s3.my_asset`` ->
        ``["s3", "my_asset"]``. How Dagster's event constructors read a string key."""
        return cls([part for part in _DB_STRING_SPLIT.split(value) if part])

    def to_user_string(self) -> str:
        return "/".join(self.path)

    def __str__(self) -> str:
        return self.to_user_string()

    def __repr__(self) -> str:
        return f"AssetKey({list(self.path)!r})"


CoercibleToAssetKey = AssetKey | str | Sequence[str]


def coerce_asset_key(value: CoercibleToAssetKey) -> AssetKey:
    """A string is a user string (``a/b`` has two parts); a sequence gives the parts verbatim."""
    if isinstance(value, AssetKey):
        return value
    if isinstance(value, str):
        return AssetKey.from_user_string(value)
    return AssetKey(value)


def coerce_event_asset_key(value: CoercibleToAssetKey) -> AssetKey:
    """The key an event constructor (``AssetMaterialization("s3.my_asset")``) is given, read as Dagster's
    events read it: a string splits on every character outside ``[A-Za-z0-9_]`` (``from_event_string``),
    so Dagster code names the same asset here. Everything else that takes a user string (the SDK's
    ``report_*``, the CLI, the HTTP API) splits on ``/`` alone (``coerce_asset_key``)."""
    if isinstance(value, str):
        return AssetKey.from_event_string(value)
    return coerce_asset_key(value)
