"""Errors of the publishing side, under the one ``AssetpipeError`` root.

``PublishError`` is the base of everything that goes wrong between "this event is valid" and "the broker
has it". An invalid event is not one of them: it raises ``schemas.errors.ValidationError`` before anything
is published. librdkafka's ``BufferError`` and ``KafkaException`` are wrapped here, in ``publisher.py``;
code above never sees them.
"""

from __future__ import annotations

from collections.abc import Sequence

from assetpipe.schemas.errors import AssetpipeError, FieldError

_SHOWN_FAILURES = 3


class PublishError(AssetpipeError):
    """An event could not be handed to Kafka (also: librdkafka refused the message at produce time)."""

    code = "publish_failed"


class PublisherClosedError(PublishError):
    code = "publisher_closed"


class QueueFullError(PublishError):
    """The local produce queue stayed full for the whole backpressure timeout. The event was not queued:
    nothing was dropped silently, the caller still holds it."""

    code = "queue_full"

    def __init__(self, event_id: str, queued: int, waited_s: float, broker_error: str | None) -> None:
        hint = f"; last broker error: {broker_error}" if broker_error else ""
        super().__init__(
            f"event {event_id} not published: the local produce queue stayed full ({queued} messages) "
            f"for {waited_s:g}s{hint}"
        )
        self.event_id = event_id
        self.queued = queued


class DeliveryError(PublishError):
    """The broker did not take one or more events (librdkafka gave up after its retries).

    ``event_ids`` and ``reasons`` are parallel tuples; ``remaining`` counts messages still queued when a
    ``flush`` raised this, which may yet be delivered.
    """

    code = "delivery_failed"

    def __init__(self, failures: Sequence[tuple[str, str]], *, remaining: int = 0) -> None:
        shown = ", ".join(f"{event_id} ({reason})" for event_id, reason in failures[:_SHOWN_FAILURES])
        more = f" and {len(failures) - _SHOWN_FAILURES} more" if len(failures) > _SHOWN_FAILURES else ""
        queued = f"; {remaining} more still queued" if remaining else ""
        noun = "event was" if len(failures) == 1 else "events were"
        super().__init__(f"{len(failures)} {noun} not delivered: {shown}{more}{queued}")
        self.event_ids = tuple(event_id for event_id, _ in failures)
        self.reasons = tuple(reason for _, reason in failures)
        self.remaining = remaining


class PublishTimeoutError(PublishError):
    """The broker had not acknowledged within the timeout. The messages are still queued and may yet be
    delivered: call ``flush`` or ``result`` again, or treat them as lost if the process exits now."""

    code = "publish_timeout"

    def __init__(self, what: str, remaining: int, timeout: float, broker_error: str | None) -> None:
        hint = f"; last broker error: {broker_error}" if broker_error else ""
        super().__init__(f"{what} not acknowledged within {timeout:g}s; {remaining} messages still queued{hint}")
        self.remaining = remaining


class BackfillError(AssetpipeError):
    """A backfill cannot go on: a file that cannot be read, a bad option. Bad records are not errors of
    the run: they are reported and rejected one by one (up to ``--max-errors``)."""

    code = "backfill_failed"


class SourceError(BackfillError):
    """A backfill file cannot be opened, or read as its format (corrupt compression, not Parquet...)."""

    code = "unreadable_file"


class MalformedRecordError(BackfillError):
    """One record of a file is not an event at all (not JSON, not an object, a CSV row of the wrong
    width). It is rejected; the run goes on."""

    code = "malformed_record"


class RecordLimitError(FieldError):
    """A field of a file record is over a bound on its shape (nesting depth, string length, metadata
    entries) or holds a number JSON cannot: the bounds of the HTTP API, the same for every producer. The
    record is rejected; the run goes on."""

    code = "limit_exceeded"
