"""The sensor worker: evaluates a code location's sensors on every accepted asset event, in order per
asset; records each evaluation as a tick, with the lines the sensor wrote through ``context.log``;
publishes the run requests to ``run_requests``. An asset sensor receives the event as an
``EventLogEntry`` (Dagster's shape over the event's own fields), a multi-asset sensor ``EventLogRecord``s.

Safe to repeat. Offsets are committed after the ticks are recorded and the requests published. After a
restart or a rebalance the first events of a partition may have been evaluated already: those found in
``sensor_ticks`` are not evaluated again, and the requests recorded for them are published again (run
ids are derived, so the run worker runs each once). A run key already requested by a sensor, in this
batch or any time before, is dropped (the tick says so). A sensor seen for the first time skips events
accepted before it was registered, unless it starts at ``earliest``. A sensor that raises gets a
``failure`` tick with its traceback; the others carry on.

Started and stopped by hand. A sensor switched off (``instigator_states``, read again every half second)
is not evaluated, whatever its ``default_status``; switched on again, it evaluates the events accepted
from then on, as a sensor registered with ``start_at="latest"`` does.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Message

from assetpipe.consumers.exceptions import WarehouseUnavailableError
from assetpipe.consumers.handler import Decoded, Decoding, Outbound, Outcome
from assetpipe.consumers.ingest.handler import batch_token
from assetpipe.consumers.loop import ConsumerLoop
from assetpipe.consumers.sensors.cursors import MultiAssetCursors
from assetpipe.consumers.sensors.run_keys import RunKeys
from assetpipe.consumers.sensors.store import InstigatorStates, Override, SensorStore, cursor_text
from assetpipe.consumers.sensors.ticks import Tick
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.definitions.context import (
    ContextLog,
    EventLogEntry,
    EventLogRecord,
    MultiAssetSensorEvaluationContext,
    SensorEvaluationContext,
    collect_results,
)
from assetpipe.definitions.loader import Definitions
from assetpipe.definitions.ops import DefinitionError
from assetpipe.definitions.sensors import SensorDefinition
from assetpipe.schemas.codec import Codec, codec_for
from assetpipe.schemas.model import AssetEvent, AssetMaterialization, event_from_record, now_us
from assetpipe.schemas.run_request import tick_id_for
from assetpipe.schemas.settings import Settings

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SensorMetrics:
    evaluations: int = 0
    run_requests: int = 0
    skipped: int = 0
    failures: int = 0
    republished: int = 0


class SensorHandler:
    def __init__(
        self, defs: Definitions, warehouse: Warehouse, settings: Settings, codec: Codec, started_us: int
    ) -> None:
        self.metrics = SensorMetrics()
        self._defs = defs
        self._location = defs.location
        self._store = SensorStore(warehouse, defs.location)
        self._codec = codec
        self._topic = settings.topics.run_requests
        self._remote_jobs = settings.run_webhook_url is not None
        self._worker_id = uuid.uuid4().hex
        self._started_us = started_us
        # every sensor, running or not: a stopped one may be switched on while the worker runs
        self._index: dict[tuple[str, tuple[str, ...]], list[SensorDefinition]] = {}
        for sensor in defs.sensors:
            for event_type in sensor.event_types:
                for key in sensor.asset_keys:
                    self._index.setdefault((event_type, key.path), []).append(sensor)
        self._states = InstigatorStates(warehouse, defs.location, "sensor")
        self._cursors = MultiAssetCursors(self._store, defs.sensors, self._worker_id)
        self._registered: dict[str, int] | None = None
        self._next_offset: dict[tuple[str, int], int] = {}
        self._run_keys = RunKeys(self._store)

    def prepare(self) -> None:
        """Apply the DDL, register the sensors, load the cursors. Done once; retried while unavailable."""
        if self._registered is None:
            self._store.warehouse.migrate()
            registered = self._store.register(self._defs.sensors, self._started_us)
            self._cursors.load()
            self._registered = registered

    def handle(self, events: Sequence[Decoded], batch: Sequence[Message]) -> Outcome:
        self.prepare()
        try:
            outcome = self._handle(events, batch)
        except BaseException:
            self._cursors.rollback()
            raise
        self._cursors.commit()
        return outcome

    def _handle(self, events: Sequence[Decoded], batch: Sequence[Message]) -> Outcome:
        done = self._store.evaluated(self._unsure(events))
        states = self._states.current()
        ticks: list[Tick] = []
        for event in events:
            message = event.message
            sensors = self._index.get((event.event_type, tuple(event.record["asset_key"])))
            if not sensors or event.record["event_id"] in done:
                continue
            accepted_us = _accepted_us(message)
            made: tuple[AssetEvent, EventLogEntry] | None = None  # the event and its entry: one per event
            for sensor in sensors:
                since = self._evaluates_since(sensor, states.get(sensor.name))
                if since is None or accepted_us < since:
                    continue
                if made is None:
                    asset_event = event_from_record(event.event_type, event.record)
                    if isinstance(asset_event, AssetMaterialization):  # as multi-asset cursors keep it
                        asset_event = EventLogRecord.of(asset_event)
                    made = (asset_event, EventLogEntry(asset_event))
                if sensor.accepts(made[0]):
                    ticks.append(self._evaluate(sensor, event, *made))
        self._run_keys.apply(ticks)
        republished = self._store.recorded_requests(done)
        self._store.record(ticks, self._worker_id, f"{self._location}:{batch_token(batch)}")
        for message in batch:
            position, offset = _position(message)
            self._next_offset[position] = offset + 1
        outbound = [self._outbound(r) for t in ticks for r in t.records] + [self._outbound(r) for r in republished]
        self._run_keys.remember(ticks)
        m = self.metrics
        m.evaluations += len(ticks)
        m.run_requests += sum(len(t.records) for t in ticks)
        m.skipped += sum(t.status == "skipped" for t in ticks)
        m.failures += sum(t.status == "failure" for t in ticks)
        m.republished += len(republished)
        return Outcome(outbound)

    def _evaluate(
        self, sensor: SensorDefinition, event: Decoded, asset_event: AssetEvent, entry: EventLogEntry
    ) -> Tick:
        message = event.message
        event_id = event.record["event_id"]
        partition, offset = message.partition() or 0, message.offset() or 0
        tick_id = tick_id_for(self._location, sensor.name, event_id)
        tick = Tick(sensor, event.event_type, event.record, partition, offset, now_us(), tick_id)
        started = time.perf_counter()

        def keep(level: int, message: str) -> None:
            tick.logs.append((now_us(), logging.getLevelName(level), message))

        sensor_log = ContextLog(logging.getLogger(f"assetpipe.sensor.{sensor.name}"), keep)
        try:
            if sensor.kind == "multi_asset":
                if not isinstance(asset_event, AssetMaterialization):
                    raise DefinitionError(f"multi-asset sensor {sensor.name!r} got a {asset_event.event_type}")
                self._cursors.observe(sensor.name, asset_event)
                context = MultiAssetSensorEvaluationContext(
                    sensor_name=sensor.name,
                    code_location=self._location,
                    cursor=tick.event_id,
                    log=sensor_log,
                    monitored_assets=sensor.monitored,
                    unconsumed=self._cursors.unconsumed(sensor.name),
                )
                requests, skip = collect_results(sensor.name, sensor.fn(context))
                if requests and not context.consumed:
                    raise DefinitionError(
                        "Asset materializations have been handled in this sensor, but the cursor was not updated: "
                        "call context.advance_cursor(...) or context.advance_all_cursors() before requesting runs"
                    )
                self._cursors.consume(sensor.name, context.consumed)
            else:
                single = SensorEvaluationContext(
                    sensor_name=sensor.name, code_location=self._location, cursor=tick.event_id, log=sensor_log
                )
                requests, skip = collect_results(sensor.name, sensor.fn(*(single, entry)[: sensor.arity]))
            for request in requests:
                self._check_target(sensor, request.job_name or sensor.target)
            tick.requests = requests
            tick.skip_reason = None if skip is None else skip.skip_message or ""
        except Exception as exc:  # user code: any error becomes a failure tick
            tick.error = f"{type(exc).__name__}: {exc}"
            tick.traceback = traceback.format_exc()
            log.warning("sensor %s failed on event %s: %s", sensor.name, tick.event_id, tick.error)
        if sensor.kind == "multi_asset":
            tick.cursor = self._cursors.changes(sensor.name)
        else:
            tick.cursor = cursor_text(
                {"event_id": tick.event_id, "partition": tick.accepted_partition, "offset": tick.accepted_offset}
            )
        tick.duration_ms = (time.perf_counter() - started) * 1000
        return tick

    def _check_target(self, sensor: SensorDefinition, job_name: str | None) -> None:
        if job_name is None:
            raise DefinitionError(f"sensor {sensor.name!r} targets no job: pass job= or RunRequest(job_name=...)")
        if self._defs.job(job_name) is None and not self._remote_jobs:
            raise DefinitionError(
                f"job {job_name!r} is not defined in code location {self._location!r} "
                "(and no ASSETPIPE_RUN_WEBHOOK_URL is set to run it elsewhere)"
            )

    def _outbound(self, record: dict[str, object]) -> Outbound:
        return Outbound(self._topic, str(record["run_id"]).encode(), self._codec.encode("run_request", record))

    def _watched(self, event: Decoded) -> bool:
        return (event.event_type, tuple(event.record["asset_key"])) in self._index

    def _unsure(self, events: Sequence[Decoded]) -> list[str]:
        """Watched events that may have been evaluated already. An event right after the last one this
        worker handled on its partition was not; after a gap (a restart, a rebalance) the rest of the
        partition's batch is looked up."""
        expected = dict(self._next_offset)
        unsure = []
        for event in events:
            position, offset = _position(event.message)
            if expected.get(position) == offset:
                expected[position] = offset + 1
            else:
                expected[position] = -1
                if self._watched(event):
                    unsure.append(event.record["event_id"])
        return unsure

    def _registered_at(self, sensor: SensorDefinition) -> int:
        return (self._registered or {}).get(sensor.name, self._started_us)

    def _evaluates_since(self, sensor: SensorDefinition, override: Override | None) -> int | None:
        """The events ``sensor`` evaluates: those accepted from this time on (microseconds); None: none,
        it is stopped. Switched on by hand, it starts from then, as a sensor first registered then."""
        if override is not None:
            return override.since_us if override.running else None
        if not sensor.running:
            return None
        return self._registered_at(sensor) if sensor.start_at == "latest" else 0


def _position(message: Message) -> tuple[tuple[str, int], int]:
    """((topic, partition), offset) of a consumed message."""
    return (message.topic() or "", message.partition() or 0), message.offset() or 0


def _accepted_us(message: Message) -> int:
    kind, ms = message.timestamp()
    return now_us() if kind == TIMESTAMP_NOT_AVAILABLE else ms * 1000


class SensorWorker:
    """The sensor worker: a ``ConsumerLoop`` on ``asset_events.accepted`` with the ``SensorHandler``, in
    consumer group ``<sensor_group_id>.<code location>`` (each code location reads the whole stream)."""

    def __init__(self, settings: Settings, defs: Definitions, warehouse: Warehouse | None = None) -> None:
        self.settings = settings
        self.defs = defs
        self.warehouse = warehouse or Warehouse.from_settings(settings)
        codec = codec_for(settings, settings.topics.run_requests)
        self.handler = SensorHandler(defs, self.warehouse, settings, codec, now_us())
        self.group_id = f"{settings.sensor_group_id}.{defs.location}"
        self.loop = ConsumerLoop(
            settings,
            group_id=self.group_id,
            topics=[settings.topics.accepted],
            handler=Decoding(self.handler, codec, settings.topics.dlq),
            retryable=(WarehouseUnavailableError,),
            max_seconds=settings.sensor_batch_max_seconds,
            idle_seconds=settings.sensor_batch_max_seconds,
            # a broker may hold a fetch this long when no data is waiting: it bounds the wait for a new event
            consumer_overrides={"fetch.wait.max.ms": max(10, int(settings.sensor_batch_max_seconds * 1000))},
        )

    def status(self) -> dict[str, object]:
        return {**self.loop.metrics.as_dict(), **dataclasses.asdict(self.handler.metrics)}

    def run(self, stop: threading.Event) -> None:
        try:
            self.handler.prepare()
        except WarehouseUnavailableError as exc:
            log.warning("sensor worker starts without ClickHouse (retried on the first batch): %s", exc)
        self.loop.run(stop)
