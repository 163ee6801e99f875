"""OpenLineage in, on `assetpipe up`: openlineage-python's own client (its HTTP transport, its facet classes)
sends START, COMPLETE and FAIL events; the materializations, failures, checks, observations, lineage edges
and raw events land as docs/openlineage.md maps them. Events shaped as Spark, dbt (`dbt-ol test`) and Airflow
send them; a gzip batch with one invalid event is a partial success; a batch sent again stores nothing new."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import (
    DatasetEvent,
    InputDataset,
    Job,
    OutputDataset,
    Run,
    RunEvent,
    RunState,
    StaticDataset,
)
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    data_quality_assertions_dataset,
    data_quality_metrics_input_dataset,
    documentation_dataset,
    error_message_run,
    nominal_time_run,
    output_statistics_output_dataset,
    ownership_dataset,
    schema_dataset,
)
from openlineage.client.serde import Serde
from openlineage.client.transport.http import HttpConfig, HttpTransport

from tests.integration.helpers import run_cli, running_up, up_env, wait_until

FIXTURES = Path(__file__).parent / "openlineage"
PG = "postgres://db.example:5432"


class OpenLineageStack:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.url = f"http://127.0.0.1:{env['ASSETPIPE_HTTP_PORT']}"
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def sql(self, query: str) -> list[dict[str, Any]]:
        done = run_cli(["sql", query, "--format", "json"], self.env)
        assert done.returncode == 0, done.stderr
        rows: list[dict[str, Any]] = json.loads(done.stdout)
        return rows

    def count(self, where: str) -> int:
        return int(self.sql(f"SELECT count() AS n FROM asset_events WHERE {where}")[0]["n"])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenLineageStack]:
    root = tmp_path_factory.mktemp("openlineage")
    mapping = root / "mapping.yaml"
    mapping.write_text("- namespace: s3://lake-prod\n  asset_key_prefix: [lake]\n")
    env = up_env(root / "data", ASSETPIPE_OPENLINEAGE_MAPPING_FILE=str(mapping))
    with running_up([], env, root / "up.log"):
        stack = OpenLineageStack(env)
        with stack.http:
            yield stack


def _client(stack: OpenLineageStack) -> OpenLineageClient:
    return OpenLineageClient(transport=HttpTransport(HttpConfig(url=stack.url, compression=None)))


def _fields(n: int) -> list[schema_dataset.SchemaDatasetFacetFields]:
    return [schema_dataset.SchemaDatasetFacetFields(name=f"c{i}", type="BIGINT") for i in range(n)]


def test_the_python_client_reports_a_run(stack: OpenLineageStack) -> None:
    client, run_id = _client(stack), str(uuid.uuid4())
    job = Job(namespace="spark", name="shop.orders_daily")
    orders = InputDataset(
        namespace=PG,
        name="shop.public.orders",
        inputFacets={
            "dataQualityAssertions": data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
                assertions=[
                    data_quality_assertions_dataset.Assertion(assertion="not_null", success=True, column="id"),
                    data_quality_assertions_dataset.Assertion(
                        assertion="row_count_between", success=False, name="enough_rows", severity="error",
                        expected="1000", actual="10",
                    ),
                ]
            ),
            "dataQualityMetrics": data_quality_metrics_input_dataset.DataQualityMetricsInputDatasetFacet(
                rowCount=10, columnMetrics={"id": data_quality_metrics_input_dataset.ColumnMetrics(nullCount=0,
                                                                                             distinctCount=10)},
            ),
        },
    )  # fmt: skip
    lineage = column_lineage_dataset.ColumnLineageDatasetFacet(
        fields={"c0": column_lineage_dataset.Fields(inputFields=[
            column_lineage_dataset.InputField(namespace=PG, name="shop.public.orders", field="id")])}
    )  # fmt: skip
    daily = OutputDataset(
        namespace=PG,
        name="shop.public.daily",
        facets={"schema": schema_dataset.SchemaDatasetFacet(fields=_fields(3)), "columnLineage": lineage},
        outputFacets={"outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
            rowCount=42, size=4096, fileCount=2)},
    )  # fmt: skip
    nominal = nominal_time_run.NominalTimeRunFacet(
        nominalStartTime="2024-05-01T00:00:00Z", nominalEndTime="2024-05-02T00:00:00Z"
    )
    run = Run(runId=run_id, facets={"nominalTime": nominal})
    client.emit(RunEvent(eventType=RunState.START, eventTime="2024-05-02T01:00:00Z", run=run, job=job,
                         inputs=[orders], outputs=[daily]))  # fmt: skip
    client.emit(RunEvent(eventType=RunState.COMPLETE, eventTime="2024-05-02T01:05:00Z", run=run, job=job,
                         inputs=[orders], outputs=[daily]))  # fmt: skip

    key = "postgres/shop/public/daily"
    wait_until(lambda: stack.count(f"asset_key = '{key}'") == 1, 60, "the materialization stored")
    (row,) = stack.sql(
        "SELECT event_type, partition, run_id, tags, metadata, metadata_types, source FROM asset_events "
        f"WHERE asset_key = '{key}'"
    )
    assert (row["event_type"], row["partition"], row["run_id"], row["source"]) == (
        "materialization", "2024-05-01", run_id, "openlineage",
    )  # fmt: skip
    assert row["tags"] == {"openlineage/job": "shop.orders_daily", "openlineage/job_namespace": "spark",
                           "openlineage/producer": "python"}  # fmt: skip
    assert row["metadata"]["dagster/row_count"] == "42"
    assert (row["metadata"]["size_bytes"], row["metadata"]["file_count"]) == ("4096", "2")
    assert row["metadata_types"]["dagster/column_schema"] == "table_schema"
    assert [c["name"] for c in json.loads(row["metadata"]["dagster/column_schema"])["columns"]] == ["c0", "c1", "c2"]
    assert json.loads(row["metadata"]["dagster/column_lineage"])["deps_by_column"] == {
        "c0": [{"asset_key": ["postgres", "shop", "public", "orders"], "column_name": "id"}]
    }
    source = "postgres/shop/public/orders"
    wait_until(lambda: stack.count(f"asset_key = '{source}' AND event_type = 'check_evaluation'") == 4, 30,
               "both checks, from START and COMPLETE")  # fmt: skip
    checks = stack.sql(
        "SELECT DISTINCT check_name, check_passed, toString(check_severity) AS severity, metadata['expected'] AS "
        f"expected FROM asset_events WHERE asset_key = '{source}' AND event_type = 'check_evaluation' ORDER BY 1"
    )
    assert [(c["check_name"], c["check_passed"], c["severity"], c["expected"]) for c in checks] == [
        ("enough_rows", False, "ERROR", "1000"), ("not_null_id", True, "WARN", ""),
    ]  # fmt: skip
    metrics = stack.sql(
        "SELECT key, value FROM asset_metadata_numeric WHERE asset_key = 'postgres/shop/public/orders' "
        "AND event_type = 'observation' ORDER BY key LIMIT 1 BY key"
    )
    assert {m["key"]: m["value"] for m in metrics} == {"dagster/row_count": 10, "id/distinct_count": 10,
                                                       "id/null_count": 0}  # fmt: skip
    wait_until(lambda: stack.sql("SELECT count() AS n FROM openlineage_events FINAL")[0]["n"] >= 2, 30, "raw events")
    (edge,) = stack.sql(
        f"SELECT upstream, argMaxMerge(last_run_id) AS run FROM asset_lineage_edges WHERE downstream = '{key}' "
        "GROUP BY upstream"
    )
    assert edge == {"upstream": source, "run": run_id}
    lineage_view = stack.http.get("/api/lineage", params={"root": key}).json()
    assert {"from": source, "to": key} in lineage_view["edges"]

    # FAIL of a later run: a materialization failure with the error message
    failed = Run(runId=str(uuid.uuid4()), facets={"errorMessage": error_message_run.ErrorMessageRunFacet(
        message="Table not found: shop.public.orders", programmingLanguage="PYTHON")})  # fmt: skip
    client.emit(RunEvent(eventType=RunState.FAIL, eventTime="2024-05-03T01:05:00Z", run=failed, job=job,
                         outputs=[daily]))  # fmt: skip
    wait_until(lambda: stack.count(f"asset_key = '{key}' AND event_type = 'materialization_failure'") == 1, 30,
               "the failure")  # fmt: skip
    (failure,) = stack.sql(
        f"SELECT description FROM asset_events WHERE asset_key = '{key}' AND event_type = 'materialization_failure'"
    )
    assert failure["description"] == "Table not found: shop.public.orders"


def test_a_dataset_event_registers_its_spec(stack: OpenLineageStack) -> None:
    dataset = StaticDataset(namespace="s3://lake-prod", name="curated/customers", facets={
        "documentation": documentation_dataset.DocumentationDatasetFacet(description="Every customer, deduplicated"),
        "ownership": ownership_dataset.OwnershipDatasetFacet(owners=[ownership_dataset.Owner(name="user:ana@x.io")]),
        "schema": schema_dataset.SchemaDatasetFacet(fields=_fields(2)),
    })  # fmt: skip
    _client(stack).emit(DatasetEvent(eventTime="2024-05-02T01:00:00Z", dataset=dataset))
    status = stack.http.get("/api/assets/lake/curated/customers")
    assert status.status_code == 200, status.text
    definition = status.json()["definition"]
    assert definition["description"] == "Every customer, deduplicated"
    assert definition["owners"] == ["ana@x.io"]


def _fixture(name: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = json.loads((FIXTURES / name).read_text())
    return events


def test_spark_dbt_and_airflow_events_in_a_gzip_batch(stack: OpenLineageStack) -> None:
    events = _fixture("spark.json") + _fixture("dbt_test.json") + _fixture("airflow.json")
    invalid = {**events[0], "run": {"runId": "not-a-uuid"}}
    batch = [*events, invalid]
    body = gzip.compress(json.dumps(batch).encode())
    headers = {"content-type": "application/json", "content-encoding": "gzip"}
    answer = stack.http.post("/api/v1/lineage/batch", content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "status": "partial_success",
        "summary": {"received": len(batch), "successful": len(events), "failed": 1},
        "failed_events": [{"index": len(events), "reason": "Field 'run.runId' is not valid: 'not-a-uuid'",
                           "retriable": False}],
    }  # fmt: skip
    spark = "s3/warehouse-bucket/sales/orders_by_day"
    wait_until(lambda: stack.count(f"asset_key = '{spark}'") == 1, 60, "spark's output")
    dbt = "postgres/analytics/public/stg_orders"
    wait_until(lambda: stack.count(f"asset_key = '{dbt}' AND event_type = 'check_evaluation'") == 2, 30, "dbt tests")
    airflow = "bigquery/proj/mart/daily_revenue"
    wait_until(lambda: stack.count(f"asset_key = '{airflow}'") == 1, 30, "airflow's output")
    (row,) = stack.sql(f"SELECT partition, data_version FROM asset_events WHERE asset_key = '{spark}'")
    assert row == {"partition": "2024-05-01", "data_version": "7"}

    stored = stack.sql("SELECT count() AS n FROM asset_events")[0]["n"]
    again = stack.http.post("/api/v1/lineage/batch", content=body, headers=headers)  # the same batch again
    assert again.json()["summary"]["successful"] == len(events)
    marker = str(uuid.uuid4())  # a later event: once it is stored, the repeats before it were handled
    airflow_event = events[-1]  # no data version: a new run id is a new event (spark's version 7 would be a repeat)
    sent = stack.http.post("/api/v1/lineage", json={**airflow_event, "run": {**airflow_event["run"], "runId": marker}})
    assert sent.status_code == 200, sent.text
    wait_until(lambda: stack.count(f"run_id = '{marker}'") == 1, 30, "the marker")
    assert stack.sql("SELECT count() AS n FROM asset_events")[0]["n"] == stored + 1


def test_an_invalid_event_is_refused_with_the_field_named(stack: OpenLineageStack) -> None:
    event = json.loads(
        Serde.to_json(
            RunEvent(
                eventType=RunState.COMPLETE,
                eventTime="2024-05-02T01:00:00Z",
                run=Run(runId=str(uuid.uuid4())),
                job=Job(namespace="n", name="j"),
            )
        )
    )
    del event["job"]["name"]
    answer = stack.http.post("/api/v1/lineage", json=event)
    assert (answer.status_code, answer.json()["error"]) == (400, "Missing required field: job.name")
    custom = {**event, "job": {"namespace": "n", "name": "j", "facets": {"mine": {"_producer": "https://x",
              "_schemaURL": "https://x/mine.json", "anything": [1, {"goes": True}]}}}}  # fmt: skip
    assert stack.http.post("/api/v1/lineage", json=custom).status_code == 200


def test_an_asset_without_a_definition_is_stale_once_an_input_its_runs_read_is_materialized_again(
    stack: OpenLineageStack,
) -> None:
    client, schema = _client(stack), f"s{uuid.uuid4().hex[:8]}"
    raw, mart = f"{schema}.raw_orders", f"{schema}.orders_mart"
    raw_key, mart_key = f"postgres/{schema}/raw_orders", f"postgres/{schema}/orders_mart"

    def run(output: str, hour: int, inputs: tuple[str, ...] = ()) -> None:
        run_ = Run(runId=str(uuid.uuid4()))
        job = Job(namespace="spark", name=f"build_{output}")
        client.emit(RunEvent(eventType=RunState.COMPLETE, eventTime=f"2024-06-01T{hour:02d}:00:00Z", run=run_,
                             job=job, inputs=[InputDataset(namespace=PG, name=i) for i in inputs],
                             outputs=[OutputDataset(namespace=PG, name=output)]))  # fmt: skip

    def status_of(key: str) -> dict[str, Any] | None:
        answer = stack.http.get(f"/api/assets/{key}/status")
        assert answer.status_code in (200, 404), answer.text  # 404 until its first event is stored
        found: dict[str, Any] | None = answer.json() if answer.status_code == 200 else None
        return found

    def reaches(key: str, status: str, causes: list[dict[str, str]], hour: int) -> None:
        def reached() -> bool:
            found = status_of(key)
            return (
                found is not None
                and found["materialized_at"].startswith(f"2024-06-01T{hour:02d}")
                and (found["status"], found["causes"]) == (status, causes)
            )

        wait_until(reached, 60, f"{key} {status} {causes} (now {status_of(key)})")

    run(raw, 10)
    run(mart, 11, inputs=(raw,))  # the run observes raw -> mart: mart has no definition, only that edge
    reaches(mart_key, "FRESH", [], 11)
    assert (status_of(mart_key) or {}).get("definition", "no answer") is None
    run(raw, 12)  # its input materialized after it: stale, for that input
    cause = {"category": "DATA", "dependency": raw_key, "reason": "upstream materialized after it"}
    reaches(mart_key, "STALE", [cause], 11)
    assert (status_of(raw_key) or {}).get("status") == "FRESH"  # it has no input
    run(mart, 13, inputs=(raw,))  # built again from the newer raw: fresh
    reaches(mart_key, "FRESH", [], 13)
