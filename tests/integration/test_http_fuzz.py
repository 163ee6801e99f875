"""A fuzzer driven by the served OpenAPI document finds no 5xx on the real server.

For every operation in ``/openapi.json`` hypothesis builds requests from the document: path keys,
the documented query parameters, bodies generated from the documented schema (hypothesis-jsonschema) or
any JSON at all, raw bytes, and documented or other content types. Every answer must be below 500, and
every error must be the documented ``{"status": "error", "error": ...}``. Examples are bounded so the test
stays fast.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from assetpipe.broker import free_port
from assetpipe.schemas.settings import Settings
from tests.integration.http_server import serving

EXAMPLES_PER_OPERATION = 20  # per operation: the document has grown to ~50 operations
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@pytest.fixture
def fuzz_target(settings_factory: Callable[..., Settings]) -> Iterator[tuple[httpx.Client, dict[str, Any]]]:
    with serving(settings_factory(http_port=free_port(), http_max_body_bytes=8192)) as client:
        client.post("/report_asset_materialization/fuzz/known")  # so some observations and checks get through
        yield client, client.get("/openapi.json").json()


def _resolved(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    """The schema with the document's components beside it, so its ``$ref``s resolve."""
    return {**schema, "components": {"schemas": document["components"]["schemas"]}}


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in document["paths"].items() for method, op in item.items()]


@st.composite
def requests(draw: st.DrawFn, document: dict[str, Any], path: str, method: str, op: dict[str, Any]) -> dict[str, Any]:
    url = path
    params: dict[str, str] = {}
    headers: dict[str, str] = {}
    for parameter in op.get("parameters", []):
        if parameter["in"] == "path":
            key = draw(st.sampled_from(["fuzz/known", "a", "a/b/c"]) | st.text(min_size=1, max_size=20))
            url = url.replace("{" + parameter["name"] + "}", quote(key, safe="/"))
        elif draw(st.booleans()):
            # a parameter has a schema, or JSON content with one (metadata and tags in the query string)
            schema = parameter.get("schema") or next(iter(parameter["content"].values()))["schema"]
            value = draw(from_schema(_resolved(schema, document)) | st.text(max_size=30))
            target = params if parameter["in"] == "query" else headers
            if parameter["in"] == "header":  # a header holds printable ASCII only
                value = "".join(c for c in str(value) if " " <= c <= "~").strip() or "k"
            target[parameter["name"]] = value if isinstance(value, str) else json.dumps(value)
    content: bytes | None = None
    body = op.get("requestBody")
    if body is not None and draw(st.booleans()):
        content_type = draw(st.sampled_from([*body["content"], "text/plain", "application/json; charset=utf-8"]))
        documented = body["content"].get(content_type.partition(";")[0])
        if documented is not None and documented["schema"].get("type") != "string" and draw(st.booleans()):
            value = draw(from_schema(_resolved(documented["schema"], document)))
        else:
            value = draw(JSON_VALUES)
        content = draw(st.just(json.dumps(value).encode()) | st.binary(max_size=64))
        headers["content-type"] = content_type
    return {"method": method.upper(), "url": url, "params": params, "headers": headers, "content": content}


# The documented metadata schema is rich: hypothesis warns when it prints a large drawn request.
@pytest.mark.filterwarnings("ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning")
def test_no_5xx_for_any_documented_operation(fuzz_target: tuple[httpx.Client, dict[str, Any]]) -> None:
    client, document = fuzz_target
    operations = _operations(document)
    assert len(operations) >= 12
    for path, method, op in operations:

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
        )
        @given(request=requests(document, path, method, op))
        def fuzz(request: dict[str, Any]) -> None:
            try:
                response = client.request(**request)
            except httpx.InvalidURL:  # httpx builds no URL this long (a drawn query string): nothing was sent
                reject()
            assert response.status_code < 500, (request, response.status_code, response.text)
            if response.headers.get("content-type", "").startswith("application/json") and response.status_code >= 400:
                body = response.json()
                assert body["status"] == "error", body
                for result in body.get("results", [body]):  # the batch endpoint answers per event
                    assert result["status"] == "success" or (isinstance(result["error"], str) and result["error"])

        fuzz()
