"""The asset keys known to exist, so an observation or check of an asset that never was is refused (404).

An asset is known once materialized: seen on the accepted stream (``settings.topics.accepted``, read
from the beginning by a consumer of our own that assigns partitions directly, with no group and no
commits), or found in the warehouse at start (when the caller can query it: the embedded broker keeps
nothing across restarts, the warehouse does), or accepted by this server a moment ago (so a client that
materializes and then observes is not refused before the ingest worker caught up).

The request path only does a set lookup. Until the stream has been read to its end (and the warehouse
seed has answered) every key counts as known: a cache still loading must not refuse real assets.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from assetpipe.schemas.codec import SINGLE_OBJECT_MARKER, codec_for
from assetpipe.schemas.errors import AssetpipeError, DecodeError
from assetpipe.schemas.settings import Settings

log = logging.getLogger(__name__)

Seed = Callable[[], Iterable[str]]
_REFRESH_S = 5.0  # how often new partitions (or a recreated topic) are looked for


class KnownAssets:
    def __init__(self, settings: Settings, seed: Seed | None = None) -> None:
        self._settings = settings
        self._seed = seed
        self._keys: set[str] = set()
        self._stream_loaded = False
        self._seed_loaded = seed is None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._codec = codec_for(settings, settings.topics.events)
        self._writers = self._codec.schemas.writers

    def __contains__(self, asset_key: str) -> bool:
        """True if known, and for every key while the cache is still loading."""
        return asset_key in self._keys or not (self._stream_loaded and self._seed_loaded)

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def loaded(self) -> bool:
        return self._stream_loaded and self._seed_loaded

    def add(self, asset_key: str) -> None:
        self._keys.add(asset_key)

    def update(self, asset_keys: Iterable[str]) -> None:
        """Keys known from elsewhere: materialized (a warehouse seed) or defined in code."""
        self._keys.update(asset_keys)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="http-known-assets", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        if self._seed is not None:
            try:
                self.update(self._seed())
            except AssetpipeError as exc:
                log.warning("known assets: the warehouse could not be read (%s); using the accepted stream only", exc)
            self._seed_loaded = True
        try:
            self._follow()
        except Exception:  # the API keeps serving; unknown assets are then let through
            log.exception("known assets: following the accepted stream stopped")
            self._stream_loaded = False

    def _follow(self) -> None:
        topic = self._settings.topics.accepted
        consumer = Consumer(
            {
                **self._settings.as_librdkafka_dict(),
                "group.id": f"assetpipe-http-known-{uuid.uuid4().hex[:12]}",  # never joined: partitions are assigned
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "enable.partition.eof": True,
                "fetch.wait.max.ms": 100,  # an empty stream is read to its end sooner
                "reconnect.backoff.max.ms": 1000,
                "logger": logging.getLogger("producers.librdkafka"),
            }
        )
        assigned: set[int] = set()
        at_end: set[int] = set()
        next_refresh = 0.0
        try:
            while not self._stop.is_set():
                if time.monotonic() >= next_refresh:
                    next_refresh = time.monotonic() + _REFRESH_S
                    partitions = self._partitions(consumer, topic)
                    new = (partitions or set()) - assigned
                    if new:
                        consumer.incremental_assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in new])
                        assigned |= new
                    if partitions == set() and not assigned:
                        self._stream_loaded = True  # no such topic: nothing was ever accepted
                for message in consumer.consume(5000, 0.5):
                    error = message.error()
                    if error is None:
                        self._on_message(message.key(), message.value())
                    elif error.code() == KafkaError._PARTITION_EOF:
                        at_end.add(message.partition())  # type: ignore[arg-type]
                        if at_end >= assigned:
                            self._stream_loaded = True
        finally:
            consumer.close()

    def _on_message(self, key: bytes | None, value: bytes | None) -> None:
        if key is None or value is None:
            return
        if value[:2] == SINGLE_OBJECT_MARKER:
            writer = self._writers.get(value[2:10])
            event_type = writer.event_type if writer is not None else None
        else:
            try:
                event_type = self._codec.decode(value)[0]
            except DecodeError:
                return
        if event_type == "materialization":
            self._keys.add(key.decode())

    @staticmethod
    def _partitions(consumer: Consumer, topic: str) -> set[int] | None:
        """The topic's partitions; empty if it does not exist; None if the broker did not answer."""
        try:
            metadata = consumer.list_topics(topic, timeout=2.0).topics.get(topic)
        except KafkaException:
            return None
        if metadata is None:
            return set()
        if metadata.error is not None:
            return set() if metadata.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART else None
        return set(metadata.partitions)
