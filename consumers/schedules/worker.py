"""The schedule worker: the ``Scheduler`` of a code location's schedules, wired to ClickHouse and to the
one Kafka writer, publishing run requests to ``run_requests`` with that topic's codec.

It consumes nothing, so it is not a consumer loop: it sleeps until the next tick. Replicas of one code
location may run side by side; each tick still runs once (see ``scheduler``).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from assetpipe.consumers.schedules.scheduler import Clock, Scheduler
from assetpipe.consumers.schedules.store import ScheduleStore
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.definitions.loader import Definitions
from assetpipe.producers.exceptions import PublishError
from assetpipe.producers.publisher import Publisher
from assetpipe.schemas.codec import codec_for
from assetpipe.schemas.settings import Settings

log = logging.getLogger(__name__)

_PUBLISH_TIMEOUT_S = 10.0  # then the tick is retried: a stopping worker does not hang on a dead broker


class ScheduleWorker:
    def __init__(
        self,
        settings: Settings,
        defs: Definitions,
        warehouse: Warehouse | None = None,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.defs = defs
        self.warehouse = warehouse or Warehouse.from_settings(settings)
        self._codec = codec_for(settings, settings.topics.run_requests)
        self._topic = settings.topics.run_requests
        self._publisher: Publisher | None = None
        remote = settings.run_webhook_url is not None
        self.scheduler = Scheduler(
            defs.schedules,
            store=ScheduleStore(self.warehouse, defs.location),
            publish=self._publish,
            job_exists=lambda name: remote or defs.job(name) is not None,
            clock=clock,
        )

    @property
    def state(self) -> str:
        return self.scheduler.metrics.state

    def status(self) -> dict[str, Any]:
        return self.scheduler.metrics.as_dict()

    def run(self, stop: threading.Event) -> None:
        try:
            self.scheduler.run(stop)
        finally:
            if self._publisher is not None:
                try:
                    self._publisher.close(_PUBLISH_TIMEOUT_S)
                except PublishError as exc:  # nothing is lost: a tick not acknowledged was not recorded either
                    log.warning("the scheduler's Kafka producer closed with: %s", exc)

    def _publish(self, records: list[dict[str, Any]]) -> None:
        """Publish the run requests and wait for the broker's acknowledgement (raises ``PublishError``)."""
        if not records:
            return
        publisher = self._live_publisher()
        for record in records:
            publisher.send(self._topic, str(record["run_id"]).encode(), self._codec.encode("run_request", record))
        publisher.flush(_PUBLISH_TIMEOUT_S)

    def _live_publisher(self) -> Publisher:
        """The publisher, replaced after a fatal error (an idempotent producer whose broker lost its state)."""
        if self._publisher is not None and self._publisher.fatal_error is not None:
            log.warning("replacing the scheduler's Kafka producer after: %s", self._publisher.fatal_error)
            old, self._publisher = self._publisher, None
            try:
                old.close(0)
            except PublishError as exc:  # what it held is published again with the tick's retry
                log.info("the old producer closed with: %s", exc)
        if self._publisher is None:
            self._publisher = Publisher.from_settings(self.settings, receipts=False)
        return self._publisher
