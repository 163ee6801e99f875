"""Settings for a benchmark run: the embedded broker, an embedded ClickHouse under ``directory``, fresh
topics, and the short group timeouts that let a consumer start at once. Topics are created."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from assetpipe.broker import EmbeddedBroker, create_topics
from assetpipe.schemas.settings import Settings


def bench_settings(broker: EmbeddedBroker, directory: str | Path, prefix: str = "b", **overrides: Any) -> Settings:
    settings = Settings(
        kafka_bootstrap_servers=broker.bootstrap_servers,
        clickhouse_url=f"chdb://{directory}/clickhouse",
        clickhouse_database="bench",
        topic_prefix=f"{prefix}{uuid.uuid4().hex[:6]}_",
        kafka_session_timeout_ms=2000,
        kafka_heartbeat_interval_ms=300,
        **overrides,
    )
    create_topics(settings)
    return settings


def produce_all(producer: Producer, topic: str, messages: Iterable[tuple[bytes, bytes]]) -> None:
    """Produce (value, key) pairs, waiting for room when the local queue is full, then flush."""
    for value, key in messages:
        while True:
            try:
                producer.produce(topic, value, key)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush()


def broker_cpu_seconds(broker: EmbeddedBroker) -> float:
    """User + system CPU of the broker process so far (Linux /proc), 0 where unavailable."""
    process = broker._process  # the child process EmbeddedBroker started
    try:
        fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split() if process else []
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") if fields else 0.0
