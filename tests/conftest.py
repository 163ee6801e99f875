"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import pytest

from assetpipe.schemas.codec import Codec, SchemaSet


@pytest.fixture(scope="session")
def schema_set() -> SchemaSet:
    return SchemaSet()


@pytest.fixture
def codec(schema_set: SchemaSet) -> Codec:
    return Codec(schema_set)
