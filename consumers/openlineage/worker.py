"""The OpenLineage worker: a ``ConsumerLoop`` on the receiver's topic (``ASSETPIPE_TOPIC_PREFIX`` +
``openlineage``, consumer group ``ASSETPIPE_OPENLINEAGE_GROUP_ID``) that writes each event as it came to
``openlineage_events`` (kept ``ASSETPIPE_OPENLINEAGE_RAW_TTL_DAYS``) and its lineage edges to
``asset_lineage_edges``.

A message is one line of JSON about the event (``producers.openlineage.receiver.envelope``: its id, kind,
type, times, run, job, assets and edges), a newline, then the event's JSON text, stored as it is. Exactly
once: each insert carries a token built from the batch's offsets (a batch written again after a crash is
dropped by ClickHouse), the raw table keeps one row an event id once merged, and an edge's aggregates are
a min, a max and a latest, which a repeat does not change. A message that is not such an envelope goes to
the dead-letter topic with its reason.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from confluent_kafka import Message

from assetpipe.consumers.exceptions import WarehouseUnavailableError
from assetpipe.consumers.handler import Outcome, dead_letter
from assetpipe.consumers.ingest.handler import batch_token
from assetpipe.consumers.loop import ConsumerLoop
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.schemas.errors import DecodeError
from assetpipe.schemas.settings import Settings

log = logging.getLogger(__name__)
RAW_COLUMNS = ("event_id", "kind", "event_type", "event_time", "received_at", "expires_at", "run_id", "job",
               "assets", "event")  # fmt: skip
EDGE_COLUMNS = ("downstream", "upstream", "seen", "run_id", "job")
_DAY_S = 86_400


@dataclass(slots=True)
class OpenLineageMetrics:
    stored: int = 0
    edges: int = 0
    invalid: int = 0


class OpenLineageHandler:
    """Writes a batch's events and edges (``prepare`` reads the envelopes; ``handle`` inserts)."""

    def __init__(self, warehouse: Warehouse, settings: Settings) -> None:
        self.warehouse = warehouse
        self.ttl_s = settings.openlineage_raw_ttl_days * _DAY_S
        self.dlq = settings.topics.dlq
        self.metrics = OpenLineageMetrics()

    def prepare(self, batch: Sequence[Message]) -> tuple[list[list[Any]], list[list[Any]], list[Any]]:
        columns: list[list[Any]] = [[] for _ in RAW_COLUMNS]
        edges: list[list[Any]] = [[] for _ in EDGE_COLUMNS]
        invalid = []
        for message in batch:
            value = message.value() or b""
            head_text, newline, event = value.partition(b"\n")
            try:
                head = orjson.loads(head_text)
                if not newline or not isinstance(head, dict):
                    raise ValueError("no JSON object on the first line")
                received = _time(head["received_us"])
                row = (
                    head["id"], head["kind"], head["event_type"], _time(head["event_time_us"]), received,
                    datetime.fromtimestamp(head["received_us"] // 1_000_000 + self.ttl_s, UTC), head["run_id"],
                    head["job"], list(head["assets"]), event.decode(),
                )  # fmt: skip
                found = [(str(down), str(up), received, head["run_id"], head["job"]) for up, down in head["edges"]]
            except (ValueError, KeyError, TypeError, OverflowError) as exc:
                reason = DecodeError(f"not an OpenLineage envelope (a JSON line, then the event): {exc}")
                invalid.append(dead_letter(message, self.dlq, reason))
                continue
            for column, value_ in zip(columns, row, strict=True):
                column.append(value_)
            for edge in found:
                for column, value_ in zip(edges, edge, strict=True):
                    column.append(value_)
        return columns, edges, invalid

    def handle(self, batch: Sequence[Message], prepared: Any) -> Outcome:
        columns, edges, invalid = prepared
        token = batch_token(batch)
        if columns[0]:
            self.warehouse.insert("openlineage_events", columns, RAW_COLUMNS, dedup_token=f"{token}/raw")
        if edges[0]:
            self.warehouse.insert("asset_lineage_edges_in", edges, EDGE_COLUMNS, dedup_token=f"{token}/edges")
        self.metrics.stored += len(columns[0])
        self.metrics.edges += len(edges[0])
        self.metrics.invalid += len(invalid)
        return Outcome(outbound=invalid)


def _time(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1e6, UTC) if type(us) is int else datetime.fromisoformat(str(us))


class OpenLineageWorker:
    def __init__(self, settings: Settings, warehouse: Warehouse | None = None) -> None:
        self.settings = settings
        self.warehouse = warehouse or Warehouse.from_settings(settings)
        self.handler = OpenLineageHandler(self.warehouse, settings)
        self.loop = ConsumerLoop(
            settings,
            group_id=settings.openlineage_group_id,
            topics=[settings.topics.openlineage],
            handler=self.handler,
            retryable=(WarehouseUnavailableError,),
        )

    def status(self) -> dict[str, Any]:
        return {**self.loop.metrics.as_dict(), **dataclasses.asdict(self.handler.metrics)}

    def run(self, stop: threading.Event) -> None:
        self.warehouse.migrate_at_start("OpenLineage worker")
        self.loop.run(stop)
