"""The ingest worker: consumers of ``asset_events`` in one consumer group, each a ``ConsumerLoop``
(overlapped) with an ``IngestHandler`` and a ClickHouse session of its own.

Most of a batch's time goes to ClickHouse, which runs outside Python's interpreter lock, so several
consumers in one process can use several cores (``ASSETPIPE_INGEST_CONSUMERS``); the group shares the topic's
partitions among them, and among the consumers of other worker processes, as it would between
replicas.
"""

from __future__ import annotations

import gc
import threading
import time
from dataclasses import asdict, fields

from assetpipe.consumers.exceptions import WarehouseUnavailableError
from assetpipe.consumers.ingest.handler import IngestHandler, IngestMetrics
from assetpipe.consumers.loop import ConsumerLoop, LoopMetrics
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.schemas.codec import codec_for
from assetpipe.schemas.settings import Settings

# Python's collector runs on allocation counts: a batch holds 100,000 messages, and every collection of
# the generations they reach walks them all again, holding the interpreter lock the consumers share
# (~8% of it, measured). While the worker runs, collection happens on a clock instead: the messages are
# freed by reference counting, and the rare cyclic garbage waits at most this long.
_COLLECT_EVERY_S = 30.0


class IngestConsumer:
    """One consumer of the group: a loop, its handler, and its warehouse session."""

    def __init__(self, settings: Settings, warehouse: Warehouse, key_filter_max_bytes: int | None = None) -> None:
        self.warehouse = warehouse
        # the warehouse takes integer microseconds as they are
        codec = codec_for(settings, settings.topics.events, timestamp_micros=True)
        self.handler = IngestHandler(warehouse, codec, settings, key_filter_max_bytes=key_filter_max_bytes)
        self.loop = ConsumerLoop(
            settings,
            group_id=settings.ingest_group_id,
            topics=[settings.topics.events],
            handler=self.handler,  # it takes the messages as they came, and frames them in prepare
            retryable=(WarehouseUnavailableError,),
            overlap=True,  # ClickHouse works on one batch while the next is gathered and framed
            # a broker may hold a fetch this long when no data is waiting (the embedded one does, even when data
            # arrives meanwhile): it bounds how long a lone event, such as a check's verdict, waits to be fetched
            consumer_overrides={"fetch.wait.max.ms": 100},
        )


class IngestWorker:
    """``consumers`` consumers (default ``settings.ingest_consumers``). Given a ``warehouse``, one
    consumer uses it; otherwise each opens a session of its own, closed when the worker stops. The
    consumers share ``ASSETPIPE_INGEST_KEY_FILTER_MAX_MB`` evenly."""

    def __init__(self, settings: Settings, warehouse: Warehouse | None = None, *, consumers: int | None = None) -> None:
        self.settings = settings
        count = consumers or (1 if warehouse is not None else settings.ingest_consumers)
        self._owned: list[Warehouse] = []
        sessions = [warehouse] if warehouse is not None else []
        while len(sessions) < count:
            own = Warehouse.from_settings(settings)
            self._owned.append(own)
            sessions.append(own)
        # the worker's key filters together stay within ASSETPIPE_INGEST_KEY_FILTER_MAX_MB
        filter_bytes = (settings.ingest_key_filter_max_mb << 20) // count
        self.consumers = [IngestConsumer(settings, session, filter_bytes) for session in sessions]
        self.warehouse = sessions[0]

    @property
    def metrics(self) -> LoopMetrics:
        """The consumers' loop metrics together: counts added up, the slowest last batch, the lag summed,
        a state other than running if any consumer has one."""
        parts = [c.loop.metrics for c in self.consumers]
        total = LoopMetrics()
        for name in ("consumed", "batches", "dead_lettered", "retries"):
            setattr(total, name, sum(getattr(m, name) for m in parts))
        lags = [m.lag for m in parts if m.lag is not None]
        total.lag = sum(lags) if lags else None
        total.state = next((m.state for m in parts if m.state != "running"), "running")
        total.last_error = next((m.last_error for m in parts if m.last_error), None)
        total.last_batch_seconds = max(m.last_batch_seconds for m in parts)
        return total

    def status(self) -> dict[str, object]:
        handled = IngestMetrics()
        for consumer in self.consumers:
            for f in fields(IngestMetrics):
                setattr(handled, f.name, getattr(handled, f.name) + getattr(consumer.handler.metrics, f.name))
        return {**self.metrics.as_dict(), **asdict(handled), "consumers": len(self.consumers)}

    def run(self, stop: threading.Event) -> None:
        """Run every consumer until ``stop``; if one fails, stop the others and raise its error."""
        failed = threading.Event()
        errors: list[BaseException] = []
        ending = threading.Event()

        def watch() -> None:  # one stop for all: the caller's, or a consumer's failure
            collected = time.monotonic()
            while not (stop.wait(0.1) or failed.is_set()):
                if time.monotonic() - collected >= _COLLECT_EVERY_S:
                    gc.collect()
                    collected = time.monotonic()
            ending.set()

        def run_one(consumer: IngestConsumer) -> None:
            try:
                consumer.loop.run(ending)
            except BaseException as exc:
                errors.append(exc)
                failed.set()

        threads = [threading.Thread(target=watch, name="ingest-stop", daemon=True)]
        threads += [
            threading.Thread(target=run_one, args=(c,), name=f"ingest-{i}") for i, c in enumerate(self.consumers)
        ]
        collecting = gc.isenabled()
        gc.freeze()  # what exists before the worker outlives it: no collection needs to walk it
        gc.disable()
        try:
            for thread in threads:
                thread.start()
            for thread in threads[1:]:
                thread.join()
        finally:
            ending.set()
            if collecting:
                gc.enable()
            gc.unfreeze()
            for own in self._owned:
                own.close()
        if errors:
            raise errors[0]
