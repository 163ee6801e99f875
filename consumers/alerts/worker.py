"""The alert worker: a ``ConsumerLoop`` on ``asset_events.accepted`` with the ``AlertHandler`` (consumer group
``ASSETPIPE_ALERT_GROUP_ID``: replicas split the assets by partition), and beside it a thread that reads the
run and tick failures ClickHouse recorded, every ``ASSETPIPE_ALERT_POLL_INTERVAL_S`` (at least a second).

Its policies are the definitions file's (``Definitions(alert_policies=[...])``) and those of the JSON file
``ASSETPIPE_ALERT_POLICIES_FILE``; ``alert_policies`` gathers them.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Sequence
from typing import Any

from assetpipe.consumers.alerts.delivery import Dispatcher
from assetpipe.consumers.alerts.handler import AlertHandler
from assetpipe.consumers.alerts.store import AlertStore
from assetpipe.consumers.exceptions import WarehouseError, WarehouseUnavailableError
from assetpipe.consumers.handler import Decoding
from assetpipe.consumers.loop import ConsumerLoop
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.definitions.alerts import AlertPolicy, load_alert_policies, unique_policies
from assetpipe.definitions.loader import Definitions
from assetpipe.schemas.codec import codec_for
from assetpipe.schemas.settings import Settings

log = logging.getLogger(__name__)


def alert_policies(settings: Settings, defs: Definitions | None = None) -> list[AlertPolicy]:
    """The definitions' policies, then the settings file's; two different policies of one name are an error."""
    policies = list(defs.alert_policies) if defs is not None else []
    if settings.alert_policies_file is not None:
        policies += load_alert_policies(settings.alert_policies_file)
    return unique_policies(policies)


class AlertWorker:
    def __init__(self, settings: Settings, policies: Sequence[AlertPolicy], warehouse: Warehouse | None = None) -> None:
        self.settings = settings
        self.policies = tuple(policies)
        self.warehouse = warehouse or Warehouse.from_settings(settings)
        self.handler = AlertHandler(
            self.policies,
            AlertStore(self.warehouse),
            Dispatcher(settings),
            settings.catalog_url,
            lookback_s=settings.alert_failure_lookback_s,
            send_concurrency=settings.alert_send_concurrency,
        )
        self.group_id = settings.alert_group_id
        codec = codec_for(settings, settings.topics.accepted)
        wait = settings.alert_batch_max_seconds
        self.loop = ConsumerLoop(
            settings,
            group_id=self.group_id,
            topics=[settings.topics.accepted],
            handler=Decoding(self.handler, codec, settings.topics.dlq),
            retryable=(WarehouseUnavailableError,),
            max_seconds=wait,
            idle_seconds=wait,
            # a broker may hold a fetch this long when no data is waiting: it bounds the wait for a new event
            consumer_overrides={"fetch.wait.max.ms": max(10, int(wait * 1000))},
        )

    def status(self) -> dict[str, Any]:
        return {**self.loop.metrics.as_dict(), **dataclasses.asdict(self.handler.metrics)}

    def run(self, stop: threading.Event) -> None:
        self.warehouse.migrate_at_start("alert worker")
        done = threading.Event()  # the loop ended (``stop`` may be the stack's, shared with other workers)
        poller = threading.Thread(target=self._poll_failures, args=(stop, done), name="alert-failures", daemon=True)
        poller.start()
        try:
            self.loop.run(stop)
        finally:
            done.set()
            poller.join()

    def _poll_failures(self, stop: threading.Event, done: threading.Event) -> None:
        """Run and tick failures, one round a poll interval, until ``stop`` or ``done``."""
        while not (done.wait(self.settings.alert_poll_interval_s) or stop.is_set()):
            try:
                self.handler.poll_failures()
            except WarehouseError as exc:  # the next round reads the same window again
                log.warning("alert worker: reading run and tick failures: %s", exc)
