"""The check worker: evaluates freshness policies, last-update freshness checks, metadata bounds and volume
anomalies on the accepted event stream and at their deadlines, and publishes the results as
``AssetCheckEvaluation`` events, which the ingest worker stores like any other (``consumers.checks.evaluator``
says when and with which ids).

Three threads. The consumer loop (group ``<check_group_id>``, topic ``asset_events.accepted``) hands each
batch's events to the evaluator and publishes what they decide before its offsets are committed. The timer
sleeps until the earliest deadline of the owned checks (woken early when an earlier one is set) and publishes
what is due. Every ``check_refresh_seconds`` the checks are read again from the registry, with the baselines
of the anomaly checks.

Restarts and replicas. A worker gaining partitions reads the latest update of their assets and the latest
stored evaluation of each check (``asset_partition_state``): a state published before a restart is not
published again, and a deadline that passed while no worker owned the asset is evaluated at once. The
evaluation ids derive from the decision, so one taken twice (a batch handled again after a crash, two
replicas during a rebalance) is stored once.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import Message

from assetpipe.consumers.checks.evaluator import (
    Evaluation,
    Evaluator,
    EventCheck,
    Stored,
    TimedCheck,
    state_of,
)
from assetpipe.consumers.exceptions import WarehouseUnavailableError
from assetpipe.consumers.handler import Decoded, Decoding, Outbound, Outcome
from assetpipe.consumers.loop import ConsumerLoop
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.producers.exceptions import PublishError
from assetpipe.producers.publisher import Publisher
from assetpipe.schemas.asset_key import AssetKey
from assetpipe.schemas.codec import Codec, codec_for
from assetpipe.schemas.encoder import EventEncoder
from assetpipe.schemas.model import AssetCheckEvaluation, now_us
from assetpipe.schemas.settings import Settings

log = logging.getLogger(__name__)

EVALUATED_BY = "assetpipe/evaluated_by"
# Every check as registered now, or None when they are as the last call returned them.
CheckSource = Callable[[], tuple[Sequence[TimedCheck], Sequence[EventCheck]] | None]
_RETRY_US = 1_000_000
_UPDATED = (
    "SELECT p.asset_key, toString(p.event_type), toUnixTimestamp64Micro(max(p.timestamp)) "
    "FROM {db}.asset_partition_state AS p WHERE p.event_type IN ('materialization', 'observation') "
    "GROUP BY p.asset_key, p.event_type"
)
# The candidates for each asset's newest partition: the greatest key and the latest materialized (the check's
# partitions definition picks between them), with when each was materialized.
_PARTITIONS = (
    "SELECT p.asset_key, p.partition, toUnixTimestamp64Micro(max(p.timestamp)) AS at "
    "FROM {db}.asset_partition_state AS p WHERE p.event_type = 'materialization' AND p.partition != '' "
    "AND p.asset_key IN {{keys:Array(String)}} GROUP BY p.asset_key, p.partition"
)
_STATES = (
    "SELECT p.asset_key, p.check_name, argMax(p.check_passed, p.timestamp), toString(argMax(p.check_severity, "
    "p.timestamp)) FROM {db}.asset_partition_state AS p WHERE p.event_type = 'check_evaluation' "
    "AND p.check_name IN {{names:Array(String)}} AND p.partition = '' GROUP BY p.asset_key, p.check_name"
)


@dataclass(slots=True)
class CheckMetrics:
    events: int = 0
    evaluations: int = 0
    deadlines: int = 0
    publish_failures: int = 0
    refreshes: int = 0


class _Watched(Decoding):
    """Decodes only the messages of assets this worker owns and checks, told by their keys (the asset key):
    the events of every other asset cost a key comparison, not an Avro decode."""

    def __init__(self, inner: CheckHandler, codec: Codec, dlq_topic: str) -> None:
        super().__init__(inner, codec, dlq_topic)
        self._evaluator = inner.evaluator

    def prepare(self, batch: Sequence[Message]) -> tuple[list[Decoded], list[Outbound]]:
        watched = self._evaluator.watched
        return super().prepare([m for m in batch if watched((m.key() or b"").decode("utf-8", "replace"))])


class CheckHandler:
    """The consumer loop's handler: events to the evaluator, its evaluations published through ``publisher``
    (acknowledged before the batch's offsets are committed)."""

    def __init__(
        self,
        settings: Settings,
        warehouse: Warehouse,
        publisher: Publisher,
        evaluator: Evaluator,
        now: Callable[[], int] = now_us,
    ) -> None:
        self.metrics = CheckMetrics()
        self.now = now
        self.evaluator = evaluator
        self._warehouse = warehouse
        self._publisher = publisher
        self._topic = settings.topics.events
        self._accepted = settings.topics.accepted
        self._encoder = EventEncoder(codec_for(settings, settings.topics.events), source="sdk", host="assetpipe-checks")
        self._publish_lock = threading.Lock()

    def handle(self, events: Sequence[Decoded], batch: Sequence[Message]) -> Outcome:
        evaluator, now = self.evaluator, self.now()
        evaluations: list[Evaluation] = []
        for event in events:
            record = event.record
            key = "/".join(record["asset_key"])  # owned and checked: only those were decoded
            self.metrics.events += 1
            if event.event_type == "check_evaluation" and (record.get("tags") or {}).get(EVALUATED_BY):
                continue  # this worker's own
            metadata = dict(_numbers(record.get("metadata") or {}))
            evaluations += evaluator.on_event(event.event_type, key, record["event_id"], int(record["timestamp"]),
                                              record.get("partition"), metadata, now)  # fmt: skip
        self.publish(evaluations)
        return Outcome()

    def publish(self, evaluations: Sequence[Evaluation]) -> None:
        """Publish and wait for the broker's acknowledgements; on failure the timed checks are evaluated again
        a second later, and ``PublishError`` is raised."""
        if not evaluations:
            return
        try:
            with self._publish_lock:
                for evaluation in evaluations:
                    _, key, value = self._encoder.encode_event(_event(evaluation),
                                                               idempotency_key=evaluation.idempotency_key)  # fmt: skip
                    self._publisher.send(self._topic, key, value)
                self._publisher.flush(30)
        except PublishError:
            self.metrics.publish_failures += 1
            self.evaluator.unpublished(evaluations, self.now() + _RETRY_US)
            raise
        self.metrics.evaluations += len(evaluations)

    def partitions_assigned(self, partitions: Sequence[tuple[str, int]], counts: Mapping[str, int]) -> None:
        owned = [p for topic, p in partitions if topic == self._accepted]
        if not owned:
            return
        evaluations = self.evaluator.assign(owned, counts.get(self._accepted, 0), self.stored(), self.now())
        try:
            self.publish(evaluations)
        except PublishError as exc:  # evaluated again by the timer
            log.warning("check evaluations due on assignment not published yet: %s", exc)

    def partitions_revoked(self, partitions: Sequence[tuple[str, int]]) -> None:
        self.evaluator.revoke(p for topic, p in partitions if topic == self._accepted)

    def stored(self) -> dict[str, Stored]:
        """Every asset's latest update per event type and the latest state of each of its timed checks."""
        db, found = self._warehouse.database, dict[str, Stored]()
        for key, kind, at in self._warehouse.query(_UPDATED.format(db=db)).rows:
            found.setdefault(str(key), Stored()).updated_us[str(kind)] = int(at)
        partitioned = self.evaluator.partitioned_assets()
        if partitioned:
            rows = self._warehouse.query(_PARTITIONS.format(db=db), parameters={"keys": sorted(partitioned)}).rows
            newest: dict[str, tuple[tuple[str, int], tuple[str, int]]] = {}
            for key, partition, at in rows:
                candidate = (str(partition), int(at))
                greatest, latest = newest.get(str(key), (candidate, candidate))
                newest[str(key)] = (max(greatest, candidate), max(latest, candidate, key=lambda c: c[1]))
            for key, candidates in newest.items():
                found.setdefault(key, Stored()).partitions.update(dict(candidates))
        names = self.evaluator.timed_check_names()
        if names:
            rows = self._warehouse.query(_STATES.format(db=db), parameters={"names": sorted(names)}).rows
            for key, name, passed, severity in rows:
                found.setdefault(str(key), Stored()).states[str(name)] = state_of(bool(passed), severity)
        return found


def _numbers(metadata: Mapping[str, object]) -> list[tuple[str, float]]:
    """The numeric entries of a decoded record's metadata (``{label: {"kind", "value"}}``)."""
    out = []
    for label, entry in metadata.items():
        value = entry.get("value") if isinstance(entry, dict) else entry
        kind = entry.get("kind") if isinstance(entry, dict) else None
        if kind in (None, "int", "float") and isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append((label, value))
    return out


def _event(evaluation: Evaluation) -> AssetCheckEvaluation:
    verdict = evaluation.verdict
    return AssetCheckEvaluation(
        AssetKey(evaluation.asset_key.split("/")),
        check_name=evaluation.check_name,
        passed=verdict.passed,
        severity=verdict.severity,  # type: ignore[arg-type]
        metadata=dict(verdict.metadata),
        description=verdict.description,
        partition=evaluation.partition,
        timestamp=datetime.fromtimestamp(evaluation.at_us / 1e6, tz=UTC),
        tags={EVALUATED_BY: "checks"},
    )


class CheckWorker:
    """The consumer loop, the timer and the refresh of the checks from ``source``."""

    def __init__(
        self,
        settings: Settings,
        source: CheckSource,
        warehouse: Warehouse | None = None,
        *,
        now: Callable[[], int] = now_us,
    ) -> None:
        """``now``: the clock checks are judged by (microseconds since the epoch)."""
        self.settings = settings
        self.source = source
        self.warehouse = warehouse or Warehouse.from_settings(settings)
        self.evaluator = Evaluator()
        self.publisher = Publisher.from_settings(settings, receipts=False)
        self.handler = CheckHandler(settings, self.warehouse, self.publisher, self.evaluator, now)
        self.now = now
        codec = codec_for(settings, settings.topics.accepted, timestamp_micros=True)
        self.loop = ConsumerLoop(
            settings,
            group_id=settings.check_group_id,
            topics=[settings.topics.accepted],
            handler=_Watched(self.handler, codec, settings.topics.dlq),
            retryable=(WarehouseUnavailableError, PublishError),
            publisher=self.publisher,
            max_seconds=0.05,
            idle_seconds=0.05,
            consumer_overrides={"fetch.wait.max.ms": 50},
        )

    def status(self) -> dict[str, object]:
        return {**self.loop.metrics.as_dict(), **dataclasses.asdict(self.handler.metrics), "checked_assets":
                self.evaluator.checked_assets()}  # fmt: skip

    def refresh(self) -> None:
        checks = self.source()
        if checks is None:
            return
        timed, event = checks
        self.handler.metrics.refreshes += 1
        self.handler.publish(self.evaluator.set_checks(timed, event, self.now()))

    def run(self, stop: threading.Event) -> None:
        done = threading.Event()  # the timer's and the refresher's: ``stop`` may be shared with other workers
        threads = [
            threading.Thread(target=self._timer, args=(stop, done), name="checks-timer", daemon=True),
            threading.Thread(target=self._refresher, args=(stop, done), name="checks-refresh", daemon=True),
        ]
        for thread in threads:
            thread.start()
        try:
            self.loop.run(stop)
        finally:
            done.set()
            with self.evaluator.changed:
                self.evaluator.changed.notify_all()
            for thread in threads:
                thread.join(5)
            self.publisher.close(10)  # the loop's publisher is this worker's: the loop does not close it

    def _refresher(self, stop: threading.Event, done: threading.Event) -> None:
        while not (stop.is_set() or done.is_set()):
            try:
                self.refresh()
            except (WarehouseUnavailableError, PublishError) as exc:
                log.warning("checks not refreshed: %s", exc)
            except Exception:
                log.exception("checks not refreshed")
            done.wait(self.settings.check_refresh_seconds)

    def _timer(self, stop: threading.Event, done: threading.Event) -> None:
        evaluator = self.evaluator
        while not (stop.is_set() or done.is_set()):
            with evaluator.changed:
                next_at = evaluator.next_deadline()
                wait = 1.0 if next_at is None else (next_at - self.now()) / 1e6
                if wait > 0:
                    evaluator.changed.wait(min(wait, 1.0))
                    continue
            due = evaluator.due(self.now())
            self.handler.metrics.deadlines += len(due)
            try:
                self.handler.publish(due)
            except PublishError as exc:
                log.warning("check evaluations not published, retried in a second: %s", exc)
                time.sleep(0.1)
