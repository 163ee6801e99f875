"""What a consumer loop hands a batch to, and what it gets back.

One interface, ``Handler``: ``prepare`` does the batch's own work (what needs nothing but its messages:
no store, no earlier batch), ``handle`` takes its result and returns an ``Outcome``: messages to publish
(accepted events, dead letters, run requests) and messages of the batch to forward as they came. The
loop may prepare the next batch while the one before is still being handled. A handler of decoded
events is wrapped by ``Decoding``, whose ``prepare`` decodes and turns undecodable messages into dead
letters. A handler with state per partition is also ``PartitionAware``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from confluent_kafka import Message

from assetpipe.schemas.codec import Codec
from assetpipe.schemas.errors import AssetpipeError, DecodeError

Headers = list[tuple[str, str | bytes | None]]  # as confluent-kafka takes them


@dataclass(slots=True)
class Decoded:
    event_type: str
    record: dict[str, Any]
    message: Message


@dataclass(slots=True)
class Outbound:
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers | None = None


@dataclass(slots=True)
class Outcome:
    """What a handler made of a batch: messages to publish (accepted events, dead letters), and messages
    of the batch to publish again as they came, key and value, to ``forward_topic`` (no object each)."""

    outbound: list[Outbound] = field(default_factory=list)
    forward: Sequence[Message] = ()
    forward_topic: str = ""


class Handler(Protocol):
    def prepare(self, batch: Sequence[Message]) -> Any: ...

    def handle(self, batch: Sequence[Message], prepared: Any) -> Outcome: ...


class EventHandler(Protocol):
    """A handler of decoded events (``Decoding`` makes it a ``Handler``)."""

    def handle(self, events: Sequence[Decoded], batch: Sequence[Message]) -> Outcome: ...


@runtime_checkable
class PartitionAware(Protocol):
    """A handler with state per partition, told which partitions its consumer gains (with each topic's
    partition count; a topic the broker gave none for is left out) and loses."""

    def partitions_assigned(self, partitions: Sequence[tuple[str, int]], counts: Mapping[str, int]) -> None: ...

    def partitions_revoked(self, partitions: Sequence[tuple[str, int]]) -> None: ...


def dead_letter(message: Message, dlq_topic: str, error: AssetpipeError) -> Outbound:
    """The original bytes, with the reason and the source position in headers."""
    original = message.headers() or []
    pairs = original.items() if isinstance(original, dict) else original
    headers: Headers = [(k, v if isinstance(v, bytes) else (v or "").encode()) for k, v in pairs]
    headers += [
        ("error_code", error.code.encode()),
        ("error_reason", str(error).encode()),
        ("source_topic", (message.topic() or "").encode()),
        ("source_partition", str(message.partition()).encode()),
        ("source_offset", str(message.offset()).encode()),
    ]
    return Outbound(dlq_topic, message.key(), message.value() or b"", headers)


class Decoding:
    """``inner`` as a ``Handler``: the batch decoded with ``codec``; a message that does not decode is a
    dead letter on ``dlq_topic``, published with the inner handler's outcome."""

    def __init__(self, inner: EventHandler, codec: Codec, dlq_topic: str) -> None:
        self.inner = inner
        self._codec = codec
        self._dlq = dlq_topic

    def prepare(self, batch: Sequence[Message]) -> tuple[list[Decoded], list[Outbound]]:
        decoded: list[Decoded] = []
        dead: list[Outbound] = []
        decode = self._codec.decode
        for message in batch:
            try:
                event_type, record = decode(message.value() or b"")
            except DecodeError as exc:
                dead.append(dead_letter(message, self._dlq, exc))
                continue
            decoded.append(Decoded(event_type, record, message))
        return decoded, dead

    def handle(self, batch: Sequence[Message], prepared: tuple[list[Decoded], list[Outbound]]) -> Outcome:
        decoded, dead = prepared
        outcome = self.inner.handle(decoded, batch)
        outcome.outbound.extend(dead)
        return outcome

    def partitions_assigned(self, partitions: Sequence[tuple[str, int]], counts: Mapping[str, int]) -> None:
        if isinstance(self.inner, PartitionAware):
            self.inner.partitions_assigned(partitions, counts)

    def partitions_revoked(self, partitions: Sequence[tuple[str, int]]) -> None:
        if isinstance(self.inner, PartitionAware):
            self.inner.partitions_revoked(partitions)
