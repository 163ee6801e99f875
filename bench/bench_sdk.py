"""SDK publish rate, beside the raw limits measured in the same run.

Publishes the reference event (5 metadata entries: int, float, text, bool, url; a partition; a data
version), its numbers varying from event to event as real traffic's do, through ``Reporter`` and prints
events/s (with a receipt per event, and with ``receipts=False``, which returns event ids and has
librdkafka report failures only), next to: the SDK's encode path alone (build, validate,
encode; no Kafka), the codec's encode of the same record (the compiled Avro writer), fastavro's
schemaless encode of it (the raw library limit), ``Publisher.publish`` of the same bytes, and
confluent-kafka producing them with the same producer settings (no Avro, no receipts). Starts its own
embedded broker; after that the process is pinned to one CPU, so librdkafka's threads share the core with
Python (``--no-pin`` to let them spread). Every measure runs ``--rounds`` times, interleaved; each prints its
best round (the least disturbed by other work on the machine), its median and every round. Prints figures;
asserts nothing.

    python bench/bench_sdk.py [--events N] [--rounds R] [--no-pin]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import time
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import fastavro
from confluent_kafka import Producer, libversion

from assetpipe import MetadataValue, Reporter
from assetpipe.broker import EmbeddedBroker, create_topics, free_port
from assetpipe.producers.publisher import Publisher
from assetpipe.schemas.codec import make_codec
from assetpipe.schemas.encoder import EventEncoder
from assetpipe.schemas.settings import Settings

ASSET = "sales/daily"
METADATA = {
    "rows": 1204,
    "ratio": 0.25,
    "owner": "finance",
    "fresh": True,
    "dashboard": MetadataValue.url("https://dash.example/sales/daily"),
}
FIELDS: dict[str, Any] = {"partition": "2024-06-01", "data_version": "v7", "metadata": METADATA}


def reference_fields(i: int) -> dict[str, Any]:
    """The reference event as real traffic sends it: the numbers change from event to event (so no cache
    is credited for them), a fresh metadata dict and typed value each time; the asset key, the metadata
    keys and the constant text repeat."""
    metadata = {
        "rows": 1000 + i,
        "ratio": i / 7919,
        "owner": "finance",
        "fresh": i % 3 != 0,
        "dashboard": MetadataValue.url("https://dash.example/sales/daily"),
    }
    return {"partition": "2024-06-01", "data_version": "v7", "metadata": metadata}


def rate(n: int, run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return n / (time.perf_counter() - started)


def sdk_publish(settings: Settings, n: int, *, receipts: bool = True) -> float:
    reporter: Reporter[Any] = Reporter(settings=settings) if receipts else Reporter(settings=settings, receipts=False)
    with reporter:
        reporter.report_materialization("bench/warmup")
        reporter.flush(30)  # connection, topic metadata

        def run() -> None:
            report = reporter.report_materialization
            for i in range(n):
                report(ASSET, **reference_fields(i))
            reporter.flush()

        return rate(n, run)


def sdk_encode(settings: Settings, n: int) -> float:
    codec = make_codec(None, max_event_bytes=settings.max_event_bytes, subject_prefix=settings.topics.events)
    encode = EventEncoder(codec).encode

    def run() -> None:
        for i in range(n):
            encode("materialization", ASSET, **reference_fields(i))

    return rate(n, run)


def reference_message(settings: Settings) -> tuple[dict[str, Any], bytes]:
    """-> (the reference event's wire record, its encoded message)."""
    codec = make_codec(None, max_event_bytes=settings.max_event_bytes, subject_prefix=settings.topics.events)
    encoded = EventEncoder(codec).encode("materialization", ASSET, **FIELDS)
    return codec.decode(encoded.value)[1], encoded.value


def codec_encode(settings: Settings, n: int, record: dict[str, Any]) -> float:
    codec = make_codec(None, max_event_bytes=settings.max_event_bytes, subject_prefix=settings.topics.events)
    encode = codec.encode

    def run() -> None:
        for _ in range(n):
            encode("materialization", record)

    return rate(n, run)


def fastavro_encode(settings: Settings, n: int, record: dict[str, Any]) -> float:
    codec = make_codec(None, max_event_bytes=settings.max_event_bytes, subject_prefix=settings.topics.events)
    schema = codec.schemas.current["materialization"]
    writer = fastavro.schemaless_writer

    def run() -> None:
        for _ in range(n):
            buf = io.BytesIO()
            writer(buf, schema, record)
            buf.getvalue()

    return rate(n, run)


def raw_produce(settings: Settings, n: int, value: bytes) -> float:
    producer = Producer(settings.producer_config())
    topic, key = settings.topics.events, ASSET.encode()
    producer.produce(topic, value, key)
    producer.flush(30)

    def run() -> None:
        produce, poll = producer.produce, producer.poll
        for _ in range(n):
            produce(topic, value, key)
            poll(0)
        producer.flush()

    try:
        return rate(n, run)
    finally:
        producer.close()


def publisher_publish(settings: Settings, n: int, value: bytes) -> float:
    with Publisher.from_settings(settings) as publisher:
        topic, key = settings.topics.events, ASSET.encode()
        publisher.publish(topic, key, value, event_id="warmup").result(timeout=30)

        def run() -> None:
            publish = publisher.publish
            for _ in range(n):
                publish(topic, key, value, event_id="e")
            publisher.flush()

        return rate(n, run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--no-pin", action="store_true", help="do not pin this process to one CPU")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every measure (best and median printed)")
    args = parser.parse_args()
    n: int = args.events

    with EmbeddedBroker(free_port()) as broker:
        settings = Settings.model_validate(
            {"kafka_bootstrap_servers": broker.bootstrap_servers, "topic_prefix": "bench_"}
        )
        create_topics(settings)
        pinned = "not pinned"
        if not args.no_pin and hasattr(os, "sched_setaffinity"):
            cpu = min(os.sched_getaffinity(0))
            os.sched_setaffinity(0, {cpu})  # after starting the broker, which keeps every CPU
            pinned = f"pinned to CPU {cpu}"

        record, value = reference_message(settings)
        measures: list[tuple[str, Callable[[], float]]] = [
            ("SDK Reporter.report_materialization, flushed", lambda: sdk_publish(settings, n)),
            ("same, Reporter(receipts=False): event ids returned", lambda: sdk_publish(settings, n, receipts=False)),
            ("SDK encode path only (build + validate + encode)", lambda: sdk_encode(settings, n)),
            ("Codec.encode (compiled Avro writer), same record", lambda: codec_encode(settings, n, record)),
            ("raw fastavro schemaless encode, same record", lambda: fastavro_encode(settings, n // 4, record)),
            ("Publisher.publish (receipts), same bytes", lambda: publisher_publish(settings, n, value)),
            ("raw confluent-kafka produce, same bytes", lambda: raw_produce(settings, n, value)),
        ]
        # Round after round, every measure once a round: what else runs on the machine weighs on all alike.
        rates: list[list[float]] = [[] for _ in measures]
        for _ in range(args.rounds):
            for i, (_, measure) in enumerate(measures):
                rates[i].append(measure())

    print(
        f"{n:,} events of {len(value)} bytes; Python {platform.python_version()}, "
        f"confluent-kafka {version('confluent-kafka')} / librdkafka {libversion()[0]}, "
        f"fastavro {fastavro.__version__}; {pinned}; producer: acks=all, idempotent, "
        f"{settings.producer_compression}, linger {settings.producer_linger_ms} ms"
    )
    print(f"  {'':<52} {'best of ' + str(args.rounds):>19}  {'median':>19}   each round (k events/s)")
    for (name, _), runs in zip(measures, rates, strict=True):
        best, median = max(runs), statistics.median(runs)
        each = ", ".join(f"{r / 1000:.0f}" for r in runs)
        print(f"  {name:<52} {best:>10,.0f}/s {1e6 / best:5.2f} us  {median:>10,.0f}/s {1e6 / median:5.2f} us   {each}")
    print("  target: SDK publish >= 150,000 events/s on one core")


if __name__ == "__main__":
    main()
