"""The SDK: ``Reporter`` records asset events from Python code onto the events topic.

Owns the user-facing surface of the producer side. Each ``report_*`` call builds, validates and encodes
one event (``EventEncoder``) and hands the bytes to the ``Publisher``; it returns a ``Receipt`` at once::

    with Reporter(settings=Settings.from_env()) as reporter:
        receipt = reporter.report_materialization("sales/daily", partition="2024-06-01",
                                                  metadata={"rows": 1204, "owner": "finance"})
        receipt.result(timeout=10)   # optional: wait for the broker's acknowledgement

Fire-and-forget callers ignore the receipt: a failed delivery is then raised by the next ``flush()`` or by
``close()`` (so by leaving the ``with`` block) as ``DeliveryError`` naming the event ids.

``Reporter(..., receipts=False)`` is for services that never wait on one event: ``report_*`` return the
event id alone, and librdkafka reports only failures (``delivery.report.only.error``), which ``flush()``
and ``close()`` raise as ever. A receipt's delivery report is about a fifth of what a report costs.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar, overload

from assetpipe.producers.publisher import Publisher, Receipt
from assetpipe.schemas.asset_key import AssetKey, CoercibleToAssetKey
from assetpipe.schemas.codec import codec_for
from assetpipe.schemas.encoder import EventEncoder, asset_parts
from assetpipe.schemas.errors import ConfigError
from assetpipe.schemas.model import (
    AssetEvent,
    AssetMaterializationFailure,
    FailureReason,
    FailureType,
    Severity,
    SourceKind,
)
from assetpipe.schemas.settings import Settings

R = TypeVar("R", Receipt, str)  # what a report returns: its receipt, or its event id (``receipts=False``)


class Reporter(Generic[R]):
    """Reports asset events to Kafka. One per process; threads may share it.

    ``Reporter(settings=...)`` is the main constructor; ``Reporter("host:9092")`` is shorthand for
    ``Reporter(settings=Settings(kafka_bootstrap_servers="host:9092"))`` and ``Reporter()`` uses
    ``Settings()`` (the embedded broker's port). ``source`` is recorded on every event; ``host`` defaults
    to this machine's name. ``producer_overrides`` are extra librdkafka properties applied over
    ``settings.producer_config()``, for tuning and tests (``{"message.timeout.ms": 5000}`` bounds how long
    an undeliverable event takes to fail; librdkafka's default is 5 minutes).

    Each ``report_*`` returns a ``Receipt``; with ``receipts=False`` (a ``Reporter[str]``) it returns the
    event id, and a failed delivery reaches the caller only through ``flush()`` or ``close()``.

    Invalid events raise ``schemas.errors.ValidationError`` from the ``report_*`` call and are not
    published. ``QueueFullError`` means the local queue stayed full for
    ``settings.producer_backpressure_timeout_s``: the event was not queued and the caller still holds it.
    """

    @overload
    def __init__(
        self: Reporter[Receipt],
        bootstrap_servers: str | None = None,
        *,
        settings: Settings | None = None,
        source: SourceKind = "sdk",
        host: str | None = None,
        producer_overrides: Mapping[str, Any] | None = None,
        receipts: Literal[True] = True,
    ) -> None: ...

    @overload
    def __init__(
        self: Reporter[str],
        bootstrap_servers: str | None = None,
        *,
        settings: Settings | None = None,
        source: SourceKind = "sdk",
        host: str | None = None,
        producer_overrides: Mapping[str, Any] | None = None,
        receipts: Literal[False],
    ) -> None: ...

    def __init__(
        self,
        bootstrap_servers: str | None = None,
        *,
        settings: Settings | None = None,
        source: SourceKind = "sdk",
        host: str | None = None,
        producer_overrides: Mapping[str, Any] | None = None,
        receipts: bool = True,
    ) -> None:
        if bootstrap_servers is not None:
            if settings is not None:
                raise ConfigError("pass bootstrap_servers or settings, not both (settings has the servers)")
            # model_validate, not Settings(...): without pydantic's mypy plugin, mypy wants every field.
            settings = Settings.model_validate({"kafka_bootstrap_servers": bootstrap_servers})
        self.settings = settings or Settings.model_validate({})
        codec = codec_for(self.settings, self.settings.topics.events)
        self._encoder = EventEncoder(codec, source=source, host=host)
        self._codec = codec
        self._receipts = receipts
        self._publisher = Publisher.from_settings(
            self.settings, producer_overrides, receipts=receipts, label=None if receipts else self._event_id_of
        )
        self._topic = self.settings.topics.events
        # Bound once: these run once per event. Each type's path (``EventEncoder.reporter``) builds, checks and
        # encodes a report, raising ``ValidationError`` for what is invalid.
        self._publish = self._publisher.publish
        self._send = self._publisher.send
        self._materialization = self._encoder.reporter("materialization")
        self._observation = self._encoder.reporter("observation")
        self._check = self._encoder.reporter("check_evaluation")

    @overload
    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        source: SourceKind = "sdk",
        host: str | None = None,
        producer_overrides: Mapping[str, Any] | None = None,
        receipts: Literal[True] = True,
    ) -> Reporter[Receipt]: ...

    @overload
    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        source: SourceKind = "sdk",
        host: str | None = None,
        producer_overrides: Mapping[str, Any] | None = None,
        receipts: Literal[False],
    ) -> Reporter[str]: ...

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        source: SourceKind = "sdk",
        host: str | None = None,
        producer_overrides: Mapping[str, Any] | None = None,
        receipts: bool = True,
    ) -> Reporter[Receipt] | Reporter[str]:
        """A reporter configured from ``ASSETPIPE_*`` variables (``Settings.from_env``)."""
        settings = Settings.from_env(environ)
        if receipts:
            return Reporter(settings=settings, source=source, host=host, producer_overrides=producer_overrides)
        return Reporter(
            settings=settings, source=source, host=host, producer_overrides=producer_overrides, receipts=False
        )

    def report_materialization(
        self,
        asset_key: CoercibleToAssetKey,
        *,
        partition: str | None = None,
        data_version: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> R:
        """Report that an asset was written. ``asset_key``: ``"a/b"``, ``["a", "b"]`` or an ``AssetKey``.
        ``metadata`` values may be raw (int, float, str, bool, dict, list, ...) or ``MetadataValue``s.
        The same ``idempotency_key`` for the same asset gives the same event id (a safe retry)."""
        return self._queue(
            self._materialization(asset_key, partition, data_version, description, metadata, tags, idempotency_key)
        )

    def report_observation(
        self,
        asset_key: CoercibleToAssetKey,
        *,
        partition: str | None = None,
        data_version: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> R:
        """Report that an asset was seen (its metadata or data version) without being changed; arguments
        as ``report_materialization``."""
        return self._queue(
            self._observation(asset_key, partition, data_version, description, metadata, tags, idempotency_key)
        )

    def report_check(
        self,
        asset_key: CoercibleToAssetKey,
        *,
        check_name: str,
        passed: bool,
        severity: Severity = "ERROR",
        metadata: Mapping[str, Any] | None = None,
        partition: str | None = None,
        description: str | None = None,
        idempotency_key: str | None = None,
    ) -> R:
        """Report a data-quality check's result. ``severity`` is ``"WARN"`` or ``"ERROR"``."""
        args = (asset_key, partition, None, description, metadata, None, idempotency_key, check_name, passed, severity)
        return self._queue(self._check(*args))

    def report_materialization_failure(
        self,
        asset_key: CoercibleToAssetKey,
        *,
        partition: str | None = None,
        failure_type: FailureType = "FAILED",
        reason: FailureReason = "UNKNOWN",
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        run_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> R:
        """Report that an asset was to be materialized and was not (Dagster's ``AssetMaterializationFailure``).
        ``failure_type``: ``"FAILED"`` (the asset, or its partition, is failed until materialized again) or
        ``"SKIPPED"`` (expected: its state does not change); ``reason``: ``"FAILED_TO_MATERIALIZE"``,
        ``"UPSTREAM_FAILED_TO_MATERIALIZE"``, ``"RUN_TERMINATED"`` or ``"UNKNOWN"``; ``description``: what went
        wrong. With ``run_id``, the run's failure of the asset (partition) is stored once however often it is
        reported. Other arguments as ``report_materialization``."""
        event = AssetMaterializationFailure(
            AssetKey(asset_parts(asset_key)),
            partition=partition,
            failure_type=failure_type,
            reason=reason,
            description=description,
            metadata=metadata or {},
            tags=tags or {},
            run_id=run_id,
        )
        return self._queue(self._encoder.encode_event(event, idempotency_key=idempotency_key))

    def report(self, event: AssetEvent, *, idempotency_key: str | None = None) -> R:
        """Report an ``AssetMaterialization``, ``AssetObservation``, ``AssetCheckEvaluation`` or
        ``AssetMaterializationFailure``. The event's own ``event_id`` and ``timestamp`` are kept when set; the
        source is this reporter's."""
        return self._queue(self._encoder.encode_event(event, idempotency_key=idempotency_key))

    def _queue(self, done: tuple[str, bytes, bytes]) -> R:
        """The one publishing path of every report: an encoded event (event id, key, value) queued -> its
        receipt, or its id (``receipts=False``)."""
        if self._receipts:
            return self._publish(self._topic, done[1], done[2], event_id=done[0])  # type: ignore[return-value]
        self._send(self._topic, done[1], done[2])
        return done[0]  # type: ignore[return-value]

    def _event_id_of(self, value: bytes) -> str:
        """The id of the event a failed message carried (``receipts=False``: failures name their event)."""
        return str(self._codec.decode(value)[1]["event_id"])

    @property
    def failed(self) -> tuple[str, ...]:
        """Ids of events whose delivery failed and that no ``flush`` or ``Receipt.result`` raised yet."""
        return self._publisher.failed

    @property
    def pending(self) -> int:
        """Events not yet acknowledged or failed (serves waiting delivery reports first)."""
        return self._publisher.pending

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every reported event is acknowledged. Raises ``DeliveryError`` (with ``event_ids``)
        for failures not raised before, ``PublishTimeoutError`` if events remain after ``timeout``."""
        self._publisher.flush(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Flush (raising as ``flush`` does), then release the Kafka producer."""
        self._publisher.close(timeout)

    def __enter__(self) -> Reporter[R]:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
