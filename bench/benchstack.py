"""Settings for a benchmark run: the embedded broker, an embedded ClickHouse under ``directory``, fresh
topics, and the short group timeouts that let a consumer start at once. Topics are created."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from assetpipe.broker import EmbeddedBroker, create_topics
from schemas.settings import Settings


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
