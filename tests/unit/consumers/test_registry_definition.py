"""How the registry stores a definition: its row, its hash, its metadata as ``asset_events`` stores event
metadata. No ClickHouse needed."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from assetpipe.consumers.ingest.rows import EVENT_COLUMNS, EventColumns
from assetpipe.consumers.registry import StoredDefinition
from assetpipe.consumers.registry.definition import DEFINITION_COLUMNS, removal_row
from assetpipe.definitions.assets import AssetSpec, asset, observable_source_asset
from assetpipe.definitions.partitions import DailyPartitionsDefinition
from assetpipe.definitions.results import AutomationCondition
from assetpipe.schemas.metadata import MetadataValue, TableColumn, TableSchema
from assetpipe.schemas.model import build_record

METADATA = {
    "rows": 12,
    "ratio": 0.5,
    "fresh": True,
    "owner": "team",
    "link": MetadataValue.url("https://bi/x"),
    "columns": TableSchema([TableColumn("id", "int")]),
    "extra": {"a": [1, 2]},
    "nothing": None,
}


def spec(**fields: object) -> AssetSpec:
    values: dict[str, object] = {"deps": ["up/a", "up/b"], "kinds": ["python", "duckdb"], "tags": {"x": "1", "y": ""}}
    values.update(fields)
    return AssetSpec("sales/orders", **values)  # type: ignore[arg-type]


def test_the_hash_is_of_the_definition_not_of_the_order_sets_are_given_in() -> None:
    base = StoredDefinition.of(spec())
    reordered = StoredDefinition.of(spec(deps=["up/b", "up/a"], kinds=["duckdb", "python"], tags={"y": "", "x": "1"}))
    assert reordered.definition_hash == base.definition_hash
    assert base.deps == ("up/a", "up/b")
    assert base.kinds == ("duckdb", "python")
    for change in ({"description": "d"}, {"code_version": "2"}, {"group_name": "g"}, {"owners": ["team:a"]},
                   {"metadata": {"rows": 1}}, {"deps": ["up/a"]}, {"automation_condition": AutomationCondition.eager()},
                   {"partitions_def": DailyPartitionsDefinition("2024-01-01")}):  # fmt: skip
        assert StoredDefinition.of(spec(**change)).definition_hash != base.definition_hash, change


def test_the_hash_is_the_same_in_another_process() -> None:
    script = textwrap.dedent(
        """
        from assetpipe.consumers.registry import StoredDefinition
        from assetpipe.definitions.assets import AssetSpec
        spec = AssetSpec("sales/orders", deps=["up/a", "up/b"], kinds=["python", "duckdb"], tags={"x": "1", "y": ""},
                         metadata={"rows": 12, "extra": {"a": [1, 2]}})
        print(StoredDefinition.of(spec).definition_hash)
        """
    )
    here = StoredDefinition.of(spec(metadata={"rows": 12, "extra": {"a": [1, 2]}})).definition_hash
    env = {"PYTHONHASHSEED": "12345"}  # another process, another string hash seed
    there = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
    assert there.stdout.strip() == here


def test_metadata_is_stored_as_asset_events_stores_it() -> None:
    stored = StoredDefinition.of(AssetSpec("a", metadata=METADATA))
    columns = EventColumns()
    record = build_record("materialization", ["a"], source="sdk", host="h", metadata=METADATA)
    columns.append("materialization", record, 1, 0, 0)
    event = dict(zip(EVENT_COLUMNS, (c[0] for c in columns.columns), strict=True))
    assert stored.metadata == event["metadata"]
    assert stored.metadata_types == event["metadata_types"]
    assert stored.metadata_types["columns"] == "table_schema" and stored.metadata["nothing"] == ""


def test_execution_types_and_rows() -> None:
    @asset(key="m", code_version="1", partitions_def=DailyPartitionsDefinition("2024-01-01"))
    def m() -> None: ...

    @observable_source_asset(key="o")
    def o() -> None: ...

    assert [StoredDefinition.of(a).execution_type for a in (m, o, AssetSpec("e"))] == [
        "materialization", "observation", "external",
    ]  # fmt: skip
    stored = StoredDefinition.of(m)
    assert stored.partitions.startswith('{"end":null,"end_offset":0,"fmt":"%Y-%m-%d","start":"2024-01-01')
    row = dict(zip(DEFINITION_COLUMNS, stored.row("loc", "code", 7), strict=True))
    assert (row["asset_key"], row["code_location"], row["source"], row["registered_at"], row["removed"]) == (
        "m", "loc", "code", 7, False,
    )  # fmt: skip
    removed = dict(
        zip(DEFINITION_COLUMNS, removal_row("m", ["m"], stored.definition_hash, "loc", "code", 8), strict=True)
    )
    assert (removed["removed"], removed["definition_hash"], removed["code_version"]) == (
        True,
        stored.definition_hash,
        "",
    )
