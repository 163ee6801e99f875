"""Metadata as the catalog shows it: typed values from the stored text, the column schema merged from the
definition and the latest materialization, column lineage, code references as links."""

from __future__ import annotations

import json

from assetpipe import MetadataValue, TableColumn, TableSchema
from assetpipe.consumers.catalog.metadata import code_references, column_lineage, column_schema, typed, typed_value
from assetpipe.schemas.metadata import LocalFileCodeReference, UrlCodeReference, metadata_to_wire, to_text


def stored(**values: object) -> dict[str, dict[str, object]]:
    """Metadata as asset_events stores it (text and type), then typed as the catalog shows it."""
    wire = metadata_to_wire(values)
    return typed({k: to_text(v) for k, v in wire.items()}, {k: str(v["kind"]) for k, v in wire.items()})


def test_each_type_is_decoded_from_its_stored_text() -> None:
    shown = stored(rows=12, ratio=0.5, ok=True, at=MetadataValue.timestamp(1.5), doc=MetadataValue.md("# Hi"),
                   link=MetadataValue.url("https://x"), blob={"a": [1]}, up=MetadataValue.asset("a/b"),
                   none=None)  # fmt: skip
    assert {k: v["value"] for k, v in shown.items()} == {
        "at": 1.5, "blob": {"a": [1]}, "doc": "# Hi", "link": "https://x", "none": None, "ok": True, "ratio": 0.5,
        "rows": 12, "up": "a/b",
    }  # fmt: skip
    assert shown["rows"]["type"] == "int" and shown["link"]["type"] == "url"
    assert typed_value("float", "NaN") == "NaN" and typed_value("int", "not a number") == "not a number"


def schema(*columns: TableColumn) -> dict[str, dict[str, object]]:
    return stored(**{"dagster/column_schema": TableSchema(list(columns))})


def test_the_column_schema_merges_the_definition_and_the_latest_materialization() -> None:
    defined = schema(TableColumn("id", "int", "the key"), TableColumn("amount", "float"))
    materialized = schema(TableColumn("amount", "decimal(10,2)"), TableColumn("loaded_at", "timestamp"))
    columns = column_schema(defined, materialized)
    assert [(c["name"], c["type"], c["description"], c["source"]) for c in columns] == [
        ("id", "int", "the key", "definition"),
        ("amount", "decimal(10,2)", None, "both"),
        ("loaded_at", "timestamp", None, "materialization"),
    ]
    assert column_schema(None, None) == [] and column_schema(stored(**{"dagster/column_schema": "text"}), None) == []


def test_column_lineage_and_code_references() -> None:
    lineage = {"deps_by_column": {"total": [{"asset_key": ["raw", "orders"], "column_name": "amount"}]}}
    defined = typed({"dagster/column_lineage": json.dumps(lineage)}, {"dagster/column_lineage": "column_lineage"})
    expected = {"total": [{"asset_key": "raw/orders", "column_name": "amount"}]}
    assert column_lineage(defined, None) == expected
    newer = {"deps_by_column": {"id": [{"asset_key": ["raw", "ids"], "column_name": "id"}]}}
    materialized = typed({"dagster/column_lineage": json.dumps(newer)}, {"dagster/column_lineage": "column_lineage"})
    assert column_lineage(defined, materialized) == {"id": [{"asset_key": "raw/ids", "column_name": "id"}]}
    references = [LocalFileCodeReference("/src/etl.py", 12, "etl"), UrlCodeReference("https://git/x.py#L3", "on git")]
    refs = stored(**{"dagster/code_references": MetadataValue.code_references(references)})
    assert code_references(refs) == [
        {"kind": "local_file", "file_path": "/src/etl.py", "line_number": 12, "label": "etl"},
        {"kind": "url", "url": "https://git/x.py#L3", "label": "on git"},
    ]
    assert code_references(None) == []
