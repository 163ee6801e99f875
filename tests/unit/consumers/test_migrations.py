"""The versioned DDL against the contract it stores: no ClickHouse needed."""

from __future__ import annotations

import json
import re
from importlib import resources

from assetpipe.consumers.ingest.sql import dedup_key_expr
from assetpipe.consumers.warehouse import load_migrations

_KIND_ENUM = re.compile(r"metadata_types Map\(String, Enum8\(([^)]*)\)\)")


def test_metadata_kind_enum_is_the_avro_enum_in_its_order() -> None:
    """The insert copies a staged kind's Enum8 value as it is, so each kind's value must be its
    position in the Avro enum MetadataKind, and every kind must be there."""
    declared = [m.group(1) for migration in load_migrations() for s in migration.statements
                if (m := _KIND_ENUM.search(s))]  # fmt: skip
    assert declared, "no migration declares metadata_types as an Enum8"
    values = {name: int(value) for name, value in re.findall(r"'(\w+)' = (\d+)", declared[-1])}
    entry = json.loads(resources.files("schemas").joinpath("avro/assetpipe.MetadataEntry.avsc").read_text())
    symbols = entry["fields"][0]["type"]["symbols"]
    assert values == {symbol: position for position, symbol in enumerate(symbols)}


def test_the_dedup_keys_rebuilt_from_the_events_are_hashed_as_the_worker_hashes_them() -> None:
    """0030 fills ``asset_event_keys`` again from ``asset_events``; each key it computes must be the one the
    ingest worker computes for the same identity, or a repeat of a stored event would be taken as new."""
    expected = dedup_key_expr(
        "toString(event_type)", "asset_key", "partition", "data_version", "toString(event_id)", "run_id"
    )
    (migration,) = [m for m in load_migrations() if m.name == "dedup_window"]
    rebuilt = " ".join(" ".join(migration.statements).split())
    assert f"[dedup_key, {expected}]" in rebuilt
