"""The HTTP app without a broker (Starlette's in-process client, no sockets, lifespan not run): routing,
refusals before anything is published, the error format, the OpenAPI document and the docs page.

The app is not connected to a broker here, so a request that passes every check is answered 503.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openapi_spec_validator import validate
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.testclient import TestClient

from assetpipe.producers.exceptions import QueueFullError
from assetpipe.producers.http import create_app, hash_key
from assetpipe.producers.http.errors import INTERNAL_ERROR, status_for
from assetpipe.producers.http.exceptions import BrokerUnavailableError, UnknownAssetError
from assetpipe.schemas.errors import ConfigError, EventTooLargeError, FieldError
from assetpipe.schemas.settings import Settings

MAT = "/report_asset_materialization"


@pytest.fixture
def app() -> Starlette:
    return create_app(Settings(http_max_body_bytes=2048))


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    yield TestClient(app, raise_server_exceptions=False)


def test_a_valid_request_is_never_a_200_without_the_broker(client: TestClient) -> None:
    for path in (f"{MAT}/a/b", MAT, f"{MAT}/"):
        response = client.post(path, json={"asset_key": ["x"], "metadata": {"rows": 1}})
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert response.json() == {
            "status": "error",
            "error": "Event not stored: the HTTP API is not connected to the broker",
        }


def test_refusals_before_publishing(client: TestClient) -> None:
    assert client.post("/report_asset_check/a", json={"passed": True}).json() == {
        "status": "error", "error": "Missing required field: check_name"}  # fmt: skip
    too_big = client.post(f"{MAT}/a", content=b"{" + b" " * 3000 + b"}", headers={"content-type": "application/json"})
    assert too_big.status_code == 413
    assert too_big.json()["error"] == (
        "Request body is 3002 bytes, over the limit of 2048 bytes (ASSETPIPE_HTTP_MAX_BODY_BYTES)"
    )

    def chunks() -> Iterator[bytes]:  # no Content-Length: refused while streaming
        yield b"{" + b" " * 1500
        yield b" " * 1500 + b"}"

    streamed = client.post(f"{MAT}/a", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413 and "more than" in streamed.json()["error"]
    assert client.post(f"{MAT}/a", content=b"x", headers={"content-type": "text/csv"}).status_code == 415
    assert client.get(f"{MAT}/a").status_code == 405
    assert client.post("/nowhere").json()["error"] == "Not found: POST /nowhere (the endpoints are listed at /docs)"
    in_ms = client.post(f"{MAT}/a", json={"timestamp": 1_717_200_000_000})
    assert in_ms.status_code == 400
    assert in_ms.json()["error"] == (
        "Invalid timestamp 1717200000000: outside 1900-01-01 to 2299-12-31 UTC "
        "(is it in milliseconds? expected seconds since the epoch)"
    )


def test_a_materialization_failure_is_checked_as_the_other_reports(client: TestClient) -> None:
    path = "/report_asset_materialization_failure"
    bad_reason = client.post(f"{path}/a", json={"reason": "OOM"})
    assert (bad_reason.status_code, bad_reason.json()["error"]) == (400, "Invalid reason 'OOM': expected "
        "FAILED_TO_MATERIALIZE, UPSTREAM_FAILED_TO_MATERIALIZE, RUN_TERMINATED or UNKNOWN")  # fmt: skip
    bad_type = client.post(f"{path}/a?failure_type=failed")
    assert (bad_type.status_code, bad_type.json()["error"]) == (400, "Invalid failure type 'failed': expected "
        "FAILED or SKIPPED")  # fmt: skip
    assert client.post(f"{path}/a", json={"description": 5}).json()["error"] == (
        "Field 'description' must be a string, got number"
    )
    for request, key in ((f"{path}/a/b", {}), (f"{path}?asset_key=a", {}), (f"{path}/", {"asset_key": ["a"]})):
        valid = client.post(request, json={"failure_type": "SKIPPED", "run_id": "r", **key})
        assert valid.status_code == 503  # valid: only the broker is missing
    batch = client.post("/report_asset_events", json=[{"type": "materialization_failure", "asset_key": ["a"]}])
    assert batch.json()["results"][0]["code"] == 503


def test_batch_answers_per_event(client: TestClient) -> None:
    response = client.post(
        "/report_asset_events",
        content=b'{"type": "check", "asset_key": ["a"]}\n{"asset_key": ["a"]}\n7\n{"type": "run", "asset_key": ["a"]}',
        headers={"content-type": "application/x-ndjson"},
    )
    assert response.status_code == 400
    body = response.json()
    assert (body["status"], body["accepted"], body["rejected"]) == ("error", 0, 4)
    assert [r["error"] for r in body["results"]] == [
        "Missing required field: check_name",
        "Missing required field: type",
        "Event must be a JSON object, got number",
        "Invalid event type 'run': expected materialization, observation, check or materialization_failure",
    ]
    assert {r["code"] for r in body["results"]} == {400}
    valid = client.post("/report_asset_events", json=[{"type": "materialization", "asset_key": ["a"]}])
    assert valid.status_code == 503 and valid.json()["results"][0]["code"] == 503


def test_api_keys_are_checked_before_the_body_is_read() -> None:
    client = TestClient(create_app(Settings(api_keys=hash_key("secret"))))
    response = client.post(f"{MAT}/a", content=b"not even json", headers={"content-type": "application/json"})
    assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
    assert client.post(f"{MAT}/a", headers={"X-API-Key": "secret"}).status_code == 503


def test_no_keys_beyond_loopback_refuses_to_build() -> None:
    with pytest.raises(ConfigError, match="ASSETPIPE_API_KEYS"):
        create_app(Settings(http_host="0.0.0.0"))


def test_a_bug_is_a_500_without_internals(app: Starlette, client: TestClient) -> None:
    async def broken(_request: Request) -> Response:
        raise RuntimeError("secret internals: password=hunter2")

    app.add_route("/report_asset_materialization_broken", broken, methods=["POST"])
    response = client.post("/report_asset_materialization_broken")
    assert response.status_code == 500
    assert response.json() == {"status": "error", "error": INTERNAL_ERROR}
    assert "other" in client.get("/metrics").text  # counted, outside the error middleware


def test_errors_map_to_statuses_through_their_ancestors() -> None:
    assert status_for(FieldError("x", "bad")) == 400
    assert status_for(EventTooLargeError("event", "big")) == 413
    assert status_for(UnknownAssetError("a")) == 404
    assert status_for(QueueFullError("e", 1, 0.0, None)) == 503
    assert status_for(BrokerUnavailableError("down")) == 503
    assert status_for(KeyError("x")) == 500


def test_openapi_document_is_valid_and_documents_every_route(app: Starlette, client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    validate(document)
    documented = {path.replace("{asset_key}", "{asset_key:path}") for path in document["paths"]}
    routed = {route.path for route in app.routes}  # type: ignore[attr-defined]
    aliases = {MAT, "/report_asset_check", "/report_asset_observation", "/report_asset_materialization_failure"}
    assert routed - documented == aliases  # the no-slash aliases
    for path, item in document["paths"].items():
        if path.startswith("/report_asset"):
            assert {"400", "401", "413", "415", "503", "500"} <= set(item["post"]["responses"]), path
    assert "404" in document["paths"]["/report_asset_check/{asset_key}"]["post"]["responses"]
    page = client.get("/docs").text
    assert all(path in page for path in document["paths"]) and "<script" not in page
