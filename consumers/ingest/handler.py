"""The ingest worker: validate, deduplicate and write asset events to ClickHouse, then publish the
accepted ones to ``asset_events.accepted``.

A batch is staged in ClickHouse as it came (``consumers.staging``): the Avro bodies of messages written
with a current schema go to ClickHouse's own Avro reader, so the per-event work of decoding, rendering
and deduplicating runs in ClickHouse's native code, and Python only frames bytes. Python decodes what
ClickHouse should not judge alone: messages of older schemas (read, validated and re-encoded with the
current one), rows that the SQL filter says may be invalid (``schemas.validation`` decides and names the
field), rows with metadata that only Python renders, and any batch whose staging did not come out
exactly one row per message.

Deduplication: an event with a data version is identified by (event type, asset key, partition, data
version), one without by its event id; ``ingest_sql.dedup_key_expr`` hashes the identity into the
``dedup_key`` stored with the row. Per event: NEW (written), DUPLICATE (another event holds the key:
counted, not written) or REDELIVERED (this very event was written before, e.g. before a crash: not
written again, but published downstream again, since the crash may have come before that). Every report
of an identity with a data version counts in ``asset_report_state`` (first and last reported, repeats): the
stored event through a view on ``asset_events``, a DUPLICATE through an insert of its time and event id
(its metadata is not kept). An identity is judged against the keys of the dedup window, the events ingested on
the last ``ASSETPIPE_DEDUP_WINDOW_DAYS`` days (``key_filter.OwnedKeys``); a repeat of one ingested before it is NEW.

Exactly once into ClickHouse: each insert carries an insert-deduplication token built from the batch's
(topic, partition, offset range)s, on tables with ``non_replicated_deduplication_window`` (the
materialized-view targets too), and the verdicts keep an event written once from being written again.
Offsets are committed by the loop only after the inserts and the publishing succeeded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Message

from assetpipe.consumers.exceptions import WarehouseError, WarehouseUnavailableError
from assetpipe.consumers.handler import Outbound, Outcome, dead_letter
from assetpipe.consumers.ingest import sql as ingest_sql
from assetpipe.consumers.ingest.key_filter import OwnedKeys
from assetpipe.consumers.ingest.rows import EVENT_COLUMNS, EventColumns
from assetpipe.consumers.ingest.staging import (
    EVENT_TYPE_CODES,
    FLAGS,
    LOOKUP,
    STAGE,
    TRAILER,
    VERDICTS,
    Staging,
    new_nonce,
)
from assetpipe.consumers.warehouse import Warehouse, insert_settings
from assetpipe.schemas.codec import Codec
from assetpipe.schemas.errors import AssetpipeError
from assetpipe.schemas.settings import Settings
from assetpipe.schemas.validation import validate_record, validate_size


@dataclass(slots=True)
class IngestMetrics:
    ingested: int = 0
    duplicates: int = 0
    redelivered: int = 0
    invalid: int = 0
    decoded_in_python: int = 0
    looked_up: int = 0  # keys looked up in asset_event_keys (the key filter could not rule them out)
    key_filter_bytes: int = 0  # memory of the key filter
    key_filter_load_seconds: float = 0.0  # spent loading the window's keys into it


def batch_token(batch: Sequence[Message], spans: Mapping[tuple[str, int], Sequence[int]] | None = None) -> str:
    """Deterministic for the same messages: ``topic/partition:first-last`` ranges with the bytes of each
    range's first and last message, hashed. The bytes tell a topic deleted and created again (its
    offsets start over) from the one that was: with offsets alone, its first batches would carry the
    tokens of batches already written, and ClickHouse would drop them as repeats. ``spans``: where each
    (topic, partition) starts and ends in the batch, (first position, last position), if known."""
    if spans is None:
        spans = message_spans(batch)
    digest = hashlib.sha256()
    for (topic, partition), (first, last) in sorted(spans.items()):
        first_message, last_message = batch[first], batch[last]
        digest.update(f"{topic}/{partition}:{first_message.offset() or 0}-{last_message.offset() or 0},".encode())
        digest.update(hashlib.sha256(first_message.value() or b"").digest())
        digest.update(hashlib.sha256(last_message.value() or b"").digest())
    return digest.hexdigest()


def message_spans(batch: Sequence[Message]) -> dict[tuple[str, int], list[int]]:
    """(topic, partition) -> [position of its first message, of its last] (a partition's messages come
    in offset order)."""
    spans: dict[tuple[str, int], list[int]] = {}
    for position, message in enumerate(batch):
        where = (message.topic() or "", message.partition() or 0)
        span = spans.get(where)
        if span is None:
            spans[where] = [position, position]
        else:
            span[1] = position
    return spans


@dataclass(slots=True)
class _Staged:
    """One batch on its way through staging."""

    nonce: bytes
    decode_all: bool = False  # every message read by Python
    positions: list[int] = field(default_factory=list)  # batch positions staged, in order
    containers: dict[str, bytes] = field(default_factory=dict)  # event type -> its object container
    spans: dict[tuple[str, int], list[int]] = field(default_factory=dict)  # see ``message_spans``
    records: dict[int, tuple[str, dict[str, Any]]] = field(default_factory=dict)  # decoded in Python
    rejected: dict[int, AssetpipeError] = field(default_factory=dict)
    decoded: int = 0  # messages Python decoded (counted once the batch is written)


class IngestHandler:
    """``key_filter_max_bytes``: this handler's share of ``ASSETPIPE_INGEST_KEY_FILTER_MAX_MB`` (default all)."""

    def __init__(
        self, warehouse: Warehouse, codec: Codec, settings: Settings, *, key_filter_max_bytes: int | None = None
    ) -> None:
        self._warehouse = warehouse
        self._codec = codec
        schema_json = {t: codec.schemas.schema_json(t) for t in EVENT_TYPE_CODES}
        self._staging = Staging(codec.schemas.current, schema_json, ingest_sql.STAGED_COMPUTED)
        self._accepted = settings.topics.accepted
        self._dlq = settings.topics.dlq
        self._max_bytes = settings.max_event_bytes
        self.metrics = IngestMetrics()
        self._migrated = False
        self._window_days = settings.dedup_window_days
        max_bytes = settings.ingest_key_filter_max_mb << 20 if key_filter_max_bytes is None else key_filter_max_bytes
        self._keys = OwnedKeys(
            warehouse, settings.ingest_key_filter_bits, window_days=self._window_days, max_bytes=max_bytes
        )

    def partitions_assigned(self, partitions: Sequence[tuple[str, int]], counts: Mapping[str, int]) -> None:
        self._keys.assigned(partitions, counts)

    def partitions_revoked(self, partitions: Sequence[tuple[str, int]]) -> None:
        self._keys.revoked(partitions)

    def prepare(self, batch: Sequence[Message]) -> _Staged:
        """The batch framed for staging (Python only: nothing here touches ClickHouse)."""
        return self._frame(batch, decode_all=False)

    def handle(self, batch: Sequence[Message], prepared: Any = None) -> Outcome:
        if not self._migrated:  # also the first contact: unavailable here means pause and retry
            self._warehouse.migrate()
            self._migrated = True
        try:
            return self._handle(batch, prepared if isinstance(prepared, _Staged) else self.prepare(batch))
        except WarehouseError as exc:
            if STAGE not in str(exc):
                raise
            # the session (and its temporary tables) ended under the batch: a new one, the batch again
            raise WarehouseUnavailableError(f"the ClickHouse session was lost mid-batch: {exc}") from exc

    def _handle(self, batch: Sequence[Message], staged: _Staged) -> Outcome:
        if not self._load(staged, batch):
            staged = self._frame(batch, decode_all=True)
            if not self._load(staged, batch):
                raise WarehouseError("staging a batch did not give one row per message")
        warehouse = self._warehouse
        python_rows: list[int] = []
        for position, suspect, python in warehouse.query(ingest_sql.flagged_sql()).rows:
            was_read = position in staged.records  # read here, so already validated
            record = self._python_record(staged, batch[position], position)
            if record is None:
                continue
            if suspect and not was_read:
                try:
                    validate_record(*record)
                except AssetpipeError as exc:
                    staged.rejected[position] = exc
                    continue
            if python:
                python_rows.append(position)
        if staged.rejected or python_rows:
            flags = [(p, True) for p in staged.rejected] + [(p, False) for p in python_rows]
            warehouse.insert(FLAGS, [[p for p, _ in flags], [r for _, r in flags]], ["i", "rejected"], temporary=True)
        filtered = self._pick_lookup(staged)
        warehouse.command(ingest_sql.verdicts_sql(warehouse.database, filtered=filtered, window_days=self._window_days))
        where = "" if python_rows else f" WHERE verdict != {ingest_sql.NEW}"
        sql = f"SELECT i, dedup_key, verdict FROM {VERDICTS}{where}"
        verdicts = {int(i): (int(key), int(v)) for i, key, v in warehouse.query(sql).rows}
        token = batch_token(batch, staged.spans)
        # optimize_on_insert off: the verdicts leave no two rows of one identity in the batch, so the
        # Replacing engines' merge of the inserted block would only cost time (half the insert's)
        warehouse.command(
            ingest_sql.insert_sql(warehouse.database), settings={**insert_settings(token), "optimize_on_insert": 0}
        )
        rows = EventColumns()
        for position in python_rows:
            key, verdict = verdicts[position]
            if verdict == ingest_sql.NEW:
                message = batch[position]
                event_type, wire = staged.records[position]
                rows.append(event_type, wire, key, message.partition() or 0, message.offset() or 0)
        if len(rows):
            warehouse.insert("asset_events", rows.columns, EVENT_COLUMNS, dedup_token=f"{token}/python")
        if any(verdict == ingest_sql.DUPLICATE for _, verdict in verdicts.values()):
            # repeats are a sum: the token keeps a batch written again from counting them again
            warehouse.command(
                ingest_sql.repeats_sql(warehouse.database),
                settings={**insert_settings(f"{token}/repeats"), "optimize_on_insert": 0},
            )
        self.metrics.decoded_in_python += staged.decoded
        return self._outcome(batch, staged, verdicts)

    def _pick_lookup(self, staged: _Staged) -> bool:
        """True: the staged keys that may be stored already are in LOOKUP, only they are looked up; False:
        all are (no key filter, or it could not rule out enough)."""
        keys = self._keys.candidates(self._warehouse.query_np(ingest_sql.probe_sql())) if self._keys.enabled else None
        self.metrics.key_filter_bytes = self._keys.nbytes
        self.metrics.key_filter_load_seconds = self._keys.load_seconds
        if keys is None:
            self.metrics.looked_up += len(staged.positions)
            return False
        if len(keys):
            self._warehouse.insert(LOOKUP, [keys], ["dk"], temporary=True)
        self.metrics.looked_up += len(keys)
        return True

    def _frame(self, batch: Sequence[Message], *, decode_all: bool) -> _Staged:
        """Each message's Avro body with its trailer, in one object container per event type
        (``decode_all``: every message read by Python, as when the bytes fooled the fast path). Notes
        each partition's span in the batch on the way (``batch_token`` needs them)."""
        staged = _Staged(new_nonce(), decode_all)
        pieces: dict[str, list[bytes]] = {t: [] for t in EVENT_TYPE_CODES}
        headers = {} if decode_all else self._codec.current_headers()
        # a current header -> (where the body starts, the type's code, the extend of its pieces)
        framing = {h: (at, EVENT_TYPE_CODES[t], pieces[t].extend) for h, (t, at) in headers.items() if t in pieces}
        pack, nonce, max_bytes = TRAILER.pack, staged.nonce, self._max_bytes
        staged_at = staged.positions.append
        spans = staged.spans
        topic = (batch[0].topic() or "") if batch else ""
        span: list[int] = []
        last_partition = -1
        for position, message in enumerate(batch):
            value = message.value() or b""
            partition = message.partition() or 0
            if partition != last_partition or message.topic() != topic:
                topic = message.topic() or ""
                span = spans.setdefault((topic, partition), [position, position])
                last_partition = partition
            span[1] = position
            how = framing.get(value[:10])  # single-object: marker + fingerprint
            if how is None:
                how = framing.get(value[:5])  # Confluent: magic + schema id
            if len(value) > max_bytes:
                try:
                    validate_size(len(value), max_bytes)
                except AssetpipeError as exc:
                    staged.rejected[position] = exc
                continue
            if how is not None:
                start, code, extend = how
                extend((value[start:], pack(nonce, position, partition, message.offset() or 0, code)))
            else:
                record = self._python_record(staged, message, position)
                if record is None:
                    continue
                event_type = record[0]
                try:
                    validate_record(*record)
                    body = self._codec.encode_body(*record)
                except AssetpipeError as exc:
                    staged.rejected[position] = exc
                    continue
                code = EVENT_TYPE_CODES[event_type]
                pieces[event_type] += (body, pack(nonce, position, partition, message.offset() or 0, code))
            staged_at(position)
        staging = self._staging
        staged.containers = {t: staging.container(t, p, len(p) // 2) for t, p in pieces.items() if p}
        return staged

    def _load(self, staged: _Staged, batch: Sequence[Message]) -> bool:
        """Load a framed batch into the staging table; False when ClickHouse did not read exactly one row
        per message (Python then reads them all)."""
        warehouse, staging = self._warehouse, self._staging
        try:
            for statement in staging.truncate:
                warehouse.command(statement)
        except WarehouseUnavailableError:
            raise
        except WarehouseError:  # a new session, without the temporary tables yet (made once a session)
            for statement in staging.ddl + staging.truncate:
                warehouse.command(statement)
        for event_type, container in staged.containers.items():
            try:
                warehouse.insert_raw(STAGE, staging.columns[event_type], container, "Avro", ingest_sql.RENDER_SETTINGS)
            except WarehouseUnavailableError:
                raise
            except WarehouseError:
                if staged.decode_all:
                    raise
                return False  # bytes ClickHouse could not read: Python sorts them out
        count, carrying, distinct, high = warehouse.query(ingest_sql.framing_sql(staged.nonce)).rows[0]
        n = len(staged.positions)
        return count == n and carrying == n and distinct == n and not (n and high >= len(batch))

    def _python_record(self, staged: _Staged, message: Message, position: int) -> tuple[str, dict[str, Any]] | None:
        """The message decoded in Python (once per batch); None, with the reason kept, if it does not decode."""
        record = staged.records.get(position)
        if record is None:
            if position in staged.rejected:
                return None
            staged.decoded += 1
            try:
                record = staged.records[position] = self._codec.decode(message.value() or b"")
            except AssetpipeError as exc:
                staged.rejected[position] = exc
                return None
        return record

    def _outcome(self, batch: Sequence[Message], staged: _Staged, verdicts: dict[int, tuple[int, int]]) -> Outcome:
        """Dead letters for the rejected, ``accepted`` for the NEW and REDELIVERED, in batch order."""
        accepted, rejected, metrics = self._accepted, staged.rejected, self.metrics
        if not rejected and not verdicts:  # every event new: the whole batch goes on
            metrics.ingested += len(batch)
            return Outcome(forward=batch, forward_topic=accepted)
        outbound: list[Outbound] = []
        forward: list[Message] = []
        new = (0, ingest_sql.NEW)
        for position, message in enumerate(batch):
            error = rejected.get(position)
            if error is not None:
                outbound.append(dead_letter(message, self._dlq, error))
                metrics.invalid += 1
                continue
            verdict = verdicts.get(position, new)[1]
            if verdict == ingest_sql.DUPLICATE:
                metrics.duplicates += 1
                continue
            if verdict == ingest_sql.NEW:
                metrics.ingested += 1
            else:
                metrics.redelivered += 1
            forward.append(message)
        return Outcome(outbound, forward, accepted)
