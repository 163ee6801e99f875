"""Event ids: UUIDv7 for new events, UUIDv5 derived from an idempotency key."""

from __future__ import annotations

import time
import uuid

from hypothesis import given
from hypothesis import strategies as st

from assetpipe.schemas.model import _EVENT_ID_NAMESPACE, build_record, event_id_for, new_event_id
from assetpipe.schemas.validation import validate_record


def test_new_ids_are_canonical_version_7_uuids() -> None:
    for _ in range(2000):
        event_id = new_event_id()
        parsed = uuid.UUID(event_id)
        assert str(parsed) == event_id
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122


def test_new_ids_are_unique() -> None:
    ids = [new_event_id() for _ in range(100_000)]
    assert len(set(ids)) == len(ids)


def test_new_ids_carry_the_time_in_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    event_id = new_event_id()
    after = time.time_ns() // 1_000_000
    assert before <= uuid.UUID(event_id).int >> 80 <= after
    assert uuid.UUID(new_event_id(1_700_000_000_123)).int >> 80 == 1_700_000_000_123


def test_ids_of_later_milliseconds_sort_later() -> None:
    assert new_event_id(1_700_000_000_000) < new_event_id(1_700_000_000_001)


@given(st.text(max_size=30), st.text(max_size=30))
def test_idempotency_key_gives_the_uuid5_of_type_asset_and_key(asset: str, key: str) -> None:
    expected = uuid.uuid5(_EVENT_ID_NAMESPACE, f"observation\x00{asset}\x00{key}")
    assert event_id_for("observation", asset, key) == str(expected)


def test_built_records_get_valid_ids_from_their_timestamp() -> None:
    record = build_record("materialization", ["a"], source="sdk", host="h", timestamp_us=1_700_000_000_123_456)
    validate_record("materialization", record)
    assert uuid.UUID(record["event_id"]).int >> 80 == 1_700_000_000_123
