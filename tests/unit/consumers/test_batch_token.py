"""The insert token of a batch and the partition spans it is built from (no broker, no ClickHouse:
messages are built in memory and the handler only frames them)."""

from __future__ import annotations

from confluent_kafka import Message

from assetpipe.consumers.ingest.handler import IngestHandler, batch_token, message_spans
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.schemas.codec import Codec
from assetpipe.schemas.model import build_record
from assetpipe.schemas.settings import Settings


def interleaved(codec: Codec, tag: str = "") -> list[Message]:
    """Runs of messages from partitions 0, 1 and 2 of one topic and partition 0 of another, each
    partition's offsets rising, as a consumer hands them over."""
    layout = [("events", 0)] * 3 + [("events", 1)] * 2 + [("events", 0)] * 2 + [("other", 0)] + [("events", 2)] * 2
    offsets: dict[tuple[str, int], int] = {}
    batch = []
    for topic, partition in layout:
        offset = offsets[(topic, partition)] = offsets.get((topic, partition), 99) + 1
        record = build_record("materialization", ["a", f"{partition}{tag}"], source="sdk", host="h")
        value = codec.encode("materialization", record)
        batch.append(Message(topic=topic, partition=partition, offset=offset, key=b"k", value=value))
    return batch


def test_spans_are_each_partitions_first_and_last_position() -> None:
    batch = interleaved(Codec())
    assert message_spans(batch) == {("events", 0): [0, 6], ("events", 1): [3, 4], ("other", 0): [7, 7],
                                    ("events", 2): [8, 9]}  # fmt: skip


def test_framing_notes_the_spans_the_token_needs() -> None:
    codec = Codec(timestamp_micros=True)
    handler = IngestHandler(Warehouse("chdb:///nowhere", "x"), codec, Settings.model_validate({}))  # never connects
    batch = interleaved(codec)
    staged = handler.prepare(batch)
    assert staged.spans == message_spans(batch)
    assert batch_token(batch, staged.spans) == batch_token(batch)


def test_the_token_follows_the_offsets_and_the_bytes() -> None:
    codec = Codec()
    batch = interleaved(codec)
    assert batch_token(batch) == batch_token(list(batch))
    other_bytes = interleaved(codec, tag="x")  # same topics, partitions and offsets, other events
    assert batch_token(other_bytes) != batch_token(batch)
    assert batch_token(batch[:-1]) != batch_token(batch)
