"""The versioned DDL against the contract it stores: no ClickHouse needed."""

from __future__ import annotations

import json
import re
from importlib import resources

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
