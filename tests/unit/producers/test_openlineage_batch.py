"""The batch answer: 200 in OpenLineage's shape when any event was stored; when none was, the status the
failures share, as an error naming the first refused event, with the batch's details beside it."""

from __future__ import annotations

from assetpipe.producers.http.exceptions import BrokerUnavailableError
from assetpipe.producers.openlineage.receiver import _batch_answer
from assetpipe.schemas.errors import ValidationError


def test_a_batch_with_one_event_stored_is_a_partial_success() -> None:
    status, body, headers = _batch_answer(2, {1: ValidationError("run.runId", "Field 'run.runId' is not valid")})
    assert (status, headers, body["status"]) == (200, None, "partial_success")
    assert body["summary"] == {"received": 2, "successful": 1, "failed": 1}
    assert body["failed_events"] == [
        {"index": 1, "reason": "run.runId: Field 'run.runId' is not valid", "retriable": False}
    ]


def test_a_batch_with_nothing_stored_is_an_error_with_the_batch_details() -> None:
    refused = {0: ValidationError("job.name", "Missing required field: job.name"),
               1: ValidationError("eventTime", "Missing required field: eventTime")}  # fmt: skip
    status, body, _ = _batch_answer(2, refused)
    assert status == 400 and body["status"] == "error"
    assert body["error"] == (
        "No event was stored: event 0: job.name: Missing required field: job.name (and 1 more: see failed_events)"
    )
    assert body["summary"] == {"received": 2, "successful": 0, "failed": 2} and len(body["failed_events"]) == 2


def test_nothing_stored_because_the_broker_is_away_is_a_503_to_retry() -> None:
    status, body, headers = _batch_answer(1, {0: BrokerUnavailableError("Event not stored: the broker is unavailable")})
    assert (status, body["status"], headers) == (503, "error", {"Retry-After": "1"})
    assert body["failed_events"][0]["retriable"] is True
