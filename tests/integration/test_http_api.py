"""The HTTP API against the real broker and ClickHouse engine: what a client sends is what lands in
``asset_events`` (through the ingest worker), and every refusal is the documented status and message."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from assetpipe.api import known_seed, warehouse_seed
from assetpipe.broker import free_port
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.definitions.loader import Definitions
from assetpipe.producers.http import hash_key
from assetpipe.schemas.settings import Settings
from tests.integration.http_server import event_id, ingested, serving, wait_known_assets_loaded

MAT, CHECK, OBS = "/report_asset_materialization", "/report_asset_check", "/report_asset_observation"


@pytest.fixture
def api_settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(http_port=free_port())


@pytest.fixture
def client(api_settings: Settings) -> Iterator[httpx.Client]:
    with serving(api_settings) as client:
        yield client


# Every request of the seed document's usage examples: (endpoint and key, request, columns of its row).
SEED_EXAMPLES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (f"{MAT}/my_dataset",
     {"json": {"metadata": {"rows": 1000, "columns": 10, "file_size": "5.2MB"},
               "description": "Daily ETL run completed successfully"}},
     {"event_type": "materialization", "asset_key_path": ["my_dataset"],
      "description": "Daily ETL run completed successfully",
      "metadata": {"rows": "1000", "columns": "10", "file_size": "5.2MB"},
      "metadata_types": {"rows": "int", "columns": "int", "file_size": "text"}}),
    (f"{MAT}/sales/daily_summary",
     {"json": {"data_version": "v1.2.3", "partition": "2024-01-15",
               "metadata": {"total_sales": 50000.00, "transaction_count": 1250}}},
     {"asset_key_path": ["sales", "daily_summary"], "data_version": "v1.2.3", "partition": "2024-01-15",
      "metadata": {"total_sales": "50000.0", "transaction_count": "1250"},
      "metadata_types": {"total_sales": "float", "transaction_count": "int"}}),
    (f"{MAT}/my_asset",
     {"params": {"data_version": "v1.0.0", "description": "Processed via external pipeline"}},
     {"asset_key_path": ["my_asset"], "data_version": "v1.0.0", "description": "Processed via external pipeline"}),
    (f"{CHECK}/customer_data",
     {"json": {"check_name": "null_values_check", "passed": True,
               "metadata": {"null_count": 0, "total_rows": 10000, "check_duration": "0.5s"}}},
     {"event_type": "check_evaluation", "asset_key_path": ["customer_data"], "check_name": "null_values_check",
      "check_passed": True, "check_severity": "ERROR",
      "metadata": {"null_count": "0", "total_rows": "10000", "check_duration": "0.5s"}}),
    (f"{CHECK}/product_catalog",
     {"json": {"check_name": "price_validation", "passed": False, "severity": "ERROR",
               "metadata": {"invalid_prices": 15, "error_details": "Negative prices found in products"}}},
     {"check_name": "price_validation", "check_passed": False, "check_severity": "ERROR",
      "metadata": {"invalid_prices": "15", "error_details": "Negative prices found in products"}}),
    (f"{CHECK}/user_events",
     {"json": {"check_name": "volume_check", "passed": True, "severity": "WARN",
               "metadata": {"daily_volume": 50000, "expected_min": 75000, "note": "Volume below expected threshold"}}},
     {"check_name": "volume_check", "check_passed": True, "check_severity": "WARN"}),
    (f"{OBS}/warehouse/customers",
     {"json": {"metadata": {"schema_version": "v2.1", "columns_added": ["phone_verified", "last_login"],
                            "migration_applied": "2024-01-15T10:30:00Z"},
               "description": "Schema migration applied successfully"}},
     {"event_type": "observation", "asset_key_path": ["warehouse", "customers"],
      "description": "Schema migration applied successfully",
      "metadata": {"schema_version": "v2.1", "columns_added": '["phone_verified","last_login"]',
                   "migration_applied": "2024-01-15T10:30:00Z"},
      "metadata_types": {"schema_version": "text", "columns_added": "json", "migration_applied": "text"}}),
    (f"{OBS}/api/user_service",
     {"json": {"metadata": {"avg_response_time": "45ms", "error_rate": "0.1%", "throughput": "1000 req/min",
                            "monitoring_window": "1h"}}},
     {"asset_key_path": ["api", "user_service"],
      "metadata": {"avg_response_time": "45ms", "error_rate": "0.1%", "throughput": "1000 req/min",
                   "monitoring_window": "1h"}}),
    (f"{OBS}/reports/daily_kpis",
     {"json": {"data_version": "2024-01-15", "metadata": {"last_updated": "2024-01-15T23:45:00Z",
                                                          "lag_minutes": 15, "source_system": "analytics_pipeline"}}},
     {"asset_key_path": ["reports", "daily_kpis"], "data_version": "2024-01-15",
      "metadata_types": {"last_updated": "text", "lag_minutes": "int", "source_system": "text"}}),
]  # fmt: skip


def _check_row(row: dict[str, Any], expected: dict[str, Any]) -> None:
    for column, value in expected.items():
        got = row[column]
        if column == "metadata" and isinstance(value, dict):
            got = {k: json.loads(v) if v.startswith("[") else v for k, v in got.items()}
            value = {k: json.loads(v) if isinstance(v, str) and v.startswith("[") else v for k, v in value.items()}
        assert got == value, f"{column}: {got!r} != {value!r}"
    assert row["source"] == "http"


def test_every_seed_example_reaches_clickhouse(
    client: httpx.Client, api_settings: Settings, warehouse: Warehouse
) -> None:
    # The observed and checked assets exist (in Dagster: defined in code; here: materialized once).
    for asset in ("customer_data", "product_catalog", "user_events", "warehouse/customers", "api/user_service",
                  "reports/daily_kpis"):  # fmt: skip
        event_id(client.post(f"{MAT}/{asset}"))
    ids = []
    for path, request, _ in SEED_EXAMPLES:
        ids.append(event_id(client.post(path, **request)))
    found = ingested(warehouse, api_settings, ids)
    for event, (_, _, expected) in zip(ids, SEED_EXAMPLES, strict=True):
        _check_row(found[event], expected)


def test_key_formats_and_request_forms(client: httpx.Client, api_settings: Settings, warehouse: Warehouse) -> None:
    sent = {
        "path": client.post(f"{MAT}/warehouse/customers/daily", json={"metadata": {"rows": 1}}),
        "body key": client.post(f"{MAT}/", json={"asset_key": ["warehouse", "customers", "daily"]}),
        "body string key is one part": client.post(MAT, json={"asset_key": "sales/daily_summary"}),
        "query key": client.post(f"{MAT}/", params={"asset_key": "warehouse.customers.daily"}),
        "query JSON list key": client.post(f"{MAT}/", params={"asset_key": '["slash/key", "b"]'}),
        "path wins over query": client.post(f"{MAT}/my_asset", params={"asset_key": "warehouse.customers.daily"}),
        "path wins over body": client.post(f"{MAT}/external", json={"asset_key": ["test", "external"]}),
        "percent-decoded path": client.post(f"{MAT}/my%20dataset/x"),
        "query form": client.post(
            f"{MAT}/q", params={"metadata": json.dumps({"key": "value"}), "description": "Event description"}
        ),
        "mixed form: body wins": client.post(
            f"{MAT}/m?description=fallback&partition=p1", json={"description": "primary", "metadata": {"n": 2}}
        ),
        "check from the query": client.post(f"{CHECK}/q", params={"check_name": "c", "passed": "false"}),
        "charset accepted": client.post(
            f"{MAT}/cs", content=b'{"partition": "x"}', headers={"content-type": "application/json; charset=utf-8"}
        ),
    }
    ids = {name: event_id(response) for name, response in sent.items()}
    by_id = ingested(warehouse, api_settings, list(ids.values()))
    found = {name: by_id[event] for name, event in ids.items()}
    assert found["path"]["asset_key_path"] == ["warehouse", "customers", "daily"]
    assert found["body key"]["asset_key_path"] == ["warehouse", "customers", "daily"]
    assert found["body string key is one part"]["asset_key_path"] == ["sales/daily_summary"]
    assert found["query key"]["asset_key_path"] == ["warehouse", "customers", "daily"]
    assert found["query JSON list key"]["asset_key_path"] == ["slash/key", "b"]
    assert found["path wins over query"]["asset_key_path"] == ["my_asset"]
    assert found["path wins over body"]["asset_key_path"] == ["external"]
    assert found["percent-decoded path"]["asset_key_path"] == ["my dataset", "x"]
    assert found["query form"]["metadata"] == {"key": "value"}
    assert found["query form"]["description"] == "Event description"
    mixed = found["mixed form: body wins"]
    assert (mixed["description"], mixed["partition"], mixed["metadata"]) == ("primary", "p1", {"n": "2"})
    assert (found["check from the query"]["check_name"], found["check from the query"]["check_passed"]) == ("c", False)
    assert found["charset accepted"]["partition"] == "x"


def test_typed_metadata_idempotency_and_batches(
    client: httpx.Client, api_settings: Settings, warehouse: Warehouse
) -> None:
    typed = client.post(
        f"{MAT}/typed",
        json={"metadata": {
            "dashboard": {"type": "url", "value": "https://dash.example/d"},
            "file": {"type": "path", "value": "/data/a.parquet"},
            "notes": {"type": "md", "value": "# ok"},
            "at": {"type": "timestamp", "value": "2024-06-01T00:00:00Z"},
            "schema": {"type": "table_schema", "value": {"columns": [{"name": "id", "type": "int"}]}},
            "plain": {"type": "url"},
        }},
    )  # fmt: skip
    first = client.post(f"{MAT}/idem", json={"partition": "p"}, headers={"Idempotency-Key": "run-42"})
    again = client.post(f"{MAT}/idem", json={"partition": "p"}, headers={"Idempotency-Key": "run-42"})
    assert event_id(first) == event_id(again)
    ndjson = "\n".join(json.dumps(e) for e in [
        {"type": "materialization", "asset_key": ["batch", "a"], "partition": "1"},
        {"type": "check", "asset_key": ["batch", "a"], "check_name": "rows", "passed": True},
        {"type": "observation", "asset_key": "batch/a"},
    ])  # fmt: skip
    batch = client.post("/report_asset_events", content=ndjson, headers={"content-type": "application/x-ndjson"})
    array = client.post("/report_asset_events", json=[{"type": "materialization", "asset_key": ["batch", "b"]}])
    assert batch.status_code == 200 and array.status_code == 200, (batch.text, array.text)
    assert batch.json()["accepted"] == 3 and batch.json()["rejected"] == 0
    batch_ids = [r["event_id"] for r in batch.json()["results"] + array.json()["results"]]
    found = ingested(warehouse, api_settings, [event_id(typed), event_id(first), *batch_ids])
    row = found[event_id(typed)]
    assert row["metadata_types"] == {"dashboard": "url", "file": "path", "notes": "md", "at": "timestamp",
                                     "schema": "table_schema", "plain": "json"}  # fmt: skip
    assert row["metadata"]["dashboard"] == "https://dash.example/d"
    assert [found[i]["event_type"] for i in batch_ids] == ["materialization", "check_evaluation", "observation",
                                                           "materialization"]  # fmt: skip
    assert found[batch_ids[2]]["asset_key_path"] == ["batch/a"]
    idem_rows = warehouse.query(
        f"SELECT count() FROM {api_settings.clickhouse_database}.asset_events FINAL WHERE event_id = {{i:UUID}}",
        parameters={"i": event_id(first)},
    ).rows
    assert idem_rows == [(1,)]


def test_a_materialization_failure_lands_with_its_type_reason_and_run(
    client: httpx.Client, api_settings: Settings, warehouse: Warehouse
) -> None:
    path = "/report_asset_materialization_failure"
    event_id(client.post(f"{MAT}/etl/orders"))  # known: a failure, as an observation, must name an asset that is
    failed = client.post(
        f"{path}/etl/orders?reason=UPSTREAM_FAILED_TO_MATERIALIZE",
        json={"partition": "2024-06-01", "run_id": "run-7", "description": "raw/orders failed", "metadata": {"try": 2}},
    )
    assert failed.json()["message"] == "Asset materialization failure recorded"
    batch = client.post("/report_asset_events", json=[
        {"type": "materialization_failure", "asset_key": ["etl", "orders"], "failure_type": "SKIPPED",
         "reason": "RUN_TERMINATED"},
        {"type": "asset_materialization_failure", "asset_key": ["etl", "orders"], "data_version": "ignored"},
    ])  # fmt: skip
    refused = client.post(f"{path}/etl/orders", json={"failure_type": "BROKEN"})
    assert (refused.status_code, refused.json()["error"]) == (400, "Invalid failure type 'BROKEN': expected "
                                                                   "FAILED or SKIPPED")  # fmt: skip
    ids = [event_id(failed), *(r["event_id"] for r in batch.json()["results"])]
    found = ingested(warehouse, api_settings, ids)
    columns = ("event_type", "partition", "run_id", "failure_type", "failure_reason", "data_version", "description",
               "metadata", "source")  # fmt: skip
    assert [tuple(found[i][c] for c in columns) for i in ids] == [
        ("materialization_failure", "2024-06-01", "run-7", "FAILED", "UPSTREAM_FAILED_TO_MATERIALIZE", "",
         "raw/orders failed", {"try": "2"}, "http"),
        ("materialization_failure", "", "", "SKIPPED", "RUN_TERMINATED", "", "", {}, "http"),
        ("materialization_failure", "", "", "FAILED", "UNKNOWN", "", "", {}, "http"),
    ]  # fmt: skip


def test_each_error_status_and_message(client: httpx.Client) -> None:
    wait_known_assets_loaded(client)
    cases: list[tuple[httpx.Response, int, str]] = [
        (client.post(f"{CHECK}/a", json={"passed": True}), 400, "Missing required field: check_name"),
        (client.post(f"{CHECK}/a", json={"check_name": "c"}), 400, "Missing required field: passed"),
        (client.post(f"{CHECK}/a", json={"check_name": "c", "passed": "true"}), 400, "'passed' must be a boolean"),
        (client.post(f"{CHECK}/a", params={"check_name": "c", "passed": "True"}), 400, "'passed' must be a boolean"),
        (client.post(f"{CHECK}/a", json={"check_name": "c", "passed": True, "severity": "warn"}), 400,
         "Invalid severity 'warn': expected WARN or ERROR"),
        # the seed document's quality-check pattern sends INFO when a check passed: WARN and ERROR only here
        (client.post(f"{CHECK}/a", json={"check_name": "c", "passed": True, "severity": "INFO"}), 400,
         "Invalid severity 'INFO': expected WARN or ERROR"),
        (client.post(f"{MAT}/a", content=b'{"metadata": {},\n}', headers={"content-type": "application/json"}), 400,
         "Malformed JSON body"),
        (client.post(f"{MAT}/a", json=[1, 2]), 400, "Request body must be a JSON object, got array"),
        (client.post(f"{MAT}/", json={}), 400, "Missing required field: asset_key"),
        # the path key wins, but a malformed body key is still refused, as the document says
        (client.post(f"{MAT}/a", json={"asset_key": 5}), 400, "Field 'asset_key' must be a list of strings"),
        (client.post(f"{MAT}/", json={"asset_key": 5}), 400, "Field 'asset_key' must be a list of strings"),
        (client.post(f"{MAT}/a", json={"partition": 20240115}), 400, "Field 'partition' must be a string, got number"),
        (client.post(f"{MAT}/a", json={"tags": {"bad key": "x"}}), 400, "tags.bad key"),
        (client.post(f"{MAT}/a", json={"metadata": {"n": {"type": "int", "value": "x"}}}), 400,
         "Invalid int value for metadata entry 'n'"),
        (client.post(f"{MAT}/a", params={"metadata": "{oops"}), 400, "Field 'metadata' is not valid JSON"),
        (client.post(f"{MAT}/a/", json={}), 400, "asset_key[1]"),
        (client.post(f"{MAT}/a", json={"metadata": {"deep": _nested(40)}}), 400, "ASSETPIPE_HTTP_MAX_JSON_DEPTH"),
        (client.post(f"{MAT}/a", json={"description": "x" * 70_000}), 400, "ASSETPIPE_HTTP_MAX_STRING_CHARS"),
        (client.post(f"{MAT}/a", json={"metadata": {str(i): i for i in range(1001)}}), 400,
         "ASSETPIPE_HTTP_MAX_METADATA_ENTRIES"),
        (client.post(f"{OBS}/invalid/asset", json={}), 404, "Asset key 'invalid/asset' not found"),
        (client.post("/report_asset_materialization_failure/invalid/asset"), 404,
         "Asset key 'invalid/asset' not found"),
        (client.post(f"{CHECK}/invalid/asset", json={"check_name": "c", "passed": True}), 404,
         "Asset key 'invalid/asset' not found"),
        (client.get(f"{MAT}/a"), 405, "Method GET not allowed"),
        (client.put(f"{MAT}/a"), 405, "Method PUT not allowed"),
        (client.post("/report_asset_nothing/a"), 404, "Not found: POST /report_asset_nothing/a"),
        (client.post(f"{MAT}/a", content=b"x" * 1_100_000, headers={"content-type": "application/json"}), 413,
         "ASSETPIPE_HTTP_MAX_BODY_BYTES"),
        (client.post(f"{MAT}/a", content=b"a=b", headers={"content-type": "application/x-www-form-urlencoded"}), 415,
         "Unsupported content type 'application/x-www-form-urlencoded'"),
        (client.post(f"{MAT}/a", content=b"{}", headers={"content-type": "text/plain"}), 415, "Unsupported content"),
    ]  # fmt: skip
    for response, status, message in cases:
        assert response.status_code == status, (message, response.text)
        body = response.json()
        assert body["status"] == ("success" if status == 200 else "error")
        assert message in body.get("error", body["status"]), body
    assert client.delete(f"{MAT}/a").headers["allow"] == "POST"


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"x": value}
    return value


def test_api_keys_scopes_and_reporting_user(settings_factory: Callable[..., Settings], warehouse: Warehouse) -> None:
    keys = f"{hash_key('k-admin')}:name=admin;{hash_key('k-etl')}:name=etl:types=materialization:prefixes=sales/"
    settings = settings_factory(http_port=free_port(), api_keys=keys)
    with serving(settings) as client:
        assert client.post(f"{MAT}/sales/x").status_code == 401
        assert client.post(f"{MAT}/sales/x").json()["error"].startswith("Missing API key")
        assert client.post(f"{MAT}/sales/x", headers={"X-API-Key": "nope"}).json() == {
            "status": "error", "error": "Invalid API key"}  # fmt: skip
        by_header = client.post(f"{MAT}/sales/x", headers={"X-API-Key": "k-etl"})
        by_bearer = client.post(f"{MAT}/ops/y", headers={"Authorization": "Bearer k-admin"})
        outside = client.post(f"{MAT}/salesforce/x", headers={"X-API-Key": "k-etl"})
        wrong_type = client.post(f"{CHECK}/sales/x", json={"check_name": "c", "passed": True},
                                 headers={"X-API-Key": "k-etl"})  # fmt: skip
        assert outside.status_code == 403 and "asset 'salesforce/x'" in outside.json()["error"]
        assert wrong_type.status_code == 403
        assert wrong_type.json()["error"] == "API key 'etl' may not report check events (allowed: materialization)"
        assert client.get("/healthz").status_code == 200  # operability endpoints stay open
        ids = [event_id(by_header), event_id(by_bearer)]
    found = ingested(warehouse, settings, ids)
    assert found[ids[0]]["tags"] == {"dagster/reporting_user": "etl"}
    assert found[ids[1]]["tags"] == {"dagster/reporting_user": "admin"}


def test_known_assets_come_from_the_accepted_stream_and_the_warehouse(
    settings_factory: Callable[..., Settings], warehouse: Warehouse
) -> None:
    settings = settings_factory(http_port=free_port())
    asset = f"known_{uuid.uuid4().hex[:8]}"
    with serving(settings) as client:
        materialized = event_id(client.post(f"{MAT}/{asset}"))
        assert client.post(f"{OBS}/{asset}").status_code == 200  # accepted by this server a moment ago
    ingested(warehouse, settings, [materialized])  # the ingest worker has put it on the accepted stream
    with serving(settings) as client:  # a fresh server: its cache is fed by the accepted stream
        wait_known_assets_loaded(client)
        assert client.post(f"{OBS}/{asset}").status_code == 200
        assert client.post(f"{OBS}/never_{asset}").status_code == 404
    empty_stream = settings_factory(http_port=free_port())  # new topics: nothing accepted there
    with serving(empty_stream, known_seed=warehouse_seed(empty_stream, warehouse)) as client:
        wait_known_assets_loaded(client)
        assert client.post(f"{CHECK}/{asset}", json={"check_name": "c", "passed": True}).status_code == 200
        assert client.post(f"{CHECK}/never_{asset}", json={"check_name": "c", "passed": True}).status_code == 404
    declared = Definitions(assets=[f"declared/{asset}"])  # assets a definitions file declares
    with serving(empty_stream, known_seed=known_seed(empty_stream, warehouse, declared)) as client:
        wait_known_assets_loaded(client)
        assert client.post(f"{OBS}/declared/{asset}").status_code == 200
        assert client.post(f"{CHECK}/{asset}", json={"check_name": "c", "passed": True}).status_code == 200
        assert client.post(f"{OBS}/undeclared/{asset}").status_code == 404
    lenient = settings_factory(http_port=free_port(), http_require_known_assets=False)
    with serving(lenient) as client:
        assert client.post(f"{OBS}/never_{asset}").status_code == 200
        assert client.get("/readyz").json()["known_assets"] == "off"


def test_operability_endpoints(client: httpx.Client) -> None:
    event_id(client.post(f"{MAT}/ops/metrics", json={"partition": "p"}))
    client.post(f"{CHECK}/ops/metrics", json={})
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    metrics = client.get("/metrics").text
    assert 'assetpipe_http_requests_total{endpoint="/report_asset_materialization",status="200"} 1.0' in metrics
    assert 'assetpipe_http_requests_total{endpoint="/report_asset_check",status="400"} 1.0' in metrics
    assert "assetpipe_http_publish_latency_seconds_count 1.0" in metrics
    assert "assetpipe_http_events_in_flight 0.0" in metrics
    document = client.get("/openapi.json").json()
    assert document["openapi"] == "3.1.0" and "/report_asset_events" in document["paths"]
    docs = client.get("/docs")
    assert docs.headers["content-type"].startswith("text/html") and "/report_asset_check/{asset_key}" in docs.text
