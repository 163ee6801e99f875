"""The ingest worker: validate, deduplicate and write asset events to ClickHouse, then publish the
accepted ones to ``asset_events.accepted``.

Exactly once into ClickHouse: a batch is inserted with an insert-deduplication token built from its
(topic, partition, offset range)s, on tables with ``non_replicated_deduplication_window`` (the
materialized-view targets too), and the business-key ``Deduplicator`` keeps an event that was already
written, or a repeated data version, from being written again. Offsets are committed by the loop only
after the insert and the publishing succeeded.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from confluent_kafka import Message

from consumers.dedup import Deduplicator, Verdict, dedup_key
from consumers.exceptions import WarehouseUnavailableError
from consumers.loop import ConsumerLoop, Decoded, LoopMetrics, Outbound, Outcome, dead_letter
from consumers.rows import EVENT_COLUMNS, EventColumns
from consumers.warehouse import Warehouse
from schemas.codec import codec_for
from schemas.errors import ValidationError
from schemas.settings import Settings
from schemas.validation import validate_record, validate_size


@dataclass(slots=True)
class IngestMetrics:
    ingested: int = 0
    duplicates: int = 0
    redelivered: int = 0
    invalid: int = 0


def batch_token(batch: Sequence[Message]) -> str:
    """Deterministic for the same messages: ``topic/partition:first-last`` ranges, hashed."""
    ranges: dict[tuple[str, int], list[int]] = {}
    for message in batch:
        offset = message.offset() or 0
        span = ranges.setdefault((message.topic() or "", message.partition() or 0), [offset, offset])
        span[0], span[1] = min(span[0], offset), max(span[1], offset)
    text = ",".join(f"{t}/{p}:{a}-{b}" for (t, p), (a, b) in sorted(ranges.items()))
    return hashlib.sha256(text.encode()).hexdigest()


class IngestHandler:
    def __init__(self, warehouse: Warehouse, dedup: Deduplicator, settings: Settings) -> None:
        self._warehouse = warehouse
        self._dedup = dedup
        self._accepted = settings.topics.accepted
        self._dlq = settings.topics.dlq
        self._max_bytes = settings.max_event_bytes
        self.metrics = IngestMetrics()
        self._migrated = False

    def handle(self, events: Sequence[Decoded], batch: Sequence[Message]) -> Outcome:
        if not self._migrated:  # also the first contact: unavailable here means pause and retry
            self._warehouse.migrate()
            self._migrated = True
        outbound: list[Outbound] = []
        valid: list[Decoded] = []
        keys: list[int] = []
        ids: list[str] = []
        max_bytes = self._max_bytes
        for event in events:
            record = event.record
            try:
                size = len(event.message.value() or b"")
                if size > max_bytes:
                    validate_size(size, max_bytes)
                validate_record(event.event_type, record)
            except ValidationError as exc:
                outbound.append(dead_letter(event.message, self._dlq, exc))
                continue
            valid.append(event)
            keys.append(dedup_key(event.event_type, record))
            ids.append(record["event_id"])
        verdicts = self._dedup.classify(keys, ids)
        rows = EventColumns()
        new_keys: list[int] = []
        new_ids: list[str] = []
        accepted = self._accepted
        for event, key, verdict in zip(valid, keys, verdicts, strict=True):
            if verdict is Verdict.DUPLICATE:
                continue
            message = event.message
            if verdict is Verdict.NEW:
                record = event.record
                rows.append(event.event_type, record, key, message.partition(), message.offset())  # type: ignore[arg-type]
                new_keys.append(key)
                new_ids.append(record["event_id"])
            outbound.append(Outbound(accepted, message.key(), message.value() or b""))
        if new_keys:
            self._warehouse.insert("asset_events", rows.columns, EVENT_COLUMNS, dedup_token=batch_token(batch))
            self._dedup.remember(new_keys, new_ids)
        self.metrics.ingested += len(new_keys)
        self.metrics.duplicates += verdicts.count(Verdict.DUPLICATE)
        self.metrics.redelivered += verdicts.count(Verdict.REDELIVERED)
        self.metrics.invalid += len(events) - len(valid)
        return Outcome(outbound)


class IngestWorker:
    """The ingest worker: a ``ConsumerLoop`` on ``asset_events`` with the ``IngestHandler``."""

    def __init__(self, settings: Settings, warehouse: Warehouse | None = None) -> None:
        self.settings = settings
        self.warehouse = warehouse or Warehouse(settings.clickhouse_dsn, settings.clickhouse_database)
        self.handler = IngestHandler(self.warehouse, Deduplicator(self.warehouse, settings.dedup_cache_size), settings)
        # the warehouse takes integer microseconds as they are
        codec = codec_for(settings, settings.topics.events, timestamp_micros=True)
        self.loop = ConsumerLoop(
            settings,
            group_id=settings.ingest_group_id,
            topics=[settings.topics.events],
            handler=self.handler,
            codec=codec,
            retryable=(WarehouseUnavailableError,),
        )

    @property
    def metrics(self) -> LoopMetrics:
        return self.loop.metrics

    def status(self) -> dict[str, object]:
        return {**self.loop.metrics.as_dict(), **asdict(self.handler.metrics)}

    def run(self, stop: threading.Event) -> None:
        self.loop.run(stop)
