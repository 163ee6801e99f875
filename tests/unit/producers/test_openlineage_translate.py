"""OpenLineage in, without a broker: the schema check names the field, the naming rule and mapping file, and
the translation of each facet (docs/openlineage.md's table, row by row)."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    data_quality_assertions_dataset,
    data_quality_metrics_input_dataset,
    dataset_version_dataset,
    datasource_dataset,
    nominal_time_run,
    output_statistics_output_dataset,
    schema_dataset,
)
from openlineage.client.serde import Serde

from assetpipe.producers.openlineage.exceptions import MappingFileError
from assetpipe.producers.openlineage.naming import AssetNaming, default_key, read_rules
from assetpipe.producers.openlineage.spec import EventValidator
from assetpipe.producers.openlineage.translate import READ_FACETS, Translator
from assetpipe.schemas.errors import FieldError
from assetpipe.schemas.metadata import SharedEntry

FIXTURES = Path(__file__).parents[2] / "integration" / "openlineage"
PG = "postgres://h:5432"
LINEAGE = column_lineage_dataset.Fields(
    inputFields=[column_lineage_dataset.InputField(namespace=PG, name="db.schema.src", field="id")] * 2
)


@pytest.fixture(scope="module")
def validator() -> EventValidator:
    return EventValidator(READ_FACETS)


def _event(event_type: RunState = RunState.COMPLETE, nominal: str | None = "2024-05-01T00:00:00Z") -> dict[str, Any]:
    run_facets = (
        {} if nominal is None else {"nominalTime": nominal_time_run.NominalTimeRunFacet(nominalStartTime=nominal)}
    )
    out = OutputDataset(
        namespace=PG,
        name="db.schema.out",
        facets={
            "schema": schema_dataset.SchemaDatasetFacet(fields=[
                schema_dataset.SchemaDatasetFacetFields(name="id", type="INT"),
                schema_dataset.SchemaDatasetFacetFields(name="s", type="STRUCT", fields=[
                    schema_dataset.SchemaDatasetFacetFields(name="x", type="TEXT", description="inner")]),
            ]),
            "columnLineage": column_lineage_dataset.ColumnLineageDatasetFacet(fields={"id": LINEAGE}),
            "dataSource": datasource_dataset.DatasourceDatasetFacet(name=PG, uri="postgres://h:5432/db"),
            "version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion="v9"),
        },
        outputFacets={"outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
            rowCount=5, size=100, fileCount=1)},
    )  # fmt: skip
    source = InputDataset(namespace=PG, name="db.schema.src", inputFacets={
        "dataQualityAssertions": data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(assertions=[
            data_quality_assertions_dataset.Assertion(assertion="not_null", success=True, column="id"),
            data_quality_assertions_dataset.Assertion(assertion="custom", success=False, name="fresh", severity="error",
                                                      expected="1", actual="0")]),
        "dataQualityMetrics": data_quality_metrics_input_dataset.DataQualityMetricsInputDatasetFacet(
            rowCount=7, columnMetrics={"id": data_quality_metrics_input_dataset.ColumnMetrics(nullCount=1,
                                                                                           distinctCount=6, max=9)}),
    })  # fmt: skip
    event = RunEvent(eventType=event_type, eventTime="2024-05-02T00:00:00Z", run=Run(str(uuid.uuid4()), run_facets),
                     job=Job("spark", "my job"), inputs=[source], outputs=[out],
                     producer="https://github.com/OpenLineage/OpenLineage/tree/1.9.1/integration/spark")  # fmt: skip
    result: dict[str, Any] = json.loads(Serde.to_json(event))
    return result


def _refused(validator: EventValidator, event: dict[str, Any]) -> FieldError:
    with pytest.raises(FieldError) as caught:
        validator.validate(event)
    return caught.value


def test_the_schema_names_the_invalid_field(validator: EventValidator) -> None:
    event = _event()
    assert validator.validate(event) == "RunEvent"
    bad = copy.deepcopy(event)
    bad["run"]["runId"] = "x"
    assert _refused(validator, bad).field == "run.runId"
    bad = copy.deepcopy(event)
    del bad["outputs"][0]["facets"]["schema"]["fields"][1]["fields"][0]["name"]
    assert str(_refused(validator, bad)) == "Missing required field: outputs[0].facets.schema.fields[1].fields[0].name"
    bad = copy.deepcopy(event)
    bad["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] = "5"
    assert _refused(validator, bad).field == "outputs[0].outputFacets.outputStatistics.rowCount"
    bad = copy.deepcopy(event)
    bad["eventTime"] = "2024-05-02"  # a date without a time, as the package's own check refuses it
    assert _refused(validator, bad).field == "eventTime"
    assert _refused(validator, {"eventTime": "x"}).field == "event"


def test_unknown_facets_are_kept_and_a_known_one_is_checked_by_its_schema_url(validator: EventValidator) -> None:
    event = _event()
    event["run"]["facets"]["mine"] = {"_producer": "https://me", "_schemaURL": "https://me/x.json", "n": [1]}
    validator.validate(event)
    event["run"]["facets"]["renamed"] = {**event["run"]["facets"]["nominalTime"]}
    del event["run"]["facets"]["renamed"]["nominalStartTime"]
    assert _refused(validator, event).field == "run.facets.renamed.nominalStartTime"
    del event["run"]["facets"]["renamed"]
    del event["run"]["facets"]["mine"]["_producer"]  # every facet still has the base facet's fields
    assert _refused(validator, event).field == "run.facets.mine._producer"


def test_the_fixtures_of_spark_dbt_and_airflow_are_valid(validator: EventValidator) -> None:
    for name in ("spark.json", "dbt_test.json", "airflow.json"):
        for event in json.loads((FIXTURES / name).read_text()):
            assert validator.validate(event) == "RunEvent"


@pytest.mark.parametrize(
    ("namespace", "name", "key"),
    [
        ("postgres://h:5432", "db.schema.table", ["postgres", "db", "schema", "table"]),
        ("s3://bucket", "path/to/data", ["s3", "bucket", "path", "to", "data"]),
        ("dagster", "a/b/c", ["a", "b", "c"]),
        ("bigquery", "proj.ds.t", ["bigquery", "proj", "ds", "t"]),
        ("file", "/tmp/x.csv", ["file", "tmp", "x.csv"]),
        ("kafka://broker:9092", "orders", ["kafka", "orders"]),
    ],
)
def test_the_default_naming_rule(namespace: str, name: str, key: list[str]) -> None:
    assert default_key(namespace, name) == key


def test_a_mapping_file_overrides_the_rule(tmp_path: Path) -> None:
    path = tmp_path / "mapping.yaml"
    path.write_text(
        "- {namespace: 'postgres://prod', asset_key_prefix: [warehouse]}\n"
        "- {namespace: 'postgres://prod', name: 'db.mart.', asset_key_prefix: 'marts/core'}\n"
    )
    naming = AssetNaming.from_file(path)
    assert naming.key("postgres://prod:5432", "db.mart.sales", "f") == ["marts", "core", "sales"]
    assert naming.key("postgres://prod:5432", "db.raw.sales", "f") == ["warehouse", "db", "raw", "sales"]
    assert naming.key("postgres://other", "db.raw.sales", "f") == ["postgres", "db", "raw", "sales"]
    with pytest.raises(FieldError, match="names no asset"):
        naming.key("dagster", "/", "outputs[0].name")
    path.write_text("- {namespace: x, asset_key_prefix: 3}\n")
    with pytest.raises(MappingFileError, match="rule 1: 'asset_key_prefix' must be"):
        read_rules(path)


def test_a_complete_run_is_materializations_checks_an_observation_and_edges(validator: EventValidator) -> None:
    event = _event()
    translation = Translator(AssetNaming(), "openlineage").translate(event, validator.validate(event))
    by_type = {(t, "/".join(r["asset_key"]), r.get("check_name")): r for t, r in translation.records}
    out = by_type[("materialization", "postgres/db/schema/out", None)]
    assert (out["partition"], out["data_version"], out["run_id"]) == ("2024-05-01", "v9", event["run"]["runId"])
    assert out["tags"] == {"openlineage/job": "my_job", "openlineage/job_namespace": "spark",
                           "openlineage/producer": "spark"}  # fmt: skip
    metadata = out["metadata"]
    assert (metadata["dagster/row_count"], metadata["size_bytes"], metadata["file_count"]) == (
        {"kind": "int", "value": 5}, {"kind": "int", "value": 100}, {"kind": "int", "value": 1},
    )  # fmt: skip
    assert [c["name"] for c in metadata["dagster/column_schema"]["value"][1]["columns"]] == ["id", "s", "s.x"]
    assert metadata["dagster/column_lineage"]["value"][1]["deps_by_column"] == {
        "id": [{"asset_key": ["postgres", "db", "schema", "src"], "column_name": "id"}]  # once, though listed twice
    }
    assert metadata["dagster/uri"] == {"kind": "url", "value": "postgres://h:5432/db"}
    fresh = by_type[("check_evaluation", "postgres/db/schema/src", "fresh")]
    assert (fresh["passed"], fresh["severity"], fresh["metadata"]["expected"]["value"]) == (False, "ERROR", "1")
    assert by_type[("check_evaluation", "postgres/db/schema/src", "not_null_id")]["severity"] == "WARN"
    metrics = by_type[("observation", "postgres/db/schema/src", None)]["metadata"]
    assert {k: v["value"] for k, v in metrics.items()} == {
        "dagster/row_count": 7, "id/null_count": 1, "id/distinct_count": 6, "id/max": 9.0,
    }  # fmt: skip
    assert translation.edges == [("postgres/db/schema/src", "postgres/db/schema/out")]
    again = Translator(AssetNaming(), "openlineage").translate(event, "RunEvent")
    assert [r["event_id"] for _, r in again.records] == [r["event_id"] for _, r in translation.records]


def test_a_schema_and_lineage_sent_again_are_read_once_and_shared(validator: EventValidator) -> None:
    translator = Translator(AssetNaming(), "openlineage")

    def column_metadata(event: dict[str, Any]) -> tuple[Any, Any]:
        metadata = next(r for t, r in translator.translate(event, validator.validate(event)).records
                        if t == "materialization")["metadata"]  # fmt: skip
        return metadata["dagster/column_schema"], metadata["dagster/column_lineage"]

    first, second = _event(), _event()  # two runs, parsed apart: equal facets, other objects
    schema, lineage = column_metadata(first)
    assert isinstance(schema, SharedEntry) and isinstance(lineage, SharedEntry)
    again = column_metadata(second)
    assert again[0] is schema and again[1] is lineage
    assert Translator(AssetNaming(), "openlineage").translate(second, "RunEvent").records[0][1]["metadata"][
        "dagster/column_schema"] == schema  # what a translator reading it afresh builds  # fmt: skip
    changed = _event()
    changed["outputs"][0]["facets"]["schema"]["fields"][0]["type"] = "BIGINT"
    other = column_metadata(changed)
    assert other[0] is not schema and other[0]["value"][1]["columns"][0]["type"] == "BIGINT"
    assert other[1] is lineage
    unnamed = _event()
    source = unnamed["outputs"][0]["facets"]["columnLineage"]["fields"]["id"]["inputFields"][0]
    source |= {"namespace": "dagster", "name": "/"}  # a name of no part: no asset
    for _ in range(2):  # refused each time, never kept
        with pytest.raises(FieldError, match="names no asset") as caught:
            translator.translate(unnamed, "RunEvent")
        assert caught.value.field == "outputs[0].facets.columnLineage.fields.id.inputFields[0]"


@pytest.mark.parametrize(("state", "reason"), [(RunState.FAIL, "FAILED_TO_MATERIALIZE"),
                                               (RunState.ABORT, "RUN_TERMINATED")])  # fmt: skip
def test_a_failed_run_is_a_materialization_failure(validator: EventValidator, state: RunState, reason: str) -> None:
    event = _event(state, nominal=None)
    event["run"]["facets"]["errorMessage"] = {"_producer": "https://x", "_schemaURL": "https://x/e.json",
                                              "message": "boom", "programmingLanguage": "JAVA"}  # fmt: skip
    translation = Translator(AssetNaming(), "openlineage").translate(event, validator.validate(event))
    failures = [r for t, r in translation.records if t == "materialization_failure"]
    assert [(r["description"], r["reason"], r["failure_type"]) for r in failures] == [("boom", reason, "FAILED")]
    assert not any(t == "materialization" for t, _ in translation.records)


def test_a_dataset_event_is_a_spec(validator: EventValidator) -> None:
    event = {
        "eventTime": "2024-05-02T00:00:00Z",
        "producer": "https://x",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
        "dataset": {
            "namespace": "dagster",
            "name": "a/b",
            "facets": {
                "documentation": {"_producer": "https://x", "_schemaURL": "https://x/d.json", "description": "Hi"},
                "ownership": {
                    "_producer": "https://x",
                    "_schemaURL": "https://x/o.json",
                    "owners": [{"name": "user:ann@x.io"}, {"name": "data-eng"}],
                },
                "tags": {
                    "_producer": "https://x",
                    "_schemaURL": "https://x/t.json",
                    "tags": [{"key": "pii", "value": "true"}, {"key": "col", "value": "x", "field": "id"}],
                },
            },
        },
    }
    translation = Translator(AssetNaming(), "openlineage").translate(event, validator.validate(event))
    assert translation.specs == [{"key": ["a", "b"], "description": "Hi", "owners": ["ann@x.io", "team:data-eng"],
                                  "tags": {"pii": "true"}}]  # fmt: skip
    assert translation.records == []
