"""Asset definitions: the seed's examples of owners, tags, metadata and code references; what a run of
asset steps records; asset jobs and the automation sensor (no sockets)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest

from assetpipe import (
    AnchorBasedFilePathMapping,
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    AutomationCondition,
    DailyPartitionsDefinition,
    DataVersion,
    DataVersionsByPartition,
    DefinitionError,
    Definitions,
    LocalFileCodeReference,
    MaterializeResult,
    MetadataValue,
    ObserveResult,
    Output,
    StaticPartitionsDefinition,
    TableColumn,
    TableColumnConstraints,
    TableColumnDep,
    TableColumnLineage,
    TableConstraints,
    TableSchema,
    UrlCodeReference,
    asset,
    define_asset_job,
    link_code_references_to_git,
    observable_source_asset,
    with_source_code_references,
)
from assetpipe.consumers.runs.execution import JobExecutor, RunResult
from assetpipe.definitions.materialize import data_versions, logical_data_version


class Versions:
    def __init__(self, versions: dict[str, str]) -> None:
        self.versions = versions
        self.asked: list[AssetKey] = []

    def current_data_versions(self, keys: Any) -> dict[AssetKey, str]:
        self.asked.extend(keys)
        return {k: self.versions[str(k)] for k in keys if str(k) in self.versions}


def run(defs: Definitions, selection: list[str], versions: dict[str, str] | None = None, **kw: Any) -> RunResult:
    with data_versions(Versions(versions or {})):
        return JobExecutor().execute(defs.asset_job(selection), run_id="run-1", run_config={}, **kw)


# -- the seed's definitions ---------------------------------------------------------------------------
def test_owners_are_emails_or_teams_and_a_bad_owner_gets_dagsters_message() -> None:
    @asset(owners=["richard.hendricks@hooli.com", "team:data-eng"])
    def leads() -> None: ...

    assert leads.spec.owners == ("richard.hendricks@hooli.com", "team:data-eng")
    with pytest.raises(DefinitionError) as error:
        AssetSpec("leads", owners=["richard"])
    assert str(error.value) == (
        "Invalid owner 'richard' for asset 'leads'. Owner must be an email address or a team name prefixed with "
        "'team:'."
    )
    with pytest.raises(DefinitionError, match="Invalid owner 'team:'"):
        AssetSpec("leads", owners=["team:"])


def test_definition_tags_are_strict_and_an_empty_value_is_a_label() -> None:
    spec = AssetSpec("tagged", tags={"domain": "marketing", "pii": "", "team/area": "x"}, kinds={"python", "snowflake"})
    assert spec.tags["pii"] == ""
    assert spec.kinds == {"python", "snowflake"}
    assert spec.tags["dagster/kind/python"] == ""
    message = "Tag values must be strings, got type <class 'int'> at key n."
    with pytest.raises(DefinitionError, match=re.escape(message)):
        AssetSpec("t", tags={"n": 1})  # type: ignore[dict-item]
    with pytest.raises(DefinitionError, match="Invalid tag value: a b, for key: k"):
        AssetSpec("t", tags={"k": "a b"})
    with pytest.raises(DefinitionError, match=r"Found invalid tag keys: \['team:data'\]"):
        AssetSpec("t", tags={"team:data": "x"})
    with pytest.raises(DefinitionError, match="Assets can have at most ten kinds currently"):
        AssetSpec("t", kinds=[f"k{i}" for i in range(11)])


def test_definition_metadata_is_typed_and_standard_keys_must_have_their_types() -> None:
    schema = TableSchema(
        columns=[
            TableColumn(
                "id", "int", description="key", constraints=TableColumnConstraints(nullable=False, unique=True)
            ),
            TableColumn("name", "string"),
        ],
        constraints=TableConstraints(other=["pk(id)"]),
    )
    lineage = TableColumnLineage({"name": [TableColumnDep("source_bar", "column_bar")]})

    @asset(
        metadata={
            "dagster/column_schema": schema,
            "dagster/column_lineage": lineage,
            "dagster/uri": "s3://bucket/table",
            "link_to_docs": MetadataValue.url("https://docs.example.com"),
            "snippet": MetadataValue.md("# Title"),
            "rows_expected": 100,
        }
    )
    def table() -> None: ...

    kinds = {label: value.kind for label, value in table.spec.metadata.items()}
    assert kinds == {
        "dagster/column_schema": "table_schema",
        "dagster/column_lineage": "column_lineage",
        "dagster/uri": "text",
        "link_to_docs": "url",
        "snippet": "md",
        "rows_expected": "int",
    }
    with pytest.raises(DefinitionError, match="'dagster/row_count' of asset 'x' must be of type int, got text"):
        AssetSpec("x", metadata={"dagster/row_count": "many"})
    with pytest.raises(DefinitionError, match="'dagster/column_schema' of asset 'x' must be of type table_schema"):
        AssetSpec("x", metadata={"dagster/column_schema": {"id": "int"}})


def test_keys_names_prefixes_and_deps() -> None:
    @asset(key_prefix=["warehouse", "sales"], deps=["raw/orders", AssetSpec("raw/customers")])
    def daily(upstream_table: int) -> None: ...

    assert daily.key == AssetKey(["warehouse", "sales", "daily"])
    assert daily.spec.deps == (
        AssetKey(["warehouse", "sales", "upstream_table"]),
        AssetKey(["raw", "orders"]),
        AssetKey(["raw", "customers"]),
    )
    with pytest.raises(DefinitionError, match="Cannot specify a name or key prefix for @asset when the key"):
        asset(key="a", name="b")(lambda: None)


def test_definitions_refuse_what_is_not_an_asset_and_duplicate_keys() -> None:
    with pytest.raises(DefinitionError, match="got dict"):
        Definitions(assets=[{"key": "a", "owners": ["team:x"]}])
    with pytest.raises(DefinitionError, match="Duplicate asset key"):
        Definitions(assets=[AssetSpec("a"), AssetSpec("a", description="again")])


# -- code references ----------------------------------------------------------------------------------
def test_code_references_point_at_the_function_and_become_git_links(tmp_path: Path) -> None:
    @asset
    def referenced() -> None: ...

    line = referenced.fn.__code__.co_firstlineno  # the decorator's line, as inspect reports it
    [local] = with_source_code_references([referenced])
    [ref] = local.spec.metadata["dagster/code_references"].value
    assert ref == LocalFileCodeReference(file_path=str(Path(__file__).resolve()), line_number=line)

    root = Path(__file__).resolve().parents[3]
    [linked] = link_code_references_to_git(
        [local],
        git_url="https://github.com/acme/data",
        git_branch="main",
        file_path_mapping=AnchorBasedFilePathMapping(local_file_anchor=root, file_anchor_path_in_repository="src"),
    )
    [url] = linked.spec.metadata["dagster/code_references"].value
    assert url == UrlCodeReference(
        url=f"https://github.com/acme/data/tree/main/src/tests/unit/definitions/{Path(__file__).name}#L{line}"
    )
    [gitlab] = link_code_references_to_git(
        [local], "https://gitlab.com/acme/data", "dev", AnchorBasedFilePathMapping(root, "")
    )
    assert (
        gitlab.spec.metadata["dagster/code_references"]
        .value[0]
        .url.startswith("https://gitlab.com/acme/data/-/tree/dev/tests/unit/")
    )


# -- running assets -----------------------------------------------------------------------------------
def test_a_run_records_materializations_with_provenance_and_dagsters_data_version() -> None:
    @asset(code_version="v2", deps=["raw"])
    def cleaned(context: AssetExecutionContext) -> MaterializeResult:
        context.log.info("cleaning")
        return MaterializeResult(
            metadata={"dagster/row_count": 42},
            check_results=[AssetCheckResult(passed=False, check_name="not_empty", severity="WARN")],  # type: ignore[arg-type]
        )

    @asset
    def report(cleaned: None) -> Output[int]:
        return Output(7, metadata={"pages": 3})

    defs = Definitions(assets=[cleaned, report])
    result = run(defs, ["cleaned", "report"], {"raw": "r-1"})
    assert result.succeeded, result.error_message
    mat_cleaned, check, mat_report = result.asset_events
    expected = hashlib.sha256(b"v2r-1").hexdigest()
    assert mat_cleaned.data_version == expected
    assert mat_cleaned.tags == {
        "dagster/code_version": "v2",
        "dagster/input_data_version/raw": "r-1",
        "dagster/data_version": expected,
    }
    assert mat_cleaned.metadata["dagster/row_count"] == MetadataValue.int(42)
    assert (check.check_name, check.passed, check.severity) == ("not_empty", False, "WARN")
    # the downstream asset sees the version its upstream got in this same run; without a code version
    # the run id stands for it
    assert mat_report.tags["dagster/input_data_version/cleaned"] == expected
    assert mat_report.tags["dagster/code_version"] == "run-1"
    assert mat_report.data_version == logical_data_version("run-1", {AssetKey("cleaned"): expected})
    assert mat_report.metadata["pages"] == MetadataValue.int(3)


def test_a_failed_step_records_its_asset_and_the_assets_it_left_unrun_as_failures_to_materialize() -> None:
    @asset
    def raw() -> None: ...

    @asset(deps=["raw"])
    def cleaned() -> None:
        raise RuntimeError("the source is empty")

    @asset(deps=["cleaned"])
    def report() -> None: ...

    result = run(Definitions(assets=[raw, cleaned, report]), ["raw", "cleaned", "report"], partition_key="2026-12-01")
    assert not result.succeeded
    materialized, *failures = result.asset_events
    assert (materialized.event_type, str(materialized.asset_key)) == ("materialization", "raw")
    assert [(str(f.asset_key), f.event_type, f.failure_type, f.reason, f.partition, f.run_id) for f in failures] == [
        ("cleaned", "materialization_failure", "FAILED", "FAILED_TO_MATERIALIZE", "2026-12-01", "run-1"),
        ("report", "materialization_failure", "FAILED", "UPSTREAM_FAILED_TO_MATERIALIZE", "2026-12-01", "run-1"),
    ]  # fmt: skip
    assert failures[0].description == "op 'cleaned' failed: the source is empty"
    assert failures[1].description == "not run: op 'cleaned' failed: the source is empty"
    logged = [e.event_type for e in result.events if e.asset_key in ("cleaned", "report")]
    assert logged == ["asset_materialization_failure", "asset_materialization_failure"]


def test_a_user_data_version_is_kept_and_marked_user_provided() -> None:
    @asset(deps=["never_seen"])
    def versioned() -> MaterializeResult:
        return MaterializeResult(data_version=DataVersion("2024-01-01"))

    [event] = run(Definitions(assets=[versioned]), ["versioned"]).asset_events
    assert event.data_version == "2024-01-01"
    assert event.tags["dagster/data_version_is_user_provided"] == "true"
    assert event.tags["dagster/input_data_version/never_seen"] == "INITIAL"


def test_an_input_from_another_run_is_refused_with_a_clear_message() -> None:
    @asset
    def upstream() -> int:
        return 1

    @asset
    def downstream(upstream: int) -> int:
        return upstream + 1

    result = run(Definitions(assets=[upstream, downstream]), ["downstream"])
    assert not result.succeeded
    assert "keeps no asset values between runs" in result.error_message


def test_observable_sources_record_observations_with_their_data_version() -> None:
    @observable_source_asset
    def source_file() -> DataVersion:
        return DataVersion("abc")

    @observable_source_asset(partitions_def=StaticPartitionsDefinition(["eu", "us"]))
    def regional() -> DataVersionsByPartition:
        return DataVersionsByPartition({"eu": "1", "us": DataVersion("2")})

    @observable_source_asset
    def with_metadata() -> ObserveResult:
        return ObserveResult(data_version=DataVersion("x"), metadata={"lag_minutes": 5})

    defs = Definitions(assets=[source_file, regional, with_metadata])
    events = run(defs, ["source_file", "regional", "with_metadata"]).asset_events
    seen = [(e.event_type, str(e.asset_key), e.partition, e.data_version) for e in events]
    assert seen == [
        ("observation", "source_file", None, "abc"),
        ("observation", "regional", "eu", "1"),
        ("observation", "regional", "us", "2"),
        ("observation", "with_metadata", None, "x"),
    ]
    assert events[0].tags == {"dagster/data_version": "abc", "dagster/data_version_is_user_provided": "true"}
    assert events[3].metadata["lag_minutes"] == MetadataValue.int(5)


def test_asset_jobs_materialize_or_observe_never_both() -> None:
    @observable_source_asset
    def src() -> DataVersion:
        return DataVersion("1")

    @asset(deps=[src])
    def built() -> None: ...

    with pytest.raises(DefinitionError, match="Asset selection specified both regular assets and source assets"):
        Definitions(assets=[src, built], jobs=[define_asset_job("both", [src, built])])
    defs = Definitions(assets=[src, built, AssetSpec("ext")], jobs=[define_asset_job("observe", [src])])
    assert [node.name for node in defs.job("observe").nodes] == ["src"]  # type: ignore[union-attr]
    assert [node.name for node in defs.job("__ASSET_JOB").nodes] == ["built"]  # type: ignore[union-attr]
    with pytest.raises(DefinitionError, match="an external asset"):
        defs.asset_job(["ext"])


def test_a_partitioned_asset_sees_its_partition() -> None:
    @asset(partitions_def=DailyPartitionsDefinition("2024-01-01"))
    def daily(context: AssetExecutionContext) -> None:
        assert context.partition_key == "2024-01-02"

    [event] = run(Definitions(assets=[daily]), ["daily"], partition_key="2024-01-02").asset_events
    assert event.partition == "2024-01-02"


def test_eager_assets_get_one_automation_sensor_requesting_a_run_per_upstream_change() -> None:
    @observable_source_asset
    def src() -> DataVersion:
        return DataVersion("1")

    @asset(deps=[src], automation_condition=AutomationCondition.eager())
    def down() -> None: ...

    defs = Definitions(assets=[src, down])
    [sensor] = defs.sensors
    assert sensor.name == "default_automation_condition_sensor"
    assert set(sensor.event_types) == {"materialization", "observation"}
    assert sensor.asset_keys == (AssetKey("src"),)

    class Event:
        asset_key = AssetKey("src")
        data_version = "v7"
        partition = None
        event_id = "e-1"

    [request] = sensor.fn(None, Event())
    assert request.asset_selection == (AssetKey("down"),)
    assert request.job_name == "__ASSET_JOB"
    assert request.run_key == "down|src||v7"
