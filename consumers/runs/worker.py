"""The run worker: consumes ``run_requests``, runs each request's job of this code location, records the
run (``runs``, one row per status: started, then succeeded or failed) and its events (``run_events``),
and publishes the asset events its ops emitted onto ``asset_events``, where they can trigger further
sensors.

A webhook job, or a job not defined here while ``ASSETPIPE_RUN_WEBHOOK_URL`` is set, is POSTed to its
URL instead and recorded as ``launched``. At least once: a request whose run already finished (launched,
succeeded or failed) is skipped, so a redelivered or republished request runs once; a run cut off by a
crash is run again. Runs execute one after another in the loop's thread; more run workers in the
group run more at a time.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Message

from assetpipe.consumers.exceptions import LaunchError, WarehouseUnavailableError
from assetpipe.consumers.handler import Decoded, Decoding, Outbound, Outcome, dead_letter
from assetpipe.consumers.loop import ConsumerLoop
from assetpipe.consumers.registry import AssetRegistry
from assetpipe.consumers.runs.execution import JobExecutor, RunEvent, RunResult
from assetpipe.consumers.runs.launcher import WebhookLauncher
from assetpipe.consumers.runs.store import RunStore
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.definitions.jobs import JobDefinition
from assetpipe.definitions.loader import Definitions
from assetpipe.definitions.materialize import data_versions
from assetpipe.definitions.ops import DefinitionError
from assetpipe.producers.publisher import Publisher
from assetpipe.schemas.codec import codec_for
from assetpipe.schemas.encoder import EventEncoder
from assetpipe.schemas.errors import ValidationError
from assetpipe.schemas.model import now_us
from assetpipe.schemas.run_request import run_request_json
from assetpipe.schemas.settings import Settings

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RunMetrics:
    succeeded: int = 0
    failed: int = 0
    launched: int = 0
    skipped: int = 0


class RunHandler:
    def __init__(
        self, defs: Definitions, warehouse: Warehouse, settings: Settings, encoder: EventEncoder, publisher: Publisher
    ) -> None:
        self.metrics = RunMetrics()
        self._defs = defs
        self._store = RunStore(warehouse)
        self._settings = settings
        self._encoder = encoder
        self._publisher = publisher
        self._events_topic = settings.topics.events
        self._dlq = settings.topics.dlq
        self._stop = threading.Event()
        self._executor = JobExecutor(wait=lambda seconds: self._stop.wait(seconds))
        self._migrated = False

    def watch(self, stop: threading.Event) -> None:
        """Retry waits end when ``stop`` is set: a stopping worker finishes its runs without waiting."""
        self._stop = stop

    def prepare(self) -> None:
        """Apply the DDL and register the location's assets in the registry. Done once; retried while
        ClickHouse is unavailable."""
        if not self._migrated:
            self._store.warehouse.migrate()
            summary = AssetRegistry(self._store.warehouse).register_location(
                self._defs.location, self._defs.assets, now_us(), self._defs.monitors()
            )
            counts = summary.counts()
            if any(counts[outcome] for outcome in ("added", "changed", "removed")):
                log.info("code location %s: assets %s", self._defs.location, counts)
            self._migrated = True

    def handle(self, events: Sequence[Decoded], batch: Sequence[Message]) -> Outcome:
        self.prepare()
        outbound: list[Outbound] = []
        requests: list[dict[str, Any]] = []
        for event in events:
            if event.event_type != "run_request":
                error = ValidationError("event_type", f"a {event.event_type} event on the run_requests topic")
                outbound.append(dead_letter(event.message, self._dlq, error))
            elif event.record["code_location"] == self._defs.location:  # other locations run their own
                requests.append(event.record)
        done = self._store.finished({r["run_id"] for r in requests})
        for request in requests:
            if request["run_id"] in done:
                self.metrics.skipped += 1
                continue
            done.add(request["run_id"])  # the same request twice in one batch
            self._run(request)
        return Outcome(outbound)

    def _run(self, request: dict[str, Any]) -> None:
        job = self._defs.job(request["job_name"])
        selection = request.get("asset_selection") or []
        if job is not None and job.webhook_url is None and selection:
            try:  # a run of some of the assets: the job narrowed to them
                job = self._defs.asset_job(selection, name=request["job_name"])
            except DefinitionError as exc:
                self._store.status(request, "failed", error=str(exc))
                self.metrics.failed += 1
                return
        url = job.webhook_url if job is not None else self._settings.run_webhook_url
        if job is None or job.webhook_url is not None:
            if url is None:
                self._store.status(
                    request,
                    "failed",
                    error=f"job {request['job_name']!r} is not defined in code location {self._defs.location!r}",
                )
                self.metrics.failed += 1
                return
            self._launch(request, url, job)
        else:
            self._execute(request, job)

    def _execute(self, request: dict[str, Any], job: JobDefinition) -> None:
        run_id = request["run_id"]
        started = now_us()
        self._store.status(request, "started", started_us=started)
        with data_versions(self._store):  # provenance: the upstream assets' current data versions
            result = self._executor.execute(
                job,
                run_id=run_id,
                run_config=json.loads(request.get("run_config") or "{}"),
                tags=request.get("tags"),
                partition_key=request.get("partition_key"),
            )
        try:
            encoded = [self._encoder.encode_event(event) for event in result.asset_events]
        except ValidationError as exc:  # an asset event the job emitted breaks the contract
            encoded = []
            result.succeeded = False
            result.error_type, result.error_message = type(exc).__name__, f"an emitted asset event is invalid: {exc}"
        # published (and acknowledged) before the run is recorded as finished: a run that finished has its
        # events on the topic; one cut off before is run again, with the same event ids
        for _event_id, key, value in encoded:
            self._publisher.send(self._events_topic, key, value)
        self._publisher.flush(60)
        finished = now_us()
        status = "succeeded" if result.succeeded else "failed"
        closing = RunEvent(
            "run_success" if result.succeeded else "run_failure",
            message=result.error_message,
            error_type=result.error_type,
            timestamp_us=finished,
        )
        self._store.events(run_id, job.name, [RunEvent("run_started", timestamp_us=started), *result.events, closing])
        self._store.status(request, status, started_us=started, finished_us=finished, result=result)
        if result.succeeded:
            self.metrics.succeeded += 1
        else:
            self.metrics.failed += 1
            log.warning("run %s of job %s failed: %s", run_id, job.name, result.error_message)

    def _launch(self, request: dict[str, Any], url: str, job: JobDefinition | None) -> None:
        s = self._settings
        launcher = WebhookLauncher(
            url,
            headers=job.webhook_headers if job is not None else None,
            timeout_s=s.run_webhook_timeout_s,
            attempts=s.run_webhook_attempts,
            backoff_s=s.run_webhook_backoff_s,
        )
        started = now_us()
        try:
            attempts = launcher.launch(run_request_json(request))
        except LaunchError as exc:
            finished = now_us()
            self._store.events(
                request["run_id"],
                request["job_name"],
                [RunEvent("run_failure", message=str(exc), error_type=type(exc).__name__, timestamp_us=finished)],
            )
            self._store.status(request, "failed", started_us=started, finished_us=finished, error=str(exc))
            self.metrics.failed += 1
            return
        finished = now_us()
        self._store.events(
            request["run_id"],
            request["job_name"],
            [RunEvent("run_launched", message=f"POSTed to {url} (attempt {attempts})", timestamp_us=finished)],
        )
        self._store.status(
            request,
            "launched",
            started_us=started,
            finished_us=finished,
            result=RunResult(succeeded=True, attempts=attempts),
        )
        self.metrics.launched += 1


class RunWorker:
    """The run worker: a ``ConsumerLoop`` on ``run_requests`` with the ``RunHandler``, in consumer group
    ``<run_group_id>.<code location>``."""

    def __init__(self, settings: Settings, defs: Definitions, warehouse: Warehouse | None = None) -> None:
        self.settings = settings
        self.defs = defs
        self.warehouse = warehouse or Warehouse.from_settings(settings)
        events_codec = codec_for(settings, settings.topics.events)
        requests_codec = codec_for(settings, settings.topics.run_requests)

        def event_id(value: bytes) -> str:  # what a failure report names (the fallback: the message's key)
            return str(events_codec.decode(value)[1]["event_id"])

        # the loop's publisher: a run's events go out through it, acknowledged before the run is recorded
        self.publisher = Publisher.from_settings(settings, receipts=False, label=event_id)
        self.handler = RunHandler(
            defs, self.warehouse, settings, EventEncoder(events_codec, source="run"), self.publisher
        )
        self.group_id = f"{settings.run_group_id}.{defs.location}"
        self.loop = ConsumerLoop(
            settings,
            group_id=self.group_id,
            topics=[settings.topics.run_requests],
            handler=Decoding(self.handler, requests_codec, settings.topics.dlq),
            retryable=(WarehouseUnavailableError,),
            publisher=self.publisher,
            max_rows=100,
            max_seconds=0.05,
            idle_seconds=0.1,
            # a long run keeps the loop from polling: the group must not take its partitions meanwhile;
            # a short fetch wait (the longest a broker may hold a fetch) starts a new run promptly
            consumer_overrides={"max.poll.interval.ms": int(settings.run_timeout_s * 1000), "fetch.wait.max.ms": 50},
        )

    def status(self) -> dict[str, object]:
        return {**self.loop.metrics.as_dict(), **dataclasses.asdict(self.handler.metrics)}

    def run(self, stop: threading.Event) -> None:
        self.handler.watch(stop)
        try:
            self.handler.prepare()
        except WarehouseUnavailableError as exc:
            log.warning("run worker starts without ClickHouse (retried on the first batch): %s", exc)
        try:
            self.loop.run(stop)
        finally:
            self.publisher.close(10)
