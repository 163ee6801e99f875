"""schemathesis against the real server: what ``/openapi.json`` documents is what the API does.

Every operation of the served document is exercised with requests generated from it, valid and invalid,
and every answer is checked against the document: no 5xx, documented statuses, content types, headers
and bodies, and schema-invalid data refused. Schema-valid data is not required to be accepted: three
rules the document states in words cannot be written in OpenAPI (the asset key comes from the path, the
body or the query; a check's name and result from the body or the query; a table's records share one
set of keys). Examples are bounded so the run takes well under a minute.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from assetpipe.broker import free_port
from assetpipe.schemas.settings import Settings
from tests.integration.http_server import serving

EXAMPLES_PER_OPERATION = 40


@pytest.fixture
def api_schema(settings_factory: Callable[..., Settings]) -> Iterator[schemathesis.BaseSchema]:
    with serving(settings_factory(http_port=free_port())) as client:
        yield schemathesis.openapi.from_url(f"{client.base_url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_does_what_its_document_says(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
    case.call_and_validate(timeout=30, excluded_checks=[positive_data_acceptance])
